// The SHARDS file of a sharded store (docs/format.md §12): the shard count
// and the identifier routing key, sealed under the root key; and each
// shard's SHARD marker, which ties the directory to its place.
// Thread safety: stateless.
#ifndef SHREDKV_SHARDING_SHARD_MANIFEST_H_
#define SHREDKV_SHARDING_SHARD_MANIFEST_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "crypto/secure_memory.h"
#include "shredkv/key_provider.h"
#include "shredkv/status.h"

namespace shredkv::sharding {

inline constexpr const char* kManifestName = "SHARDS";

struct ShardManifest {
  std::uint32_t shard_count = 0;
  std::string salt;  // 16 bytes, given to the key provider
  // Keys the identifier routing hash (SipHash-2-4 uses its first 16 bytes).
  std::unique_ptr<crypto::SecretKey> routing_key;
};

// A new manifest: a random salt and routing key.
Result<ShardManifest> NewManifest(std::uint32_t shard_count);

// Seals the routing key under the root key `provider` gives for the
// manifest's salt and writes the file durably (util::WriteFileDurably).
Status WriteManifest(const std::string& path, const ShardManifest& manifest, KeyProvider& provider);

// Reads and checks the file (Corruption: bad magic, size or checksum;
// UnsupportedVersion: a newer layout) and opens the routing key with the
// root key (WrongKey if it does not open it). NotFound if there is no file.
Result<ShardManifest> ReadManifest(const std::string& path, KeyProvider& provider);

// What a shard's SHARD marker (format.md §12) says, once its tag checked.
struct ShardMarker {
  // The store ID (StoreStats::store_id, 32 hex digits) of every shard, by
  // index: each marker names them all, so the shards left know a lost
  // one's. Empty in a layout-1 marker (before stop 27), which names none.
  std::vector<std::string> store_ids;
};

// Writes <shard_dir>/SHARD: the shard's index, the count and every shard's
// store ID, tagged with the routing key, so a shard directory moved to
// another place or another sharded store, or another store's files put in
// its place, are recognised. REQUIRES: store_ids.size() == shard count.
Status WriteShardMarker(const std::string& shard_dir, std::uint32_t index, const std::vector<std::string>& store_ids,
                        const ShardManifest& manifest);

// Reads <shard_dir>/SHARD. Corruption unless it is shard `index`'s marker
// of this store (no file, another index or count, a tag the routing key did
// not make, damage).
Result<ShardMarker> ReadShardMarker(const std::string& shard_dir, std::uint32_t index, const ShardManifest& manifest);

// A sharded backup's RUN file in each shard's backup directory (format.md
// §12): which ShardedStore::Backup call made that shard's backup. Restore
// requires every shard's to name the same run, so shard backups of two
// runs put together (one identifier then held by two people in different
// shards) are refused (outside audit 34, F3).
inline constexpr const char* kBackupRunName = "RUN";
inline constexpr std::size_t kBackupRunIdSize = 16;

// A new random run ID (kBackupRunIdSize bytes).
std::string NewBackupRunId();

// Writes <shard_backup_dir>/RUN for shard `index`: the run ID, tagged with
// the routing key over the run ID, the place and the shard backup's MANIFEST
// as written (so a MANIFEST of another run under this RUN is recognised).
// REQUIRES: the shard's backup is complete (its MANIFEST written).
Status WriteBackupRun(const std::string& shard_backup_dir, std::uint32_t index, std::string_view run_id,
                      const ShardManifest& manifest);

// The run ID of <shard_backup_dir>/RUN. Corruption if the file is missing,
// damaged, of another place or store, or does not match the MANIFEST beside it.
Result<std::string> ReadBackupRun(const std::string& shard_backup_dir, std::uint32_t index,
                                  const ShardManifest& manifest);

}  // namespace shredkv::sharding

#endif  // SHREDKV_SHARDING_SHARD_MANIFEST_H_
