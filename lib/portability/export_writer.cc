// Streams a person's export as JSON or NDJSON (schema version 1). Each item
// is serialised on its own, so memory stays bounded by one item however
// many events the person has.
#include <chrono>
#include <ostream>

#include "portability/json_values.h"
#include "shredkv/portability.h"
#include "shredkv/sharded_store.h"
#include "util/base64.h"

namespace shredkv {
namespace {

using portability::AttributesToJson;
using portability::IsoTime;
using portability::Json;
using portability::RecordMetadataToJson;

Json ItemToJson(const ExportItem& item) {
  Json j = Json::object();
  switch (item.kind) {
    case ExportItem::Kind::kPerson:
      j["person_id"] = item.person.id.ToHex();
      j["anon_id"] = item.person.anon_id.ToHex();
      j["created"] = item.person.created_ms;
      j["created_iso"] = IsoTime(item.person.created_ms);
      j["key_epoch"] = item.person.key_epoch;
      break;
    case ExportItem::Kind::kIdentifier:
      j["id_type"] = item.identifier.type;
      j["value"] = item.identifier.value;
      break;
    case ExportItem::Kind::kProfile: j["attributes"] = AttributesToJson(item.profile); break;
    case ExportItem::Kind::kRestriction:
      j["all"] = item.restriction.all;
      j["purposes"] = item.restriction.purposes;
      j["categories"] = item.restriction.categories;
      j["updated"] = item.restriction.updated_ms;
      j["updated_iso"] = item.restriction.updated_ms == 0 ? "" : IsoTime(item.restriction.updated_ms);
      break;
    case ExportItem::Kind::kConsent: {
      j["action"] = std::string(ConsentActionName(item.consent.action));
      j["purpose"] = item.consent.purpose;
      j["all"] = item.consent.restriction.all;
      j["purposes"] = item.consent.restriction.purposes;
      j["categories"] = item.consent.restriction.categories;
      j["reason"] = item.consent.restriction.reason;
      j["time"] = item.consent.time_ms;
      j["time_iso"] = IsoTime(item.consent.time_ms);
      j["source"] = item.consent.source;
      break;
    }
    case ExportItem::Kind::kEvent:
      j["name"] = item.event.name;
      j["ts"] = item.event.ts_ms;
      j["ts_iso"] = IsoTime(item.event.ts_ms);
      j["seq"] = item.event.seq;
      j["category"] = item.event.category;
      j["properties"] = AttributesToJson(item.event.properties);
      break;
    case ExportItem::Kind::kRecord:
      j["collection"] = item.record.collection;
      j["key"] = util::Base64Encode(item.record.key);
      j["value"] = util::Base64Encode(item.record.value);
      if (util::IsValidUtf8(item.record.key)) j["key_text"] = item.record.key;
      if (util::IsValidUtf8(item.record.value)) j["value_text"] = item.record.value;
      j["category"] = item.record.category;
      if (!item.record.metadata.empty()) j["metadata"] = RecordMetadataToJson(item.record.metadata);
      break;
    case ExportItem::Kind::kAnalytics:
      j["anon_id"] = item.analytics.anon_id.ToHex();
      j["name"] = item.analytics.name;
      j["ts"] = item.analytics.ts_ms;
      j["ts_iso"] = IsoTime(item.analytics.ts_ms);
      j["seq"] = item.analytics.seq;
      j["fields"] = AttributesToJson(item.analytics.fields);
      break;
    case ExportItem::Kind::kNotice:
      j["cursor"] = item.notice.cursor;
      j["kind"] = std::string(NoticeKindName(item.notice.kind));
      j["time"] = item.notice.time_ms;
      j["time_iso"] = IsoTime(item.notice.time_ms);
      j["names"] = item.notice.names;
      break;
  }
  return j;
}

const char* TypeName(ExportItem::Kind k) {
  switch (k) {
    case ExportItem::Kind::kPerson: return "person";
    case ExportItem::Kind::kIdentifier: return "identifier";
    case ExportItem::Kind::kProfile: return "profile";
    case ExportItem::Kind::kRestriction: return "restriction";
    case ExportItem::Kind::kConsent: return "consent";
    case ExportItem::Kind::kEvent: return "event";
    case ExportItem::Kind::kRecord: return "record";
    case ExportItem::Kind::kAnalytics: return "analytics";
    case ExportItem::Kind::kNotice: return "notice";
  }
  return "unknown";
}

// JSON document section of a kind: "person" and "profile" are objects, the
// others arrays.
const char* SectionName(ExportItem::Kind k) {
  switch (k) {
    case ExportItem::Kind::kPerson: return "person";
    case ExportItem::Kind::kIdentifier: return "identifiers";
    case ExportItem::Kind::kProfile: return "profile";
    case ExportItem::Kind::kRestriction: return "restriction";
    case ExportItem::Kind::kConsent: return "consents";
    case ExportItem::Kind::kEvent: return "events";
    case ExportItem::Kind::kRecord: return "records";
    case ExportItem::Kind::kAnalytics: return "analytics";
    case ExportItem::Kind::kNotice: return "notices";
  }
  return "unknown";
}

bool IsArraySection(ExportItem::Kind k) {
  return k != ExportItem::Kind::kPerson && k != ExportItem::Kind::kProfile && k != ExportItem::Kind::kRestriction;
}

}  // namespace

Status WriteExport(Iterator<ExportItem>& items, ExportFormat format, std::ostream& out,
                   std::int64_t exported_at_ms) {
  Json header = Json::object();
  header["format"] = "shredkv-export";
  header["version"] = kExportFormatVersion;
  header["exported_at"] = exported_at_ms;
  header["exported_at_iso"] = IsoTime(exported_at_ms);
  std::uint64_t count = 0;
  if (format == ExportFormat::kNdjson) {
    Json h = Json::object();
    h["type"] = "header";
    h.update(header);
    out << h.dump(-1, ' ', false, Json::error_handler_t::replace) << '\n';
    for (; items.Valid(); items.Next()) {
      Json line = Json::object();
      line["type"] = TypeName(items.value().kind);
      line.update(ItemToJson(items.value()));
      out << line.dump(-1, ' ', false, Json::error_handler_t::replace) << '\n';
      ++count;
    }
    if (!items.status().ok()) return items.status();
    Json end = Json::object();
    end["type"] = "end";
    end["items"] = count;
    out << end.dump(-1, ' ', false, Json::error_handler_t::replace) << '\n';
  } else {
    std::string head = header.dump(-1, ' ', false, Json::error_handler_t::replace);
    head.pop_back();  // leave the object open: sections follow
    out << head;
    // Sections in the iterator's fixed order; empty arrays are still written.
    constexpr ExportItem::Kind kOrder[] = {ExportItem::Kind::kPerson, ExportItem::Kind::kIdentifier,
                                           ExportItem::Kind::kProfile, ExportItem::Kind::kRestriction,
                                           ExportItem::Kind::kConsent, ExportItem::Kind::kEvent,
                                           ExportItem::Kind::kRecord, ExportItem::Kind::kAnalytics,
                                           ExportItem::Kind::kNotice};
    for (ExportItem::Kind section : kOrder) {
      out << ",\"" << SectionName(section) << "\":";
      if (IsArraySection(section)) out << '[';
      bool first = true;
      while (items.Valid() && items.value().kind == section) {
        if (!first) out << ',';
        first = false;
        out << ItemToJson(items.value()).dump(-1, ' ', false, Json::error_handler_t::replace);
        ++count;
        items.Next();
        if (!IsArraySection(section)) break;
      }
      if (IsArraySection(section)) {
        out << ']';
      } else if (first) {
        out << "null";
      }
    }
    if (!items.status().ok()) return items.status();
    if (items.Valid()) return Status::Internal("export items out of order");
    out << ",\"items\":" << count << "}\n";
  }
  out.flush();
  if (!out) return Status::IOError("writing the export failed");
  return Status::OK();
}

namespace {

// Export(id) of a Store or a ShardedStore, written to `out`.
template <typename AnyStore>
Status ExportOf(AnyStore& store, const PersonId& id, ExportFormat format, std::ostream& out) {
  auto it = store.Export(id);
  const auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  return WriteExport(*it, format, out, now);
}

}  // namespace

Status ExportPerson(Store& store, const PersonId& id, ExportFormat format, std::ostream& out) {
  return ExportOf(store, id, format, out);
}

Status ExportPerson(ShardedStore& store, const PersonId& id, ExportFormat format, std::ostream& out) {
  return ExportOf(store, id, format, out);
}

}  // namespace shredkv
