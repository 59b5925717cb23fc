// EngineContext: the shared state of one open store — options, the two
// environments and their tables, the key store, policy, retention, audit,
// outbox, locks, counters and clock — and the small reads every service
// needs. StoreImpl owns it; the services (write path, erasure, maintenance,
// processing, retention, verification, iterators) receive it by reference,
// as LevelDB's DBImpl shares its state with VersionSet and MemTable.
//
// Lock order (docs/architecture.md §8): rotation_mu (rotation, compaction,
// root-key rotation, backup take it first) → close_mu (shared for calls,
// exclusive for Close and file swaps) → write_mu → a person's stripe
// (person_locks) → LMDB's writer locks, `data` before `keys`.
// Thread safety: the members are set up by Open before any call and torn
// down by Close after every call; the mutable state is guarded as noted.
#ifndef SHREDKV_ENGINE_CONTEXT_H_
#define SHREDKV_ENGINE_CONTEXT_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <unordered_map>

#include "codec/row_codec.h"
#include "crypto/aead.h"
#include "engine/analytics_link.h"
#include "engine/analytics_staging.h"
#include "engine/audit.h"
#include "engine/consent_index.h"
#include "engine/feed.h"
#include "engine/identifiers.h"
#include "engine/leases.h"
#include "engine/metrics.h"
#include "engine/notifier.h"
#include "engine/person_locks.h"
#include "engine/policy.h"
#include "engine/record_index.h"
#include "engine/retention.h"
#include "keys/key_store.h"
#include "shredkv/options.h"
#include "shredkv/store.h"
#include "storage/environment.h"
#include "storage/process_guard.h"
#include "util/gated_shared_mutex.h"

namespace shredkv::engine {

// 2: per person × category keys (person rows name their key slot, profiles
// one row per slot) and the retention time index (tables expiry,
// expiry_refs). 3: analytics rows keyed bucket ‖ row id, unlinkable from
// event rows (engine/analytics_link.h); meta `analytics_granularity`. A
// format-2 store is migrated at open (engine/migration.h); format 1 and
// formats newer than this are UnsupportedVersion.
// 4: a record's sealed payload carries its last-write time, and only
// records of collections with a retention rule have time index entries
// (format 3 stores are read as they are and marked 4 at a writable open).
inline constexpr std::uint32_t kDataFormatVersion = 4;
inline constexpr std::uint32_t kOldestDataFormatVersion = 2;
// The first format with format 3's row layout (unlinkable analytics rows):
// a store below it needs the migration before any read.
inline constexpr std::uint32_t kUnlinkedDataFormatVersion = 3;

struct DataTables {
  storage::Table meta, people, ident, ident_by_person, profiles, events, records, analytics;
  storage::Table erased;  // person → plain(request id): erasure applied to `data`
  storage::Table audit, audit_by_request;
  storage::Table versions;  // person → plain(u64): bumped by every non-append change
  storage::Table outbox;    // the change feed
  storage::Table restrictions;     // person → plain(restriction)
  storage::Table consent;          // person ‖ purpose → plain(u8 granted ‖ i64 time)
  storage::Table consent_history;  // person ‖ u64 seq → sealed(consent record)
  storage::Table expiry, expiry_refs;  // the retention time index (engine/retention.h)
  // event seq → sealed analytics row awaiting materialisation
  // (engine/analytics_staging.h); absent in a read-only open of a store
  // made before it existed.
  storage::Table analytics_staged;
  // The record metadata index (engine/record_index.h); added like
  // analytics_staged.
  storage::Table record_index, record_index_refs;
  storage::Table consent_by_purpose;  // engine/consent_index.h; added likewise
  // person → plain(u64 pool index): the person's key is that pool row of
  // `keys` until a `keys` commit adopts it (keys/key_store.h); added likewise.
  storage::Table key_claims;
};

struct EngineContext {
  Options options;
  std::unique_ptr<storage::DirectoryClaim> claim;
  // A read-only open beside a writer in another process (DirectoryClaim
  // kLiveReader): LMDB's reader table, no DEK cache (the writer may erase a
  // person at any moment). Set at open.
  bool beside_writer = false;
  // Held by a writer around a file swap (compaction, the keys rebuild) so
  // that no reader beside it maps a file being replaced: waits up to
  // kReaderWaitMs for such readers to close (Busy after).
  static constexpr std::int64_t kReaderWaitMs = 30'000;
  Result<std::unique_ptr<storage::DirectoryClaim::ReaderExclusion>> ExcludeReaders() const {
    return storage::DirectoryClaim::ExcludeLiveReaders(options.directory, kReaderWaitMs);
  }
  std::unique_ptr<keys::KeyStore> keys;
  std::unique_ptr<storage::Environment> data;
  DataTables tables;
  std::optional<IdentifierRegistry> registry;
  crypto::CipherId cipher = crypto::CipherId::kXChaCha20Poly1305;
  std::uint64_t fork_generation = 0;
  std::optional<Policy> policy;
  std::optional<Retention> retention;
  std::optional<AuditLog> audit;
  std::optional<Outbox> outbox;
  std::optional<AnalyticsStaging> staging;
  std::optional<RecordIndex> record_index;
  std::optional<ConsentIndex> consent_index;

