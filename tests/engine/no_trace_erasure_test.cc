// Erasure leaves no trace (issue 15): after erase → purge → rotate → compact
// no page of either file — leaf, branch, overflow or free — holds an erased
// person's ID, the (ts, seq) of any of their event rows, or their identifier
// hashes (the person ID may stay in `keys`, in the erasure fence); and no
// join of analytics rows with event rows, on keys, times or sequence
// numbers, links any analytics row to a person in a live store.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <set>

#include "codec/row_codec.h"
#include "engine/store_impl.h"
#include "test_util.h"
#include "util/coding.h"

namespace shredkv {
namespace {

// LMDB page header: pgno (8 bytes), pad (2), flags (2). The page size of
// these stores is the OS page size.
constexpr std::size_t kPageSize = 4096;

std::string PageKind(const std::string& file, std::size_t offset) {
  const std::size_t page = offset / kPageSize * kPageSize;
  if (page + 12 > file.size()) return "?";
  const auto flags = static_cast<std::uint16_t>(static_cast<unsigned char>(file[page + 10]) |
                                                static_cast<unsigned char>(file[page + 11]) << 8);
  if (flags & 0x01) return "branch";
  if (flags & 0x02) return "leaf";
  if (flags & 0x04) return "overflow";
  if (flags & 0x08) return "meta";
  return "free/other";
}

// Every place `needle` occurs in `file`, as "page N (kind)".
std::vector<std::string> Occurrences(const std::string& file, const std::string& needle) {
  std::vector<std::string> out;
  for (std::size_t at = file.find(needle); at != std::string::npos; at = file.find(needle, at + 1)) {
    out.push_back("page " + std::to_string(at / kPageSize) + " (" + PageKind(file, at) + ")");
  }
  return out;
}

struct Trace {
  PersonId person;
  std::vector<std::string> event_tails;  // ordered(ts) ‖ seq of each event row
  std::vector<std::string> ident_hashes;
};

class NoTraceErasureTest : public test::StoreTest,
                           public ::testing::WithParamInterface<AnalyticsOnErase> {
 protected:
  engine::StoreImpl& impl() { return *dynamic_cast<engine::StoreImpl*>(store_.get()); }

  // What the data file holds of `person` before erasure.
  Trace TraceOf(const PersonId& person) {
    Trace t{person, {}, {}};
    Status s = impl().data().View([&](storage::ReadTxn& txn) -> Status {
      for (auto [table, tails] : {std::pair{impl().tables().events, true},
                                  std::pair{impl().tables().ident_by_person, false}}) {
        auto cursor = txn.OpenCursor(table);
        if (!cursor.ok()) return cursor.status();
        auto& c = **cursor;
        for (Status m = c.Seek(person.view()); m.ok() && c.Valid(); m = c.Next()) {
          if (c.key().substr(0, PersonId::kSize) != person.view()) break;
          (tails ? t.event_tails : t.ident_hashes).emplace_back(c.key().substr(PersonId::kSize));
        }
      }
      return Status::OK();
    });
    EXPECT_TRUE(s.ok()) << s.ToString();
    return t;
  }
};

TEST_P(NoTraceErasureTest, NoPageOfEitherFileHoldsAnErasedPersonAfterPurgeRotateCompact) {
  // 1,500 people with events and records, 100 erased: enough rows that the
  // erased people's keys were separators in branch pages (the copy that
  // mdb_env_copy2(MDB_CP_COMPACT) makes kept 39 of 100 person IDs).
  constexpr int kPeople = 1500;
  constexpr int kErased = 100;
  std::vector<PersonId> people;
  WriteBatch batch;
  for (int i = 0; i < kPeople; ++i) {
    auto id = store_->CreatePerson({{"email", "p" + std::to_string(i) + "@x.org"},
                                    {"phone", "+49170" + std::to_string(1000000 + i)}},
                                   {{"name", "Person " + std::to_string(i)}});
    ASSERT_TRUE(id.ok()) << id.status().ToString();
    people.push_back(*id);
    for (int e = 0; e < 4; ++e) {
      batch.AppendEvent(*id, Event{e % 2 ? "purchase" : "visit", 1'700'000'000'000 + i * 1000 + e,
                                   {{"amount", e + i}, {"path", "/p/" + std::to_string(e)}}, {"amount"}});
    }
    batch.Put(*id, "prefs", "theme", "dark");
  }
  SKV_ASSERT_OK(store_->Write(batch));

  std::vector<Trace> traces;
  std::vector<PersonId> victims;
  for (int i = 0; i < kErased; ++i) {
    const PersonId& p = people[static_cast<std::size_t>(i * (kPeople / kErased) + 7)];
    victims.push_back(p);
    traces.push_back(TraceOf(p));
    ASSERT_EQ(traces.back().event_tails.size(), 4u);
    ASSERT_EQ(traces.back().ident_hashes.size(), 2u);
  }
  EraseOptions options;
  options.analytics = GetParam();
  auto receipt = store_->Erase(victims, options);
  ASSERT_TRUE(receipt.ok()) << receipt.status().ToString();
  auto purged = store_->Purge(1'000'000);
  ASSERT_TRUE(purged.ok()) << purged.status().ToString();
  ASSERT_EQ(purged->people_pending, 0u);
  // Erasure notices name the person for the recipients (Art. 19) until they
  // are acknowledged.
  auto feed = store_->ReadFeed(100'000);
  ASSERT_TRUE(feed.ok());
  ASSERT_FALSE(feed->empty());
  SKV_ASSERT_OK(store_->AckFeed(feed->back().cursor));
  ASSERT_TRUE(store_->RotateEpoch().ok());
  auto compacted = store_->CompactData();
  ASSERT_TRUE(compacted.ok()) << compacted.status().ToString();
  EXPECT_TRUE(test::VerifiesClean(*store_));
  EXPECT_EQ(store_->GetErasure(receipt->request_id)->level, ErasureLevel::kPurged);
  const auto stats = store_->Stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->analytics_rows,
            GetParam() == AnalyticsOnErase::kDelete ? 4u * (kPeople - kErased) : 4u * kPeople);
  SKV_ASSERT_OK(store_->Close());
  store_.reset();

  const std::string data = test::ReadFile(dir_.Sub("data/data.mdb"));
  const std::string keys = test::ReadFile(dir_.Sub("keys/data.mdb"));
  ASSERT_GT(data.size(), 100u * kPageSize);
  int found = 0;
  for (const Trace& t : traces) {
    const std::string id(t.person.view());
    for (const std::string& where : Occurrences(data, id)) {
      ADD_FAILURE() << "person " << t.person.ToHex() << " in data.mdb " << where;
      ++found;
    }
    for (const std::string& tail : t.event_tails) {
      for (const std::string& file : {data, keys}) {
        for (const std::string& where : Occurrences(file, tail)) {
          ADD_FAILURE() << "event (ts, seq) of " << t.person.ToHex() << " at " << where;
          ++found;
        }
      }
    }
    for (const std::string& hash : t.ident_hashes) {
      for (const std::string& file : {data, keys}) {
        for (const std::string& where : Occurrences(file, hash)) {
          ADD_FAILURE() << "identifier hash of " << t.person.ToHex() << " at " << where;
          ++found;
        }
      }
    }
  }
  EXPECT_EQ(found, 0);
  // The scan can see: a surviving person's ID and event tail are in the file.
  const std::string survivor(people[0].view());
  EXPECT_FALSE(Occurrences(data, survivor).empty());
  // The fence keeps the person ID in `keys` (documented, docs/security.md §6).
  EXPECT_FALSE(Occurrences(keys, std::string(victims[0].view())).empty());
}

INSTANTIATE_TEST_SUITE_P(AnalyticsModes, NoTraceErasureTest,
                         ::testing::Values(AnalyticsOnErase::kKeep, AnalyticsOnErase::kUnlink,
                                           AnalyticsOnErase::kDelete),
                         [](const auto& param_info) { return std::string(AnalyticsOnEraseName(param_info.param)); });

class JoinAttackTest : public test::StoreTest {
 protected:
  engine::StoreImpl& impl() { return *dynamic_cast<engine::StoreImpl*>(store_.get()); }

