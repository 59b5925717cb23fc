#include <gtest/gtest.h>

#include <thread>

#include "test_util.h"

namespace shredkv {
namespace {

class ExportTest : public test::StoreTest {
 protected:
  std::vector<ExportItem> ExportAll(const PersonId& id, Status* status = nullptr) {
    std::vector<ExportItem> out;
    auto it = store_->Export(id);
    for (; it->Valid(); it->Next()) out.push_back(it->value());
    if (status != nullptr) {
      *status = it->status();
    } else {
      EXPECT_TRUE(it->status().ok()) << it->status().ToString();
    }
    return out;
  }
  static std::size_t Count(const std::vector<ExportItem>& items, ExportItem::Kind k) {
    return static_cast<std::size_t>(std::count_if(items.begin(), items.end(), [&](const ExportItem& i) { return i.kind == k; }));
  }
};

TEST_F(ExportTest, YieldsEverythingHeldOnThePersonInOrder) {
  options_.iterator_batch_size = 3;
  Reopen();
  auto ann = store_->CreatePerson({{"email", "ann@x.org"}, {"phone", "+4917012345"}}, {{"name", "Ann"}});
  ASSERT_TRUE(ann.ok());
  PersonId bob = MakePerson("bob@x.org");
  for (int i = 0; i < 10; ++i) {
    SKV_ASSERT_OK(store_->AppendEvent(*ann, Event{"view", i, {{"page", i}}, {"page"}}));
    SKV_ASSERT_OK(store_->AppendEvent(bob, Event{"view", i, {}, {}}));
  }
  for (int i = 0; i < 4; ++i) SKV_ASSERT_OK(store_->Put(*ann, "orders", std::to_string(i), "o" + std::to_string(i)));
  Rectification r;
  r.profile.set = {{"name", "Anne"}};
  SKV_ASSERT_OK(store_->Rectify(*ann, r));

  auto items = ExportAll(*ann);
  ASSERT_FALSE(items.empty());
  EXPECT_EQ(items[0].kind, ExportItem::Kind::kPerson);
  EXPECT_EQ(items[0].person.id, *ann);
  EXPECT_EQ(items[0].person.key_epoch, 1u);
  EXPECT_EQ(Count(items, ExportItem::Kind::kIdentifier), 2u);
  EXPECT_EQ(Count(items, ExportItem::Kind::kProfile), 1u);
  EXPECT_EQ(Count(items, ExportItem::Kind::kEvent), 10u);
  EXPECT_EQ(Count(items, ExportItem::Kind::kRecord), 4u);
  EXPECT_EQ(Count(items, ExportItem::Kind::kAnalytics), 10u);
  // The rectification's, and one record notice a Put (each its own batch).
  EXPECT_EQ(Count(items, ExportItem::Kind::kNotice), 5u);
  for (std::size_t i = 1; i < items.size(); ++i) EXPECT_LE(items[i - 1].kind, items[i].kind);
  for (const auto& i : items) {
    if (i.kind == ExportItem::Kind::kProfile) {
      EXPECT_EQ(i.profile.at("name").as_string(), "Anne");
    }
    if (i.kind == ExportItem::Kind::kAnalytics) {
      EXPECT_EQ(i.analytics.anon_id, items[0].person.anon_id);
    }
  }
}

// Items are reused from batch to batch inside the iterator: an item shows
// only the member of its own kind; every other member is empty, so no data
// of an earlier item (an event of another kind's slot) shows through.
TEST_F(ExportTest, EachItemHoldsOnlyTheMemberOfItsKind) {
  options_.iterator_batch_size = 4;
  Reopen();
  PersonId ann = MakePerson("ann@x.org", {{"name", "Ann"}});
  for (int i = 0; i < 6; ++i) {
    SKV_ASSERT_OK(store_->AppendEvent(ann, Event{"secret_event", 100 + i, {{"p", i}}, {"p"}}));
    SKV_ASSERT_OK(store_->Put(ann, "orders", std::to_string(i), "o"));
  }
  const auto items = ExportAll(ann);
  ASSERT_EQ(Count(items, ExportItem::Kind::kEvent), 6u);
  ASSERT_EQ(Count(items, ExportItem::Kind::kRecord), 6u);
  ASSERT_EQ(Count(items, ExportItem::Kind::kAnalytics), 6u);
  using K = ExportItem::Kind;
  for (const ExportItem& i : items) {
    SCOPED_TRACE(static_cast<int>(i.kind));
    if (i.kind != K::kPerson) {
      EXPECT_TRUE(i.person.identifiers.empty() && i.person.created_ms == 0);
    }
    if (i.kind != K::kIdentifier) {
      EXPECT_TRUE(i.identifier.type.empty() && i.identifier.value.empty());
    }
    if (i.kind != K::kProfile) {
      EXPECT_TRUE(i.profile.empty());
    }
    if (i.kind != K::kEvent) {
      EXPECT_TRUE(i.event.name.empty() && i.event.category.empty() && i.event.properties.empty());
      EXPECT_EQ(i.event.ts_ms, 0);
      EXPECT_EQ(i.event.seq, 0u);
    }
    if (i.kind != K::kRecord) {
      EXPECT_TRUE(i.record.collection.empty() && i.record.value.empty());
    }
    if (i.kind != K::kAnalytics) {
      EXPECT_TRUE(i.analytics.name.empty() && i.analytics.fields.empty());
      EXPECT_EQ(i.analytics.ts_ms, 0);
    }
    if (i.kind != K::kNotice) {
      EXPECT_TRUE(i.notice.names.empty() && i.notice.cursor == 0);
    }
  }
}

TEST_F(ExportTest, EachIdentifierTypeFindsThePersonToExport) {
  auto ann = store_->CreatePerson({{"email", "ann@x.org"}, {"phone", "+4917012345"}, {"customer_id", "C1"},
                                   {"device_id", "D1"}});
  ASSERT_TRUE(ann.ok());
  for (const Identifier& id : std::vector<Identifier>{{"email", "ANN@x.org"}, {"phone", "+49 170 12345"},
                                                      {"customer_id", "C1"}, {"device_id", "D1"}}) {
    auto who = store_->Resolve(id);
    ASSERT_TRUE(who.ok()) << id.type;
    auto items = ExportAll(*who);
    ASSERT_FALSE(items.empty());
    EXPECT_EQ(items[0].person.id, *ann);
    EXPECT_EQ(Count(items, ExportItem::Kind::kIdentifier), 4u);
  }
}

TEST_F(ExportTest, EventsAppendedDuringTheExportAreNotInIt) {
  options_.iterator_batch_size = 2;
  Reopen();
  PersonId ann = MakePerson("ann@x.org");
  for (int i = 0; i < 50; ++i) SKV_ASSERT_OK(store_->AppendEvent(ann, Event{"before", i, {}, {}}));
  auto it = store_->Export(ann);
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    for (int i = 0; i < 200 && !stop.load(); ++i) {
      // Interleaved timestamps: new events sort among the old ones.
      if (!store_->AppendEvent(ann, Event{"during", i, {}, {}}).ok()) break;
    }
  });
  std::size_t events = 0, analytics = 0;
  for (; it->Valid(); it->Next()) {
    if (it->value().kind == ExportItem::Kind::kEvent) {
      EXPECT_EQ(it->value().event.name, "before");
      ++events;
    }
    if (it->value().kind == ExportItem::Kind::kAnalytics) {
      EXPECT_EQ(it->value().analytics.name, "before");
      ++analytics;
    }
  }
  stop.store(true);
  writer.join();
  EXPECT_TRUE(it->status().ok()) << it->status().ToString();
  EXPECT_EQ(events, 50u);
  EXPECT_EQ(analytics, 50u);
}

