// The workloads of the issue, each run by several systems on the same data:
// names are <Workload>/<system>, items_per_second counts the workload's unit.
//
// Data sets ("worlds") are built once, outside the timed loops, and shared
// by consecutive benchmarks of the same kind (people, export, erase,
// durable); moving on to another kind closes and deletes them. All
// benchmarks use wall-clock time (UseRealTime): background threads (RocksDB)
// and fsync waits count.
#include <benchmark/benchmark.h>

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <thread>

#include "common.h"
#include "workloads.h"

namespace shredkv_bench {
namespace {

using Clock = std::chrono::steady_clock;

// ---- worlds ------------------------------------------------------------------------

struct World {
  std::unique_ptr<System> sys;
  std::string dir;
  std::size_t next_live = 0;           // erase world: first person not yet erased
  std::int64_t next_ts = kBaseTs;      // next event timestamp (ms), increasing
  std::vector<std::uint32_t> key_order;
  std::size_t bulk_pos = 0;            // BulkLoad: events written so far
};

class WorldCache {
 public:
  // The world `kind` of `sys`, built by `build` if absent. Worlds of other
  // kinds are closed and deleted; other systems' worlds are paused.
  World& Get(const std::string& kind, SystemKind sys, const SystemOptions& options,
             const std::function<void(World&)>& build) {
    std::lock_guard lock(mu_);
    for (auto it = worlds_.begin(); it != worlds_.end();) {
      if (it->first.first != kind) {
        Destroy(*it->second);
        it = worlds_.erase(it);
      } else {
        if (it->first.second != sys) it->second->sys->Pause();
        ++it;
      }
    }
    auto& slot = worlds_[{kind, sys}];
    if (!slot) {
      auto w = std::make_unique<World>();
      w->dir = config().dir + "/" + kind + "-" + std::string(SystemName(sys));
      std::filesystem::create_directories(w->dir);
      const auto t0 = Clock::now();
      w->sys = NewSystem(sys, w->dir, options);
      build(*w);
      if (const char* settle = std::getenv("SHREDKV_BENCH_SETTLE"); settle == nullptr || std::string(settle) != "0") {
        w->sys->Settle();
      }
      // The setup's writes reach the disk now, untimed: otherwise the first
      // timed fsync (an erasure's) pays for flushing the whole data set.
      ::sync();
      std::fprintf(stderr, "  [setup] %s world of %s: %.1f s\n", kind.c_str(), std::string(SystemName(sys)).c_str(),
                   std::chrono::duration<double>(Clock::now() - t0).count());
      slot = std::move(w);
    }
    slot->sys->Resume();
    return *slot;
  }

  void Clear() {
    std::lock_guard lock(mu_);
    for (auto& [key, w] : worlds_) Destroy(*w);
    worlds_.clear();
  }

 private:
  static void Destroy(World& w) {
    w.sys.reset();
    std::error_code ec;
    std::filesystem::remove_all(w.dir, ec);
  }

  std::mutex mu_;
  std::map<std::pair<std::string, SystemKind>, std::unique_ptr<World>> worlds_;
};

WorldCache& worlds() {
  static WorldCache cache;
  return cache;
}

// Writes `per_person` events for each person in [first, first+n), person
// after person, in commits of about config().batch events.
void LoadEventsPersonMajor(World& w, std::size_t first, std::size_t n, std::size_t per_person) {
  const std::size_t people_per_commit = std::max<std::size_t>(1, config().batch / std::max<std::size_t>(1, per_person));
  std::vector<EventRef> events;
  for (std::size_t p = first; p < first + n; p += people_per_commit) {
    events.clear();
    for (std::size_t q = p; q < std::min(first + n, p + people_per_commit); ++q) {
      for (std::size_t e = 0; e < per_person; ++e) events.push_back({static_cast<std::uint32_t>(q), w.next_ts++});
    }
    auto prepared = w.sys->PrepareEvents(events);
    w.sys->CommitEvents(*prepared);
  }
}

World& PeopleWorld(SystemKind sys, std::size_t people) {
  const std::string kind = "people" + std::to_string(people);
  return worlds().Get(kind, sys, SystemOptions{}, [&](World& w) { w.sys->AddPeople(people, 10000); });
}

// export_people people with export_events events each, person-major.
World& ExportWorld(SystemKind sys) {
  const Config& c = config();
  SystemOptions o;
  o.sealed_event_rows = true;  // raw_lmdb: XChaCha20 boxes, opened by the baseline
  return worlds().Get("export", sys, o, [&](World& world) {
    world.sys->AddPeople(c.export_people, 1000);
    LoadEventsPersonMajor(world, 0, c.export_people, c.export_events);
  });
}

World& EraseWorld(SystemKind sys) {
  SystemOptions o;
  o.secure_delete = true;  // SQLite: the erase workload overwrites deleted content
  return worlds().Get("erase", sys, o, [](World& w) {
    const Config& c = config();
    const std::size_t people = c.erase_people + c.erase_synced_calls * c.erase_call;
    w.sys->AddPeople(people, 1000);
    LoadEventsPersonMajor(w, 0, people, c.erase_events);
  });
}

std::atomic<int> g_errors{0};

// Runs `body`, turning a BenchError into a skipped benchmark.
template <typename F>
void Guard(benchmark::State& state, F&& body) {
  try {
    body();
  } catch (const std::exception& e) {
    Skip(state, e.what());
  }
}

// With SHREDKV_BENCH_PERF_CTL=<fifo>, tells `perf record -D -1
// --control=fifo:<fifo>` to sample only while a timed loop runs, not while
// data sets are built (see docs/performance.md, "Profiling").
class PerfWindow {
 public:
  PerfWindow() { Send("enable\n"); }
  ~PerfWindow() { Send("disable\n"); }
  PerfWindow(const PerfWindow&) = delete;
  PerfWindow& operator=(const PerfWindow&) = delete;

