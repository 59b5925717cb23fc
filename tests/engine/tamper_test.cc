// Stored bytes moved or altered behind the engine's back are detected:
// sealed rows fail authentication, plaintext rows fail their checksum.
#include <gtest/gtest.h>

#include <chrono>
#include <mutex>
#include <thread>

#include "codec/row_codec.h"
#include "storage/environment.h"
#include "test_util.h"

namespace shredkv {
namespace {

class TamperTest : public test::StoreTest {
 protected:
  // Runs `fn` on the closed store's data (or keys) environment.
  void EditEnv(const std::string& which, const std::function<Status(storage::Environment&)>& fn) {
    SKV_ASSERT_OK(store_->Close());
    store_.reset();
    storage::EnvOptions o;
    o.path = dir_.Sub(which);
    o.tables = which == "data" ? std::vector<std::string>{"meta", "people", "ident", "ident_by_person",
                                                          "profiles", "events", "records", "analytics",
                                                          "analytics_staged"}
                               : std::vector<std::string>{"meta", "epochs", "deks", "fences"};
    auto env = storage::Environment::Open(o);
    ASSERT_TRUE(env.ok()) << env.status().ToString();
    SKV_ASSERT_OK(fn(**env));
    env->reset();
    Reopen();
  }

  static Status CopyRow(storage::Environment& env, const std::string& table, const std::string& from,
                        const std::string& to) {
    storage::Table t = env.table(table);
    return env.Update([&](storage::WriteTxn& txn) {
      std::string_view v;
      if (Status g = txn.Get(t, from, &v); !g.ok()) return g;
      std::string copy(v);
      return txn.Put(t, to, copy);
    });
  }

