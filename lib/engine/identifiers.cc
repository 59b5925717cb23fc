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

// Not a code point: what NextCodePoint returns for ill-formed UTF-8.
constexpr char32_t kIllFormed = 0xFFFFFFFF;

// The code point of the UTF-8 sequence at value[*i], advancing *i past it;
// kIllFormed (advancing one byte) for a byte that starts no well-formed
// sequence: a stray continuation byte, C0, C1, F5..FF, a truncated
// sequence, an overlong form, a surrogate, or a value past U+10FFFF.
char32_t NextCodePoint(std::string_view value, std::size_t* i) {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(value[k]); };
  const unsigned char c = byte(*i);
  if (c < 0x80) {
    ++*i;
    return c;
  }
  const std::size_t n = (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
  if (n == 0 || *i + n > value.size()) {
    ++*i;
    return kIllFormed;
  }
  char32_t code = c & (0x7F >> n);
  for (std::size_t k = 1; k < n; ++k) {
    if ((byte(*i + k) & 0xC0) != 0x80) {
      ++*i;
      return kIllFormed;
    }
    code = (code << 6) | (byte(*i + k) & 0x3F);
  }
  constexpr char32_t kSmallest[] = {0, 0, 0x80, 0x800, 0x10000};
  if (code < kSmallest[n] || (code >= 0xD800 && code <= 0xDFFF) || code > 0x10FFFF) {
    ++*i;
    return kIllFormed;
  }
  *i += n;
  return code;
}

// Characters that show as nothing or as a space: format characters,
// Unicode spaces, fillers, variation selectors and tags.
bool Invisible(char32_t c) {
  return c == 0xA0 || c == 0xAD || c == 0x34F || c == 0x61C || c == 0x115F || c == 0x1160 || c == 0x1680 ||
         c == 0x17B4 || c == 0x17B5 || c == 0x180E || (c >= 0x180B && c <= 0x180F) || (c >= 0x2000 && c <= 0x200F) ||
         (c >= 0x2028 && c <= 0x202F) || (c >= 0x205F && c <= 0x206F) || c == 0x3000 || c == 0x3164 ||
         (c >= 0xFE00 && c <= 0xFE0F) || c == 0xFEFF || c == 0xFFA0 || (c >= 0xFFF0 && c <= 0xFFFB) ||
         c == 0x2800 || (c >= 0x1BCA0 && c <= 0x1BCA3) || (c >= 0x1D173 && c <= 0x1D17A) ||
         (c >= 0xE0000 && c <= 0xE0FFF);
}

// Why a normalised value may not be claimed, or empty: a control character
// (C0, DEL, C1) in any type; in an e-mail address also an invisible or
// space-like character (outside audit 36a, F10, and review of stop 36 R3:
// "dave@example.org" followed by U+200B, U+2060, U+00AD, ... got past the
// suppression of "dave@example.org"). U+200C and U+200D (ZWNJ, ZWJ) are
// refused too, though some scripts' addresses use them: invisible.
std::string LookAlikeProblem(std::string_view value, bool email) {
  for (std::size_t i = 0; i < value.size();) {
    const char32_t c = NextCodePoint(value, &i);
    if (c == kIllFormed) {
      // A lenient decoder may show an overlong form as the letter it
      // encodes (second review of stop 36, R4); other types keep any bytes.
      if (email) return "is not well-formed UTF-8";
      continue;
    }
    if (c < 0x20 || (c >= 0x7F && c <= 0x9F)) return "holds a control character";
    if (email && Invisible(c)) return "holds an invisible or space-like character";
  }
  return {};
}

Result<std::string> Apply(Normalization rule, std::string_view type, std::string_view value) {
  auto invalid = [&](std::string why) {
    return Status::InvalidArgument("identifier of type '" + std::string(type) + "': " + why);
  };
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

Status IdentifierRegistry::CheckClaimable(const Identifier& normalized) const {
  auto it = types_.find(normalized.type);
  if (it == types_.end()) return Status::InvalidArgument("unknown identifier type '" + normalized.type + "'");
  const std::string why = LookAlikeProblem(normalized.value, it->second == Normalization::kEmail);
  if (why.empty()) return Status::OK();
  return Status::InvalidArgument("identifier of type '" + normalized.type + "' " + why +
                                 " (it would look like another one)");
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

Status CheckNewIdentifier(const Identifier& identifier, const std::vector<IdentifierTypeSpec>& extra_types) {
  auto registry = engine::IdentifierRegistry::Create(extra_types);
  if (!registry.ok()) return registry.status();
  auto normalized = registry->Normalize(identifier);
  if (!normalized.ok()) return normalized.status();
  return registry->CheckClaimable(*normalized);
}

}  // namespace shredkv
