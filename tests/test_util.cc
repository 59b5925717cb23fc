#include "test_util.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <string_view>

#include "util/test_point.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <cstring>
#include <fstream>
#include <sstream>

namespace shredkv::test {

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl = std::string(base != nullptr ? base : "/tmp") + "/shredkv-test-XXXXXX";
  char* p = ::mkdtemp(tmpl.data());
  if (p == nullptr) std::abort();
  path_ = p;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::string TestKeyBytes(char fill) { return std::string(32, fill); }

Options TestOptions(const std::string& dir, char key_fill) {
  Options o;
  o.directory = dir;
  o.create_if_missing = true;
  o.durability = Durability::kNoSync;
  o.initial_map_size = 4u << 20;
  o.key_provider = NewRawKeyProvider(TestKeyBytes(key_fill));
  return o;
}

namespace {

template <typename T>
T LoadAt(const std::string& bytes, std::size_t offset) {
  T v{};
  if (offset + sizeof v <= bytes.size()) std::memcpy(&v, bytes.data() + offset, sizeof v);
  return v;
}

}  // namespace

std::size_t LmdbTableRecordOffset(const std::string& file_bytes, std::string_view table) {
  // mdb.c: a page header of 16 bytes; a meta page's MDB_meta after it:
  // magic, version, address, map size (24 bytes), the free-page and main
  // MDB_db records (48 bytes each: pad = page size, flags, depth, four
  // counts, root), last page, transaction id.
  constexpr std::size_t kHeader = 16, kFreeDb = kHeader + 24, kMainDb = kFreeDb + 48, kTxnId = kMainDb + 48 + 8;
  constexpr std::size_t kDbRoot = 40;
  const auto page_size = LoadAt<std::uint32_t>(file_bytes, kFreeDb);
  if (page_size < 512 || file_bytes.size() < 2 * std::size_t{page_size}) return 0;
  const std::size_t meta =
      LoadAt<std::uint64_t>(file_bytes, kTxnId) >= LoadAt<std::uint64_t>(file_bytes, page_size + kTxnId) ? 0 : page_size;
  // The table directory (main tree): a leaf root whose nodes are named tables.
  const std::size_t dir = LoadAt<std::uint64_t>(file_bytes, meta + kMainDb + kDbRoot) * page_size;
  if (dir + page_size > file_bytes.size()) return 0;
  const std::size_t entries = (LoadAt<std::uint16_t>(file_bytes, dir + 12) - kHeader) / 2;
  for (std::size_t i = 0; i < entries; ++i) {
    const std::size_t node = dir + LoadAt<std::uint16_t>(file_bytes, dir + kHeader + 2 * i);
    const auto key_size = LoadAt<std::uint16_t>(file_bytes, node + 6);
    if (node + 8 + key_size + 48 > file_bytes.size()) return 0;
    if (std::string_view(file_bytes.data() + node + 8, key_size) == table) return node + 8 + key_size;
  }
  return 0;
}

std::size_t LmdbTableRootOffset(const std::string& file_bytes, std::string_view table) {
  const std::size_t record = LmdbTableRecordOffset(file_bytes, table);
  if (record == 0) return 0;
  const auto page_size = LoadAt<std::uint32_t>(file_bytes, 16 + 24);
  const auto root = LoadAt<std::uint64_t>(file_bytes, record + 40);
  if (root == ~std::uint64_t{0} || (root + 1) * page_size > file_bytes.size()) return 0;
  return root * page_size;
}

std::vector<std::string> FilesUnder(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    if (e.is_regular_file()) out.push_back(e.path().string());
  }
  return out;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteFile(const std::string& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << data;
}

void StoreTest::Reopen() {
  if (store_) SKV_ASSERT_OK(store_->Close());
  store_.reset();
  if (options_.directory.empty()) options_ = TestOptions(dir_.path());
  auto s = Store::Open(options_);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  store_ = std::move(s).value();
}

PersonId StoreTest::MakePerson(const std::string& email, Attributes profile) {
  auto id = store_->CreatePerson({{"email", email}}, profile);
  EXPECT_TRUE(id.ok()) << id.status().ToString();
  return id.ok() ? *id : PersonId();
}

namespace {

std::string g_kill_at;
int g_hits_before_kill = 0;

void KillHook(std::string_view name) {
  if (name == g_kill_at && --g_hits_before_kill <= 0) ::raise(SIGKILL);
}

}  // namespace

bool RunChildKilledAt(const std::string& point, int hits, const std::function<void()>& body) {
  pid_t pid = fork();
  if (pid == 0) {
    g_kill_at = point;
    g_hits_before_kill = hits;
    util::SetTestPointHook(&KillHook);
    body();
    _exit(3);  // the test point was never reached
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
}

std::vector<PersonId> FiftyPeopleFirstErased(const Options& options) {
  auto store = Store::Open(options);
  if (!store.ok()) return {};
  WriteBatch b;
  std::vector<PersonId> people;
  for (int i = 0; i < 50; ++i) people.push_back(b.CreatePerson({{"customer_id", std::to_string(i)}}, {{"i", i}}));
  if (!(*store)->Write(b).ok() || !(*store)->Erase(people[0]).ok()) return {};
  return people;
}

::testing::AssertionResult FiftyPeopleRead(Store& store, const std::vector<PersonId>& people) {
  if (people.size() != 50) return ::testing::AssertionFailure() << people.size() << " people, not 50";
  for (int i = 1; i < 50; ++i) {
    auto p = store.GetProfile(people[static_cast<std::size_t>(i)]);
    if (!p.ok()) return ::testing::AssertionFailure() << "person " << i << ": " << p.status().ToString();
    if (p->at("i").as_int64() != i) return ::testing::AssertionFailure() << "person " << i << ": wrong profile";
  }
  const Status first = store.GetProfile(people[0]).status();
  if (!first.IsErased()) return ::testing::AssertionFailure() << "the erased person: " << first.ToString();
  return ::testing::AssertionSuccess();
}

std::int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

int StressFactor() {
  const char* v = std::getenv("SHREDKV_STRESS");
  return v != nullptr && std::string_view(v) == "1" ? 10 : 1;
}

::testing::AssertionResult VerifiesClean(Store& store) {
  auto report = store.Verify();
  if (!report.ok()) return ::testing::AssertionFailure() << "Verify failed: " << report.status().ToString();
  if (report->ok()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << report->problems.size() << " problem(s), first: "
                                       << (report->problems.empty() ? "" : report->problems.front());
}

}  // namespace shredkv::test
