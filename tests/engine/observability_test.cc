// Observability (issue 22): the event listener and logger hook
// (include/shredkv/listener.h) and the operation metrics in Stats().
#include <gtest/gtest.h>

#include <bit>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "engine/metrics.h"
#include "engine/notifier.h"
#include "test_util.h"

namespace shredkv {
namespace {

// Records every notice as a line, in the order they came.
class Recorder : public EventListener, public Logger {
 public:
  void OnErasureCommitted(const ErasureReceipt& r) override {
    Add("committed " + r.request_id + " " + std::string(ErasureLevelName(r.level)));
  }
  void OnErasureLevelReached(const ErasureReceipt& r) override {
    Add("reached " + r.request_id + " " + std::string(ErasureLevelName(r.level)));
  }
  void OnMaintenanceCompleted(const MaintenanceInfo& info) override {
    Add(std::string("job ") + std::string(MaintenanceJobName(info.job)) + (info.background ? " background" : "") +
        (info.status.ok() ? " ok" : " failed") + " done=" + std::to_string(info.done));
  }
  void OnBackgroundError(const Status& s) override { Add("background error " + std::string(StatusCodeName(s.code()))); }
  void OnProgress(std::string_view op, std::uint64_t, std::uint64_t) override {
    std::lock_guard lock(mu_);
    ++progress_[std::string(op)];
  }
  void Log(LogLevel level, std::string_view message) override {
    std::lock_guard lock(mu_);
    log_.push_back(std::string(LogLevelName(level)) + ": " + std::string(message));
  }

  std::vector<std::string> lines() {
    std::lock_guard lock(mu_);
    return lines_;
  }
  std::vector<std::string> log() {
    std::lock_guard lock(mu_);
    return log_;
  }
  int progress(const std::string& op) {
    std::lock_guard lock(mu_);
    return progress_[op];
  }
  bool Saw(const std::string& line) {
    for (const std::string& l : lines()) {
      if (l == line) return true;
    }
    return false;
  }
  void Clear() {
    std::lock_guard lock(mu_);
    lines_.clear();
    log_.clear();
  }

