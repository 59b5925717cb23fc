// Imports a portability export (JSON or NDJSON) as a new person, in one
// WriteBatch: nothing is written unless every item is valid and the batch
// commits.
#include <cstdint>
#include <istream>
#include <map>
#include <optional>
#include <set>
#include <string_view>
#include <utility>

#include "portability/bounded_line.h"
#include "portability/json_values.h"
#include "portability/strict_json.h"
#include "shredkv/portability.h"
#include "shredkv/sharded_store.h"
#include "util/base64.h"

namespace shredkv {
namespace {

using portability::AttributesFromJson;
using portability::Json;

// A signed 64-bit integer from JSON (nlohmann also calls unsigned values
// above INT64_MAX integers; those must not wrap).
bool IsInt64(const Json& j) {
  if (!j.is_number_integer()) return false;
  return !j.is_number_unsigned() || j.get<std::uint64_t>() <= static_cast<std::uint64_t>(INT64_MAX);
}

class Importer {
 public:
  // Applies one item of the given type; `where` names it in errors.
  Status Item(const std::string& type, const Json& j, const std::string& where) {
    auto bad = [&](const std::string& why) { return Status::InvalidArgument(where + ": " + why); };
    if (!j.is_object()) return bad("expected an object");
    if (type == "header") {
      if (!j.contains("format") || j["format"] != "shredkv-export") return bad("not a shredkv export");
      if (!j.contains("version") || !j["version"].is_number_integer() || j["version"] != kExportFormatVersion) {
        return bad("unsupported export version (expected " + std::to_string(kExportFormatVersion) + ")");
      }
      header_ = true;
      return Status::OK();
    }
    if (!header_) return bad("the header must come first");
    if (end_items_) return bad("a line after the end line");
    if (type == "person") {
      if (person_) return bad("a second person");
      if (!j.contains("created") || !IsInt64(j["created"])) return bad("person.created must be integer ms");
      created_ms_ = j["created"].get<std::int64_t>();
      person_ = true;
    } else if (type == "identifier") {
      if (!j.contains("id_type") || !j["id_type"].is_string() || !j.contains("value") || !j["value"].is_string()) {
        return bad("identifier needs string id_type and value");
      }
      identifiers_.push_back({j["id_type"].get<std::string>(), j["value"].get<std::string>()});
    } else if (type == "profile") {
      // One profile, as one person (outside audit 36a, F9: a second one
      // silently replaced the first).
      if (profile_seen_) return bad("a second profile");
      profile_seen_ = true;
      if (!j.contains("attributes")) return bad("profile needs attributes");
      auto a = AttributesFromJson(j["attributes"], where + "/attributes");
      if (!a.ok()) return a.status();
      profile_ = std::move(a).value();
    } else if (type == "event") {
      if (!j.contains("name") || !j["name"].is_string() || !j.contains("ts") || !IsInt64(j["ts"])) {
        return bad("event needs a string name and integer ts");
      }
      Event e;
      e.name = j["name"].get<std::string>();
      e.ts_ms = j["ts"].get<std::int64_t>();
      if (j.contains("properties")) {
        auto a = AttributesFromJson(j["properties"], where + "/properties");
        if (!a.ok()) return a.status();
        e.properties = std::move(a).value();
      }
      if (j.contains("category")) {
        if (!j["category"].is_string()) return bad("event category must be a string");
        e.category = j["category"].get<std::string>();
      }
      if (j.contains("seq")) {
        if (!j["seq"].is_number_unsigned()) return bad("event seq must be a non-negative integer");
        event_by_seq_[j["seq"].get<std::uint64_t>()] = events_.size();
      }
      events_.push_back(std::move(e));
    } else if (type == "record") {
      if (!j.contains("collection") || !j["collection"].is_string() || !j.contains("key") || !j["key"].is_string() ||
          !j.contains("value") || !j["value"].is_string()) {
        return bad("record needs string collection, key (base64) and value (base64)");
      }
      auto key = util::Base64Decode(j["key"].get<std::string>());
      auto value = util::Base64Decode(j["value"].get<std::string>());
      if (!key || !value) return bad("record key and value must be base64");
      std::string category;
      if (j.contains("category")) {
        if (!j["category"].is_string()) return bad("record category must be a string");
        category = j["category"].get<std::string>();
      }
      RecordMetadata metadata;
      if (j.contains("metadata")) {
        if (Status m = portability::RecordMetadataFromJson(j["metadata"], &metadata); !m.ok()) return bad(m.message());
      }
      records_.push_back({j["collection"].get<std::string>(), std::move(*key), std::move(*value), std::move(category),
                          std::move(metadata)});
    } else if (type == "analytics") {
      // Re-derived from events on import; only the declared field names are used.
      if (!j.contains("seq") || !j["seq"].is_number_unsigned() || !j.contains("fields") || !j["fields"].is_object()) {
        return bad("analytics needs seq and fields");
      }
      auto it = event_by_seq_.find(j["seq"].get<std::uint64_t>());
      if (it != event_by_seq_.end()) {
        for (auto f = j["fields"].begin(); f != j["fields"].end(); ++f) {
          events_[it->second].analytics_fields.push_back(f.key());
        }
      }
    } else if (type == "consent") {
      static const std::map<std::string, ConsentRecord::Action> kActions = {
          {"grant", ConsentRecord::Action::kGrant},
          {"withdraw", ConsentRecord::Action::kWithdraw},
          {"restrict", ConsentRecord::Action::kRestrict},
          {"unrestrict", ConsentRecord::Action::kUnrestrict}};
      if (!j.contains("action") || !j["action"].is_string() || kActions.count(j["action"].get<std::string>()) == 0) {
        return bad("consent needs an action grant|withdraw|restrict|unrestrict");
      }
      if (!j.contains("time") || !IsInt64(j["time"])) return bad("consent needs integer time");
      ConsentRecord rec;
      rec.action = kActions.at(j["action"].get<std::string>());
      rec.time_ms = j["time"].get<std::int64_t>();
      auto str = [&](const char* k, std::string* out) {
        if (!j.contains(k)) return true;
        if (!j[k].is_string()) return false;
        *out = j[k].get<std::string>();
        return true;
      };
      auto list = [&](const char* k, std::vector<std::string>* out) {
        if (!j.contains(k)) return true;
        if (!j[k].is_array()) return false;
        for (const auto& x : j[k]) {
          if (!x.is_string()) return false;
          out->push_back(x.get<std::string>());
        }
        return true;
      };
      if (!str("purpose", &rec.purpose) || !str("reason", &rec.restriction.reason) || !str("source", &rec.source) ||
          !list("purposes", &rec.restriction.purposes) || !list("categories", &rec.restriction.categories)) {
        return bad("consent fields have the wrong types");
      }
      if (j.contains("all")) {
        if (!j["all"].is_boolean()) return bad("consent.all must be a bool");
        rec.restriction.all = j["all"].get<bool>();
      }
      consents_.push_back(std::move(rec));
    } else if (type == "end") {
      if (!j.contains("items") || !j["items"].is_number_unsigned()) return bad("end needs an item count");
      end_items_ = j["items"].get<std::uint64_t>();
    } else if (type == "restriction" || type == "notice") {
      // The restriction state follows from the consent history replayed
      // above; notices are store-specific; the end line carries a count.
    } else {
      return bad("unknown item type '" + type + "'");
    }
    return Status::OK();
  }

