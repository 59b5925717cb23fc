#include "shredkv/portability.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>

#include "test_util.h"

namespace shredkv {
namespace {

using Json = nlohmann::ordered_json;

class PortabilityTest : public test::StoreTest {
 protected:
  PersonId MakeRichPerson(Store& store) {
    auto id = store.CreatePerson({{"email", "ann@x.org"}, {"phone", "+4917012345"}, {"customer_id", "C-1"}},
                                 {{"name", Value("Ann")},
                                  {"age", Value(std::int64_t{-41})},
                                  {"big", Value(std::numeric_limits<std::int64_t>::max())},
                                  {"score", Value(0.1)},
                                  {"inf", Value(std::numeric_limits<double>::infinity())},
                                  {"vip", Value(false)},
                                  {"born", Value(Timestamp{-2208988800000})},
                                  {"blob", Value::Bytes(std::string("\0\xff\x10", 3))},
                                  {"latin1", Value(std::string("caf\xe9"))}});
    EXPECT_TRUE(id.ok()) << id.status().ToString();
    for (int i = 0; i < 5; ++i) {
      EXPECT_TRUE(store.AppendEvent(*id, Event{"purchase", 1700000000000 + i, {{"amount", i * 1.5}, {"sku", "S" + std::to_string(i)}},
                                               {"amount"}}).ok());
    }
    EXPECT_TRUE(store.AppendEvent(*id, Event{"login", 1700000000000, {}, {}}).ok());
    EXPECT_TRUE(store.Put(*id, "orders", "42", "two books").ok());
    EXPECT_TRUE(store.Put(*id, "blobs", std::string("\x01\x02", 2), std::string("\xff\xfe", 2)).ok());
    return *id;
  }

  std::string ExportString(Store& store, const PersonId& id, ExportFormat f) {
    std::ostringstream out;
    auto it = store.Export(id);
    Status s = WriteExport(*it, f, out, 1700000000000);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return out.str();
  }

