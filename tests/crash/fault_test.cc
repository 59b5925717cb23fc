// Bad input and exhaustion, each with its documented outcome
// (docs/testing.md, "Bad input and exhaustion"):
//   damaged files       → Open fails with Corruption/AuthenticationFailed, or
//                         reads fail and Verify lists the damage, or an LMDB
//                         fault contained in the child; never wrong
//                         plaintext, never a crash in our code;
//   map full            → StoreFull, nothing of the batch written, usable
//                         again once max_map_size is raised;
//   disk full           → StoreFull (RLIMIT_FSIZE), earlier data intact,
//                         writes succeed once the limit is lifted;
//   stale readers       → processes killed inside a read transaction never
//                         fill the reader table;
//   long reads          → a paused iterator pins no old pages.
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <iostream>
#include <map>
#include <random>

#include "crash/fault_guard.h"
#include "crash/directory_image.h"
#include "storage/environment.h"
#include "test_util.h"

namespace shredkv::crash {
namespace {

// ---- damaged files ---------------------------------------------------------

struct Expected {
  Attributes profile;
  std::map<std::string, std::string> records;
  std::size_t events = 0;
  bool erased = false;
};

// Child exit codes of one damaged-store check.
constexpr int kHarmless = 0;        // opened, every read right, Verify clean
constexpr int kOpenRefused = 1;     // Open returned Corruption or AuthenticationFailed
constexpr int kDamageDetected = 2;  // opened; reads failed and Verify listed problems
constexpr int kOpenOtherError = 3;  // Open returned another error code (counted by code)
constexpr int kVerifyMissed = 4;    // a read failed but Verify found nothing
constexpr int kWrongPlaintext = 50;
constexpr int kErasedReadable = 51;

int CheckDamagedStore(const Options& options, const std::map<std::string, Expected>& expected,
                      const std::string& reason_path) {
  auto opened = Store::Open(options);
  if (!opened.ok()) {
    test::WriteFile(reason_path, std::string(StatusCodeName(opened.status().code())));
    return opened.status().IsCorruption() || opened.status().IsAuthenticationFailed() ? kOpenRefused
                                                                                      : kOpenOtherError;
  }
  Store& store = **opened;
  bool read_failed = false;
  std::string failed_reads;
  for (const auto& [hex, want] : expected) {
    const PersonId id = *PersonId::FromHex(hex);
    auto profile = store.GetProfile(id);
    if (want.erased) {
      if (profile.ok()) return kErasedReadable;
      continue;
    }
    std::string& why = failed_reads;
    if (!profile.ok()) {
      read_failed = true;
      why += "profile: " + profile.status().ToString() + "; ";
    } else if (*profile != want.profile) {
      return kWrongPlaintext;
    }
    for (const auto& [key, value] : want.records) {
      auto got = store.Get(id, "c", key);
      if (!got.ok()) {
        read_failed = true;
        why += "record: " + got.status().ToString() + "; ";
      } else if (*got != value) {
        return kWrongPlaintext;
      }
    }
    std::size_t events = 0;
    auto it = store.ScanEvents(id);
    for (; it->Valid(); it->Next()) {
      if (it->value().properties.at("person").as_string() != hex) return kWrongPlaintext;
      ++events;
    }
    if (!it->status().ok()) {
      read_failed = true;
      why += "events: " + it->status().ToString() + "; ";
    } else if (events != want.events) {
      read_failed = true;  // a row lost to damage: detected below by Verify or counted as missed
      why += "events: " + std::to_string(events) + " of " + std::to_string(want.events) + "; ";
    }
  }
  auto report = store.Verify();
  const bool verify_found = !report.ok() || !report->ok();
  if (verify_found) return kDamageDetected;
  if (read_failed) test::WriteFile(reason_path, failed_reads);
  return read_failed ? kVerifyMissed : kHarmless;
}

TEST(CorruptFilesTest, EveryFlipAndTruncationOfEveryFileIsRefusedDetectedOrHarmless) {
  test::TempDir dir;
  Options options = test::TestOptions(dir.Sub("store"));
  std::map<std::string, Expected> expected;
  {
    auto store = Store::Open(options);
    ASSERT_TRUE(store.ok());
    for (int i = 0; i < 12; ++i) {
      Attributes profile{{"name", "Person " + std::to_string(i)}, {"i", i}};
      auto id = (*store)->CreatePerson({{"email", "p" + std::to_string(i) + "@x.org"}}, profile);
      ASSERT_TRUE(id.ok());
      Expected& e = expected[id->ToHex()];
      e.profile = profile;
      for (int k = 0; k < 3; ++k) {
        const std::string key = "k" + std::to_string(k), value = "value " + std::to_string(i * 10 + k);
        SKV_ASSERT_OK((*store)->Put(*id, "c", key, value));
        e.records[key] = value;
      }
      for (int k = 0; k < 4; ++k) {
        SKV_ASSERT_OK((*store)->AppendEvent(*id, Event{"e", k, {{"person", id->ToHex()}}, {}}));
      }
      e.events = 4;
      if (i % 5 == 4) {
        ASSERT_TRUE((*store)->Erase(*id).ok());
        e = Expected{};
        e.erased = true;
      }
    }
    SKV_ASSERT_OK((*store)->Close());
  }
  const DirectoryImage base = SnapshotDirectory(options.directory);
  std::mt19937_64 rng(8);
  std::map<std::string, std::uint64_t> outcomes;
  std::uint64_t cases = 0;
  for (const auto& [file, bytes] : base) {
    if (bytes.empty()) continue;  // the LOCK file
    for (int variant = 0; variant < 100; ++variant) {
      DirectoryImage damaged = base;
      std::string& target = damaged[file];
      std::string what;
      if (variant < 88) {
        const int flips = 1 + variant % 8;
        for (int k = 0; k < flips; ++k) {
          const std::size_t at = rng() % target.size();
          target[at] = static_cast<char>(target[at] ^ static_cast<char>(1 + rng() % 255));
        }
        what = std::to_string(flips) + " bytes flipped";
      } else {
        const std::size_t lengths[] = {0, 4096, 8192, 12288, target.size() / 2, target.size() - 1};
        const std::size_t len = variant < 94 ? lengths[variant - 88] : rng() % target.size();
        target.resize(std::min(len, target.size()));
        what = "truncated to " + std::to_string(target.size());
      }
      const std::string reason_path = dir.Sub("reason");
      const int status = CheckImageInChild(damaged, dir.Sub("damaged"), options, reason_path,
                                           [&](const Options& o) { return CheckDamagedStore(o, expected, reason_path); });
      ASSERT_NE(status, -1);
      ++cases;
      const int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      const std::string where = file + ", " + what + ": ";
      switch (code) {
        case kHarmless: ++outcomes["harmless (unused bytes)"]; break;
        case kOpenRefused: ++outcomes["Open refused: " + test::ReadFile(reason_path)]; break;
        case kDamageDetected: ++outcomes["opened, Verify reported the damage"]; break;
        case kOpenOtherError: ++outcomes["Open refused: " + test::ReadFile(reason_path)]; break;
        case kVerifyMissed:
          ++outcomes["opened, a read failed, Verify clean"];
          ADD_FAILURE() << where << "reads failed that Verify did not report: " << test::ReadFile(reason_path);
          break;
        case kExitLmdbFault: ++outcomes["LMDB fault contained in the child"]; break;
        case kExitMappedFileFault: ++outcomes["read past a damaged mapped file (SIGBUS) contained"]; break;
        default: ADD_FAILURE() << where << DescribeWaitStatus(status);
      }
    }
  }
  std::cout << "damaged stores: " << cases << " cases\n";
  for (const auto& [outcome, count] : outcomes) std::cout << "  " << count << "  " << outcome << "\n";
  EXPECT_EQ(outcomes.count("opened, a read failed, Verify clean"), 0u) << "Verify missed damage reads saw";
}

TEST(CorruptFilesTest, FaultClassifierTellsOurCrashFromLmdb) {
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    InstallFaultClassifier();
    ::raise(SIGSEGV);  // from the test binary itself: "our code"
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_EQ(DescribeWaitStatus(status), "exit " + std::to_string(kExitOtherFault));
}

// ---- exhaustion -------------------------------------------------------------

TEST(ExhaustionTest, MapFullBatchWritesNothingAndCommitsOnceTheLimitIsRaised) {
  test::TempDir dir;
  Options o = test::TestOptions(dir.Sub("s"));
  o.initial_map_size = 1u << 20;
  o.max_map_size = 2u << 20;
  PersonId id;
  {
    auto store = Store::Open(o);
    ASSERT_TRUE(store.ok());
    id = *(*store)->CreatePerson({{"email", "full@x.org"}}, {{"name", "Full"}});
    SKV_ASSERT_OK((*store)->Put(id, "c", "before", "kept"));
    WriteBatch big;
    for (int i = 0; i < 64; ++i) big.Put(id, "c", "big" + std::to_string(i), std::string(64 << 10, 'x'));
    const Status s = (*store)->Write(big);
    EXPECT_TRUE(s.IsStoreFull()) << s.ToString();
    EXPECT_TRUE((*store)->Get(id, "c", "big0").status().IsNotFound()) << "part of a failed batch was written";
    EXPECT_EQ(*(*store)->Get(id, "c", "before"), "kept");
    SKV_EXPECT_OK((*store)->Put(id, "c", "small", "fits"));  // the store stays usable
    SKV_ASSERT_OK((*store)->Close());
  }
  o.max_map_size = 64u << 20;  // space returns
  auto store = Store::Open(o);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  WriteBatch big;
  for (int i = 0; i < 64; ++i) big.Put(id, "c", "big" + std::to_string(i), std::string(64 << 10, 'x'));
  SKV_EXPECT_OK((*store)->Write(big));
  EXPECT_EQ((*store)->Get(id, "c", "big63")->size(), 64u << 10);
  EXPECT_TRUE((*store)->Verify()->ok());
}

// Child exit codes of the disk-full run.
constexpr int kDiskFullOk = 0;
constexpr int kNoStoreFull = 61;
constexpr int kEarlierDataLost = 62;
constexpr int kNotUsableAgain = 63;

TEST(ExhaustionTest, DiskFullIsStoreFullKeepsEarlierDataAndRecoversWhenSpaceReturns) {
  test::TempDir dir;
  Options o = test::TestOptions(dir.Sub("s"));
  o.durability = Durability::kFullSync;
  PersonId id;
  {
    auto store = Store::Open(o);
    ASSERT_TRUE(store.ok());
    id = *(*store)->CreatePerson({{"email", "disk@x.org"}}, {{"name", "Disk"}});
    SKV_ASSERT_OK((*store)->Put(id, "c", "before", "kept"));
    SKV_ASSERT_OK((*store)->Close());
  }
  const std::string reason_path = dir.Sub("reason");
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::signal(SIGXFSZ, SIG_IGN);  // writes past the limit fail with EFBIG instead
    auto store = Store::Open(o);
    if (!store.ok()) _exit(70);
    struct stat st {};
    if (::stat((o.directory + "/data/data.mdb").c_str(), &st) != 0) _exit(71);
    rlimit limit{};
    ::getrlimit(RLIMIT_FSIZE, &limit);
    const rlimit original = limit;
    limit.rlim_cur = static_cast<rlim_t>(st.st_size) + (256u << 10);
    if (::setrlimit(RLIMIT_FSIZE, &limit) != 0) _exit(72);
    Status s;
    int written = 0;
    for (int i = 0; i < 1000 && s.ok(); ++i) {
      s = (*store)->Put(id, "c", "fill" + std::to_string(i), std::string(16 << 10, 'f'));
      if (s.ok()) ++written;
    }
    test::WriteFile(reason_path, s.ToString());
    if (!s.IsStoreFull()) _exit(kNoStoreFull);
    auto before = (*store)->Get(id, "c", "before");
    auto last = (*store)->Get(id, "c", "fill" + std::to_string(written - 1));
    if (!before.ok() || *before != "kept" || written == 0 || !last.ok()) _exit(kEarlierDataLost);
    if (::setrlimit(RLIMIT_FSIZE, &original) != 0) _exit(73);  // space returns
    Status again = (*store)->Put(id, "c", "after", "written");
    if (!again.ok()) {
      test::WriteFile(reason_path, "after the limit was lifted: " + again.ToString());
      _exit(kNotUsableAgain);
    }
    if (!(*store)->Close().ok()) _exit(74);
    _exit(kDiskFullOk);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_EQ(DescribeWaitStatus(status), "exit 0") << test::ReadFile(reason_path);
  EXPECT_NE(test::ReadFile(reason_path).find("file size limit"), std::string::npos) << test::ReadFile(reason_path);
  auto store = Store::Open(o);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  EXPECT_EQ(*(*store)->Get(id, "c", "before"), "kept");
  EXPECT_EQ(*(*store)->Get(id, "c", "after"), "written");
  EXPECT_TRUE((*store)->Verify()->ok());
}

TEST(ExhaustionTest, ReadersKilledInsideATransactionNeverFillTheReaderTable) {
  test::TempDir dir;
  storage::EnvOptions eo;
  eo.path = dir.Sub("env");
  eo.tables = {"t"};
  eo.create = true;
  eo.durability = Durability::kNoSync;
  auto env = storage::Environment::Open(eo);
  ASSERT_TRUE(env.ok());
  SKV_ASSERT_OK((*env)->Update([&](storage::WriteTxn& txn) { return txn.Put((*env)->table("t"), "k", "v"); }));
  // More dead readers than the table has slots (1024), while this process
  // keeps the environment open so the lock file is never reinitialised.
  constexpr int kChildren = 1100;
  int reached = 0;
  for (int i = 0; i < kChildren; ++i) {
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      storage::EnvOptions child_options = eo;
      child_options.create = false;
      auto child_env = storage::Environment::Open(child_options);
      if (!child_env.ok()) _exit(2);
      const Status s = (*child_env)->View([](storage::ReadTxn&) -> Status {
        ::raise(SIGKILL);  // dies holding its reader slot
        return Status::OK();
      });
      _exit(s.IsBusy() ? 3 : 4);
    }
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
        << "child " << i << " could not begin a read: " << DescribeWaitStatus(status);
    ++reached;
  }
  EXPECT_EQ(reached, kChildren);
  std::string_view value;
  SKV_EXPECT_OK((*env)->View([&](storage::ReadTxn& txn) { return txn.Get((*env)->table("t"), "k", &value); }));
}

TEST(ExhaustionTest, APausedIteratorPinsNoOldPages) {
  test::TempDir dir;
  Options o = test::TestOptions(dir.Sub("s"));
  o.iterator_batch_size = 2;
  auto store = Store::Open(o);
  ASSERT_TRUE(store.ok());
  auto id = *(*store)->CreatePerson({{"email", "long@x.org"}});
  for (int i = 0; i < 10; ++i) SKV_ASSERT_OK((*store)->Put(id, "c", "k" + std::to_string(i), "v"));
  auto it = (*store)->ScanRecords(id, "c");
  ASSERT_TRUE(it->Valid());
  it->Next();  // paused in the middle of the scan
  const std::uint64_t before = (*store)->Stats()->data_file_bytes;
  // 400 rewrites of a 64 KiB value: with a snapshot held, none of the freed
  // pages could be reused and the file would grow by about 25 MiB.
  for (int i = 0; i < 400; ++i) SKV_ASSERT_OK((*store)->Put(id, "blob", "b", std::string(64 << 10, static_cast<char>('a' + i % 26))));
  const std::uint64_t after = (*store)->Stats()->data_file_bytes;
  EXPECT_LT(after, before + (4u << 20)) << "old pages were pinned while the iterator paused";
  std::size_t rest = 0;
  for (; it->Valid(); it->Next()) ++rest;
  SKV_EXPECT_OK(it->status());
  EXPECT_EQ(rest, 9u);
}

}  // namespace
}  // namespace shredkv::crash
