#include "keys/key_store.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include "shredkv/store.h"
#include "test_util.h"

namespace shredkv::keys {
namespace {

// Issue 16 (8): what a read-only open of a store needs from the key store:
// it opens, unlocks and reads an existing `keys` environment without
// writing anything (not even removing a cut-short rebuild's file), and
// every write is ReadOnly.
TEST(KeyStoreTest, AReadOnlyKeyStoreReadsAndWritesNothing) {
  test::TempDir dir;
  const std::string store_dir = dir.Sub("s");
  {
    auto store = Store::Open(test::TestOptions(store_dir));
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    ASSERT_TRUE((*store)->CreatePerson({Identifier{"email", "ann@x.org"}}).ok());
  }
  const std::string keys_dir = store_dir + "/keys";
  test::WriteFile(keys_dir + "/rebuild.mdb", "a rebuild cut short");
  const std::string before = test::ReadFile(keys_dir + "/data.mdb");
  KeyStoreOptions o;
  o.path = keys_dir;
  o.read_only = true;
  {
    auto ks = KeyStore::Open(o);
    ASSERT_TRUE(ks.ok()) << ks.status().ToString();
    ASSERT_TRUE((*ks)->initialized());
    auto root = test::TestOptions(store_dir).key_provider->GetRootKey(KeyRequest{(*ks)->salt()});
    ASSERT_TRUE(root.ok());
    SKV_ASSERT_OK((*ks)->Unlock(*root));
    auto n = (*ks)->CountDeks();
    ASSERT_TRUE(n.ok()) << n.status().ToString();
    EXPECT_EQ(*n, 1u);
    EXPECT_TRUE((*ks)->BeginRotation(0).status().IsReadOnly());
  }
  EXPECT_EQ(test::ReadFile(keys_dir + "/data.mdb"), before);
  struct stat st {};
  EXPECT_EQ(::stat((keys_dir + "/rebuild.mdb").c_str(), &st), 0) << "the read-only open removed a file";
}

}  // namespace
}  // namespace shredkv::keys
