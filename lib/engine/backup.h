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
// its two snapshots begin.
#ifndef SHREDKV_ENGINE_BACKUP_H_
#define SHREDKV_ENGINE_BACKUP_H_

#include <string>

#include "engine/context.h"
#include "engine/erasure.h"
#include "shredkv/backup.h"

namespace shredkv::engine {

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
  // Backup's work once `directory` exists and is empty.
  Result<BackupInfo> WriteBackup(const std::string& directory);

  EngineContext& ctx_;
  Eraser& eraser_;
};

}  // namespace shredkv::engine

#endif  // SHREDKV_ENGINE_BACKUP_H_
