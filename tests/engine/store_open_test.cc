#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <limits>
#include <thread>
#include <filesystem>

#include "storage/environment.h"
#include "test_util.h"

namespace shredkv {
namespace {

using test::TempDir;
using test::TestOptions;

TEST(StoreOpenTest, MissingStoreIsNotFoundWithoutCreate) {
  TempDir dir;
  Options o = TestOptions(dir.Sub("store"));
  o.create_if_missing = false;
  EXPECT_TRUE(Store::Open(o).status().IsNotFound());
}

TEST(StoreOpenTest, RequiresKeyProviderAndDirectory) {
  TempDir dir;
  Options o = TestOptions(dir.Sub("store"));
  o.key_provider = nullptr;
  EXPECT_TRUE(Store::Open(o).status().IsInvalidArgument());
  Options p = TestOptions("");
  EXPECT_TRUE(Store::Open(p).status().IsInvalidArgument());
}

// Outside audit 37a, F5: 32 zero bytes (a key buffer never filled) as a
// raw key or a key file's made a store anyone could open.
TEST(StoreOpenTest, NoStoreIsCreatedOrReSealedUnderAnAllZeroRootKey) {
  TempDir dir;
  Options o = TestOptions(dir.Sub("store"));
  o.key_provider = NewRawKeyProvider(std::string(RootKey::kSize, '\0'));
  auto refused = Store::Open(o);
  EXPECT_TRUE(refused.status().IsInvalidArgument()) << refused.status().ToString();
  EXPECT_NE(refused.status().message().find("zero"), std::string::npos);
  auto store = Store::Open(TestOptions(dir.Sub("store")));
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  EXPECT_TRUE((*store)->RotateRootKey(o.key_provider).IsInvalidArgument());
}

// Outside audit 37a, F7: durations were taken unchecked. A granularity of
// 0 or less turned off kUnlink's coarsening; a drain timeout of 2^63 - 1
// ("for ever") overflowed its deadline, so an erasure beside a lease failed
// Busy at once.
TEST(StoreOpenTest, DegenerateDurationsAreRefusedAndAnEndlessDrainTimeoutWaits) {
  TempDir dir;
  auto with = [&](auto set) {
    Options o = TestOptions(dir.Sub("store"));
    set(o);
    return Store::Open(o).status();
  };
  EXPECT_TRUE(with([](Options& o) { o.unlink_time_granularity_ms = 0; }).IsInvalidArgument());
  EXPECT_TRUE(with([](Options& o) { o.unlink_time_granularity_ms = -1; }).IsInvalidArgument());
  EXPECT_TRUE(with([](Options& o) { o.lease_drain_timeout_ms = -1; }).IsInvalidArgument());
  EXPECT_TRUE(with([](Options& o) { o.rotate_after_ms = -5; }).IsInvalidArgument());
  EXPECT_TRUE(with([](Options& o) { o.background_maintenance_ms = -1; }).IsInvalidArgument());

  Options o = TestOptions(dir.Sub("store"));
  o.lease_drain_timeout_ms = std::numeric_limits<std::int64_t>::max();
  auto store = Store::Open(o);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  const PersonId ann = *(*store)->CreatePerson({{"email", "ann@x.org"}}, {{"name", "Ann"}});
  auto lease = (*store)->AcquireLease(ann, "support");
  ASSERT_TRUE(lease.ok()) << lease.status().ToString();
  std::thread release([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    lease->reset();
  });
  auto erased = (*store)->Erase(ann);
  release.join();
  EXPECT_TRUE(erased.ok()) << erased.status().ToString();
}

TEST(StoreOpenTest, DataPersistsAcrossReopen) {
  TempDir dir;
  PersonId id;
  {
    auto store = Store::Open(TestOptions(dir.Sub("s")));
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    auto created = (*store)->CreatePerson({{"email", "ann@x.org"}}, {{"name", "Ann"}});
    ASSERT_TRUE(created.ok());
    id = *created;
    SKV_ASSERT_OK((*store)->Close());
  }
  auto store = Store::Open(TestOptions(dir.Sub("s")));
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  auto resolved = (*store)->Resolve({"email", "ann@x.org"});
  ASSERT_TRUE(resolved.ok());
  EXPECT_EQ(*resolved, id);
  auto profile = (*store)->GetProfile(id);
  ASSERT_TRUE(profile.ok());
  EXPECT_EQ(profile->at("name").as_string(), "Ann");
}

TEST(StoreOpenTest, ErrorIfExistsRefusesAnExistingStore) {
  TempDir dir;
  { ASSERT_TRUE(Store::Open(TestOptions(dir.Sub("s"))).ok()); }
  Options o = TestOptions(dir.Sub("s"));
  o.error_if_exists = true;
  EXPECT_TRUE(Store::Open(o).status().IsAlreadyExists());
}

TEST(StoreOpenTest, WrongRootKeyIsWrongKey) {
  TempDir dir;
  {
    auto store = Store::Open(TestOptions(dir.Sub("s"), 'a'));
    ASSERT_TRUE(store.ok());
    ASSERT_TRUE((*store)->CreatePerson({{"email", "a@x.org"}}).ok());
  }
  auto wrong = Store::Open(TestOptions(dir.Sub("s"), 'b'));
  EXPECT_TRUE(wrong.status().IsWrongKey()) << wrong.status().ToString();
  // The right key still opens it: a failed open wrote nothing.
  EXPECT_TRUE(Store::Open(TestOptions(dir.Sub("s"), 'a')).ok());
}

TEST(StoreOpenTest, PassphraseStoreOpensOnlyWithItsPassphrase) {
  TempDir dir;
  PassphraseOptions fast{.interactive_limits = true};
  Options o = TestOptions(dir.Sub("s"));
  o.key_provider = NewPassphraseKeyProvider("open sesame", fast);
  {
    auto store = Store::Open(o);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    ASSERT_TRUE((*store)->CreatePerson({{"email", "a@x.org"}}).ok());
  }
  EXPECT_TRUE(Store::Open(o).ok());
  o.key_provider = NewPassphraseKeyProvider("open sesame!", fast);
  EXPECT_TRUE(Store::Open(o).status().IsWrongKey());
}

TEST(StoreOpenTest, SecondOpenInOneProcessIsRefused) {
  TempDir dir;
  auto first = Store::Open(TestOptions(dir.Sub("s")));
  ASSERT_TRUE(first.ok());
  auto second = Store::Open(TestOptions(dir.Sub("s")));
  EXPECT_EQ(second.status().code(), StatusCode::kFailedPrecondition) << second.status().ToString();
  SKV_ASSERT_OK((*first)->Close());
  EXPECT_TRUE(Store::Open(TestOptions(dir.Sub("s"))).ok());
}

TEST(StoreOpenTest, CallsAfterCloseFailCleanly) {
  TempDir dir;
  auto store = Store::Open(TestOptions(dir.Sub("s")));
  ASSERT_TRUE(store.ok());
  SKV_ASSERT_OK((*store)->Close());
  SKV_EXPECT_OK((*store)->Close());  // idempotent
  EXPECT_EQ((*store)->Resolve({"email", "a@x.org"}).status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ((*store)->CreatePerson({{"email", "a@x.org"}}).status().code(),
            StatusCode::kFailedPrecondition);
}

// Outside audit 34c, F1: iterators opened before Close kept handing out the
// entries they held buffered, decrypted, after it — also after the person
// was erased through a store opened again on the directory, whose erasure
// the closed store's epoch never sees. They end at Close now, with
// FailedPrecondition, as every other call does.
TEST(StoreOpenTest, IteratorsOpenedBeforeCloseReturnNothingAfterIt) {
  TempDir dir;
  Options o = TestOptions(dir.Sub("s"));
  auto store = Store::Open(o);
  ASSERT_TRUE(store.ok());
  auto p = (*store)->CreatePerson({{"email", "p@x.org"}}, {{"name", "P"}});
  ASSERT_TRUE(p.ok());
  for (int i = 0; i < 10; ++i) {
    SKV_ASSERT_OK((*store)->Put(*p, "notes", "k" + std::to_string(i), "secret-" + std::to_string(i)));
    SKV_ASSERT_OK((*store)->AppendEvent(*p, Event{"visit", 1000 + i, {{"page", "secret-page"}}, {}}));
  }
  auto records = (*store)->ScanRecords(*p, "notes");
  auto events = (*store)->ScanEvents(*p, {});
  auto exported = (*store)->Export(*p);
  ASSERT_TRUE(records->Valid());
  ASSERT_TRUE(events->Valid());
  ASSERT_TRUE(exported->Valid());
  records->Next();  // one handed out and moved past: the rest is buffered
  events->Next();
  exported->Next();
  ASSERT_TRUE(records->Valid() && events->Valid() && exported->Valid());
  // An item value() handed out stays valid until Next() (iterator.h), also
  // across the Close that ends the iteration (the export destroyed it; an
  // ASan run reads freed memory here on that code).
  const Record& held_record = records->value();
  const ExportItem& held_item = exported->value();
  const ExportItem::Kind held_kind = held_item.kind;
  const std::string held_value = held_record.value;
  SKV_ASSERT_OK((*store)->Close());
  {
    auto again = Store::Open(o);
    ASSERT_TRUE(again.ok()) << again.status().ToString();
    ASSERT_TRUE((*again)->Erase(*p).ok());
  }
  EXPECT_FALSE(records->Valid());
  EXPECT_EQ(records->status().code(), StatusCode::kFailedPrecondition) << records->status().ToString();
  EXPECT_TRUE(records->value().value.empty());
  EXPECT_FALSE(events->Valid());
  EXPECT_EQ(events->status().code(), StatusCode::kFailedPrecondition) << events->status().ToString();
  EXPECT_TRUE(events->value().properties.empty());
  EXPECT_FALSE(exported->Valid());
  EXPECT_EQ(exported->status().code(), StatusCode::kFailedPrecondition) << exported->status().ToString();
  EXPECT_EQ(held_item.kind, held_kind);
  EXPECT_EQ(held_record.value, held_value);
  records->Next();
  exported->Next();
  EXPECT_FALSE(records->Valid());
  EXPECT_FALSE(exported->Valid());
}

TEST(StoreOpenTest, UseAfterForkIsRefusedInTheChild) {
  TempDir dir;
  auto store = Store::Open(TestOptions(dir.Sub("s")));
  ASSERT_TRUE(store.ok());
  auto id = (*store)->CreatePerson({{"email", "a@x.org"}});
  ASSERT_TRUE(id.ok());
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    auto r = (*store)->GetProfile(*id);
    auto w = (*store)->AppendEvent(*id, Event{"e", 1, {}, {}});
    const bool refused = r.status().code() == StatusCode::kFailedPrecondition &&
                         w.code() == StatusCode::kFailedPrecondition;
    _exit(refused ? 0 : 1);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_TRUE((*store)->GetProfile(*id).ok());
}

// Stop 26's review of the walk at open: every writable open of a store
// with erasures not yet purged looks up each erasure's marker in `erased`,
// which was not walked: its root branch page left with one entry aborted
// the process in Store::Open (and so in `verify`). A writable open walks
// it; a read-only open does not read it and still opens.
TEST(StoreOpenTest, ADamagedErasedTableIsCorruptionAtAWritableOpenWithErasuresPending) {
  TempDir dir;
  Options o = TestOptions(dir.Sub("s"));
  {
    auto store = Store::Open(o);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    for (int i = 0; i < 400; ++i) {
      auto id = (*store)->CreatePerson({{"email", "p" + std::to_string(i) + "@x.org"}});
      ASSERT_TRUE(id.ok());
      ASSERT_TRUE((*store)->Erase(*id).ok());  // not purged: the tickets stay
    }
    SKV_ASSERT_OK((*store)->Close());
  }
  const std::string file = dir.Sub("s") + "/data/data.mdb";
  std::string bytes = test::ReadFile(file);
  const std::size_t root = test::LmdbTableRootOffset(bytes, "erased");
  ASSERT_NE(root, 0u);
  ASSERT_EQ(bytes[root + 10], '\x01') << "erased's root is not a branch page: more erasures needed";
  bytes[root + 12] = 16 + 2;
  bytes[root + 13] = 0;
  test::WriteFile(file, bytes);
  o.create_if_missing = false;
  auto writable = Store::Open(o);
  ASSERT_TRUE(writable.status().IsCorruption()) << writable.status().ToString();
  EXPECT_NE(writable.status().message().find("table 'erased': page " + std::to_string(root / 4096)),
            std::string::npos)
      << writable.status().ToString();
  o.read_only = true;
  auto read_only = Store::Open(o);
  EXPECT_TRUE(read_only.ok()) << read_only.status().ToString();
}

// Stop 26's audit: closing (or destroying) a store in a forked child hung
// for ever when the store ran background maintenance: Close joined a thread
// that exists only in the parent (Python's atexit hook closes every open
// store, so any forked worker that exited normally hung). In the child,
// Close is FailedPrecondition and returns at once; the parent's store is
// untouched.
TEST(StoreOpenTest, ClosingAStoreInAForkedChildReturnsAtOnce) {
  TempDir dir;
  Options o = TestOptions(dir.Sub("s"));
  o.background_maintenance_ms = 50;
  auto store = Store::Open(o);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  auto id = (*store)->CreatePerson({{"email", "a@x.org"}});
  ASSERT_TRUE(id.ok());
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    alarm(10);  // a hang fails the test (SIGALRM) instead of blocking it
    const Status closed = (*store)->Close();
    store->reset();  // the destructor must not wait either
    _exit(closed.code() == StatusCode::kFailedPrecondition ? 0 : 1);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status)) << "the child did not exit (signal " << (WIFSIGNALED(status) ? WTERMSIG(status) : 0)
                                 << ")";
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_TRUE((*store)->GetProfile(*id).ok());
  SKV_EXPECT_OK((*store)->Close());
}

TEST(StoreOpenTest, DataWithoutKeysIsCorruption) {
  TempDir dir;
  { ASSERT_TRUE(Store::Open(TestOptions(dir.Sub("s"))).ok()); }
  std::filesystem::remove_all(dir.Sub("s/keys"));
  auto s = Store::Open(TestOptions(dir.Sub("s")));
  EXPECT_TRUE(s.status().IsCorruption()) << s.status().ToString();
}

// Outside audit 35b, F2: keys of people without their data environment
// were Corruption for a writable open but "no store" (NotFound, the CLI's
// exit 3, doctor and --read-only verify included) for a read-only one.
// Both say Corruption now; keys of no one (a creation cut short) stay "no
// store" for a read-only open.
TEST(StoreOpenTest, KeysOfPeopleWithoutDataAreCorruptionReadOnlyToo) {
  TempDir dir;
  {
    auto s = Store::Open(TestOptions(dir.Sub("s")));
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    ASSERT_TRUE((*s)->CreatePerson({{"email", "ann@x.org"}}).ok());
  }
  { ASSERT_TRUE(Store::Open(TestOptions(dir.Sub("empty"))).ok()); }
  std::filesystem::remove_all(dir.Sub("s/data"));
  std::filesystem::remove_all(dir.Sub("empty/data"));
  Options read_only = TestOptions(dir.Sub("s"));
  read_only.read_only = true;
  read_only.create_if_missing = false;
  auto r = Store::Open(read_only);
  EXPECT_TRUE(r.status().IsCorruption()) << r.status().ToString();
  EXPECT_NE(r.status().message().find("no data environment"), std::string::npos) << r.status().ToString();
  auto w = Store::Open(TestOptions(dir.Sub("s")));
  EXPECT_TRUE(w.status().IsCorruption()) << w.status().ToString();
  read_only.directory = dir.Sub("empty");
  EXPECT_TRUE(Store::Open(read_only).status().IsNotFound());
}

// Found by the power-loss simulation: torn writes left a keys environment
// with its tables but without its rows next to a full data environment. Open
// reported NotFound ("no store") and, with create_if_missing, wrote new
// store keys into the damaged environment.
TEST(StoreOpenTest, EmptiedKeysNextToDataIsCorruptionAndKeysAreNotRecreated) {
  TempDir dir;
  {
    auto store = Store::Open(TestOptions(dir.Sub("s")));
    ASSERT_TRUE(store.ok());
    ASSERT_TRUE((*store)->CreatePerson({{"email", "a@x.org"}}).ok());
  }
  std::filesystem::remove_all(dir.Sub("s/keys"));
  {
    storage::EnvOptions eo;
    eo.path = dir.Sub("s/keys");
    eo.create = true;
    eo.durability = Durability::kNoSync;
    eo.tables = {"meta", "epochs", "deks", "fences", "suppressed", "purge_queue", "requests"};
    ASSERT_TRUE(storage::Environment::Open(eo).ok());
  }
  const std::string keys_before = test::ReadFile(dir.Sub("s/keys/data.mdb"));
  Options create = TestOptions(dir.Sub("s"));
  ASSERT_TRUE(create.create_if_missing);
  auto s = Store::Open(create);
  EXPECT_TRUE(s.status().IsCorruption()) << s.status().ToString();
  EXPECT_EQ(test::ReadFile(dir.Sub("s/keys/data.mdb")), keys_before) << "keys were written over";
  Options no_create = create;
  no_create.create_if_missing = false;
  EXPECT_TRUE(Store::Open(no_create).status().IsCorruption());
}

// Stop 26 (found by damaging pages of a store from outside): a damaged
// page of a tree the open itself reads — the key pool in `keys`, the format
// and rules row in `data`'s meta — aborted the process inside LMDB (an
// assertion on a branch page with one entry) or faulted on a wild node
// offset, in Store::Open, so not even `verify` could say which page. Those
// trees are walked before they are read: Corruption naming the page, with
// nothing written.
TEST(StoreOpenTest, ADamagedPageOfATreeTheOpenReadsIsCorruptionNamingThePage) {
  TempDir dir;
  {
    auto store = Store::Open(TestOptions(dir.Sub("s")));
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    ASSERT_TRUE((*store)->CreatePerson({{"email", "a@x.org"}}).ok());  // fills the key pool
    SKV_ASSERT_OK((*store)->Close());
  }
  struct Damage {
    const char* file;
    const char* table;
    bool branch;  // one entry left in the root branch page; else every node offset past the page
  };
  for (const Damage& d : {Damage{"keys/data.mdb", "pool", true}, Damage{"data/data.mdb", "meta", false}}) {
    SCOPED_TRACE(d.table);
    const std::string copy = dir.Sub(std::string("copy-") + d.table);
    std::filesystem::copy(dir.Sub("s"), copy, std::filesystem::copy_options::recursive);
    const std::string file = copy + "/" + d.file;
    std::string bytes = test::ReadFile(file);
    const std::size_t root = test::LmdbTableRootOffset(bytes, d.table);
    ASSERT_NE(root, 0u);
    ASSERT_EQ(bytes[root + 10], d.branch ? '\x01' : '\x02') << "the root page is not of the kind this test damages";
    if (d.branch) {
      bytes[root + 12] = 16 + 2;
      bytes[root + 13] = 0;
    } else {
      std::uint16_t lower = 0;
      std::memcpy(&lower, bytes.data() + root + 12, 2);
      for (std::size_t i = 0; i + 16 < lower; i += 2) {
        bytes[root + 16 + i] = '\xfa';  // 4090: the node header runs past the page
        bytes[root + 17 + i] = '\x0f';
      }
    }
    test::WriteFile(file, bytes);
    for (bool read_only : {false, true}) {
      Options o = TestOptions(copy);
      o.create_if_missing = false;
      o.read_only = read_only;
      auto store = Store::Open(o);
      ASSERT_TRUE(store.status().IsCorruption()) << store.status().ToString();
      const std::string page = "table '" + std::string(d.table) + "': page " + std::to_string(root / 4096);
      EXPECT_NE(store.status().message().find(page), std::string::npos) << store.status().ToString();
      EXPECT_TRUE(test::ReadFile(file) == bytes) << "the refused open wrote to the file";
    }
  }
}

TEST(StoreOpenTest, KeysOfAnotherStoreAreCorruption) {
  TempDir dir;
  { ASSERT_TRUE(Store::Open(TestOptions(dir.Sub("a"))).ok()); }
  { ASSERT_TRUE(Store::Open(TestOptions(dir.Sub("b"))).ok()); }
  std::filesystem::remove_all(dir.Sub("a/keys"));
  std::filesystem::copy(dir.Sub("b/keys"), dir.Sub("a/keys"));
  auto s = Store::Open(TestOptions(dir.Sub("a")));
  EXPECT_TRUE(s.status().IsCorruption()) << s.status().ToString();
}

TEST(StoreOpenTest, FullSyncStoreWorks) {
  TempDir dir;
  Options o = TestOptions(dir.Sub("s"));
  o.durability = Durability::kFullSync;
  auto store = Store::Open(o);
  ASSERT_TRUE(store.ok());
  EXPECT_TRUE((*store)->CreatePerson({{"email", "a@x.org"}}).ok());
}

TEST(StoreOpenTest, EachCipherChoiceReadsBackAndStoresMayMixThem) {
  TempDir dir;
  Options o = TestOptions(dir.Sub("s"));
  o.cipher = Cipher::kXChaCha20Poly1305;
  PersonId a;
  {
    auto store = Store::Open(o);
    ASSERT_TRUE(store.ok());
    a = *(*store)->CreatePerson({{"email", "a@x.org"}}, {{"v", 1}});
  }
  o.cipher = Cipher::kAuto;
  auto store = Store::Open(o);
  ASSERT_TRUE(store.ok());
  auto b = (*store)->CreatePerson({{"email", "b@x.org"}}, {{"v", 2}});
  ASSERT_TRUE(b.ok());
  EXPECT_EQ((*store)->GetProfile(a)->at("v").as_int64(), 1);
  EXPECT_EQ((*store)->GetProfile(*b)->at("v").as_int64(), 2);
}

}  // namespace
}  // namespace shredkv
