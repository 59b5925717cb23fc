// Opening a format-2 store migrates it to format 4 (docs/format.md §11): the
// fixture tests/data/v2_store/store was written by the format-2 engine (its
// generator and contents: tests/data/v2_store/make_v2_store.cc). A store of a
// newer format is UnsupportedVersion, never Corruption.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <map>

#include "codec/row_codec.h"
#include "codec/sealed.h"
#include "engine/store_impl.h"
#include "keys/key_store.h"
#include "storage/environment.h"
#include "test_util.h"
#include "util/coding.h"

#ifndef SHREDKV_TEST_DATA_DIR
#error "SHREDKV_TEST_DATA_DIR must name tests/data"
#endif

namespace shredkv {
namespace {

constexpr std::int64_t kHour = 3600 * 1000;

class MigrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::filesystem::copy(std::string(SHREDKV_TEST_DATA_DIR) + "/v2_store/store", dir_.Sub("store"),
                          std::filesystem::copy_options::recursive);
    options_ = test::TestOptions(dir_.Sub("store"));
    options_.create_if_missing = false;
  }

  std::unique_ptr<Store> Open() {
    auto s = Store::Open(options_);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? std::move(s).value() : nullptr;
  }

  struct Exported {
    std::map<std::uint64_t, StoredEvent> events;  // by seq
    std::vector<AnalyticsRow> analytics;
  };
  static Exported ExportOf(Store& store, const std::string& email) {
    Exported out;
    auto id = store.Resolve({"email", email});
    EXPECT_TRUE(id.ok()) << email << ": " << id.status().ToString();
    if (!id.ok()) return out;
    auto it = store.Export(*id);
    for (; it->Valid(); it->Next()) {
      const ExportItem& item = it->value();
      if (item.kind == ExportItem::Kind::kEvent) out.events[item.event.seq] = item.event;
      if (item.kind == ExportItem::Kind::kAnalytics) out.analytics.push_back(item.analytics);
    }
    EXPECT_TRUE(it->status().ok()) << it->status().ToString();
    return out;
  }

  // The migrated store holds what the fixture held, in format 3's layout.
  void ExpectMigrated(Store& store) {
    auto& impl = dynamic_cast<engine::StoreImpl&>(store);
    // A migration this build starts writes the grouped layout (and records it).
    EXPECT_EQ(impl.context().analytics_layout, engine::AnalyticsLayout::kGrouped);
    const Exported ann = ExportOf(store, "ann@example.org");
    EXPECT_EQ(ann.events.size(), 6u);
    ASSERT_EQ(ann.analytics.size(), 6u);  // found through the person's keys (2 under a category key)
    for (const AnalyticsRow& row : ann.analytics) {
      ASSERT_EQ(ann.events.count(row.seq), 1u);
      const StoredEvent& event = ann.events.at(row.seq);
      EXPECT_EQ(row.name, event.name);
      EXPECT_EQ(row.ts_ms, event.ts_ms - event.ts_ms % kHour);
      EXPECT_EQ(row.fields.at("amount"), event.properties.at("amount"));
    }
    EXPECT_EQ(ExportOf(store, "fay@example.org").analytics.size(), 4u);
    const Exported eve = ExportOf(store, "eve@example.org");
    EXPECT_EQ(eve.events.size(), 2u);  // her location events were erased
    EXPECT_EQ(eve.analytics.size(), 2u);
    // dan's erasure (delete mode) was cut short after its keys commit: the
    // open finished its data side before migrating.
    EXPECT_TRUE(store.Resolve({"email", "dan@example.org"}).status().IsErased());
    auto dan = store.GetErasure("er-dan");
    ASSERT_TRUE(dan.ok()) << dan.status().ToString();
    EXPECT_EQ(dan->people, 1u);
    auto stats = store.Stats();
    ASSERT_TRUE(stats.ok());
    // 20 rows in the fixture: ann 6, fay 4, bob 2 (kept), cat 3 (unlinked),
    // eve 2, dan 3 (deleted now).
    EXPECT_EQ(stats->analytics_rows, 17u);
    // Every analytics row has a format-3 key that shares nothing with an event key.
    Status s = impl.data().View([&](storage::ReadTxn& txn) -> Status {
      std::set<std::string> tails;
      auto ev = txn.OpenCursor(impl.tables().events);
      if (!ev.ok()) return ev.status();
      for (Status m = (*ev)->SeekToFirst(); m.ok() && (*ev)->Valid(); m = (*ev)->Next()) {
        tails.emplace((*ev)->key().substr(PersonId::kSize));
      }
      auto an = txn.OpenCursor(impl.tables().analytics);
      if (!an.ok()) return an.status();
      std::size_t n = 0;
      for (Status m = (*an)->SeekToFirst(); m.ok() && (*an)->Valid(); m = (*an)->Next(), ++n) {
        EXPECT_EQ((*an)->key().size(), codec::kAnalyticsKeySize);
        EXPECT_EQ(tails.count(std::string((*an)->key().substr(0, 16))), 0u);
      }
      EXPECT_EQ(n, 17u);
      std::string_view row, payload;
      EXPECT_TRUE(txn.Get(impl.tables().meta, "migration_v3", &row).IsNotFound());
      EXPECT_TRUE(txn.Get(impl.tables().meta, "format", &row).ok());
      EXPECT_TRUE(codec::OpenPlain(codec::TableId::kDataMeta, "format", row, &payload).ok());
      EXPECT_EQ(util::DecodeFixed32BE(payload.data()), engine::kDataFormatVersion);
      return Status::OK();
    });
    EXPECT_TRUE(s.ok()) << s.ToString();
    EXPECT_TRUE(test::VerifiesClean(store));
  }

