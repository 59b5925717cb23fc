#include <gtest/gtest.h>

#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>

#include "test_util.h"
#include "util/test_point.h"

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

// Outside audit 37b, F3: names that were not UTF-8 were stored, and the
// export turned "note\xff" and "note\xfe" both into "note\uFFFD" — a
// document its own import refused. Names are text now; values may be bytes.
TEST_F(ProfileTest, NamesThatAreNotUtf8AreRefusedForAttributesEventsAndProperties) {
  PersonId id = MakePerson("ann@x.org");
  for (const std::string& bad : {std::string("note\xff"), std::string("\xc3"), std::string("\xed\xa0\x80")}) {
    EXPECT_TRUE(store_->PatchProfile(id, ProfilePatch{{{bad, 1}}, {}}).IsInvalidArgument()) << bad;
    EXPECT_TRUE(store_->AppendEvent(id, Event{bad, 1000, {}, {}, {}}).IsInvalidArgument()) << bad;
    EXPECT_TRUE(store_->AppendEvent(id, Event{"view", 1000, {{bad, 1}}, {}, {}}).IsInvalidArgument()) << bad;
  }
  SKV_ASSERT_OK(store_->PatchProfile(id, ProfilePatch{{{"caf\xc3\xa9 \xf0\x9f\x98\x80", std::string("\xff")}}, {}}));
  SKV_ASSERT_OK(store_->AppendEvent(id, Event{"vue \xc3\xa9", 1000, {{"\xe2\x82\xac", 1}}, {}, {}}));
  EXPECT_EQ(store_->GetProfile(id)->at("caf\xc3\xa9 \xf0\x9f\x98\x80").as_string(), "\xff");
}

TEST_F(ProfileTest, UnknownPersonIsNotFound) {
  EXPECT_TRUE(store_->GetProfile(PersonId(PersonId::Bytes{1})).status().IsNotFound());
  EXPECT_TRUE(store_->PatchProfile(PersonId(PersonId::Bytes{1}), {}).IsNotFound());
}

// ---- LookupProfile: Resolve + GetProfile in one read (issue 21) -------------------

// What Resolve then GetProfile answer for `identifier`, as LookupProfile must.
Result<PersonProfile> TwoCalls(Store& store, const Identifier& identifier) {
  auto id = store.Resolve(identifier);
  if (!id.ok()) return id.status();
  auto profile = store.GetProfile(*id);
  if (!profile.ok()) return profile.status();
  return PersonProfile{*id, std::move(profile).value()};
}

void ExpectSameAnswer(Store& store, const Identifier& identifier, StatusCode expected) {
  auto two = TwoCalls(store, identifier);
  auto one = store.LookupProfile(identifier);
  const std::string what = identifier.type + ":" + identifier.value;
  ASSERT_EQ(two.status().code(), expected) << what << ": " << two.status().ToString();
  ASSERT_EQ(one.status().code(), expected) << what << ": " << one.status().ToString();
  if (!one.ok()) return;
  EXPECT_EQ(one->id, two->id) << what;
  EXPECT_EQ(one->attributes, two->attributes) << what;
}