 private:
  static void Send(const char* command) {
    static const int fd = [] {
      const char* path = std::getenv("SHREDKV_BENCH_PERF_CTL");
      return path != nullptr ? ::open(path, O_WRONLY | O_CLOEXEC) : -1;
    }();
    if (fd >= 0 && ::write(fd, command, std::strlen(command)) < 0) {
      std::perror("shredkv_bench: SHREDKV_BENCH_PERF_CTL");
    }
  }
};

// ---- workloads -----------------------------------------------------------------------

// IngestEvents (random person order) and BulkLoad (person after person,
// sequential keys): one Store::Write / one transaction per batch.
void BM_Ingest(benchmark::State& state, SystemKind sys, bool sequential) {
  Guard(state, [&] {
    const Config& c = config();
    World& w = PeopleWorld(sys, c.people);
    if (sequential && w.key_order.empty()) w.key_order = w.sys->PeopleInKeyOrder();
    Rng rng(sequential ? 2 : 1);
    std::vector<EventRef> events(c.batch);
    std::unique_ptr<PreparedBatch> prepared;
    PerfWindow perf_window;
    for (auto _ : state) {
      state.PauseTiming();
      prepared.reset();
      for (EventRef& e : events) {
        if (sequential) {
          const std::size_t person = (w.bulk_pos / c.bulk_events_per_person) % w.key_order.size();
          e = {w.key_order[person], w.next_ts++};
          ++w.bulk_pos;
        } else {
          e = {static_cast<std::uint32_t>(rng.Uniform(w.sys->people())), w.next_ts++};
        }
      }
      prepared = w.sys->PrepareEvents(events);
      state.ResumeTiming();
      w.sys->CommitEvents(*prepared);
    }
    state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(c.batch));
  });
}

// Lookup: resolve a random identifier, read the (decrypted) profile.
void BM_Lookup(benchmark::State& state, SystemKind sys) {
  Guard(state, [&] {
    World& w = PeopleWorld(sys, config().people);
    Rng rng(3);
    const std::size_t n = w.sys->people();
    PerfWindow perf_window;
    for (auto _ : state) benchmark::DoNotOptimize(w.sys->Lookup(rng.Uniform(n)));
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
  });
}

// RotateEpoch: re-wrap every DEK of a store with rotate_people people.
void BM_RotateEpoch(benchmark::State& state, SystemKind sys) {
  Guard(state, [&] {
    World& w = PeopleWorld(sys, config().rotate_people);
    std::uint64_t keys = 0;
    PerfWindow perf_window;
    for (auto _ : state) keys += w.sys->RotateEpoch();
    state.SetItemsProcessed(static_cast<std::int64_t>(keys));
    state.counters["deks_per_rotation"] = static_cast<double>(keys) / static_cast<double>(state.iterations());
  });
}

// Export: every event of one person (export_events of them).
void BM_Export(benchmark::State& state, SystemKind sys) {
  Guard(state, [&] {
    const Config& c = config();
    World& w = ExportWorld(sys);
    std::uint64_t events = 0;
    std::size_t i = 0;
    PerfWindow perf_window;
    for (auto _ : state) {
      const std::uint64_t n = w.sys->Export(i++ % c.export_people);
      if (n != c.export_events) Fail("export returned " + std::to_string(n) + " events");
      events += n;
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(events));
  });
}

// Backup: a consistent copy of the export world (export_people people ×
// export_events events, person-major) into a new directory while it is
// open. Bytes copied a second; the copy is removed untimed.
void BM_Backup(benchmark::State& state, SystemKind sys) {
  Guard(state, [&] {
    World& w = ExportWorld(sys);
    std::uint64_t bytes = 0;
    std::size_t n = 0;
    PerfWindow perf_window;
    for (auto _ : state) {
      const std::string dir = w.dir + "-backup-" + std::to_string(n++);
      bytes += w.sys->Backup(dir);
      state.PauseTiming();
      std::error_code ec;
      std::filesystem::remove_all(dir, ec);
      state.ResumeTiming();
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(bytes));
    state.counters["backup_bytes"] = static_cast<double>(bytes) / static_cast<double>(state.iterations());
  });
}

// The next `n` people of the erase world not yet erased.
std::vector<std::uint32_t> TakeLive(World& w, std::size_t n) {
  if (w.next_live + n > w.sys->people()) Fail("erase world exhausted: raise erase_people");
  std::vector<std::uint32_t> out;
  for (std::size_t i = 0; i < n; ++i) out.push_back(static_cast<std::uint32_t>(w.next_live++));
  return out;
}

// The timed loop of EraseBatch and EraseBatchSynced: erase_call people a
// call, taken (untimed) from those not erased yet.
void EraseCalls(benchmark::State& state, World& w) {
  const Config& c = config();
  PerfWindow perf_window;
  for (auto _ : state) {
    state.PauseTiming();
    const auto people = TakeLive(w, c.erase_call);
    state.ResumeTiming();
    w.sys->Erase(people);
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(c.erase_call));
}

// EraseBatch: erase_call people (erase_events events each) per call.
void BM_EraseBatch(benchmark::State& state, SystemKind sys) {
  Guard(state, [&] { EraseCalls(state, EraseWorld(sys)); });
}

// EraseLimit: shredkv erases as in EraseBatch; raw_lmdb deletes only one row
// per person (the least any erasure can write), leaving the rest for Purge.
void BM_EraseLimit(benchmark::State& state, SystemKind sys) {
  Guard(state, [&] {
    const Config& c = config();
    World& w = EraseWorld(sys);
    const bool one_row = sys == SystemKind::kRawLmdb;
    PerfWindow perf_window;
    for (auto _ : state) {
      state.PauseTiming();
      const auto people = TakeLive(w, c.erase_call);
      state.ResumeTiming();
      if (one_row) {
        w.sys->DeleteOneRow(people);
      } else {
        w.sys->Erase(people);
      }
    }
    state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(c.erase_call));
  });
}