  static Status FlipLastByteOfEveryRow(storage::Environment& env, const std::string& table) {
    storage::Table t = env.table(table);
    return env.Update([&](storage::WriteTxn& txn) -> Status {
      std::vector<std::pair<std::string, std::string>> rows;
      auto c = txn.OpenCursor(t);
      if (!c.ok()) return c.status();
      for (Status m = (*c)->SeekToFirst(); (*c)->Valid(); m = (*c)->Next()) {
        rows.emplace_back(std::string((*c)->key()), std::string((*c)->value()));
      }
      c->reset();
      for (auto& [k, v] : rows) {
        v.back() = static_cast<char>(v.back() ^ 0x10);
        if (Status p = txn.Put(t, k, v); !p.ok()) return p;
      }
      return Status::OK();
    });
  }
};

TEST_F(TamperTest, ProfileCopiedToAnotherPersonFailsAuthentication) {
  PersonId ann = MakePerson("ann@x.org", {{"name", "Ann"}});
  PersonId bob = MakePerson("bob@x.org", {{"name", "Bob"}});
  EditEnv("data", [&](storage::Environment& env) {
    return CopyRow(env, "profiles", codec::ProfileKey(ann, 0), codec::ProfileKey(bob, 0));
  });
  EXPECT_TRUE(store_->GetProfile(bob).status().IsAuthenticationFailed());
  EXPECT_EQ(store_->GetProfile(ann)->at("name").as_string(), "Ann");
}

TEST_F(TamperTest, EventMovedToAnotherKeyFailsAuthentication) {
  PersonId ann = MakePerson("ann@x.org");
  SKV_ASSERT_OK(store_->AppendEvent(ann, Event{"secret", 100, {}, {}}));
  std::uint64_t seq = 0;
  {
    auto it = store_->ScanEvents(ann, {});
    ASSERT_TRUE(it->Valid());
    seq = it->value().seq;
  }
  EditEnv("data", [&](storage::Environment& env) {
    return CopyRow(env, "events", codec::EventKey(ann, 100, seq), codec::EventKey(ann, 200, seq));
  });
  auto it = store_->ScanEvents(ann, TimeRange{150, 300});
  EXPECT_FALSE(it->Valid());
  EXPECT_TRUE(it->status().IsAuthenticationFailed()) << it->status().ToString();
}

TEST_F(TamperTest, WrappedKeyCopiedToAnotherPersonFailsAuthentication) {
  PersonId ann = MakePerson("ann@x.org", {{"name", "Ann"}});
  PersonId bob = MakePerson("bob@x.org", {{"name", "Bob"}});
  EditEnv("keys", [&](storage::Environment& env) {
    return CopyRow(env, "deks", codec::DekKey(ann, 0), codec::DekKey(bob, 0));
  });
  EXPECT_TRUE(store_->GetProfile(bob).status().IsAuthenticationFailed());
}

// A person whose rows are in `data` but whose key is gone from `keys` with
// no erasure fence (a damaged `deks` page, a keys file from another copy)
// is damage, not "no person": answering NotFound would tell an erasure
// request there is nothing to erase while the person's rows are still
// there. A person ID that names no one is still NotFound.
TEST_F(TamperTest, APersonWhoseKeyIsGoneWithoutAnErasureIsCorruptionNotNotFound) {
  PersonId ann = MakePerson("ann@x.org", {{"name", "Ann"}});
  PersonId bob = MakePerson("bob@x.org", {{"name", "Bob"}});
  // Closing adopts both pooled keys: each is a `deks` row now.
  EditEnv("keys", [&](storage::Environment& env) {
    return env.Update([&](storage::WriteTxn& txn) { return txn.Delete(env.table("deks"), codec::DekKey(bob, 0)); });
  });
  auto expect_corruption = [&](const Status& s, const char* what) {
    EXPECT_TRUE(s.IsCorruption()) << what << ": " << s.ToString();
  };
  expect_corruption(store_->GetPerson(bob).status(), "GetPerson");
  expect_corruption(store_->GetProfile(bob).status(), "GetProfile");
  expect_corruption(store_->Resolve(Identifier{"email", "bob@x.org"}).status(), "Resolve");
  auto exported = store_->Export(bob);
  EXPECT_FALSE(exported->Valid());
  expect_corruption(exported->status(), "Export");
  expect_corruption(store_->Erase(bob).status(), "Erase");
  EXPECT_TRUE(store_->GetPerson(PersonId::FromHex("07070707070707070707070707070707").value()).status().IsNotFound());
  EXPECT_EQ(store_->GetProfile(ann)->at("name").as_string(), "Ann");
}

TEST_F(TamperTest, FlippedCiphertextByteFailsAuthentication) {
  PersonId ann = MakePerson("ann@x.org", {{"name", "Ann"}});
  SKV_ASSERT_OK(store_->Put(ann, "orders", "1", "book"));
  EditEnv("data", [&](storage::Environment& env) {
    Status s = FlipLastByteOfEveryRow(env, "profiles");
    return s.ok() ? FlipLastByteOfEveryRow(env, "records") : s;
  });
  EXPECT_TRUE(store_->GetProfile(ann).status().IsAuthenticationFailed());
  EXPECT_TRUE(store_->Get(ann, "orders", "1").status().IsAuthenticationFailed());
}

TEST_F(TamperTest, CorruptAnalyticsAndIndexRowsAreCorruption) {
  PersonId ann = MakePerson("ann@x.org");
  SKV_ASSERT_OK(store_->AppendEvent(ann, Event{"e", 1, {}, {}}));
  SKV_ASSERT_OK(store_->RunMaintenance());  // the row's hour has ended: materialised
  ASSERT_EQ(store_->Stats()->analytics_staged, 0u);
  EditEnv("data", [&](storage::Environment& env) {
    Status s = FlipLastByteOfEveryRow(env, "analytics");
    return s.ok() ? FlipLastByteOfEveryRow(env, "ident") : s;
  });
  auto it = store_->ScanAnalytics({});
  EXPECT_FALSE(it->Valid());
  EXPECT_TRUE(it->status().IsCorruption()) << it->status().ToString();
  EXPECT_TRUE(store_->Resolve({"email", "ann@x.org"}).status().IsCorruption());
}

TEST_F(TamperTest, AStagedAnalyticsRowThatFailsAuthenticationIsNeverMaterialised) {
  PersonId ann = MakePerson("ann@x.org");
  SKV_ASSERT_OK(store_->AppendEvent(ann, Event{"e", 1, {}, {}}));
  ASSERT_EQ(store_->Stats()->analytics_staged, 1u);
  EditEnv("data", [&](storage::Environment& env) { return FlipLastByteOfEveryRow(env, "analytics_staged"); });
  auto it = store_->ScanAnalytics({});
  EXPECT_FALSE(it->Valid());
  EXPECT_TRUE(it->status().IsAuthenticationFailed()) << it->status().ToString();
  EXPECT_TRUE(store_->RunMaintenance().IsAuthenticationFailed());
  EXPECT_EQ(store_->Stats()->analytics_staged, 1u);  // nothing moved
  auto report = store_->Verify();
  ASSERT_TRUE(report.ok());
  ASSERT_FALSE(report->ok());
  EXPECT_NE(report->problems[0].find("staged analytics row"), std::string::npos) << report->problems[0];
}

// Issue 22: a background maintenance error used to be thrown away. It now
// reaches the listeners (OnBackgroundError, and the failed job) and the log.
TEST_F(TamperTest, ABackgroundMaintenanceErrorReachesTheListenersAndTheLog) {
  class Errors : public EventListener, public Logger {
   public:
    void OnBackgroundError(const Status& s) override {
      std::lock_guard lock(mu);
      codes.push_back(s.code());
    }
    void OnMaintenanceCompleted(const MaintenanceInfo& info) override {
      std::lock_guard lock(mu);
      if (info.background && !info.status.ok()) failed_jobs.push_back(std::string(MaintenanceJobName(info.job)));
    }
    void Log(LogLevel level, std::string_view message) override {
      std::lock_guard lock(mu);
      if (level == LogLevel::kError) errors.emplace_back(message);
    }
    std::mutex mu;
    std::vector<StatusCode> codes;
    std::vector<std::string> failed_jobs, errors;
  };
  PersonId ann = MakePerson("ann@x.org");
  SKV_ASSERT_OK(store_->AppendEvent(ann, Event{"e", 1, {}, {}}));  // its hour ended long ago
  auto errors = std::make_shared<Errors>();
  options_.listeners = {errors};
  options_.logger = errors;
  options_.background_maintenance_ms = 10;
  EditEnv("data", [&](storage::Environment& env) { return FlipLastByteOfEveryRow(env, "analytics_staged"); });
  for (int i = 0; i < 1000; ++i) {
    {
      std::lock_guard lock(errors->mu);
      if (!errors->codes.empty()) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  store_.reset();  // stops the thread
  std::lock_guard lock(errors->mu);
  ASSERT_FALSE(errors->codes.empty()) << "no background error reported within 10 s";
  EXPECT_EQ(errors->codes[0], StatusCode::kAuthenticationFailed);
  ASSERT_FALSE(errors->failed_jobs.empty());
  EXPECT_EQ(errors->failed_jobs[0], "analytics");
  bool logged = false;
  for (const std::string& e : errors->errors) logged |= e.find("background maintenance failed") != std::string::npos;
  EXPECT_TRUE(logged);
}

// Outside audit 35a, F1: one byte flipped in a checksummed clear row that
// Verify did not open — a `data` meta row, the change feed's floor row, a
// fence or an erasure request in the keys file — left Verify reporting a
// healthy store while Stats, sweeps, notice-writing writes, GetErasure or
// ReadErasureLog failed. Each is reported now; flipped back, the store
// verifies clean again.
TEST_F(TamperTest, VerifyReportsADamagedMetaFloorFenceOrRequestRow) {
  RetentionRules rules;
  rules.events["e"] = 60 * 60 * 1000;
  SKV_ASSERT_OK(store_->SetRetention(rules));
  PersonId ann = MakePerson("ann@x.org");
  PersonId bob = MakePerson("bob@x.org");
  SKV_ASSERT_OK(store_->AppendEvent(ann, Event{"e", 1, {}, {}}));  // expired at once
  auto swept = store_->Sweep(1000);
  ASSERT_TRUE(swept.ok()) << swept.status().ToString();
  ASSERT_EQ(swept->events_deleted, 1u);
  SKV_ASSERT_OK(store_->PatchProfile(ann, ProfilePatch{{{"name", Value("Ann")}}, {}}));
  auto feed = store_->ReadFeed(10);
  ASSERT_TRUE(feed.ok() && !feed->empty());
  SKV_ASSERT_OK(store_->AckFeed(feed->back().cursor));
  EraseOptions erase;
  erase.request_id = "req-1";
  ASSERT_TRUE(store_->Erase(bob, erase).ok());
  auto clean = store_->Verify();
  ASSERT_TRUE(clean.ok());
  ASSERT_TRUE(clean->ok()) << clean->problems.front();

  struct Target {
    const char* env;
    const char* table;
    std::string key;
    const char* named;  // in the problem reported
  };
  const Target targets[] = {{"data", "meta", "retention_counters", "meta"},
                            {"data", "outbox", std::string(8, '\0'), "change feed floor"},
                            {"keys", "fences", std::string(bob.view()), "fences"},
                            {"keys", "requests", "req-1", "requests"}};
  auto flip = [&](const Target& t) {
    SKV_ASSERT_OK(store_->Close());
    store_.reset();
    storage::EnvOptions o;
    o.path = dir_.Sub(t.env);
    o.tables = {t.table};
    auto env = storage::Environment::Open(o);
    ASSERT_TRUE(env.ok()) << env.status().ToString();
    const storage::Table table = (*env)->table(t.table);
    SKV_ASSERT_OK((*env)->Update([&](storage::WriteTxn& txn) -> Status {
      std::string_view v;
      if (Status g = txn.Get(table, t.key, &v); !g.ok()) return g;
      std::string row(v);
      row.back() = static_cast<char>(row.back() ^ 0x10);
      return txn.Put(table, t.key, row);
    }));
    env->reset();
    Reopen();
  };
  for (const Target& t : targets) {
    SCOPED_TRACE(std::string(t.env) + "/" + t.table);
    flip(t);
    auto report = store_->Verify();
    ASSERT_TRUE(report.ok()) << report.status().ToString();
    EXPECT_FALSE(report->ok());
    bool named = false;
    for (const std::string& p : report->problems) named |= p.find(t.named) != std::string::npos;
    EXPECT_TRUE(named) << (report->problems.empty() ? "no problem" : report->problems.front());
    flip(t);  // back
    auto again = store_->Verify();
    ASSERT_TRUE(again.ok());
    EXPECT_TRUE(again->ok()) << again->problems.front();
  }
}

// Outside audit 39a, F1: a byte flipped in a free key-pool row made every
// writable open fail (loading the pool authenticates each free row), while
// a read-only open skipped those rows and `--read-only verify` called the
// store clean. Verify opens every pool row now, read-only too.
TEST_F(TamperTest, VerifyReportsADamagedKeyPoolRowReadOnlyToo) {
  MakePerson("ann@x.org");
  SKV_ASSERT_OK(store_->Close());
  store_.reset();
  auto flip = [&] {
    storage::EnvOptions o;
    o.path = dir_.Sub("keys");
    o.tables = {"pool"};
    auto env = storage::Environment::Open(o);
    ASSERT_TRUE(env.ok()) << env.status().ToString();
    const storage::Table pool = (*env)->table("pool");
    SKV_ASSERT_OK((*env)->Update([&](storage::WriteTxn& txn) -> Status {
      auto cursor = txn.OpenCursor(pool);
      if (!cursor.ok()) return cursor.status();
      if (Status m = (*cursor)->SeekToFirst(); !m.ok()) return m;
      if (!(*cursor)->Valid()) return Status::NotFound("no pool row");
      const std::string key((*cursor)->key());
      std::string row((*cursor)->value());
      row.back() = static_cast<char>(row.back() ^ 0x10);
      return txn.Put(pool, key, row);
    }));
  };
  flip();
  EXPECT_FALSE(Store::Open(options_).ok());  // the writable open loads the pool
  Options read_only = options_;
  read_only.read_only = true;
  read_only.create_if_missing = false;
  {
    auto store = Store::Open(read_only);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    auto report = (*store)->Verify();
    ASSERT_TRUE(report.ok()) << report.status().ToString();
    EXPECT_FALSE(report->ok());
    bool named = false;
    for (const std::string& p : report->problems) named |= p.find("key pool row") != std::string::npos;
    EXPECT_TRUE(named) << (report->problems.empty() ? "no problem" : report->problems.front());
  }
  flip();  // back
  Reopen();
  auto again = store_->Verify();
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->ok()) << again->problems.front();
}

TEST_F(TamperTest, DamagedRootCheckOrEpochKeyIsNotServed) {
  MakePerson("ann@x.org");
  SKV_ASSERT_OK(store_->Close());
  store_.reset();
  {
    storage::EnvOptions o;
    o.path = dir_.Sub("keys");
    o.tables = {"meta", "epochs", "deks", "fences"};
    auto env = storage::Environment::Open(o);
    ASSERT_TRUE(env.ok());
    SKV_ASSERT_OK(FlipLastByteOfEveryRow(**env, "epochs"));
  }
  auto s = Store::Open(options_);
  EXPECT_TRUE(s.status().IsAuthenticationFailed()) << s.status().ToString();
}

// Issue 16 (6): one byte of a page header (the page's own number) flipped
// in the data file passed Verify, whose row walk reads through it; ingest,
// erase and rotate-keys then succeeded and only a later write or a rebuild
// tripped on it. Verify walks every page first and names the damaged one.
TEST_F(TamperTest, VerifyNamesADamagedDataPageHeader) {
  WriteBatch b;
  for (int i = 0; i < 300; ++i) {
    const PersonId p = b.CreatePerson({{"customer_id", std::to_string(i)}}, {{"bio", std::string(200, 'b')}});
    b.AppendEvent(p, Event{"page_view", 1700000000000 + i, {{"path", "/a"}}, {"path"}});
  }
  SKV_ASSERT_OK(store_->Write(b));
  auto clean = store_->Verify();
  ASSERT_TRUE(clean.ok());
  EXPECT_TRUE(clean->ok()) << clean->problems.front();
  EXPECT_GT(clean->pages, 20u);
  SKV_ASSERT_OK(store_->Close());
  store_.reset();
  const std::string file = dir_.Sub("data") + "/data.mdb";
  std::string bytes = test::ReadFile(file);
  // Every leaf page (flags 0x02 at byte 10), so live ones among them; LMDB's
  // reads do not look at the page number, so the store still opens.
  int leaves = 0;
  for (std::size_t pg = 2; (pg + 1) * 4096 <= bytes.size(); ++pg) {
    if (static_cast<unsigned char>(bytes[pg * 4096 + 10]) != 0x02) continue;
    bytes[pg * 4096 + 1] = static_cast<char>(bytes[pg * 4096 + 1] ^ 0x40);
    ++leaves;
  }
  ASSERT_GT(leaves, 0);
  test::WriteFile(file, bytes);
  // Since stop 26 a writable open walks the trees it reads (`meta`, whose
  // leaf is damaged too) and refuses: a write frees a page by its own
  // number. Reads do not use it, so a read-only open reads, and verifies.
  auto writable = Store::Open(options_);
  ASSERT_TRUE(writable.status().IsCorruption()) << writable.status().ToString();
  EXPECT_NE(writable.status().message().find("its header names page"), std::string::npos)
      << writable.status().ToString();
  EXPECT_NE(writable.status().message().find("a read-only open still reads the store"), std::string::npos)
      << writable.status().ToString();
  options_.create_if_missing = false;
  options_.read_only = true;
  Reopen();
  auto report = store_->Verify();
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  ASSERT_FALSE(report->ok());
  EXPECT_EQ(report->problems.front().rfind("data file: ", 0), 0u) << report->problems.front();
  EXPECT_EQ(report->problems.back(), "row checks skipped: a damaged page would be read through");
}

}  // namespace
}  // namespace shredkv
