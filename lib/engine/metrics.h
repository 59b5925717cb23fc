// OperationMetrics: calls, failures and a latency histogram of the store's
// main operations since open (StoreStats::operations, docs/operations.md).
//
// A histogram is 28 counters: bucket i < 27 counts calls that took at most
// 2^i µs (and more than 2^(i-1) µs), the last one longer calls. Recording a
// call is three relaxed atomic increments, no lock.
// Thread safety: thread-safe.
#ifndef SHREDKV_ENGINE_METRICS_H_
#define SHREDKV_ENGINE_METRICS_H_

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <string_view>
#include <vector>

#include "shredkv/store.h"

namespace shredkv::engine {

enum class Operation : std::uint8_t {
  kWrite, kResolve, kGetPerson, kGetProfile, kGetRecord, kErase, kAcquireLease,
  kPurge, kRotateEpoch, kCompactData, kSweep, kRunMaintenance, kVerify,
  kCount  // not an operation
};
std::string_view OperationName(Operation op);

class OperationMetrics {
 public:
  static constexpr std::size_t kBuckets = kLatencyBuckets;

  void Record(Operation op, std::int64_t micros, bool ok);
  // Every operation, in Operation order, including those never called.
  std::vector<OperationStats> Snapshot() const;

  // Times a call: Record(op, elapsed, result.ok()) when it returns.
  template <typename F>
  auto Timed(Operation op, F&& call) {
    const auto t0 = std::chrono::steady_clock::now();
    auto result = call();
    Record(op, std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0).count(),
           result.ok());
    return result;
  }

 private:
  struct Counters {
    std::atomic<std::uint64_t> calls{0}, errors{0}, total_us{0};
    std::array<std::atomic<std::uint64_t>, kBuckets> buckets{};
  };
  std::array<Counters, static_cast<std::size_t>(Operation::kCount)> ops_;
};

}  // namespace shredkv::engine

#endif  // SHREDKV_ENGINE_METRICS_H_
