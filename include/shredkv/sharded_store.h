// shredkv — ShardedStore: one logical store over N store directories, so
// that writes use more than one LMDB writer (design §8, docs/architecture.md
// §13; the SHARDS file: docs/format.md §12).
//
// Layout: <directory>/SHARDS (the shard count and the routing key, sealed
// under the root key) and <directory>/shard-000 … shard-<N-1>, each an
// ordinary store (Store::Open can open one alone) with a SHARD marker that
// ties it to its place and names every shard's store ID (a shard moved,
// swapped, taken from another sharded store or replaced by another store's
// files is Corruption at open; a lost shard is put back from its backup
// with RestoreShard, a whole store from Backup with Restore). A person
// lives in exactly
// one shard — key, data, identifiers, analytics rows — the shard chosen by
// an xxHash of the person ID (ShardOf), so an erasure of one person stays
// one commit in one shard's `keys`. CreatePerson places a person in the home
// shard of their first identifier (a keyed hash of the normalised
// identifier under the routing key), so Resolve of that identifier reads one
// shard. An identifier linked later, or a person created through a
// WriteBatch (its ID chosen before any identifier is known), may live
// outside its identifier's home shard: Resolve then asks the home shard
// first and the others after it (a miss costs one lookup a shard).
//
// Identifiers stay unique across shards: every call that adds an
// identifier (CreatePerson, LinkIdentifier, Rectify, Write with such
// operations) checks the other shards under a lock striped by the
// identifier's routing hash, held until its own commit. Writes made
// through shard(i) directly bypass that check.
//
// Atomicity: a call on one person is one commit in one shard, as on a
// Store, and so is a Write whose operations all fall in one shard. A call on
// people of several shards (Write, Restrict, Unrestrict, SetConsent, Erase)
// is split by shard and committed part by part, each part atomic. What a
// caller can get wrong is checked before any part commits, so it leaves
// nothing written: the people of Restrict/Unrestrict/SetConsent/Erase
// (NotFound, Erased), identifiers taken or suppressed, an erasure request id
// used before. These checks and the parts of Restrict, Unrestrict,
// SetConsent and Erase run with the people claimed, and so do the parts of
// a Write over several shards (exactly: unrelated people never wait for
// each other), so a concurrent call of these on one of them — an erasure
// above all — waits rather than fails a later part. A Write's claim is
// shared: Writes that share people run side by side, and once an erasure
// waits for one of them, later Writes on that person wait behind it. Two
// consequences: a thread holding a lease on a person that calls
// Restrict/Unrestrict/SetConsent/Erase, or a Write over several shards, on
// that person while an erasure of them waits for the lease waits too,
// until the erasure gives up (Busy, after lease_drain_timeout_ms); and a
// listener told of an erasure (on the erasing thread, listener.h) that
// calls back on the same people or request id gets FailedPrecondition.
// Any other error of a later part — for a Write, a person of that part
// unknown or erased before the call (a Write's people are not checked up
// front: that would read every person of the batch), a lease that does
// not drain (Busy), a validation
// error only the shard sees, I/O, a full map — leaves the earlier parts
// committed, and the error names their shards ("the parts of shards 0, 2
// are committed, the rest not: shard 3: …"). An erasure cut short that way
// is finished by calling Erase again with the same people, options and
// request id. Keep a batch within one shard (ShardOf) when it must be all
// or nothing.
//
// Identifiers moved within one batch: an identifier that an earlier
// operation of the batch unlinks (or rectifies away) may be claimed by a
// person of the same shard; a move between people of different shards is
// refused (AlreadyExists): unlink and claim in two calls.
//
// Shard statistics (shard(i).Stats(), ShardStats) count this class's own
// lookups too: every identifier claimed is resolved in every shard, and a
// Resolve asks up to every shard.
//
// Thread safety: as Store. Each shard has its own writer, so writes to
// people of different shards run in parallel. As with a Store, a listener
// must not close or destroy the ShardedStore (on a shard's background
// thread Close returns that shard's FailedPrecondition; destroying it there
// aborts).
#ifndef SHREDKV_SHARDED_STORE_H_
#define SHREDKV_SHARDED_STORE_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "shredkv/backup.h"
#include "shredkv/store.h"
#include "shredkv/visibility.h"

