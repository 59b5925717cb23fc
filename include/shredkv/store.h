// shredkv — the store: people, identifiers, profiles, events, per-person
// records and analytics rows, each person's data under the person's own key.
//
// Thread safety: one Store is shared by any number of threads. Reads run in
// parallel; writes are serialised inside the store (LMDB has one writer per
// environment). A Store must not be used in a child process after fork():
// every call there fails with FailedPrecondition, Close() included, which
// then returns at once and releases nothing the parent shares. Do not
// destroy it in the child either if another thread of the parent may have
// been inside a call at the fork (a lock or condition variable that thread
// held would never be released there): leak it (the C API's shredkv_close
// and the Python package do). A directory can be open in
// at most one Store at a time, in one process (an exclusive lock on
// <dir>/LOCK; a second Open fails with FailedPrecondition).
#ifndef SHREDKV_STORE_H_
#define SHREDKV_STORE_H_

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "shredkv/backup.h"
#include "shredkv/iterator.h"
#include "shredkv/options.h"
#include "shredkv/status.h"
#include "shredkv/types.h"
#include "shredkv/visibility.h"
#include "shredkv/write_batch.h"

namespace shredkv {

// Selects analytics rows: a time range, and optionally one event name.
struct AnalyticsQuery {
  TimeRange range;
  std::optional<std::string> name;
};

// Which records Store::FindRecords returns: those whose metadata
// (RecordMetadata) lists `value` among its purposes or its recipients, or
// (kExpiresBefore) whose own expiry falls before `before_ms` — records not
// yet expired, soonest first.
struct RecordQuery {
  enum class Field { kPurpose, kRecipient, kExpiresBefore };
  Field field = Field::kPurpose;
  std::string value;           // kPurpose, kRecipient
  std::int64_t before_ms = 0;  // kExpiresBefore
};

// A record that a query found, with the person it belongs to.
struct FoundRecord {
  PersonId person;
  Record record;
};

// Options of one erasure request.
struct EraseOptions {
  // Caller-chosen ID (1..64 printable ASCII, no space) to look the erasure
  // up later;
  // a random one is generated if empty. AlreadyExists if used before.
  std::string request_id;
  // Put the person's identifiers on the suppression list: creating a person
  // or linking under them fails with Suppressed until Unsuppress().
  bool suppress = false;
  AnalyticsOnErase analytics = AnalyticsOnErase::kKeep;
};

struct PurgeResult {
  std::uint64_t rows_deleted = 0;
  std::uint64_t people_purged = 0;   // people whose purge completed in this call
  std::uint64_t people_pending = 0;  // erased people still awaiting purge
};

// What one Store::Sweep removed (rows past their retention).
struct SweepResult {
  std::uint64_t events_deleted = 0;
  std::uint64_t records_deleted = 0;
  std::uint64_t analytics_deleted = 0;
  std::uint64_t batches = 0;          // write transactions committed
  // Expired items left because the budget ran out (counted then, at a cost
  // proportional to the count); 0 when the sweep removed everything.
  std::uint64_t pending = 0;
  // Cost, independent of the store's size: B-tree seeks (one per rule and
  // batch) and time-index entries read; with nothing expired, seeks equals
  // the number of event, collection and analytics rules and entries_read
  // is at most that (each seek reads the first entry it finds, to see that
  // it is not expired; outside audit 35a, F5: this said 0). The feed
  // rule's notices are not counted here.
  std::uint64_t seeks = 0;
  std::uint64_t entries_read = 0;
  // Change-feed notices past RetentionRules::feed (never acknowledged),
  // deleted oldest first with the budget the rows left (since stop 30).
  std::uint64_t notices_deleted = 0;