  // NDJSON: a stream cut short (a failed export) must not import as a partial person.
  Status CheckComplete(std::uint64_t items_seen) const {
    if (!end_items_) return Status::InvalidArgument("the stream has no end line: truncated export");
    if (*end_items_ != items_seen) {
      return Status::InvalidArgument("the end line counts " + std::to_string(*end_items_) + " items but " +
                                     std::to_string(items_seen) + " came");
    }
    return Status::OK();
  }

  // `store`: a Store or a ShardedStore (the person goes to the shard their
  // new ID routes to; the identifiers are checked against every shard).
  template <typename AnyStore>
  Result<ImportResult> Commit(AnyStore& store, const ImportOptions& options) {
    if (!header_) return Status::InvalidArgument("empty input: no export header");
    if (!person_) return Status::InvalidArgument("the export has no person item");
    WriteBatch batch;
    ImportResult result;
    result.person = batch.ImportPerson(identifiers_, profile_, created_ms_);
    for (ConsentRecord& c : consents_) batch.RecordConsent(result.person, std::move(c));
    for (Event& e : events_) batch.ImportEvent(result.person, std::move(e), options.analytics);
    result.events = events_.size();
    // What the person holds: an identifier or record listed twice is stored
    // once (the fuzz_ndjson campaign found the counts of a duplicate-laden
    // export differing from those of its own re-export).
    std::set<std::pair<std::string_view, std::string_view>> distinct_records;
    for (const Record& r : records_) distinct_records.emplace(r.collection, r.key);
    result.records = distinct_records.size();
    for (Record& r : records_) {  // after the count: the views above name these strings
      batch.Put(result.person, std::move(r));
    }
    if (Status s = store.Write(batch); !s.ok()) return s.WithContext("importing");
    // Identifiers are counted after the store normalised them (an email
    // listed in two spellings is one identifier).
    auto info = store.GetPerson(result.person);
    if (!info.ok()) return info.status().WithContext("reading the imported person");
    result.identifiers = info->identifiers.size();
    return result;
  }