namespace shredkv {

// What ShardedStore::Erase did: one erasure request (one request id) made
// in every shard that held one of the people.
struct ShardedErasureReceipt {
  std::string request_id;
  std::uint64_t people = 0;
  // The lowest level any shard's part has reached: the request is
  // cryptographic (purged) once every part is.
  ErasureLevel level = ErasureLevel::kLogical;
  // The receipt of each shard's part, by shard number, in shard order.
  std::vector<std::pair<std::uint32_t, ErasureReceipt>> parts;
};

// What ShardedStore::Backup wrote: the backup of each shard, by shard.
struct ShardedBackupInfo {
  std::string directory;
  std::vector<BackupInfo> shards;
};

// How ShardedStore::Restore re-applies erasures (RestoreOptions, a shard at
// a time).
struct ShardedRestoreOptions {
  // The erasure log of every shard, by shard (ReadErasureLogs of the live
  // store, read after the backup was taken and kept apart from it).
  // Required, one a shard, unless without_erasure_log. A shard's log that
  // lacks an erasure its backup holds is older than the backup: refused
  // (InvalidArgument), as by RestoreBackup.
  std::vector<ErasureLog> erasure_logs;
  // Restore without re-applying erasures: only for a backup known to be
  // newer than every erasure (it may otherwise bring erased people back).
  // Exclusive with erasure_logs: both given is InvalidArgument.
  bool without_erasure_log = false;
  // As RestoreOptions::custody_keys, for every shard.
  RestoredCustodyKeys custody_keys = RestoredCustodyKeys::kUnspecified;
  // As RestoreOptions::accept_untagged_backup and accept_untagged_log, for
  // every shard.
  bool accept_untagged_backup = false;
  bool accept_untagged_log = false;
  // The root key the backup was taken under, when the store's root key was
  // rotated since (RotateRootKey): the backup's SHARDS is read with it and
  // every shard's copy is re-sealed under options.key_provider's (as
  // RestoreOptions::backup_key_provider), so the restored store opens with
  // the current root key, never the retired one. Null: the backup is under
  // options.key_provider's root key.
  std::shared_ptr<KeyProvider> backup_key_provider;
};

// What ShardedStore::Restore did: each shard's restore, by shard.
struct ShardedRestoreResult {
  std::vector<RestoreResult> shards;
};

class SHREDKV_EXPORT ShardedStore {
 public:
  // Opens (with create_if_missing, creates) a sharded store in
  // options.directory; `options` is applied to every shard with the
  // directory replaced. `shard_count` (1..kMaxShards) is required to
  // create; for an existing store 0 takes the stored count and any other
  // value must equal it (InvalidArgument). The root key is asked for once
  // for SHARDS and once a shard (a passphrase provider derives each:
  // every directory has its own salt). Errors: those of Store::Open, for
  // the first shard that fails (its number in the message); NotFound (no
  // SHARDS and !create_if_missing); Corruption (SHARDS damaged; a shard
  // missing or not in its place; no SHARDS but shards that hold data, or
  // more shards than `shard_count`: a lost manifest is not replaced by a
  // new one; a shard whose store is not the one the markers name, its files
  // replaced or swapped); WrongKey (the root key does not open SHARDS: a wrong key, or
  // SHARDS altered with its checksum made again — the sealed box cannot
  // tell the two apart); InvalidArgument (read_only with create_if_missing;
  // a writable open of a store one of whose shards holds a RestoreShard
  // cut short after its rename — a restore marker and no SHARD marker —,
  // which is left as it is: run RestoreShard for it again).
  static Result<std::unique_ptr<ShardedStore>> Open(Options options, std::uint32_t shard_count = 0);

