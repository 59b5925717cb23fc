// shredkv_gdprbench: the four GDPRbench workloads on shredkv, raw LMDB and
// SQLite (gdpr.h; docs/performance.md §8).
//
//   shredkv_gdprbench [--records=N[,N…]] [--ops=F] [--shards=N] [--dir=PATH] [--benchmark_* flags]
//
// Systems: shredkv (one Store), shredkv_sharded (a ShardedStore of --shards
// shards, default 4: the same calls, so writes of people in different
// shards commit and flush in parallel), raw_lmdb, sqlite.
//
// --records (SHREDKV_GDPR_RECORDS): the data set sizes, default
// 10000,1000000. --ops (SHREDKV_GDPR_OPS): a factor on the operations each
// run performs (default 1; the smoke test uses 0.01). Every benchmark is
// <Workload>/<system>/records:<n>[/threads:16]; items_per_second counts
// GDPRbench operations. Writes are durable commits in every system.
//
// The workloads (GDPRbench's src/workloads/gdpr_*, proportions as weights):
//   Processor  (uniform)  20 read data by key (through a lease for the
//              record's purpose in shredkv), 80 read data by metadata (in
//              turn: by purpose — first page of 10 —, by recipient, by user)
//   Regulator  (zipfian)  46 read metadata by key, 31 read the log (10
//              entries from a random point), 23 verify the deletion of a
//              person erased in the set-up
//   Controller (uniform)  25 insert a record with metadata, 50 update
//              metadata (in turn: of all of a person's records, of the
//              first page of a purpose), 2.5 delete the records shared with
//              a recipient
//   Customer   (zipfian)  20 each: read data, read metadata, update data,
//              update metadata, delete — all by key (deletes uniform, below)
// The set-up erases 1 % of the people, so the log has entries and the
// regulator something to verify.
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "common.h"
#include "gdpr.h"

namespace shredkv_gdpr {

[[noreturn]] void Fail(const std::string& what) { throw std::runtime_error(what); }

std::string RecordKey(std::uint64_t id) { return "r" + std::to_string(id); }
std::string PurposeName(std::size_t i) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "p%02zu", i % kPurposes);
  return buf;
}
std::string RecipientName(std::uint64_t i) { return "rcpt" + std::to_string(i); }

namespace {

using shredkv_bench::Rng;  // splitmix64 (bench/common.h)

// 100 incompressible-looking bytes for record `id` (version `v`).
std::string ValueOf(std::uint64_t id, std::uint64_t v) {
  std::string out;
  out.reserve(kValueSize);
  Rng rng(id * 1000003 + v);
  while (out.size() < kValueSize) {
    const std::uint64_t s = rng.Next();
    for (int i = 0; i < 8 && out.size() < kValueSize; ++i) out.push_back(static_cast<char>('a' + ((s >> (8 * i)) % 26)));
  }
  return out;
}

}  // namespace

GdprRecord MakeRecord(std::uint64_t id, std::uint64_t records) {
  const std::uint64_t recipients = std::max<std::uint64_t>(1, records / kRecordsPerPerson);
  GdprRecord r;
  r.id = id;
  r.person = id / kRecordsPerPerson;
  r.value = ValueOf(id, 0);
  r.purpose = PurposeName(id % kPurposes);
  r.recipient = RecipientName(id % recipients);
  r.origin = "source" + std::to_string(id % 5);
  r.decision = id % 2 == 1;
  r.expires_ms = kExpiryBase + static_cast<std::int64_t>(id % 1000) * 86400000;
  return r;
}

namespace {


// YCSB's scrambled zipfian (theta 0.99, Gray et al.'s generator), over [0, n).
class Zipfian {
 public:
  explicit Zipfian(std::uint64_t n) : n_(n) {
    for (std::uint64_t i = 1; i <= n; ++i) zetan_ += 1.0 / std::pow(static_cast<double>(i), kTheta);
    const double zeta2 = 1.0 + 1.0 / std::pow(2.0, kTheta);
    alpha_ = 1.0 / (1.0 - kTheta);
    eta_ = (1.0 - std::pow(2.0 / static_cast<double>(n), 1.0 - kTheta)) / (1.0 - zeta2 / zetan_);
  }
  std::uint64_t Next(Rng& rng) const {
    const double u = rng.Unit();
    const double uz = u * zetan_;
    std::uint64_t rank = 0;
    if (uz < 1.0) {
      rank = 0;
    } else if (uz < 1.0 + std::pow(0.5, kTheta)) {
      rank = 1;
    } else {
      rank = static_cast<std::uint64_t>(static_cast<double>(n_) * std::pow(eta_ * u - eta_ + 1.0, alpha_));
    }
    return Rng(std::min(rank, n_ - 1)).Next() % n_;  // scrambled: hot items spread over the key space
  }

