// Backups: Store::Backup, the erasure log (ReadErasureLog,
// ApplyErasureLog) and RestoreBackup (include/shredkv/backup.h,
// docs/backup.md).
//
// A backup directory holds keys/data.mdb and data/data.mdb, each rebuilt
// from the live rows of one snapshot (both snapshots begun together under
// write_mu, so a creation or an erase commit is in both or in neither), and
// a MANIFEST written last:
//
//   shredkv-backup 1
//   store_id <32 hex>
//   created_ms <ms>
//   current_epoch <n>
//   oldest_epoch <n>
//   custody_label <label>        one line per epoch held in a custody
//   people <n>
//   keys_bytes <n>
//   keys_xxh3_128 <32 hex>
//   data_bytes <n>
//   data_xxh3_128 <32 hex>
//
// Thread safety: as the store's calls; Backup holds rotation_mu for its
// whole copy (no rotation or compaction meanwhile) and write_mu only while
// its two snapshots begin (BackupTogether: every store's, in the order
// given, and all the write_mus while all the snapshots begin).
#ifndef SHREDKV_ENGINE_BACKUP_H_
#define SHREDKV_ENGINE_BACKUP_H_

#include <string>
#include <string_view>
#include <vector>

#include "engine/context.h"
#include "engine/erasure.h"
#include "shredkv/backup.h"

namespace shredkv::engine {

class Backups;

// The store's position (StorePosition) as `data_txn`, a transaction of its
// data file, sees it.
Result<StorePosition> ReadStorePosition(const EngineContext& ctx, const storage::ReadTxn& data_txn);
// In `data_txn`: sets the position's generation to max(its own, `floor`)
// + 1, so every position from then on is above any of the generation
// before (and of `floor`). When a restored or put-back store goes on from
// a log of another copy; a compaction writes its new generation into the
// new file only (PutGeneration). REQUIRES: the caller holds write_mu.
Status AdvanceGeneration(const EngineContext& ctx, storage::WriteTxn& data_txn, std::uint64_t floor);
// In `txn` of any environment of the data file's layout (the live one, or a
// compaction's new file, whose `meta` table is `meta`): sets the
// generation to `generation`.
Status PutGeneration(storage::WriteTxn& txn, storage::Table meta, std::uint64_t generation);

// The file a restore writes first into the directory it fills, and removes
// once the copy there is whole: a directory holding it is a restore cut
// short (RestoreBackup's work directory, or a copy RestoreBackup left in
// place with RestoreOptions::defer_custody_destroy until its caller calls
// CompleteDeferredRestore). A writable Store::Open refuses such a
// directory: its keys file may list the backup's custody keys for the next
// writable open to destroy (review of stop 38, R3).
inline constexpr std::string_view kRestoreMarker = "RESTORE-IN-PROGRESS";

// Backs up each of `stores` (of this process: a ShardedStore's shards) into
// the empty directory of the same index, with every store's snapshots
// begun at one point (all their write locks held): a backup of several
// stores holds no write of one without the writes made before it in the
// others. Store::Backup is the case of one store. The caller removes the
// directories' contents on failure.
Result<std::vector<BackupInfo>> BackupTogether(const std::vector<Backups*>& stores,
                                               const std::vector<std::string>& directories);

class Backups {
 public:
  Backups(EngineContext& ctx, Eraser& eraser) : ctx_(ctx), eraser_(eraser) {}

  // See Store::Backup, Store::ReadErasureLog, Store::ApplyErasureLog.
  Result<BackupInfo> Backup(const std::string& directory);
  Result<ErasureLog> ReadErasureLog();
  // `tag_checked`: the caller checked the log's tag (or accepted it
  // untagged); otherwise it must carry this store's tag.
  Result<ErasureLogApplied> ApplyErasureLog(const ErasureLog& log, bool tag_checked = false);

 private:
  friend Result<std::vector<BackupInfo>> BackupTogether(const std::vector<Backups*>& stores,
                                                        const std::vector<std::string>& directories);

  // Backup's work once `directory` exists and is empty.
  Result<BackupInfo> WriteBackup(const std::string& directory);
  // BackupTogether's three steps for this store: before its snapshots (the
  // directories, the page check, the ID and time), inside them (the copies)
  // and after (checksums, digests, the tagged MANIFEST).
  Status PrepareBackup(const std::string& directory, BackupInfo* info);
  Status CopySnapshots(storage::ReadTxn& data_snapshot, storage::ReadTxn& keys_snapshot, const std::string& directory,
                       BackupInfo* info);
  Status SealBackup(const std::string& directory, BackupInfo* info);

  EngineContext& ctx_;
  Eraser& eraser_;
};

}  // namespace shredkv::engine

#endif  // SHREDKV_ENGINE_BACKUP_H_
