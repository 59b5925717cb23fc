// Registration of the benchmark workloads (workloads.cc).
#ifndef SHREDKV_BENCH_WORKLOADS_H_
#define SHREDKV_BENCH_WORKLOADS_H_

namespace benchmark {
class State;
}

namespace shredkv_bench {

// Registers <Workload>/<system> for every workload and available system,
// with iteration counts from config(). Call after SetConfig().
void RegisterWorkloads();
// Closes every data set and deletes its directory.
void CloseWorlds();
// Benchmarks that stopped with an error (the binary then exits 1).
int ErrorCount();
// Stops a benchmark with an error that ErrorCount() counts.
void Skip(benchmark::State& state, const char* what);

}  // namespace shredkv_bench

#endif  // SHREDKV_BENCH_WORKLOADS_H_