// EraseBatchSynced: EraseBatch with every system's commits fsynced (issue
// 21: EraseBatch compares shredkv's durable erasure with unsynced deletes).
// raw_lmdb: the rows deleted by cursor walk (a range delete), one synced
// commit; RocksDB: DeleteRange and point deletes, WriteOptions::sync;
// SQLite: DELETE of the range, WAL with synchronous=FULL. Runs after
// EraseLimit, on the people beyond erase_people.
void BM_EraseBatchSynced(benchmark::State& state, SystemKind sys) {
  Guard(state, [&] {
    World& w = EraseWorld(sys);
    w.sys->SetSynced(true);
    EraseCalls(state, w);
    w.sys->SetSynced(false);
  });
}

// Purge: rows of erased people deleted per second, purge_budget rows per call.
void BM_Purge(benchmark::State& state, SystemKind sys) {
  Guard(state, [&] {
    const Config& c = config();
    World& w = EraseWorld(sys);
    // Everyone left is erased now (untimed): shredkv through Store::Erase,
    // raw_lmdb by queueing them.
    if (w.next_live < w.sys->people()) {
      const auto rest = TakeLive(w, w.sys->people() - w.next_live);
      w.sys->MarkForPurge(rest);
    }
    std::uint64_t rows = 0;
    PerfWindow perf_window;
    for (auto _ : state) {
      const std::uint64_t n = w.sys->Purge(c.purge_budget);
      if (n == 0) Fail("nothing left to purge: raise erase_people");
      rows += n;
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(rows));
  });
}