  test::TempDir dir_;
  Options options_;
};

TEST_F(MigrationTest, OpeningAFormat2StoreMigratesItToFormat4) {
  std::vector<std::uint64_t> progress;
  options_.progress = [&](std::string_view op, std::uint64_t done, std::uint64_t) {
    if (op == "migrate") progress.push_back(done);
  };
  auto store = Open();
  ASSERT_NE(store, nullptr);
  ASSERT_GE(progress.size(), 2u);
  EXPECT_EQ(progress.front(), 0u);
  ExpectMigrated(*store);
  // New writes and erasures work on the migrated store, and it reopens as is.
  auto ann = store->Resolve({"email", "ann@example.org"});
  ASSERT_TRUE(ann.ok());
  SKV_ASSERT_OK(store->AppendEvent(*ann, Event{"visit", 1'760'000'000'000, {{"amount", 1}}, {"amount"}}));
  EXPECT_EQ(ExportOf(*store, "ann@example.org").analytics.size(), 7u);
  auto fay = store->Resolve({"email", "fay@example.org"});
  ASSERT_TRUE(fay.ok());
  EraseOptions del;
  del.analytics = AnalyticsOnErase::kDelete;
  ASSERT_TRUE(store->Erase(*fay, del).ok());
  EXPECT_EQ(store->Stats()->analytics_rows, 17u + 1u - 4u);
  store.reset();
  progress.clear();
  store = Open();
  ASSERT_NE(store, nullptr);
  EXPECT_TRUE(progress.empty());  // nothing left to migrate
  EXPECT_EQ(ExportOf(*store, "ann@example.org").analytics.size(), 7u);
}

