// DekCache: LRU bound, slots per person, erasure of one slot or of a whole
// person, and the generation fence against loads that raced an erasure.
#include "keys/dek_cache.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <string>
#include <vector>

#include "codec/row_codec.h"
#include "shredkv/types.h"

namespace shredkv::keys {
namespace {

DekHandle NewKey() {
  auto k = crypto::SecretKey::Random();
  EXPECT_TRUE(k.ok());
  return std::make_shared<const crypto::SecretKey>(std::move(k).value());
}

PersonId Person(int i) {
  char hex[33];
  std::snprintf(hex, sizeof hex, "%032x", i);
  return *PersonId::FromHex(hex);
}

std::string Key(int person, std::uint32_t slot) { return codec::DekKey(Person(person), slot); }

TEST(DekCacheTest, LookupFindsTheSlotInsertedAndNotOtherSlotsOrPeople) {
  DekCache cache(100);
  DekHandle k0 = NewKey(), k3 = NewKey();
  cache.Insert(Key(1, 0), k0, cache.generation(Key(1, 0)));
  cache.Insert(Key(1, 3), k3, cache.generation(Key(1, 3)));
  EXPECT_EQ(cache.Lookup(Key(1, 0)), k0);
  EXPECT_EQ(cache.Lookup(Key(1, 3)), k3);
  EXPECT_EQ(cache.Lookup(Key(1, 1)), nullptr);
  EXPECT_EQ(cache.Lookup(Key(2, 0)), nullptr);
  EXPECT_EQ(cache.Lookup("short"), nullptr);
  DekHandle replaced = NewKey();
  cache.Insert(Key(1, 0), replaced, cache.generation(Key(1, 0)));
  EXPECT_EQ(cache.Lookup(Key(1, 0)), replaced);
  EXPECT_EQ(cache.size(), 2u);
}

TEST(DekCacheTest, LeastRecentlyUsedKeysAreEvictedAtCapacity) {
  DekCache cache(16 * 2);  // two entries per shard
  for (int i = 0; i < 2000; ++i) cache.Insert(Key(i, 0), NewKey(), cache.generation(Key(i, 0)));
  EXPECT_LE(cache.size(), 32u);
  // Find three people of one shard: inserting the third evicts the least
  // recently used of the first two, which a lookup just made the other one.
  DekCache probe(16);  // one entry per shard: an insert evicts a same-shard entry
  std::vector<int> same{0};
  for (int i = 1; i < 5000 && same.size() < 3; ++i) {
    probe.Clear();
    probe.Insert(Key(0, 0), NewKey(), probe.generation(Key(0, 0)));
    probe.Insert(Key(i, 0), NewKey(), probe.generation(Key(i, 0)));
    if (probe.Lookup(Key(0, 0)) == nullptr) same.push_back(i);
  }
  ASSERT_EQ(same.size(), 3u);
  DekCache lru(16 * 2);
  lru.Insert(Key(same[0], 0), NewKey(), lru.generation(Key(same[0], 0)));
  lru.Insert(Key(same[1], 0), NewKey(), lru.generation(Key(same[1], 0)));
  EXPECT_NE(lru.Lookup(Key(same[0], 0)), nullptr);  // same[1] is now the least recent
  lru.Insert(Key(same[2], 0), NewKey(), lru.generation(Key(same[2], 0)));
  EXPECT_NE(lru.Lookup(Key(same[0], 0)), nullptr);
  EXPECT_EQ(lru.Lookup(Key(same[1], 0)), nullptr);
  EXPECT_NE(lru.Lookup(Key(same[2], 0)), nullptr);
}

TEST(DekCacheTest, ErasePersonDropsEverySlotAndEraseOnlyItsOwn) {
  DekCache cache(100);
  for (std::uint32_t slot : {0u, 1u, 7u}) {
    cache.Insert(Key(1, slot), NewKey(), cache.generation(Key(1, slot)));
    cache.Insert(Key(2, slot), NewKey(), cache.generation(Key(2, slot)));
  }
  cache.Erase(Key(2, 7));
  EXPECT_EQ(cache.Lookup(Key(2, 7)), nullptr);
  EXPECT_NE(cache.Lookup(Key(2, 1)), nullptr);
  cache.ErasePerson(Person(1).view());
  for (std::uint32_t slot : {0u, 1u, 7u}) EXPECT_EQ(cache.Lookup(Key(1, slot)), nullptr);
  EXPECT_NE(cache.Lookup(Key(2, 0)), nullptr);
  EXPECT_EQ(cache.size(), 2u);
}

TEST(DekCacheTest, ALoadThatStartedBeforeAnErasureIsNotCached) {
  DekCache cache(100);
  const std::uint64_t before = cache.generation(Key(1, 0));
  cache.ErasePerson(Person(1).view());  // erased while the key was being loaded
  cache.Insert(Key(1, 0), NewKey(), before);
  EXPECT_EQ(cache.Lookup(Key(1, 0)), nullptr);
  const std::uint64_t slot_before = cache.generation(Key(1, 4));
  cache.Erase(Key(1, 4));
  cache.Insert(Key(1, 4), NewKey(), slot_before);
  EXPECT_EQ(cache.Lookup(Key(1, 4)), nullptr);
  cache.Insert(Key(1, 0), NewKey(), cache.generation(Key(1, 0)));  // a load after it
  EXPECT_NE(cache.Lookup(Key(1, 0)), nullptr);
}

TEST(DekCacheTest, ZeroCapacityCachesNothing) {
  DekCache cache(0);
  cache.Insert(Key(1, 0), NewKey(), cache.generation(Key(1, 0)));
  EXPECT_EQ(cache.Lookup(Key(1, 0)), nullptr);
  EXPECT_EQ(cache.size(), 0u);
}

}  // namespace
}  // namespace shredkv::keys