// EraseDurable: durable_threads concurrent callers, one person per call,
// every commit fsynced (Durability::kFullSync for every system). One
// iteration starts the callers, each erases durable_calls people, and ends
// when the last returns: wall time, so throughput = people / elapsed.
void BM_EraseDurable(benchmark::State& state, SystemKind sys) {
  Guard(state, [&] {
    const Config& c = config();
    SystemOptions o;
    o.durability = shredkv::Durability::kFullSync;
    World& w = worlds().Get("durable", sys, o, [&](World& world) {
      const std::size_t n = c.durable_threads * c.durable_calls * static_cast<std::size_t>(state.max_iterations);
      world.sys->AddPeople(n, 1000);
      LoadEventsPersonMajor(world, 0, n, c.durable_events);
    });
    std::string error;
    std::mutex error_mu;
    PerfWindow perf_window;
    for (auto _ : state) {
      std::vector<std::thread> callers;
      for (std::size_t t = 0; t < c.durable_threads; ++t) {
        const std::size_t first = w.next_live + t * c.durable_calls;
        callers.emplace_back([&, first] {
          try {
            for (std::size_t k = 0; k < c.durable_calls; ++k) {
              const auto person = static_cast<std::uint32_t>(first + k);
              w.sys->Erase(std::span<const std::uint32_t>(&person, 1));
            }
          } catch (const std::exception& e) {
            std::lock_guard lock(error_mu);
            error = e.what();
          }
        });
      }
      for (std::thread& t : callers) t.join();
      w.next_live += c.durable_threads * c.durable_calls;
    }
    if (!error.empty()) Fail(error);
    state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(c.durable_threads * c.durable_calls));
    state.counters["callers"] = static_cast<double>(c.durable_threads);
  });
}

// DurableWrite: one durable write a call, one caller (issue 21: "a durable
// create / append / put / restrict costs at most one raw-LMDB durable
// commit plus 25 %"). `create`: one person a call (shredkv: its key taken
// from the key pool, committed in `keys` ahead — one refill of 256 keys
// every 256 creates — and its rows in one `data` commit; raw_lmdb: the same
// rows in one commit); `append`: one event of an existing person; `put`:
// one 100-byte record; `restrict`: all processing of one person restricted
// (raw_lmdb: the restriction row). Every system opened with kFullSync.
enum class DurableOp { kCreate, kAppend, kPut, kRestrict };

void BM_DurableWrite(benchmark::State& state, SystemKind sys, DurableOp op) {
  Guard(state, [&] {
    const Config& c = config();
    SystemOptions o;
    o.durability = shredkv::Durability::kFullSync;
    World& w = worlds().Get("durable-write", sys, o, [&](World& world) { world.sys->AddPeople(c.durable_people, 1000); });
    std::size_t i = 0;
    PerfWindow perf_window;
    for (auto _ : state) {
      const std::size_t person = i++ % c.durable_people;
      switch (op) {
        case DurableOp::kCreate:
          w.sys->AddPeople(1, 1);
          break;
        case DurableOp::kAppend: {
          state.PauseTiming();
          const EventRef ref{static_cast<std::uint32_t>(person), w.next_ts++};
          auto batch = w.sys->PrepareEvents(std::span<const EventRef>(&ref, 1));
          state.ResumeTiming();
          w.sys->CommitEvents(*batch);
          break;
        }
        case DurableOp::kPut:
          w.sys->PutRecord(person, i);
          break;
        case DurableOp::kRestrict:
          w.sys->Restrict(person);
          break;
      }
    }
    state.SetItemsProcessed(state.iterations());
  });
}

std::vector<SystemKind> Available(std::initializer_list<SystemKind> kinds) {
  std::vector<SystemKind> out;
  for (SystemKind k : kinds) {
    if (SystemAvailable(k)) out.push_back(k);
  }
  return out;
}

std::string Name(const char* workload, SystemKind sys) { return std::string(workload) + "/" + std::string(SystemName(sys)); }

}  // namespace