// Stop 26: the migration reads every row, so a damaged page met midway
// stopped it half done or faulted inside LMDB (a node offset past the
// page). Every page of both files is walked first: Corruption naming the
// page, and the data file is not written.
TEST_F(MigrationTest, ADamagedPageIsCorruptionBeforeAnythingIsMigrated) {
  const std::string file = dir_.Sub("store") + "/data/data.mdb";
  std::string bytes = test::ReadFile(file);
  const std::size_t root = test::LmdbTableRootOffset(bytes, "events");
  ASSERT_NE(root, 0u);
  ASSERT_EQ(bytes[root + 10], '\x02') << "the fixture's events root is not a leaf";
  std::uint16_t lower = 0;
  std::memcpy(&lower, bytes.data() + root + 12, 2);
  for (std::size_t i = 16; i < lower; i += 2) {  // every node offset 4090: past the page
    bytes[root + i] = '\xfa';
    bytes[root + i + 1] = '\x0f';
  }
  test::WriteFile(file, bytes);
  auto store = Store::Open(options_);
  ASSERT_TRUE(store.status().IsCorruption()) << store.status().ToString();
  const std::string page = "table 'events': page " + std::to_string(root / 4096);
  EXPECT_NE(store.status().message().find(page), std::string::npos) << store.status().ToString();
  EXPECT_NE(store.status().message().find("nothing was migrated"), std::string::npos) << store.status().ToString();
  // Still format 2 (a read-only open says it needs migrating), the damage still there.
  options_.read_only = true;
  auto again = Store::Open(options_);
  EXPECT_TRUE(again.status().IsReadOnly()) << again.status().ToString();
  EXPECT_NE(again.status().message().find("format 2"), std::string::npos) << again.status().ToString();
}

// A read-only open cannot migrate (it writes): ReadOnly, nothing changed,
// and a writable open migrates afterwards.
TEST_F(MigrationTest, AReadOnlyOpenOfAFormat2StoreIsReadOnlyAndWritesNothing) {
  std::map<std::string, std::string> before;
  for (const std::string& f : test::FilesUnder(dir_.Sub("store"))) before[f] = test::ReadFile(f);
  Options o = options_;
  o.read_only = true;
  auto store = Store::Open(o);
  ASSERT_FALSE(store.ok());
  EXPECT_TRUE(store.status().IsReadOnly()) << store.status().ToString();
  EXPECT_NE(store.status().message().find("format 2"), std::string::npos) << store.status().ToString();
  std::map<std::string, std::string> after;
  for (const std::string& f : test::FilesUnder(dir_.Sub("store"))) after[f] = test::ReadFile(f);
  EXPECT_TRUE(after == before);
  EXPECT_NE(Open(), nullptr);
}

// Records written before format 4 carry no write time in their payload;
// their time index entries (which formats 2 and 3 wrote for every record)
// keep serving a collection rule, and a back-fill leaves them as they are.
TEST_F(MigrationTest, RecordsWrittenBeforeFormat4ExpireByTheirIndexEntries) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  auto ann = store->Resolve({"email", "ann@example.org"});
  ASSERT_TRUE(ann.ok());
  auto* impl = dynamic_cast<engine::StoreImpl*>(store.get());
  auto expiry_entries = [&] {
    std::uint64_t n = 0;
    EXPECT_TRUE(impl->data().View([&](storage::ReadTxn& txn) -> Status {
      auto c = txn.Count(impl->tables().expiry);
      if (!c.ok()) return c.status();
      n = *c;
      return Status::OK();
    }).ok());
    return n;
  };
  const std::uint64_t entries = expiry_entries();
  auto rules = store->GetRetention();
  ASSERT_TRUE(rules.ok());
  rules->collections["prefs"] = 3650ll * 24 * kHour;  // the fixture wrote them at 2025-10-09
  SKV_ASSERT_OK(store->SetRetention(*rules));
  EXPECT_EQ(impl->backfill_unreadable_rows(), 0u);
  EXPECT_EQ(expiry_entries(), entries);  // the two records already had theirs
  EXPECT_EQ(*store->Get(*ann, "prefs", "theme"), "dark");
  rules->collections["prefs"] = 24 * kHour;  // the real clock is past 2025-10-10
  SKV_ASSERT_OK(store->SetRetention(*rules));
  EXPECT_TRUE(store->Get(*ann, "prefs", "theme").status().IsNotFound());
  auto swept = store->Sweep(100);
  ASSERT_TRUE(swept.ok()) << swept.status().ToString();
  EXPECT_EQ(swept->records_deleted, 2u);
  // A record written now carries its time and gets its entry as written.
  SKV_ASSERT_OK(store->Put(*ann, "prefs", "theme", "light"));
  EXPECT_EQ(*store->Get(*ann, "prefs", "theme"), "light");
  EXPECT_TRUE(test::VerifiesClean(*store));
}

