#include "util/coding.h"

#include <gtest/gtest.h>

#include <limits>

#include "util/checksum.h"

namespace shredkv::util {
namespace {

TEST(CodingTest, VarintRoundTripsBoundaries) {
  const std::uint64_t values[] = {0, 1, 127, 128, 16383, 16384, (1ull << 32) - 1, 1ull << 32,
                                  std::numeric_limits<std::uint64_t>::max()};
  std::string buf;
  for (auto v : values) PutVarint64(&buf, v);
  ByteReader r(buf);
  for (auto v : values) {
    std::uint64_t got = 0;
    ASSERT_TRUE(r.GetVarint64(&got));
    EXPECT_EQ(got, v);
  }
  EXPECT_TRUE(r.done());
}

TEST(CodingTest, OverlongVarintFails) {
  std::string buf(11, '\xff');
  ByteReader r(buf);
  std::uint64_t v;
  EXPECT_FALSE(r.GetVarint64(&v));
  EXPECT_TRUE(r.failed());
}

// Issue 23 (fuzz_payloads): a varint padded with a zero last byte (0x80
// 0x00 for 0, 0x81 0x00 for 1) decoded to the same value as its one-byte
// form, so a payload had several encodings. Only PutVarint64's form reads.
TEST(CodingTest, PaddedVarintFails) {
  for (const std::string& padded : {std::string("\x80\x00", 2), std::string("\x81\x00", 2),
                                   std::string("\xff\x80\x00", 3)}) {
    ByteReader r(padded);
    std::uint64_t v = 0;
    EXPECT_FALSE(r.GetVarint64(&v));
  }
  std::string zero;
  PutVarint64(&zero, 0);
  ByteReader r(zero);
  std::uint64_t v = 1;
  EXPECT_TRUE(r.GetVarint64(&v));
  EXPECT_EQ(v, 0u);
}

TEST(CodingTest, LengthPrefixBeyondInputFails) {
  std::string buf;
  PutVarint64(&buf, 100);
  buf += "short";
  ByteReader r(buf);
  std::string_view s;
  EXPECT_FALSE(r.GetLengthPrefixed(&s));
}

TEST(CodingTest, OrderedSignedKeepsOrderInBigEndian) {
  const std::int64_t values[] = {std::numeric_limits<std::int64_t>::min(), -5, -1, 0, 1, 1700000000000,
                                 std::numeric_limits<std::int64_t>::max()};
  std::string prev;
  for (auto v : values) {
    std::string cur;
    PutFixed64BE(&cur, OrderedFromSigned(v));
    EXPECT_EQ(SignedFromOrdered(DecodeFixed64BE(cur.data())), v);
    if (!prev.empty()) {
      EXPECT_LT(prev, cur);
    }
    prev = cur;
  }
}

TEST(ChecksumTest, SplitInputEqualsWhole) {
  EXPECT_EQ(Checksum64("hello", " world"), Checksum64("hello world"));
  EXPECT_NE(Checksum64("hello world"), Checksum64("hello worle"));
}

}  // namespace
}  // namespace shredkv::util
