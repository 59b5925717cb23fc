// Multi-core ingest (sharded.cc): Sharded/ingest/<system>/threads:<T>.
#ifndef SHREDKV_BENCH_SHARDED_H_
#define SHREDKV_BENCH_SHARDED_H_

namespace shredkv_bench {

// Registers Sharded/ingest/{raw_lmdb,shredkv,sharded2}/threads:{1,2,4} and
// Sharded/ingest_partitioned/sharded2/threads:{1,2,4}.
void RegisterShardedWorkloads();
// Closes the stores those built.
void CloseShardedWorlds();

}  // namespace shredkv_bench

#endif  // SHREDKV_BENCH_SHARDED_H_
