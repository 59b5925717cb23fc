// The store's retention calls: rules (stored in `data` meta) and the sweep
// that removes expired rows through the time index (engine/retention.h).
#include <algorithm>

#include "engine/store_impl.h"
#include "util/test_point.h"

namespace shredkv::engine {
namespace {

// Rows one sweep transaction deletes at most: writers wait at most this long.
constexpr std::uint64_t kSweepRowsPerTxn = 1000;

}  // namespace

Status StoreImpl::InitRetention() {
  if (options_.retention) {
    if (Status v = Retention::Validate(*options_.retention); !v.ok()) return v;
    std::lock_guard write_lock(write_mu_);
    Status s = data_->Update([&](storage::WriteTxn& txn) {
      return Retention::StoreRules(txn, tables_.meta, *options_.retention);
    });
    if (!s.ok()) return s;
    retention_->SetRules(*options_.retention);
    return Status::OK();
  }
  RetentionRules stored;
  Status s = data_->View([&](storage::ReadTxn& txn) -> Status {
    auto r = Retention::Load(txn, tables_.meta);
    if (!r.ok()) return r.status();
    stored = std::move(r).value();
    return Status::OK();
  });
  if (!s.ok()) return s;
  retention_->SetRules(stored);
  return Status::OK();
}

Status StoreImpl::SetRetention(const RetentionRules& rules) {
  std::shared_lock close_lock(close_mu_);
  if (Status s = CheckUsable(); !s.ok()) return s;
  if (Status v = Retention::Validate(rules); !v.ok()) return v;
  std::lock_guard write_lock(write_mu_);
  Status s = data_->Update([&](storage::WriteTxn& txn) { return Retention::StoreRules(txn, tables_.meta, rules); });
  if (!s.ok()) return s;
  retention_->SetRules(rules);
  return Status::OK();
}

Result<RetentionRules> StoreImpl::GetRetention() {
  std::shared_lock close_lock(close_mu_);
  if (Status s = CheckUsable(); !s.ok()) return s;
  return retention_->rules()->rules;
}

Result<SweepResult> StoreImpl::Sweep(std::size_t budget_rows) {
  std::shared_lock close_lock(close_mu_);
  if (Status s = CheckUsable(); !s.ok()) return s;
  std::lock_guard write_lock(write_mu_);
  return SweepLocked(budget_rows);
}

Result<SweepResult> StoreImpl::SweepLocked(std::size_t budget_rows) {
  SweepResult result;
  const auto rules = retention_->rules();
  const std::int64_t now = Now();
  std::uint64_t remaining = budget_rows;
  bool more = !rules->empty();
  while (remaining > 0 && more) {
    SweepCounts batch;
    // Each batch deletes rows, their index entries and refs, and adds its
    // counts to the meta counters, in one transaction: a crash keeps whole
    // batches, and the next sweep resumes at the index's new head.
    Status s = data_->Update([&](storage::WriteTxn& txn) -> Status {
      auto counts = retention_->SweepBatch(txn, *rules, now, std::min(remaining, kSweepRowsPerTxn));
      if (!counts.ok()) return counts.status();
      batch = *counts;
      if (batch.total() == 0) return Status::OK();
      auto c = Retention::ReadCounters(txn, tables_.meta);
      if (!c.ok()) return c.status();
      c->removed += batch.total();
      c->unaudited_personal += batch.events + batch.records;
      c->unaudited_analytics += batch.analytics;
      return Retention::WriteCounters(txn, tables_.meta, *c);
    });
    if (!s.ok()) return s.WithContext("sweeping expired rows");
    result.seeks += batch.seeks;
    result.entries_read += batch.entries_read;
    if (batch.total() == 0) break;
    util::TestPoint("sweep.after_batch");
    ++result.batches;
    result.events_deleted += batch.events;
    result.records_deleted += batch.records;
    result.analytics_deleted += batch.analytics;
    remaining -= std::min(remaining, batch.total());
    more = batch.more || batch.total() == kSweepRowsPerTxn;
  }
  // One audit entry for what this sweep removed, plus what a sweep cut
  // short by a crash removed before it could write its entry.
  Retention::Counters unaudited;
  Status r = data_->View([&](storage::ReadTxn& txn) -> Status {
    auto c = Retention::ReadCounters(txn, tables_.meta);
    if (!c.ok()) return c.status();
    unaudited = *c;
    return Status::OK();
  });
  if (!r.ok()) return r;
  const bool audit_due = unaudited.unaudited_personal != 0 || unaudited.unaudited_analytics != 0;
  Status a = !audit_due ? Status::OK() : data_->Update([&](storage::WriteTxn& txn) -> Status {
    auto c = Retention::ReadCounters(txn, tables_.meta);
    if (!c.ok()) return c.status();
    if (c->unaudited_personal == 0 && c->unaudited_analytics == 0) return Status::OK();
    auto hash = audit_->Append(txn, AuditEntry{AuditKind::kSweep, now, "", c->unaudited_personal,
                                               c->unaudited_analytics, 0});
    if (!hash.ok()) return hash.status();
    c->unaudited_personal = 0;
    c->unaudited_analytics = 0;
    return Retention::WriteCounters(txn, tables_.meta, *c);
  });
  if (!a.ok()) return a.WithContext("auditing the sweep");
  // Stopped by the budget: count what is left (cost proportional to it).
  // Otherwise every row expired as of `now` was removed.
  if (!more || remaining > 0) return result;
  Status p = data_->View([&](storage::ReadTxn& txn) -> Status {
    auto pending = retention_->CountPending(txn, *rules, now);
    if (!pending.ok()) return pending.status();
    result.pending = *pending;
    return Status::OK();
  });
  if (!p.ok()) return p;
  return result;
}

}  // namespace shredkv::engine
