#include "codec/row_codec.h"

#include <cstring>

#include "codec/value_codec.h"
#include "util/coding.h"

namespace shredkv::codec {
namespace {

constexpr std::uint8_t kPersonPayloadVersion = 2;

Status ReadId(util::ByteReader* r, RandomId<AnonymousIdTag>* out) {
  std::string_view b;
  if (!r->GetBytes(kIdSize, &b)) return Status::Corruption("id truncated");
  AnonymousId::Bytes bytes;
  std::memcpy(bytes.data(), b.data(), kIdSize);
  *out = AnonymousId(bytes);
  return Status::OK();
}

Status ExpectDone(const util::ByteReader& r, std::string_view what) {
  if (!r.done()) return Status::Corruption(std::string(what) + " has trailing bytes");
  return Status::OK();
}

}  // namespace

std::string EventKey(const PersonId& person, std::int64_t ts_ms, std::uint64_t seq) {
  std::string k;
  k.reserve(kIdSize + 16);
  k.append(person.view());
  util::PutFixed64BE(&k, util::OrderedFromSigned(ts_ms));
  util::PutFixed64BE(&k, seq);
  return k;
}

std::string AnalyticsKey(std::int64_t bucket_ms, std::string_view row_id) {
  std::string k;
  k.reserve(kAnalyticsKeySize);
  util::PutFixed64BE(&k, util::OrderedFromSigned(bucket_ms));
  k.append(row_id);
  return k;
}

Status DecodeAnalyticsKey(std::string_view key, std::int64_t* bucket_ms) {
  if (key.size() != kAnalyticsKeySize) return Status::Corruption("analytics key has the wrong length");
  *bucket_ms = util::SignedFromOrdered(util::DecodeFixed64BE(key.data()));
  return Status::OK();
}

std::string AnalyticsKeyV2(std::int64_t ts_ms, std::uint64_t seq) {
  std::string k;
  k.reserve(16);
  util::PutFixed64BE(&k, util::OrderedFromSigned(ts_ms));
  util::PutFixed64BE(&k, seq);
  return k;
}

Status DecodeTsSeq(std::string_view tail16, std::int64_t* ts_ms, std::uint64_t* seq) {
  if (tail16.size() != 16) return Status::Corruption("time key has wrong length");
  *ts_ms = util::SignedFromOrdered(util::DecodeFixed64BE(tail16.data()));
  *seq = util::DecodeFixed64BE(tail16.data() + 8);
  return Status::OK();
}

std::string RecordKey(const PersonId& person, std::string_view coll_hash,
                      std::string_view key_hash) {
  std::string k;
  k.reserve(kIdSize + coll_hash.size() + key_hash.size());
  k.append(person.view());
  k.append(coll_hash);
  k.append(key_hash);
  return k;
}

std::string DekKey(const PersonId& person, std::uint32_t slot) {
  std::string k(person.view());
  util::PutFixed32BE(&k, slot);
  return k;
}

std::string ProfileKey(const PersonId& person, std::uint32_t slot) { return DekKey(person, slot); }

std::string EpochKey(std::uint64_t epoch) {
  std::string k;
  util::PutFixed64BE(&k, epoch);
  return k;
}

void EncodePerson(const PersonPayload& p, std::string* out) {
  out->push_back(static_cast<char>(kPersonPayloadVersion));
  out->append(p.anon_id.view());
  util::PutFixed64BE(out, util::OrderedFromSigned(p.created_ms));
  util::PutVarint64(out, p.identifiers.size());
  for (const Identifier& id : p.identifiers) {
    util::PutLengthPrefixed(out, id.type);
    util::PutLengthPrefixed(out, id.value);
  }
  util::PutVarint64(out, p.category_slots.size());
  for (const auto& [category, slot] : p.category_slots) {
    util::PutLengthPrefixed(out, category);
    util::PutFixed32BE(out, slot);
  }
  util::PutFixed32BE(out, p.next_slot);
}

Status DecodePerson(std::string_view in, PersonPayload* out) {
  util::ByteReader r(in);
  std::uint8_t version = 0;
  if (!r.GetU8(&version) || version != kPersonPayloadVersion) {
    return Status::Corruption("person record has unknown version");
  }
  if (Status s = ReadId(&r, &out->anon_id); !s.ok()) return s;
  std::uint64_t created = 0, count = 0;
  if (!r.GetFixed64BE(&created) || !r.GetVarint64(&count)) {
    return Status::Corruption("person record truncated");
  }
  out->created_ms = util::SignedFromOrdered(created);
  if (count > r.remaining().size() / 2) return Status::Corruption("identifier count too large");
  out->identifiers.clear();
  for (std::uint64_t i = 0; i < count; ++i) {
    std::string_view type, value;
    if (!r.GetLengthPrefixed(&type) || !r.GetLengthPrefixed(&value)) {
      return Status::Corruption("person identifier truncated");
    }
    out->identifiers.push_back({std::string(type), std::string(value)});
  }
  std::uint64_t slots = 0;
  if (!r.GetVarint64(&slots) || slots > r.remaining().size() / 5) {
    return Status::Corruption("person record category keys malformed");
  }
  out->category_slots.clear();
  for (std::uint64_t i = 0; i < slots; ++i) {
    std::string_view category;
    std::uint32_t slot = 0;
    if (!r.GetLengthPrefixed(&category) || !r.GetFixed32BE(&slot)) {
      return Status::Corruption("person record category key truncated");
    }
    out->category_slots.insert_or_assign(std::string(category), slot);
  }
  if (!r.GetFixed32BE(&out->next_slot)) return Status::Corruption("person record truncated");
  return ExpectDone(r, "person record");
}

void EncodeProfile(const Attributes& attrs, std::string* out) { EncodeAttributes(attrs, out); }

Status DecodeProfile(std::string_view in, Attributes* out) {
  util::ByteReader r(in);
  if (Status s = DecodeAttributes(&r, out); !s.ok()) return s;
  return ExpectDone(r, "profile");
}

void EncodeEvent(std::string_view name, std::string_view category, const Attributes& props, std::string* out) {
  util::PutLengthPrefixed(out, name);
  util::PutLengthPrefixed(out, category);
  EncodeAttributes(props, out);
}

Status EncodeValidEvent(std::string_view name, std::string_view category, const Attributes& props,
                        std::string* out) {
  util::PutLengthPrefixed(out, name);
  util::PutLengthPrefixed(out, category);
  return EncodeValidAttributes(props, "event property", out);
}

Status DecodeEvent(std::string_view in, std::string* name, std::string* category, Attributes* props) {
  util::ByteReader r(in);
  std::string_view n, c;
  if (!r.GetLengthPrefixed(&n) || !r.GetLengthPrefixed(&c)) return Status::Corruption("event name truncated");
  *name = std::string(n);
  *category = std::string(c);
  if (Status s = DecodeAttributes(&r, props); !s.ok()) return s;
  return ExpectDone(r, "event");
}

namespace {
void PutNames(std::string* out, const std::vector<std::string>& names);
bool GetNames(util::ByteReader* r, std::vector<std::string>* names);
constexpr std::uint8_t kRecordMetadataTag = 1;
constexpr std::uint8_t kRecordWrittenTag = 2;
constexpr std::uint8_t kAutomatedDecisionFlag = 1;
constexpr std::uint8_t kExpiresFlag = 2;
}  // namespace

void EncodeRecord(std::string_view collection, std::string_view key, std::string_view value,
                  std::string_view category, const RecordMetadata& metadata,
                  std::optional<std::int64_t> written_ms, std::string* out) {
  util::PutLengthPrefixed(out, collection);
  util::PutLengthPrefixed(out, key);
  util::PutLengthPrefixed(out, value);
  util::PutLengthPrefixed(out, category);
  if (!metadata.empty()) {
    out->push_back(static_cast<char>(kRecordMetadataTag));
    PutNames(out, metadata.purposes);
    util::PutLengthPrefixed(out, metadata.origin);
    PutNames(out, metadata.shared_with);
    const std::uint8_t flags = static_cast<std::uint8_t>((metadata.automated_decision ? kAutomatedDecisionFlag : 0) |
                                                         (metadata.expires_ms != 0 ? kExpiresFlag : 0));
    out->push_back(static_cast<char>(flags));
    if (metadata.expires_ms != 0) util::PutFixed64BE(out, util::OrderedFromSigned(metadata.expires_ms));
  }
  if (written_ms) {
    out->push_back(static_cast<char>(kRecordWrittenTag));
    util::PutFixed64BE(out, util::OrderedFromSigned(*written_ms));
  }
}

Status DecodeRecord(std::string_view in, Record* out, std::optional<std::int64_t>* written_ms) {
  util::ByteReader r(in);
  std::string_view c, k, v, cat;
  if (!r.GetLengthPrefixed(&c) || !r.GetLengthPrefixed(&k) || !r.GetLengthPrefixed(&v) ||
      !r.GetLengthPrefixed(&cat)) {
    return Status::Corruption("record truncated");
  }
  out->collection = std::string(c);
  out->key = std::string(k);
  out->value = std::string(v);
  out->category = std::string(cat);
  out->metadata = RecordMetadata{};
  if (written_ms != nullptr) written_ms->reset();
  if (r.done()) return Status::OK();
  std::uint8_t tag = 0;
  if (!r.GetU8(&tag)) return Status::Corruption("record section truncated");
  if (tag == kRecordMetadataTag) {
    std::uint8_t flags = 0;
    std::string_view origin;
    RecordMetadata& m = out->metadata;
    if (!GetNames(&r, &m.purposes) || !r.GetLengthPrefixed(&origin) || !GetNames(&r, &m.shared_with) ||
        !r.GetU8(&flags) || (flags & ~(kAutomatedDecisionFlag | kExpiresFlag)) != 0) {
      return Status::Corruption("record metadata malformed");
    }
    m.origin = std::string(origin);
    m.automated_decision = (flags & kAutomatedDecisionFlag) != 0;
    if ((flags & kExpiresFlag) != 0) {
      std::uint64_t expires = 0;
      if (!r.GetFixed64BE(&expires)) return Status::Corruption("record metadata expiry truncated");
      m.expires_ms = util::SignedFromOrdered(expires);
      if (m.expires_ms == 0) return Status::Corruption("record metadata expiry is zero");
    }
    // Canonical: empty metadata is written as no section at all.
    if (m.empty()) return Status::Corruption("record metadata section is empty");
    if (r.done()) return Status::OK();
    if (!r.GetU8(&tag)) return Status::Corruption("record section truncated");
  }
  // The written section comes last, after the metadata section if any.
  if (tag != kRecordWrittenTag) return Status::Corruption("record has an unknown section");
  std::uint64_t written = 0;
  if (!r.GetFixed64BE(&written)) return Status::Corruption("record write time truncated");
  if (written_ms != nullptr) *written_ms = util::SignedFromOrdered(written);
  return ExpectDone(r, "record");
}

namespace {

void PutNames(std::string* out, const std::vector<std::string>& names) {
  util::PutVarint64(out, names.size());
  for (const std::string& n : names) util::PutLengthPrefixed(out, n);
}

bool GetNames(util::ByteReader* r, std::vector<std::string>* names) {
  std::uint64_t n = 0;
  if (!r->GetVarint64(&n) || n > r->remaining().size()) return false;
  names->clear();
  for (std::uint64_t i = 0; i < n; ++i) {
    std::string_view v;
    if (!r->GetLengthPrefixed(&v)) return false;
    names->emplace_back(v);
  }
  return true;
}

}  // namespace

void EncodeRestriction(const RestrictionState& r, std::string* out) {
  out->push_back(r.all ? 1 : 0);
  PutNames(out, r.purposes);
  PutNames(out, r.categories);
  util::PutFixed64BE(out, util::OrderedFromSigned(r.updated_ms));
}

Status DecodeRestriction(std::string_view in, RestrictionState* out) {
  util::ByteReader r(in);
  std::uint8_t all = 0;
  std::uint64_t updated = 0;
  if (!r.GetU8(&all) || all > 1 || !GetNames(&r, &out->purposes) || !GetNames(&r, &out->categories) ||
      !r.GetFixed64BE(&updated)) {
    return Status::Corruption("restriction row malformed");
  }
  out->all = all == 1;
  out->updated_ms = util::SignedFromOrdered(updated);
  return ExpectDone(r, "restriction row");
}

void EncodeConsentRecord(const ConsentRecord& c, std::string* out) {
  out->push_back(static_cast<char>(c.action));
  util::PutLengthPrefixed(out, c.purpose);
  out->push_back(c.restriction.all ? 1 : 0);
  PutNames(out, c.restriction.purposes);
  PutNames(out, c.restriction.categories);
  util::PutLengthPrefixed(out, c.restriction.reason);
  util::PutFixed64BE(out, util::OrderedFromSigned(c.time_ms));
  util::PutLengthPrefixed(out, c.source);
}

Status DecodeConsentRecord(std::string_view in, ConsentRecord* out) {
  util::ByteReader r(in);
  std::uint8_t action = 0, all = 0;
  std::string_view purpose, reason, source;
  std::uint64_t time = 0;
  if (!r.GetU8(&action) || action < 1 || action > 4 || !r.GetLengthPrefixed(&purpose) || !r.GetU8(&all) ||
      all > 1 || !GetNames(&r, &out->restriction.purposes) || !GetNames(&r, &out->restriction.categories) ||
      !r.GetLengthPrefixed(&reason) || !r.GetFixed64BE(&time) || !r.GetLengthPrefixed(&source)) {
    return Status::Corruption("consent record malformed");
  }
  out->action = static_cast<ConsentRecord::Action>(action);
  out->purpose = std::string(purpose);
  out->restriction.all = all == 1;
  out->restriction.reason = std::string(reason);
  out->time_ms = util::SignedFromOrdered(time);
  out->source = std::string(source);
  return ExpectDone(r, "consent record");
}

void EncodeAnalytics(const AnonymousId& anon, std::string_view name, const Attributes& fields,
                     std::string* out) {
  out->append(anon.view());
  util::PutLengthPrefixed(out, name);
  EncodeAttributes(fields, out);
}

void EncodeAnalyticsEntries(const AnonymousId& anon, std::string_view name,
                            const std::vector<const Attributes::value_type*>& fields, std::string* out) {
  out->append(anon.view());
  util::PutLengthPrefixed(out, name);
  EncodeAttributeEntries(fields, out);
}

Status DecodeAnalytics(std::string_view in, AnalyticsRow* out) {
  util::ByteReader r(in);
  if (Status s = ReadId(&r, &out->anon_id); !s.ok()) return s;
  std::string_view n;
  if (!r.GetLengthPrefixed(&n)) return Status::Corruption("analytics name truncated");
  out->name = std::string(n);
  if (Status s = DecodeAttributes(&r, &out->fields); !s.ok()) return s;
  return ExpectDone(r, "analytics row");
}

}  // namespace shredkv::codec