  // Everything the sweep deleted: rows and notices.
  std::uint64_t deleted() const { return events_deleted + records_deleted + analytics_deleted + notices_deleted; }
};

struct RotationResult {
  std::uint64_t new_epoch = 0;
  std::uint64_t destroyed_epochs = 0;
  std::uint64_t rewrapped_keys = 0;
  std::uint64_t batches = 0;
  std::uint64_t keys_file_bytes_before = 0;
  std::uint64_t keys_file_bytes_after = 0;
};

struct CompactionResult {
  std::uint64_t file_bytes_before = 0;
  std::uint64_t file_bytes_after = 0;
};

struct AuditVerification {
  std::uint64_t entries = 0;
  bool intact = false;
  std::string head_hash;  // hex hash of the last entry
  std::string problem;    // empty when intact
};

// A processing lease: a worker's scoped hold on one person for one purpose
// (design §6). While any lease on a person is held, Erase and Restrict on
// that person wait (up to Options::lease_drain_timeout_ms, then Busy), and
// while they wait no new lease is granted (Busy). A thread must not call
// Erase, EraseCategory or Restrict on a person while a lease it acquired on
// that person is still held: the call waits for that lease like any other
// (it may have been handed to another thread that will release it), and if
// the timeout passes it fails with FailedPrecondition naming the lease
// instead of Busy. Destroying the Lease
// releases it. Reads through a lease leave out items of categories the
// person restricted. Leases are per process (see docs/security.md).
// Thread safety: a Lease is used by one thread; it must not outlive its Store.
class SHREDKV_EXPORT Lease {
 public:
  virtual ~Lease() = default;
  virtual const PersonId& person() const = 0;
  virtual const std::string& purpose() const = 0;
  // The profile without attributes of restricted categories.
  virtual Result<Attributes> GetProfile() = 0;
  // Events without those of restricted categories. The iterators of
  // ScanEvents and ScanRecords read for the lease: once it is destroyed they
  // drop what they buffered (an entry value() handed out stays until Next())
  // and end with FailedPrecondition (since stop 37: they went on reading
  // after a restriction the lease's release had let through).
  virtual std::unique_ptr<EventIterator> ScanEvents(TimeRange range = {}) = 0;
  // Restricted if the record's own category is restricted (not its
  // collection's declared one: a batch put may name another), or if the
  // record names purposes (RecordMetadata::purposes) and not this lease's.
  virtual Result<std::string> Get(std::string_view collection, std::string_view key) = 0;
  virtual std::unique_ptr<RecordIterator> ScanRecords(std::string_view collection,
                                                      std::string_view prefix = {}) = 0;
};

// What Store::Verify found. Problems name the table and what is wrong,
// never personal data.
struct VerifyReport {
  std::uint64_t pages = 0;  // pages of both files walked and checked
  std::uint64_t people = 0;
  std::uint64_t identifiers = 0;
  std::uint64_t events = 0;
  std::uint64_t records = 0;
  std::uint64_t analytics_rows = 0;
  std::uint64_t audit_entries = 0;
  // People with keys but no person row: left by a creation whose data
  // commit never happened (a crash between the two commits). Garbage that
  // protects nothing, not a problem; maintenance collects them.
  std::uint64_t orphan_keys = 0;
  // At most 1000 are listed (page problems: at most 100 a file). When pages
  // are damaged the row checks are skipped, and the last line says so: not
  // a problem, not counted.
  std::vector<std::string> problems;
  std::uint64_t problem_count = 0;  // every problem found, listed or not
  bool ok() const { return problem_count == 0; }
};

// Buckets of OperationStats::latency_buckets.
inline constexpr std::size_t kLatencyBuckets = 28;

// The calls of one operation since the store was opened (StoreStats::operations).
struct SHREDKV_EXPORT OperationStats {
  // write, resolve, get_person, get_profile, get_record, erase (all three
  // kinds), acquire_lease, purge, rotate_epoch, compact_data, sweep,
  // run_maintenance, verify (docs/operations.md). Maintenance the
  // background thread runs is not counted here (listeners see it).
  std::string name;
  std::uint64_t calls = 0;
  std::uint64_t errors = 0;    // calls that returned a status other than OK (NotFound too)
  std::uint64_t total_us = 0;  // their latencies summed, in µs
  // latency_buckets[i] for i < kLatencyBuckets - 1: calls that took more
  // than 2^(i-1) µs and at most 2^i µs (bucket 0: at most 1 µs); the last
  // bucket: longer than 2^(kLatencyBuckets - 2) µs (about 67 s).
  std::array<std::uint64_t, kLatencyBuckets> latency_buckets{};
  // The upper bound, in µs, of the bucket that holds the q-quantile of the
  // latencies (0 < q <= 1): an estimate within a factor of two. 0 with no
  // calls; UINT64_MAX if it falls in the last bucket.
  std::uint64_t QuantileUpperBoundUs(double q) const;
};

// Counts and sizes, read from one consistent snapshot of each environment.
struct StoreStats {
  // The store's ID, 32 hex digits: made with the store, the same for every
  // copy of it (backups, restores; BackupInfo::store_id). Empty from
  // ShardedStore::Stats (each shard has its own: ShardStats).
  std::string store_id;
  // The `data` environment's format version as stored (3; 2 while a
  // migration from version 2 is pending, on a read-only open).
  std::uint32_t format_version = 0;
  // People held: created and not erased (since stop 36 an erased person
  // whose rows await the purge is not counted, nor in `restricted`).
  std::uint64_t people = 0;
  std::uint64_t erased = 0;          // people ever erased (fences)
  std::uint64_t suppressed = 0;      // identifiers on the suppression list
  std::uint64_t pending_purge = 0;   // erased people (and category keys) whose rows remain
  // Category keys ever erased, and category erasures fenced by
  // ApplyErasureLog without a key here (since stop 37).
  std::uint64_t erased_categories = 0;
  std::uint64_t erasures_since_rotation = 0;
  std::uint64_t suppressed_rejections = 0;  // writes refused as Suppressed since open
  std::uint64_t restricted = 0;             // people with a restriction in force
  std::uint64_t tracking_rejected = 0;      // events refused by the tracking policy since open
  std::uint64_t tracking_dropped = 0;       // events dropped by the tracking policy since open
  std::uint64_t oldest_key_epoch = 0;
  std::uint64_t expired_removed = 0;  // rows removed by sweeps (events, records, analytics; change-feed notices since stop 39), ever
  // Items past their retention (change-feed notices past the feed rule
  // too, since stop 30), and records past their own expiry
  // (RecordMetadata::expires_ms; counted since stop 28), invisible,
  // awaiting a sweep (counted through the time index and the record index's
  // expiry entries: events of a name whose rule's back-fill is still pending
  // are not counted until the next Sweep finishes it; a record past both
  // its collection's rule and its own expiry counts twice, so this is an
  // upper bound then, as SweepResult::pending is). Expired analytics rows
  // still staged count too (since stop 35): with an analytics rule, Stats
  // opens every staged row for that (the staging holds at most 262,144;
  // maintenance moves those whose hour has ended).
  std::uint64_t expired_pending = 0;
  // A time index back-fill (a rule given to an event name after events of
  // that name were written) is recorded and not finished: the next Sweep
  // (or background maintenance) finishes it first, and until then
  // expired_pending leaves out the events it has not reached.
  bool retention_backfill_pending = false;
  // People whose keys maintenance deleted because their creation never
  // reached `data` (a crash or a failed commit between the two), since open.
  std::uint64_t orphan_keys_collected = 0;
  // Write() batches committed since open, and the `data` commits that
  // carried them: concurrent writers share commits (group commit), so
  // write_commits <= write_batches.
  std::uint64_t write_batches = 0;
  std::uint64_t write_commits = 0;
  std::uint64_t identifiers = 0;
  std::uint64_t events = 0;
  std::uint64_t records = 0;
  std::uint64_t analytics_rows = 0;    // staged ones included
  // Analytics rows written but not yet materialised (sealed in the staging,
  // docs/format.md §5.4.1): maintenance, CompactData and ScanAnalytics move them.
  std::uint64_t analytics_staged = 0;
  std::uint64_t key_epoch = 0;
  std::uint64_t keys_file_bytes = 0;
  std::uint64_t data_file_bytes = 0;
  std::uint64_t data_map_bytes = 0;
  // Calls, failures and latencies of the main operations since open, one
  // entry an operation (also those never called), in a fixed order.
  std::vector<OperationStats> operations;
  // A rotation (RotateEpoch, RotateRootKey) committed and the `keys` file
  // it must rebuild is not rebuilt yet: cut short, or its rebuild failed
  // (a full disk, a reader beside it for 30 s). The next writable open or
  // maintenance round finishes it; a read-only open sees it pending. Since
  // outside audit 31 (F2: read-only read-outs said nothing awaited).
  bool keys_rebuild_pending = false;
  // Erasures (people) whose epoch keys such a rotation destroyed: their
  // receipts say logical until the rebuild is done, and
  // erasures_since_rotation no longer counts them.
  std::uint64_t erasures_awaiting_rebuild = 0;
};

class SHREDKV_EXPORT Store {
 public:
  // Opens (or with create_if_missing, creates) the store in
  // options.directory. Errors: InvalidArgument (bad options; a backup's
  // directory — it holds a MANIFEST: restore it, so that the erasures made
  // since are applied — or a sharded store's — it holds SHARDS: open it
  // with ShardedStore), NotFound (no
  // store and !create_if_missing), AlreadyExists (error_if_exists),
  // WrongKey (the provider's key does not open this store), Corruption
  // (damaged or mismatched environments), FailedPrecondition (directory
  // already open in this process), Busy (open in another process, or, for
  // a writable open, open read-only in another process), ReadOnly
  // (the directory or its files cannot be written: a read-only mount, no
  // write permission — Options::read_only opens such a store to read; a
  // format-2 store opened read-only; with create_if_missing, a store
  // directory that cannot be created there), UnsupportedVersion, IOError.
  static Result<std::unique_ptr<Store>> Open(Options options);

