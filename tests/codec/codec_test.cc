#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "codec/row_codec.h"
#include "codec/sealed.h"
#include "codec/value_codec.h"

namespace shredkv::codec {
namespace {

Attributes AllTypes() {
  return Attributes{{"b", Value(true)},
                    {"bytes", Value::Bytes(std::string("\0\xff\x01", 3))},
                    {"d", Value(-2.5)},
                    {"i", Value(std::int64_t{-42})},
                    {"max", Value(std::numeric_limits<std::int64_t>::max())},
                    {"s", Value("text")},
                    {"t", Value(Timestamp{1700000000123})}};
}

TEST(ValueCodecTest, EveryTypeRoundTrips) {
  std::string buf;
  EncodeAttributes(AllTypes(), &buf);
  util::ByteReader r(buf);
  Attributes back;
  ASSERT_TRUE(DecodeAttributes(&r, &back).ok());
  EXPECT_TRUE(r.done());
  EXPECT_EQ(back, AllTypes());
}

TEST(ValueCodecTest, EveryTruncationIsCorruption) {
  std::string buf;
  EncodeAttributes(AllTypes(), &buf);
  for (std::size_t n = 0; n < buf.size(); ++n) {
    Attributes out;
    Status s = DecodeProfile(buf.substr(0, n), &out);
    EXPECT_TRUE(s.IsCorruption()) << "prefix " << n << ": " << s.ToString();
  }
}

TEST(ValueCodecTest, UnknownTypeAndTrailingBytesAreCorruption) {
  std::string buf;
  EncodeAttributes(Attributes{{"a", Value("x")}}, &buf);
  std::string bad_type = buf;
  bad_type[3] = 99;  // count(1) len(1) 'a'(1) type
  Attributes out;
  EXPECT_TRUE(DecodeProfile(bad_type, &out).IsCorruption());
  EXPECT_TRUE(DecodeProfile(buf + "x", &out).IsCorruption());
}

TEST(ValueCodecTest, EncodingWithNameChecksMatchesPlainEncodingAndRefusesBadNames) {
  const Attributes good = {{"a", 1}, {std::string(255, 'n'), "x"}, {"z", true}};
  std::string plain, checked;
  EncodeAttributes(good, &plain);
  ASSERT_TRUE(EncodeValidAttributes(good, "event property", &checked).ok());
  EXPECT_EQ(checked, plain);
  std::string event_plain, event_checked;
  EncodeEvent("click", "general", good, &event_plain);
  ASSERT_TRUE(EncodeValidEvent("click", "general", good, &event_checked).ok());
  EXPECT_EQ(event_checked, event_plain);
  for (const std::string& bad : {std::string(), std::string(256, 'n')}) {
    std::string out;
    Status s = EncodeValidEvent("click", "general", Attributes{{"a", 1}, {bad, 2}}, &out);
    EXPECT_TRUE(s.IsInvalidArgument()) << s.ToString();
    EXPECT_EQ(s.message(), "event property name must be 1..255 bytes");
  }
}

TEST(RowCodecTest, PersonRoundTrips) {
  PersonPayload p;
  p.anon_id = AnonymousId(AnonymousId::Bytes{1, 2, 3});
  p.created_ms = -5;
  p.identifiers = {{"email", "a@x.org"}, {"phone", "+4917012345"}};
  std::string buf;
  EncodePerson(p, &buf);
  PersonPayload back;
  ASSERT_TRUE(DecodePerson(buf, &back).ok());
  EXPECT_EQ(back.anon_id, p.anon_id);
  EXPECT_EQ(back.created_ms, p.created_ms);
  EXPECT_EQ(back.identifiers, p.identifiers);
}

TEST(RowCodecTest, EventKeysSortByPersonThenTime) {
  PersonId a(PersonId::Bytes{1}), b(PersonId::Bytes{2});
  EXPECT_LT(EventKey(a, 5, 9), EventKey(a, 6, 1));
  EXPECT_LT(EventKey(a, -1, 0), EventKey(a, 0, 0));
  EXPECT_LT(EventKey(a, 1000, 0), EventKey(b, -1000, 0));
  std::int64_t ts;
  std::uint64_t seq;
  ASSERT_TRUE(DecodeTsSeq(EventKey(a, -77, 3).substr(kIdSize), &ts, &seq).ok());
  EXPECT_EQ(ts, -77);
  EXPECT_EQ(seq, 3u);
}

TEST(RowCodecTest, RecordMetadataRoundTripsAndIsAbsentWhenEmpty) {
  std::string plain_record, with_metadata;
  EncodeRecord("orders", "42", "v", "general", RecordMetadata{}, std::nullopt, &plain_record);
  // No metadata: the bytes of a record written before metadata existed.
  std::string old_layout;
  for (std::string_view part : {"orders", "42", "v", "general"}) {
    old_layout.push_back(static_cast<char>(part.size()));
    old_layout.append(part);
  }
  EXPECT_EQ(plain_record, old_layout);
  const RecordMetadata m{{"billing", "support"}, "checkout", {"psp"}, true};
  EncodeRecord("orders", "42", "v", "general", m, std::nullopt, &with_metadata);
  Record r;
  ASSERT_TRUE(DecodeRecord(with_metadata, &r).ok());
  EXPECT_EQ(r.metadata, m);
  EXPECT_EQ(r.value, "v");
  ASSERT_TRUE(DecodeRecord(plain_record, &r).ok());
  EXPECT_TRUE(r.metadata.empty());
  // Every truncation of the metadata section, an empty section, an unknown
  // tag or flag: Corruption.
  for (std::size_t n = plain_record.size() + 1; n < with_metadata.size(); ++n) {
    EXPECT_TRUE(DecodeRecord(std::string_view(with_metadata).substr(0, n), &r).IsCorruption()) << n;
  }
  std::string empty_section = plain_record + std::string("\x01\x00\x00\x00\x00", 5);
  EXPECT_TRUE(DecodeRecord(empty_section, &r).IsCorruption());
  std::string bad_tag = with_metadata;
  bad_tag[plain_record.size()] = 2;
  EXPECT_TRUE(DecodeRecord(bad_tag, &r).IsCorruption());
  std::string bad_flag = with_metadata;
  bad_flag.back() = 5;
  EXPECT_TRUE(DecodeRecord(bad_flag, &r).IsCorruption());
  // An expiry round-trips; a flagged expiry of zero is not canonical.
  std::string expiring;
  const RecordMetadata e{{}, "", {}, false, 1'700'000'000'000};
  EncodeRecord("orders", "42", "v", "general", e, std::nullopt, &expiring);
  ASSERT_TRUE(DecodeRecord(expiring, &r).ok());
  EXPECT_EQ(r.metadata, e);
  std::string zero = expiring;
  for (std::size_t i = zero.size() - 8; i < zero.size(); ++i) zero[i] = i == zero.size() - 8 ? '\x80' : '\0';
  EXPECT_TRUE(DecodeRecord(zero, &r).IsCorruption());
}

// Data format 4: the record's last-write time, a section after the metadata.
TEST(RowCodecTest, RecordWriteTimeRoundTripsAfterTheMetadataAndIsAbsentBeforeFormat4) {
  const RecordMetadata m{{"billing"}, "checkout", {}, false, 1'800'000'000'000};
  for (const RecordMetadata& metadata : {RecordMetadata{}, m}) {
    SCOPED_TRACE(metadata.empty() ? "no metadata" : "metadata");
    std::string without, with;
    EncodeRecord("orders", "42", "v", "general", metadata, std::nullopt, &without);
    EncodeRecord("orders", "42", "v", "general", metadata, -5, &with);
    // The time is one section appended to the bytes a format-3 build wrote.
    ASSERT_EQ(with.size(), without.size() + 9);
    EXPECT_EQ(with.substr(0, without.size()), without);
    Record r;
    std::optional<std::int64_t> written = 7;
    ASSERT_TRUE(DecodeRecord(with, &r, &written).ok());
    EXPECT_EQ(written, std::optional<std::int64_t>(-5));
    EXPECT_EQ(r.metadata, metadata);
    EXPECT_EQ(r.value, "v");
    ASSERT_TRUE(DecodeRecord(without, &r, &written).ok());
    EXPECT_FALSE(written.has_value());
    ASSERT_TRUE(DecodeRecord(with, &r).ok());  // the time is optional to callers
    // Truncated time, trailing bytes, an unknown tag: Corruption.
    for (std::size_t n = without.size() + 1; n < with.size(); ++n) {
      EXPECT_TRUE(DecodeRecord(std::string_view(with).substr(0, n), &r, &written).IsCorruption()) << n;
    }
    EXPECT_TRUE(DecodeRecord(with + "x", &r, &written).IsCorruption());
    std::string bad_tag = with;
    bad_tag[without.size()] = 3;
    EXPECT_TRUE(DecodeRecord(bad_tag, &r, &written).IsCorruption());
  }
  // The sections have one order: a time before the metadata is Corruption.
  std::string plain, swapped;
  EncodeRecord("orders", "42", "v", "general", RecordMetadata{}, std::nullopt, &plain);
  std::string meta_only, time_only;
  EncodeRecord("orders", "42", "v", "general", m, std::nullopt, &meta_only);
  EncodeRecord("orders", "42", "v", "general", RecordMetadata{}, 1, &time_only);
  swapped = time_only + meta_only.substr(plain.size());
  Record r;
  EXPECT_TRUE(DecodeRecord(swapped, &r).IsCorruption());
}

TEST(SealedTest, PlainRowDetectsAnyFlip) {
  std::string row;
  SealPlain(TableId::kAnalytics, "key", "payload", &row);
  std::string_view payload;
  ASSERT_TRUE(OpenPlain(TableId::kAnalytics, "key", row, &payload).ok());
  EXPECT_EQ(payload, "payload");
  EXPECT_TRUE(OpenPlain(TableId::kAnalytics, "other", row, &payload).IsCorruption());
  EXPECT_TRUE(OpenPlain(TableId::kIdentIndex, "key", row, &payload).IsCorruption());
  for (std::size_t i = 0; i < row.size(); ++i) {
    std::string bad = row;
    bad[i] = static_cast<char>(bad[i] ^ 0x40);
    EXPECT_TRUE(OpenPlain(TableId::kAnalytics, "key", bad, &payload).IsCorruption()) << i;
  }
}

TEST(SealedTest, SealedRowBoundToTableAndKey) {
  ASSERT_TRUE(crypto::Init().ok());
  auto key = crypto::SecretKey::Random();
  std::string row, plain;
  SealRow(crypto::CipherId::kXChaCha20Poly1305, *key, TableId::kEvents, "k1", "secret", &row);
  ASSERT_TRUE(OpenRow(*key, TableId::kEvents, "k1", row, &plain).ok());
  EXPECT_EQ(plain, "secret");
  EXPECT_TRUE(OpenRow(*key, TableId::kEvents, "k2", row, &plain).IsAuthenticationFailed());
  EXPECT_TRUE(OpenRow(*key, TableId::kRecords, "k1", row, &plain).IsAuthenticationFailed());
  std::string bad_version = row;
  bad_version[0] = 9;
  EXPECT_TRUE(OpenRow(*key, TableId::kEvents, "k1", bad_version, &plain).IsCorruption());
  std::string bad_cipher = row;
  bad_cipher[1] = 77;
  EXPECT_TRUE(OpenRow(*key, TableId::kEvents, "k1", bad_cipher, &plain).IsCorruption());
  EXPECT_TRUE(OpenRow(*key, TableId::kEvents, "k1", "", &plain).IsCorruption());
}

}  // namespace
}  // namespace shredkv::codec
