// shredkv ingest: NDJSON operations, one a line, applied in atomic batches
// of up to 1000 lines. A batch that fails is split in halves until the bad
// lines are found; they are reported on stderr with their line number and
// skipped, the rest is ingested.
//
//   {"op":"profile","ids":{"email":"a@x.org"},"attrs":{"name":"Ann","city":null}}
//   {"op":"event","ids":{...},"name":"purchase","ts":1700000000123,"props":{...},"analytics":["amount"]}
//   {"op":"put","ids":{...},"collection":"orders","key":"42","value":"..."}
//
// Each operation names its person by identifiers: if none of them is known
// the person is created with all of them; if the known ones agree on one
// person the unknown ones are linked to that person; if they name different
// people the line is rejected.
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <set>

#include "cli.h"
#include "json_output.h"
#include "progress.h"

namespace shredkv::cli {
namespace {

constexpr std::size_t kBatchLines = 1000;

enum class OpKind { kProfile, kEvent, kPut };

struct Line {
  std::size_t number = 0;
  OpKind kind = OpKind::kProfile;
  std::vector<Identifier> ids;  // normalised, without duplicates
  ProfilePatch patch;           // profile: set and unset (null) attributes
  Event event;
  std::string collection, key, value;
};

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

Result<Line> ParseLine(const std::string& text, std::size_t number) {
  Json j = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Bad("not valid JSON");
  if (!j.is_object()) return Bad("a line must be a JSON object");
  Line line;
  line.number = number;
  if (!j.contains("op") || !j["op"].is_string()) return Bad("missing \"op\" (profile, event or put)");
  const std::string op = j["op"].get<std::string>();
  if (op == "profile") {
    line.kind = OpKind::kProfile;
  } else if (op == "event") {
    line.kind = OpKind::kEvent;
  } else if (op == "put") {
    line.kind = OpKind::kPut;
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
    case OpKind::kProfile: {
      if (j.contains("attrs") && !j["attrs"].is_null()) {
        auto set = ParseProperties(j["attrs"], "attrs", &line.patch.unset);
        if (!set.ok()) return set.status();
        line.patch.set = std::move(set).value();
      }
      break;
    }
    case OpKind::kEvent: {
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
        line.event.ts_ms = NowMs();
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
    case OpKind::kPut: {
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
      break;
    }
  }
  return line;
}

bool IsFatal(const Status& s) {
  switch (s.code()) {
    case StatusCode::kCorruption:
    case StatusCode::kAuthenticationFailed:
    case StatusCode::kWrongKey:
    case StatusCode::kIOError:
    case StatusCode::kStoreFull:
    case StatusCode::kFailedPrecondition:
    case StatusCode::kInternal: return true;
    default: return false;
  }
}

class Ingester {
 public:
  explicit Ingester(Store* store) : store_(store) {}

  void Reject(std::size_t number, const Status& s) {
    if (s.IsSuppressed()) {
      ++suppressed_;
    } else if (s.IsRestricted()) {
      ++restricted_;
    } else {
      ++rejected_;
    }
    std::string msg = s.ToString();
    for (char& c : msg) {
      if (c == '\n' || c == '\r') c = ' ';
    }
    ClearProgressLine();
    std::cerr << "shredkv: ingest: line " << number << ": " << msg << "\n";
  }

  // Applies lines (in order) in one batch; on failure halves until the bad
  // lines are found.
  void Apply(const std::vector<const Line*>& lines) {
    if (lines.empty()) return;
    WriteBatch batch;
    std::map<Identifier, PersonId> local;  // identifiers given a person in this batch
    std::vector<const Line*> planned;
    for (const Line* l : lines) {
      if (Status s = Plan(*l, batch, local); !s.ok()) {
        if (IsFatal(s)) throw Fatal(s);
        Reject(l->number, s);
      } else {
        planned.push_back(l);
      }
    }
    const Status s = store_->Write(batch);
    if (s.ok()) {
      ingested_ += planned.size();
      return;
    }
    if (IsFatal(s)) throw Fatal(s);
    if (planned.size() == 1) {
      Reject(planned.front()->number, s);
      return;
    }
    const auto half = static_cast<std::ptrdiff_t>(planned.size() / 2);
    Apply(std::vector<const Line*>(planned.begin(), planned.begin() + half));
    Apply(std::vector<const Line*>(planned.begin() + half, planned.end()));
  }

  Json Summary() const {
    return Json{{"ingested", ingested_}, {"rejected", rejected_}, {"suppressed", suppressed_},
                {"restricted", restricted_}};
  }

  struct FatalError {
    Status status;
  };

 private:
  static FatalError Fatal(const Status& s) { return FatalError{s}; }

  // Queues the line's operations on `batch`; nothing is queued on error.
  Status Plan(const Line& l, WriteBatch& batch, std::map<Identifier, PersonId>& local) {
    std::optional<PersonId> who;
    std::vector<Identifier> unknown;
    for (const Identifier& id : l.ids) {
      PersonId owner;
      if (auto it = local.find(id); it != local.end()) {
        owner = it->second;
      } else {
        Result<PersonId> r = store_->Resolve(id);
        // An identifier of an erased person is free: a new person takes it.
        if (r.status().IsNotFound() || r.status().IsErased()) {
          unknown.push_back(id);
          continue;
        }
        if (!r.ok()) return r.status().WithContext(id.type);
        owner = *r;
      }
      if (who && *who != owner) return Status::InvalidArgument("the identifiers belong to different people");
      who = owner;
    }
    PersonId person;
    if (!who) {
      Attributes initial = l.kind == OpKind::kProfile ? l.patch.set : Attributes{};
      person = batch.CreatePerson(l.ids, std::move(initial));
      for (const Identifier& id : l.ids) local[id] = person;
    } else {
      person = *who;
      for (const Identifier& id : unknown) {
        batch.LinkIdentifier(person, id);
        local[id] = person;
      }
      if (l.kind == OpKind::kProfile && (!l.patch.set.empty() || !l.patch.unset.empty())) {
        batch.PatchProfile(person, l.patch);
      }
    }
    if (l.kind == OpKind::kEvent) batch.AppendEvent(person, l.event);
    if (l.kind == OpKind::kPut) batch.Put(person, l.collection, l.key, l.value);
    return Status::OK();
  }

  Store* store_;
  std::uint64_t ingested_ = 0;
  std::uint64_t rejected_ = 0;
  std::uint64_t suppressed_ = 0;
  std::uint64_t restricted_ = 0;
};

}  // namespace

int CmdIngest(const GlobalOptions& global, const ParsedArgs& args) {
  InputFile input = OpenInput(args, "ingest");
  std::istream* in = input.stream;
  const std::uint64_t total = input.size;
  auto store = OpenStore(global, false);
  Ingester ingester(store.get());
  ProgressBar progress("ingest", total, "bytes", "lines");

  std::vector<Line> chunk;
  chunk.reserve(kBatchLines);
  std::uint64_t bytes = 0;
  std::size_t number = 0;
  auto flush = [&] {
    std::vector<const Line*> ptrs;
    ptrs.reserve(chunk.size());
    for (const Line& l : chunk) ptrs.push_back(&l);
    ingester.Apply(ptrs);
    chunk.clear();
    progress.Update(bytes, number);
  };
  try {
    std::string text;
    while (std::getline(*in, text)) {
      ++number;
      bytes += text.size() + 1;
      if (text.find_first_not_of(" \t\r") == std::string::npos) continue;  // blank line
      Result<Line> line = ParseLine(text, number);
      if (!line.ok()) {
        ingester.Reject(number, line.status());
        continue;
      }
      chunk.push_back(std::move(line).value());
      if (chunk.size() >= kBatchLines) flush();
    }
    if (in->bad()) throw CliError(kExitError, "ingest: cannot read '" + input.name + "'");
    flush();
  } catch (const Ingester::FatalError& e) {
    progress.Finish();
    PrintLine(Dump(ingester.Summary(), global.pretty));
    FlushStdout();
    Fail(e.status, "ingest: line " + std::to_string(number) + " (batch ending here)");
  }
  progress.Finish();
  PrintLine(Dump(ingester.Summary(), global.pretty));
  return 0;
}

}  // namespace shredkv::cli
