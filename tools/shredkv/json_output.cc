#include "json_output.h"

#include <cmath>
#include <cstdint>
#include <limits>

namespace shredkv::cli {
namespace {

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int Base64Index(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

bool IsValidUtf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    std::size_t n = 0;
    std::uint32_t cp = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      n = 1;
      cp = c & 0x1Fu;
    } else if ((c & 0xF0) == 0xE0) {
      n = 2;
      cp = c & 0x0Fu;
    } else if ((c & 0xF8) == 0xF0) {
      n = 3;
      cp = c & 0x07u;
    } else {
      return false;
    }
    if (i + n >= s.size()) return false;  // truncated sequence
    for (std::size_t k = 1; k <= n; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3Fu);
    }
    if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF)) {
      return false;
    }
    i += n + 1;
  }
  return true;
}

Json U64(std::uint64_t v) { return Json(v); }

}  // namespace

std::string Base64Encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  auto byte = [&](std::size_t k) { return static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[k])); };
  for (; i + 3 <= bytes.size(); i += 3) {
    const std::uint32_t v = (byte(i) << 16) | (byte(i + 1) << 8) | byte(i + 2);
    out.push_back(kAlphabet[(v >> 18) & 63]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
    out.push_back(kAlphabet[(v >> 6) & 63]);
    out.push_back(kAlphabet[v & 63]);
  }
  if (const std::size_t rest = bytes.size() - i; rest > 0) {
    std::uint32_t v = byte(i) << 16;
    if (rest == 2) v |= byte(i + 1) << 8;
    out.push_back(kAlphabet[(v >> 18) & 63]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
    out.push_back(rest == 2 ? kAlphabet[(v >> 6) & 63] : '=');
    out.push_back('=');
  }
  return out;
}

std::optional<std::string> Base64Decode(std::string_view text) {
  if (text.size() % 4 != 0) return std::nullopt;
  std::string out;
  out.reserve(text.size() / 4 * 3);
  for (std::size_t i = 0; i < text.size(); i += 4) {
    std::uint32_t v = 0;
    int pad = 0;
    for (std::size_t j = 0; j < 4; ++j) {
      const char c = text[i + j];
      int idx = 0;
      if (c == '=' && i + 4 == text.size() && j >= 2) {
        ++pad;
      } else {
        if (pad > 0) return std::nullopt;
        idx = Base64Index(c);
        if (idx < 0) return std::nullopt;
      }
      v = (v << 6) | static_cast<std::uint32_t>(idx);
    }
    out.push_back(static_cast<char>((v >> 16) & 0xFF));
    if (pad < 2) out.push_back(static_cast<char>((v >> 8) & 0xFF));
    if (pad < 1) out.push_back(static_cast<char>(v & 0xFF));
  }
  return out;
}

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
  // The typed form of the export.
  if (j.size() == 1 && j.contains("string") && j["string"].is_string()) return Value(j["string"].get<std::string>());
  if (j.size() == 1 && j.contains("string_base64") && j["string_base64"].is_string()) {
    auto raw = Base64Decode(j["string_base64"].get<std::string>());
    if (!raw) return bad("string_base64 is not valid base64");
    return Value(std::move(*raw));
  }
  if (j.size() == 1 && j.contains("int64") && j["int64"].is_number_integer()) {
    if (j["int64"].is_number_unsigned() &&
        j["int64"].get<std::uint64_t>() > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
      return bad("int64 out of range");
    }
    return Value(j["int64"].get<std::int64_t>());
  }
  if (j.size() == 1 && j.contains("double")) {
    const Json& d = j["double"];
    if (d.is_number()) return Value(d.get<double>());
    if (d == "NaN") return Value(std::numeric_limits<double>::quiet_NaN());
    if (d == "Infinity") return Value(std::numeric_limits<double>::infinity());
    if (d == "-Infinity") return Value(-std::numeric_limits<double>::infinity());
    return bad("malformed double");
  }
  if (j.size() == 1 && j.contains("bool") && j["bool"].is_boolean()) return Value(j["bool"].get<bool>());
  if (j.contains("timestamp") && j["timestamp"].is_number_integer() &&
      (j.size() == 1 || (j.size() == 2 && j.contains("iso")))) {
    if (j["timestamp"].is_number_unsigned() &&
        j["timestamp"].get<std::uint64_t>() > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
      return bad("timestamp out of range");
    }
    return Value(Timestamp{j["timestamp"].get<std::int64_t>()});
  }
  if (j.size() == 1 && j.contains("bytes") && j["bytes"].is_string()) {
    auto raw = Base64Decode(j["bytes"].get<std::string>());
    if (!raw) return bad("bytes is not valid base64");
    return Value::Bytes(std::move(*raw));
  }
  return bad(
      "an object value must be one of {\"string\"|\"int64\"|\"double\"|\"bool\"|\"timestamp\"|\"bytes\"|"
      "\"string_base64\": ...}");
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
  j["people"] = U64(s.people);
  j["erased"] = U64(s.erased);
  j["suppressed"] = U64(s.suppressed);
  j["pending_purge"] = U64(s.pending_purge);
  j["erasures_since_rotation"] = U64(s.erasures_since_rotation);
  j["suppressed_rejections"] = U64(s.suppressed_rejections);
  j["restricted"] = U64(s.restricted);
  j["tracking_rejected"] = U64(s.tracking_rejected);
  j["tracking_dropped"] = U64(s.tracking_dropped);
  j["oldest_key_epoch"] = U64(s.oldest_key_epoch);
  j["identifiers"] = U64(s.identifiers);
  j["events"] = U64(s.events);
  j["records"] = U64(s.records);
  j["analytics_rows"] = U64(s.analytics_rows);
  j["key_epoch"] = U64(s.key_epoch);
  j["keys_file_bytes"] = U64(s.keys_file_bytes);
  j["data_file_bytes"] = U64(s.data_file_bytes);
  j["data_map_bytes"] = U64(s.data_map_bytes);
  return j;
}

Json VerifyJson(const VerifyReport& r) {
  Json j = Json::object();
  j["ok"] = r.ok();
  j["people"] = U64(r.people);
  j["identifiers"] = U64(r.identifiers);
  j["events"] = U64(r.events);
  j["records"] = U64(r.records);
  j["analytics_rows"] = U64(r.analytics_rows);
  j["audit_entries"] = U64(r.audit_entries);
  j["problem_count"] = U64(r.problem_count);
  j["problems"] = r.problems;
  return j;
}

std::string Dump(const Json& j, bool pretty) {
  return j.dump(pretty ? 2 : -1, ' ', false, Json::error_handler_t::replace);
}

}  // namespace shredkv::cli
