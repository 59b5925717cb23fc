#include "crypto/aead.h"

#include <gtest/gtest.h>

#include "crypto/keyed_hash.h"

namespace shredkv::crypto {
namespace {

class AeadTest : public ::testing::TestWithParam<CipherId> {
 protected:
  void SetUp() override {
    ASSERT_TRUE(Init().ok());
    if (GetParam() == CipherId::kAes256Gcm && !Aes256GcmAvailable()) GTEST_SKIP() << "no AES-NI";
  }
};

TEST_P(AeadTest, SealOpenRoundTrip) {
  auto key = SecretKey::Random();
  ASSERT_TRUE(key.ok());
  std::string box, plain;
  Seal(GetParam(), *key, "ad", "secret message", &box);
  EXPECT_EQ(box.size(), SealOverhead(GetParam()) + 14);
  ASSERT_TRUE(Open(GetParam(), *key, "ad", box, &plain).ok());
  EXPECT_EQ(plain, "secret message");
}

TEST_P(AeadTest, WrongAssociatedDataFailsAuthentication) {
  auto key = SecretKey::Random();
  std::string box, plain = "leftover";
  Seal(GetParam(), *key, "row-1", "secret", &box);
  Status s = Open(GetParam(), *key, "row-2", box, &plain);
  EXPECT_TRUE(s.IsAuthenticationFailed()) << s.ToString();
  EXPECT_TRUE(plain.empty());
}

TEST_P(AeadTest, WrongKeyOrFlippedBitFailsAuthentication) {
  auto key = SecretKey::Random();
  auto other = SecretKey::Random();
  std::string box, plain;
  Seal(GetParam(), *key, "ad", "secret", &box);
  EXPECT_TRUE(Open(GetParam(), *other, "ad", box, &plain).IsAuthenticationFailed());
  for (std::size_t i = 0; i < box.size(); ++i) {
    std::string bad = box;
    bad[i] = static_cast<char>(bad[i] ^ 0x01);
    EXPECT_TRUE(Open(GetParam(), *key, "ad", bad, &plain).IsAuthenticationFailed()) << "byte " << i;
  }
}

TEST_P(AeadTest, TruncatedBoxIsCorruption) {
  auto key = SecretKey::Random();
  std::string plain;
  EXPECT_TRUE(Open(GetParam(), *key, "ad", std::string(5, 'x'), &plain).IsCorruption());
}

TEST_P(AeadTest, SameInputGivesDifferentNonces) {
  auto key = SecretKey::Random();
  std::string a, b;
  Seal(GetParam(), *key, "ad", "same", &a);
  Seal(GetParam(), *key, "ad", "same", &b);
  EXPECT_NE(a.substr(0, NonceSize(GetParam())), b.substr(0, NonceSize(GetParam())));
}

INSTANTIATE_TEST_SUITE_P(Ciphers, AeadTest,
                         ::testing::Values(CipherId::kXChaCha20Poly1305, CipherId::kAes256Gcm));

TEST(KeyedHashTest, DependsOnKeyAndPartBoundaries) {
  ASSERT_TRUE(Init().ok());
  auto k1 = SecretKey::Random();
  auto k2 = SecretKey::Random();
  EXPECT_EQ(KeyedHash(*k1, 32, {"a", "bc"}), KeyedHash(*k1, 32, {"a", "bc"}));
  EXPECT_NE(KeyedHash(*k1, 32, {"a", "bc"}), KeyedHash(*k1, 32, {"ab", "c"}));
  EXPECT_NE(KeyedHash(*k1, 32, {"a"}), KeyedHash(*k2, 32, {"a"}));
  EXPECT_EQ(KeyedHash(*k1, 16, {"a"}).size(), 16u);
}

}  // namespace
}  // namespace shredkv::crypto
