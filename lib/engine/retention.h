// Retention (storage limitation by time, GDPR Art. 5(1)(e)): the rules, the
// time index that makes a sweep cost what expires, and the read filters.
//
// Layout (docs/format.md §5.7). Two plaintext tables in `data`, written in
// the same transaction as the row they describe:
//
//   expiry:       u8(1) ‖ H16_event_name ‖ ordered(ts) ‖ fixed64be(seq) ‖ person      → plain("")
//                 u8(2) ‖ H16_coll ‖ ordered(written_ms) ‖ person ‖ H16_key          → plain("")
//   expiry_refs:  person ‖ u8(1) ‖ ordered(ts) ‖ fixed64be(seq) → plain(H16_event_name)
//                 person ‖ u8(2) ‖ H16_coll ‖ H16_key           → plain(ordered(written_ms))
//
// `expiry` is ordered by (class, name hash, time): the entries of one rule
// that are past its cutoff form one contiguous prefix, so a sweep seeks once
// per rule and reads only entries that expire (plus one that does not).
// Analytics rows need no index: their table is keyed by ordered(ts) already.
// `expiry_refs` lets a record's rewrite or delete and a person's purge find
// the `expiry` entries (the event name is only in the sealed row, whose key
// may be gone). Only events and records whose name or collection has a rule
// are indexed (records since data format 4, whose sealed payload carries the
// last-write time that reads compare); a rule added later is back-filled.
//
// Thread safety: the rules are swapped atomically (a shared_ptr snapshot);
// the table functions run inside the caller's transaction.
#ifndef SHREDKV_ENGINE_RETENTION_H_
#define SHREDKV_ENGINE_RETENTION_H_

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>

#include "crypto/secure_memory.h"
#include "shredkv/options.h"
#include "engine/record_index.h"
#include "shredkv/store.h"
#include "storage/environment.h"

namespace shredkv::engine {

// Rules with names replaced by their index hashes, as the time index keys them.
struct CompiledRetention {
  RetentionRules rules;
  std::map<std::string, std::int64_t> event_hashes;       // H16_event_name → max age
  std::map<std::string, std::int64_t> collection_hashes;  // H16_coll → max age
  bool empty() const { return event_hashes.empty() && collection_hashes.empty() && rules.analytics == 0; }
  // Whether events of this name get time index entries: only names with a
  // rule do (an event rule added later is back-filled, IndexBackfill).
  bool IndexesEvent(std::string_view name) const { return rules.events.find(name) != rules.events.end(); }
  // Likewise for records: only collections with a rule get entries (data
  // format 4; a record's last-write time is in its sealed payload, from
  // which a collection rule added later is back-filled).
  bool IndexesCollection(std::string_view collection) const {
    return rules.collections.find(collection) != rules.collections.end();
  }
};

// A pending back-fill of the time index: events written while their name had
// no rule have no entries; when a rule for the name is added, the events
// table is walked once (in key order, resumable) and entries are written for
// the events whose name hash is in `name_hashes`. Stored in data meta.
struct IndexBackfill {
  std::set<std::string> name_hashes;  // H16_event_name of the newly ruled names
  std::string next_key;               // events-table key to resume at ("" = start)
  // Data format 4: records of collections without a rule have no entries
  // either; a collection rule added later walks the records table (after
  // the events, if both are pending), taking each record's last-write time
  // from its sealed payload. Empty once that walk is done.
  std::set<std::string> collection_hashes;  // H16_coll of the newly ruled collections
  std::string next_record_key;              // records-table key to resume at ("" = start)
  bool events_pending() const { return !name_hashes.empty(); }
  bool records_pending() const { return !collection_hashes.empty(); }
};

// Rows deleted by one sweep transaction.
struct SweepCounts {
  std::uint64_t events = 0, records = 0, analytics = 0;
  std::uint64_t seeks = 0, entries_read = 0;
  bool more = false;  // stopped at the row limit with expired rows left
  std::uint64_t total() const { return events + records + analytics; }
};

struct RetentionTables {
  storage::Table expiry, refs, events, records, analytics, meta;
};

class Retention {
 public:
  // `record_index`: the record metadata index, whose entries a record's
  // sweep removes with it (may be null in tools that sweep no records).
  Retention(RetentionTables tables, const crypto::SecretKey* index_key, const RecordIndex* record_index = nullptr)
      : t_(tables), index_key_(index_key), record_index_(record_index) {}

  // InvalidArgument for a max age <= 0 (analytics < 0) or a name outside 1..255 bytes.
  static Status Validate(const RetentionRules& rules);

  // The stored rules (none: empty rules). REQUIRES: in a txn.
  static Result<RetentionRules> Load(storage::ReadTxn& txn, storage::Table meta);
  static Status StoreRules(storage::WriteTxn& txn, storage::Table meta, const RetentionRules& rules);

