// shredkv — backups, restores and the erasure log (docs/backup.md).
//
// Store::Backup writes a consistent copy of both environments while the
// store is in use. A backup must never un-erase anyone: erasures made after
// it are re-applied when it is restored, from the erasure log the live store
// exports (Store::ReadErasureLog; WriteErasureLog in portability.h writes it
// as NDJSON). With epoch keys in a custody (key_custody.h), a backup older
// than a rotation does not open at all: RestoreBackup fails KeyDestroyed.
#ifndef SHREDKV_BACKUP_H_
#define SHREDKV_BACKUP_H_

#include <compare>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "shredkv/options.h"
#include "shredkv/status.h"
#include "shredkv/types.h"
#include "shredkv/visibility.h"

namespace shredkv {

// What a backup holds, as recorded in its MANIFEST.
// Where a store's history was when a backup was taken or an erasure log
// read: what a restore orders a log and its backup by (a log read before
// the backup lacks the erasures made since; outside audit 38b F2: the
// clock, which the check used alone, can step back). Counted by the store,
// not by any clock: `commit` grows with every commit of its data file, and
// `generation` at every compaction (whose new file counts commits from 1
// again) and when a restored or put-back store goes on from a log.
// Positions of copies of one store that went apart (a restored store and
// its original) are not ordered by history; compare those of one line of
// copies. Under Durability::kNoMetaSync or kNoSync a power loss may take
// back the last commits, and their IDs are handed out again: a log read
// just before it can then pass for a later one. {0, 0}: not recorded (a
// backup or log of a build before stop 39).
struct StorePosition {
  std::uint64_t generation = 0;
  std::uint64_t commit = 0;
  bool known() const { return commit != 0; }
  auto operator<=>(const StorePosition&) const = default;
};

struct BackupInfo {
  std::string directory;
  std::string store_id;           // 32 hex digits; the same for every copy of a store
  std::int64_t created_ms = 0;    // by the store's clock
  std::uint64_t current_epoch = 0;
  std::uint64_t oldest_epoch = 0;
  // The custody keys the backup's epoch keys need (empty: every epoch key is
  // sealed under the root key only, and the root key alone opens it).
  std::vector<std::string> custody_labels;
  std::uint64_t people = 0;       // people with keys
  std::uint64_t keys_bytes = 0;   // keys/data.mdb
  std::uint64_t data_bytes = 0;   // data/data.mdb
  StorePosition position;         // the data snapshot copied (since stop 39)
};

// One entry of the erasure log: an erased person, with the request that
// erased them.
struct ErasedPersonEntry {
  PersonId person;
  std::string request_id;
  std::int64_t erased_at_ms = 0;
  AnalyticsOnErase analytics = AnalyticsOnErase::kKeep;
};

// An erased category key of a person (Store::EraseCategory).
struct ErasedCategoryEntry {
  PersonId person;
  std::string category;
  std::string request_id;
  std::int64_t erased_at_ms = 0;
  AnalyticsOnErase analytics = AnalyticsOnErase::kKeep;
};

// A suppressed identifier: its keyed hash only (16 bytes; the index key of
// the store that wrote it computes it, so it is meaningful only to copies
// of that store).
struct SuppressedEntry {
  std::string identifier_hash;
  std::string request_id;
  std::int64_t suppressed_at_ms = 0;
};

// Every erasure a store remembers: its fences (kept forever) and its
// suppression list. Holds no identifier and no personal data; person IDs are
// random and, for erased people, lead nowhere.
struct ErasureLog {
  std::string store_id;  // 32 hex digits
  // When the log was read, by the store's clock: a restore refuses a log
  // read before its backup was taken (it lacks the erasures made in
  // between). 0: unknown (a log file written before stop 35). A log read
  // after the backup may still lack erasures made after it was read: read
  // it from the live store when restoring, or keep the newest one.
  std::int64_t read_at_ms = 0;
  // Where the store was when the log was read (since stop 39): what a
  // restore orders the log and its backup by, whatever the clocks did.
  StorePosition position;
  std::vector<ErasedPersonEntry> people;
  std::vector<ErasedCategoryEntry> categories;
  std::vector<SuppressedEntry> suppressed;
  // The store's authentication tag over everything above (32 bytes; set by
  // Store::ReadErasureLog, kept by the NDJSON form): a restore checks it
  // against the backup's keys, so a log with an entry deleted, or with its
  // read time moved, is refused rather than bringing erased people back.
  // Made under a key derived from the store's index key, which only a holder
  // of one of the store's root keys (or of a copy's) can open. Empty: a log
  // of a build before stop 37 (or made by hand), accepted only with
  // RestoreOptions::accept_untagged_log.
  std::string tag;
};

// What Store::ApplyErasureLog did.
struct ErasureLogApplied {
  std::uint64_t people_erased = 0;       // people the log names that this store still held
  std::uint64_t categories_erased = 0;   // category keys likewise
  std::uint64_t suppressions_added = 0;  // identifier hashes not suppressed here yet
  std::uint64_t already_erased = 0;      // entries this store had applied already
  std::uint64_t not_present = 0;         // people this store never held (created after it)
};

// What a restored store does with the PKCS#11 custody keys that hold its
// epoch keys (key_custody.h). A backup shares them with the store it was
// taken from; two stores rotating over the same custody keys would destroy
// each other's epoch keys.
enum class RestoredCustodyKeys : std::uint8_t {
  kUnspecified,  // refused (InvalidArgument) for a backup whose epoch keys are in a custody
  // The restored store replaces the original, which must not be opened
  // again: it keeps the custody keys, and its rotations destroy them — and
  // with them the original's epoch keys and every older backup's.
  kTakeOver,
  // The restored store is a copy beside the original: its epoch keys are
  // wrapped under new custody keys at once; the original keeps its own (and
  // its rotations still make this backup unrestorable).
  kNewKeys,
};

struct RestoreOptions {
  // Erasures to re-apply to the restored copy: the live store's log, read
  // after the backup was taken. Required unless without_erasure_log. A log
  // that lacks an erasure the backup holds was read before the backup was
  // taken, and is refused (InvalidArgument): it may lack later ones too.
  const ErasureLog* erasure_log = nullptr;
  // Restore without re-applying erasures: only for a backup known to be
  // newer than every erasure (it may otherwise bring erased people back).
  // Exclusive with erasure_log: both given is InvalidArgument.
  bool without_erasure_log = false;
  // Required for a backup whose epoch keys are in a custody; ignored
  // otherwise.
  RestoredCustodyKeys custody_keys = RestoredCustodyKeys::kUnspecified;
  // The root key the backup was taken under, when the store's root key was
  // rotated since (Store::RotateRootKey): the copy is opened with it and
  // re-sealed under options.key_provider's before it is moved into place,
  // so the restored store opens with the current root key (needed where
  // that is required, as by ShardedStore::RestoreShard; outside audit 34,
  // F5). Null: the backup is under options.key_provider's root key.
  std::shared_ptr<KeyProvider> backup_key_provider;
  // Leave the custody keys of the epochs the restore's rotation destroyed
  // (with kTakeOver, the backup's own) in the custody, named in
  // RestoreResult::custody_keys_to_destroy, rather than destroying them
  // once the copy is in place: for a caller that puts several copies in
  // place and may still remove this one (ShardedStore::Restore). The
  // copy is left marked as a restore in progress: a writable Store::Open
  // refuses it (InvalidArgument; read-only opens work) until the caller,
  // once every copy is in place, calls CompleteDeferredRestore on it; its
  // next writable open then destroys the custody keys still there. The
  // caller also makes the final rename durable (fsync of the directory
  // that holds options.directory) before it destroys any of them: so a
  // copy it removes after a failed sync is one whose every custody key it
  // was told of.
  bool defer_custody_destroy = false;
  // Accept a backup whose MANIFEST has no authentication tag (made by a
  // build before stop 37): anyone who can write the backup can then change
  // it unseen (move its time so that a stale log passes, edit its files and
  // their checksums) and bring erased people back. Only for backups kept
  // where nobody else can write. A tag that is there is always checked
  // (Corruption if it fails).
  bool accept_untagged_backup = false;
  // Accept an erasure log without a tag (read by a build before stop 37; a
  // log read from the live store now has one): anyone who can write it can
  // then delete an erasure from it or move its read time. A tag that is
  // there is always checked (InvalidArgument if it fails).
  bool accept_untagged_log = false;
};

struct RestoreResult {
  BackupInfo backup;
  ErasureLogApplied applied;
  // The custody keys the restore made for the copy (RestoredCustodyKeys::
  // kNewKeys): the restored store's from then on. A failed restore
  // destroys those it made.
  std::vector<std::string> new_custody_labels;
  // With RestoreOptions::defer_custody_destroy, the custody keys left to
  // destroy (see there); empty otherwise.
  std::vector<std::string> custody_keys_to_destroy;
};

// Restores the backup in `backup_dir` into `options.directory` (which must
// not exist or be empty): copies the files and checks them against the
// MANIFEST's checksums (Corruption if they differ), opens the copy with
// `options` (its key provider and custody), moves its epoch keys to new
// custody keys if asked (RestoredCustodyKeys::kNewKeys), re-applies the
// erasure log (erasures and suppressions made after the backup; people of
// the log it never held are fenced, so its own log names them), purges,
// compacts and, with backup_key_provider, re-seals it under options' root
// key, and last, if any erasure is not yet cryptographic, rotates the epoch
// so it is; then closes it and renames it into place, and only then
// destroys the custody keys of the epochs that rotation replaced (with
// kTakeOver the backup's: a restore that fails leaves the backup
// restorable). Nothing is left at options.directory on failure — but for
// one: if the fsync of the directory holding it fails after the rename
// (IOError), the restored store is in place, perhaps not durably, with the
// custody keys its rotation replaced left to its next writable open. The
// copy carries its restore marker (a writable open refuses it) until the
// rename is durable (since stop 40; outside audit 40a, F4): a restore cut
// short after the rename leaves options.directory marked — nothing in it
// was used and the backup's custody keys are all there: remove it and
// restore again (AlreadyExists until then).
// Errors: KeyDestroyed if an epoch key the backup needs was destroyed in
// its custody (a rotation after the backup); WrongKey; InvalidArgument if
// neither an erasure log nor without_erasure_log is given or both are, the
// log is another store's or older than the backup (it lacks an erasure the
// backup holds), or the backup's epoch keys are in a custody and
// custody_keys is kUnspecified; AlreadyExists if options.directory holds
// anything.
SHREDKV_EXPORT Result<RestoreResult> RestoreBackup(const std::string& backup_dir, const Options& options,
                                    const RestoreOptions& restore);

// Re-applies `log` to the closed store at options.directory as RestoreBackup
// re-applies it to its copy: erases again every person and category the
// log names that the store still holds, fences the people it never held
// (and the categories it held nothing in; category keys of a never-held
// person, left by a creation the copy caught half-way, go with the fence),
// writing an erasure notice for each of those first, adds its suppressions
// (first of all, so a later failure leaves them in force), purges what is
// pending, and — while any erasure of the store is not yet cryptographic
// (StoreStats::erasures_since_rotation), also one made by a run of this
// call cut short — compacts the data file (so no free page keeps the
// purged rows) and rotates the epoch (so those erasures are cryptographic
// here too). For a store put back by other means than RestoreBackup: a
// file-level copy or a volume snapshot of an older state, which would
// otherwise bring back people erased since. As RestoreBackup, it drops the
// store's free key pool (the original may have given those keys to people
// it created and erased later) and then rotates the epoch too. Run again,
// it erases nothing more. Errors as Store::Open, and InvalidArgument if the
// log is another store's, older than the store (it lacks an erasure the
// store holds), or fails its tag, or has none and not `accept_untagged_log`
// (see RestoreOptions::accept_untagged_log).
SHREDKV_EXPORT Result<ErasureLogApplied> ReapplyErasureLog(const Options& options, const ErasureLog& log,
                                                           bool accept_untagged_log = false);

// How ReapplyErasureLog treats the store it is given.
struct ReapplyOptions {
  // As RestoreOptions::accept_untagged_log.
  bool accept_untagged_log = false;
  // Required when the store's epoch keys are in a custody (PKCS#11), as for
  // RestoreBackup (since stop 40; outside audit 40a, F1): a copy put back
  // from a file copy or a volume snapshot shares those custody keys with
  // the store it was copied from, and the rotation ReapplyErasureLog makes
  // destroys them — with kTakeOver that is wanted (the copy replaces the
  // original, which must never open again); kNewKeys first wraps the
  // copy's epoch keys under new custody keys of its own, so the original
  // keeps working beside it. kUnspecified is InvalidArgument for such a
  // store, before anything is changed; ignored for a store without custody.
  RestoredCustodyKeys custody_keys = RestoredCustodyKeys::kUnspecified;
};

// ReapplyErasureLog with ReapplyOptions (since stop 40). The overload above
// is this one with custody_keys kUnspecified: it refuses a store whose
// epoch keys are in a custody (its rotation destroyed the custody keys the
// original store still needed).
SHREDKV_EXPORT Result<ErasureLogApplied> ReapplyErasureLog(const Options& options, const ErasureLog& log,
                                                           const ReapplyOptions& reapply);

// After RestoreBackup with RestoreOptions::defer_custody_destroy: marks the
// copy in `directory` whole (removes its restore marker, durably), so that
// it opens to write; its next writable open destroys the custody keys the
// restore left listed. OK if it was marked whole already; IOError if the
// marker cannot be removed or the directory synced.
SHREDKV_EXPORT Status CompleteDeferredRestore(const std::string& directory);

// OK if `log` was read when or after the backup `backup` was taken: by
// their positions (StorePosition) when both carry one (equal positions: OK
// since stop 40, whatever the clocks say — nothing was committed between
// the two), else by
// ErasureLog::read_at_ms against BackupInfo::created_ms (unknown, 0 in an
// untagged log of a build before stop 35: OK); InvalidArgument naming both
// positions or times otherwise: such a log lacks
// the erasures made between the two, and restoring with it would bring
// back the people they erased. RestoreBackup and ShardedStore::Restore
// check it; check a kept log with it before choosing one.
SHREDKV_EXPORT Status CheckErasureLogReadAfter(const ErasureLog& log, const BackupInfo& backup);

// Reads a backup's MANIFEST. NotFound if `backup_dir` holds no complete
// backup; InvalidArgument if it is a sharded store's backup (SHARDS, no
// MANIFEST: ShardedStore::Restore); Corruption if the manifest does not
// parse.
SHREDKV_EXPORT Result<BackupInfo> ReadBackupInfo(const std::string& backup_dir);

}  // namespace shredkv

#endif  // SHREDKV_BACKUP_H_