  Store() = default;
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;
  // Closes the store if Close() was not called. Outstanding iterators must be
  // destroyed before the store. Destroying a store from one of its own
  // listener, logger or progress callbacks is a programming error: the
  // process is aborted with a message (the call delivering the callback
  // still uses the store).
  virtual ~Store() = default;

  // Waits for calls in flight, then closes both environments and wipes keys.
  // Every later call returns FailedPrecondition. Idempotent. On the store's
  // own background maintenance thread (a listener or logger there), and in
  // a listener, logger or progress callback of this store on any thread
  // (the call delivering it still uses the store; since stop 37), it
  // returns FailedPrecondition and the store stays open.
  virtual Status Close() = 0;

  // ---- People and identifiers ----------------------------------------------

  // Creates a person with the given identifiers (at least one) and initial
  // profile. Errors: AlreadyExists if an identifier belongs to someone else,
  // InvalidArgument for an unknown type or a value that fails normalisation.
  virtual Result<PersonId> CreatePerson(const std::vector<Identifier>& identifiers,
                                        const Attributes& profile = {}) = 0;

  // The person an identifier belongs to. NotFound if none, Suppressed if the
  // identifier is on the suppression list, Erased if its person was erased
  // and the index entry not yet released.
  virtual Result<PersonId> Resolve(const Identifier& identifier) = 0;

