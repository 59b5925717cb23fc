#include "codec/value_codec.h"

#include <bit>
#include <cstring>

#include "util/base64.h"

namespace shredkv::codec {

namespace {

// The one rule for attribute names: 1..255 bytes.
Status CheckAttribute(std::string_view name, const Value& value, std::string_view what) {
  if (name.empty() || name.size() > 255) {
    return Status::InvalidArgument(std::string(what) + " name must be 1..255 bytes");
  }
  // The C API and Python hand names out as C strings: "role\0" would read
  // as a second "role", and a profile could show a value it does not hold
  // under that name (stop 26's audit, through import and the JSON calls).
  if (name.find('\0') != std::string_view::npos) {
    return Status::InvalidArgument(std::string(what) + " name holds a NUL byte");
  }
  // Names are text: the export writes them as JSON strings, which would
  // turn "note\xff" and "note\xfe" both into "note\uFFFD", an export its
  // own import refuses (outside audit 37b, F3).
  if (!util::IsValidUtf8(name)) return Status::InvalidArgument(std::string(what) + " name is not valid UTF-8");
  const std::size_t size = value.type() == Value::Type::kString  ? value.as_string().size()
                           : value.type() == Value::Type::kBytes ? value.as_bytes().size()
                                                                 : 0;
  if (size > kMaxAttributeValueSize) {
    return Status::InvalidArgument(std::string(what) + " '" + std::string(name) + "' is larger than 1 MiB");
  }
  return Status::OK();
}

void EncodeAttribute(const std::string& name, const Value& value, std::string* out) {
  util::PutLengthPrefixed(out, name);
  out->push_back(static_cast<char>(value.type()));
  switch (value.type()) {
    case Value::Type::kString: util::PutLengthPrefixed(out, value.as_string()); break;
    case Value::Type::kBytes: util::PutLengthPrefixed(out, value.as_bytes()); break;
    case Value::Type::kInt64: util::PutFixed64BE(out, util::OrderedFromSigned(value.as_int64())); break;
    case Value::Type::kTimestamp: util::PutFixed64BE(out, util::OrderedFromSigned(value.as_timestamp().ms)); break;
    case Value::Type::kDouble: util::PutFixed64BE(out, std::bit_cast<std::uint64_t>(value.as_double())); break;
    case Value::Type::kBool: out->push_back(value.as_bool() ? 1 : 0); break;
  }
}

}  // namespace

void EncodeAttributes(const Attributes& attrs, std::string* out) {
  util::PutVarint64(out, attrs.size());
  for (const auto& [name, value] : attrs) EncodeAttribute(name, value, out);
}

Status EncodeValidAttributes(const Attributes& attrs, std::string_view what, std::string* out) {
  util::PutVarint64(out, attrs.size());
  for (const auto& [name, value] : attrs) {
    if (Status v = CheckAttribute(name, value, what); !v.ok()) return v;
    EncodeAttribute(name, value, out);
    if (out->size() > kMaxAttributesSize) {
      return Status::InvalidArgument(std::string(what) + "s larger than 16 MiB in all");
    }
  }
  return Status::OK();
}

void EncodeAttributeEntries(const std::vector<AttributeEntry>& entries, std::string* out) {
  util::PutVarint64(out, entries.size());
  for (AttributeEntry e : entries) EncodeAttribute(e->first, e->second, out);
}

Status DecodeAttributes(util::ByteReader* reader, Attributes* out) {
  out->clear();
  std::uint64_t count = 0;
  if (!reader->GetVarint64(&count)) return Status::Corruption("attribute count truncated");
  // Each attribute takes at least 3 bytes: a cheap bound against absurd counts.
  if (count > reader->remaining().size() / 3 + 1) return Status::Corruption("attribute count too large");
  std::string_view prev;
  for (std::uint64_t i = 0; i < count; ++i) {
    std::string_view name;
    std::uint8_t type = 0;
    if (!reader->GetLengthPrefixed(&name) || !reader->GetU8(&type)) {
      return Status::Corruption("attribute truncated");
    }
    if (name.empty() || (i > 0 && name <= prev)) return Status::Corruption("attribute names not ascending");
    prev = name;
    Value value;
    std::uint64_t u = 0;
    std::string_view s;
    switch (static_cast<Value::Type>(type)) {
      case Value::Type::kString:
        if (!reader->GetLengthPrefixed(&s)) return Status::Corruption("string value truncated");
        value = Value(std::string(s));
        break;
      case Value::Type::kBytes:
        if (!reader->GetLengthPrefixed(&s)) return Status::Corruption("bytes value truncated");
        value = Value::Bytes(std::string(s));
        break;
      case Value::Type::kInt64:
        if (!reader->GetFixed64BE(&u)) return Status::Corruption("int64 value truncated");
        value = Value(util::SignedFromOrdered(u));
        break;
      case Value::Type::kTimestamp:
        if (!reader->GetFixed64BE(&u)) return Status::Corruption("timestamp value truncated");
        value = Value(Timestamp{util::SignedFromOrdered(u)});
        break;
      case Value::Type::kDouble:
        if (!reader->GetFixed64BE(&u)) return Status::Corruption("double value truncated");
        value = Value(std::bit_cast<double>(u));
        break;
      case Value::Type::kBool: {
        std::uint8_t b = 0;
        if (!reader->GetU8(&b) || b > 1) return Status::Corruption("bool value malformed");
        value = Value(b == 1);
        break;
      }
      default:
        return Status::Corruption("unknown value type " + std::to_string(type));
    }
    out->emplace_hint(out->end(), std::string(name), std::move(value));
  }
  return Status::OK();
}

Status ValidateAttributeNames(const Attributes& attrs, std::string_view what) {
  for (const auto& [name, value] : attrs) {
    if (Status v = CheckAttribute(name, value, what); !v.ok()) return v;
  }
  return Status::OK();
}

}  // namespace shredkv::codec
