#include "engine/metrics.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>

namespace shredkv {

std::uint64_t OperationStats::QuantileUpperBoundUs(double q) const {
  std::uint64_t total = 0;
  for (std::uint64_t n : latency_buckets) total += n;
  if (total == 0) return 0;
  if (q <= 0) q = 1e-9;
  if (q > 1) q = 1;
  // The rank of the quantile, 1..total (at least the first call).
  const auto rank = std::max<std::uint64_t>(1, static_cast<std::uint64_t>(std::ceil(static_cast<double>(total) * q)));
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < latency_buckets.size(); ++i) {
    seen += latency_buckets[i];
    if (seen >= rank) return i + 1 < latency_buckets.size() ? std::uint64_t{1} << i : UINT64_MAX;
  }
  return UINT64_MAX;
}

}  // namespace shredkv

namespace shredkv::engine {

std::string_view OperationName(Operation op) {
  switch (op) {
    case Operation::kWrite: return "write";
    case Operation::kResolve: return "resolve";
    case Operation::kGetPerson: return "get_person";
    case Operation::kGetProfile: return "get_profile";
    case Operation::kGetRecord: return "get_record";
    case Operation::kErase: return "erase";
    case Operation::kAcquireLease: return "acquire_lease";
    case Operation::kPurge: return "purge";
    case Operation::kRotateEpoch: return "rotate_epoch";
    case Operation::kCompactData: return "compact_data";
    case Operation::kSweep: return "sweep";
    case Operation::kRunMaintenance: return "run_maintenance";
    case Operation::kVerify: return "verify";
    case Operation::kCount: break;
  }
  return "unknown";
}

void OperationMetrics::Record(Operation op, std::int64_t micros, bool ok) {
  Counters& c = ops_[static_cast<std::size_t>(op)];
  const std::uint64_t us = micros > 0 ? static_cast<std::uint64_t>(micros) : 0;
  // Bucket i holds (2^(i-1), 2^i] µs; 0 and 1 µs go to bucket 0.
  const std::size_t bucket = us <= 1 ? 0 : static_cast<std::size_t>(std::bit_width(us - 1));
  c.calls.fetch_add(1, std::memory_order_relaxed);
  if (!ok) c.errors.fetch_add(1, std::memory_order_relaxed);
  c.total_us.fetch_add(us, std::memory_order_relaxed);
  c.buckets[bucket < kBuckets ? bucket : kBuckets - 1].fetch_add(1, std::memory_order_relaxed);
}

std::vector<OperationStats> OperationMetrics::Snapshot() const {
  std::vector<OperationStats> out;
  for (std::size_t i = 0; i < ops_.size(); ++i) {
    const Counters& c = ops_[i];
    OperationStats s;
    s.name = std::string(OperationName(static_cast<Operation>(i)));
    s.calls = c.calls.load(std::memory_order_relaxed);
    s.errors = c.errors.load(std::memory_order_relaxed);
    s.total_us = c.total_us.load(std::memory_order_relaxed);
    for (std::size_t b = 0; b < kBuckets; ++b) s.latency_buckets[b] = c.buckets[b].load(std::memory_order_relaxed);
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace shredkv::engine
