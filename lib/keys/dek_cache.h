// A bounded LRU cache of unwrapped per-person data keys (DEKs), sharded by
// person to keep lock contention low. Entries are shared_ptrs: an evicted or erased key
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
#include <string_view>
#include <unordered_map>
#include <vector>

#include "crypto/secure_memory.h"

namespace shredkv::keys {

using DekHandle = std::shared_ptr<const crypto::SecretKey>;

class DekCache {
 public:
  explicit DekCache(std::size_t capacity);

  // `dek_key` is codec::DekKey(person, slot): the 16-byte person ID then the
  // slot as 4 bytes. Other lengths are never cached (Lookup: null).

  // Null if absent.
  DekHandle Lookup(std::string_view dek_key);
  // Generation to pass to Insert(); read it before loading the key.
  std::uint64_t generation(std::string_view dek_key);
  // Inserts unless the key's shard saw an Erase() since `generation`.
  void Insert(std::string_view dek_key, DekHandle dek, std::uint64_t generation);
  // Drops the entry and fences out loads that started before this call.
  void Erase(std::string_view dek_key);
  // Drops every slot of a person (cache keys starting with the 16-byte
  // person ID) and fences out loads that started before this call.
  void ErasePerson(std::string_view person);
  void Clear();
  std::size_t size();

 private:
  static constexpr std::size_t kShards = 16;
  static constexpr std::size_t kPersonSize = 16;
  using PersonBytes = std::array<char, kPersonSize>;
  struct PersonBytesHash {
    std::size_t operator()(const PersonBytes& p) const {
      return std::hash<std::string_view>{}(std::string_view(p.data(), p.size()));
    }
  };
  struct Entry {
    PersonBytes person;
    std::uint32_t slot;
    DekHandle dek;
  };
  using Lru = std::list<Entry>;  // front = most recent
  // A person's cached slots (usually one: the person key).
  using Slots = std::vector<std::pair<std::uint32_t, Lru::iterator>>;
  struct Shard {
    std::mutex mu;
    std::uint64_t generation = 0;
    Lru lru;
    // By person, so a lookup is one hash probe and ErasePerson drops the
    // person's slots without a walk (a std::map of string keys cost ~14
    // dependent cache misses a lookup at 12,500 entries a shard).
    std::unordered_map<PersonBytes, Slots, PersonBytesHash> index;
  };
  struct Parsed {
    PersonBytes person;
    std::uint32_t slot = 0;
    std::size_t hash = 0;
  };
  // False unless `dek_key` is person ‖ slot.
  static bool Parse(std::string_view dek_key, Parsed* out);
  Shard& ShardFor(const Parsed& p) { return shards_[p.hash % kShards]; }
  // REQUIRES: s.mu held.
  static void Remove(Shard& s, Lru::iterator entry);

  std::size_t per_shard_capacity_;
  std::array<Shard, kShards> shards_;
};

}  // namespace shredkv::keys

#endif  // SHREDKV_KEYS_DEK_CACHE_H_
