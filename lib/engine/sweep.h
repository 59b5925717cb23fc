// Retention as the store runs it (storage limitation, GDPR Art. 5(1)(e)):
// the rules (stored in `data` meta), the back-fill of the time index for
// event names that gain a rule, and the sweep that removes expired rows
// through the index in bounded transactions (engine/retention.h holds the
// index and the rules themselves; docs/retention.md).
// Thread safety: thread-safe.
#ifndef SHREDKV_ENGINE_SWEEP_H_
#define SHREDKV_ENGINE_SWEEP_H_

#include <cstddef>

#include <optional>
#include <string_view>

#include "engine/context.h"
#include "engine/keyring.h"

namespace shredkv::engine {

class Sweeper {
 public:
  explicit Sweeper(EngineContext& ctx) : ctx_(ctx) {}

  // At open: stores Options::retention, or loads the stored rules.
  Status InitRetention();
  // See Store::SetRetention, Store::GetRetention and Store::Sweep. Each
  // takes the call guard itself (a back-fill, one guard per batch).
  Status SetRetention(const RetentionRules& rules);
  Result<RetentionRules> GetRetention();
  Result<SweepResult> Sweep(std::size_t budget_rows);

 private:
  // REQUIRES: write_mu held. Stores `rules` and swaps them in; records a
  // time index back-fill for the event names that gained a rule.
  Status ReplaceRetentionLocked(const RetentionRules& rules);
  // REQUIRES: write_mu held. One transaction of the pending back-fill: up to
  // 1,000 event rows, or 1,000 records of the newly ruled collections (and
  // 16,000 record keys), examined; rows that do not open or decode are
  // skipped and counted. *done once no back-fill is pending.
  Status BackfillIndexBatch(bool* done);
  // The two walks of one back-fill transaction: advance `*backfill` (a walk
  // that reaches its table's end clears its part) and count skipped rows.
  Status BackfillEvents(storage::WriteTxn& txn, IndexBackfill* backfill, std::uint64_t* unreadable);
  Status BackfillRecords(storage::WriteTxn& txn, IndexBackfill* backfill, std::uint64_t* unreadable);
  // The keyring of the person whose ID starts `key` (an events or records
  // key), kept in `*keyring` while the walk stays on that person;
  // `*skip_person` when the person is erased or has no key (the rows await
  // purge, or a kNoSync power loss dropped the key: nothing to index).
  Status KeyringOfRow(std::string_view key, std::optional<Keyring>* keyring, bool* skip_person);
  // Runs the pending back-fill to its end, one BackfillIndexBatch per call
  // guard + write_mu hold. REQUIRES: neither held.
  Status FinishIndexBackfill();
  // REQUIRES: write_mu held.
  Result<SweepResult> SweepLocked(std::size_t budget_rows);

  EngineContext& ctx_;
  // The phase the next budgeted sweep starts with (SweepLocked); guarded by
  // write_mu.
  std::size_t first_phase_ = 0;
};

}  // namespace shredkv::engine

#endif  // SHREDKV_ENGINE_SWEEP_H_