  // Puts back shard `index` of the sharded store in options.directory
  // (closed) from a backup of that shard (`shard(index).Backup`), after its
  // directory was lost: RestoreBackup into the shard's directory (which
  // must not exist or be empty; `restore` as there: the shard's own erasure
  // log), then the shard's SHARD marker. The backup must be of the store the
  // other shards' markers name for that place (one readable marker is
  // enough: several lost shards are put back one by one), checked against
  // the restored store's own ID (a backup's MANIFEST is not authenticated).
  // A restore cut short after its copy was moved into place is finished by
  // running it again: files of the shard's store found in its directory
  // without a marker (that copy, or one put there by hand) get the log
  // re-applied as RestoreBackup applies it (ReapplyErasureLog), then the
  // marker; the result's `backup` then describes backup_dir, which was not
  // read beyond its MANIFEST. Nothing may have the sharded store or the shard open
  // meanwhile (RestoreShard takes no lock on the other shards). The shard comes back as of
  // its backup, with the erasures of the log re-applied: people created in
  // it since are gone, and it may disagree with the other shards on who
  // holds an identifier (docs/architecture.md §13). Errors: NotFound (no
  // sharded store), Corruption (SHARDS or another shard's marker damaged),
  // WrongKey, and those of RestoreBackup; InvalidArgument for an index out
  // of range or a backup of another store; FailedPrecondition if no other shard's marker names the
  // shard's store (a one-shard store; or markers written before stop 27:
  // open the store writable once, while it is whole).
  static Result<RestoreResult> RestoreShard(const std::string& backup_dir, const Options& options,
                                            std::uint32_t index, const RestoreOptions& restore);

  // Puts back a whole sharded store from a backup Backup wrote (every
  // shard lost, or a copy elsewhere) into options.directory, which must
  // not exist or be empty (AlreadyExists). Checks first, writing nothing:
  // the root key opens the backup's SHARDS (WrongKey), every shard's
  // backup is complete and its marker is of that place and names the
  // backup's store, and every shard's backup was made by the same Backup
  // call (its RUN file; shard backups of different times put together may
  // disagree on who holds an identifier) (Corruption), and there is an
  // erasure log for every shard unless restore.without_erasure_log, not
  // both (InvalidArgument). Then
  // RestoreBackup of each shard into its directory with its own log (a log
  // of another shard's store is InvalidArgument), each restored store's own
  // ID checked against the markers (a MANIFEST is not authenticated), the
  // markers, and SHARDS last: a restore cut short leaves no SHARDS, so the
  // directory does not open as a sharded store; remove it and run again.
  // Nothing is left at options.directory on an error this call returns.
  // The store comes back with the same routing key, shard count and store
  // IDs, as of its backup with the erasures of the logs re-applied.
  // options.shard_placement is ignored. Errors: also those of
  // RestoreBackup (KeyDestroyed, ...), naming the shard.
  static Result<ShardedRestoreResult> Restore(const std::string& backup_dir, const Options& options,
                                              const ShardedRestoreOptions& restore);

  // Moves the sharded store in options.directory (closed; nothing may open
  // it meanwhile) from the root key of options.key_provider to `new_key`:
  // each shard's Store::RotateRootKey (a shard that already opens with the
  // new key is left as it is), then SHARDS re-sealed. Not shard(i).
  // RotateRootKey on an open store: SHARDS would stay under the old key,
  // and no key would open the sharded store (outside audit 32b, F2).
  // A rotation cut short (a crash, an error) leaves the shards under
  // either key and SHARDS under the old one, so that no single key opens
  // the store: calling RotateRootKey again with the same two keys finishes
  // it. Errors: NotFound (no SHARDS), WrongKey (neither key opens SHARDS or
  // a shard), those of Store::Open and Store::RotateRootKey (naming the
  // shard), IOError writing SHARDS.
  static Status RotateRootKey(const Options& options, std::shared_ptr<KeyProvider> new_key);

  ShardedStore(const ShardedStore&) = delete;
  ShardedStore& operator=(const ShardedStore&) = delete;
  ~ShardedStore();

  // Closes every shard (after the calls in flight, as Store::Close).
  // Returns the first error. Idempotent.
  Status Close();