  // The pending back-fill, if any. REQUIRES: in a txn.
  static Result<std::optional<IndexBackfill>> LoadBackfill(const storage::ReadTxn& txn, storage::Table meta);
  // Stores `backfill`, or clears it when nullopt.
  static Status StoreBackfill(storage::WriteTxn& txn, storage::Table meta,
                              const std::optional<IndexBackfill>& backfill);
  // The H16 hashes of the event names `next` has a rule for and `previous`
  // has not: the names whose events need a back-fill.
  std::set<std::string> NewlyRuledEvents(const RetentionRules& previous, const RetentionRules& next) const;
  // The same for collections (H16_coll, as the records table keys them).
  std::set<std::string> NewlyRuledCollections(const RetentionRules& previous, const RetentionRules& next) const;
  // Whether `record_key` (a records-table key) belongs to one of `hashes`.
  static bool RecordKeyInCollections(std::string_view record_key, const std::set<std::string>& hashes);
  // Whether the record has a time index entry (its ref). A read error other
  // than NotFound goes to `*status` (OK otherwise).
  bool RecordIndexed(const storage::ReadTxn& txn, std::string_view record_key, Status* status) const;

  // Replaces the rules that reads and sweeps apply. REQUIRES: validated.
  void SetRules(const RetentionRules& rules);
  std::shared_ptr<const CompiledRetention> rules() const;

  // ---- write hooks: inside the data transaction that writes the row ----

  // Writes the event's entry and ref. Callers index only events whose name
  // has a rule (CompiledRetention::IndexesEvent) or is being back-filled;
  // rewriting an existing entry is harmless (same key, same value).
  Status IndexEvent(storage::WriteTxn& txn, const PersonId& person, std::string_view name,
                    std::int64_t ts_ms, std::uint64_t seq) const;
  // `record_key` is the records-table key (person ‖ H16_coll ‖ H16_key).
  // Replaces the record's previous entry, if any.
  Status IndexRecord(storage::WriteTxn& txn, std::string_view record_key, std::int64_t written_ms) const;
  Status UnindexRecord(storage::WriteTxn& txn, std::string_view record_key) const;
  // Removes an event's entry and ref (its row is being deleted outside a
  // sweep: the purge of an erased category). OK if it has none.
  Status UnindexEvent(storage::WriteTxn& txn, const PersonId& person, std::int64_t ts_ms, std::uint64_t seq) const;
  // Deletes up to `budget` of the person's refs with their index entries;
  // `*complete` once none is left.
  Status PurgePerson(storage::WriteTxn& txn, const PersonId& person, std::uint64_t budget,
                     std::uint64_t* deleted, bool* complete) const;

  // ---- read filters (now = the store's clock) ----

  static bool EventExpired(const CompiledRetention& r, std::string_view name, std::int64_t ts_ms,
                           std::int64_t now_ms);
  static bool AnalyticsExpired(const CompiledRetention& r, std::int64_t ts_ms, std::int64_t now_ms);
  // Whether the record (records-table key, collection name, the written
  // time its payload carries) is past its collection's rule. A payload
  // without a time (written before data format 4) has it in `expiry_refs`,
  // read only when the collection has a rule.
  Result<bool> RecordExpired(const storage::ReadTxn& txn, const CompiledRetention& r,
                             std::string_view collection, std::string_view record_key,
                             std::optional<std::int64_t> written_ms, std::int64_t now_ms) const;

  // ---- sweep ----

  // Deletes up to `max_rows` expired rows in `txn`: events and records
  // through the time index, analytics rows from the head of their table.
  Result<SweepCounts> SweepBatch(storage::WriteTxn& txn, const CompiledRetention& r, std::int64_t now_ms,
                                 std::uint64_t max_rows) const;
  // Items past their rule not yet removed. Cost: proportional to that count.
  Result<std::uint64_t> CountPending(const storage::ReadTxn& txn, const CompiledRetention& r,
                                     std::int64_t now_ms) const;

  // Meta counters: rows removed ever, and rows removed not yet audited
  // (personal = events + records, analytics).
  struct Counters {
    std::uint64_t removed = 0;
    std::uint64_t unaudited_personal = 0;
    std::uint64_t unaudited_analytics = 0;
  };
  static Result<Counters> ReadCounters(const storage::ReadTxn& txn, storage::Table meta);
  static Status WriteCounters(storage::WriteTxn& txn, storage::Table meta, const Counters& c);

  std::string EventNameHash(std::string_view name) const;
  std::string CollectionHash(std::string_view collection) const;

 private:
  RetentionTables t_;
  const crypto::SecretKey* index_key_;
  const RecordIndex* record_index_ = nullptr;
  mutable std::mutex mu_;
  std::shared_ptr<const CompiledRetention> rules_ = std::make_shared<CompiledRetention>();
};

// The cutoff of a max age: items with time <= cutoff are expired (now -
// time >= max age). nullopt when no time is: `now_ms` is within the max
// age of INT64_MIN (outside audit 35a, F4: the cutoff saturated at
// INT64_MIN, and an item at INT64_MIN counted as expired however young).
// REQUIRES: max_age_ms > 0.
std::optional<std::int64_t> RetentionCutoff(std::int64_t now_ms, std::int64_t max_age_ms);

}  // namespace shredkv::engine

#endif  // SHREDKV_ENGINE_RETENTION_H_
