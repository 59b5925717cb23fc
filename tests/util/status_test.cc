#include "shredkv/status.h"

#include <gtest/gtest.h>

#include "shredkv/types.h"

namespace shredkv {
namespace {

TEST(StatusTest, FactoriesCarryDistinctCodes) {
  EXPECT_TRUE(Status::OK().ok());
  EXPECT_TRUE(Status::NotFound("x").IsNotFound());
  EXPECT_TRUE(Status::Erased("x").IsErased());
  EXPECT_TRUE(Status::Restricted("x").IsRestricted());
  EXPECT_TRUE(Status::Suppressed("x").IsSuppressed());
  EXPECT_TRUE(Status::AlreadyExists("x").IsAlreadyExists());
  EXPECT_TRUE(Status::InvalidArgument("x").IsInvalidArgument());
  EXPECT_TRUE(Status::Corruption("x").IsCorruption());
  EXPECT_TRUE(Status::AuthenticationFailed("x").IsAuthenticationFailed());
  EXPECT_TRUE(Status::WrongKey("x").IsWrongKey());
  EXPECT_TRUE(Status::StoreFull("x").IsStoreFull());
  EXPECT_TRUE(Status::Busy("x").IsBusy());
  EXPECT_TRUE(Status::IOError("x").IsIOError());
  EXPECT_TRUE(Status::ReadOnly("x").IsReadOnly());
  EXPECT_EQ(Status::ReadOnly("x").ToString(), "ReadOnly: x");
  EXPECT_FALSE(Status::NotFound("x").IsErased());
}

TEST(StatusTest, ToStringNamesCodeAndMessage) {
  EXPECT_EQ(Status::OK().ToString(), "OK");
  EXPECT_EQ(Status::WrongKey("root check failed").ToString(), "WrongKey: root check failed");
  EXPECT_EQ(Status::NotFound("a").WithContext("ctx").message(), "ctx: a");
}

TEST(ResultTest, HoldsValueOrError) {
  Result<int> good(7);
  ASSERT_TRUE(good.ok());
  EXPECT_EQ(*good, 7);
  Result<int> bad(Status::Busy("later"));
  EXPECT_FALSE(bad.ok());
  EXPECT_TRUE(bad.status().IsBusy());
}

TEST(ResultTest, OkStatusWithoutValueBecomesInternal) {
  Result<int> r(Status::OK());
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInternal);
}

TEST(RandomIdTest, HexRoundTrip) {
  PersonId::Bytes b{};
  for (std::size_t i = 0; i < b.size(); ++i) b[i] = static_cast<std::uint8_t>(i * 17);
  PersonId id(b);
  auto parsed = PersonId::FromHex(id.ToHex());
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(*parsed, id);
  EXPECT_EQ(id.ToHex().size(), 32u);
  EXPECT_TRUE(PersonId::FromHex("xyz").status().IsInvalidArgument());
  EXPECT_TRUE(PersonId::FromHex(std::string(32, 'g')).status().IsInvalidArgument());
}

}  // namespace
}  // namespace shredkv