  std::uint32_t shard_count() const;
  // The shard that holds `person`: XXH3-64 of the ID modulo the count.
  std::uint32_t ShardOf(const PersonId& person) const;
  // A shard, for what this class does not route (ScanAnalytics, the
  // change feed, the audit log, backups: each shard has its own). Not for
  // root-key rotation (RotateRootKey above re-seals SHARDS too), and not
  // for adding people or identifiers: it skips the check that an
  // identifier is unique across the shards. Each shard knows its place
  // (Options::shard_placement): its CreatePerson draws an ID that routes
  // to it, and a Write that creates a person who routes elsewhere is
  // InvalidArgument. A shard directory opened alone with Store::Open
  // refuses to create people and to claim identifiers (FailedPrecondition).
  // People a shard opened alone created before stop 33 may route elsewhere:
  // GetPerson, Export, Erase, EraseCategory, Restrict, Unrestrict and
  // SetConsent still find them (the other shards are asked when the home
  // shard has no such person), every other call by ID misses them
  // (NotFound), and Verify reports each of them as a problem.
  // REQUIRES: index < shard_count().
  Store& shard(std::uint32_t index);

  // ---- People and identifiers (Store's contracts, plus the cross-shard
  // uniqueness of identifiers) ------------------------------------------------

  // In the home shard of the first identifier.
  Result<PersonId> CreatePerson(const std::vector<Identifier>& identifiers, const Attributes& profile = {});
  // The home shard first, then the others.
  Result<PersonId> Resolve(const Identifier& identifier);
  Result<PersonInfo> GetPerson(const PersonId& id);
  Status LinkIdentifier(const PersonId& id, const Identifier& identifier);
  Status UnlinkIdentifier(const PersonId& id, const Identifier& identifier);

  // ---- One person's data, routed to their shard ------------------------------

  Result<Attributes> GetProfile(const PersonId& id);
  // Store::LookupProfile in the identifier's home shard (one read there);
  // a person found elsewhere costs Resolve's walk and a GetProfile.
  Result<PersonProfile> LookupProfile(const Identifier& identifier);
  Status PatchProfile(const PersonId& id, const ProfilePatch& patch);
  Status AppendEvent(const PersonId& id, const Event& event);
  std::unique_ptr<EventIterator> ScanEvents(const PersonId& id, TimeRange range = {});
  Status Put(const PersonId& id, std::string_view collection, std::string_view key, std::string_view value);
  Result<std::string> Get(const PersonId& id, std::string_view collection, std::string_view key);
  Result<Record> GetRecord(const PersonId& id, std::string_view collection, std::string_view key);
  Status Delete(const PersonId& id, std::string_view collection, std::string_view key);
  std::unique_ptr<RecordIterator> ScanRecords(const PersonId& id, std::string_view collection,
                                              std::string_view prefix = {});
  Status Rectify(const PersonId& id, const Rectification& rectification);
  std::unique_ptr<Iterator<ExportItem>> Export(const PersonId& id);
  Result<RestrictionState> GetRestriction(const PersonId& id);
  Result<std::map<std::string, bool>> GetConsent(const PersonId& id);
  Result<std::vector<ConsentRecord>> GetConsentHistory(const PersonId& id);
  Result<std::unique_ptr<Lease>> AcquireLease(const PersonId& id, std::string_view purpose);
  Result<std::string> AuditSubject(const PersonId& id);

  // ---- Queries over every shard ----------------------------------------------

  // Store::FindRecords over the shards: for purposes and recipients, shard
  // 0's records, then shard 1's, … (a shard is asked only once the ones
  // before it are exhausted, so a first page costs what it costs in one
  // store when shard 0 fills it); for kExpiresBefore, merged by expiry
  // (soonest first; ties in shard order), every shard asked at once. An
  // error of one shard ends the iteration (status names the shard).
  std::unique_ptr<Iterator<FoundRecord>> FindRecords(const RecordQuery& query);
  // Store::PeopleWithConsent over the shards, one after another.
  std::unique_ptr<Iterator<PersonId>> PeopleWithConsent(std::string_view purpose, bool granted);

  // ---- Many people: split by shard (see the atomicity note above) -----------

  // Each shard's operations, in the batch's order, as one Store::Write in
  // that shard; the parts are written one after another on the calling
  // thread, starting at a shard that rotates from call to call (so writers
  // on other threads use the other shards meanwhile). An error names the
  // shard, the operation's index in `batch` and the shards whose parts
  // were committed before it. A batch with WriteBatch::SetProgress
  // positions is InvalidArgument (they need one commit).
  Status Write(const WriteBatch& batch);
  Status Restrict(const std::vector<PersonId>& people, const RestrictionSpec& spec);
  Status Unrestrict(const std::vector<PersonId>& people, const RestrictionSpec& spec);
  Status SetConsent(const std::vector<PersonId>& people, std::string_view purpose, bool granted,
                    std::string_view source = {});

