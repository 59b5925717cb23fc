#include "util/gated_shared_mutex.h"

namespace shredkv::util {
namespace {

// Shared holds of any GatedSharedMutex by this thread: re-entry skips the
// gate. (Counted across instances: a thread inside one store that enters
// another skips that one's gate too, which costs fairness, not safety.)
thread_local int shared_holds = 0;

}  // namespace

void GatedSharedMutex::lock() {
  writers_waiting_.fetch_add(1, std::memory_order_acq_rel);
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
    gate_waits_.fetch_add(1, std::memory_order_relaxed);
    std::unique_lock gate(gate_mu_);
    gate_cv_.wait_for(gate, kMaxYield, [this] { return writers_waiting_.load(std::memory_order_acquire) == 0; });
  }
  mu_.lock_shared();
  ++shared_holds;
}

void GatedSharedMutex::unlock_shared() {
  --shared_holds;
  mu_.unlock_shared();
}

}  // namespace shredkv::util