  // Identifiers, anonymous ID, creation time and key epoch of a person.
  virtual Result<PersonInfo> GetPerson(const PersonId& id) = 0;

  // AlreadyExists if the identifier belongs to someone else; OK if it is
  // already this person's (then nothing changes). A link writes a
  // rectification notice naming "identifier.<type>" (Art. 19; as
  // UnlinkIdentifier and PatchProfile do, one per person and Write, none for
  // a person created in the same WriteBatch).
  virtual Status LinkIdentifier(const PersonId& id, const Identifier& identifier) = 0;

  // NotFound if the identifier is not this person's. A person may be left
  // with no identifiers; they stay reachable by PersonId. Writes a
  // rectification notice naming "identifier.<type>".
  virtual Status UnlinkIdentifier(const PersonId& id, const Identifier& identifier) = 0;

  // ---- Profiles -------------------------------------------------------------

  virtual Result<Attributes> GetProfile(const PersonId& id) = 0;
  // Resolve then GetProfile as one call: the person an identifier belongs
  // to and their profile, read in one snapshot of the store (one read
  // transaction of the data file, one key lookup). Returns what the two
  // calls would: NotFound, Suppressed or Erased as Resolve does, NotFound
  // if the person has no profile. When an erasure of the person is under
  // way it waits for it, as GetProfile does, and answers after it.
  virtual Result<PersonProfile> LookupProfile(const Identifier& identifier) = 0;
  // Sets and unsets attributes in one atomic step (an attribute both set and
  // unset ends with the set's value), and writes a
  // rectification notice naming "profile.<attribute>" for each attribute it
  // changed (Art. 19); a value set to what it is, or an absent attribute
  // unset, changes nothing and is not named, and a patch that changes
  // nothing writes no notice.
  virtual Status PatchProfile(const PersonId& id, const ProfilePatch& patch) = 0;

  // ---- Events ---------------------------------------------------------------

  // Appends an event and, in the same transaction, its analytics row. Every
  // name in event.analytics_fields must be a property (InvalidArgument).
  virtual Status AppendEvent(const PersonId& id, const Event& event) = 0;

  // A person's events with ts in `range`, ordered by (ts, seq). Errors of the
  // person (NotFound, Erased) appear in the iterator's status().
  virtual std::unique_ptr<EventIterator> ScanEvents(const PersonId& id, TimeRange range = {}) = 0;

  // ---- Per-person records ---------------------------------------------------

  // Collection names: 1..255 bytes; keys: 1..1024 bytes; values up to 16 MiB.
  // A new record takes its collection's declared category (else `general`);
  // an update keeps the category the record has (WriteBatch::Put with a
  // category changes it) — unless the record is past its own expiry or its
  // collection's rule: gone as if deleted, it is replaced by a new record
  // (since stop 30). A record's metadata (RecordMetadata: purposes,
  // own expiry, recipients, …) is replaced by every put: this one, which
  // carries none, clears it — the record then serves every lease purpose
  // and expires only by its collection's rule. To change a value and keep
  // its metadata, put a Record with the metadata (WriteBatch::Put).
  virtual Status Put(const PersonId& id, std::string_view collection, std::string_view key,
                     std::string_view value) = 0;
  // NotFound if the record is absent.
  virtual Result<std::string> Get(const PersonId& id, std::string_view collection,
                                  std::string_view key) = 0;
  // The whole record: value, category and metadata (RecordMetadata; written
  // with WriteBatch::Put(id, Record)). NotFound if absent.
  virtual Result<Record> GetRecord(const PersonId& id, std::string_view collection, std::string_view key) = 0;
  // Deleting an absent record is OK and writes nothing. Deleting one every
  // read answers NotFound for writes no change-feed notice: one erased
  // with its category is left to the purge; one past its own expiry or its
  // collection's retention rule is deleted.
  virtual Status Delete(const PersonId& id, std::string_view collection,
                        std::string_view key) = 0;
  // The person's records in `collection` whose key starts with `prefix`, in
  // key order. Keys are stored only as keyed hashes, so the scan decrypts all
  // of the person's records in the collection: cost is linear in that count.
  virtual std::unique_ptr<RecordIterator> ScanRecords(const PersonId& id,
                                                      std::string_view collection,
                                                      std::string_view prefix = {}) = 0;
  // Every record, of any person, whose metadata lists `query.value` as a
  // purpose or a recipient, or whose expiry is before `query.before_ms`
  // (RecordMetadata), through an index of keyed hashes and expiry times
  // (docs/format.md §5.3.1): the cost grows with the index entries of the
  // value, not with the store — the records found, plus the entries of
  // records expired but not yet swept (each such record read and decrypted
  // to be left out) and of people or categories erased but not yet purged
  // (left out by their key) (outside audit 30, F6: a query returning 10 of
  // 20,000 records took 72 ms with 19,990 expired unswept, 0.1 ms after the
  // sweep; background maintenance keeps that backlog short). In index order (purposes, recipients: by person, then
  // by hashes, no meaning; expiries: by expiry time). Records of erased people, of erased categories and past
  // their retention are left out. A purpose query for an unregistered
  // purpose, or an empty value, is InvalidArgument (the iterator's status).
  // This is the controller's and regulator's view: it applies no lease,
  // restriction or consent.
  virtual std::unique_ptr<Iterator<FoundRecord>> FindRecords(const RecordQuery& query) = 0;