  // ---- Erasure ---------------------------------------------------------------

  // One erasure request under one request id (generated if empty) in each
  // shard holding some of `people`. Every person is checked first (NotFound
  // / Erased: nothing erased); a request id already used in any shard is
  // AlreadyExists — except by the same request cut short: when a later
  // shard's part failed (Busy for a lease, I/O, …) after earlier parts
  // committed (the error says "is partly made"), calling Erase again with
  // the same people, options and request id makes only the missing parts
  // and returns the receipt of the whole request. Each made part must have
  // erased exactly the call's people of its shard under that request id
  // (checked against the shard's fences); a call that only adds people of
  // other shards to a request that was whole cannot be told from a retry
  // (no shard records which shards a request meant) and is taken for one. GetErasure meanwhile
  // shows only the parts made (`people` counts them). EraseByIdentifier
  // and EraseCategory are one part each: a used id is AlreadyExists.
  Result<ShardedErasureReceipt> Erase(const std::vector<PersonId>& people, const EraseOptions& options = {});
  Result<ShardedErasureReceipt> EraseByIdentifier(const Identifier& identifier, const EraseOptions& options = {});
  Result<ErasureReceipt> EraseCategory(const PersonId& person, std::string_view category,
                                       const EraseOptions& options = {});
  // The request's parts in the shards that have it. NotFound if none has.
  Result<ShardedErasureReceipt> GetErasure(std::string_view request_id);
  // Lifts the suppression in whichever shard holds it. NotFound if none.
  Status Unsuppress(const Identifier& identifier);

  // ---- Every shard -----------------------------------------------------------

  // The sum over the shards (format_version: the lowest; key_epoch and
  // oldest_key_epoch: the lowest; operations: summed per operation).
  Result<StoreStats> Stats();
  // Store::Stats of each shard, in shard order.
  Result<std::vector<StoreStats>> ShardStats();
  // Purge with `budget_rows` a shard; sums.
  Result<PurgeResult> Purge(std::size_t budget_rows);
  // Rotates every shard's epoch; sums (new_epoch: the highest).
  Result<RotationResult> RotateEpoch();
  Result<CompactionResult> CompactData();
  // Every shard's RunMaintenance; returns the first error (naming its shard)
  // after running all.
  Status RunMaintenance();
  // Every shard's Verify; counts summed, problems prefixed "shard N: ".
  Result<VerifyReport> Verify();
  // The same rules in every shard (a failure part-way leaves the shards
  // before it with the new rules: call again).
  Status SetRetention(const RetentionRules& rules);

  // A backup of the whole store in `directory` (created; AlreadyExists if
  // it exists and is not empty): each shard's Store::Backup in
  // <directory>/shard-NNN with that shard's SHARD marker and a RUN file
  // naming this call beside its MANIFEST, then SHARDS (sealed under the
  // root key), last: a directory
  // without SHARDS is not a sharded backup. Every shard's snapshot begins
  // at one point (every shard's write lock held a moment), then the shards
  // are copied one after another while the store stays in use: a call of
  // this process that changed two shards one after the other is in both
  // copies or neither, and a Write over several shards running at that
  // point may have some parts in and some out (as when a crash cuts it
  // short: each shard's part is atomic). Opened read-only beside a writer
  // in another process, each shard's copy is only consistent in itself.
  // Nothing is left in `directory` on failure. Errors: those of
  // Store::Backup, naming the shard's backup directory.
  Result<ShardedBackupInfo> Backup(const std::string& directory);
  // Every shard's erasure log (Store::ReadErasureLog), by shard: what
  // ShardedRestoreOptions::erasure_logs takes. Keep it apart from the backups.
  Result<std::vector<ErasureLog>> ReadErasureLogs();

 private:
  struct Impl;
  explicit ShardedStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace shredkv

#endif  // SHREDKV_SHARDED_STORE_H_