  // The JSON document with store-specific fields removed (docs/export-format.md).
  static Json Comparable(const std::string& doc) {
    Json j = Json::parse(doc);
    j["person"].erase("person_id");
    j["person"].erase("anon_id");
    j["person"].erase("key_epoch");
    for (auto& e : j["events"]) e.erase("seq");
    for (auto& a : j["analytics"]) {
      a.erase("seq");
      a.erase("anon_id");
    }
    j.erase("notices");
    j.erase("items");
    // Records come in storage order, which depends on store-specific hashes.
    std::vector<Json> records(j["records"].begin(), j["records"].end());
    std::sort(records.begin(), records.end(), [](const Json& a, const Json& b) { return a.dump() < b.dump(); });
    j["records"] = records;
    return j;
  }
};

TEST_F(PortabilityTest, JsonRoundTripIntoAnotherStoreGivesTheSameDocument) {
  PersonId ann = MakeRichPerson(*store_);
  const std::string first = ExportString(*store_, ann, ExportFormat::kJson);
  test::TempDir other_dir;
  auto other = Store::Open(test::TestOptions(other_dir.Sub("s"), 'z'));
  ASSERT_TRUE(other.ok());
  std::istringstream in(first);
  // A move between one's own stores: the analytics rows as exported.
  auto imported = ImportPerson(**other, in, ExportFormat::kJson, ImportOptions{ImportedAnalytics::kAsExported});
  ASSERT_TRUE(imported.ok()) << imported.status().ToString();
  EXPECT_EQ(imported->events, 6u);
  EXPECT_EQ(imported->records, 2u);
  const std::string second = ExportString(**other, imported->person, ExportFormat::kJson);
  EXPECT_EQ(Comparable(first), Comparable(second));
  // Values came back typed and exact.
  auto profile = (*other)->GetProfile(imported->person);
  EXPECT_EQ(profile->at("big").as_int64(), std::numeric_limits<std::int64_t>::max());
  EXPECT_EQ(profile->at("blob").as_bytes(), std::string("\0\xff\x10", 3));
  EXPECT_EQ(profile->at("latin1").as_string(), std::string("caf\xe9"));
  EXPECT_TRUE(std::isinf(profile->at("inf").as_double()));
  EXPECT_EQ(profile->at("score").as_double(), 0.1);
}

// Outside audit 37b, F2: a JSON document followed by a NUL byte and
// anything at all was imported, the rest unread and unreported.
TEST_F(PortabilityTest, AJsonDocumentFollowedByANulByteAndMoreIsRefused) {
  PersonId ann = MakeRichPerson(*store_);
  const std::string doc = ExportString(*store_, ann, ExportFormat::kJson);
  test::TempDir other_dir;
  auto other = Store::Open(test::TestOptions(other_dir.Sub("s"), 'z'));
  ASSERT_TRUE(other.ok());
  std::istringstream in(doc + std::string("\0{\"garbage\xff", 12));
  auto imported = ImportPerson(**other, in, ExportFormat::kJson);
  EXPECT_TRUE(imported.status().IsInvalidArgument()) << imported.status().ToString();
  std::istringstream whole(doc + "\n");
  EXPECT_TRUE(ImportPerson(**other, whole, ExportFormat::kJson).ok());
}

TEST_F(PortabilityTest, NdjsonRoundTripGivesTheSameItems) {
  PersonId ann = MakeRichPerson(*store_);
  const std::string first = ExportString(*store_, ann, ExportFormat::kNdjson);
  std::istringstream lines(first);
  std::string line;
  std::getline(lines, line);
  EXPECT_EQ(Json::parse(line)["type"], "header");
  test::TempDir other_dir;
  auto other = Store::Open(test::TestOptions(other_dir.Sub("s")));
  ASSERT_TRUE(other.ok());
  std::istringstream in(first);
  auto imported = ImportPerson(**other, in, ExportFormat::kNdjson, ImportOptions{ImportedAnalytics::kAsExported});
  ASSERT_TRUE(imported.ok()) << imported.status().ToString();
  EXPECT_EQ(Comparable(ExportString(*store_, ann, ExportFormat::kJson)),
            Comparable(ExportString(**other, imported->person, ExportFormat::kJson)));
}

// Outside audit 36a, F3: by default the file chooses nothing of what the
// clear analytics rows hold — each imported event's row is named
// "imported" with no field; the events keep their names and properties.
TEST_F(PortabilityTest, ByDefaultImportedEventsHaveAnonymousAnalyticsRows) {
  PersonId ann = MakeRichPerson(*store_);
  const std::string first = ExportString(*store_, ann, ExportFormat::kNdjson);
  test::TempDir other_dir;
  auto other = Store::Open(test::TestOptions(other_dir.Sub("s")));
  ASSERT_TRUE(other.ok());
  std::istringstream in(first);
  auto imported = ImportPerson(**other, in, ExportFormat::kNdjson);
  ASSERT_TRUE(imported.ok()) << imported.status().ToString();
  std::size_t rows = 0;
  for (auto it = (*other)->ScanAnalytics(AnalyticsQuery{}); it->Valid(); it->Next()) {
    ++rows;
    EXPECT_EQ(it->value().name, "imported");
    EXPECT_TRUE(it->value().fields.empty());
  }
  EXPECT_EQ(rows, imported->events);
  const Json copy = Comparable(ExportString(**other, imported->person, ExportFormat::kJson));
  const Json source = Comparable(ExportString(*store_, ann, ExportFormat::kJson));
  EXPECT_EQ(copy["events"], source["events"]);
}

// Outside audit 36a, F9: a second profile line replaced the first, and
// lines after the end line were read.
TEST_F(PortabilityTest, ASecondProfileOrALineAfterTheEndIsRefused) {
  PersonId ann = MakeRichPerson(*store_);
  const std::string doc = ExportString(*store_, ann, ExportFormat::kNdjson);
  std::vector<std::string> lines;
  std::istringstream ls(doc);
  for (std::string l; std::getline(ls, l);) lines.push_back(l);
  std::string profile;
  for (const std::string& l : lines) {
    if (Json::parse(l)["type"] == "profile") profile = l;
  }
  ASSERT_FALSE(profile.empty());
  test::TempDir other_dir;
  auto other = Store::Open(test::TestOptions(other_dir.Sub("s")));
  ASSERT_TRUE(other.ok());
  std::string twice, after_end;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    twice += lines[i] + "\n";
    if (lines[i] == profile) twice += profile + "\n";
    if (i + 1 == lines.size()) after_end += profile + "\n";
    after_end += lines[i] + "\n";
  }
  after_end += profile + "\n";
  for (const std::string* bad : {&twice, &after_end}) {
    std::istringstream in(*bad);
    auto r = ImportPerson(**other, in, ExportFormat::kNdjson);
    EXPECT_TRUE(r.status().IsInvalidArgument()) << r.status().ToString();
  }
  EXPECT_EQ((*other)->Stats()->people, 0u);
}

TEST_F(PortabilityTest, DocumentHasVersionTimestampsAsMsAndIso) {
  PersonId ann = MakeRichPerson(*store_);
  Json j = Json::parse(ExportString(*store_, ann, ExportFormat::kJson));
  EXPECT_EQ(j["format"], "shredkv-export");
  EXPECT_EQ(j["version"], 1);
  EXPECT_EQ(j["exported_at_iso"], "2023-11-14T22:13:20.000Z");
  EXPECT_EQ(j["events"][0]["ts"], 1700000000000);
  EXPECT_EQ(j["events"][0]["ts_iso"], "2023-11-14T22:13:20.000Z");
  EXPECT_EQ(j["profile"]["attributes"]["born"]["iso"], "1900-01-01T00:00:00.000Z");
  EXPECT_EQ(j["profile"]["attributes"]["blob"]["bytes"], "AP8Q");
  bool found = false;
  for (const auto& r : j["records"]) {
    if (r["collection"] == "orders") {
      EXPECT_EQ(r["value_text"], "two books");
      EXPECT_EQ(r["key"], "NDI=");
      found = true;
    }
  }
  EXPECT_TRUE(found);
  EXPECT_EQ(j["identifiers"].size(), 3u);
}

TEST_F(PortabilityTest, MalformedNdjsonNamesTheLineAndWritesNothing) {
  PersonId ann = MakeRichPerson(*store_);
  std::string doc = ExportString(*store_, ann, ExportFormat::kNdjson);
  test::TempDir other_dir;
  auto other = Store::Open(test::TestOptions(other_dir.Sub("s")));
  ASSERT_TRUE(other.ok());
  // Break line 6 (an event) after valid person/identifier lines.
  std::vector<std::string> lines;
  std::istringstream ls(doc);
  for (std::string l; std::getline(ls, l);) lines.push_back(l);
  lines[5] = R"({"type":"event","name":"x","ts":"not a number"})";
  std::string broken;
  for (const auto& l : lines) broken += l + "\n";
  std::istringstream in(broken);
  auto r = ImportPerson(**other, in, ExportFormat::kNdjson);
  EXPECT_TRUE(r.status().IsInvalidArgument());
  EXPECT_NE(r.status().message().find("line 6"), std::string::npos) << r.status().message();
  EXPECT_EQ((*other)->Stats()->people, 0u);
  EXPECT_TRUE((*other)->Resolve({"email", "ann@x.org"}).status().IsNotFound());

  for (const std::string& bad : {std::string("not json\n"), std::string(R"({"type":"person","created":1})" "\n"),
                                 std::string(R"({"type":"header","format":"shredkv-export","version":99})" "\n"),
                                 std::string("")}) {
    std::istringstream bin(bad);
    EXPECT_TRUE(ImportPerson(**other, bin, ExportFormat::kNdjson).status().IsInvalidArgument()) << bad;
  }
  EXPECT_EQ((*other)->Stats()->people, 0u);
}

TEST_F(PortabilityTest, MalformedJsonNamesThePathAndWritesNothing) {
  PersonId ann = MakeRichPerson(*store_);
  Json j = Json::parse(ExportString(*store_, ann, ExportFormat::kJson));
  j["events"][2]["properties"]["amount"] = Json{{"int64", "seven"}};
  test::TempDir other_dir;
  auto other = Store::Open(test::TestOptions(other_dir.Sub("s")));
  ASSERT_TRUE(other.ok());
  std::istringstream in(j.dump());
  auto r = ImportPerson(**other, in, ExportFormat::kJson);
  EXPECT_TRUE(r.status().IsInvalidArgument());
  EXPECT_NE(r.status().message().find("/events/2/properties/amount"), std::string::npos) << r.status().message();
  EXPECT_EQ((*other)->Stats()->people, 0u);
  std::istringstream truncated(j.dump().substr(0, 100));
  EXPECT_TRUE(ImportPerson(**other, truncated, ExportFormat::kJson).status().IsInvalidArgument());
}

// An NDJSON import whose second line never ends: a header line, then 'x'
// up to `limit` bytes, counting what the reader consumed.
class EndlessLineBuf : public std::streambuf {
 public:
  explicit EndlessLineBuf(std::string header, std::uint64_t limit) : header_(std::move(header)), limit_(limit) {}
  std::uint64_t consumed() const { return consumed_; }

