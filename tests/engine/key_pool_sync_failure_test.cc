// The key pool, and the custody's keys, when a sync of `keys` fails (issue
// 21, second review; stop 37). This binary defines fdatasync itself: liblmdb and the library resolve it here,
// and a test can make one sync of the `keys` file fail with EIO.
#include <gtest/gtest.h>

#include <dlfcn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>

#include "engine/key_pool_inspect.h"
#include "engine/store_impl.h"
#include "shredkv/sharded_store.h"
#include "test_util.h"
#include "util/test_point.h"

namespace {

// Syncs of the `keys` file to let through before one fails; -1: none fails.
std::atomic<int> g_keys_syncs_to_pass{-1};
std::atomic<int> g_keys_syncs_failed{0};
// Every sync of the `keys` file this process asked for, failed or not.
std::atomic<int> g_keys_syncs_seen{0};

bool IsKeysFile(int fd) {
  char link[64];
  char path[PATH_MAX];
  std::snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  const ssize_t n = ::readlink(link, path, sizeof path - 1);
  if (n <= 0) return false;
  const std::string_view p(path, static_cast<std::size_t>(n));
  return p.ends_with("/keys/data.mdb");
}

// While set, every fsync of a directory whose path ends with this fails
// with EIO (util::SyncPath's fsync of a directory).
std::mutex g_failing_dir_mu;
std::string g_failing_dir_suffix;
std::atomic<int> g_dir_syncs_failed{0};

std::string PathOfFd(int fd) {
  char link[64];
  char path[PATH_MAX];
  std::snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  const ssize_t n = ::readlink(link, path, sizeof path - 1);
  return n <= 0 ? std::string() : std::string(path, static_cast<std::size_t>(n));
}

}  // namespace

extern "C" int fsync(int fd) {
  using Fn = int (*)(int);
  static const Fn real = reinterpret_cast<Fn>(::dlsym(RTLD_NEXT, "fsync"));
  {
    std::lock_guard lock(g_failing_dir_mu);
    if (!g_failing_dir_suffix.empty() && PathOfFd(fd).ends_with(g_failing_dir_suffix)) {
      g_dir_syncs_failed.fetch_add(1);
      errno = EIO;
      return -1;
    }
  }
  return real(fd);
}

extern "C" int fdatasync(int fd) {
  using Fn = int (*)(int);
  static const Fn real = reinterpret_cast<Fn>(::dlsym(RTLD_NEXT, "fdatasync"));
  const bool keys_file = IsKeysFile(fd);
  if (keys_file) g_keys_syncs_seen.fetch_add(1);
  if (g_keys_syncs_to_pass.load() >= 0 && keys_file && g_keys_syncs_to_pass.fetch_sub(1) == 0) {
    g_keys_syncs_to_pass = -1;
    g_keys_syncs_failed.fetch_add(1);
    errno = EIO;
    return -1;
  }
  return real(fd);
}