 private:
  void Add(std::string line) {
    std::lock_guard lock(mu_);
    lines_.push_back(std::move(line));
  }
  std::mutex mu_;
  std::vector<std::string> lines_, log_;
  std::map<std::string, int> progress_;
};

class ObservabilityTest : public test::StoreTest {
 protected:
  void SetUp() override {
    options_ = test::TestOptions(dir_.path());
    options_.listeners = {recorder_};
    options_.logger = recorder_;
    Reopen();
  }
  std::shared_ptr<Recorder> recorder_ = std::make_shared<Recorder>();
};

bool Contains(const std::vector<std::string>& lines, const std::string& part) {
  for (const std::string& l : lines) {
    if (l.find(part) != std::string::npos) return true;
  }
  return false;
}

TEST_F(ObservabilityTest, AnErasureIsReportedCommittedThenCryptographicThenPurged) {
  const PersonId ann = MakePerson("ann@x.org");
  SKV_ASSERT_OK(store_->AppendEvent(ann, Event{"page_view", 1000, {}, {}}));
  EraseOptions eo;
  eo.request_id = "req-ann";
  ASSERT_TRUE(store_->Erase({ann}, eo).ok());
  EXPECT_EQ(recorder_->lines(), std::vector<std::string>{"committed req-ann logical"});

  SKV_ASSERT_OK(store_->RotateEpoch().status());  // cryptographic, rows still there
  EXPECT_TRUE(recorder_->Saw("reached req-ann cryptographic"));
  EXPECT_FALSE(recorder_->Saw("reached req-ann purged"));

  auto purged = store_->Purge(100000);
  ASSERT_TRUE(purged.ok());
  ASSERT_GT(purged->rows_deleted, 0u);
  EXPECT_TRUE(recorder_->Saw("reached req-ann purged"));
  EXPECT_TRUE(recorder_->Saw("job purge ok done=" + std::to_string(purged->rows_deleted)));
  // Nothing a listener or the log received names the person.
  for (const auto& lines : {recorder_->lines(), recorder_->log()}) {
    EXPECT_FALSE(Contains(lines, ann.ToHex()));
    EXPECT_FALSE(Contains(lines, "ann@x.org"));
  }
  EXPECT_TRUE(Contains(recorder_->log(), "info: erasure req-ann committed: 1 people"));
}

TEST_F(ObservabilityTest, PurgeBeforeRotationReportsPurgedOnlyAtTheRotation) {
  const PersonId bob = MakePerson("bob@x.org");
  EraseOptions eo;
  eo.request_id = "req-bob";
  ASSERT_TRUE(store_->Erase({bob}, eo).ok());
  ASSERT_TRUE(store_->Purge(100000).ok());
  EXPECT_FALSE(Contains(recorder_->lines(), "reached req-bob"));  // purged, but not yet cryptographic
  ASSERT_TRUE(store_->RotateEpoch().ok());
  EXPECT_TRUE(recorder_->Saw("reached req-bob purged"));
  EXPECT_GT(recorder_->progress("rotate-keys"), 0);
  // A later rotation does not report the same erasure again.
  recorder_->Clear();
  ASSERT_TRUE(store_->RotateEpoch().ok());
  EXPECT_FALSE(Contains(recorder_->lines(), "reached"));
}

TEST_F(ObservabilityTest, ConcurrentRotationsAndPurgesReportEachLevelOnce) {
  std::vector<std::string> ids;
  for (int i = 0; i < 8; ++i) {
    const PersonId p = MakePerson("p" + std::to_string(i) + "@x.org");
    EraseOptions eo;
    eo.request_id = "req-" + std::to_string(i);
    ASSERT_TRUE(store_->Erase({p}, eo).ok());
    ids.push_back(eo.request_id);
  }
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int k = 0; k < 3; ++k) {
        if ((t + k) % 2 == 0) {
          (void)store_->RotateEpoch();
        } else {
          (void)store_->Purge(1000000);
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  ASSERT_TRUE(store_->Purge(1000000).ok());
  ASSERT_TRUE(store_->RotateEpoch().ok());
  for (const std::string& id : ids) {
    int purged = 0, cryptographic = 0;
    for (const std::string& l : recorder_->lines()) {
      purged += l == "reached " + id + " purged";
      cryptographic += l == "reached " + id + " cryptographic";
    }
    EXPECT_EQ(purged, 1) << id;
    EXPECT_LE(cryptographic, 1) << id;
  }
}

TEST_F(ObservabilityTest, RunMaintenanceReportsEveryJobAndListenersMayReadTheStore) {
  // A listener that reads the store from inside the notice: the store's
  // locks are released before listeners run.
  class Reading : public EventListener {
   public:
    explicit Reading(Store** store) : store_(store) {}
    void OnErasureCommitted(const ErasureReceipt& r) override { status = (*store_)->GetErasure(r.request_id).status(); }
    Status status = Status::Internal("not called");

   private:
    Store** store_;
  };
  Store* raw = nullptr;
  auto reading = std::make_shared<Reading>(&raw);
  options_.listeners.push_back(reading);
  Reopen();
  raw = store_.get();
  const PersonId cy = MakePerson("cy@x.org");
  ASSERT_TRUE(store_->Erase({cy}, {}).ok());
  SKV_EXPECT_OK(reading->status);
  recorder_->Clear();
  SKV_ASSERT_OK(store_->RunMaintenance());
  for (const char* job : {"purge", "analytics", "sweep", "orphan_keys"}) {
    EXPECT_TRUE(Contains(recorder_->lines(), std::string("job ") + job + " ok")) << job;
  }
}

TEST_F(ObservabilityTest, ListenerExceptionsAreCaughtAndLogged) {
  class Throwing : public EventListener {
   public:
    void OnErasureCommitted(const ErasureReceipt&) override { throw std::runtime_error("listener bug"); }
  };
  options_.listeners.insert(options_.listeners.begin(), std::make_shared<Throwing>());
  Reopen();
  const PersonId di = MakePerson("di@x.org");
  EraseOptions eo;
  eo.request_id = "req-di";
  auto r = store_->Erase({di}, eo);
  ASSERT_TRUE(r.ok()) << r.status().ToString();  // the erasure stands
  EXPECT_TRUE(recorder_->Saw("committed req-di logical"));  // later listeners still told
  EXPECT_TRUE(Contains(recorder_->log(), "warn: an event listener threw"));
}

TEST_F(ObservabilityTest, StatsCountCallsErrorsAndLatencies) {
  const PersonId ann = MakePerson("ann@x.org");
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(store_->Resolve({"email", "ann@x.org"}).ok());
  EXPECT_TRUE(store_->Resolve({"email", "nobody@x.org"}).status().IsNotFound());
  ASSERT_TRUE(store_->GetProfile(ann).ok());
  auto st = store_->Stats();
  ASSERT_TRUE(st.ok());
  std::map<std::string, OperationStats> ops;
  for (const OperationStats& o : st->operations) ops[o.name] = o;
  for (const char* name : {"write", "resolve", "get_person", "get_profile", "get_record", "erase", "acquire_lease",
                           "purge", "rotate_epoch", "compact_data", "sweep", "run_maintenance", "verify"}) {
    EXPECT_EQ(ops.count(name), 1u) << name;
  }
  EXPECT_EQ(ops["resolve"].calls, 4u);
  EXPECT_EQ(ops["resolve"].errors, 1u);
  EXPECT_EQ(ops["write"].calls, 1u);  // MakePerson
  EXPECT_EQ(ops["get_profile"].calls, 1u);
  EXPECT_EQ(ops["erase"].calls, 0u);
  std::uint64_t in_buckets = 0;
  for (std::uint64_t n : ops["resolve"].latency_buckets) in_buckets += n;
  EXPECT_EQ(in_buckets, 4u);
  // The median's bound is that of a bucket holding one of the calls.
  const std::uint64_t median = ops["resolve"].QuantileUpperBoundUs(0.5);
  const auto b = static_cast<std::size_t>(std::countr_zero(median));
  ASSERT_LT(b, kLatencyBuckets);
  EXPECT_EQ(median, std::uint64_t{1} << b);
  EXPECT_GT(ops["resolve"].latency_buckets[b], 0u);
  EXPECT_EQ(ops["erase"].QuantileUpperBoundUs(0.5), 0u);  // never called
}

TEST(OperationStatsTest, RecordPutsEachLatencyInItsPowerOfTwoBucket) {
  engine::OperationMetrics m;
  // (latency µs, bucket): bucket i holds (2^(i-1), 2^i], bucket 0 up to 1 µs.
  const std::pair<std::int64_t, std::size_t> cases[] = {
      {-5, 0}, {0, 0}, {1, 0}, {2, 1}, {3, 2}, {4, 2}, {5, 3}, {1024, 10}, {1025, 11},
      {std::int64_t{1} << 26, 26}, {(std::int64_t{1} << 26) + 1, 27}, {std::int64_t{1} << 40, 27}};
  for (const auto& [us, bucket] : cases) {
    engine::OperationMetrics one;
    one.Record(engine::Operation::kResolve, us, true);
    const OperationStats s = one.Snapshot()[static_cast<std::size_t>(engine::Operation::kResolve)];
    EXPECT_EQ(s.latency_buckets[bucket], 1u) << us << " us";
    EXPECT_EQ(s.calls, 1u);
  }
  m.Record(engine::Operation::kWrite, 10, false);
  m.Record(engine::Operation::kWrite, 20, true);
  const OperationStats w = m.Snapshot()[static_cast<std::size_t>(engine::Operation::kWrite)];
  EXPECT_EQ(w.name, "write");
  EXPECT_EQ(w.calls, 2u);
  EXPECT_EQ(w.errors, 1u);
  EXPECT_EQ(w.total_us, 30u);
}

TEST(NotifierTest, LogLinesLoseEveryPersonIdButNothingElse) {
  const std::string id = "0123456789abcdef0123456789ABCDEF";
  EXPECT_EQ(engine::Notifier::WithoutPersonIds("purging person " + id + ": IOError"),
            "purging person <person>: IOError");
  EXPECT_EQ(engine::Notifier::WithoutPersonIds(id), "<person>");
  // Shorter or longer hex runs (epochs, request ids, hashes) stay.
  const std::string hash(64, 'a');
  EXPECT_EQ(engine::Notifier::WithoutPersonIds("head " + hash + " epoch 12 req-ab12"),
            "head " + hash + " epoch 12 req-ab12");
}

TEST(OperationStatsTest, QuantilesAreTheUpperBoundsOfTheirBuckets) {
  OperationStats s;
  s.latency_buckets[0] = 50;   // <= 1 µs
  s.latency_buckets[4] = 49;   // (8, 16] µs
  s.latency_buckets[kLatencyBuckets - 1] = 1;  // longer than ~67 s
  EXPECT_EQ(s.QuantileUpperBoundUs(0.5), 1u);
  EXPECT_EQ(s.QuantileUpperBoundUs(0.51), 16u);
  EXPECT_EQ(s.QuantileUpperBoundUs(0.99), 16u);
  EXPECT_EQ(s.QuantileUpperBoundUs(1.0), UINT64_MAX);
  OperationStats slow;
  slow.latency_buckets[10] = 3;  // every call in (512, 1024] µs
  EXPECT_EQ(slow.QuantileUpperBoundUs(1e-9), 1024u);  // not bucket 0's bound: no call is there
  EXPECT_EQ(slow.QuantileUpperBoundUs(0.5), 1024u);
}

TEST_F(ObservabilityTest, OpenAndCloseAreLogged) {
  SKV_ASSERT_OK(store_->Close());
  const auto log = recorder_->log();
  EXPECT_TRUE(Contains(log, "info: opened '" + dir_.path() + "': format 4, key epoch ")) << ::testing::PrintToString(log);
  EXPECT_TRUE(Contains(log, "info: closed '" + dir_.path() + "'"));
}

}  // namespace
}  // namespace shredkv

namespace shredkv {
namespace {

// Outside audit 32a, F1: Close called on the store's own background thread
// (Python's garbage collector finalized a forgotten store inside a
// listener there) aborted the process: the thread could not join itself,
// and the store was torn down under it. Close refuses there now and the
// store stays open.
class ClosingListener : public EventListener {
 public:
  void OnMaintenanceCompleted(const MaintenanceInfo& info) override {
    std::lock_guard lock(mu_);
    if (!info.background || store_ == nullptr || status_) return;
    status_ = store_->Close();
    store_usable_ = store_->StoreId().ok();
    cv_.notify_all();
  }
  void Arm(Store* store) {
    std::lock_guard lock(mu_);
    store_ = store;
  }
  // The status Close gave on the background thread, and whether the store
  // still answered there; nullopt if no round ran within the wait.
  std::optional<std::pair<Status, bool>> Wait() {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, std::chrono::seconds(60), [&] { return status_.has_value(); });
    if (!status_) return std::nullopt;
    return std::make_pair(*status_, store_usable_);
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  Store* store_ = nullptr;
  std::optional<Status> status_;
  bool store_usable_ = false;
};

TEST(BackgroundThreadCloseTest, CloseOnTheMaintenanceThreadIsRefusedAndTheStoreStaysOpen) {
  test::TempDir dir;
  Options o = test::TestOptions(dir.Sub("s"));
  auto listener = std::make_shared<ClosingListener>();
  o.listeners = {listener};
  o.background_maintenance_ms = 5;
  auto store = Store::Open(o);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  auto a = (*store)->CreatePerson({{"email", "a@x.org"}});
  ASSERT_TRUE(a.ok());
  listener->Arm(store->get());
  auto seen = listener->Wait();
  ASSERT_TRUE(seen.has_value()) << "no background round in 60 s";
  EXPECT_TRUE(seen->first.IsFailedPrecondition()) << seen->first.ToString();
  EXPECT_TRUE(seen->second) << "the store was closed under its own background thread";
  EXPECT_TRUE((*store)->GetPerson(*a).ok());
  SKV_ASSERT_OK((*store)->Close());
  EXPECT_TRUE((*store)->GetPerson(*a).status().IsFailedPrecondition());
}

// Outside audit 37b, F4: the same from a listener on the calling thread —
// the erasure that delivers OnErasureCommitted still uses the store — freed
// it under that call through the C API. Refused, the store left open.
TEST(ListenerCloseTest, CloseFromAListenerOnTheCallingThreadIsRefusedAndTheStoreStaysOpen) {
  class CloseOnCommit : public EventListener {
   public:
    void OnErasureCommitted(const ErasureReceipt&) override {
      if (store == nullptr) return;
      status = store->Close();
      usable = store->StoreId().ok();
    }
    Store* store = nullptr;
    std::optional<Status> status;
    bool usable = false;
  };
  test::TempDir dir;
  Options o = test::TestOptions(dir.Sub("s"));
  auto listener = std::make_shared<CloseOnCommit>();
  o.listeners = {listener};
  auto store = Store::Open(o);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  const PersonId a = *(*store)->CreatePerson({{"email", "a@x.org"}});
  const PersonId b = *(*store)->CreatePerson({{"email", "b@x.org"}});
  listener->store = store->get();
  SKV_ASSERT_OK((*store)->Erase(a).status());
  ASSERT_TRUE(listener->status.has_value()) << "the listener ran on another thread";
  EXPECT_TRUE(listener->status->IsFailedPrecondition()) << listener->status->ToString();
  EXPECT_TRUE(listener->usable);
  listener->store = nullptr;
  EXPECT_TRUE((*store)->GetPerson(b).ok());
  SKV_ASSERT_OK((*store)->Close());
}

// Review of stop 37, R9: destroying the store there (a listener resetting
// its owner) tore it down under the erasure delivering the notice, a use
// after free; it aborts with a message now.
TEST(ListenerCloseDeathTest, DestroyingTheStoreFromItsListenerAbortsWithAMessage) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  test::TempDir dir;
  EXPECT_DEATH(
      {
        class DestroyOnCommit : public EventListener {
         public:
          void OnErasureCommitted(const ErasureReceipt&) override { owner->reset(); }
          std::unique_ptr<Store>* owner = nullptr;
        };
        Options o = test::TestOptions(dir.Sub("s"));
        auto listener = std::make_shared<DestroyOnCommit>();
        o.listeners = {listener};
        auto opened = Store::Open(o);
        if (!opened.ok()) std::exit(3);
        std::unique_ptr<Store> store = std::move(opened).value();
        listener->owner = &store;
        const PersonId a = *store->CreatePerson({{"email", "a@x.org"}});
        (void)store->Erase(a);
        std::exit(4);  // not reached
      },
      "destroyed from its own listener");
}

}  // namespace
}  // namespace shredkv
