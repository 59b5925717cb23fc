// A shared mutex under which a steady stream of shared holders cannot starve
// an exclusive one. glibc's rwlock (std::shared_mutex) prefers readers: with
// calls always overlapping, a writer (the store's file swap after a rotation
// or compaction, or Close) can wait forever. Here, while a writer waits, a
// gate in front of the shared side closes for the first kGateWindow of every
// kGatePeriod: new shared holders wait (at most until the window ends or the
// writer is in), the holders in flight drain, and the writer gets in.
//
// Bounded and re-entry exempt, so it cannot deadlock and cannot stall a
// store for long: a thread that already holds a GatedSharedMutex shared
// passes straight through (its outer hold is what the writer waits for);
// any other new holder waits at most kGateWindow, and only during the
// gate's windows — a writer stuck behind a long shared holder (a Verify, a
// lease drain) costs other callers at most kGateWindow per kGatePeriod.
//
// Meets the SharedMutex requirements used by std::shared_lock and
// std::unique_lock (lock/unlock, lock_shared/unlock_shared).
// Thread safety: all methods are thread-safe.
#ifndef SHREDKV_UTIL_GATED_SHARED_MUTEX_H_
#define SHREDKV_UTIL_GATED_SHARED_MUTEX_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <shared_mutex>

namespace shredkv::util {

class GatedSharedMutex {
 public:
  // While a writer waits, the gate is closed for the first kGateWindow of
  // every kGatePeriod counted from the moment the first writer began waiting.
  static constexpr std::chrono::milliseconds kGateWindow{200};
  static constexpr std::chrono::milliseconds kGatePeriod{1000};

  GatedSharedMutex() = default;
  GatedSharedMutex(const GatedSharedMutex&) = delete;
  GatedSharedMutex& operator=(const GatedSharedMutex&) = delete;

  void lock();
  void unlock();
  void lock_shared();
  void unlock_shared();

  // Writers waiting in lock(), and shared acquisitions that yielded at the
  // gate so far (for tests and diagnostics).
  int writers_waiting() const { return writers_waiting_.load(std::memory_order_acquire); }
  std::uint64_t gate_waits() const { return gate_waits_.load(std::memory_order_relaxed); }

 private:
  std::shared_mutex mu_;
  std::atomic<int> writers_waiting_{0};
  std::atomic<std::uint64_t> gate_waits_{0};
  // steady_clock nanoseconds when writers_waiting_ last went from 0 to 1.
  std::atomic<std::int64_t> writer_since_ns_{0};
  std::mutex gate_mu_;
  std::condition_variable gate_cv_;
};

}  // namespace shredkv::util

#endif  // SHREDKV_UTIL_GATED_SHARED_MUTEX_H_