  // ---- Analytics ------------------------------------------------------------

  // Analytics rows in (time bucket, row id) order: by coarse time, and within
  // a bucket in an order that follows neither the order of writes nor the
  // people (a person's rows of a bucket are adjacent, as the anonymous ID
  // they carry groups them anyway; docs/format.md §5.4). Rows carry no
  // personal data.
  virtual std::unique_ptr<AnalyticsIterator> ScanAnalytics(const AnalyticsQuery& query) = 0;

  // ---- Rectification, change feed, export -------------------------------------

  // Applies all corrections atomically and appends one rectification notice
  // naming what changed (never values) to the change feed, in the same
  // transaction. Only changes are named: an attribute or event property set
  // to the value it has (doubles compared bit for bit), or unset while
  // absent, is not. A rectification that changes nothing is OK and writes
  // nothing: no notice, no new version of the person. Errors: NotFound for
  // an unknown event or identifier of the person (an event of an erased
  // category or past its retention rule is unknown), AlreadyExists /
  // Suppressed for a replacement identifier taken, InvalidArgument for an
  // attribute both set and unset, unset twice or unnamed, an identifier
  // replaced by itself or by one of another type, or of an unknown type.
  virtual Status Rectify(const PersonId& id, const Rectification& rectification) = 0;

  // Up to `max` unacknowledged notices, oldest first. Delivery is at least
  // once: a notice stays until acknowledged, also across restarts — unless
  // a feed retention rule (RetentionRules::feed) expires it first: the
  // expired prefix is skipped at once and deleted by Sweep, and the cursors then
  // skip past them (cursors are otherwise consecutive, so a consumer whose
  // first cursor read is above its last acknowledged + 1 missed notices).
  virtual Result<std::vector<Notice>> ReadFeed(std::size_t max) = 0;
  // Acknowledges (and deletes) every notice with cursor <= `cursor`.
  // InvalidArgument for a cursor past the newest ever issued (nothing is
  // acknowledged then): later cursors would skip it, or repeat past 2^64 - 1.
  virtual Status AckFeed(std::uint64_t cursor) = 0;

  // Everything the store holds on a person (GDPR Art. 15/20), as one
  // consistent snapshot taken when the iterator is created: events and
  // analytics rows appended later are left out (sequence watermark), and if
  // the person's profile, identifiers, records or events are modified while
  // the export runs, the iterator stops with Busy (retry the export). Reads
  // in short batched transactions; memory is bounded by the batch size.
  virtual std::unique_ptr<Iterator<ExportItem>> Export(const PersonId& id) = 0;

  // ---- Restriction, consent and processing (GDPR Art. 18, 21) ----------------

  // Adds to each person's restriction (all processing, purposes and/or
  // categories) after draining their leases; writes a restriction notice
  // and a history entry (with the reason, encrypted) per person, all in one
  // commit: all or nothing (NotFound / Erased for any person, nothing
  // written). A person named twice counts once. Unknown purpose or
  // category, no person, or a spec that names nothing (not `all`, no
  // purpose, no category): InvalidArgument. Busy if the leases do not
  // drain in time.
  virtual Status Restrict(const std::vector<PersonId>& people, const RestrictionSpec& spec) = 0;
  Status Restrict(const PersonId& id, const RestrictionSpec& spec) {
    return Restrict(std::vector<PersonId>{id}, spec);
  }
  // Lifts what `spec` names (`all`, or a spec that names nothing, lifts
  // everything) for each person, in one commit, all or nothing. Never
  // waits. The history entry and the notice name what was lifted (not
  // what was asked); a person with none of it restricted is left as is (no
  // history entry, no notice).
  virtual Status Unrestrict(const std::vector<PersonId>& people, const RestrictionSpec& spec) = 0;
  Status Unrestrict(const PersonId& id, const RestrictionSpec& spec) {
    return Unrestrict(std::vector<PersonId>{id}, spec);
  }
  virtual Result<RestrictionState> GetRestriction(const PersonId& id) = 0;