TEST_F(MigrationTest, AMigrationKilledMidwayIsFinishedByTheNextOpen) {
  for (int hits = 1; hits <= 2; ++hits) {
    SCOPED_TRACE("killed after batch " + std::to_string(hits));
    std::filesystem::remove_all(dir_.Sub("store"));
    SetUp();
    EXPECT_TRUE(test::RunChildKilledAt("migrate.after_batch", hits, [&] { (void)Store::Open(options_); }));
    auto store = Open();
    ASSERT_NE(store, nullptr);
    ExpectMigrated(*store);
  }
}

// Rewrites the `format` meta row of one environment of a closed store.
void SetFormat(const std::string& env_dir, codec::TableId table_id, std::uint32_t version) {
  storage::EnvOptions eo;
  eo.path = env_dir;
  eo.tables = {"meta"};
  auto env = storage::Environment::Open(eo);
  ASSERT_TRUE(env.ok()) << env.status().ToString();
  std::string v, row;
  util::PutFixed32BE(&v, version);
  codec::SealPlain(table_id, "format", v, &row);
  SKV_ASSERT_OK((*env)->Update([&](storage::WriteTxn& txn) { return txn.Put((*env)->table("meta"), "format", row); }));
}

// Format 3 differs from 4 only in what new writes do: a format-3 store is
// read as it is (read-only too) and marked 4 by the first writable open.
TEST(FormatVersionTest, AFormat3StoreIsReadAsItIsAndMarkedFormat4ByAWritableOpen) {
  test::TempDir dir;
  Options options = test::TestOptions(dir.path());
  {
    auto store = Store::Open(options);
    ASSERT_TRUE(store.ok());
    auto ann = (*store)->CreatePerson({{"email", "ann@x.org"}});
    ASSERT_TRUE(ann.ok());
    SKV_ASSERT_OK((*store)->Put(*ann, "prefs", "theme", "dark"));
  }
  SetFormat(dir.Sub("data"), codec::TableId::kDataMeta, 3);
  Options ro = options;
  ro.read_only = true;
  ro.create_if_missing = false;
  {
    auto store = Store::Open(ro);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    EXPECT_EQ((*store)->Stats()->format_version, 3u);
    auto ann = (*store)->Resolve({"email", "ann@x.org"});
    ASSERT_TRUE(ann.ok());
    EXPECT_EQ(*(*store)->Get(*ann, "prefs", "theme"), "dark");
  }
  {
    auto store = Store::Open(options);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    EXPECT_EQ((*store)->Stats()->format_version, engine::kDataFormatVersion);
  }
  auto store = Store::Open(ro);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  EXPECT_EQ((*store)->Stats()->format_version, 4u);
}

TEST(FormatVersionTest, AStoreOfANewerFormatIsUnsupportedVersionNotCorruption) {
  for (const char* env : {"data", "keys"}) {
    SCOPED_TRACE(env);
    test::TempDir dir;
    Options options = test::TestOptions(dir.path());
    {
      auto store = Store::Open(options);
      ASSERT_TRUE(store.ok());
    }
    const bool data = std::string(env) == "data";
    const std::uint32_t newer = (data ? engine::kDataFormatVersion : keys::kKeysFormatVersion) + 1;
    SetFormat(dir.Sub(env), data ? codec::TableId::kDataMeta : codec::TableId::kKeysMeta, newer);
    auto store = Store::Open(options);
    ASSERT_FALSE(store.ok());
    EXPECT_TRUE(store.status().IsUnsupportedVersion()) << store.status().ToString();
    EXPECT_NE(store.status().message().find("newer"), std::string::npos) << store.status().ToString();
    SetFormat(dir.Sub(env), data ? codec::TableId::kDataMeta : codec::TableId::kKeysMeta, 1);
    store = Store::Open(options);
    EXPECT_TRUE(store.status().IsUnsupportedVersion()) << store.status().ToString();
  }
}

}  // namespace
}  // namespace shredkv
