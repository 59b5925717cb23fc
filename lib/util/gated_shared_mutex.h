// A shared mutex under which a steady stream of shared holders cannot starve
// an exclusive one. glibc's rwlock (std::shared_mutex) prefers readers: with
// calls always overlapping, a writer (the store's file swap after a rotation
// or compaction, or Close) can wait forever. Here a waiting writer holds back
// *new* shared holders at a gate, so the ones in flight drain and it gets in.
//
// The gate is bounded and skips re-entry, so it cannot deadlock: a thread
// that already holds a GatedSharedMutex shared passes straight through (its
// outer hold is what the writer waits for), and any other new holder waits
// at most kMaxYield before it queues on the rwlock as before — a shared
// holder that waits for another thread's shared acquisition (a lease drain
// waiting for a worker's read) is delayed, never stuck.
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
  // How long a new shared holder yields to a waiting writer at most.
  static constexpr std::chrono::milliseconds kMaxYield{200};

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
  std::mutex gate_mu_;
  std::condition_variable gate_cv_;
};

}  // namespace shredkv::util

#endif  // SHREDKV_UTIL_GATED_SHARED_MUTEX_H_
