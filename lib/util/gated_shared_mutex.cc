#include "util/gated_shared_mutex.h"

namespace shredkv::util {
namespace {

// Shared holds of any GatedSharedMutex by this thread: re-entry skips the
// gate. (Counted across instances: a thread inside one store that enters
// another skips that one's gate too, which costs fairness, not safety.)
thread_local int shared_holds = 0;

std::int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

void GatedSharedMutex::lock() {
  if (writers_waiting_.fetch_add(1, std::memory_order_acq_rel) == 0) {
    writer_since_ns_.store(NowNs(), std::memory_order_release);
  }
  mu_.lock();
  {
    std::lock_guard gate(gate_mu_);
    writers_waiting_.fetch_sub(1, std::memory_order_acq_rel);
  }
  gate_cv_.notify_all();
}

void GatedSharedMutex::unlock() { mu_.unlock(); }

void GatedSharedMutex::lock_shared() {
  if (shared_holds == 0 && writers_waiting_.load(std::memory_order_acquire) > 0) {
    const std::int64_t waited = NowNs() - writer_since_ns_.load(std::memory_order_acquire);
    const std::int64_t period = std::chrono::nanoseconds(kGatePeriod).count();
    const std::int64_t window = std::chrono::nanoseconds(kGateWindow).count();
    const std::int64_t phase = waited < 0 ? 0 : waited % period;
    if (phase < window) {  // the gate is closed: yield until the window ends
      gate_waits_.fetch_add(1, std::memory_order_relaxed);
      std::unique_lock gate(gate_mu_);
      gate_cv_.wait_for(gate, std::chrono::nanoseconds(window - phase),
                        [this] { return writers_waiting_.load(std::memory_order_acquire) == 0; });
    }
  }
  mu_.lock_shared();
  ++shared_holds;
}

void GatedSharedMutex::unlock_shared() {
  --shared_holds;
  mu_.unlock_shared();
}

}  // namespace shredkv::util
