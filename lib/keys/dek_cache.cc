#include "keys/dek_cache.h"

#include <algorithm>
#include <cstring>
#include <functional>

#include "util/coding.h"

namespace shredkv::keys {

DekCache::DekCache(std::size_t capacity)
    : per_shard_capacity_(capacity == 0 ? 0 : (capacity + kShards - 1) / kShards) {}

bool DekCache::Parse(std::string_view dek_key, Parsed* out) {
  if (dek_key.size() != kPersonSize + 4) return false;
  std::memcpy(out->person.data(), dek_key.data(), kPersonSize);
  out->slot = util::DecodeFixed32BE(dek_key.data() + kPersonSize);
  out->hash = PersonBytesHash{}(out->person);
  return true;
}

void DekCache::Remove(Shard& s, Lru::iterator entry) {
  auto it = s.index.find(entry->person);
  if (it != s.index.end()) {
    Slots& slots = it->second;
    slots.erase(std::remove_if(slots.begin(), slots.end(), [&](const auto& e) { return e.second == entry; }),
                slots.end());
    if (slots.empty()) s.index.erase(it);
  }
  s.lru.erase(entry);
}

DekHandle DekCache::Lookup(std::string_view dek_key) {
  Parsed p;
  if (!Parse(dek_key, &p)) return nullptr;
  Shard& s = ShardFor(p);
  std::lock_guard lock(s.mu);
  auto it = s.index.find(p.person);
  if (it == s.index.end()) return nullptr;
  for (const auto& [slot, entry] : it->second) {
    if (slot != p.slot) continue;
    s.lru.splice(s.lru.begin(), s.lru, entry);
    return entry->dek;
  }
  return nullptr;
}

std::uint64_t DekCache::generation(std::string_view dek_key) {
  Parsed p;
  if (!Parse(dek_key, &p)) return 0;
  Shard& s = ShardFor(p);
  std::lock_guard lock(s.mu);
  return s.generation;
}

void DekCache::Insert(std::string_view dek_key, DekHandle dek, std::uint64_t generation) {
  Parsed p;
  if (per_shard_capacity_ == 0 || !Parse(dek_key, &p)) return;
  Shard& s = ShardFor(p);
  std::lock_guard lock(s.mu);
  if (s.generation != generation) return;  // an erasure happened meanwhile
  Slots& slots = s.index[p.person];
  for (auto& [slot, entry] : slots) {
    if (slot != p.slot) continue;
    entry->dek = std::move(dek);
    s.lru.splice(s.lru.begin(), s.lru, entry);
    return;
  }
  s.lru.push_front(Entry{p.person, p.slot, std::move(dek)});
  slots.emplace_back(p.slot, s.lru.begin());
  while (s.lru.size() > per_shard_capacity_) Remove(s, std::prev(s.lru.end()));
}

void DekCache::Erase(std::string_view dek_key) {
  Parsed p;
  if (!Parse(dek_key, &p)) return;
  Shard& s = ShardFor(p);
  std::lock_guard lock(s.mu);
  ++s.generation;
  auto it = s.index.find(p.person);
  if (it == s.index.end()) return;
  for (const auto& [slot, entry] : it->second) {
    if (slot == p.slot) {
      Remove(s, entry);  // may erase `it`
      return;
    }
  }
}

void DekCache::ErasePerson(std::string_view person) {
  if (person.size() != kPersonSize) return;
  Parsed p;
  std::memcpy(p.person.data(), person.data(), kPersonSize);
  p.hash = PersonBytesHash{}(p.person);
  Shard& s = ShardFor(p);
  std::lock_guard lock(s.mu);
  ++s.generation;
  auto it = s.index.find(p.person);
  if (it == s.index.end()) return;
  for (const auto& [slot, entry] : it->second) s.lru.erase(entry);
  s.index.erase(it);
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