  struct Rows {
    // event key tail (ordered ts ‖ seq) → person
    std::map<std::string, PersonId> events;
    std::vector<std::pair<std::string, std::string>> analytics;  // key, stored value
    std::vector<std::pair<std::string, std::string>> staged;     // key (event seq), sealed value
  };
  Rows ReadRows() {
    Rows rows;
    Status s = impl().data().View([&](storage::ReadTxn& txn) -> Status {
      auto ev = txn.OpenCursor(impl().tables().events);
      if (!ev.ok()) return ev.status();
      for (Status m = (*ev)->SeekToFirst(); m.ok() && (*ev)->Valid(); m = (*ev)->Next()) {
        PersonId::Bytes b;
        std::memcpy(b.data(), (*ev)->key().data(), b.size());
        rows.events.emplace(std::string((*ev)->key().substr(PersonId::kSize)), PersonId(b));
      }
      auto an = txn.OpenCursor(impl().tables().analytics);
      if (!an.ok()) return an.status();
      for (Status m = (*an)->SeekToFirst(); m.ok() && (*an)->Valid(); m = (*an)->Next()) {
        rows.analytics.emplace_back((*an)->key(), (*an)->value());
      }
      auto st = txn.OpenCursor(impl().tables().analytics_staged);
      if (!st.ok()) return st.status();
      for (Status m = (*st)->SeekToFirst(); m.ok() && (*st)->Valid(); m = (*st)->Next()) {
        rows.staged.emplace_back((*st)->key(), (*st)->value());
      }
      return Status::OK();
    });
    EXPECT_TRUE(s.ok()) << s.ToString();
    return rows;
  }

