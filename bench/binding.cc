// Binding/<workload>/<api>: the per-call cost of the bindings, on the
// workload bench/python_binding.py runs through the Python package:
//   lookup          Resolve(email) of a person of a 10,000-person store
//   batched_append  one WriteBatch of 1,000 events (3 properties: a 48-byte
//                   URL string, an int, a double; one analytics field) a
//                   commit, people taken round-robin
// through the C++ API (`cpp`) and through the C API (`c_api`, c.h) from
// C++. Items per second are the figure; python_binding.py divides its own
// by these, taken in the same run. Stores: NoSync, a raw key, under --dir;
// every person's key is cached (a profile read each) before the timing.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "binding.h"
#include "common.h"
#include "workloads.h"
#include "shredkv/c.h"
#include "shredkv/shredkv.h"

namespace shredkv_bench {
namespace {

constexpr std::size_t kPeople = 10000;
constexpr std::size_t kBatchEvents = 1000;
constexpr std::int64_t kBindingBaseTs = 1700000000000;

std::string BindingEmail(std::size_t i) { return "binding" + std::to_string(i) + "@example.org"; }
std::string BindingUrl(std::uint64_t n) {
  std::string url = "https://example.org/p/" + std::to_string(n);
  url.resize(48, 'x');
  return url;
}
std::size_t LookupPerson(std::uint64_t i) { return static_cast<std::size_t>((i * 7919) % kPeople); }

std::string NewDir(const char* api) {
  static int n = 0;
  const std::string dir = config().dir + "/binding-" + api + "-" + std::to_string(n++);
  std::filesystem::create_directories(dir);
  return dir;
}

// ---- the C++ API ------------------------------------------------------------

struct CppWorld {
  std::string dir;
  std::unique_ptr<shredkv::Store> store;
  std::vector<shredkv::PersonId> people;
};

CppWorld* g_cpp = nullptr;  // built by the first Binding/*/cpp benchmark

CppWorld& Cpp() {
  if (g_cpp == nullptr) g_cpp = [] {
    auto* world = new CppWorld;
    world->dir = NewDir("cpp");
    shredkv::Options options;
    options.directory = world->dir + "/store";
    options.create_if_missing = true;
    options.durability = shredkv::Durability::kNoSync;
    options.key_provider = shredkv::NewRawKeyProvider(std::string(32, '\x42'));
    auto store = shredkv::Store::Open(std::move(options));
    if (!store.ok()) Fail("Binding/cpp open: " + store.status().ToString());
    world->store = std::move(store).value();
    for (std::size_t first = 0; first < kPeople; first += 1000) {
      shredkv::WriteBatch batch;
      for (std::size_t i = first; i < first + 1000 && i < kPeople; ++i) {
        world->people.push_back(batch.CreatePerson({{"email", BindingEmail(i)}}));
      }
      if (auto s = world->store->Write(batch); !s.ok()) Fail("Binding/cpp people: " + s.ToString());
    }
    // Every person's key in the key cache, as in a service that has run a
    // while (python_binding.py does the same).
    for (const auto& p : world->people) {
      if (auto profile = world->store->GetProfile(p); !profile.ok()) Fail("Binding/cpp warm-up");
    }
    return world;
  }();
  return *g_cpp;
}

void BM_LookupCpp(benchmark::State& state) {
  auto& w = Cpp();
  std::uint64_t i = 0;
  for (auto _ : state) {
    auto id = w.store->Resolve({"email", BindingEmail(LookupPerson(i++))});
    if (!id.ok()) {
      Skip(state, id.status().ToString().c_str());
      break;
    }
    benchmark::DoNotOptimize(id);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(i));
}

void BM_AppendCpp(benchmark::State& state) {
  auto& w = Cpp();
  std::uint64_t n = 0;
  for (auto _ : state) {
    shredkv::WriteBatch batch;
    for (std::size_t k = 0; k < kBatchEvents; ++k, ++n) {
      shredkv::Event event;
      event.name = "page_view";
      event.ts_ms = kBindingBaseTs + static_cast<std::int64_t>(n);
      event.properties = {{"url", BindingUrl(n)},
                          {"duration_ms", static_cast<std::int64_t>(n % 5000)},
                          {"score", static_cast<double>(n % 100) / 7.0}};
      event.analytics_fields = {"duration_ms"};
      batch.AppendEvent(w.people[n % kPeople], std::move(event));
    }
    if (auto s = w.store->Write(batch); !s.ok()) {
      Skip(state, s.ToString().c_str());
      break;
    }
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(n));
}

// ---- the C API --------------------------------------------------------------

struct CWorld {
  std::string dir;
  shredkv_store_t* store = nullptr;
  std::vector<shredkv_person_id_t> people;
};

void CheckC(int rc, char* err, const char* what) {
  if (rc == SHREDKV_OK) return;
  const std::string message = std::string("Binding/c_api ") + what + ": " + (err != nullptr ? err : "");
  shredkv_free(err);
  Fail(message);
}

CWorld* g_c = nullptr;  // built by the first Binding/*/c_api benchmark

CWorld& C() {
  if (g_c == nullptr) g_c = [] {
    auto* world = new CWorld;
    world->dir = NewDir("c");
    const std::string key(32, '\x42');
    shredkv_key_provider_t* provider = shredkv_key_provider_raw(key.data(), key.size());
    shredkv_options_t* options = shredkv_options_create();
    shredkv_options_set_directory(options, (world->dir + "/store").c_str());
    shredkv_options_set_create_if_missing(options, 1);
    shredkv_options_set_durability(options, SHREDKV_DURABILITY_NO_SYNC);
    shredkv_options_set_key_provider(options, provider);
    shredkv_key_provider_destroy(provider);
    char* err = nullptr;
    CheckC(shredkv_open(options, &world->store, &err), err, "open");
    shredkv_options_destroy(options);
    world->people.resize(kPeople);
    for (std::size_t first = 0; first < kPeople; first += 1000) {
      shredkv_writebatch_t* batch = shredkv_writebatch_create();
      for (std::size_t i = first; i < first + 1000 && i < kPeople; ++i) {
        const std::string email = BindingEmail(i);
        const shredkv_identifier_t id{"email", email.data(), email.size()};
        shredkv_writebatch_create_person(batch, &id, 1, nullptr, &world->people[i]);
      }
      CheckC(shredkv_write(world->store, batch, &err), err, "people");
      shredkv_writebatch_destroy(batch);
    }
    for (const auto& p : world->people) {
      shredkv_attrs_t* profile = nullptr;
      CheckC(shredkv_get_profile(world->store, &p, &profile, &err), err, "warm-up");
      shredkv_attrs_destroy(profile);
    }
    return world;
  }();
  return *g_c;
}

void BM_LookupC(benchmark::State& state) {
  auto& w = C();
  std::uint64_t i = 0;
  char* err = nullptr;
  for (auto _ : state) {
    const std::string email = BindingEmail(LookupPerson(i++));
    const shredkv_identifier_t id{"email", email.data(), email.size()};
    shredkv_person_id_t out;
    if (shredkv_resolve(w.store, &id, &out, &err) != SHREDKV_OK) {
      Skip(state, err);
      break;
    }
    benchmark::DoNotOptimize(out);
  }
  shredkv_free(err);
  state.SetItemsProcessed(static_cast<std::int64_t>(i));
}

void BM_AppendC(benchmark::State& state) {
  auto& w = C();
  std::uint64_t n = 0;
  char* err = nullptr;
  const char* fields[] = {"duration_ms"};
  for (auto _ : state) {
    shredkv_writebatch_t* batch = shredkv_writebatch_create();
    for (std::size_t k = 0; k < kBatchEvents; ++k, ++n) {
      shredkv_attrs_t* props = shredkv_attrs_create();
      const std::string url = BindingUrl(n);
      shredkv_attrs_set_string(props, "url", url.data(), url.size());
      shredkv_attrs_set_int64(props, "duration_ms", static_cast<std::int64_t>(n % 5000));
      shredkv_attrs_set_double(props, "score", static_cast<double>(n % 100) / 7.0);
      shredkv_writebatch_append_event(batch, &w.people[n % kPeople], "page_view",
                                      kBindingBaseTs + static_cast<std::int64_t>(n), props, fields, 1, nullptr);
      shredkv_attrs_destroy(props);
    }
    const int rc = shredkv_write(w.store, batch, &err);
    shredkv_writebatch_destroy(batch);
    if (rc != SHREDKV_OK) {
      Skip(state, err);
      break;
    }
  }
  shredkv_free(err);
  state.SetItemsProcessed(static_cast<std::int64_t>(n));
}

}  // namespace

void RegisterBindingWorkloads() {
  benchmark::RegisterBenchmark("Binding/lookup/cpp", BM_LookupCpp)->Unit(benchmark::kMicrosecond);
  benchmark::RegisterBenchmark("Binding/lookup/c_api", BM_LookupC)->Unit(benchmark::kMicrosecond);
  benchmark::RegisterBenchmark("Binding/batched_append/cpp", BM_AppendCpp)->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark("Binding/batched_append/c_api", BM_AppendC)->Unit(benchmark::kMillisecond);
}

void CloseBindingWorlds() {
  if (g_cpp != nullptr) {
    (void)g_cpp->store->Close();
    delete g_cpp;
    g_cpp = nullptr;
  }
  if (g_c != nullptr) {
    char* err = nullptr;
    (void)shredkv_close(g_c->store, &err);
    shredkv_free(err);
    delete g_c;
    g_c = nullptr;
  }
}

}  // namespace shredkv_bench
