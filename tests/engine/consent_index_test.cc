// The consent index (engine/consent_index.h): Store::PeopleWithConsent finds
// the people who objected to (or granted) a purpose, follows every change,
// leaves erased people out, is cleaned by the purge, and is built once for
// a store made before it.
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include "engine/store_impl.h"
#include "test_util.h"

namespace shredkv {
namespace {

class ConsentIndexTest : public test::StoreTest {
 protected:
  std::set<PersonId> People(const std::string& purpose, bool granted) {
    std::set<PersonId> out;
    auto it = store_->PeopleWithConsent(purpose, granted);
    for (; it->Valid(); it->Next()) out.insert(it->value());
    EXPECT_TRUE(it->status().ok()) << it->status().ToString();
    return out;
  }
  std::uint64_t IndexEntries() {
    auto& impl = *dynamic_cast<engine::StoreImpl*>(store_.get());
    std::uint64_t n = 0;
    SKV_EXPECT_OK(impl.data().View([&](storage::ReadTxn& txn) -> Status {
      auto c = txn.Count(impl.tables().consent_by_purpose);
      if (!c.ok()) return c.status();
      n = *c;
      return Status::OK();
    }));
    return n;
  }
  std::vector<PersonId> MakePeople(int n) {
    std::vector<PersonId> people;
    for (int i = 0; i < n; ++i) people.push_back(MakePerson("p" + std::to_string(i) + "@x.org"));
    return people;
  }
};

TEST_F(ConsentIndexTest, FindsWhoObjectedAndFollowsEveryChange) {
  const auto p = MakePeople(10);
  SKV_ASSERT_OK(store_->SetConsent({p[0], p[1], p[2]}, "marketing", false, "settings page"));
  SKV_ASSERT_OK(store_->SetConsent({p[3], p[4]}, "marketing", true, "signup"));
  SKV_ASSERT_OK(store_->SetConsent({p[5]}, "personalization", false, "settings page"));
  EXPECT_EQ(People("marketing", false), (std::set<PersonId>{p[0], p[1], p[2]}));
  EXPECT_EQ(People("marketing", true), (std::set<PersonId>{p[3], p[4]}));
  EXPECT_EQ(People("personalization", false), (std::set<PersonId>{p[5]}));
  EXPECT_TRUE(People("support", false).empty());
  // A later decision replaces the earlier one.
  SKV_ASSERT_OK(store_->SetConsent({p[0]}, "marketing", true, "changed their mind"));
  SKV_ASSERT_OK(store_->SetConsent({p[3]}, "marketing", false, "objection"));
  EXPECT_EQ(People("marketing", false), (std::set<PersonId>{p[1], p[2], p[3]}));
  EXPECT_EQ(People("marketing", true), (std::set<PersonId>{p[0], p[4]}));
  EXPECT_EQ(IndexEntries(), 6u);  // one per (person, purpose) decided
  // Erased: left out at once; the purge removes the entries.
  ASSERT_TRUE(store_->Erase({p[1], p[4]}, EraseOptions{}).ok());
  EXPECT_EQ(People("marketing", false), (std::set<PersonId>{p[2], p[3]}));
  EXPECT_EQ(People("marketing", true), (std::set<PersonId>{p[0]}));
  ASSERT_TRUE(store_->Purge(1000000).ok());
  EXPECT_EQ(IndexEntries(), 4u);
  auto bad = store_->PeopleWithConsent("not_registered", false);
  EXPECT_FALSE(bad->Valid());
  EXPECT_TRUE(bad->status().IsInvalidArgument());
  auto report = store_->Verify();
  ASSERT_TRUE(report.ok());
  EXPECT_TRUE(report->ok());
}

TEST_F(ConsentIndexTest, AStoreMadeBeforeTheIndexGetsItBuiltAtItsFirstWritableOpen) {
  const auto p = MakePeople(25);
  for (std::size_t i = 0; i < p.size(); ++i) {
    SKV_ASSERT_OK(store_->SetConsent({p[i]}, "marketing", i % 3 != 0, "form"));
  }
  const std::set<PersonId> objected = People("marketing", false);
  ASSERT_EQ(objected.size(), 9u);
  // Back to the state of a store made before the index: no entries, no marker.
  SKV_ASSERT_OK(store_->Close());
  store_.reset();
  {
    storage::EnvOptions o;
    o.path = dir_.Sub("data");
    o.tables = {"meta", "consent_by_purpose"};
    auto env = storage::Environment::Open(o);
    ASSERT_TRUE(env.ok()) << env.status().ToString();
    SKV_ASSERT_OK((*env)->Update([&](storage::WriteTxn& txn) -> Status {
      if (Status c = txn.Clear((*env)->table("consent_by_purpose")); !c.ok()) return c;
      return txn.Delete((*env)->table("meta"), "consent_index");
    }));
  }
  // Read-only, the index cannot be built: a clear error, not a wrong answer.
  options_.read_only = true;
  options_.create_if_missing = false;
  Reopen();
  auto it = store_->PeopleWithConsent("marketing", false);
  EXPECT_FALSE(it->Valid());
  EXPECT_TRUE(it->status().IsFailedPrecondition()) << it->status().ToString();
  it.reset();
  options_.read_only = false;
  Reopen();
  EXPECT_EQ(People("marketing", false), objected);
  EXPECT_EQ(IndexEntries(), 25u);
}

}  // namespace
}  // namespace shredkv