TEST_F(ExportTest, AModificationDuringTheExportStopsItWithBusy) {
  options_.iterator_batch_size = 2;
  Reopen();
  PersonId ann = MakePerson("ann@x.org");
  for (int i = 0; i < 20; ++i) SKV_ASSERT_OK(store_->AppendEvent(ann, Event{"e", i, {}, {}}));
  auto it = store_->Export(ann);
  ASSERT_TRUE(it->Valid());
  SKV_ASSERT_OK(store_->PatchProfile(ann, ProfilePatch{{{"changed", true}}, {}}));
  while (it->Valid()) it->Next();
  EXPECT_TRUE(it->status().IsBusy()) << it->status().ToString();
  // A fresh export sees the change.
  Status s;
  auto items = ExportAll(ann, &s);
  EXPECT_TRUE(s.ok());
}

TEST_F(ExportTest, ErasedOrUnknownPersonCannotBeExported) {
  PersonId ann = MakePerson("ann@x.org");
  ASSERT_TRUE(store_->Erase(ann).ok());
  Status s;
  EXPECT_TRUE(ExportAll(ann, &s).empty());
  EXPECT_TRUE(s.IsErased());
  EXPECT_TRUE(ExportAll(PersonId(PersonId::Bytes{1}), &s).empty());
  EXPECT_TRUE(s.IsNotFound());
}

}  // namespace
}  // namespace shredkv
