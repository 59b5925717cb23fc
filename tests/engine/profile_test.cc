#include <gtest/gtest.h>

#include "test_util.h"

namespace shredkv {
namespace {

class ProfileTest : public test::StoreTest {};

TEST_F(ProfileTest, EveryValueTypeRoundTripsThroughReopen) {
  const Attributes profile{{"name", Value("Ann")},
                           {"age", Value(std::int64_t{41})},
                           {"score", Value(0.75)},
                           {"vip", Value(true)},
                           {"birthday", Value(Timestamp{-86400000})},
                           {"avatar", Value::Bytes(std::string("\x89PNG\0\x01", 6))}};
  PersonId id = MakePerson("ann@x.org", profile);
  EXPECT_EQ(*store_->GetProfile(id), profile);
  Reopen();
  EXPECT_EQ(*store_->GetProfile(id), profile);
}

TEST_F(ProfileTest, PatchSetsAndUnsetsTogether) {
  PersonId id = MakePerson("ann@x.org", {{"name", "Ann"}, {"city", "Berlin"}, {"age", 40}});
  ProfilePatch patch;
  patch.set = {{"city", "Hamburg"}, {"plan", "pro"}};
  patch.unset = {"age", "never-set"};
  SKV_ASSERT_OK(store_->PatchProfile(id, patch));
  EXPECT_EQ(*store_->GetProfile(id), (Attributes{{"name", "Ann"}, {"city", "Hamburg"}, {"plan", "pro"}}));
}

TEST_F(ProfileTest, FailedBatchLeavesProfileUntouched) {
  PersonId id = MakePerson("ann@x.org", {{"name", "Ann"}});
  WriteBatch batch;
  batch.PatchProfile(id, ProfilePatch{{{"name", "Changed"}}, {}});
  batch.PatchProfile(PersonId(PersonId::Bytes{7}), ProfilePatch{{{"x", 1}}, {}});  // unknown person
  Status s = store_->Write(batch);
  EXPECT_TRUE(s.IsNotFound()) << s.ToString();
  EXPECT_NE(s.message().find("operation #1"), std::string::npos) << s.message();
  EXPECT_EQ(store_->GetProfile(id)->at("name").as_string(), "Ann");
}

// Issue 16 (2): attribute values are capped at 1 MiB each, but a profile
// grew without bound, patch by patch. It is capped at 16 MiB encoded; the
// patch that would pass it is refused and changes nothing.
TEST_F(ProfileTest, AProfileOverSixteenMebibytesIsRefusedAndLeftAsItWas) {
  PersonId id = MakePerson("ann@x.org", {{"name", "Ann"}});
  const std::string mib(1u << 20, 'x');
  ProfilePatch first;
  for (int i = 0; i < 9; ++i) first.set.emplace("a" + std::to_string(i), mib);
  SKV_ASSERT_OK(store_->PatchProfile(id, first));
  ProfilePatch second;
  for (int i = 0; i < 9; ++i) second.set.emplace("b" + std::to_string(i), mib);
  Status s = store_->PatchProfile(id, second);
  EXPECT_TRUE(s.IsInvalidArgument()) << s.ToString();
  EXPECT_NE(s.message().find("16 MiB"), std::string::npos) << s.ToString();
  auto profile = store_->GetProfile(id);
  ASSERT_TRUE(profile.ok());
  EXPECT_EQ(profile->size(), 10u);
  EXPECT_EQ(profile->count("b0"), 0u);
}

TEST_F(ProfileTest, InvalidAttributeNameIsRejected) {
  PersonId id = MakePerson("ann@x.org");
  EXPECT_TRUE(store_->PatchProfile(id, ProfilePatch{{{"", 1}}, {}}).IsInvalidArgument());
  EXPECT_TRUE(store_->PatchProfile(id, ProfilePatch{{{std::string(256, 'a'), 1}}, {}}).IsInvalidArgument());
}

TEST_F(ProfileTest, UnknownPersonIsNotFound) {
  EXPECT_TRUE(store_->GetProfile(PersonId(PersonId::Bytes{1})).status().IsNotFound());
  EXPECT_TRUE(store_->PatchProfile(PersonId(PersonId::Bytes{1}), {}).IsNotFound());
}

}  // namespace
}  // namespace shredkv
