// Options::read_only (issue 16, item 8 and the engine half of item 6): a
// store opened to read writes nothing in its directory, serves every read,
// refuses every write with ReadOnly, and still opens when a writable open
// cannot (an interrupted key rotation whose rebuild meets a damaged page).
#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <sstream>

#include "shredkv/portability.h"
#include "test_util.h"

namespace shredkv {
namespace {

// Every file under `dir` with its size and a hash of its bytes.
std::map<std::string, std::string> Snapshot(const std::string& dir) {
  std::map<std::string, std::string> out;
  for (const std::string& f : test::FilesUnder(dir)) {
    const std::string bytes = test::ReadFile(f);
    out[f] = std::to_string(bytes.size()) + " bytes, hash " + std::to_string(std::hash<std::string>{}(bytes));
  }
  return out;
}

class ReadOnlyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    options_ = test::TestOptions(dir_.Sub("s"));
    auto store = Store::Open(options_);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    WriteBatch b;
    for (int i = 0; i < 20; ++i) {
      people_.push_back(b.CreatePerson({{"email", "p" + std::to_string(i) + "@x.org"}}, {{"i", i}}));
      b.AppendEvent(people_.back(), Event{"page_view", 1700000000000 + i, {{"path", "/a"}}, {"path"}});
    }
    ASSERT_TRUE((*store)->Write(b).ok());
    SKV_ASSERT_OK((*store)->Put(people_[0], "orders", "o1", "twelve"));
    SKV_ASSERT_OK((*store)->Erase(people_[19]).status());
    SKV_ASSERT_OK((*store)->Close());
    options_.create_if_missing = false;
  }

  Options ReadOnly() const {
    Options o = options_;
    o.read_only = true;
    return o;
  }

  test::TempDir dir_;
  Options options_;
  std::vector<PersonId> people_;
};

TEST_F(ReadOnlyTest, ReadsEverythingAndWritesNoByteOfTheDirectory) {
  const auto before = Snapshot(dir_.Sub("s"));
  {
    auto store = Store::Open(ReadOnly());
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    Store& s = **store;
    EXPECT_EQ(*s.Resolve({"email", "p3@x.org"}), people_[3]);
    EXPECT_EQ(s.GetProfile(people_[3])->at("i").as_int64(), 3);
    EXPECT_EQ(*s.Get(people_[0], "orders", "o1"), "twelve");
    EXPECT_TRUE(s.GetProfile(people_[19]).status().IsErased());
    std::ostringstream exported;
    SKV_ASSERT_OK(ExportPerson(s, people_[3], ExportFormat::kJson, exported));
    EXPECT_NE(exported.str().find("page_view"), std::string::npos);
    std::size_t analytics = 0;
    for (auto it = s.ScanAnalytics({}); it->Valid(); it->Next()) ++analytics;
    EXPECT_EQ(analytics, 20u);  // kept on erasure by default
    auto stats = s.Stats();
    ASSERT_TRUE(stats.ok());
    EXPECT_EQ(stats->erased, 1u);
    auto report = s.Verify();
    ASSERT_TRUE(report.ok()) << report.status().ToString();
    EXPECT_TRUE(report->ok()) << report->problems.front();
    EXPECT_GT(report->pages, 4u);
    auto lease = s.AcquireLease(people_[4], "support");
    ASSERT_TRUE(lease.ok()) << lease.status().ToString();
    EXPECT_EQ((*lease)->GetProfile()->at("i").as_int64(), 4);
  }
  EXPECT_EQ(Snapshot(dir_.Sub("s")), before);  // not even a lock file
}

TEST_F(ReadOnlyTest, EveryWriteIsReadOnlyAndChangesNothing) {
  const auto before = Snapshot(dir_.Sub("s"));
  {
    auto store = Store::Open(ReadOnly());
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    Store& s = **store;
    auto expect_read_only = [&](const Status& st, const char* what) {
      EXPECT_TRUE(st.IsReadOnly()) << what << ": " << st.ToString();
      EXPECT_EQ(Snapshot(dir_.Sub("s")), before) << what;
    };
    expect_read_only(s.CreatePerson({{"email", "new@x.org"}}).status(), "CreatePerson");
    expect_read_only(s.AppendEvent(people_[1], Event{"e", 1, {}, {}}), "AppendEvent");
    expect_read_only(s.PatchProfile(people_[1], ProfilePatch{{{"i", 100}}, {}}), "PatchProfile");
    expect_read_only(s.Put(people_[1], "orders", "o2", "one"), "Put");
    expect_read_only(s.Delete(people_[0], "orders", "o1"), "Delete");
    expect_read_only(s.Erase(people_[2]).status(), "Erase");
    expect_read_only(s.Restrict(people_[2], RestrictionSpec{true, {}, {}, "test"}), "Restrict");
    expect_read_only(s.Purge(1000).status(), "Purge");
    expect_read_only(s.RotateEpoch().status(), "RotateEpoch");
    expect_read_only(s.CompactData().status(), "CompactData");
    expect_read_only(s.Sweep(1000).status(), "Sweep");
    EXPECT_EQ(s.GetProfile(people_[1])->at("i").as_int64(), 1);
    EXPECT_EQ(s.GetProfile(people_[2])->at("i").as_int64(), 2);
  }
  EXPECT_EQ(Snapshot(dir_.Sub("s")), before);
  auto store = Store::Open(options_);  // and a writable open after it works
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  EXPECT_TRUE((*store)->Resolve({"email", "new@x.org"}).status().IsNotFound());
}

