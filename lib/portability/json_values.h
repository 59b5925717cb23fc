// JSON encodings shared by the export writer and the importer (schema
// version 1, docs/export-format.md): typed values, timestamps, ids, bytes.
// Thread safety: stateless.
#ifndef SHREDKV_PORTABILITY_JSON_VALUES_H_
#define SHREDKV_PORTABILITY_JSON_VALUES_H_

#include <nlohmann/json.hpp>

#include <string>

#include "shredkv/types.h"

namespace shredkv::portability {

using Json = nlohmann::ordered_json;

// "2023-11-14T22:13:20.123Z" (UTC, millisecond precision; years 0000..9999,
// outside that range the integer ms are authoritative and this is "").
std::string IsoTime(std::int64_t ms);

// {"string": s} (or {"string_base64": b64} if s is not UTF-8) | {"int64": n} | {"double": x or "NaN"/"Infinity"/"-Infinity"}
// | {"bool": b} | {"timestamp": ms, "iso": ...} | {"bytes": base64}
Json ValueToJson(const Value& v);
Json AttributesToJson(const Attributes& a);
// InvalidArgument naming `path` for anything malformed.
Result<Value> ValueFromJson(const Json& j, const std::string& path);
Result<Attributes> AttributesFromJson(const Json& j, const std::string& path);
// A record's metadata as exports and ingest lines write it
// (docs/export-format.md, record): keys present only when non-empty.
Json RecordMetadataToJson(const RecordMetadata& m);
// The reverse: an object whose keys are all optional, no other key allowed.
// InvalidArgument naming the problem. Limits and purposes are the store's
// to check.
Status RecordMetadataFromJson(const Json& j, RecordMetadata* out);

}  // namespace shredkv::portability

#endif  // SHREDKV_PORTABILITY_JSON_VALUES_H_