  // Records a consent decision (an objection is a withdrawal) for a purpose,
  // with its source, for each person in one commit, all or nothing; the
  // history is kept and exported. Writes a restriction notice per person.
  // What a decision does depends on the purpose's LawfulBasis: consent
  // needs a grant; for legitimate interest and public task a withdrawal
  // is an objection (Art. 21) and refuses processing until a grant; for
  // contract, legal obligation and vital interests it is recorded only
  // (restrict the purpose to stop the processing). It does not wait for
  // leases: unlike Restrict, a withdrawal or objection does not drain the
  // leases already held for the purpose — they keep reading until
  // released; new ones are refused where the decision refuses processing
  // (consent, legitimate interest, public task; docs/security.md §12). To
  // stop processing that is under way, Restrict the purpose as well (it
  // waits for those leases).
  virtual Status SetConsent(const std::vector<PersonId>& people, std::string_view purpose, bool granted,
                            std::string_view source = {}) = 0;
  Status SetConsent(const PersonId& id, std::string_view purpose, bool granted, std::string_view source = {}) {
    return SetConsent(std::vector<PersonId>{id}, purpose, granted, source);
  }
  // Current consent per purpose: true = granted. Purposes never decided are absent.
  virtual Result<std::map<std::string, bool>> GetConsent(const PersonId& id) = 0;
  virtual Result<std::vector<ConsentRecord>> GetConsentHistory(const PersonId& id) = 0;
  // The people whose latest consent decision for `purpose` is `granted`:
  // with false, those who withdrew consent or objected (Art. 21). Not the
  // whole of whom a processing run for the purpose must leave out: people
  // restricted for the purpose or for all processing (Restrict) are in
  // neither list, and a lease refuses them (outside audit 37d, F4). Through an
  // index (docs/format.md §5.6.1): the cost grows with the people found.
  // In no meaningful order; erased people are left out. InvalidArgument
  // for an unregistered purpose; FailedPrecondition on a read-only open of
  // a store whose index was never built (open it writable once).
  virtual std::unique_ptr<Iterator<PersonId>> PeopleWithConsent(std::string_view purpose, bool granted) = 0;

  // Takes a processing lease on a person for a purpose. Restricted if the
  // person restricted all processing or this purpose, if the purpose's
  // basis is consent and consent is not granted, or if its basis is
  // legitimate interest or public task and the person objected (withdrew:
  // SetConsent); Busy while an erasure or
  // restriction of the person is waiting; NotFound / Erased; InvalidArgument
  // for an unknown purpose.
  virtual Result<std::unique_ptr<Lease>> AcquireLease(const PersonId& id, std::string_view purpose) = 0;

  // ---- Batches and housekeeping ---------------------------------------------

  // Commits every operation of `batch` atomically; see write_batch.h.
  virtual Status Write(const WriteBatch& batch) = 0;
  // The position last committed under `name` by WriteBatch::SetProgress.
  // NotFound if none was; InvalidArgument for a name SetProgress refuses.
  virtual Result<std::uint64_t> ReadProgress(std::string_view name) = 0;

  virtual Result<StoreStats> Stats() = 0;
  // StoreStats::store_id alone, without counting anything.
  virtual Result<std::string> StoreId() {
    auto stats = Stats();
    if (!stats.ok()) return stats.status();
    return std::move(stats->store_id);
  }

  // ---- Erasure (design §3) ---------------------------------------------------

  // Erases people by crypto-shredding: one commit in `keys` deletes their
  // keys and writes their fences (and suppression entries); that commit is
  // the erasure. When it returns OK, no call returns any of their data, also
  // not reads that started earlier. Their identifiers are released (or
  // suppressed), their analytics rows kept, unlinked or deleted per
  // `options`, and an audit entry is appended; ciphertext rows are purged
  // later by Purge(). Errors: NotFound / Erased for a person that does not
  // exist / was erased already (nothing is erased then), AlreadyExists for a
  // reused request id.
  virtual Result<ErasureReceipt> Erase(const std::vector<PersonId>& people,
                                       const EraseOptions& options = {}) = 0;
  Result<ErasureReceipt> Erase(const PersonId& person, const EraseOptions& options = {}) {
    return Erase(std::vector<PersonId>{person}, options);
  }
  // Erases the person an identifier belongs to.
  virtual Result<ErasureReceipt> EraseByIdentifier(const Identifier& identifier,
                                                   const EraseOptions& options = {}) = 0;

