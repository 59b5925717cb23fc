#include "crypto/random.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <set>
#include <string>
#include <unordered_set>

#include "crypto/secure_memory.h"

namespace shredkv::crypto {
namespace {

TEST(RandomTest, NoRepeatedNonceOverAMillionDraws) {
  ASSERT_TRUE(Init().ok());
  std::unordered_set<std::string> seen;
  seen.reserve(1'000'000);
  for (int i = 0; i < 1'000'000; ++i) {
    auto n = RandomArray<12>();  // the shorter (AES-GCM) nonce
    ASSERT_TRUE(seen.emplace(reinterpret_cast<const char*>(n.data()), n.size()).second) << "repeat at " << i;
  }
}

TEST(RandomTest, ForkedChildDoesNotReuseParentPoolBytes) {
  ASSERT_TRUE(Init().ok());
  (void)RandomU64();  // fill this thread's pool
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    std::uint64_t v = RandomU64();
    ssize_t n = write(fds[1], &v, sizeof v);
    _exit(n == sizeof v ? 0 : 1);
  }
  std::uint64_t parent = RandomU64();
  std::uint64_t child = 0;
  ASSERT_EQ(read(fds[0], &child, sizeof child), static_cast<ssize_t>(sizeof child));
  int status = 0;
  waitpid(pid, &status, 0);
  close(fds[0]);
  close(fds[1]);
  EXPECT_NE(parent, child) << "parent and child drew the same pooled bytes";
}

}  // namespace
}  // namespace shredkv::crypto
