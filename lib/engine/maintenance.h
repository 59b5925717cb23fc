// Maintenance: the purge of erased people's rows (bounded batches driven by
// the purge tickets in `keys`), epoch rotation (re-wrap every key under a new
// epoch key, destroy the old ones, rebuild `keys`: erasures become
// cryptographic), the rebuild of `data` from its live rows (CompactData),
// and the background loop that runs purge, the retention sweep and due
// rotations every Options::background_maintenance_ms.
// Thread safety: thread-safe; one rotation or compaction at a time
// (rotation_mu). Rotation and compaction swap files under close_mu
// exclusive, so they lock it themselves.
#ifndef SHREDKV_ENGINE_MAINTENANCE_H_
#define SHREDKV_ENGINE_MAINTENANCE_H_

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>

#include "engine/context.h"
#include "engine/erasure.h"
#include "engine/sweep.h"

namespace shredkv::engine {

class Maintenance {
 public:
  Maintenance(EngineContext& ctx, Eraser& eraser, Sweeper& sweeper)
      : ctx_(ctx), eraser_(eraser), sweeper_(sweeper) {}
  ~Maintenance() { Stop(); }
  Maintenance(const Maintenance&) = delete;
  Maintenance& operator=(const Maintenance&) = delete;

  // See Store::Purge, Store::RotateEpoch, Store::CompactData and
  // Store::RunMaintenance. Each takes the call guard itself.
  Result<PurgeResult> Purge(std::size_t budget_rows);
  Result<RotationResult> RotateEpoch();
  Result<CompactionResult> CompactData();
  Status RunMaintenance();
  // One step of the orphan pass (EngineContext::orphan_pass_pending): checks
  // up to `budget` people with keys against `data` and deletes the keys of
  // those without a person row. Returns the people whose keys it deleted;
  // 0 with nothing to do.
  Result<std::size_t> CollectOrphans(std::size_t budget);
  // Materialises the staged analytics rows of buckets that have ended by
  // the store's clock (engine/analytics_staging.h). Returns the rows moved.
  Result<std::uint64_t> MaterialiseClosedAnalytics();

  // Starts the background loop if Options::background_maintenance_ms > 0.
  void Start();
  // Stops and joins the loop (no-op if not running, or from the loop itself).
  void Stop();

 private:
  Result<bool> RotationDue();
  // REQUIRES: write_mu held.
  Result<PurgeResult> PurgeLocked(std::size_t budget_rows);
  // REQUIRES: write_mu held. Deletes up to `budget` rows of the person.
  Status PurgePerson(storage::WriteTxn& txn, const PersonId& id, std::uint64_t budget, std::uint64_t* deleted,
                     bool* complete);
  // REQUIRES: write_mu held. Deletes up to `budget` rows of the person
  // sealed under the erased category key `slot`.
  Status PurgeCategory(storage::WriteTxn& txn, const PersonId& id, std::uint32_t slot, std::uint64_t budget,
                       std::uint64_t* deleted, bool* complete);
  void MaintenanceLoop();

  EngineContext& ctx_;
  Eraser& eraser_;
  Sweeper& sweeper_;
  std::thread maintenance_thread_;
  std::mutex maintenance_mu_;
  std::condition_variable maintenance_cv_;
  bool maintenance_stop_ = false;  // guarded by maintenance_mu_
};

}  // namespace shredkv::engine

#endif  // SHREDKV_ENGINE_MAINTENANCE_H_
