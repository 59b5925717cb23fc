// Sharded/<workload>/<system>/threads:<T>: event ingest by T writer threads
// (real time; items are events; one commit a batch of config().batch / 10
// events of people picked at random, the events of IngestEvents), on
//   raw_lmdb  one LMDB environment (events and analytics tables, the rows
//             of IngestEvents' baseline): LMDB's single writer
//   shredkv   one Store: group commit shares commits, one writer applies
//   sharded2  a ShardedStore of two shards: two writers
// ingest             every batch holds people of every shard (Write splits it)
// ingest_partitioned thread t writes people of shard t mod 2 only (a service
//                    that partitions its event stream by person)
// The figure of issue 21 is sharded2's threads:2 ÷ threads:1 (goal ≥ 1.6 on
// two cores). Durability kNoSync (MDB_NOSYNC for raw_lmdb), as IngestEvents.
#include "sharded.h"

#include <benchmark/benchmark.h>
#include <lmdb.h>

#include <atomic>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common.h"
#include "workloads.h"
#include "shredkv/sharded_store.h"
#include "shredkv/shredkv.h"

namespace shredkv_bench {
namespace {

enum class Target { kRawLmdb, kShredkv, kSharded2 };
constexpr std::uint32_t kShards = 2;

std::size_t BatchEvents() { return std::max<std::size_t>(1, config().batch / 10); }

std::atomic<std::int64_t> g_ts{kBaseTs};
std::atomic<std::uint64_t> g_seq{0};

void CheckLmdb(int rc, const char* what) {
  if (rc != MDB_SUCCESS) Fail(std::string("Sharded/raw_lmdb ") + what + ": " + mdb_strerror(rc));
}
void CheckStatus(const shredkv::Status& s, const char* what) {
  if (!s.ok()) Fail(std::string("Sharded ") + what + ": " + s.ToString());
}

shredkv::Options StoreOptions(const std::string& dir) {
  shredkv::Options o;
  o.directory = dir;
  o.create_if_missing = true;
  o.durability = shredkv::Durability::kNoSync;
  o.key_provider = shredkv::NewRawKeyProvider(std::string(32, '\x53'));
  return o;
}

struct ShardWorld {
  std::string dir;
  // raw_lmdb
  MDB_env* env = nullptr;
  MDB_dbi events = 0, analytics = 0;
  std::vector<std::string> raw_ids;
  // shredkv / sharded2
  std::unique_ptr<shredkv::Store> store;
  std::unique_ptr<shredkv::ShardedStore> sharded;
  std::vector<shredkv::PersonId> people;
  std::vector<std::vector<std::uint32_t>> by_shard;  // sharded2: people of each shard