 protected:
  int_type underflow() override {
    if (consumed_ >= limit_) return traits_type::eof();
    std::size_t n = 0;
    while (n < sizeof buf_ && header_pos_ < header_.size()) buf_[n++] = header_[header_pos_++];
    while (n < sizeof buf_) buf_[n++] = 'x';
    consumed_ += n;
    setg(buf_, buf_, buf_ + n);
    return traits_type::to_int_type(buf_[0]);
  }

 private:
  std::string header_;
  std::size_t header_pos_ = 0;
  std::uint64_t limit_, consumed_ = 0;
  char buf_[1 << 16];
};

// Issue 16 (2): an NDJSON import read each line whole (std::getline), so
// one endless line was held in memory however long it was. A line over
// 32 MiB ends the import (InvalidArgument, nothing written) without more
// of it being read.
TEST_F(PortabilityTest, AnNdjsonImportLineOver32MiBIsRefusedWithoutReadingIt) {
  PersonId ann = MakeRichPerson(*store_);
  const std::string doc = ExportString(*store_, ann, ExportFormat::kNdjson);
  EndlessLineBuf endless(doc.substr(0, doc.find('\n') + 1), 256u << 20);
  std::istream in(&endless);
  test::TempDir other_dir;
  auto other = Store::Open(test::TestOptions(other_dir.Sub("s")));
  ASSERT_TRUE(other.ok());
  auto r = ImportPerson(**other, in, ExportFormat::kNdjson);
  EXPECT_TRUE(r.status().IsInvalidArgument()) << r.status().ToString();
  EXPECT_NE(r.status().message().find("line 2: longer than 32 MiB"), std::string::npos) << r.status().ToString();
  EXPECT_LE(endless.consumed(), (32u << 20) + (1u << 17));  // the bound and one buffer
  EXPECT_EQ((*other)->Stats()->people, 0u);
}

// Issue 16 (1, 3): a document nested 150,000 levels deep crashed
// ImportPerson; duplicate keys were accepted, the last one winning.
TEST_F(PortabilityTest, DeeplyNestedOrDuplicateKeyDocumentsAreInvalidArgument) {
  PersonId ann = MakeRichPerson(*store_);
  const std::string doc = ExportString(*store_, ann, ExportFormat::kJson);
  test::TempDir other_dir;
  auto other = Store::Open(test::TestOptions(other_dir.Sub("s")));
  ASSERT_TRUE(other.ok());
  std::string deep = doc.substr(0, doc.rfind('}'));
  deep += ",\"extra\":";
  for (int i = 0; i < 150000; ++i) deep += "[";
  for (int i = 0; i < 150000; ++i) deep += "]";
  deep += "}";
  std::istringstream deep_in(deep);
  auto r = ImportPerson(**other, deep_in, ExportFormat::kJson);
  EXPECT_TRUE(r.status().IsInvalidArgument()) << r.status().ToString();
  EXPECT_NE(r.status().message().find("nested deeper"), std::string::npos) << r.status().ToString();
  std::string dup = doc.substr(0, doc.rfind('}')) + ",\"person\":{}}";
  std::istringstream dup_in(dup);
  r = ImportPerson(**other, dup_in, ExportFormat::kJson);
  EXPECT_TRUE(r.status().IsInvalidArgument()) << r.status().ToString();
  EXPECT_NE(r.status().message().find("duplicate key"), std::string::npos) << r.status().ToString();
  EXPECT_EQ((*other)->Stats()->people, 0u);
  std::istringstream good(doc);
  EXPECT_TRUE(ImportPerson(**other, good, ExportFormat::kJson).ok());
}

TEST_F(PortabilityTest, ImportIntoTheSameStoreConflictsOnIdentifiers) {
  PersonId ann = MakeRichPerson(*store_);
  std::istringstream in(ExportString(*store_, ann, ExportFormat::kJson));
  auto r = ImportPerson(*store_, in, ExportFormat::kJson);
  EXPECT_TRUE(r.status().IsAlreadyExists()) << r.status().ToString();
  EXPECT_EQ(store_->Stats()->people, 1u);
}

}  // namespace
}  // namespace shredkv

