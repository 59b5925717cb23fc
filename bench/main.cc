// shredkv_bench: Google Benchmark binary comparing shredkv with raw LMDB,
// RocksDB and SQLite on the workloads of docs/performance.md.
//
//   shredkv_bench [--scale=tiny|default|full|<factor>] [--dir=<path>]
//                 [any --benchmark_* flag, e.g. --benchmark_format=json]
//
// SHREDKV_BENCH_SCALE and SHREDKV_BENCH_DIR set the same as the flags (the
// flags win). Stores are created in a fresh directory under --dir (default:
// the system temp directory), which is deleted at exit.
#include <benchmark/benchmark.h>
#include <lmdb.h>
#include <sodium.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "binding.h"
#include "sharded.h"
#include "common.h"
#include "workloads.h"

#ifdef SHREDKV_BENCH_HAVE_ROCKSDB
#include <rocksdb/version.h>
#endif
#ifdef SHREDKV_BENCH_HAVE_SQLITE
#include <sqlite3.h>
#endif

namespace {

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr ? v : "";
}

}  // namespace

int main(int argc, char** argv) {
  using namespace shredkv_bench;
  std::string scale = Env("SHREDKV_BENCH_SCALE");
  std::string parent = Env("SHREDKV_BENCH_DIR");
  // Take our flags out before Google Benchmark sees the rest.
  std::vector<char*> args;
  for (int i = 0; i < argc; ++i) {
    const std::string a = argv[i];
    if (a.rfind("--scale=", 0) == 0) {
      scale = a.substr(8);
    } else if (a.rfind("--dir=", 0) == 0) {
      parent = a.substr(6);
    } else {
      args.push_back(argv[i]);
    }
  }
  int n = static_cast<int>(args.size());
  args.push_back(nullptr);

  Config cfg;
  try {
    cfg = Config::ForScale(scale);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "shredkv_bench: %s\n", e.what());
    return 2;
  }
  if (parent.empty()) parent = std::filesystem::temp_directory_path().string();
  std::string tmpl = parent + "/shredkv-bench-XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr) {
    std::fprintf(stderr, "shredkv_bench: cannot create a directory under '%s': %s\n", parent.c_str(),
                 std::strerror(errno));
    return 2;
  }
  cfg.dir = tmpl;
  SetConfig(cfg);

  int rc = 0;
  try {
    const RowSizes& rs = row_sizes();
    benchmark::AddCustomContext("shredkv_scale", cfg.scale);
    benchmark::AddCustomContext("shredkv_config", cfg.Describe());
    benchmark::AddCustomContext("shredkv_cipher", rs.cipher);
    benchmark::AddCustomContext("aes_ni", rs.aes_ni ? "yes" : "no");
    benchmark::AddCustomContext(
        "row_bytes", "event_payload=" + std::to_string(rs.event_payload) + " event=" + std::to_string(rs.event_row) +
                         " analytics=" + std::to_string(rs.analytics_row) + " person=" +
                         std::to_string(rs.person_row) + " profile=" + std::to_string(rs.profile_row));
    // bench/run.sh sets this to the git revision (and "+dirty" for local changes).
    if (const std::string rev = Env("SHREDKV_BENCH_REVISION"); !rev.empty()) {
      benchmark::AddCustomContext("shredkv_revision", rev);
    }
    benchmark::AddCustomContext("lmdb", MDB_VERSION_STRING);
    benchmark::AddCustomContext("libsodium", sodium_version_string());
#ifdef SHREDKV_BENCH_HAVE_ROCKSDB
    benchmark::AddCustomContext("rocksdb", std::to_string(ROCKSDB_MAJOR) + "." + std::to_string(ROCKSDB_MINOR) +
                                               "." + std::to_string(ROCKSDB_PATCH));
#endif
#ifdef SHREDKV_BENCH_HAVE_SQLITE
    benchmark::AddCustomContext("sqlite", sqlite3_libversion());
#endif
    std::fprintf(stderr, "shredkv_bench: %s; cipher %s (AES-NI %s); stores in %s\n", cfg.Describe().c_str(),
                 rs.cipher.c_str(), rs.aes_ni ? "yes" : "no", cfg.dir.c_str());

    RegisterWorkloads();
    RegisterBindingWorkloads();
    RegisterShardedWorkloads();
    benchmark::Initialize(&n, args.data());
    if (benchmark::ReportUnrecognizedArguments(n, args.data())) {
      rc = 1;
    } else {
      benchmark::RunSpecifiedBenchmarks();
      if (ErrorCount() > 0) {
        std::fprintf(stderr, "shredkv_bench: %d benchmark(s) failed\n", ErrorCount());
        rc = 1;
      }
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "shredkv_bench: %s\n", e.what());
    rc = 1;
  }
  CloseWorlds();
  CloseBindingWorlds();
  CloseShardedWorlds();
  benchmark::Shutdown();
  std::error_code ec;
  std::filesystem::remove_all(cfg.dir, ec);
  return rc;
}