TEST_F(ProfileTest, LookupProfileAnswersWhatResolveThenGetProfileAnswerInEveryState) {
  options_.categories = {"contact"};
  options_.attribute_categories = {{"phone", "contact"}};
  Reopen();
  PersonId ann = MakePerson("ann@x.org", {{"name", "Ann"}, {"age", 41}});
  PersonId bob = MakePerson("bob@x.org", {{"name", "Bob"}, {"phone", "+49 30 1"}});
  PersonId cat = MakePerson("cat@x.org", {{"name", "Cat"}});
  PersonId dan = MakePerson("dan@x.org", {{"name", "Dan"}});
  SKV_ASSERT_OK(store_->LinkIdentifier(ann, {"customer_id", "c-17"}));
  SKV_ASSERT_OK(store_->Restrict(ann, RestrictionSpec{true, {}, {}, "dispute"}));
  ASSERT_TRUE(store_->EraseCategory(bob, "contact").ok());  // the phone is gone, the name stays
  EraseOptions suppress;
  suppress.suppress = true;
  ASSERT_TRUE(store_->Erase(cat, suppress).ok());
  ASSERT_TRUE(store_->Erase(dan).ok());

  ExpectSameAnswer(*store_, {"email", "ann@x.org"}, StatusCode::kOk);
  ExpectSameAnswer(*store_, {"email", "  ANN@x.org "}, StatusCode::kOk);  // normalised first
  ExpectSameAnswer(*store_, {"customer_id", "c-17"}, StatusCode::kOk);
  ExpectSameAnswer(*store_, {"email", "bob@x.org"}, StatusCode::kOk);
  EXPECT_EQ(store_->LookupProfile({"email", "bob@x.org"})->attributes, (Attributes{{"name", "Bob"}}));
  ExpectSameAnswer(*store_, {"email", "cat@x.org"}, StatusCode::kSuppressed);
  const StatusCode dan_code = store_->Resolve({"email", "dan@x.org"}).status().code();
  EXPECT_TRUE(dan_code == StatusCode::kErased || dan_code == StatusCode::kNotFound);
  ExpectSameAnswer(*store_, {"email", "dan@x.org"}, dan_code);
  ExpectSameAnswer(*store_, {"email", "nobody@x.org"}, StatusCode::kNotFound);
  ExpectSameAnswer(*store_, {"no_such_type", "x"}, StatusCode::kInvalidArgument);
  SKV_ASSERT_OK(store_->UnlinkIdentifier(ann, {"customer_id", "c-17"}));
  ExpectSameAnswer(*store_, {"customer_id", "c-17"}, StatusCode::kNotFound);
  Reopen();
  ExpectSameAnswer(*store_, {"email", "ann@x.org"}, StatusCode::kOk);
  ASSERT_TRUE(store_->Close().ok());
  EXPECT_FALSE(store_->LookupProfile({"email", "ann@x.org"}).ok());
}

// A lookup that finds the person's stripe held by an erasure does not wait
// for it inside its `data` read: it leaves the read (the point
// lookup_profile.stripe_busy), reads again the two-call way, which waits,
// and answers after the erasure.
std::mutex g_lookup_mu;
std::condition_variable g_lookup_cv;
bool g_stripe_busy_seen = false;
std::function<void()> g_while_people_locked;

void LookupDuringErasureHook(std::string_view name) {
  if (name == "erase.people_locked" && g_while_people_locked) {
    auto fn = std::move(g_while_people_locked);
    g_while_people_locked = nullptr;
    fn();
  } else if (name == "lookup_profile.stripe_busy") {
    std::lock_guard lock(g_lookup_mu);
    g_stripe_busy_seen = true;
    g_lookup_cv.notify_all();
  }
}

TEST_F(ProfileTest, LookupProfileDuringAnErasureOfThePersonAnswersAfterIt) {
  PersonId eve = MakePerson("eve@x.org", {{"name", "Eve"}});
  std::optional<Result<PersonProfile>> seen;
  std::thread lookup;
  bool left_its_read = false;
  g_while_people_locked = [&] {
    lookup = std::thread([&] { seen = store_->LookupProfile({"email", "eve@x.org"}); });
    std::unique_lock lock(g_lookup_mu);  // the erasure holds Eve's stripe until this returns
    left_its_read = g_lookup_cv.wait_for(lock, std::chrono::seconds(10), [] { return g_stripe_busy_seen; });
  };
  util::SetTestPointHook(&LookupDuringErasureHook);
  EraseOptions suppress;
  suppress.suppress = true;
  auto erased = store_->Erase(eve, suppress);
  ASSERT_TRUE(lookup.joinable()) << "the erasure never reached its test point";
  lookup.join();
  util::SetTestPointHook(nullptr);
  ASSERT_TRUE(erased.ok()) << erased.status().ToString();
  EXPECT_TRUE(left_its_read) << "the lookup did not take the fallback while the erasure held the stripe";
  ASSERT_TRUE(seen.has_value());
  EXPECT_TRUE(seen->status().IsSuppressed() || seen->status().IsErased()) << seen->status().ToString();
}
}  // namespace
}  // namespace shredkv