  // Partial erasure: shreds the person's key of one data category (every
  // registered category other than "general" has a key of its own per
  // person, made when the first item of that category is written). One
  // commit in `keys` deletes the key and fences its slot; when it returns
  // OK no call returns any item of that category written before, also not
  // reads that started earlier, and the person's other data is intact. The
  // category's analytics rows are kept (under one fresh anonymous ID of
  // their own, not the person's), unlinked or deleted per `options`
  // (`suppress` must be false: identifiers are not categorised); the rows
  // are purged later by Purge(); levels and receipts are those of Erase().
  // Items of the category written afterwards get a new key. Waits for the
  // person's leases like Erase(). Errors: InvalidArgument for "general"
  // (it lives under the person key: erase the person) or an unregistered
  // category; NotFound if the person never had a key for the category
  // (nothing was ever written in it: a category whose items were all
  // deleted or expired still has its key, which the call destroys, with a
  // receipt and a notice as for any other), Erased
  // if the person was erased or the category erased already with nothing
  // written since; AlreadyExists for a reused request id.
  virtual Result<ErasureReceipt> EraseCategory(const PersonId& person, std::string_view category,
                                               const EraseOptions& options = {}) = 0;

  // The current state of an erasure request. NotFound for an unknown id.
  virtual Result<ErasureReceipt> GetErasure(std::string_view request_id) = 0;

  // Lifts the suppression of an identifier. NotFound if it is not suppressed.
  virtual Status Unsuppress(const Identifier& identifier) = 0;

  // Deletes up to `budget_rows` rows of erased people from `data`, in
  // bounded transactions; resumable after a crash (the queue is durable).
  virtual Result<PurgeResult> Purge(std::size_t budget_rows) = 0;

  // Starts a new key epoch, re-wraps every live DEK under it in batches of
  // Options::rotation_batch_size, destroys the old epoch keys, commits past
  // both LMDB meta pages and rebuilds the `keys` file so no old key byte is
  // left in it. Every erasure before the call becomes cryptographic.
  virtual Result<RotationResult> RotateEpoch() = 0;

  // Rewrites the `data` file without free pages and swaps it in, while the
  // store stays open (calls wait for the swap).
  virtual Result<CompactionResult> CompactData() = 0;

  // ---- Retention (storage limitation by time) --------------------------------

  // Replaces the retention rules (see RetentionRules) and stores them; reads
  // apply them at once. InvalidArgument for a max age <= 0 (analytics < 0)
  // or a bad name; nothing changes then. An event name that gains a rule
  // has its stored events added to the time index before this returns (one
  // pass over the events, in short transactions; docs/retention.md §1). If
  // that pass fails (I/O), the rules are already in force and stored; the
  // next Sweep finishes the pass.
  virtual Status SetRetention(const RetentionRules& rules) = 0;
  virtual Result<RetentionRules> GetRetention() = 0;

  // Deletes up to `budget_rows` expired rows (events, records, analytics
  // rows) in bounded transactions, oldest first per rule, through the time
  // index: the cost is proportional to what expires, not to the store's
  // size. Resumable after a crash (the index is the queue). Appends one
  // audit entry (counts only) when it removed anything. First finishes a
  // pending time index back-fill (SetRetention cut short, or rules given in
  // Options::retention at open), which `budget_rows` does not bound.
  virtual Result<SweepResult> Sweep(std::size_t budget_rows) = 0;

  // One round of maintenance: purge with Options::purge_budget_rows, a sweep
  // with Options::sweep_budget_rows, a step of the orphan-key pass (after
  // each open, and after a failed commit that created people: the keys of
  // people whose creation never reached the data environment are deleted),
  // the materialisation of staged analytics rows of ended hours
  // (docs/format.md §5.4.1), the release of reader slots left by processes
  // that died reading beside this store (their snapshots' pages would stay
  // pinned), the keys-file rebuild a rotation left pending (its swap held
  // off by a reader process: docs/backup.md §5), then an epoch rotation if
  // the rotation policy is due. Every step runs even if an earlier one failed; returns
  // the first error.
  virtual Status RunMaintenance() = 0;

  // Checks the hash chain of the audit log.
  virtual Result<AuditVerification> VerifyAuditLog() = 0;
  // Up to `max` audit log entries after entry `after_seq` (0: from the
  // first), in chain order, from one snapshot: the regulator's "read logs"
  // query. Entries hold no personal data. Corruption if an entry's checksum
  // or encoding is damaged (VerifyAuditLog checks the chain itself).
  virtual Result<std::vector<AuditRecord>> ReadAudit(std::uint64_t after_seq, std::size_t max) = 0;
  // The person's audit subject (32 hex digits): how processing-read entries
  // (Options::audit_processing_reads) name them. Keyed with the person's own
  // key, so it can be computed only while the person exists: erasure leaves
  // their entries naming nobody. NotFound / Erased.
  virtual Result<std::string> AuditSubject(const PersonId& id) = 0;

