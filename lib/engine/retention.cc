#include "engine/retention.h"

#include <limits>
#include <vector>

#include "codec/row_codec.h"
#include "codec/sealed.h"
#include "crypto/keyed_hash.h"
#include "engine/data_rows.h"
#include "util/coding.h"

namespace shredkv::engine {
namespace {

using codec::TableId;

constexpr std::string_view kRulesKey = "retention";
constexpr std::string_view kCountersKey = "retention_counters";
constexpr std::string_view kBackfillKey = "retention_backfill";
constexpr char kEventClass = 1;
constexpr char kRecordClass = 2;
constexpr std::size_t kHashSize = codec::kNameHashSize;  // 16
constexpr std::size_t kIdSize = PersonId::kSize;         // 16
// expiry entry sizes: class ‖ hash ‖ time ‖ (seq ‖ person | person ‖ key hash)
constexpr std::size_t kEventEntrySize = 1 + kHashSize + 8 + 8 + kIdSize;
constexpr std::size_t kRecordEntrySize = 1 + kHashSize + 8 + kIdSize + kHashSize;
constexpr std::size_t kRecordKeySize = kIdSize + 2 * kHashSize;

bool HasPrefix(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && s.substr(0, prefix.size()) == prefix;
}

std::int64_t TimeAt(std::string_view key, std::size_t offset) {
  return util::SignedFromOrdered(util::DecodeFixed64BE(key.data() + offset));
}

std::string EventEntry(std::string_view name_hash, std::int64_t ts, std::uint64_t seq, std::string_view person) {
  std::string k(1, kEventClass);
  k.append(name_hash);
  util::PutFixed64BE(&k, util::OrderedFromSigned(ts));
  util::PutFixed64BE(&k, seq);
  k.append(person);
  return k;
}

std::string EventRef(std::string_view person, std::int64_t ts, std::uint64_t seq) {
  std::string k(person);
  k.push_back(kEventClass);
  util::PutFixed64BE(&k, util::OrderedFromSigned(ts));
  util::PutFixed64BE(&k, seq);
  return k;
}

// record_key = person ‖ H16_coll ‖ H16_key
std::string RecordEntry(std::string_view record_key, std::int64_t written_ms) {
  std::string k(1, kRecordClass);
  k.append(record_key.substr(kIdSize, kHashSize));
  util::PutFixed64BE(&k, util::OrderedFromSigned(written_ms));
  k.append(record_key.substr(0, kIdSize));
  k.append(record_key.substr(kIdSize + kHashSize, kHashSize));
  return k;
}

std::string RecordRef(std::string_view record_key) {
  std::string k(record_key.substr(0, kIdSize));
  k.push_back(kRecordClass);
  k.append(record_key.substr(kIdSize));
  return k;
}

Status ValidateName(std::string_view name, const char* what) {
  if (name.empty() || name.size() > 255) {
    return Status::InvalidArgument(std::string("retention rule: ") + what + " name must be 1..255 bytes");
  }
  return Status::OK();
}

// Entries of `prefix` (class ‖ hash) whose time (at `time_offset`) is <= cutoff (none for nullopt),
// at most `limit`, in key order. Counts one seek and each entry read.
Result<std::vector<std::string>> ExpiredEntries(const storage::ReadTxn& txn, storage::Table table,
                                                std::string_view prefix, std::size_t time_offset,
                                                std::size_t entry_size, std::optional<std::int64_t> cutoff,
                                                std::uint64_t limit, SweepCounts* counts, bool* more) {
  std::vector<std::string> out;
  if (!cutoff) return out;  // nothing can be expired yet
  auto cursor = txn.OpenCursor(table);
  if (!cursor.ok()) return cursor.status();
  auto& c = **cursor;
  ++counts->seeks;
  Status m = prefix.empty() ? c.SeekToFirst() : c.Seek(prefix);
  for (; m.ok() && c.Valid(); m = c.Next()) {
    if (!HasPrefix(c.key(), prefix)) break;
    ++counts->entries_read;
    if (c.key().size() != entry_size) return Status::Corruption("time index entry has the wrong length");
    if (TimeAt(c.key(), time_offset) > *cutoff) break;
    if (out.size() >= limit) {
      *more = true;
      break;
    }
    out.emplace_back(c.key());
  }
  if (!m.ok()) return m;
  return out;
}

}  // namespace

std::optional<std::int64_t> RetentionCutoff(std::int64_t now_ms, std::int64_t max_age_ms) {
  // REQUIRES: max_age_ms > 0, so lowest does not overflow.
  const std::int64_t lowest = std::numeric_limits<std::int64_t>::min() + max_age_ms;
  if (now_ms < lowest) return std::nullopt;
  return now_ms - max_age_ms;
}

Status Retention::Validate(const RetentionRules& rules) {
  for (const auto& [name, age] : rules.events) {
    if (Status s = ValidateName(name, "event"); !s.ok()) return s;
    if (age <= 0) return Status::InvalidArgument("retention rule for event '" + name + "': max age must be > 0");
  }
  for (const auto& [name, age] : rules.collections) {
    if (Status s = ValidateName(name, "collection"); !s.ok()) return s;
    if (age <= 0) {
      return Status::InvalidArgument("retention rule for collection '" + name + "': max age must be > 0");
    }
  }
  if (rules.analytics < 0) return Status::InvalidArgument("retention rule for analytics: max age must be >= 0");
  if (rules.feed < 0) return Status::InvalidArgument("retention rule for the change feed: max age must be >= 0");
  return Status::OK();
}

Result<RetentionRules> Retention::Load(storage::ReadTxn& txn, storage::Table meta) {
  std::string payload;
  Status g = ReadPlain(txn, meta, TableId::kDataMeta, kRulesKey, &payload);
  RetentionRules rules;
  if (g.IsNotFound()) return rules;
  if (!g.ok()) return g.WithContext("retention rules");
  util::ByteReader r(payload);
  for (auto* map : {&rules.events, &rules.collections}) {
    std::uint64_t n = 0;
    if (!r.GetVarint64(&n)) return Status::Corruption("retention rules are truncated");
    for (std::uint64_t i = 0; i < n; ++i) {
      std::string_view name;
      std::uint64_t age = 0;
      if (!r.GetLengthPrefixed(&name) || !r.GetFixed64BE(&age)) {
        return Status::Corruption("retention rules are truncated");
      }
      map->emplace(std::string(name), util::SignedFromOrdered(age));
    }
  }
  std::uint64_t analytics = 0;
  if (!r.GetFixed64BE(&analytics)) return Status::Corruption("retention rules are malformed");
  rules.analytics = util::SignedFromOrdered(analytics);
  // The feed rule, when there is one, follows (rules without it keep the
  // layout they had before it existed).
  if (!r.done()) {
    std::uint64_t feed = 0;
    if (!r.GetFixed64BE(&feed) || !r.done()) return Status::Corruption("retention rules are malformed");
    rules.feed = util::SignedFromOrdered(feed);
    if (rules.feed == 0) return Status::Corruption("retention rules are malformed");  // one encoding a value
  }
  if (Status v = Validate(rules); !v.ok()) return Status::Corruption("stored " + v.message());
  return rules;
}

Status Retention::StoreRules(storage::WriteTxn& txn, storage::Table meta, const RetentionRules& rules) {
  std::string payload;
  for (const auto* map : {&rules.events, &rules.collections}) {
    util::PutVarint64(&payload, map->size());
    for (const auto& [name, age] : *map) {
      util::PutLengthPrefixed(&payload, name);
      util::PutFixed64BE(&payload, util::OrderedFromSigned(age));
    }
  }
  util::PutFixed64BE(&payload, util::OrderedFromSigned(rules.analytics));
  if (rules.feed != 0) util::PutFixed64BE(&payload, util::OrderedFromSigned(rules.feed));
  return txn.Put(meta, kRulesKey, PlainRow(TableId::kDataMeta, kRulesKey, payload));
}

Result<std::optional<IndexBackfill>> Retention::LoadBackfill(const storage::ReadTxn& txn, storage::Table meta) {
  std::string payload;
  Status g = ReadPlain(txn, meta, TableId::kDataMeta, kBackfillKey, &payload);
  if (g.IsNotFound()) return std::optional<IndexBackfill>();
  if (!g.ok()) return g.WithContext("retention index back-fill");
  util::ByteReader r(payload);
  IndexBackfill b;
  // varint(n) lp(hash)*n lp(next key); the set may be empty only when
  // `allow_empty` (the events part, which a records-only walk leaves empty).
  auto walk = [&](bool allow_empty, std::set<std::string>* hashes, std::string* next_key) {
    std::uint64_t n = 0;
    if (!r.GetVarint64(&n) || (n == 0 && !allow_empty) || n > payload.size() / kHashSize) return false;
    for (std::uint64_t i = 0; i < n; ++i) {
      std::string_view hash;
      if (!r.GetLengthPrefixed(&hash) || hash.size() != kHashSize) return false;
      hashes->emplace(hash);
    }
    std::string_view next;
    if (!r.GetLengthPrefixed(&next)) return false;
    *next_key = std::string(next);
    return true;
  };
  if (!walk(true, &b.name_hashes, &b.next_key)) return Status::Corruption("retention index back-fill is malformed");
  // Format 4: the collections whose records are back-filled, and where
  // (absent in a back-fill stored by a format-3 build).
  if (!r.done() && !walk(false, &b.collection_hashes, &b.next_record_key)) {
    return Status::Corruption("retention index back-fill is malformed");
  }
  if (!r.done()) return Status::Corruption("retention index back-fill is malformed");
  return std::optional<IndexBackfill>(std::move(b));
}

Status Retention::StoreBackfill(storage::WriteTxn& txn, storage::Table meta,
                                const std::optional<IndexBackfill>& backfill) {
  if (!backfill) {
    Status d = txn.Delete(meta, kBackfillKey);
    return d.IsNotFound() ? Status::OK() : d;
  }
  std::string payload;
  util::PutVarint64(&payload, backfill->name_hashes.size());
  for (const std::string& h : backfill->name_hashes) util::PutLengthPrefixed(&payload, h);
  util::PutLengthPrefixed(&payload, backfill->next_key);
  if (!backfill->collection_hashes.empty()) {
    util::PutVarint64(&payload, backfill->collection_hashes.size());
    for (const std::string& h : backfill->collection_hashes) util::PutLengthPrefixed(&payload, h);
    util::PutLengthPrefixed(&payload, backfill->next_record_key);
  }
  return txn.Put(meta, kBackfillKey, PlainRow(TableId::kDataMeta, kBackfillKey, payload));
}

std::set<std::string> Retention::NewlyRuledEvents(const RetentionRules& previous, const RetentionRules& next) const {
  std::set<std::string> out;
  for (const auto& [name, age] : next.events) {
    if (previous.events.find(name) == previous.events.end()) out.insert(EventNameHash(name));
  }
  return out;
}

std::set<std::string> Retention::NewlyRuledCollections(const RetentionRules& previous,
                                                       const RetentionRules& next) const {
  std::set<std::string> out;
  for (const auto& [name, age] : next.collections) {
    if (previous.collections.find(name) == previous.collections.end()) out.insert(CollectionHash(name));
  }
  return out;
}

bool Retention::RecordKeyInCollections(std::string_view record_key, const std::set<std::string>& hashes) {
  return record_key.size() == kRecordKeySize && hashes.count(std::string(record_key.substr(kIdSize, kHashSize))) != 0;
}

bool Retention::RecordIndexed(const storage::ReadTxn& txn, std::string_view record_key, Status* status) const {
  std::string written;
  Status g = ReadPlain(txn, t_.refs, TableId::kExpiryRefs, RecordRef(record_key), &written);
  *status = g.IsNotFound() ? Status::OK() : g;
  return g.ok();
}

std::string Retention::EventNameHash(std::string_view name) const {
  return crypto::KeyedHash(*index_key_, kHashSize, {"event-name", name});
}

std::string Retention::CollectionHash(std::string_view collection) const {
  // The label of the records table's collection hash (format.md §7).
  return crypto::KeyedHash(*index_key_, kHashSize, {"collection", collection});
}

void Retention::SetRules(const RetentionRules& rules) {
  auto compiled = std::make_shared<CompiledRetention>();
  compiled->rules = rules;
  for (const auto& [name, age] : rules.events) compiled->event_hashes.emplace(EventNameHash(name), age);
  for (const auto& [name, age] : rules.collections) compiled->collection_hashes.emplace(CollectionHash(name), age);
  std::lock_guard lock(mu_);
  rules_ = std::move(compiled);
}

std::shared_ptr<const CompiledRetention> Retention::rules() const {
  std::lock_guard lock(mu_);
  return rules_;
}

// ---- write hooks -------------------------------------------------------------------

Status Retention::IndexEvent(storage::WriteTxn& txn, const PersonId& person, std::string_view name,
                             std::int64_t ts_ms, std::uint64_t seq) const {
  const std::string hash = EventNameHash(name);
  const std::string entry = EventEntry(hash, ts_ms, seq, person.view());
  if (Status p = txn.Put(t_.expiry, entry, PlainRow(TableId::kExpiry, entry, {})); !p.ok()) return p;
  const std::string ref = EventRef(person.view(), ts_ms, seq);
  return txn.Put(t_.refs, ref, PlainRow(TableId::kExpiryRefs, ref, hash));
}

Status Retention::UnindexRecord(storage::WriteTxn& txn, std::string_view record_key) const {
  if (record_key.size() != kRecordKeySize) return Status::Corruption("record key has the wrong length");
  const std::string ref = RecordRef(record_key);
  std::string written;
  Status g = ReadPlain(txn, t_.refs, TableId::kExpiryRefs, ref, &written);
  if (g.IsNotFound()) return Status::OK();
  if (!g.ok()) return g;
  if (written.size() != 8) return Status::Corruption("record write time has the wrong length");
  if (Status d = txn.Delete(t_.expiry, RecordEntry(record_key, TimeAt(written, 0))); !d.ok()) return d;
  return txn.Delete(t_.refs, ref);
}

Status Retention::UnindexEvent(storage::WriteTxn& txn, const PersonId& person, std::int64_t ts_ms,
                               std::uint64_t seq) const {
  const std::string ref = EventRef(person.view(), ts_ms, seq);
  std::string hash;
  Status g = ReadPlain(txn, t_.refs, TableId::kExpiryRefs, ref, &hash);
  if (g.IsNotFound()) return Status::OK();
  if (!g.ok()) return g;
  if (hash.size() != kHashSize) return Status::Corruption("event ref has the wrong length");
  if (Status d = txn.Delete(t_.expiry, EventEntry(hash, ts_ms, seq, person.view())); !d.ok()) return d;
  return txn.Delete(t_.refs, ref);
}

Status Retention::IndexRecord(storage::WriteTxn& txn, std::string_view record_key, std::int64_t written_ms) const {
  if (Status u = UnindexRecord(txn, record_key); !u.ok()) return u;
  const std::string entry = RecordEntry(record_key, written_ms);
  if (Status p = txn.Put(t_.expiry, entry, PlainRow(TableId::kExpiry, entry, {})); !p.ok()) return p;
  const std::string ref = RecordRef(record_key);
  std::string written;
  util::PutFixed64BE(&written, util::OrderedFromSigned(written_ms));
  return txn.Put(t_.refs, ref, PlainRow(TableId::kExpiryRefs, ref, written));
}

Status Retention::PurgePerson(storage::WriteTxn& txn, const PersonId& person, std::uint64_t budget,
                              std::uint64_t* deleted, bool* complete) const {
  *deleted = 0;
  *complete = false;
  std::vector<std::pair<std::string, std::string>> refs;  // (ref key, payload)
  {
    auto cursor = txn.OpenCursor(t_.refs);
    if (!cursor.ok()) return cursor.status();
    auto& c = **cursor;
    Status m = c.Seek(person.view());
    for (; m.ok() && c.Valid() && HasPrefix(c.key(), person.view()) && refs.size() < budget; m = c.Next()) {
      std::string_view payload;
      // A damaged ref is deleted without its entry (a sweep of that entry
      // finds no row and drops it).
      if (!codec::OpenPlain(TableId::kExpiryRefs, c.key(), c.value(), &payload).ok()) payload = {};
      refs.emplace_back(std::string(c.key()), std::string(payload));
    }
    if (!m.ok()) return m;
  }
  for (const auto& [ref, payload] : refs) {
    std::string_view tail = std::string_view(ref).substr(kIdSize);
    if (tail.size() == 17 && tail[0] == kEventClass && payload.size() == kHashSize) {
      std::int64_t ts = 0;
      std::uint64_t seq = 0;
      if (Status d = codec::DecodeTsSeq(tail.substr(1), &ts, &seq); !d.ok()) return d;
      if (Status d = txn.Delete(t_.expiry, EventEntry(payload, ts, seq, person.view())); !d.ok()) return d;
    } else if (tail.size() == 1 + 2 * kHashSize && tail[0] == kRecordClass && payload.size() == 8) {
      const std::string record_key = std::string(person.view()) + std::string(tail.substr(1));
      if (Status d = txn.Delete(t_.expiry, RecordEntry(record_key, TimeAt(payload, 0))); !d.ok()) return d;
    }
    if (Status d = txn.Delete(t_.refs, ref); !d.ok()) return d;
    ++*deleted;
  }
  *complete = refs.size() < budget;
  return Status::OK();
}

// ---- read filters --------------------------------------------------------------------

bool Retention::EventExpired(const CompiledRetention& r, std::string_view name, std::int64_t ts_ms,
                             std::int64_t now_ms) {
  auto it = r.rules.events.find(name);
  if (it == r.rules.events.end()) return false;
  const auto cutoff = RetentionCutoff(now_ms, it->second);
  return cutoff && ts_ms <= *cutoff;
}

bool Retention::AnalyticsExpired(const CompiledRetention& r, std::int64_t ts_ms, std::int64_t now_ms) {
  if (r.rules.analytics <= 0) return false;
  const auto cutoff = RetentionCutoff(now_ms, r.rules.analytics);
  return cutoff && ts_ms <= *cutoff;
}

Result<bool> Retention::RecordExpired(const storage::ReadTxn& txn, const CompiledRetention& r,
                                      std::string_view collection, std::string_view record_key,
                                      std::optional<std::int64_t> written_ms, std::int64_t now_ms) const {
  auto it = r.rules.collections.find(collection);
  if (it == r.rules.collections.end()) return false;
  const auto cutoff = RetentionCutoff(now_ms, it->second);
  if (!cutoff) return false;
  if (written_ms) return *written_ms <= *cutoff;
  // A row written before format 4: its time is in the index.
  if (record_key.size() != kRecordKeySize) return Status::Corruption("record key has the wrong length");
  std::string written;
  Status g = ReadPlain(txn, t_.refs, TableId::kExpiryRefs, RecordRef(record_key), &written);
  if (g.IsNotFound()) return Status::Corruption("record has no write time in the time index");
  if (!g.ok()) return g;
  if (written.size() != 8) return Status::Corruption("record write time has the wrong length");
  return TimeAt(written, 0) <= *cutoff;
}

// ---- sweep ----------------------------------------------------------------------------

Result<SweepCounts> Retention::SweepBatch(storage::WriteTxn& txn, const CompiledRetention& r, std::int64_t now_ms,
                                          std::uint64_t max_rows) const {
  SweepCounts counts;
  std::uint64_t left = max_rows;
  for (const auto& [hash, age] : r.event_hashes) {
    const std::string prefix = std::string(1, kEventClass) + hash;
    auto entries = ExpiredEntries(txn, t_.expiry, prefix, 1 + kHashSize, kEventEntrySize,
                                  RetentionCutoff(now_ms, age), left, &counts, &counts.more);
    if (!entries.ok()) return entries.status();
    for (const std::string& e : *entries) {
      const std::string_view k(e);
      std::int64_t ts = 0;
      std::uint64_t seq = 0;
      if (Status d = codec::DecodeTsSeq(k.substr(1 + kHashSize, 16), &ts, &seq); !d.ok()) return d;
      auto person = PersonIdFromBytes(k.substr(1 + kHashSize + 16));
      if (!person.ok()) return person.status();
      if (Status d = txn.Delete(t_.events, codec::EventKey(*person, ts, seq)); !d.ok()) return d;
      if (Status d = txn.Delete(t_.refs, EventRef(person->view(), ts, seq)); !d.ok()) return d;
      if (Status d = txn.Delete(t_.expiry, e); !d.ok()) return d;
    }
    counts.events += entries->size();
    left -= entries->size();
    if (left == 0) {
      counts.more = true;  // the limit is reached: later rules were not looked at
      return counts;
    }
  }
  for (const auto& [hash, age] : r.collection_hashes) {
    const std::string prefix = std::string(1, kRecordClass) + hash;
    auto entries = ExpiredEntries(txn, t_.expiry, prefix, 1 + kHashSize, kRecordEntrySize,
                                  RetentionCutoff(now_ms, age), left, &counts, &counts.more);
    if (!entries.ok()) return entries.status();
    for (const std::string& e : *entries) {
      const std::string_view k(e);
      const std::string record_key = std::string(k.substr(1 + kHashSize + 8, kIdSize)) + hash +
                                     std::string(k.substr(1 + kHashSize + 8 + kIdSize, kHashSize));
      if (Status d = txn.Delete(t_.records, record_key); !d.ok()) return d;
      if (Status d = txn.Delete(t_.refs, RecordRef(record_key)); !d.ok()) return d;
      if (record_index_ != nullptr) {
        if (Status d = record_index_->Remove(txn, record_key); !d.ok()) return d;
      }
      if (Status d = txn.Delete(t_.expiry, e); !d.ok()) return d;
    }
    counts.records += entries->size();
    left -= entries->size();
    if (left == 0) {
      counts.more = true;  // the limit is reached: later rules were not looked at
      return counts;
    }
  }
  if (r.rules.analytics > 0) {
    auto keys = ExpiredEntries(txn, t_.analytics, {}, 0, codec::kAnalyticsKeySize, RetentionCutoff(now_ms, r.rules.analytics), left,
                               &counts, &counts.more);
    if (!keys.ok()) return keys.status();
    for (const std::string& k : *keys) {
      if (Status d = txn.Delete(t_.analytics, k); !d.ok()) return d;
    }
    counts.analytics += keys->size();
  }
  return counts;
}

Result<std::uint64_t> Retention::CountPending(const storage::ReadTxn& txn, const CompiledRetention& r,
                                              std::int64_t now_ms) const {
  constexpr std::uint64_t kNoLimit = std::numeric_limits<std::uint64_t>::max();
  SweepCounts scratch;
  bool more = false;
  std::uint64_t pending = 0;
  for (const auto& [hash, age] : r.event_hashes) {
    auto e = ExpiredEntries(txn, t_.expiry, std::string(1, kEventClass) + hash, 1 + kHashSize, kEventEntrySize,
                            RetentionCutoff(now_ms, age), kNoLimit, &scratch, &more);
    if (!e.ok()) return e.status();
    pending += e->size();
  }
  for (const auto& [hash, age] : r.collection_hashes) {
    auto e = ExpiredEntries(txn, t_.expiry, std::string(1, kRecordClass) + hash, 1 + kHashSize,
                            kRecordEntrySize, RetentionCutoff(now_ms, age), kNoLimit, &scratch, &more);
    if (!e.ok()) return e.status();
    pending += e->size();
  }
  if (r.rules.analytics > 0) {
    auto e = ExpiredEntries(txn, t_.analytics, {}, 0, codec::kAnalyticsKeySize, RetentionCutoff(now_ms, r.rules.analytics), kNoLimit,
                            &scratch, &more);
    if (!e.ok()) return e.status();
    pending += e->size();
  }
  return pending;
}

Result<Retention::Counters> Retention::ReadCounters(const storage::ReadTxn& txn, storage::Table meta) {
  std::string v;
  Status g = ReadPlain(txn, meta, TableId::kDataMeta, kCountersKey, &v);
  Counters c;
  if (g.IsNotFound()) return c;
  if (!g.ok()) return g;
  if (v.size() != 24) return Status::Corruption("retention counters have the wrong length");
  c.removed = util::DecodeFixed64BE(v.data());
  c.unaudited_personal = util::DecodeFixed64BE(v.data() + 8);
  c.unaudited_analytics = util::DecodeFixed64BE(v.data() + 16);
  return c;
}

Status Retention::WriteCounters(storage::WriteTxn& txn, storage::Table meta, const Counters& c) {
  std::string v;
  util::PutFixed64BE(&v, c.removed);
  util::PutFixed64BE(&v, c.unaudited_personal);
  util::PutFixed64BE(&v, c.unaudited_analytics);
  return txn.Put(meta, kCountersKey, PlainRow(TableId::kDataMeta, kCountersKey, v));
}

}  // namespace shredkv::engine