  // Shared by every call, exclusive for Close and the file swaps; writer-first
  // so a steady stream of calls cannot hold off a swap or Close.
  util::GatedSharedMutex close_mu;
  std::atomic<bool> closed{false};
  // Bumped (release) after each erasure's commit in `keys`, before the
  // person locks are released: an iterator holding entries read at an older
  // epoch checks them again (engine/iterators.cc), so no call returns data
  // of an erasure that returned, also not from a batch read before it. Read
  // through ErasureEpoch().
  std::atomic<std::uint64_t> erasure_epoch{0};
  // Changes whenever an erasure may have committed since: erasure_epoch, or
  // for a read-only open (whose writer, if any, is another process) the last
  // `keys` transaction ID.
  std::uint64_t ErasureEpoch();
  std::mutex write_mu;     // every write to either environment
  std::mutex rotation_mu;  // one rotation or compaction at a time
  PersonLocks person_locks;
  LeaseTable leases;

  std::uint64_t next_event_seq = 1;  // guarded by write_mu
  // Orphan keys (issue 23): keys of people whose creation never reached
  // `data`. A pass over every person with keys runs after each open (a
  // crash may have left some) and after a failed `data` commit that
  // followed PutDeks; Maintenance::CollectOrphans walks it in budgeted
  // steps from `orphan_cursor` (a person ID; empty: from the first).
  bool orphan_pass_pending = true;  // guarded by write_mu
  std::string orphan_cursor;        // guarded by write_mu
  std::atomic<std::uint64_t> orphan_keys_collected{0};  // people, since open
  // The data format as stored: kOldestDataFormatVersion until the migration
  // finished. Set at open, before any call is served.
  std::uint32_t data_format = kDataFormatVersion;
  // The stored analytics granularity (data meta `analytics_granularity`).
  std::int64_t analytics_granularity_ms = 3600ll * 1000;
  // How linked analytics keys are built (data meta `analytics_layout`;
  // engine/analytics_link.h). Set at open, before any call is served.
  AnalyticsLayout analytics_layout = AnalyticsLayout::kGrouped;
  // The data meta row that records `analytics_layout` (InitDataMeta and the
  // migration write it).
  [[nodiscard]] Status PutAnalyticsLayout(storage::WriteTxn& txn) const;
  // The store's place in a sharded store: Options::shard_placement, or the
  // data meta row `placement` when opened without it. Set at open.
  std::optional<ShardPlacement> placement;
  // Recorded but not given: a shard opened alone (Options::shard_placement
  // says what it refuses). Set at open.
  bool shard_opened_alone = false;
  // Whether `id` routes to this store's place (true without a placement).
  bool InPlace(const PersonId& id) const;
  // Reads the data meta row `placement` (after ReadDataMeta), checks it
  // against Options::shard_placement, records it if given and not yet
  // recorded (a writable open) and sets `placement`, `shard_opened_alone`.
  [[nodiscard]] Status LoadPlacement();
  // The data meta row `format` = kDataFormatVersion (InitDataMeta, the end of
  // the format-2 migration, the format-3 mark).
  [[nodiscard]] Status PutDataFormat(storage::WriteTxn& txn) const;

  // Listeners and logger (Options::listeners, Options::logger).
  Notifier events;
  // StoreStats::operations.
  OperationMetrics metrics;
  // Options::progress and every listener's OnProgress.
  bool wants_progress() const { return static_cast<bool>(options.progress) || events.listening(); }
  void ReportProgress(std::string_view operation, std::uint64_t done, std::uint64_t total) {
    if (options.progress) options.progress(operation, done, total);
    events.Progress(operation, done, total);
  }

