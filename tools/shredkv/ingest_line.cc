#include "ingest_line.h"

#include <set>

#include "json_output.h"
#include "portability/json_values.h"
#include "portability/strict_json.h"

namespace shredkv::cli {
namespace {

Status Bad(const std::string& why) { return Status::InvalidArgument(why); }

Result<Attributes> ParseProperties(const Json& j, const std::string& where, std::vector<std::string>* nulls) {
  if (!j.is_object()) return Bad(where + " must be an object");
  Attributes out;
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (it.key().empty() || it.key().size() > 255) return Bad(where + ": names must be 1..255 bytes");
    if (it.value().is_null()) {
      if (nulls != nullptr) nulls->push_back(it.key());
      continue;
    }
    auto v = ValueFromJson(it.value(), where + "." + it.key());
    if (!v.ok()) return v.status();
    out.insert_or_assign(it.key(), std::move(v).value());
  }
  return out;
}

Result<std::string> RequireString(const Json& j, const char* field) {
  if (!j.contains(field)) return Bad(std::string("missing \"") + field + "\"");
  if (!j[field].is_string()) return Bad(std::string("\"") + field + "\" must be a string");
  std::string s = j[field].get<std::string>();
  if (s.empty()) return Bad(std::string("\"") + field + "\" must not be empty");
  return s;
}

}  // namespace

Result<IngestLine> ParseIngestLine(const std::string& text, std::size_t number,
                                   std::int64_t (*now_ms)()) {
  Json j;
  std::string error;
  if (!portability::StrictParse(text, &j, &error)) return Bad(error);
  if (!j.is_object()) return Bad("a line must be a JSON object");
  IngestLine line;
  line.number = number;
  if (!j.contains("op") || !j["op"].is_string()) return Bad("missing \"op\" (profile, event or put)");
  const std::string op = j["op"].get<std::string>();
  if (op == "profile") {
    line.kind = IngestOp::kProfile;
  } else if (op == "event") {
    line.kind = IngestOp::kEvent;
  } else if (op == "put") {
    line.kind = IngestOp::kPut;
  } else {
    return Bad("unknown op \"" + op + "\" (profile, event or put)");
  }

  // ids: {"type": "value"} or {"type": ["value", ...]}
  if (!j.contains("ids") || !j["ids"].is_object() || j["ids"].empty()) {
    return Bad("\"ids\" must be a non-empty object of identifiers, e.g. {\"email\":\"a@x.org\"}");
  }
  std::set<Identifier> seen;
  for (auto it = j["ids"].begin(); it != j["ids"].end(); ++it) {
    std::vector<std::string> values;
    if (it.value().is_string()) {
      values.push_back(it.value().get<std::string>());
    } else if (it.value().is_array() && !it.value().empty()) {
      for (const Json& v : it.value()) {
        if (!v.is_string()) return Bad("ids." + it.key() + " must be a string or an array of strings");
        values.push_back(v.get<std::string>());
      }
    } else {
      return Bad("ids." + it.key() + " must be a string or an array of strings");
    }
    for (std::string& v : values) {
      auto n = NormalizeIdentifier(Identifier{it.key(), std::move(v)});
      if (!n.ok()) return n.status().WithContext("ids." + it.key());
      if (seen.insert(*n).second) line.ids.push_back(std::move(n).value());
    }
  }

  switch (line.kind) {
    case IngestOp::kProfile: {
      if (j.contains("attrs") && !j["attrs"].is_null()) {
        auto set = ParseProperties(j["attrs"], "attrs", &line.patch.unset);
        if (!set.ok()) return set.status();
        line.patch.set = std::move(set).value();
      }
      break;
    }
    case IngestOp::kEvent: {
      auto name = RequireString(j, "name");
      if (!name.ok()) return name.status();
      line.event.name = std::move(name).value();
      if (j.contains("ts") && !j["ts"].is_null()) {
        const Json& ts = j["ts"];
        if (!ts.is_number_integer() || (ts.is_number_unsigned() && ts.get<std::uint64_t>() > static_cast<std::uint64_t>(INT64_MAX))) {
          return Bad("\"ts\" must be an integer (ms since the epoch)");
        }
        line.event.ts_ms = ts.get<std::int64_t>();
      } else {
        line.event.ts_ms = now_ms();
      }
      if (j.contains("props") && !j["props"].is_null()) {
        auto props = ParseProperties(j["props"], "props", nullptr);
        if (!props.ok()) return props.status();
        line.event.properties = std::move(props).value();
      }
      if (j.contains("analytics") && !j["analytics"].is_null()) {
        if (!j["analytics"].is_array()) return Bad("\"analytics\" must be an array of property names");
        for (const Json& f : j["analytics"]) {
          if (!f.is_string()) return Bad("\"analytics\" must be an array of property names");
          const std::string field = f.get<std::string>();
          if (line.event.properties.count(field) == 0) {
            return Bad("analytics field \"" + field + "\" is not a property of the event");
          }
          line.event.analytics_fields.push_back(field);
        }
      }
      if (j.contains("category") && !j["category"].is_null()) {
        if (!j["category"].is_string()) return Bad("\"category\" must be a string");
        line.event.category = j["category"].get<std::string>();
      }
      break;
    }
    case IngestOp::kPut: {
      auto collection = RequireString(j, "collection");
      if (!collection.ok()) return collection.status();
      line.collection = std::move(collection).value();
      if (!j.contains("key")) return Bad("missing \"key\"");
      if (j["key"].is_string()) {
        line.key = j["key"].get<std::string>();
      } else if (j["key"].is_number_integer()) {
        line.key = j["key"].dump();
      } else {
        return Bad("\"key\" must be a string");
      }
      if (line.key.empty()) return Bad("\"key\" must not be empty");
      if (!j.contains("value") || j["value"].is_null()) return Bad("missing \"value\"");
      // A string is stored as is; any other JSON value as its JSON text.
      line.value = j["value"].is_string() ? j["value"].get<std::string>() : Dump(j["value"]);
      if (j.contains("metadata")) {
        if (Status m = portability::RecordMetadataFromJson(j["metadata"], &line.metadata); !m.ok()) return m;
      }
      break;
    }
  }
  return line;
}

}  // namespace shredkv::cli
