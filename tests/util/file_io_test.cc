// util/file_io: whole files written durably, and private directories.
#include "util/file_io.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include "test_util.h"

namespace shredkv::util {
namespace {

namespace fs = std::filesystem;

// The temporary file is a new one: a symlink (or a file) left at its name
// by anyone who can write the directory (a backup into a shared, empty
// directory, say) is neither written through nor kept (review of stop 25:
// it was opened with O_TRUNC, following symlinks).
TEST(FileIoTest, WriteFileDurablyNeverWritesThroughWhatIsAtItsTemporaryName) {
  test::TempDir dir;
  const std::string victim = dir.Sub("victim");
  test::WriteFile(victim, "precious");
  const std::string path = dir.Sub("MANIFEST");
  ASSERT_EQ(::symlink(victim.c_str(), (path + ".tmp").c_str()), 0);
  SKV_ASSERT_OK(WriteFileDurably(path, "manifest"));
  EXPECT_EQ(test::ReadFile(victim), "precious");
  EXPECT_EQ(test::ReadFile(path), "manifest");
  EXPECT_FALSE(fs::exists(fs::symlink_status(path + ".tmp")));
  EXPECT_EQ(fs::status(path).permissions() & fs::perms::all, fs::perms::owner_read | fs::perms::owner_write);
}

TEST(FileIoTest, MakePrivateDirectoriesCreatesEveryMissingLevelOwnerOnly) {
  test::TempDir dir;
  const std::string deep = dir.Sub("a") + "/b/c";
  SKV_ASSERT_OK(MakePrivateDirectories(deep));
  for (const std::string& d : {dir.Sub("a"), dir.Sub("a") + "/b", deep}) {
    EXPECT_EQ(fs::status(d).permissions() & fs::perms::all, fs::perms::owner_all) << d;
  }
  SKV_ASSERT_OK(MakePrivateDirectories(deep));  // all there: fine
  test::WriteFile(dir.Sub("file"), "x");
  EXPECT_FALSE(MakePrivateDirectories(dir.Sub("file")).ok());
}

}  // namespace
}  // namespace shredkv::util
