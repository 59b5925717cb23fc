// Encoding of typed attribute maps (profiles, event properties, analytics
// fields). Grammar (docs/format.md):
//   attributes := varint(count) attribute*        -- names strictly ascending
//   attribute  := lp(name) u8(type) payload
//   payload    := lp(bytes)              for string (1) and bytes (6)
//              |  fixed64be(ordered i64) for int64 (2) and timestamp (5)
//              |  fixed64be(ieee754 bits) for double (3)
//              |  u8(0|1)                for bool (4)
// Decoding is strict: unknown types, unsorted or duplicate names, bad bool
// bytes and trailing garbage are Corruption.
// Thread safety: stateless.
#ifndef SHREDKV_CODEC_VALUE_CODEC_H_
#define SHREDKV_CODEC_VALUE_CODEC_H_

#include <string>
#include <string_view>
#include <vector>

#include "shredkv/status.h"
#include "shredkv/types.h"
#include "util/coding.h"

namespace shredkv::codec {

void EncodeAttributes(const Attributes& attrs, std::string* out);
// Encodes the attributes `entries` point to as one attribute map, without
// copying them into a map of their own. REQUIRES: names strictly ascending.
using AttributeEntry = const Attributes::value_type*;
void EncodeAttributeEntries(const std::vector<AttributeEntry>& entries, std::string* out);
// Reads one attribute map from `reader`.
[[nodiscard]] Status DecodeAttributes(util::ByteReader* reader, Attributes* out);

// Limits of attribute maps (profile attributes, event properties; docs/format.md §9).
inline constexpr std::size_t kMaxAttributeValueSize = 1u << 20;  // one string or bytes value
inline constexpr std::size_t kMaxAttributesSize = 16u << 20;     // one encoded map (an event's properties)

// InvalidArgument unless every name is 1..255 bytes and every string or
// bytes value at most kMaxAttributeValueSize.
[[nodiscard]] Status ValidateAttributeNames(const Attributes& attrs, std::string_view what);
// EncodeAttributes and ValidateAttributeNames in one walk of the map (the
// write path's maps are cold: the walk, not the encoding, is the cost), and
// the encoding at most kMaxAttributesSize. On InvalidArgument *out holds a
// partial encoding.
[[nodiscard]] Status EncodeValidAttributes(const Attributes& attrs, std::string_view what, std::string* out);

}  // namespace shredkv::codec

#endif  // SHREDKV_CODEC_VALUE_CODEC_H_
