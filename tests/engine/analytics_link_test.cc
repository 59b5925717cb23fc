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

TEST(AnalyticsLinkTest, RowKeyIsTheFlooredTimeThenAKeyedHashOfTheSequence) {
  const std::string link(32, 'L');
  constexpr std::int64_t kHour = 3600 * 1000;
  const std::string k = LinkedAnalyticsKey(link, kHour, 5 * kHour + 123, 42);
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
  EXPECT_NE(LinkedAnalyticsKey(link, kHour, 5 * kHour, 43).substr(8), k.substr(8));
  EXPECT_NE(LinkedAnalyticsKey(std::string(32, 'M'), kHour, 5 * kHour, 42).substr(8), k.substr(8));
  EXPECT_EQ(LinkedAnalyticsKey(link, kHour, 5 * kHour + 999, 42), k);  // the same row, any time in the hour
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
