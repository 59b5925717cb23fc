// shredkv command-line tool: JSON forms of the API's values, and reading
// attribute values from JSON.
#ifndef SHREDKV_TOOLS_JSON_OUTPUT_H_
#define SHREDKV_TOOLS_JSON_OUTPUT_H_

#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "shredkv/shredkv.h"

namespace shredkv::cli {

// Keys keep their insertion order, so output reads in the documented order.
using Json = nlohmann::ordered_json;

// Base64Encode, Base64Decode and IsValidUtf8 come from shredkv/portability.h.

// A value as plain JSON: strings, numbers, bools; timestamps as integer ms;
// bytes (and strings that are not UTF-8) as base64 strings.
Json PlainValue(const Value& value);
Json PlainAttributes(const Attributes& attributes);

// A JSON value as an attribute value: string → string, integer → int64,
// float → double, bool → bool, or the typed form of the export
// ({"string": ...}, {"int64": ...}, {"double": ...}, {"bool": ...},
// {"timestamp": ms}, {"bytes": base64}, {"string_base64": base64}).
// null is not a value (callers treat it as "unset"). InvalidArgument otherwise.
Result<Value> ValueFromJson(const Json& j, const std::string& where);

Json ReceiptJson(const ErasureReceipt& receipt);
// A sharded store's erasure request (docs/cli.md, "Sharded stores"): the
// receipt's keys over the whole request — people summed, the lowest level,
// cryptographic and purged once every part is, the latest erased_at;
// key_epoch and audit_hash those of the one part, or 0 and "" for a
// request of several — and "parts": each shard's receipt with "shard".
Json ShardedReceiptJson(const ShardedErasureReceipt& receipt);
// {"seq","action","time","hash"} plus the action's counts under their own
// names (docs/cli.md, `audit`), "request_id" and "analytics" for erasures.
Json AuditJson(const AuditRecord& record);
Json RestrictionJson(const PersonId& person, const RestrictionState& state);
Json NoticeJson(const Notice& notice);
Json AnalyticsRowJson(const AnalyticsRow& row);
Json StatsJson(const StoreStats& stats);
Json VerifyJson(const VerifyReport& report);

// Serialises for output: one line, or indented when `pretty`. Invalid UTF-8
// is replaced, never an exception.
std::string Dump(const Json& j, bool pretty = false);

}  // namespace shredkv::cli

#endif  // SHREDKV_TOOLS_JSON_OUTPUT_H_
