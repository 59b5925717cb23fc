// The analytics row key construction (docs/format.md §5.4): pinned, since
// it is persistent, and the ticket link encoding.
#include <gtest/gtest.h>

#include "codec/row_codec.h"
#include "crypto/keyed_hash.h"
#include "crypto/secure_memory.h"
#include "engine/analytics_link.h"
#include "util/coding.h"

namespace shredkv::engine {
namespace {

TEST(AnalyticsLinkTest, LinkIsTheDocumentedKeyedHashOfTheSlotKey) {
  auto key = crypto::SecretKey::FromBytes(std::string(32, 'a'));
  ASSERT_TRUE(key.ok());
  EXPECT_EQ(AnalyticsLink(*key), crypto::KeyedHash(*key, 32, {"analytics-link"}));
  auto other = crypto::SecretKey::FromBytes(std::string(32, 'b'));
  ASSERT_TRUE(other.ok());
  EXPECT_NE(AnalyticsLink(*key), AnalyticsLink(*other));
}

TEST(AnalyticsLinkTest, UngroupedRowKeyIsTheFlooredTimeThenAKeyedHashOfTheSequence) {
  const std::string link(32, 'L');
  constexpr std::int64_t kHour = 3600 * 1000;
  constexpr auto kLayout = AnalyticsLayout::kUngrouped;
  const std::string k = LinkedAnalyticsKey(kLayout, link, kHour, 5 * kHour + 123, 42);
  ASSERT_EQ(k.size(), codec::kAnalyticsKeySize);
  std::int64_t bucket = 0;
  ASSERT_TRUE(codec::DecodeAnalyticsKey(k, &bucket).ok());
  EXPECT_EQ(bucket, 5 * kHour);
  std::string message = "analytics-row";
  util::PutFixed64BE(&message, 42);
  unsigned char id[16];
  crypto::KeyedHashRaw(link, message, id, sizeof id);
  EXPECT_EQ(k.substr(8), std::string(reinterpret_cast<const char*>(id), sizeof id));
  // Nothing of the event's (ts, seq) is in the key.
  std::string seq_bytes;
  util::PutFixed64BE(&seq_bytes, 42);
  EXPECT_EQ(k.find(seq_bytes), std::string::npos);
  EXPECT_NE(LinkedAnalyticsKey(kLayout, link, kHour, 5 * kHour, 43).substr(8), k.substr(8));
  EXPECT_NE(LinkedAnalyticsKey(kLayout, std::string(32, 'M'), kHour, 5 * kHour, 42).substr(8), k.substr(8));
  EXPECT_EQ(LinkedAnalyticsKey(kLayout, link, kHour, 5 * kHour + 999, 42), k);  // the same row, any time in the hour
}

TEST(AnalyticsLinkTest, ShortKeyedHashIsSipHash24) {
  // The reference vector of SipHash-2-4 (Aumasson and Bernstein): key
  // 00 01 … 0f, empty message → 31 0e 0e dd 47 db 6f 72 (read big-endian).
  std::string key;
  for (int i = 0; i < 16; ++i) key.push_back(static_cast<char>(i));
  EXPECT_EQ(crypto::ShortKeyedHash(key, ""), 0x310e0edd47db6f72ull);
}

TEST(AnalyticsLinkTest, GroupedRowKeyIsTheFlooredTimeTheGroupThenASipHashOfTheSequence) {
  std::string link;
  for (int i = 0; i < 32; ++i) link.push_back(static_cast<char>('A' + i));
  constexpr std::int64_t kHour = 3600 * 1000;
  constexpr auto kLayout = AnalyticsLayout::kGrouped;
  const std::string k = LinkedAnalyticsKey(kLayout, link, kHour, 5 * kHour + 123, 42);
  ASSERT_EQ(k.size(), codec::kAnalyticsKeySize);
  std::int64_t bucket = 0;
  ASSERT_TRUE(codec::DecodeAnalyticsKey(k, &bucket).ok());
  EXPECT_EQ(bucket, 5 * kHour);
  EXPECT_EQ(k.substr(8, 8), link.substr(0, 8));  // the group: the link's first 8 bytes
  std::string seq_bytes;
  util::PutFixed64BE(&seq_bytes, 42);
  std::string row;
  util::PutFixed64BE(&row, crypto::ShortKeyedHash(link.substr(16, 16), seq_bytes));
  EXPECT_EQ(k.substr(16), row);
  EXPECT_EQ(k.find(seq_bytes), std::string::npos);
  // The rest of the link (bytes 8..16, and the SipHash key) is not in the key.
  EXPECT_EQ(k.find(link.substr(8, 8)), std::string::npos);
  EXPECT_EQ(k.find(link.substr(16, 8)), std::string::npos);
  const std::string next = LinkedAnalyticsKey(kLayout, link, kHour, 5 * kHour, 43);
  EXPECT_EQ(next.substr(0, 16), k.substr(0, 16));  // same bucket and group
  EXPECT_NE(next.substr(16), k.substr(16));
  EXPECT_NE(LinkedAnalyticsKey(kLayout, std::string(32, 'M'), kHour, 5 * kHour, 42).substr(8), k.substr(8));
  EXPECT_EQ(LinkedAnalyticsKey(kLayout, link, kHour, 5 * kHour + 999, 42), k);
}

TEST(AnalyticsLinkTest, FloorRoundsTowardsMinusInfinity) {
  EXPECT_EQ(FloorTo(7, 5), 5);
  EXPECT_EQ(FloorTo(-1, 5), -5);
  EXPECT_EQ(FloorTo(-5, 5), -5);
  EXPECT_EQ(FloorTo(0, 5), 0);
  EXPECT_EQ(FloorTo(12345, 1), 12345);
}

TEST(AnalyticsLinkTest, RandomKeysAreInTheirBucketAndDistinct) {
  const std::string a = RandomAnalyticsKey(86'400'000), b = RandomAnalyticsKey(86'400'000);
  EXPECT_NE(a, b);
  std::int64_t bucket = 0;
  ASSERT_TRUE(codec::DecodeAnalyticsKey(a, &bucket).ok());
  EXPECT_EQ(bucket, 86'400'000);
}

TEST(AnalyticsLinkTest, TicketLinksRoundTripAndMalformedOnesAreCorruption) {
  std::map<std::uint32_t, std::string> links{{0, std::string(32, 'x')}, {3, std::string(32, 'y')}};
  const std::string enc = EncodeLinks(links);
  std::map<std::uint32_t, std::string> back;
  ASSERT_TRUE(DecodeLinks(enc, &back).ok());
  EXPECT_EQ(back, links);
  for (std::size_t cut = 0; cut < enc.size(); ++cut) {
    std::map<std::uint32_t, std::string> partial;
    EXPECT_TRUE(DecodeLinks(enc.substr(0, cut), &partial).IsCorruption()) << cut;
  }
  std::map<std::uint32_t, std::string> extra;
  EXPECT_TRUE(DecodeLinks(enc + "z", &extra).IsCorruption());
  std::map<std::uint32_t, std::string> huge;
  EXPECT_TRUE(DecodeLinks(std::string("\xff\xff\xff\xff\x0f", 5), &huge).IsCorruption());
}

}  // namespace
}  // namespace shredkv::engine
