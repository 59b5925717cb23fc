// The erasure log as NDJSON (include/shredkv/portability.h, docs/backup.md).
#include <istream>
#include <ostream>
#include <stdexcept>

#include "portability/json_values.h"
#include "shredkv/portability.h"
#include "util/coding.h"

namespace shredkv {
namespace {

using portability::Json;

constexpr int kErasureLogVersion = 1;

std::string_view ModeName(AnalyticsOnErase mode) { return AnalyticsOnEraseName(mode); }

Result<AnalyticsOnErase> ModeFromName(const std::string& name) {
  for (AnalyticsOnErase m : {AnalyticsOnErase::kKeep, AnalyticsOnErase::kUnlink, AnalyticsOnErase::kDelete}) {
    if (AnalyticsOnEraseName(m) == name) return m;
  }
  return Status::InvalidArgument("unknown analytics mode '" + name + "'");
}

// The integer field `key` of `j`: a JSON integer in int64 range (a float,
// a string or a larger number is a malformed line, never converted).
std::int64_t Int64Field(const Json& j, const char* key) {
  const Json& v = j.at(key);
  if (!v.is_number_integer() || (v.is_number_unsigned() && v.get<std::uint64_t>() > INT64_MAX)) {
    throw std::invalid_argument(std::string("'") + key + "' is not a 64-bit integer");
  }
  return v.get<std::int64_t>();
}

std::uint64_t CountField(const Json& j, const char* key) {
  const std::int64_t v = Int64Field(j, key);
  if (v < 0) throw std::invalid_argument(std::string("'") + key + "' is negative");
  return static_cast<std::uint64_t>(v);
}

}  // namespace

Status WriteErasureLog(const ErasureLog& log, std::ostream& out) {
  Json header{{"shredkv_erasure_log", kErasureLogVersion}, {"store_id", log.store_id}};
  if (log.read_at_ms != 0) header["read_at_ms"] = log.read_at_ms;
  if (log.position.known()) {  // since stop 39
    header["position"] = Json{{"generation", log.position.generation}, {"commit", log.position.commit}};
  }
  out << header.dump() << "\n";
  for (const ErasedPersonEntry& e : log.people) {
    out << Json{{"kind", "person"},
                {"person", e.person.ToHex()},
                {"request_id", e.request_id},
                {"erased_at_ms", e.erased_at_ms},
                {"analytics", ModeName(e.analytics)}}
               .dump()
        << "\n";
  }
  for (const ErasedCategoryEntry& e : log.categories) {
    out << Json{{"kind", "category"},
                {"person", e.person.ToHex()},
                {"category", e.category},
                {"request_id", e.request_id},
                {"erased_at_ms", e.erased_at_ms},
                {"analytics", ModeName(e.analytics)}}
               .dump()
        << "\n";
  }
  for (const SuppressedEntry& e : log.suppressed) {
    out << Json{{"kind", "suppressed"},
                {"identifier_hash", util::HexEncode(e.identifier_hash)},
                {"request_id", e.request_id},
                {"suppressed_at_ms", e.suppressed_at_ms}}
               .dump()
        << "\n";
  }
  // The last line counts the entries: a log cut short (a full disk, a
  // killed writer) is refused, not read as a shorter list of erasures.
  // And carries the store's tag over the whole log (stop 37): a restore
  // refuses a log with an entry deleted or a time moved.
  Json end{{"end", true},
           {"people", log.people.size()},
           {"categories", log.categories.size()},
           {"suppressed", log.suppressed.size()}};
  if (!log.tag.empty()) end["tag"] = util::HexEncode(log.tag);
  out << end.dump() << "\n";
  out.flush();
  if (!out) return Status::IOError("writing the erasure log failed");
  return Status::OK();
}

Result<ErasureLog> ReadErasureLog(std::istream& in) {
  ErasureLog log;
  std::string line;
  std::size_t number = 0;
  bool header = false;
  bool ended = false;
  while (std::getline(in, line)) {
    ++number;
    if (line.empty()) continue;
    const std::string where = "erasure log line " + std::to_string(number);
    if (ended) return Status::InvalidArgument(where + ": a line after the end line");
    Json j = Json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object()) return Status::InvalidArgument(where + ": not a JSON object");
    try {
      if (!header) {
        if (!j.contains("shredkv_erasure_log") || Int64Field(j, "shredkv_erasure_log") != kErasureLogVersion) {
          return Status::InvalidArgument(where + ": not a shredkv erasure log (version 1) header");
        }
        log.store_id = j.at("store_id").get<std::string>();
        if (log.store_id.size() != 32 || !util::HexDecode(log.store_id)) {
          return Status::InvalidArgument(where + ": store_id is not 32 hex digits");
        }
        if (j.contains("read_at_ms")) log.read_at_ms = Int64Field(j, "read_at_ms");  // absent before stop 35
        if (j.contains("position")) {  // absent before stop 39
          const Json& p = j.at("position");
          if (!p.is_object()) return Status::InvalidArgument(where + ": position is not an object");
          log.position.generation = CountField(p, "generation");
          log.position.commit = CountField(p, "commit");
          if (!log.position.known()) return Status::InvalidArgument(where + ": position has no commit");
        }
        header = true;
        continue;
      }
      if (j.contains("end")) {
        if (CountField(j, "people") != log.people.size() || CountField(j, "categories") != log.categories.size() ||
            CountField(j, "suppressed") != log.suppressed.size()) {
          return Status::InvalidArgument(where + ": the end line's counts do not match the entries (lines lost)");
        }
        if (j.contains("tag")) {  // absent before stop 37
          auto tag = util::HexDecode(j.at("tag").get<std::string>());
          if (!tag || tag->size() != 32) return Status::InvalidArgument(where + ": tag is not 64 hex digits");
          log.tag = std::move(*tag);
        }
        ended = true;
        continue;
      }
      const std::string kind = j.at("kind").get<std::string>();
      if (kind == "person" || kind == "category") {
        auto person = PersonId::FromHex(j.at("person").get<std::string>());
        if (!person.ok()) return Status::InvalidArgument(where + ": " + person.status().message());
        auto mode = ModeFromName(j.at("analytics").get<std::string>());
        if (!mode.ok()) return Status::InvalidArgument(where + ": " + mode.status().message());
        const std::string request_id = j.at("request_id").get<std::string>();
        const std::int64_t at = Int64Field(j, "erased_at_ms");
        if (kind == "person") {
          log.people.push_back(ErasedPersonEntry{*person, request_id, at, *mode});
        } else {
          log.categories.push_back(
              ErasedCategoryEntry{*person, j.at("category").get<std::string>(), request_id, at, *mode});
        }
      } else if (kind == "suppressed") {
        auto hash = util::HexDecode(j.at("identifier_hash").get<std::string>());
        if (!hash || hash->empty()) return Status::InvalidArgument(where + ": identifier_hash is not hex");
        log.suppressed.push_back(SuppressedEntry{*hash, j.at("request_id").get<std::string>(),
                                                 Int64Field(j, "suppressed_at_ms")});
      } else {
        return Status::InvalidArgument(where + ": unknown kind '" + kind + "'");
      }
    } catch (const nlohmann::json::exception& e) {
      return Status::InvalidArgument(where + ": " + e.what());
    } catch (const std::invalid_argument& e) {
      return Status::InvalidArgument(where + ": " + e.what());
    }
  }
  if (in.bad()) return Status::IOError("reading the erasure log failed");
  if (!header) return Status::InvalidArgument("the erasure log is empty (no header line)");
  if (!ended) return Status::InvalidArgument("the erasure log has no end line: it was cut short");
  return log;
}

}  // namespace shredkv
