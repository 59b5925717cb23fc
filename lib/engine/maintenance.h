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

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

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

  // See Store::Purge, Store::RotateEpoch, Store::CompactData, Store::Sweep
  // and Store::RunMaintenance. Each takes the call guard itself, reports
  // each job it ran to the listeners and the log (a MaintenanceInfo, and
  // the erasure levels a purge or rotation brought about; `background`
  // says who ran it) and delivers the notices before it returns.
  // REQUIRES: the caller holds no store lock.
  Result<PurgeResult> Purge(std::size_t budget_rows, bool background = false);
  Result<RotationResult> RotateEpoch(bool background = false);
  Result<CompactionResult> CompactData(bool background = false);
  // See Store::RotateRootKey.
  Status RotateRootKey(const std::shared_ptr<KeyProvider>& new_provider);
  Result<SweepResult> Sweep(std::size_t budget_rows, bool background = false);
  Status RunMaintenance(bool background = false);
  // One step of the orphan pass (EngineContext::orphan_pass_pending): checks
  // up to `budget` people with keys against `data` and deletes the keys of
  // those without a person row. Returns the people whose keys it deleted;
  // 0 with nothing to do.
  Result<std::size_t> CollectOrphans(std::size_t budget);
  // Materialises the staged analytics rows of buckets that have ended by
  // the store's clock (engine/analytics_staging.h). Returns the rows moved.
  Result<std::uint64_t> MaterialiseClosedAnalytics();
  // Frees the reader slots of processes that died reading beside this
  // writer (both environments): a killed reader's slot would pin its
  // snapshot's pages, and the files grow, until the next open. Returns the
  // slots freed.
  Result<std::uint64_t> ClearStaleReaders();
  // Finishes a keys-file rebuild a rotation (or a root-key rotation) left
  // pending — its file swap refused while a reader process held READERS
  // (Busy after 30 s), or failed — so that its erasures become
  // cryptographic at the next maintenance round instead of the next
  // rotation or open. Returns 1 if it rebuilt, 0 if nothing was pending.
  Result<std::uint64_t> FinishPendingRebuild();
  // Appends the audit entry of the epoch rotation whose destroy of the
  // older epochs committed and that has none yet (data meta
  // audited_rotation_epoch below the current epoch, every older epoch
  // gone): DoRotateEpoch calls it right after that commit (`rewrapped`: its
  // count; `rotated_now`: the entry is appended whatever the meta row
  // says, since the row holds an epoch number that a snapshot whose `keys`
  // was copied before a rotation and `data` after it has already: review
  // 39, #6), and a writable open calls it for one a crash cut short before
  // its entry (count2 0: not known then; outside audits 39a F2, 39b F4:
  // the entry came only after the rebuild, and a rotation finished by the
  // next open never reached the audit chain). A store without the meta row
  // (earlier builds) gets it at its oldest epoch, with no entry. REQUIRES:
  // rotation_mu held or no rotation possible (an open).
  Status AuditRotation(std::uint64_t rewrapped, bool rotated_now);

  // Erasures made cryptographic before this open are not reported: called
  // by Open, after any interrupted rotation was finished, before Start.
  void InitLevelReports();
  // Starts the background loop if Options::background_maintenance_ms > 0.
  void Start();
  // Stops and joins the loop (no-op if not running, or after
  // AbandonAfterFork). Not from the loop's own thread (StoreImpl::Close
  // refuses there: OnLoopThread).
  void Stop();
  // True on the background loop's thread: in a listener, logger or
  // progress callback it runs.
  bool OnLoopThread() const;
  // In a forked child: the loop's thread does not exist here and its mutex
  // may have been held at the fork. Forgets the thread without joining it
  // (the std::thread object is leaked: destroying a joinable one would
  // terminate), and its wait with it, and makes Stop a no-op. Touches no
  // lock.
  void AbandonAfterFork();

 private:
  // The one keys-file swap of rotations, root-key rotations and
  // FinishPendingRebuild: if a rebuild is pending, keeps reader processes
  // out (Busy after 30 s), makes every call wait, rebuilds the file and
  // swaps it in; a swap that left the keys environment unusable makes the
  // store fatal. Returns whether it rebuilt. REQUIRES: rotation_mu held.
  Result<bool> RebuildPendingKeysFile();
  // The same, for a caller that already excluded live readers (holds
  // EngineContext::ExcludeReaders).
  Result<bool> RebuildPendingKeysFileWithReadersOut();
  Result<bool> RotationDue();
  // The jobs, unreported. DoPurge adds the request ids of the tickets it
  // finished to *finished.
  Result<PurgeResult> DoPurge(std::size_t budget_rows, std::vector<std::string>* finished);
  Result<RotationResult> DoRotateEpoch();
  Result<CompactionResult> DoCompactData();
  // Runs `call` (a job returning Result<T>) and reports it: a
  // MaintenanceInfo with its duration and, from a successful result,
  // `counts(T)` = (done, pending); a log line when it did something or
  // failed. Returns the call's result.
  template <typename Call, typename Counts>
  auto Reported(MaintenanceJob job, bool background, Call call, Counts counts);
  void Report(MaintenanceJob job, bool background, const Status& status, std::int64_t started_us,
              std::uint64_t done, std::uint64_t pending);
  // Queue OnErasureLevelReached notices: for the requests whose purge
  // tickets a purge finished (if they are kPurged now), and for the
  // requests a rotation made cryptographic (key epochs below the oldest
  // epoch and at or above the last such report). Each request is reported
  // at most once a level (kPurged: among the last kReportedPurgedKept).
  void ReportPurgedLevels(const std::vector<std::string>& request_ids);
  void ReportRotationLevels();
  // REQUIRES: levels_mu_ held.
  void ReportLevelsLocked(const std::vector<std::string>& request_ids, ErasureLevel at_least);
  // REQUIRES: write_mu held.
  Result<PurgeResult> PurgeLocked(std::size_t budget_rows, std::vector<std::string>* finished);
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
  // The loop's thread, written by the loop itself first thing (Start's
  // assignment of maintenance_thread_ may not be done when the loop's
  // first callback asks OnLoopThread).
  std::atomic<std::thread::id> loop_thread_{};
  // The loop's wait, on the heap so that AbandonAfterFork can leak it: a
  // condition variable the parent's loop was waiting on at the fork cannot
  // be destroyed in the child (glibc's pthread_cond_destroy waits for that
  // waiter, which never leaves: seen as a hang).
  struct LoopWait {
    std::mutex mu;
    std::condition_variable cv;
    bool stop = false;  // guarded by mu
  };
  std::unique_ptr<LoopWait> wait_ = std::make_unique<LoopWait>();
  bool abandoned_ = false;  // AbandonAfterFork ran (the child's only thread)
  // Level reports (taken before close_mu, with no other store lock held).
  static constexpr std::size_t kReportedPurgedKept = 4096;
  std::mutex levels_mu_;
  std::uint64_t levels_reported_epoch_ = 0;     // guarded by levels_mu_
  std::set<std::string> reported_purged_;        // guarded by levels_mu_
  std::deque<std::string> reported_purged_order_;  // guarded by levels_mu_
  // Requests whose epoch key a reported rotation destroyed but whose
  // receipt read "not cryptographic" because another rotation's rebuild
  // was under way: the next rotation report takes them.
  std::set<std::string> awaiting_rebuild_;  // guarded by levels_mu_
};

}  // namespace shredkv::engine

#endif  // SHREDKV_ENGINE_MAINTENANCE_H_
