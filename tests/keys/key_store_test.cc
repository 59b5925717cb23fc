#include "keys/key_store.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include "keys/key_payloads.h"
#include "shredkv/store.h"
#include "test_util.h"
#include "util/coding.h"

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

// A purge ticket's analytics links are sealed since stop 29 (outside audit
// 29a F2), behind an empty field that builds before it refuse as
// Corruption; tickets they wrote, with the links in the clear, still read.
TEST(TicketPayloadTest, SealedAndClearLinksBothReadBackAsWritten) {
  for (const bool sealed : {false, true}) {
    TicketPayload t{"req-1", 1, "links-or-sealed-links", sealed};
    std::string enc;
    EncodeTicket(t, &enc);
    TicketPayload back;
    SKV_ASSERT_OK(DecodeTicket(enc, &back));
    EXPECT_EQ(back.request_id, "req-1");
    EXPECT_EQ(back.analytics_mode, 1);
    EXPECT_EQ(back.analytics_links, "links-or-sealed-links");
    EXPECT_EQ(back.links_sealed, sealed);
    std::string again;
    EncodeTicket(back, &again);
    EXPECT_EQ(again, enc);
  }
  // The sealed layout as a build before stop 29 reads it: an empty links
  // field followed by more bytes.
  TicketPayload sealed{"req-1", 1, "sealed", true};
  std::string enc;
  EncodeTicket(sealed, &enc);
  util::ByteReader r(enc);
  std::string_view id, links;
  std::uint8_t mode = 0;
  ASSERT_TRUE(r.GetLengthPrefixed(&id) && r.GetU8(&mode) && r.GetLengthPrefixed(&links));
  EXPECT_TRUE(links.empty());
  EXPECT_FALSE(r.done());
  // An empty sealed field, or nothing after the marker, is malformed.
  const std::string marker_only = enc.substr(0, enc.size() - 7);  // lp("sealed") is 7 bytes
  for (const std::string& bad : {marker_only, marker_only + '\0'}) {
    TicketPayload t;
    EXPECT_TRUE(DecodeTicket(bad, &t).IsCorruption());
  }
}

}  // namespace
}  // namespace shredkv::keys