namespace shredkv {
namespace {

namespace fs = std::filesystem;

using test::Impl;

std::string KeyBytes(Store& s, const PersonId& p) {
  auto dek = Impl(s).key_store().GetDek(p);
  return dek.ok() ? std::string((*dek)->view()) : std::string();
}

using test::ClaimRows;

// A power loss that keeps only what was synced of an LMDB file: its two
// meta pages as in `synced_copy` (taken when it was last synced), so the
// commits since are not reachable.
void RestoreMetaPages(const std::string& file, const std::string& synced_copy) {
  std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
  std::ifstream synced(synced_copy, std::ios::binary);
  std::string metas(2 * 4096, '\0');
  synced.read(metas.data(), static_cast<std::streamsize>(metas.size()));
  f.seekp(0);
  f.write(metas.data(), static_cast<std::streamsize>(metas.size()));
}

// The person ID a child process wrote to `path` (its 16 bytes).
std::optional<PersonId> ReadPersonIdFile(const std::string& path) {
  const std::string raw = test::ReadFile(path);
  PersonId::Bytes bytes;
  if (raw.size() != bytes.size()) return std::nullopt;
  std::memcpy(bytes.data(), raw.data(), bytes.size());
  return PersonId(bytes);
}

// Erasing a person whose key is still a claimed pool row deletes the pool
// row in the erase commit; the person's claim row in `data` may go only
// once that commit is on disk. When the sync after the erase commit fails
// (kNoSync: `keys` is not synced by its commits), the claim stays: a power
// loss that loses the erase commit must find the person with its claim, not
// an unclaimed pool row the next open hands to someone else (it once did).
TEST(KeyPoolSyncFailureTest, AnEraseWhoseSyncFailedKeepsTheClaimAndNoKeyIsReused) {
  test::TempDir dir;
  Options o = test::TestOptions(dir.Sub("s"));
  ASSERT_EQ(o.durability, Durability::kNoSync);
  const std::string keys_file = dir.Sub("s") + "/keys/data.mdb";
  const std::string synced_copy = dir.Sub("keys-synced.mdb");
  const std::string id_file = dir.Sub("x.id"), key_file = dir.Sub("x.key"), facts_file = dir.Sub("facts");
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    auto store = Store::Open(o);
    if (!store.ok()) _exit(4);
    auto a = (*store)->CreatePerson({{"email", "a@x.org"}}, {{"name", "A"}});  // fills the pool (synced)
    auto x = (*store)->CreatePerson({{"email", "x@x.org"}}, {{"name", "X secret"}});  // claims a pool row
    if (!a.ok() || !x.ok()) _exit(5);
    test::WriteFile(id_file, std::string(x->view()));
    test::WriteFile(key_file, KeyBytes(**store, *x));
    fs::copy_file(keys_file, synced_copy, fs::copy_options::overwrite_existing);  // `keys` as last synced
    const std::uint64_t claims_before = ClaimRows(**store);
    g_keys_syncs_to_pass = 1;  // the commit's own page flush passes; the sync after it fails
    auto erased = (*store)->Erase(*x);
    g_keys_syncs_to_pass = -1;
    const Status next = (*store)->AppendEvent(*a, Event{"view", 1000, {}, {}});
    std::ofstream facts(facts_file);
    facts << g_keys_syncs_failed.load() << " " << (erased.ok() ? 1 : 0) << " " << (next.ok() ? 1 : 0) << " "
          << claims_before << " " << ClaimRows(**store) << "\n";
    facts.close();
    _exit(0);  // the process dies without closing
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  std::istringstream facts(test::ReadFile(facts_file));
  int syncs_failed = -1, erase_ok = -1, next_ok = -1;
  std::uint64_t claims_before = 0, claims_after = 0;
  facts >> syncs_failed >> erase_ok >> next_ok >> claims_before >> claims_after;
  ASSERT_EQ(syncs_failed, 1) << "the sync after the erase commit was not reached";
  EXPECT_EQ(erase_ok, 0) << "Erase must report the failed sync";
  EXPECT_EQ(next_ok, 1);
  EXPECT_EQ(claims_before, 2u);
  EXPECT_EQ(claims_after, claims_before) << "X's claim row went with the next write although its erasure may be lost";

  // A power loss: the erase commit, never synced, is lost (the meta pages
  // as last synced).
  RestoreMetaPages(keys_file, synced_copy);
  const std::optional<PersonId> read_x = ReadPersonIdFile(id_file);
  ASSERT_TRUE(read_x.has_value());
  const PersonId x = *read_x;
  const std::string x_key = test::ReadFile(key_file);
  ASSERT_EQ(x_key.size(), 32u);
  auto store = Store::Open(o);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  // X is back (its erasure was never acknowledged) with its key, and the
  // erasure can be run again.
  EXPECT_TRUE((*store)->GetProfile(x).ok());
  EXPECT_TRUE(test::VerifiesClean(**store));
  for (int i = 0; i < 300; ++i) {
    auto y = (*store)->CreatePerson({{"email", "y" + std::to_string(i) + "@x.org"}}, {{"name", "Y"}});
    ASSERT_TRUE(y.ok()) << y.status().ToString();
    ASSERT_NE(KeyBytes(**store, *y), x_key) << "new person #" << i << " got the key of X, whose rows are in `data`";
  }
  auto again = (*store)->Erase(x);
  EXPECT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_TRUE((*store)->GetProfile(x).status().IsErased());
}

// A process killed between a pool refill's commit and its sync leaves pool
// rows that may never reach the disk. The next writable open hands them out
// without a refill of its own, so it must sync `keys` before it does: a
// kFullSync create acknowledged with such a row once lost the person's key
// to a power loss (review F5), and the person read as having none.
void KillAtRefillSync(std::string_view name) {
  if (name == "pool.before_refill_sync") _exit(0);
}

TEST(KeyPoolSyncFailureTest, PoolRowsOfARefillKilledBeforeItsSyncAreSyncedBeforeTheNextOpenHandsThemOut) {
  test::TempDir dir;
  Options o = test::TestOptions(dir.Sub("s"));
  const std::string keys_file = dir.Sub("s") + "/keys/data.mdb";
  const std::string synced_copy = dir.Sub("keys-synced.mdb");
  const std::string id_file = dir.Sub("x.id"), facts_file = dir.Sub("facts");
  {
    auto store = Store::Open(o);  // created, and closed: `keys` as synced
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    ASSERT_TRUE((*store)->Close().ok());
  }
  fs::copy_file(keys_file, synced_copy, fs::copy_options::overwrite_existing);
  auto run_child = [](auto&& body) {
    const pid_t pid = ::fork();
    if (pid == 0) {
      body();
      _exit(0);
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 100 + status;
  };
  // 1. A kNoSync writer whose first create refills the pool and is killed
  //    after the refill's commit, before its sync.
  ASSERT_EQ(run_child([&] {
              auto store = Store::Open(o);
              if (!store.ok()) _exit(2);
              util::SetTestPointHook(&KillAtRefillSync);
              (void)(*store)->CreatePerson({{"email", "a@x.org"}}, {{"name", "A"}});
              _exit(3);  // the hook did not fire
            }),
            0);
  {
    Options ro = o;
    ro.read_only = true;
    ro.create_if_missing = false;
    auto reader = Store::Open(ro);
    ASSERT_TRUE(reader.ok()) << reader.status().ToString();
    ASSERT_EQ(ClaimRows(**reader), 0u) << "the killed create claimed a key";
  }
  // 2. A kFullSync writer creates X from the pool rows the killed refill
  //    left, and dies without closing. It records whether `keys` was synced
  //    before the create was acknowledged.
  ASSERT_EQ(run_child([&] {
              Options full = o;
              full.durability = Durability::kFullSync;
              const int syncs_before = g_keys_syncs_seen.load();
              auto store = Store::Open(full);
              if (!store.ok()) _exit(4);
              const int syncs_at_open = g_keys_syncs_seen.load() - syncs_before;
              auto x = (*store)->CreatePerson({{"email", "x@x.org"}}, {{"name", "X"}});
              if (!x.ok()) _exit(5);
              test::WriteFile(id_file, std::string(x->view()));
              std::ofstream(facts_file) << syncs_at_open << " " << ClaimRows(**store) << "\n";
              _exit(0);
            }),
            0);
  std::istringstream facts(test::ReadFile(facts_file));
  int syncs_at_open = -1;
  std::uint64_t claims = 0;
  facts >> syncs_at_open >> claims;
  ASSERT_EQ(claims, 1u) << "X's key was not a claimed pool row";
  EXPECT_GE(syncs_at_open, 1) << "the open handed out pool rows it never synced";
  // 3. A power loss: `keys` is as last synced. With no sync since the store
  //    was closed, that is the copy taken then (its meta pages name the
  //    tree without the refill's rows).
  if (syncs_at_open == 0) RestoreMetaPages(keys_file, synced_copy);
  const std::optional<PersonId> x = ReadPersonIdFile(id_file);
  ASSERT_TRUE(x.has_value());
  auto store = Store::Open(o);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  auto profile = (*store)->GetProfile(*x);
  EXPECT_TRUE(profile.ok()) << "X's acknowledged create lost its key: " << profile.status().ToString();
  EXPECT_TRUE(test::VerifiesClean(**store));
}

// A custody in memory: each label a random key, a wrapping the epoch key
// XORed with it (a stand-in for a token, enough to tell which keys exist).
class MemoryCustody final : public EpochKeyCustody {
 public:
  Status CreateKey(std::string_view l) override {
    std::lock_guard lock(mu_);
    std::string key(RootKey::kSize, '\0');
    for (char& c : key) c = static_cast<char>(std::rand());
    keys_.emplace(std::string(l), std::move(key));
    return Status::OK();
  }
  Result<std::string> Wrap(std::string_view l, std::string_view k) override {
    std::lock_guard lock(mu_);
    auto it = keys_.find(std::string(l));
    if (it == keys_.end()) return Status::KeyDestroyed("no key " + std::string(l));
    std::string out(k);
    for (std::size_t i = 0; i < out.size(); ++i) out[i] = static_cast<char>(out[i] ^ it->second[i]);
    return out;
  }
  Result<RootKey> Unwrap(std::string_view l, std::string_view w) override {
    auto plain = Wrap(l, w);
    if (!plain.ok()) return plain.status();
    return RootKey::FromBytes(*plain);
  }
  Status DestroyKey(std::string_view l) override {
    std::lock_guard lock(mu_);
    keys_.erase(std::string(l));
    return Status::OK();
  }
  Result<bool> HasKey(std::string_view l) override {
    std::lock_guard lock(mu_);
    return keys_.count(std::string(l)) == 1;
  }
  std::string Describe() const override { return "memory"; }
  std::size_t size() {
    std::lock_guard lock(mu_);
    return keys_.size();
  }

 private:
  std::mutex mu_;
  std::map<std::string, std::string> keys_;
};

// Stop 34's note, left until stop 37: RekeyCustody made a custody key per
// epoch and left them in the custody when its commit failed, wrapping epoch
// keys no file holds. The commit's page flush fails here (EIO): the key it
// made is destroyed, the store keeps its old one, and a second call moves it.
TEST(KeyPoolSyncFailureTest, ARekeyWhoseCommitFailedDestroysTheCustodyKeyItMade) {
  test::TempDir dir;
  Options o = test::TestOptions(dir.Sub("s"));
  auto custody = std::make_shared<MemoryCustody>();
  o.epoch_key_custody = custody;
  auto store = Store::Open(o);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  const PersonId a = *(*store)->CreatePerson({{"email", "a@x.org"}}, {{"name", "A"}});
  auto& keys = Impl(**store).key_store();
  const std::string before = keys.Epochs().at(0).custody_label;
  ASSERT_FALSE(before.empty());
  ASSERT_EQ(custody->size(), 1u);
  const int failed_before = g_keys_syncs_failed.load();
  g_keys_syncs_to_pass = 0;
  auto failed = keys.RekeyCustody();
  g_keys_syncs_to_pass = -1;
  ASSERT_EQ(g_keys_syncs_failed.load(), failed_before + 1);
  EXPECT_FALSE(failed.ok());
  EXPECT_EQ(custody->size(), 1u) << "the custody key made for the failed commit was left";
  EXPECT_EQ(keys.Epochs().at(0).custody_label, before);
  auto moved = keys.RekeyCustody();
  ASSERT_TRUE(moved.ok()) << moved.status().ToString();
  EXPECT_EQ(*moved, 1u);
  const std::string after = keys.Epochs().at(0).custody_label;
  EXPECT_NE(after, before);
  EXPECT_TRUE(*custody->HasKey(after));
  SKV_ASSERT_OK((*store)->Close());
  store->reset();
  // The old custody key is left alone (a restored copy's is its original's):
  // destroying it must not matter to the store, which opens with the new one.
  SKV_ASSERT_OK(custody->DestroyKey(before));
  auto again = Store::Open(o);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ((*again)->GetProfile(a)->at("name").as_string(), "A");
}

// Review 37b, S4 (the sharded half): a shard's RestoreBackup synced the
// directory it was renamed into (the sharded store's) itself, and when that
// sync failed it returned the error with the shard in place and no result;
// ShardedStore::Restore then removed the shard, and the custody keys made
// for it (kNewKeys) stayed in the token, wrapping epoch keys of a copy that
// no longer exists. Now the sharded restore makes that sync once, after
// every shard, and on failure destroys the keys of every shard it removes.
// Runs the restore below with every fsync of the directory whose path ends
// with `failing` failing: the sharded store's own (the old code's shard
// restores synced it; now WriteManifest's sync does), or the one holding it
// (the sync the sharded restore makes last; review 38, R11).
void ExpectAFailedFinalSyncToLeaveNoCustodyKey(bool fail_the_parent);

TEST(KeyPoolSyncFailureTest, AShardedRestoreWhoseFinalSyncFailsLeavesNoCustodyKeyItMade) {
  ExpectAFailedFinalSyncToLeaveNoCustodyKey(false);
}

TEST(KeyPoolSyncFailureTest, AShardedRestoreWhoseLastParentSyncFailsLeavesNoCustodyKeyItMade) {
  ExpectAFailedFinalSyncToLeaveNoCustodyKey(true);
}

void ExpectAFailedFinalSyncToLeaveNoCustodyKey(bool fail_the_parent) {
  test::TempDir dir;
  Options o = test::TestOptions(dir.Sub("s"));
  auto custody = std::make_shared<MemoryCustody>();
  o.epoch_key_custody = custody;
  std::vector<ErasureLog> logs;
  {
    auto s = ShardedStore::Open(o, 2);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    for (int i = 0; i < 6; ++i) ASSERT_TRUE((*s)->CreatePerson({{"email", std::to_string(i) + "@x.org"}}).ok());
    SKV_ASSERT_OK((*s)->Backup(dir.Sub("b")).status());
    auto read = (*s)->ReadErasureLogs();
    ASSERT_TRUE(read.ok()) << read.status().ToString();
    logs = *read;
    SKV_ASSERT_OK((*s)->Close());
  }
  const std::size_t original_keys = custody->size();
  ASSERT_GE(original_keys, 2u);

  Options to = o;
  to.directory = dir.Sub("restored-top");
  to.create_if_missing = false;
  ShardedRestoreOptions ro;
  ro.erasure_logs = logs;
  ro.custody_keys = RestoredCustodyKeys::kNewKeys;
  {
    std::lock_guard lock(g_failing_dir_mu);
    g_failing_dir_suffix = fail_the_parent ? fs::canonical(fs::path(to.directory).parent_path()).string()
                                           : std::string("/restored-top");
  }
  const int failed_before = g_dir_syncs_failed.load();
  auto failed = ShardedStore::Restore(dir.Sub("b"), to, ro);
  {
    std::lock_guard lock(g_failing_dir_mu);
    g_failing_dir_suffix.clear();
  }
  ASSERT_GT(g_dir_syncs_failed.load(), failed_before) << "the restore never synced the sharded store's directory";
  EXPECT_TRUE(failed.status().IsIOError()) << failed.status().ToString();
  EXPECT_FALSE(fs::exists(to.directory));
  EXPECT_EQ(custody->size(), original_keys) << "custody keys made for shards the failed restore removed were left";

  auto restored = ShardedStore::Restore(dir.Sub("b"), to, ro);
  ASSERT_TRUE(restored.ok()) << restored.status().ToString();
  EXPECT_GT(custody->size(), original_keys);
  auto opened = ShardedStore::Open(to, 2);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  EXPECT_TRUE((*opened)->Resolve({"email", "3@x.org"}).ok());
}

}  // namespace
}  // namespace shredkv