 private:
  bool header_ = false;
  bool person_ = false;
  bool profile_seen_ = false;
  std::int64_t created_ms_ = 0;
  std::vector<Identifier> identifiers_;
  Attributes profile_;
  std::vector<Event> events_;
  std::map<std::uint64_t, std::size_t> event_by_seq_;
  std::vector<Record> records_;
  std::vector<ConsentRecord> consents_;
  std::optional<std::uint64_t> end_items_;
};

template <typename AnyStore>
Result<ImportResult> ImportNdjson(AnyStore& store, std::istream& in, const ImportOptions& options) {
  Importer importer;
  std::string line;
  std::uint64_t number = 0, items = 0;
  bool too_long = false;
  // An import is all or nothing: an overlong line ends it, unread.
  while (portability::ReadBoundedLine(in, &line, portability::kMaxLineBytes, &too_long,
                                      portability::OverlongLine::kStop)) {
    ++number;
    if (too_long) return Status::InvalidArgument("line " + std::to_string(number) + ": longer than 32 MiB");
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = "line " + std::to_string(number);
    Json j;
    std::string error;
    if (!portability::StrictParse(line, &j, &error)) return Status::InvalidArgument(where + ": " + error);
    if (!j.is_object() || !j.contains("type") || !j["type"].is_string()) {
      return Status::InvalidArgument(where + ": expected an object with a string \"type\"");
    }
    const std::string type = j["type"].get<std::string>();
    if (Status s = importer.Item(type, j, where); !s.ok()) return s;
    if (type != "header" && type != "end") ++items;
  }
  if (in.bad()) return Status::IOError("reading the import failed");
  if (Status c = importer.CheckComplete(items); !c.ok()) return c;
  return importer.Commit(store, options);
}

template <typename AnyStore>
Result<ImportResult> ImportJson(AnyStore& store, std::istream& in, const ImportOptions& options) {
  Json doc;
  std::string error;
  if (!portability::StrictParse(in, &doc, &error)) return Status::InvalidArgument("the import is not a valid JSON document: " + error);
  if (!doc.is_object()) return Status::InvalidArgument("/: expected an object");
  Importer importer;
  if (Status s = importer.Item("header", doc, "/"); !s.ok()) return s;
  if (!doc.contains("person") || doc["person"].is_null()) return Status::InvalidArgument("/person: missing");
  if (Status s = importer.Item("person", doc["person"], "/person"); !s.ok()) return s;
  if (doc.contains("profile") && !doc["profile"].is_null()) {
    if (Status s = importer.Item("profile", doc["profile"], "/profile"); !s.ok()) return s;
  }
  for (const char* section : {"identifiers", "consents", "events", "records", "analytics"}) {
    if (!doc.contains(section)) continue;
    const Json& arr = doc[section];
    if (!arr.is_array()) return Status::InvalidArgument(std::string("/") + section + ": expected an array");
    const std::string type = std::string(section) == "identifiers" ? "identifier"
                             : std::string(section) == "consents"  ? "consent"
                             : std::string(section) == "events"    ? "event"
                             : std::string(section) == "records"   ? "record"
                                                                   : "analytics";
    for (std::size_t i = 0; i < arr.size(); ++i) {
      if (Status s = importer.Item(type, arr[i], std::string("/") + section + "/" + std::to_string(i)); !s.ok()) {
        return s;
      }
    }
  }
  return importer.Commit(store, options);
}

template <typename AnyStore>
Result<ImportResult> Import(AnyStore& store, std::istream& in, ExportFormat format, const ImportOptions& options) {
  try {  // no exception crosses the API
    return format == ExportFormat::kNdjson ? ImportNdjson(store, in, options) : ImportJson(store, in, options);
  } catch (const std::exception& e) {
    return Status::InvalidArgument(std::string("malformed import: ") + e.what());
  }
}

}  // namespace

Result<ImportResult> ImportPerson(Store& store, std::istream& in, ExportFormat format) {
  return Import(store, in, format, ImportOptions{});
}

Result<ImportResult> ImportPerson(Store& store, std::istream& in, ExportFormat format, const ImportOptions& options) {
  return Import(store, in, format, options);
}

Result<ImportResult> ImportPerson(ShardedStore& store, std::istream& in, ExportFormat format,
                                  const ImportOptions& options) {
  return Import(store, in, format, options);
}

}  // namespace shredkv