  std::atomic<std::uint64_t> tracking_rejected{0};
  std::atomic<std::uint64_t> tracking_dropped{0};
  // Write batches committed, and the `data` commits that carried them
  // (group commit: fewer commits than batches), since open.
  std::atomic<std::uint64_t> write_batches{0};
  std::atomic<std::uint64_t> write_commits{0};
  std::atomic<std::uint64_t> suppressed_rejections{0};
  // Event rows the retention back-fill skipped because they did not open or
  // decode, since open.
  std::atomic<std::uint64_t> backfill_unreadable_rows{0};

  // The store's clock (Options::clock or the system clock), ms since the epoch.
  std::int64_t Now() const;
  // OK unless closed, used after fork, or failed (SetFatal).
  Status CheckUsable() const;
  // CheckUsable without the closed check: no fatal error, not a forked child.
  Status CheckHealthy() const;
  // Records that a file swap left an environment closed: every call fails
  // with it until the store is reopened.
  void SetFatal(Status s);

  // Opens (or with `create`, initialises) the `data` environment and the
  // objects over it (tables, retention, audit, outbox), reading its format,
  // granularity and event counter. Used by Open and by compaction's reopen.
  Status OpenDataEnvironment(bool create);

  // Loads the key pool from `data`'s claims (keys::KeyStore::LoadPool) and,
  // on a writable open, deletes the claims `keys` has already adopted;
  // beside a writer, lets the key store look claims up in `data`. After
  // OpenDataEnvironment, before any write or erasure.
  Status LoadKeyPool();
  // Walks every page of both files (storage::Environment::CheckPages):
  // Corruption naming the first problem, "nothing was <not_done>", if any is
  // damaged. For work that reads rows anywhere in the files — a backup, and
  // at open a migration, the recovery of an erasure cut short, a first index
  // back-fill — where LMDB would otherwise meet the damage first and may
  // abort.
  Status CheckAllPages(std::string_view not_done);

  // Has `keys` adopt every claimed key (keys::KeyStore::AdoptClaims) and
  // deletes the adopted claims from `data`. REQUIRES: write_mu held, a
  // writable open.
  Status AdoptKeyClaims();

  // What PersonKey answers for a person whose rows are in `data` but whose
  // key is gone from `keys` without an erasure fence (a damaged `deks` page,
  // a keys file from another copy of the store).
  enum class LostKey {
    kCorruption,  // Corruption: the calls that name the person
    kNotFound,    // NotFound, without looking: store-wide walks that skip the
                  // people they cannot open (Verify reports them)
  };
  // The person's key. NotFound for a person ID that names no one, Erased for
  // an erased person, and for a lost key as `lost` says.
  Result<keys::DekHandle> PersonKey(const PersonId& id, LostKey lost = LostKey::kCorruption);
  // Suppressed is set if the identifier hash is on the suppression list.
  Status Suppressed(std::string_view hash, bool* suppressed);
  const crypto::SecretKey& index_key() const { return keys->index_key(); }
  // 16-byte keyed hash of a collection name (store-wide key). The hashes
  // of the first kCollectionHashesKept names asked for are kept (a record
  // read or write hashes its collection each time; services use a handful
  // of collections). Thread-safe.
  std::string CollectionHash(std::string_view collection) const;
  static constexpr std::size_t kCollectionHashesKept = 256;
  // The person's audit subject: a 16-byte pseudonym keyed with the person
  // key, which names them in processing-read audit entries and leads nowhere
  // once the key is shredded (Options::audit_processing_reads).
  static std::string AuditSubject(const crypto::SecretKey& person_key);
  // 16-byte hash of a record key under the person's own key: unlinkable once
  // the key is shredded.
  static std::string RecordKeyHash(const crypto::SecretKey& dek, std::string_view collection,
                                   std::string_view key);
  // The key of the analytics row of the event (ts, seq) sealed under the slot
  // key whose analytics link is `link` (engine/analytics_link.h).
  std::string AnalyticsKeyFor(std::string_view link, std::int64_t ts_ms, std::uint64_t seq) const;
  // The payload (before its checksum) of the analytics row of the event
  // `seq` whose key is `akey`: the staged row if there is one (*staged set),
  // else the row in `analytics`. NotFound if neither; Corruption if the
  // staged row of `seq` has another key. `look_in_staging` false: the caller
  // knows the staging is empty in `txn` (one lookup less a row).
  Status ReadAnalyticsRow(const storage::ReadTxn& txn, std::uint64_t seq, std::string_view akey,
                          std::string* payload, bool* staged, bool look_in_staging = true) const;
  // Materialises the staged analytics rows (engine/analytics_staging.h):
  // all of them, or with `last_bucket_ms` those of buckets that start at or
  // before it. In its own `data` transaction, none if nothing moves.
  // Returns the rows moved. REQUIRES: write_mu held. ReadOnly on a
  // read-only open.
  Result<std::uint64_t> MaterialiseAnalytics(std::optional<std::int64_t> last_bucket_ms);
  // The start of the last bucket that has ended by the store's clock.
  std::int64_t LastClosedAnalyticsBucket() const;

