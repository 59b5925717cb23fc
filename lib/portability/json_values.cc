#include "portability/json_values.h"

#include <cmath>
#include <ctime>
#include <limits>

#include "util/base64.h"

namespace shredkv::portability {

std::string IsoTime(std::int64_t ms) {
  std::int64_t secs = ms / 1000;
  std::int64_t rem = ms % 1000;
  if (rem < 0) {
    rem += 1000;
    --secs;
  }
  const auto t = static_cast<std::time_t>(secs);
  std::tm tm{};
  if (gmtime_r(&t, &tm) == nullptr || tm.tm_year + 1900 < 0 || tm.tm_year + 1900 > 9999) return "";
  // Room for any int the format could print (GCC 12 at -O0 checks the
  // widths of ints, not the range tested above: -Wformat-truncation).
  char buf[80];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(rem));
  return buf;
}

Json ValueToJson(const Value& v) {
  Json j = Json::object();
  switch (v.type()) {
    case Value::Type::kString:
      if (util::IsValidUtf8(v.as_string())) {
        j["string"] = v.as_string();
      } else {  // JSON strings are UTF-8: keep other bytes exact
        j["string_base64"] = util::Base64Encode(v.as_string());
      }
      break;
    case Value::Type::kInt64: j["int64"] = v.as_int64(); break;
    case Value::Type::kDouble: {
      const double d = v.as_double();
      if (std::isnan(d)) {
        j["double"] = "NaN";
      } else if (std::isinf(d)) {
        j["double"] = d > 0 ? "Infinity" : "-Infinity";
      } else {
        j["double"] = d;
      }
      break;
    }
    case Value::Type::kBool: j["bool"] = v.as_bool(); break;
    case Value::Type::kTimestamp:
      j["timestamp"] = v.as_timestamp().ms;
      j["iso"] = IsoTime(v.as_timestamp().ms);
      break;
    case Value::Type::kBytes: j["bytes"] = util::Base64Encode(v.as_bytes()); break;
  }
  return j;
}

Json AttributesToJson(const Attributes& a) {
  Json j = Json::object();
  for (const auto& [name, value] : a) j[name] = ValueToJson(value);
  return j;
}

Result<Value> ValueFromJson(const Json& j, const std::string& path) {
  auto bad = [&](const std::string& why) { return Status::InvalidArgument(path + ": " + why); };
  if (!j.is_object() || j.empty()) return bad("a value must be an object like {\"string\": \"...\"}");
  if (j.contains("string")) {
    if (j.size() != 1 || !j["string"].is_string()) return bad("malformed string value");
    return Value(j["string"].get<std::string>());
  }
  if (j.contains("string_base64")) {
    if (j.size() != 1 || !j["string_base64"].is_string()) return bad("malformed string_base64 value");
    auto raw = util::Base64Decode(j["string_base64"].get<std::string>());
    if (!raw) return bad("string_base64 value is not valid base64");
    return Value(std::move(*raw));
  }
  if (j.contains("int64")) {
    const Json& n = j["int64"];
    if (j.size() != 1 || !(n.is_number_integer())) return bad("malformed int64 value");
    if (n.is_number_unsigned() && n.get<std::uint64_t>() > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
      return bad("int64 value out of range");
    }
    return Value(n.get<std::int64_t>());
  }
  if (j.contains("double")) {
    const Json& d = j["double"];
    if (j.size() != 1) return bad("malformed double value");
    if (d.is_number()) return Value(d.get<double>());
    if (d == "NaN") return Value(std::numeric_limits<double>::quiet_NaN());
    if (d == "Infinity") return Value(std::numeric_limits<double>::infinity());
    if (d == "-Infinity") return Value(-std::numeric_limits<double>::infinity());
    return bad("malformed double value");
  }
  if (j.contains("bool")) {
    if (j.size() != 1 || !j["bool"].is_boolean()) return bad("malformed bool value");
    return Value(j["bool"].get<bool>());
  }
  if (j.contains("timestamp")) {
    const Json& t = j["timestamp"];
    const bool in_range = t.is_number_integer() && (!t.is_number_unsigned() ||
                                                    t.get<std::uint64_t>() <= static_cast<std::uint64_t>(INT64_MAX));
    if (!in_range || j.size() > 2 || (j.size() == 2 && !j.contains("iso"))) {
      return bad("malformed timestamp value (integer ms, optional iso)");
    }
    return Value(Timestamp{j["timestamp"].get<std::int64_t>()});
  }
  if (j.contains("bytes")) {
    if (j.size() != 1 || !j["bytes"].is_string()) return bad("malformed bytes value");
    auto raw = util::Base64Decode(j["bytes"].get<std::string>());
    if (!raw) return bad("bytes value is not valid base64");
    return Value::Bytes(std::move(*raw));
  }
  return bad("unknown value type");
}