  // The attacker holding data.mdb: links an analytics row to a person when
  // the row's key or the engine's part of its value (the anonymous ID, the
  // first 16 bytes; the rest is the application's declared fields) contains
  // the event key's exact ts or its seq, at any offset. Returns the people
  // linked to at least one row.
  static std::set<PersonId> Join(const Rows& rows) {
    std::set<PersonId> linked;
    std::map<std::string, std::set<PersonId>> by_ts, by_seq;
    for (const auto& [tail, person] : rows.events) {
      by_ts[tail.substr(0, 8)].insert(person);
      by_seq[tail.substr(8, 8)].insert(person);
    }
    for (const auto& [key, value] : rows.analytics) {
      const std::string row = key + value.substr(0, std::min<std::size_t>(value.size(), AnonymousId::kSize));
      for (std::size_t i = 0; i + 8 <= row.size(); ++i) {
        const std::string window = row.substr(i, 8);
        for (const auto* index : {&by_ts, &by_seq}) {
          auto it = index->find(window);
          if (it != index->end() && it->second.size() == 1) linked.insert(*it->second.begin());
        }
      }
    }
    return linked;
  }
};

TEST_F(JoinAttackTest, NoAnalyticsRowSharesKeyTimeOrSequenceWithAnEventRow) {
  std::vector<PersonId> people;
  WriteBatch batch;
  for (int i = 0; i < 200; ++i) {
    people.push_back(MakePerson("p" + std::to_string(i) + "@x.org"));
    for (int e = 0; e < 10; ++e) {
      // Distinct, non-round times: an exact-time join would be unambiguous.
      batch.AppendEvent(people.back(), Event{"visit", 1'700'000'000'000 + i * 7919 + e * 104'729, {{"n", e}}, {"n"}});
    }
  }
  SKV_ASSERT_OK(store_->Write(batch));
  // Staged first: keyed by the event's seq (the join is by design) but
  // sealed, so the row's anonymous ID, name and fields are not readable.
  Rows rows = ReadRows();
  ASSERT_EQ(rows.staged.size(), 2000u);
  EXPECT_TRUE(rows.analytics.empty());
  std::set<std::string> anon_ids;
  for (const PersonId& p : people) {
    auto exported = store_->Export(p);
    for (; exported->Valid(); exported->Next()) {
      if (exported->value().kind == ExportItem::Kind::kAnalytics) {
        anon_ids.insert(std::string(exported->value().analytics.anon_id.view()));
      }
    }
  }
  ASSERT_EQ(anon_ids.size(), 200u);  // export finds every person's staged rows
  for (const auto& [key, value] : rows.staged) {
    EXPECT_EQ(value.find("visit"), std::string::npos);
    for (const std::string& anon : anon_ids) ASSERT_EQ(value.find(anon), std::string::npos);
  }
  // Materialised (the events' hours have ended): now the attacker's join.
  SKV_ASSERT_OK(store_->RunMaintenance());
  rows = ReadRows();
  ASSERT_EQ(rows.events.size(), 2000u);
  ASSERT_EQ(rows.analytics.size(), 2000u);
  EXPECT_TRUE(rows.staged.empty());
  // The attack works on the format-2 layout: there the analytics key was
  // the event key's tail itself, and every person was linked.
  Rows v2 = rows;
  v2.analytics.clear();
  for (const auto& [tail, person] : rows.events) v2.analytics.emplace_back(tail, "");
  EXPECT_EQ(Join(v2).size(), 200u);
  EXPECT_TRUE(Join(rows).empty()) << Join(rows).size() << " people linked";
  for (const auto& [key, value] : rows.analytics) {
    EXPECT_EQ(rows.events.count(key.substr(0, 16)), 0u);
    EXPECT_EQ(key.size(), codec::kAnalyticsKeySize);
  }

  // The same after erasure, before the purge (the event rows are still
  // there) and in unlink mode.
  auto r = store_->Erase(std::vector<PersonId>(people.begin(), people.begin() + 50), EraseOptions{});
  ASSERT_TRUE(r.ok());
  EraseOptions unlink;
  unlink.analytics = AnalyticsOnErase::kUnlink;
  ASSERT_TRUE(store_->Erase(std::vector<PersonId>(people.begin() + 50, people.begin() + 100), unlink).ok());
  rows = ReadRows();
  ASSERT_EQ(rows.events.size(), 2000u);  // not purged yet
  EXPECT_TRUE(Join(rows).empty());
}

TEST_F(JoinAttackTest, RowOrderWithinABucketDoesNotFollowInsertionOrder) {
  // 1,000 events of several people in one hour; the rows' key order must
  // not follow the order they were written in (Kendall's tau near 0; the
  // format-2 layout had tau = 1).
  std::vector<PersonId> people;
  for (int i = 0; i < 20; ++i) people.push_back(MakePerson("p" + std::to_string(i) + "@x.org"));
  constexpr int kRows = 1000;
  for (int i = 0; i < kRows; ++i) {
    SKV_ASSERT_OK(store_->AppendEvent(people[static_cast<std::size_t>(i % 20)],
                                      Event{"visit", 1'699'999'200'000 + i, {{"i", i}}, {"i"}}));
  }
  std::vector<std::int64_t> order;
  auto it = store_->ScanAnalytics({});
  for (; it->Valid(); it->Next()) order.push_back(it->value().fields.at("i").as_int64());
  ASSERT_TRUE(it->status().ok());
  ASSERT_EQ(order.size(), static_cast<std::size_t>(kRows));
  std::int64_t concordant = 0, discordant = 0;
  for (std::size_t a = 0; a < order.size(); ++a) {
    for (std::size_t b = a + 1; b < order.size(); ++b) (order[a] < order[b] ? concordant : discordant)++;
  }
  const double tau = static_cast<double>(concordant - discordant) / static_cast<double>(concordant + discordant);
  // For a random order tau has a standard deviation of about 0.02 here.
  EXPECT_LT(std::abs(tau), 0.15) << "tau " << tau;
}

}  // namespace
}  // namespace shredkv
