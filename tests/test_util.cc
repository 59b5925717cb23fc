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