namespace shredkv {
namespace {

TEST_F(PortabilityTest, TruncatedNdjsonIsRefusedAndOutOfRangeTimesDoNotWrap) {
  PersonId ann = MakeRichPerson(*store_);
  const std::string doc = ExportString(*store_, ann, ExportFormat::kNdjson);
  test::TempDir other_dir;
  auto other = Store::Open(test::TestOptions(other_dir.Sub("s")));
  ASSERT_TRUE(other.ok());
  // Cut at a line break before the end line: looks well formed, is not complete.
  const std::string cut = doc.substr(0, doc.rfind('\n', doc.size() - 2) + 1);
  std::istringstream in(cut);
  auto r = ImportPerson(**other, in, ExportFormat::kNdjson);
  EXPECT_TRUE(r.status().IsInvalidArgument()) << r.status().ToString();
  EXPECT_NE(r.status().message().find("truncated"), std::string::npos) << r.status().message();
  EXPECT_EQ((*other)->Stats()->people, 0u);

  Json j = Json::parse(ExportString(*store_, ann, ExportFormat::kJson));
  j["events"][0]["ts"] = 18446744073709551615ull;
  std::istringstream big(j.dump());
  EXPECT_TRUE(ImportPerson(**other, big, ExportFormat::kJson).status().IsInvalidArgument());
  EXPECT_EQ((*other)->Stats()->people, 0u);
}

// Issue 23 (the fuzz_ndjson campaign): an export listing an identifier or
// a record twice imported with counts of lines (4 identifiers, 2 records)
// while the person held 3 and 1, so the counts of its own re-export's
// import differed. The counts are what the person holds.
TEST_F(PortabilityTest, ImportCountsWhatThePersonHoldsNotTheLinesListed) {
  PersonId ann = MakeRichPerson(*store_);
  std::string doc = ExportString(*store_, ann, ExportFormat::kNdjson);
  SKV_ASSERT_OK(store_->Erase(ann).status());
  std::vector<std::string> lines;
  std::istringstream ls(doc);
  for (std::string l; std::getline(ls, l);) lines.push_back(l);
  std::vector<std::string> doubled;
  std::size_t identifiers = 0, records = 0;
  for (const std::string& l : lines) {
    doubled.push_back(l);
    if (l.find(R"("type":"identifier")") != std::string::npos) {
      ++identifiers;
      if (identifiers == 1) doubled.push_back(l);  // the same identifier twice
    }
    if (l.find(R"("type":"record")") != std::string::npos) {
      ++records;
      if (records == 1) doubled.push_back(l);  // the same record twice
    }
  }
  ASSERT_GT(identifiers, 0u);
  ASSERT_GT(records, 0u);
  std::string input;
  for (const std::string& l : doubled) input += l + "\n";
  // The end line counts the items: one more of each.
  const std::size_t end = input.rfind(R"({"type":"end")");
  ASSERT_NE(end, std::string::npos);
  input = input.substr(0, end) + R"({"type":"end","items":)" + std::to_string(doubled.size() - 2) + "}\n";
  std::istringstream in(input);
  auto first = ImportPerson(*store_, in, ExportFormat::kNdjson);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(first->identifiers, identifiers);
  EXPECT_EQ(first->records, records);
  std::string again_doc = ExportString(*store_, first->person, ExportFormat::kNdjson);
  SKV_ASSERT_OK(store_->Erase(first->person).status());
  std::istringstream again_in(again_doc);
  auto again = ImportPerson(*store_, again_in, ExportFormat::kNdjson);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->identifiers, first->identifiers);
  EXPECT_EQ(again->records, first->records);
  EXPECT_EQ(again->events, first->events);
}

}  // namespace
}  // namespace shredkv
