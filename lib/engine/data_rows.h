// Small helpers for rows of the `data` environment and its persistent meta
// keys, shared by the engine's translation units (one home for clear-row
// encoding in the engine).
#ifndef SHREDKV_ENGINE_DATA_ROWS_H_
#define SHREDKV_ENGINE_DATA_ROWS_H_

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "codec/sealed.h"
#include "shredkv/types.h"
#include "storage/environment.h"

namespace shredkv::engine {

// Keys of the `data` meta table (docs/format.md §5.1; persistent).
inline constexpr std::string_view kDataFormatKey = "format";
inline constexpr std::string_view kDataStoreIdKey = "store_id";
inline constexpr std::string_view kEventSeqKey = "event_seq";
inline constexpr std::string_view kAnalyticsGranularityKey = "analytics_granularity";
inline constexpr std::string_view kMigrationKey = "migration_v3";
// fixed64be: StorePosition::generation, the times the commit count of the
// data file started again (a compaction, a restore, a re-applied log).
// Absent: 0 (a store of a build before stop 39).
inline constexpr std::string_view kPositionGenerationKey = "position_generation";
// fixed64be: the backups Store::Backup took (a commit of its own before its
// snapshots, so a backup's position is above any log read before it).
inline constexpr std::string_view kBackupsTakenKey = "backups_taken";
// fixed64be: the newest key epoch whose rotation has its audit entry
// (Maintenance::AuditRotation).
inline constexpr std::string_view kAuditedRotationEpochKey = "audited_rotation_epoch";
// fixed32be(AnalyticsLayout): how linked analytics keys are built. Absent in
// a format-3 store: kUngrouped (made before the layout was recorded).
inline constexpr std::string_view kAnalyticsLayoutKey = "analytics_layout";
// fixed32be(index) ‖ fixed32be(count): the store's place in a sharded store
// (Options::shard_placement). Absent in a store outside one, and in a
// shard not yet opened writable by a ShardedStore since stop 33.
inline constexpr std::string_view kPlacementKey = "placement";

// `progress/` ‖ name → fixed64be(position): WriteBatch::SetProgress.
inline constexpr std::string_view kProgressKeyPrefix = "progress/";

// OK if `name` is a name WriteBatch::SetProgress takes: 1 to 64 characters
// of [A-Za-z0-9._:-]; InvalidArgument naming the rule otherwise.
Status CheckProgressName(std::string_view name);
// The `data` meta key of progress `name`.
std::string ProgressKey(std::string_view name);

using codec::PlainRow;
using codec::ReadPlain;

inline Result<PersonId> PersonIdFromBytes(std::string_view bytes) {
  if (bytes.size() != PersonId::kSize) return Status::Corruption("person id has the wrong length");
  PersonId::Bytes b;
  std::memcpy(b.data(), bytes.data(), b.size());
  return PersonId(b);
}

// Keys of `table` that start with `prefix`, at most `limit`.
Result<std::vector<std::string>> KeysWithPrefix(storage::ReadTxn& txn, storage::Table table,
                                                std::string_view prefix, std::uint64_t limit);

}  // namespace shredkv::engine

#endif  // SHREDKV_ENGINE_DATA_ROWS_H_