  // Checks the whole store: first every page of both files (headers, node
  // bounds, child links, key order, counts — damage LMDB's own reads do not
  // notice until a write or a rebuild trips on it; with a damaged page the
  // row checks are skipped, so nothing reads through it), then every sealed
  // row decrypts under its person's key, every plaintext row's checksum, that the identifier index and its
  // back-references agree, that analytics rows decode, the audit chain, and
  // (since stop 30) that every pending purge ticket reads, its sealed
  // analytics links included: one that does not fails every writable open
  // and Purge, and is reported here by person ID.
  // Problems are reported in the result, not as an error status; the call
  // fails only if the store cannot be read at all.
  virtual Result<VerifyReport> Verify() = 0;

  // ---- Backups, the erasure log and root keys (include/shredkv/backup.h) ----

  // Writes a consistent copy of both environments into `directory` (created;
  // AlreadyExists if it exists and is not empty) while the store stays in
  // use: both copies are taken from snapshots begun together under the
  // store's write lock, so they agree with each other; writes go on during
  // the copy, but a write that must grow the map waits for it, and no
  // rotation or compaction runs meanwhile. Each file is rebuilt from live
  // rows (no free page of the store is copied). A MANIFEST names the store,
  // its epochs and the custody keys they need, and the files' XXH3-128
  // checksums; it is written last, so a directory without one is not a
  // backup. Nothing is left in `directory` on failure. A store open to
  // write commits once before the snapshots (a count of backups taken), so
  // the backup's position (BackupInfo::position) is above that of every
  // erasure log read before the call; a read-only store, or one whose
  // commit fails (a full disk), is backed up without it.
  virtual Result<BackupInfo> Backup(const std::string& directory) = 0;

  // Every erasure this store remembers (fences and the suppression list),
  // for re-applying to a restored backup.
  virtual Result<ErasureLog> ReadErasureLog() = 0;

  // Re-applies another copy's erasures to this store (a restored backup):
  // every person the log names who still has keys here is erased again
  // under the log's request id and analytics mode (one erasure request per
  // request id), every erased category key likewise, and every suppressed
  // identifier hash is added. Entries this store already applied are
  // counted and skipped; people it never held are counted and fenced (their
  // erasure is then in this store's own log, so a backup of the original
  // taken while they lived cannot bring them back when it is restored with
  // that log), and so is a category erasure this store cannot make (it
  // holds nothing in the category, its key there is erased already, or it
  // never held the person; since stop 37). InvalidArgument if the log is another store's, or fails its
  // authentication tag, or has none (ErasureLog::tag; since stop 37: an
  // edited log erased people it never named, or left out erased ones; an
  // untagged log of an earlier build goes through ReapplyErasureLog with
  // accept_untagged_log). Purge() afterwards removes the rows.
  virtual Result<ErasureLogApplied> ApplyErasureLog(const ErasureLog& log) = 0;

  // Re-seals the store's root-sealed keys (the root check, the identifier
  // index key, every epoch key) under the root key `new_provider` gives and
  // rebuilds the `keys` file, so that the old root key opens nothing in
  // this store from then on (copies made before still open with it). Open
  // the store with `new_provider` afterwards. InvalidArgument if the new key
  // is the current one. Calls wait for the rebuild. StoreFull, with nothing
  // changed, if the disk has no room for the rebuild (checked before the
  // commit, since outside audit 31). An error after the re-sealing commit
  // (its message starts "after re-sealing") still leaves the store to the
  // new key only: open it with `new_provider`.
  virtual Status RotateRootKey(const std::shared_ptr<KeyProvider>& new_provider) = 0;
};

// Normalises an identifier by its type's rules, as the store does before
// hashing. Exposed so applications can show users what is stored.
SHREDKV_EXPORT Result<Identifier> NormalizeIdentifier(const Identifier& identifier,
                                       const std::vector<IdentifierTypeSpec>& extra_types = {});

// OK if `identifier` may be given to a person: NormalizeIdentifier's errors,
// and InvalidArgument if its normalised value holds a control character or,
// for an e-mail address, ill-formed UTF-8 or an invisible or space-like
// character (docs/format.md §8: it would look like another identifier). A
// store refuses such an identifier when it would become someone's (not on
// lookups, nor for one a person already holds); ShardedStore::Write checks
// it before any shard's part commits.
SHREDKV_EXPORT Status CheckNewIdentifier(const Identifier& identifier,
                                         const std::vector<IdentifierTypeSpec>& extra_types = {});

}  // namespace shredkv

#endif  // SHREDKV_STORE_H_
