#include "json_output.h"

#include "portability/json_values.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

namespace shredkv::cli {
namespace {

Json U64(std::uint64_t v) { return Json(v); }

}  // namespace

Json PlainValue(const Value& value) {
  switch (value.type()) {
    case Value::Type::kString:
      return IsValidUtf8(value.as_string()) ? Json(value.as_string()) : Json(Base64Encode(value.as_string()));
    case Value::Type::kInt64: return Json(value.as_int64());
    case Value::Type::kDouble: {
      const double d = value.as_double();
      if (std::isnan(d)) return Json("NaN");
      if (std::isinf(d)) return Json(d > 0 ? "Infinity" : "-Infinity");
      return Json(d);
    }
    case Value::Type::kBool: return Json(value.as_bool());
    case Value::Type::kTimestamp: return Json(value.as_timestamp().ms);
    case Value::Type::kBytes: return Json(Base64Encode(value.as_bytes()));
  }
  return Json();
}

Json PlainAttributes(const Attributes& attributes) {
  Json j = Json::object();
  for (const auto& [name, value] : attributes) j[name] = PlainValue(value);
  return j;
}

Result<Value> ValueFromJson(const Json& j, const std::string& where) {
  auto bad = [&](const std::string& why) { return Status::InvalidArgument(where + ": " + why); };
  switch (j.type()) {
    case Json::value_t::string: return Value(j.get<std::string>());
    case Json::value_t::number_integer: return Value(j.get<std::int64_t>());
    case Json::value_t::number_unsigned: {
      const auto u = j.get<std::uint64_t>();
      if (u > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
        return bad("integer out of the int64 range");
      }
      return Value(static_cast<std::int64_t>(u));
    }
    case Json::value_t::number_float: return Value(j.get<double>());
    case Json::value_t::boolean: return Value(j.get<bool>());
    case Json::value_t::object: break;
    case Json::value_t::null: return bad("null is not a value");
    default: return bad("arrays are not supported as values");
  }
  // The typed form of the export: one parser for both (lib/portability).
  return portability::ValueFromJson(j, where);
}

Json AuditJson(const AuditRecord& r) {
  Json j = Json::object();
  j["seq"] = U64(r.seq);
  j["action"] = std::string(AuditActionName(r.action));
  j["time"] = r.time_ms;
  if (!r.request_id.empty()) j["request_id"] = r.request_id;
  if (r.analytics) j["analytics"] = std::string(AnalyticsOnEraseName(*r.analytics));
  auto counts = [&](const char* first, const char* second) {
    j[first] = U64(r.count1);
    if (second != nullptr) j[second] = U64(r.count2);
  };
  switch (r.action) {
    case AuditAction::kErase:
      counts("people", nullptr);
      j["suppressed"] = r.count2 != 0;
      break;
    case AuditAction::kEraseCategory: counts("categories", nullptr); break;
    case AuditAction::kUnsuppress: counts("identifiers", nullptr); break;
    case AuditAction::kRotation: counts("epoch", "keys_rewrapped"); break;
    case AuditAction::kPurge: counts("rows_deleted", "people_completed"); break;
    case AuditAction::kCompaction: counts("bytes_before", "bytes_after"); break;
    case AuditAction::kSweep: counts("rows_expired", "analytics_expired"); break;
    case AuditAction::kProcessingRead:
      j["purpose"] = r.purpose;
      j["subject"] = r.subject;
      break;
  }
  j["hash"] = r.hash;
  return j;
}

Json ReceiptJson(const ErasureReceipt& r) {
  Json j = Json::object();
  j["request_id"] = r.request_id;
  j["erased_at"] = r.erased_at_ms;
  j["people"] = U64(r.people);
  j["analytics"] = std::string(AnalyticsOnEraseName(r.analytics));
  j["suppressed"] = r.suppressed;
  j["level"] = std::string(ErasureLevelName(r.level));
  j["cryptographic"] = r.cryptographic;
  j["purged"] = r.purged;
  j["key_epoch"] = U64(r.key_epoch);
  j["audit_hash"] = r.audit_hash;
  if (!r.category.empty()) j["category"] = r.category;  // a category erasure only
  return j;
}

Json ShardedReceiptJson(const ShardedErasureReceipt& r) {
  // The whole request, computed over its parts as the C API's sharded
  // receipt is (docs/c-api.md, "Sharded stores").
  ErasureReceipt whole;
  whole.request_id = r.request_id;
  whole.people = r.people;
  whole.level = r.level;
  whole.cryptographic = !r.parts.empty();
  whole.purged = !r.parts.empty();
  Json parts = Json::array();
  for (const auto& [shard, part] : r.parts) {
    whole.erased_at_ms = std::max(whole.erased_at_ms, part.erased_at_ms);
    whole.analytics = part.analytics;
    whole.suppressed = whole.suppressed || part.suppressed;
    whole.cryptographic = whole.cryptographic && part.cryptographic;
    whole.purged = whole.purged && part.purged;
    whole.category = part.category;
    Json p = ReceiptJson(part);
    p["shard"] = shard;
    parts.push_back(std::move(p));
  }
  if (r.parts.size() == 1) {
    whole.key_epoch = r.parts.front().second.key_epoch;
    whole.audit_hash = r.parts.front().second.audit_hash;
  }
  Json j = ReceiptJson(whole);
  j["parts"] = std::move(parts);
  return j;
}

Json RestrictionJson(const PersonId& person, const RestrictionState& state) {
  Json j = Json::object();
  j["person_id"] = person.ToHex();
  j["all"] = state.all;
  j["purposes"] = state.purposes;
  j["categories"] = state.categories;
  return j;
}

Json NoticeJson(const Notice& n) {
  Json j = Json::object();
  j["cursor"] = U64(n.cursor);
  j["kind"] = std::string(NoticeKindName(n.kind));
  j["person_id"] = n.person.ToHex();
  j["time"] = n.time_ms;
  j["names"] = n.names;
  return j;
}

Json AnalyticsRowJson(const AnalyticsRow& row) {
  Json j = Json::object();
  j["anon_id"] = row.anon_id.ToHex();
  j["name"] = row.name;
  j["ts"] = row.ts_ms;
  j["fields"] = PlainAttributes(row.fields);
  return j;
}

Json StatsJson(const StoreStats& s) {
  Json j = Json::object();
  j["store_id"] = s.store_id;
  j["people"] = U64(s.people);
  j["erased"] = U64(s.erased);
  j["suppressed"] = U64(s.suppressed);
  j["pending_purge"] = U64(s.pending_purge);
  j["erased_categories"] = U64(s.erased_categories);
  j["erasures_since_rotation"] = U64(s.erasures_since_rotation);
  j["suppressed_rejections"] = U64(s.suppressed_rejections);
  j["restricted"] = U64(s.restricted);
  j["tracking_rejected"] = U64(s.tracking_rejected);
  j["tracking_dropped"] = U64(s.tracking_dropped);
  j["orphan_keys_collected"] = U64(s.orphan_keys_collected);
  j["format_version"] = s.format_version;
  j["write_batches"] = U64(s.write_batches);
  j["write_commits"] = U64(s.write_commits);
  j["oldest_key_epoch"] = U64(s.oldest_key_epoch);
  j["expired_removed"] = U64(s.expired_removed);
  j["expired_pending"] = U64(s.expired_pending);
  j["retention_backfill_pending"] = s.retention_backfill_pending;
  j["keys_rebuild_pending"] = s.keys_rebuild_pending;
  j["erasures_awaiting_rebuild"] = U64(s.erasures_awaiting_rebuild);
  j["identifiers"] = U64(s.identifiers);
  j["events"] = U64(s.events);
  j["records"] = U64(s.records);
  j["analytics_rows"] = U64(s.analytics_rows);
  j["analytics_staged"] = U64(s.analytics_staged);
  j["key_epoch"] = U64(s.key_epoch);
  j["keys_file_bytes"] = U64(s.keys_file_bytes);
  j["data_file_bytes"] = U64(s.data_file_bytes);
  j["data_map_bytes"] = U64(s.data_map_bytes);
  Json ops = Json::object();
  for (const OperationStats& o : s.operations) {
    Json op = Json::object();
    op["calls"] = U64(o.calls);
    op["errors"] = U64(o.errors);
    op["total_us"] = U64(o.total_us);
    op["p50_us"] = U64(o.QuantileUpperBoundUs(0.5));
    op["p99_us"] = U64(o.QuantileUpperBoundUs(0.99));
    op["latency_buckets"] = Json(std::vector<std::uint64_t>(o.latency_buckets.begin(), o.latency_buckets.end()));
    ops[o.name] = std::move(op);
  }
  j["operations"] = std::move(ops);
  return j;
}

Json VerifyJson(const VerifyReport& r) {
  Json j = Json::object();
  j["ok"] = r.ok();
  j["pages"] = U64(r.pages);
  j["people"] = U64(r.people);
  j["identifiers"] = U64(r.identifiers);
  j["events"] = U64(r.events);
  j["records"] = U64(r.records);
  j["analytics_rows"] = U64(r.analytics_rows);
  j["audit_entries"] = U64(r.audit_entries);
  j["orphan_keys"] = U64(r.orphan_keys);
  j["problem_count"] = U64(r.problem_count);
  j["problems"] = r.problems;
  return j;
}

std::string Dump(const Json& j, bool pretty) {
  return j.dump(pretty ? 2 : -1, ' ', false, Json::error_handler_t::replace);
}

}  // namespace shredkv::cli
