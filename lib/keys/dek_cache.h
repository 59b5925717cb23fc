// A bounded LRU cache of unwrapped per-person data keys (DEKs), sharded to
// keep lock contention low. Entries are shared_ptrs: an evicted or erased key
// stays alive only while a reader in flight still holds it, and its guarded
// memory is wiped when the last holder lets go.
//
// Erasure safety: Insert() takes the generation the caller read with
// generation() *before* it started to load the key; Erase() bumps the
// generation, so a load that raced with an erasure cannot put the shredded
// key back into the cache.
// Thread safety: all methods are thread-safe.
#ifndef SHREDKV_KEYS_DEK_CACHE_H_
#define SHREDKV_KEYS_DEK_CACHE_H_

#include <array>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <map>

#include "crypto/secure_memory.h"

namespace shredkv::keys {

using DekHandle = std::shared_ptr<const crypto::SecretKey>;

class DekCache {
 public:
  explicit DekCache(std::size_t capacity);

  // Null if absent.
  DekHandle Lookup(const std::string& dek_key);
  // Generation to pass to Insert(); read it before loading the key.
  std::uint64_t generation(const std::string& dek_key);
  // Inserts unless the key's shard saw an Erase() since `generation`.
  void Insert(const std::string& dek_key, DekHandle dek, std::uint64_t generation);
  // Drops the entry and fences out loads that started before this call.
  void Erase(const std::string& dek_key);
  // Drops every slot of a person (cache keys starting with the 16-byte
  // person ID) and fences out loads that started before this call.
  void ErasePerson(std::string_view person);
  void Clear();
  std::size_t size();

 private:
  static constexpr std::size_t kShards = 16;
  struct Shard {
    std::mutex mu;
    std::uint64_t generation = 0;
    std::list<std::pair<std::string, DekHandle>> lru;  // front = most recent
    // Ordered, so a person's slots (keys person ‖ slot) are adjacent and
    // ErasePerson costs O(log n + slots), not a walk of the shard.
    std::map<std::string, decltype(lru)::iterator, std::less<>> index;
  };
  // All slots of one person live in one shard (sharded by the person prefix).
  Shard& ShardFor(std::string_view dek_key);

  std::size_t per_shard_capacity_;
  std::array<Shard, kShards> shards_;
};

}  // namespace shredkv::keys

#endif  // SHREDKV_KEYS_DEK_CACHE_H_