TEST_F(ReadOnlyTest, ReadOnlyCannotCreateAndAWriterExcludesAReader) {
  Options create = ReadOnly();
  create.directory = dir_.Sub("absent");
  create.create_if_missing = true;
  EXPECT_TRUE(Store::Open(create).status().IsInvalidArgument());
  create.create_if_missing = false;
  EXPECT_TRUE(Store::Open(create).status().IsNotFound());

  auto writer = Store::Open(options_);
  ASSERT_TRUE(writer.ok());
  EXPECT_FALSE(Store::Open(ReadOnly()).ok());  // in this process: FailedPrecondition
  SKV_ASSERT_OK((*writer)->Close());
  auto reader = Store::Open(ReadOnly());
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
}

TEST_F(ReadOnlyTest, RetentionRulesCanBeReadButNotChanged) {
  Options o = ReadOnly();
  o.retention = RetentionRules{};
  o.retention->events["page_view"] = 30ll * 24 * 3600 * 1000;
  auto store = Store::Open(o);
  EXPECT_TRUE(store.status().IsInvalidArgument()) << store.status().ToString();
  o.retention = RetentionRules{};  // the stored rules: none
  store = Store::Open(o);
  EXPECT_TRUE(store.ok()) << store.status().ToString();
}

// Outside audit 31, F2: a rotation cut short between destroying the old
// epoch keys and rebuilding the keys file left the erasure's receipt
// logical (the destroyed keys' bytes are still in the file), while the
// read-only stats (doctor, report) counted nothing as awaiting: the count
// was reset with the epochs. They now say the rebuild is pending and count
// the erasures waiting for it, until a writable open finishes it.
TEST_F(ReadOnlyTest, ErasuresWaitingForAnInterruptedRotationsRebuildAreCounted) {
  ASSERT_TRUE(test::RunChildKilledAt("rotation.before_rebuild_swap", 1, [&] {
    auto store = Store::Open(options_);
    if (!store.ok()) _exit(4);
    (void)(*store)->RotateEpoch();
  }));
  {
    auto store = Store::Open(ReadOnly());
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    auto st = (*store)->Stats();
    SKV_ASSERT_OK(st.status());
    EXPECT_TRUE(st->keys_rebuild_pending);
    EXPECT_EQ(st->erasures_since_rotation, 0u);
    EXPECT_EQ(st->erasures_awaiting_rebuild, 1u);  // people_[19]
  }
  auto store = Store::Open(options_);  // finishes the rebuild
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  auto st = (*store)->Stats();
  SKV_ASSERT_OK(st.status());
  EXPECT_FALSE(st->keys_rebuild_pending);
  EXPECT_EQ(st->erasures_awaiting_rebuild, 0u);
  EXPECT_EQ(st->erasures_since_rotation, 0u);
}