 private:
  static constexpr double kTheta = 0.99;
  std::uint64_t n_;
  double zetan_ = 0, alpha_ = 0, eta_ = 0;
};

enum class SystemKind { kShredkv, kShredkvSharded, kRawLmdb, kSqlite };
const char* SystemName(SystemKind k) {
  switch (k) {
    case SystemKind::kShredkv: return "shredkv";
    case SystemKind::kShredkvSharded: return "shredkv_sharded";
    case SystemKind::kRawLmdb: return "raw_lmdb";
    case SystemKind::kSqlite: return "sqlite";
  }
  return "?";
}

struct Settings {
  std::vector<std::uint64_t> records{10000, 1000000};
  double ops = 1.0;
  std::uint32_t shards = 4;  // shredkv_sharded
  std::string dir;
};
Settings& settings() {
  static Settings s;
  return s;
}

struct World {
  std::unique_ptr<GdprSystem> sys;
  std::uint64_t records = 0;
  std::uint64_t people = 0;
  std::vector<std::uint64_t> erased;   // people erased in the set-up
  std::atomic<std::uint64_t> next_id{0};  // the next inserted record's id
  std::unique_ptr<Zipfian> zipf;
  std::uint64_t log_length = 0;
  bool IsErased(std::uint64_t p) const { return p % 100 == 7; }
};

// Worlds by (records, system); a world of another size is closed and
// deleted when the first benchmark of a new size asks for one.
std::mutex g_worlds_mu;
std::map<std::pair<std::uint64_t, SystemKind>, std::unique_ptr<World>> g_worlds;

World& GetWorld(std::uint64_t records, SystemKind kind) {
  std::lock_guard lock(g_worlds_mu);
  for (auto it = g_worlds.begin(); it != g_worlds.end();) {
    it = it->first.first != records ? g_worlds.erase(it) : std::next(it);
  }
  auto& slot = g_worlds[{records, kind}];
  if (slot) return *slot;
  auto w = std::make_unique<World>();
  const std::string dir = settings().dir + "/" + SystemName(kind) + "-" + std::to_string(records);
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  switch (kind) {
    case SystemKind::kShredkv: w->sys = NewShredkv(dir); break;
    case SystemKind::kShredkvSharded: w->sys = NewShredkvSharded(dir, settings().shards); break;
    case SystemKind::kRawLmdb: w->sys = NewRawLmdb(dir); break;
    case SystemKind::kSqlite:
#ifdef SHREDKV_BENCH_HAVE_SQLITE
      w->sys = NewSqlite(dir);
#endif
      break;
  }
  if (!w->sys) Fail(std::string("system not built: ") + SystemName(kind));
  const auto t0 = std::chrono::steady_clock::now();
  w->records = records;
  w->people = records / kRecordsPerPerson;
  w->next_id = records;
  w->sys->Load(records);
  for (std::uint64_t p = 0; p < w->people; ++p) {
    if (w->IsErased(p)) {
      w->sys->ErasePerson(p);
      w->erased.push_back(p);
    }
  }
  w->log_length = w->sys->LogLength();
  w->zipf = std::make_unique<Zipfian>(records);
  ::sync();
  std::fprintf(stderr, "  [setup] %s, %llu records: %.1f s\n", SystemName(kind),
               static_cast<unsigned long long>(records),
               std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  slot = std::move(w);
  return *slot;
}

enum class Workload { kProcessor, kRegulator, kController, kCustomer };

// A record of the loaded set, or a live person, picked by the workload's
// distribution.
GdprRecord Pick(World& w, Rng& rng, bool zipfian) {
  const std::uint64_t id = zipfian ? w.zipf->Next(rng) : rng.Uniform(w.records);
  return MakeRecord(id, w.records);
}
std::uint64_t LivePerson(World& w, Rng& rng) {
  std::uint64_t p = rng.Uniform(w.people);
  if (w.IsErased(p)) p = (p + 1) % w.people;
  return p;
}

std::atomic<int> g_errors{0};

// Bytes this process has passed to write(2) and friends so far
// (/proc/self/io wchar): LMDB writes each dirty page once at commit, so the
// difference over a run, per operation, is the pages a write dirties.
std::uint64_t WrittenBytes() {
  std::FILE* f = std::fopen("/proc/self/io", "r");
  if (f == nullptr) return 0;
  char line[128];
  unsigned long long v = 0;
  while (std::fgets(line, sizeof line, f) != nullptr) {
    if (std::sscanf(line, "wchar: %llu", &v) == 1) break;
  }
  std::fclose(f);
  return v;
}

void RunOne(Workload wl, World& w, Rng& rng, std::uint64_t n) {
  GdprSystem& s = *w.sys;
  switch (wl) {
    case Workload::kProcessor: {
      const double u = rng.Unit();
      if (u < 0.2) {
        benchmark::DoNotOptimize(s.ReadData(Pick(w, rng, false)));
      } else if (n % 3 == 0) {
        benchmark::DoNotOptimize(s.ReadDataByPurpose(PurposeName(rng.Uniform(kPurposes))));
      } else if (n % 3 == 1) {
        benchmark::DoNotOptimize(s.ReadDataByRecipient(RecipientName(rng.Uniform(w.people))));
      } else {
        benchmark::DoNotOptimize(s.ReadDataByUser(rng.Uniform(w.people)));
      }
      return;
    }
    case Workload::kRegulator: {
      const double u = rng.Unit();
      if (u < 0.46) {
        benchmark::DoNotOptimize(s.ReadMetadata(Pick(w, rng, true)));
      } else if (u < 0.77) {
        benchmark::DoNotOptimize(s.ReadLogs(rng.Uniform(std::max<std::uint64_t>(1, w.log_length)), 10));
      } else if (!w.erased.empty()) {
        if (!s.VerifyDeleted(w.erased[rng.Uniform(w.erased.size())])) Fail("an erased person is still readable");
      }
      return;
    }
    case Workload::kController: {
      const double u = rng.Unit() * 0.775;
      if (u < 0.25) {
        const std::uint64_t id = w.next_id.fetch_add(1);
        GdprRecord r = MakeRecord(id, w.records);
        r.person = LivePerson(w, rng);
        s.Insert(r);
      } else if (u < 0.75) {
        const std::string rcpt = RecipientName(rng.Uniform(w.people));
        if (n % 2 == 0) {
          benchmark::DoNotOptimize(s.UpdateMetadataByUser(LivePerson(w, rng), rcpt));
        } else {
          benchmark::DoNotOptimize(s.UpdateMetadataByPurpose(PurposeName(rng.Uniform(kPurposes)), rcpt));
        }
      } else {
        benchmark::DoNotOptimize(s.DeleteByRecipient(RecipientName(rng.Uniform(w.people))));
      }
      return;
    }
    case Workload::kCustomer: {
      const GdprRecord r = Pick(w, rng, true);
      switch (rng.Uniform(5)) {
        case 0: benchmark::DoNotOptimize(s.ReadData(r)); break;
        case 1: benchmark::DoNotOptimize(s.ReadMetadata(r)); break;
        case 2: s.UpdateData(r, ValueOf(r.id, n + 1)); break;
        case 3: s.UpdateMetadata(r, RecipientName(rng.Uniform(w.people))); break;
        // Deletes pick their record uniformly: a zipfian delete would
        // remove the hottest records within the first operations, and every
        // later operation on them would be a no-op (and the 16-thread run,
        // which follows the single-thread one on the same data, would
        // measure a different mix).
        default: s.Delete(Pick(w, rng, false)); break;
      }
      return;
    }
  }
}

void BM_Gdpr(benchmark::State& state, Workload wl, SystemKind kind, std::uint64_t records) {
  try {
    World& w = GetWorld(records, kind);
    Rng rng(0x5eed0000u + static_cast<std::uint64_t>(state.thread_index()) * 7919u +
            static_cast<std::uint64_t>(wl) * 104729u);
    std::uint64_t n = 0;
    GdprSystem::WriteCounters before;
    std::uint64_t written_before = 0;
    if (state.thread_index() == 0) {
      before = w.sys->Counters();
      written_before = WrittenBytes();
    }
    for (auto _ : state) RunOne(wl, w, rng, n++);
    state.SetItemsProcessed(static_cast<std::int64_t>(n));
    if (state.thread_index() == 0) {
      // Read after this thread's loop: other threads may still be finishing,
      // so the figure is a close lower bound of the batches per commit.
      const GdprSystem::WriteCounters after = w.sys->Counters();
      const std::uint64_t total_ops = n * static_cast<std::uint64_t>(state.threads());
      state.counters["written_kib_per_op"] =
          static_cast<double>(WrittenBytes() - written_before) / 1024.0 / static_cast<double>(total_ops);
      if (after.commits > before.commits) {
        state.counters["batches_per_commit"] = static_cast<double>(after.batches - before.batches) /
                                               static_cast<double>(after.commits - before.commits);
      }
    }
  } catch (const std::exception& e) {
    ++g_errors;
    state.SkipWithError(e.what());
  }
}

void Register() {
  const Settings& st = settings();
  auto iters = [&](std::size_t base) {
    return static_cast<benchmark::IterationCount>(std::max(2.0, std::round(static_cast<double>(base) * st.ops)));
  };
  std::vector<SystemKind> systems{SystemKind::kShredkv, SystemKind::kShredkvSharded, SystemKind::kRawLmdb};
#ifdef SHREDKV_BENCH_HAVE_SQLITE
  systems.push_back(SystemKind::kSqlite);
#endif
  struct Spec {
    const char* name;
    Workload wl;
    std::size_t ops;          // one thread
    std::size_t ops_threaded;  // per thread of 16; 0: no 16-thread run
  };
  const Spec specs[] = {{"Processor", Workload::kProcessor, 20000, 0},
                        {"Regulator", Workload::kRegulator, 20000, 0},
                        {"Controller", Workload::kController, 2000, 250},
                        {"Customer", Workload::kCustomer, 4000, 500}};
  for (std::uint64_t records : st.records) {
    for (const Spec& sp : specs) {
      for (SystemKind k : systems) {
        const std::string name =
            std::string(sp.name) + "/" + SystemName(k) + "/records:" + std::to_string(records);
        benchmark::RegisterBenchmark(name.c_str(), BM_Gdpr, sp.wl, k, records)
            ->Iterations(iters(sp.ops))
            ->UseRealTime()
            ->Unit(benchmark::kMicrosecond);
        if (sp.ops_threaded != 0) {
          benchmark::RegisterBenchmark(name.c_str(), BM_Gdpr, sp.wl, k, records)
              ->Iterations(iters(sp.ops_threaded))
              ->Threads(16)
              ->UseRealTime()
              ->Unit(benchmark::kMicrosecond);
        }
      }
    }
  }
}

std::vector<std::uint64_t> ParseRecords(const std::string& s) {
  std::vector<std::uint64_t> out;
  std::size_t pos = 0;
  while (pos < s.size()) {
    const std::size_t comma = s.find(',', pos);
    const std::string part = s.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    const std::uint64_t n = std::stoull(part);
    if (n < 100) Fail("--records: at least 100 records");
    out.push_back(n);
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  return out;
}

}  // namespace
}  // namespace shredkv_gdpr

int main(int argc, char** argv) {
  using namespace shredkv_gdpr;
  Settings& st = settings();
  std::string parent = std::filesystem::temp_directory_path().string();
  std::vector<char*> args;
  try {
    if (const char* r = std::getenv("SHREDKV_GDPR_RECORDS"); r != nullptr && *r != '\0') st.records = ParseRecords(r);
    if (const char* o = std::getenv("SHREDKV_GDPR_OPS"); o != nullptr && *o != '\0') st.ops = std::stod(o);
    for (int i = 0; i < argc; ++i) {
      const std::string a = argv[i];
      if (a.rfind("--records=", 0) == 0) {
        st.records = ParseRecords(a.substr(10));
      } else if (a.rfind("--ops=", 0) == 0) {
        st.ops = std::stod(a.substr(6));
      } else if (a.rfind("--shards=", 0) == 0) {
        const unsigned long n = std::stoul(a.substr(9));
        if (n < 1 || n > 256) Fail("--shards: 1 to 256");
        st.shards = static_cast<std::uint32_t>(n);
      } else if (a.rfind("--dir=", 0) == 0) {
        parent = a.substr(6);
      } else {
        args.push_back(argv[i]);
      }
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "shredkv_gdprbench: %s\n", e.what());
    return 2;
  }
  std::string templ = parent + "/shredkv-gdpr-XXXXXX";
  if (::mkdtemp(templ.data()) == nullptr) {
    std::perror("mkdtemp");
    return 1;
  }
  st.dir = templ;
  int n = static_cast<int>(args.size());
  args.push_back(nullptr);
  benchmark::Initialize(&n, args.data());
  Register();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  {
    std::lock_guard lock(g_worlds_mu);
    g_worlds.clear();
  }
  std::filesystem::remove_all(st.dir);
  return g_errors.load() == 0 ? 0 : 1;
}
