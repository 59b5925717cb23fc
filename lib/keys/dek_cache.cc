#include "keys/dek_cache.h"

#include <functional>

namespace shredkv::keys {

DekCache::DekCache(std::size_t capacity)
    : per_shard_capacity_(capacity == 0 ? 0 : (capacity + kShards - 1) / kShards) {}

DekCache::Shard& DekCache::ShardFor(std::string_view dek_key) {
  return shards_[std::hash<std::string_view>{}(dek_key.substr(0, 16)) % kShards];
}

DekHandle DekCache::Lookup(const std::string& dek_key) {
  Shard& s = ShardFor(dek_key);
  std::lock_guard lock(s.mu);
  auto it = s.index.find(dek_key);
  if (it == s.index.end()) return nullptr;
  s.lru.splice(s.lru.begin(), s.lru, it->second);
  return it->second->second;
}

std::uint64_t DekCache::generation(const std::string& dek_key) {
  Shard& s = ShardFor(dek_key);
  std::lock_guard lock(s.mu);
  return s.generation;
}

void DekCache::Insert(const std::string& dek_key, DekHandle dek, std::uint64_t generation) {
  if (per_shard_capacity_ == 0) return;
  Shard& s = ShardFor(dek_key);
  std::lock_guard lock(s.mu);
  if (s.generation != generation) return;  // an erasure happened meanwhile
  auto it = s.index.find(dek_key);
  if (it != s.index.end()) {
    it->second->second = std::move(dek);
    s.lru.splice(s.lru.begin(), s.lru, it->second);
    return;
  }
  s.lru.emplace_front(dek_key, std::move(dek));
  s.index.emplace(dek_key, s.lru.begin());
  while (s.lru.size() > per_shard_capacity_) {
    s.index.erase(s.lru.back().first);
    s.lru.pop_back();
  }
}

void DekCache::Erase(const std::string& dek_key) {
  Shard& s = ShardFor(dek_key);
  std::lock_guard lock(s.mu);
  ++s.generation;
  auto it = s.index.find(dek_key);
  if (it != s.index.end()) {
    s.lru.erase(it->second);
    s.index.erase(it);
  }
}

void DekCache::ErasePerson(std::string_view person) {
  Shard& s = ShardFor(person);
  std::lock_guard lock(s.mu);
  ++s.generation;
  auto it = s.index.lower_bound(person);
  while (it != s.index.end() && std::string_view(it->first).substr(0, person.size()) == person) {
    s.lru.erase(it->second);
    it = s.index.erase(it);
  }
}

void DekCache::Clear() {
  for (Shard& s : shards_) {
    std::lock_guard lock(s.mu);
    ++s.generation;
    s.index.clear();
    s.lru.clear();
  }
}

std::size_t DekCache::size() {
  std::size_t n = 0;
  for (Shard& s : shards_) {
    std::lock_guard lock(s.mu);
    n += s.lru.size();
  }
  return n;
}

}  // namespace shredkv::keys