// Review of stop 31, M3: with a rebuild pending every receipt said logical,
// also those a finished rotation had made cryptographic, while the count
// above named only the last rotation's. Receipts now wait only for the
// epochs the pending rebuild removes (rebuild_epoch_floor), and a root-key
// rotation's rebuild, which removes none, makes none wait.
TEST_F(ReadOnlyTest, APendingRebuildHoldsBackOnlyTheErasuresItsRotationCovers) {
  std::string before_rotation, after_rotation;
  {
    auto store = Store::Open(options_);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    auto r = (*store)->Erase(people_[17]);
    SKV_ASSERT_OK(r.status());
    before_rotation = r->request_id;
    SKV_ASSERT_OK((*store)->RotateEpoch().status());
    r = (*store)->Erase(people_[18]);
    SKV_ASSERT_OK(r.status());
    after_rotation = r->request_id;
  }
  auto cryptographic = [&](const Options& o, const std::string& id) {
    auto store = Store::Open(o);
    EXPECT_TRUE(store.ok()) << store.status().ToString();
    if (!store.ok()) return false;
    auto receipt = (*store)->GetErasure(id);
    EXPECT_TRUE(receipt.ok()) << receipt.status().ToString();
    return receipt.ok() && receipt->cryptographic;
  };
  // A root-key rotation cut short before its rebuild: nothing waits for it.
  Options new_root = options_;
  new_root.key_provider = NewRawKeyProvider(std::string(32, 'n'));
  ASSERT_TRUE(test::RunChildKilledAt("root_rotation.before_rebuild", 1, [&] {
    auto store = Store::Open(options_);
    if (!store.ok()) _exit(4);
    (void)(*store)->RotateRootKey(new_root.key_provider);
  }));
  Options read_new_root = new_root;
  read_new_root.read_only = true;
  EXPECT_TRUE(cryptographic(read_new_root, before_rotation));
  EXPECT_FALSE(cryptographic(read_new_root, after_rotation));
  {
    auto store = Store::Open(new_root);  // finishes that rebuild
    ASSERT_TRUE(store.ok()) << store.status().ToString();
  }
  // An epoch rotation cut short before its rebuild: only the erasure made
  // since the last rotation waits.
  ASSERT_TRUE(test::RunChildKilledAt("rotation.before_rebuild_swap", 1, [&] {
    auto store = Store::Open(new_root);
    if (!store.ok()) _exit(4);
    (void)(*store)->RotateEpoch();
  }));
  EXPECT_TRUE(cryptographic(read_new_root, before_rotation));
  EXPECT_FALSE(cryptographic(read_new_root, after_rotation));
  auto store = Store::Open(read_new_root);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  auto st = (*store)->Stats();
  SKV_ASSERT_OK(st.status());
  EXPECT_TRUE(st->keys_rebuild_pending);
  EXPECT_EQ(st->erasures_awaiting_rebuild, 1u);
  EXPECT_EQ(st->erasures_since_rotation, 0u);
  store->reset();
  EXPECT_TRUE(cryptographic(new_root, after_rotation));  // a writable open finishes the rebuild
}

// Issue 16 (6): a key rotation cut short before its rebuild, then a damaged
// page in `keys`: the rebuild a writable open must finish refuses the file,
// so the store could never be opened again. A read-only open skips the
// rebuild and reads every person; Verify names the damaged pages.
TEST_F(ReadOnlyTest, AnInterruptedRotationOverADamagedKeysFileStillOpensToRead) {
  ASSERT_TRUE(test::RunChildKilledAt("rotation.before_rebuild_swap", 1, [&] {
    auto store = Store::Open(options_);
    if (!store.ok()) _exit(4);
    (void)(*store)->RotateEpoch();
  }));
  // The page-number field (byte 1) of every branch and leaf page: LMDB's
  // reads do not look at it, its writes and the page walk do.
  const std::string keys_file = dir_.Sub("s") + "/keys/data.mdb";
  std::string bytes = test::ReadFile(keys_file);
  int damaged = 0;
  for (std::size_t pg = 2; (pg + 1) * 4096 <= bytes.size(); ++pg) {
    const auto flags = static_cast<unsigned char>(bytes[pg * 4096 + 10]);
    if (flags == 0x01 || flags == 0x02) {
      bytes[pg * 4096 + 1] = static_cast<char>(bytes[pg * 4096 + 1] ^ 0x40);
      ++damaged;
    }
  }
  ASSERT_GT(damaged, 0);
  test::WriteFile(keys_file, bytes);

  auto writable = Store::Open(options_);
  ASSERT_FALSE(writable.ok());
  EXPECT_TRUE(writable.status().IsCorruption()) << writable.status().ToString();
  EXPECT_NE(writable.status().message().find("read-only"), std::string::npos) << writable.status().ToString();

  auto store = Store::Open(ReadOnly());
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  for (int i = 0; i < 19; ++i) {
    auto p = (*store)->GetProfile(people_[static_cast<std::size_t>(i)]);
    ASSERT_TRUE(p.ok()) << i << ": " << p.status().ToString();
    EXPECT_EQ(p->at("i").as_int64(), i);
    std::ostringstream exported;
    SKV_EXPECT_OK(ExportPerson(**store, people_[static_cast<std::size_t>(i)], ExportFormat::kJson, exported));
  }
  EXPECT_TRUE((*store)->GetProfile(people_[19]).status().IsErased());
  auto report = (*store)->Verify();
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  ASSERT_FALSE(report->ok());
  EXPECT_EQ(report->problems.front().rfind("keys file: ", 0), 0u) << report->problems.front();
}

}  // namespace
}  // namespace shredkv
