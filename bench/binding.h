// The bindings' per-call cost (binding.cc): Binding/<workload>/<api>.
#ifndef SHREDKV_BENCH_BINDING_H_
#define SHREDKV_BENCH_BINDING_H_

namespace shredkv_bench {

// Registers Binding/lookup/{cpp,c_api} and Binding/batched_append/{cpp,c_api}.
void RegisterBindingWorkloads();
// Closes the stores those built (their directories go with --dir's).
void CloseBindingWorlds();

}  // namespace shredkv_bench

#endif  // SHREDKV_BENCH_BINDING_H_