void RegisterWorkloads() {
  const Config& c = config();
  using K = SystemKind;
  auto it = [](std::size_t n) { return static_cast<benchmark::IterationCount>(n); };

  // Kind "people": IngestEvents, BulkLoad, Lookup, then RotateEpoch.
  for (K s : Available({K::kRawLmdb, K::kShredkv, K::kShredkvXChaCha, K::kRocksDb, K::kSqlite})) {
    benchmark::RegisterBenchmark(Name("IngestEvents", s).c_str(), BM_Ingest, s, false)
        ->Iterations(it(c.ingest_batches))->UseRealTime()->Unit(benchmark::kMillisecond);
  }
  for (K s : Available({K::kRawLmdb, K::kShredkv, K::kShredkvXChaCha, K::kRocksDb, K::kSqlite})) {
    benchmark::RegisterBenchmark(Name("BulkLoad", s).c_str(), BM_Ingest, s, true)
        ->Iterations(it(c.bulk_batches))->UseRealTime()->Unit(benchmark::kMillisecond);
  }
  for (K s : Available({K::kRawLmdb, K::kShredkv, K::kShredkvXChaCha, K::kRocksDb, K::kSqlite})) {
    auto* b = benchmark::RegisterBenchmark(Name("Lookup", s).c_str(), BM_Lookup, s);
    b->UseRealTime()->Unit(benchmark::kMicrosecond);
  }
  benchmark::RegisterBenchmark(Name("RotateEpoch", K::kShredkv).c_str(), BM_RotateEpoch, K::kShredkv)
      ->Iterations(it(c.rotate_iterations))->UseRealTime()->Unit(benchmark::kMillisecond);

  // Kind "export".
  for (K s : Available({K::kRawLmdb, K::kShredkv, K::kShredkvXChaCha})) {
    benchmark::RegisterBenchmark(Name("Export", s).c_str(), BM_Export, s)
        ->Iterations(it(c.export_iterations))->UseRealTime()->Unit(benchmark::kMillisecond);
  }

  for (K s : Available({K::kRawLmdb, K::kShredkv})) {
    benchmark::RegisterBenchmark(Name("Backup", s).c_str(), BM_Backup, s)
        ->Iterations(it(c.backup_iterations))->UseRealTime()->Unit(benchmark::kMillisecond);
  }

  // Kind "erase": EraseBatch and EraseLimit each take half of erase_people,
  // EraseBatchSynced the erase_synced_calls × erase_call people beyond;
  // Purge then deletes the rows that remain.
  const std::size_t erase_iterations = std::max<std::size_t>(1, c.erase_people / 2 / c.erase_call);
  for (K s : Available({K::kRawLmdb, K::kShredkv, K::kRocksDb, K::kSqlite})) {
    benchmark::RegisterBenchmark(Name("EraseBatch", s).c_str(), BM_EraseBatch, s)
        ->Iterations(it(erase_iterations))->UseRealTime()->Unit(benchmark::kMillisecond);
  }
  for (K s : Available({K::kRawLmdb, K::kShredkv})) {
    benchmark::RegisterBenchmark(Name("EraseLimit", s).c_str(), BM_EraseLimit, s)
        ->Iterations(it(erase_iterations))->UseRealTime()->Unit(benchmark::kMillisecond);
  }
  for (K s : Available({K::kRawLmdb, K::kShredkv, K::kRocksDb, K::kSqlite})) {
    benchmark::RegisterBenchmark(Name("EraseBatchSynced", s).c_str(), BM_EraseBatchSynced, s)
        ->Iterations(it(c.erase_synced_calls))->UseRealTime()->Unit(benchmark::kMillisecond);
  }
  // Rows left for raw_lmdb after EraseBatch: the EraseLimit half.
  const std::size_t purge_rows = (c.erase_people - erase_iterations * c.erase_call) * c.erase_events;
  const std::size_t purge_iterations = std::max<std::size_t>(1, purge_rows / c.purge_budget);
  for (K s : Available({K::kRawLmdb, K::kShredkv})) {
    benchmark::RegisterBenchmark(Name("Purge", s).c_str(), BM_Purge, s)
        ->Iterations(it(purge_iterations))->UseRealTime()->Unit(benchmark::kMillisecond);
  }

  // Kind "durable-write".
  for (auto [op, kind] : {std::pair{"create", DurableOp::kCreate}, std::pair{"append", DurableOp::kAppend},
                          std::pair{"put", DurableOp::kPut}, std::pair{"restrict", DurableOp::kRestrict}}) {
    for (K s : Available({K::kRawLmdb, K::kShredkv})) {
      benchmark::RegisterBenchmark((std::string("DurableWrite/") + op + "/" + std::string(SystemName(s))).c_str(),
                                   BM_DurableWrite, s, kind)
          ->Iterations(it(c.durable_write_ops))
          ->UseRealTime()
          ->Unit(benchmark::kMicrosecond);
    }
  }

  // Kind "durable".
  for (K s : Available({K::kRawLmdb, K::kShredkv, K::kRocksDb})) {
    benchmark::RegisterBenchmark(Name("EraseDurable", s).c_str(), BM_EraseDurable, s)
        ->Iterations(1)
        ->UseRealTime()
        ->Unit(benchmark::kMillisecond);
  }
}

void CloseWorlds() { worlds().Clear(); }

int ErrorCount() { return g_errors.load(); }

void Skip(benchmark::State& state, const char* what) {
  g_errors.fetch_add(1);
  state.SkipWithError(what);
}

}  // namespace shredkv_bench