  ~ShardWorld() {
    if (env != nullptr) mdb_env_close(env);
    if (store) (void)store->Close();
    if (sharded) (void)sharded->Close();
  }
};

std::mutex g_worlds_mu;
std::unique_ptr<ShardWorld> g_worlds[3];

template <typename Sink>
void CreatePeople(std::size_t n, Sink&& write, std::vector<shredkv::PersonId>* out) {
  for (std::size_t first = 0; first < n; first += 10000) {
    shredkv::WriteBatch b;
    for (std::size_t i = first; i < std::min(n, first + 10000); ++i) {
      out->push_back(b.CreatePerson({{"email", Email(i)}}, Profile(i)));
    }
    CheckStatus(write(b), "create people");
  }
}

ShardWorld& World(Target t) {
  std::lock_guard lock(g_worlds_mu);
  auto& slot = g_worlds[static_cast<int>(t)];
  if (slot) return *slot;
  static const char* kNames[] = {"raw_lmdb", "shredkv", "sharded2"};
  auto w = std::make_unique<ShardWorld>();
  w->dir = config().dir + "/sharded-" + kNames[static_cast<int>(t)];
  std::filesystem::remove_all(w->dir);
  std::filesystem::create_directories(w->dir);
  const std::size_t people = config().people;
  if (t == Target::kRawLmdb) {
    CheckLmdb(mdb_env_create(&w->env), "env");
    CheckLmdb(mdb_env_set_maxdbs(w->env, 4), "maxdbs");
    CheckLmdb(mdb_env_set_mapsize(w->env, std::size_t{64} << 30), "mapsize");
    CheckLmdb(mdb_env_open(w->env, w->dir.c_str(), MDB_NOSYNC, 0600), "open");
    MDB_txn* txn = nullptr;
    CheckLmdb(mdb_txn_begin(w->env, nullptr, 0, &txn), "begin");
    CheckLmdb(mdb_dbi_open(txn, "events", MDB_CREATE, &w->events), "dbi");
    CheckLmdb(mdb_dbi_open(txn, "analytics", MDB_CREATE, &w->analytics), "dbi");
    CheckLmdb(mdb_txn_commit(txn), "commit");
    Rng rng(77);
    for (std::size_t i = 0; i < people; ++i) {
      std::string id(16, '\0');
      rng.Fill(reinterpret_cast<std::uint8_t*>(id.data()), id.size());
      w->raw_ids.push_back(std::move(id));
    }
  } else if (t == Target::kShredkv) {
    auto s = shredkv::Store::Open(StoreOptions(w->dir + "/store"));
    CheckStatus(s.status(), "open store");
    w->store = std::move(*s);
    CreatePeople(people, [&](const shredkv::WriteBatch& b) { return w->store->Write(b); }, &w->people);
  } else {
    auto s = shredkv::ShardedStore::Open(StoreOptions(w->dir + "/store"), kShards);
    CheckStatus(s.status(), "open sharded store");
    w->sharded = std::move(*s);
    CreatePeople(people, [&](const shredkv::WriteBatch& b) { return w->sharded->Write(b); }, &w->people);
    w->by_shard.resize(kShards);
    for (std::uint32_t i = 0; i < w->people.size(); ++i) w->by_shard[w->sharded->ShardOf(w->people[i])].push_back(i);
  }
  slot = std::move(w);
  return *slot;
}

void CommitRaw(ShardWorld& w, Rng& rng, std::size_t events) {
  const RowSizes& rs = row_sizes();
  const std::int64_t ts = g_ts.fetch_add(static_cast<std::int64_t>(events));
  const std::uint64_t seq0 = g_seq.fetch_add(events);
  MDB_txn* txn = nullptr;
  CheckLmdb(mdb_txn_begin(w.env, nullptr, 0, &txn), "begin");
  for (std::size_t k = 0; k < events; ++k) {
    const std::uint64_t seq = seq0 + k;
    const std::string& person = w.raw_ids[rng.Uniform(w.raw_ids.size())];
    std::string ek = EventKey(person, ts + static_cast<std::int64_t>(k), seq);
    std::string ak = AnalyticsKey(ts + static_cast<std::int64_t>(k), seq);
    std::string_view ev = PoolBytes(rs.event_row, seq), av = PoolBytes(rs.analytics_row, seq + 3);
    MDB_val key{ek.size(), ek.data()}, val{ev.size(), const_cast<char*>(ev.data())};
    CheckLmdb(mdb_put(txn, w.events, &key, &val, 0), "put");
    MDB_val akey{ak.size(), ak.data()}, aval{av.size(), const_cast<char*>(av.data())};
    CheckLmdb(mdb_put(txn, w.analytics, &akey, &aval, 0), "put");
  }
  CheckLmdb(mdb_txn_commit(txn), "commit");
}

void BM_ShardedIngest(benchmark::State& state, Target target, bool partitioned) {
  try {
    ShardWorld& w = World(target);
    const std::size_t events = BatchEvents();
    Rng rng(std::uint64_t{0x5eed} + static_cast<std::uint64_t>(state.thread_index()));
    const std::vector<std::uint32_t>* mine =
        partitioned ? &w.by_shard[static_cast<std::size_t>(state.thread_index()) % kShards] : nullptr;
    for (auto _ : state) {
      if (target == Target::kRawLmdb) {
        CommitRaw(w, rng, events);
        continue;
      }
      const std::int64_t ts = g_ts.fetch_add(static_cast<std::int64_t>(events));
      shredkv::WriteBatch batch;
      for (std::size_t k = 0; k < events; ++k) {
        const std::size_t person = mine != nullptr ? (*mine)[rng.Uniform(mine->size())] : rng.Uniform(w.people.size());
        batch.AppendEvent(w.people[person], MakeEvent(ts + static_cast<std::int64_t>(k), rng.Next()));
      }
      CheckStatus(target == Target::kShredkv ? w.store->Write(batch) : w.sharded->Write(batch), "write events");
    }
    state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(events));
  } catch (const BenchError& e) {
    Skip(state, e.what());
  }
}

}  // namespace

void RegisterShardedWorkloads() {
  const struct {
    const char* name;
    Target target;
    bool partitioned;
  } kRuns[] = {{"Sharded/ingest/raw_lmdb", Target::kRawLmdb, false},
               {"Sharded/ingest/shredkv", Target::kShredkv, false},
               {"Sharded/ingest/sharded2", Target::kSharded2, false},
               {"Sharded/ingest_partitioned/sharded2", Target::kSharded2, true}};
  for (const auto& run : kRuns) {
    for (int threads : {1, 2, 4}) {
      benchmark::RegisterBenchmark(run.name, BM_ShardedIngest, run.target, run.partitioned)
          ->Threads(threads)
          ->UseRealTime()
          ->Unit(benchmark::kMillisecond);
    }
  }
}

void CloseShardedWorlds() {
  std::lock_guard lock(g_worlds_mu);
  for (auto& w : g_worlds) w.reset();
}

}  // namespace shredkv_bench
