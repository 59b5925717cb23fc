#include "engine/identifiers.h"

#include "codec/row_codec.h"
#include "crypto/keyed_hash.h"
#include "shredkv/store.h"

namespace shredkv::engine {
namespace {

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

std::string Trim(std::string_view s) {
  while (!s.empty() && IsSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsSpace(s.back())) s.remove_suffix(1);
  return std::string(s);
}

std::string Lower(std::string s) {
  for (char& c : s) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return s;
}

bool ValidTypeName(std::string_view name) {
  if (name.empty() || name.size() > 32) return false;
  for (char c : name) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
  }
  return true;
}

// True if `value` holds a control character other than tab (C0, DEL, C1
// in UTF-8), or, for e-mail addresses, an invisible or space-like Unicode
// character: U+00A0, U+2000..U+200F, U+2028, U+2029, U+202F, U+205F,
// U+3000, U+FEFF. Such values look like another identifier (outside audit
// 36a, F10: "dave@example.org" + U+200B got past the suppression of
// "dave@example.org").
bool HoldsLookAlikeCharacters(std::string_view value, bool email) {
  for (std::size_t i = 0; i < value.size(); ++i) {
    const auto c = static_cast<unsigned char>(value[i]);
    const auto next = [&](std::size_t k) { return i + k < value.size() ? static_cast<unsigned char>(value[i + k]) : 0u; };
    if ((c < 0x20 && c != '\t') || c == 0x7F) return true;
    if (c == 0xC2 && next(1) >= 0x80 && next(1) <= 0x9F) return true;  // C1 controls
    if (!email) continue;
    if (c == 0xC2 && next(1) == 0xA0) return true;
    if (c == 0xE2 && next(1) == 0x80 && (next(2) <= 0x8F || next(2) == 0xA8 || next(2) == 0xA9 || next(2) == 0xAF)) {
      return true;
    }
    if (c == 0xE2 && next(1) == 0x81 && next(2) == 0x9F) return true;
    if (c == 0xE3 && next(1) == 0x80 && next(2) == 0x80) return true;
    if (c == 0xEF && next(1) == 0xBB && next(2) == 0xBF) return true;
  }
  return false;
}

Result<std::string> Apply(Normalization rule, std::string_view type, std::string_view value) {
  auto invalid = [&](std::string why) {
    return Status::InvalidArgument("identifier of type '" + std::string(type) + "': " + why);
  };
  if (HoldsLookAlikeCharacters(value, rule == Normalization::kEmail)) {
    return invalid(rule == Normalization::kEmail
                       ? "holds a control, invisible or space-like character"
                       : "holds a control character");
  }
  std::string out;
  switch (rule) {
    case Normalization::kExact: out = std::string(value); break;
    case Normalization::kTrim: out = Trim(value); break;
    case Normalization::kLowerTrim: out = Lower(Trim(value)); break;
    case Normalization::kEmail: {
      out = Lower(Trim(value));
      const auto at = out.find('@');
      if (at == std::string::npos || at == 0 || at + 1 == out.size() ||
          out.find('@', at + 1) != std::string::npos) {
        return invalid("not an email address (local@domain)");
      }
      for (char c : out) {
        if (IsSpace(c)) return invalid("email address contains whitespace");
      }
      break;
    }
    case Normalization::kPhone: {
      std::string_view t = value;
      while (!t.empty() && IsSpace(t.front())) t.remove_prefix(1);
      std::size_t digits = 0;
      if (!t.empty() && t.front() == '+') out.push_back('+');
      for (char c : t) {
        if (c >= '0' && c <= '9') {
          out.push_back(c);
          ++digits;
        } else if (!(IsSpace(c) || c == '-' || c == '(' || c == ')' || c == '.' || c == '/' ||
                     c == '+')) {
          // Not echoed: a message must not carry any part of an identifier.
          return invalid("phone number contains a character other than digits, spaces and + - ( ) . /");
        }
      }
      if (digits < 3) return invalid("phone number needs at least 3 digits");
      break;
    }
  }
  if (out.empty()) return invalid("empty value");
  if (out.size() > kMaxIdentifierValue) return invalid("value longer than 1024 bytes");
  return out;
}

}  // namespace

Result<IdentifierRegistry> IdentifierRegistry::Create(const std::vector<IdentifierTypeSpec>& extra) {
  IdentifierRegistry r;
  r.types_.emplace(id_type::kEmail, Normalization::kEmail);
  r.types_.emplace(id_type::kPhone, Normalization::kPhone);
  r.types_.emplace(id_type::kCustomerId, Normalization::kTrim);
  r.types_.emplace(id_type::kDeviceId, Normalization::kTrim);
  for (const IdentifierTypeSpec& spec : extra) {
    if (!ValidTypeName(spec.name)) {
      return Status::InvalidArgument("identifier type name '" + spec.name +
                                     "' must match [a-z0-9_]{1,32}");
    }
    if (!r.types_.emplace(spec.name, spec.normalization).second) {
      return Status::InvalidArgument("identifier type '" + spec.name + "' is defined twice");
    }
  }
  return r;
}

Result<Identifier> IdentifierRegistry::Normalize(const Identifier& id) const {
  auto it = types_.find(id.type);
  if (it == types_.end()) {
    return Status::InvalidArgument("unknown identifier type '" + id.type + "'");
  }
  auto value = Apply(it->second, id.type, id.value);
  if (!value.ok()) return value.status();
  return Identifier{id.type, std::move(value).value()};
}

std::string IdentifierHash(const crypto::SecretKey& index_key, const Identifier& normalized) {
  return crypto::KeyedHash(index_key, codec::kIdentHashSize, {"ident", normalized.type, normalized.value});
}

}  // namespace shredkv::engine

namespace shredkv {

Result<Identifier> NormalizeIdentifier(const Identifier& identifier,
                                       const std::vector<IdentifierTypeSpec>& extra_types) {
  auto registry = engine::IdentifierRegistry::Create(extra_types);
  if (!registry.ok()) return registry.status();
  return registry->Normalize(identifier);
}

}  // namespace shredkv
