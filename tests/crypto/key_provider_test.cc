#include "shredkv/key_provider.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstring>

#include "test_util.h"

namespace shredkv {
namespace {

using test::TempDir;

TEST(KeyProviderTest, CreateKeyFileIsPrivateAndRefusesOverwrite) {
  TempDir dir;
  const std::string path = dir.Sub("root.key");
  SKV_ASSERT_OK(CreateKeyFile(path));
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(st.st_size, 32);
  EXPECT_TRUE(CreateKeyFile(path).IsAlreadyExists());
}

TEST(KeyProviderTest, FileProviderReadsTheKey) {
  TempDir dir;
  const std::string path = dir.Sub("root.key");
  SKV_ASSERT_OK(CreateKeyFile(path));
  auto key = NewFileKeyProvider(path)->GetRootKey({});
  ASSERT_TRUE(key.ok()) << key.status().ToString();
  EXPECT_EQ(std::memcmp(key->data(), test::ReadFile(path).data(), 32), 0);
}

TEST(KeyProviderTest, FileProviderRefusesWorldReadableOrWrongSize) {
  TempDir dir;
  const std::string path = dir.Sub("root.key");
  SKV_ASSERT_OK(CreateKeyFile(path));
  ASSERT_EQ(::chmod(path.c_str(), 0644), 0);
  EXPECT_TRUE(NewFileKeyProvider(path)->GetRootKey({}).status().IsInvalidArgument());
  const std::string short_path = dir.Sub("short.key");
  test::WriteFile(short_path, "tooshort");
  ASSERT_EQ(::chmod(short_path.c_str(), 0600), 0);
  EXPECT_TRUE(NewFileKeyProvider(short_path)->GetRootKey({}).status().IsInvalidArgument());
  EXPECT_TRUE(NewFileKeyProvider(dir.Sub("missing"))->GetRootKey({}).status().IsNotFound());
}

TEST(KeyProviderTest, PassphraseDerivationDependsOnPassphraseAndSalt) {
  PassphraseOptions fast{.interactive_limits = true};
  const std::string salt_a(16, 'a'), salt_b(16, 'b');
  auto k1 = NewPassphraseKeyProvider("correct horse", fast)->GetRootKey({salt_a});
  auto k2 = NewPassphraseKeyProvider("correct horse", fast)->GetRootKey({salt_a});
  auto k3 = NewPassphraseKeyProvider("correct horse", fast)->GetRootKey({salt_b});
  auto k4 = NewPassphraseKeyProvider("wrong horse", fast)->GetRootKey({salt_a});
  ASSERT_TRUE(k1.ok() && k2.ok() && k3.ok() && k4.ok());
  EXPECT_EQ(std::memcmp(k1->data(), k2->data(), 32), 0);
  EXPECT_NE(std::memcmp(k1->data(), k3->data(), 32), 0);
  EXPECT_NE(std::memcmp(k1->data(), k4->data(), 32), 0);
  EXPECT_TRUE(NewPassphraseKeyProvider("", fast)->GetRootKey({salt_a}).status().IsInvalidArgument());
}

TEST(KeyProviderTest, RawProviderNeedsExactly32Bytes) {
  EXPECT_TRUE(NewRawKeyProvider(std::string(32, 'x'))->GetRootKey({}).ok());
  EXPECT_TRUE(NewRawKeyProvider("short")->GetRootKey({}).status().IsInvalidArgument());
}

}  // namespace
}  // namespace shredkv