  // The person's decrypted person row (identifiers, anonymous ID, category
  // slots) under `person_key`, in its own read transaction. NotFound if the
  // person has no row.
  Result<codec::PersonPayload> ReadPersonPayload(const PersonId& id, const crypto::SecretKey& person_key);

  // The people of `with_keys` (people who have keys) that have no person
  // row in `data`: orphan keys if no creation is between its two commits
  // (REQUIRES: write_mu held), in one read transaction.
  Result<std::vector<PersonId>> PeopleWithoutRows(const std::vector<PersonId>& with_keys);

  // Reads of clear per-person state. REQUIRES: in a `data` transaction.
  Result<RestrictionState> ReadRestriction(storage::ReadTxn& txn, const PersonId& id) const;
  Result<std::map<std::string, bool>> ReadConsent(storage::ReadTxn& txn, const PersonId& id) const;
  // The person's change version (0 if never changed).
  Result<std::uint64_t> PersonVersion(storage::ReadTxn& txn, const PersonId& id) const;
  // Items expired as of `now_ms` and not yet swept: rows past `rules`,
  // records past their own expiry, the feed's expired prefix and, with
  // `count_staged`, the expired analytics rows still staged (every staged
  // row is opened for that: StoreStats::expired_pending). A sweep, which
  // materialised those first, counts without them (SweepResult::pending).
  Result<std::uint64_t> ExpiredPending(const storage::ReadTxn& txn, const CompiledRetention& rules,
                                       std::int64_t now_ms, bool count_staged) const;

 private:
  // OpenDataEnvironment's reads of `data` meta (format, granularity, store
  // id, event counter); *fresh for an environment never initialised.
  Status ReadDataMeta(storage::ReadTxn& txn, bool* fresh);
  // Writes the meta rows of a new `data` environment.
  Status InitDataMeta(storage::WriteTxn& txn);

  mutable std::mutex fatal_mu_;
  Status fatal_;
  mutable std::shared_mutex collection_hashes_mu_;
  mutable std::unordered_map<std::string, std::string> collection_hashes_;  // name -> CollectionHash
};

// The entry of every store call: holds close_mu shared for the call and
// checks that the store is usable. Calls that swap files or wait for
// in-flight calls (Close, compaction, rotation) lock close_mu themselves.
// What a call does to the store, for CallGuard.
enum class CallAccess {
  kAny,    // reads, or writes only through LMDB write transactions (a
           // read-only environment refuses those itself)
  kWrite,  // writes files beside the environments too (compaction, key
           // rotation, purge, sweep): ReadOnly on a read-only open
};

class CallGuard {
 public:
  explicit CallGuard(EngineContext& ctx, CallAccess access = CallAccess::kAny)
      : lock_(ctx.close_mu), status_(ctx.CheckUsable()) {
    if (status_.ok() && access == CallAccess::kWrite && ctx.options.read_only) {
      status_ = Status::ReadOnly("the store is open read-only (Options::read_only)");
    }
  }
  bool ok() const { return status_.ok(); }
  const Status& status() const { return status_; }

 private:
  std::shared_lock<util::GatedSharedMutex> lock_;
  Status status_;
};

// Validation shared by the write path and the readers.
Status ValidateName(std::string_view name, std::string_view what);
Status ValidateRecordKey(std::string_view collection, std::string_view key);
// Checks a record's metadata against the limits of RecordMetadata and the
// registered purposes, and puts it in its stored form (names sorted, without
// duplicates). InvalidArgument naming the field otherwise.
Status CanonicalRecordMetadata(const Policy& policy, RecordMetadata* metadata);
// Whether the record's own expiry (RecordMetadata::expires_ms) has come: it
// is then gone for every reader, like a record past its retention.
inline bool RecordMetadataExpired(const Record& r, std::int64_t now_ms) {
  return r.metadata.expires_ms != 0 && r.metadata.expires_ms <= now_ms;
}
inline constexpr std::size_t kMaxRecordValueSize = 16u << 20;

}  // namespace shredkv::engine

#endif  // SHREDKV_ENGINE_CONTEXT_H_