Result<Attributes> AttributesFromJson(const Json& j, const std::string& path) {
  if (!j.is_object()) return Status::InvalidArgument(path + ": expected an object of attributes");
  Attributes out;
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (it.key().empty() || it.key().size() > 255) {
      return Status::InvalidArgument(path + ": attribute names must be 1..255 bytes");
    }
    auto v = ValueFromJson(it.value(), path + "/" + it.key());
    if (!v.ok()) return v.status();
    out.insert_or_assign(it.key(), std::move(v).value());
  }
  return out;
}

Json RecordMetadataToJson(const RecordMetadata& m) {
  Json meta = Json::object();
  if (!m.purposes.empty()) meta["purposes"] = m.purposes;
  if (!m.origin.empty()) meta["origin"] = m.origin;
  if (!m.shared_with.empty()) meta["shared_with"] = m.shared_with;
  if (m.automated_decision) meta["automated_decision"] = true;
  if (m.expires_ms != 0) meta["expires_ms"] = m.expires_ms;
  return meta;
}

Status RecordMetadataFromJson(const Json& j, RecordMetadata* out) {
  if (!j.is_object()) return Status::InvalidArgument("record metadata must be an object");
  auto names = [](const Json& list, const char* what, std::vector<std::string>* to) -> Status {
    if (!list.is_array()) return Status::InvalidArgument(std::string("record metadata ") + what + " must be an array");
    for (const Json& n : list) {
      if (!n.is_string()) return Status::InvalidArgument(std::string("record metadata ") + what + " must hold strings");
      to->push_back(n.get<std::string>());
    }
    return Status::OK();
  };
  for (const auto& [key, value] : j.items()) {
    Status s;
    if (key == "purposes") {
      s = names(value, "purposes", &out->purposes);
    } else if (key == "shared_with") {
      s = names(value, "shared_with", &out->shared_with);
    } else if (key == "origin") {
      if (!value.is_string()) return Status::InvalidArgument("record metadata origin must be a string");
      out->origin = value.get<std::string>();
    } else if (key == "automated_decision") {
      if (!value.is_boolean()) return Status::InvalidArgument("record metadata automated_decision must be a boolean");
      out->automated_decision = value.get<bool>();
    } else if (key == "expires_ms") {
      if (!value.is_number_integer() || (value.is_number_unsigned() && value.get<std::uint64_t>() > INT64_MAX)) {
        return Status::InvalidArgument("record metadata expires_ms must be an integer (ms since the epoch)");
      }
      out->expires_ms = value.get<std::int64_t>();
    } else {
      return Status::InvalidArgument("record metadata has an unknown key '" + key + "'");
    }
    if (!s.ok()) return s;
  }
  return Status::OK();
}

}  // namespace shredkv::portability

namespace shredkv {

std::string Base64Encode(std::string_view bytes) { return util::Base64Encode(bytes); }
std::optional<std::string> Base64Decode(std::string_view text) { return util::Base64Decode(text); }
bool IsValidUtf8(std::string_view text) { return util::IsValidUtf8(text); }

}  // namespace shredkv
