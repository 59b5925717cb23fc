// Erasure (design §2, §3). The erase commit in `keys` deletes the people's
// keys and writes fences, purge tickets, suppression entries and the request
// in one fsynced transaction: that commit IS the erasure. Concurrent callers
// share it (group commit: the first caller to find no leader commits all
// queued requests). The data side follows in `data` — identifiers kept for
// purge, analytics rows kept, unlinked or deleted (through the ticket's
// links, engine/analytics_link.h), an `erased` marker, an erasure notice and
// one audit entry per request — and is idempotent, so recovery at open and
// the purge redo it after a crash.
// Thread safety: thread-safe.
#ifndef SHREDKV_ENGINE_ERASURE_H_
#define SHREDKV_ENGINE_ERASURE_H_

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "engine/context.h"

namespace shredkv::engine {

class Eraser {
 public:
  explicit Eraser(EngineContext& ctx) : ctx_(ctx) {}

  // See Store::Erase, Store::EraseCategory, Store::GetErasure and
  // Store::Unsuppress. Each takes the call guard itself.
  Result<ErasureReceipt> Erase(const std::vector<PersonId>& people, const EraseOptions& options);
  // What a request re-applied from another copy's erasure log records of
  // the original (outside audit 40a, F5): its time, and whether it
  // suppressed identifiers (the log's suppressions are added apart, so the
  // erasure here suppresses nothing itself). Default: now, and the options'.
  struct AsOriginal {
    std::int64_t erased_at_ms = 0;  // 0: now
    bool suppressed = false;
  };
  Result<ErasureReceipt> Erase(const std::vector<PersonId>& people, const EraseOptions& options,
                               const AsOriginal& original);
  Result<ErasureReceipt> EraseCategory(const PersonId& person, std::string_view category,
                                       const EraseOptions& options);
  Result<ErasureReceipt> GetErasure(std::string_view request_id);
  Status Unsuppress(const Identifier& identifier);

  // At open: applies the data side of erasures a crash cut short.
  Status RecoverErasures();
  // REQUIRES: write_mu held. Applies the data side of an erasure (release
  // or keep identifiers, analytics mode, marker, notice, audit entry) for
  // tickets whose `erased` marker is missing and whose person still has a
  // `people` row (without it the person's purge has completed: only a
  // missing audit entry is written); idempotent.
  Status ApplyErasureToData(storage::WriteTxn& txn, const std::vector<keys::PurgeTicket>& tickets,
                            const keys::ErasureRequest* request, std::string* audit_hash,
                            std::uint64_t* next_seq);

 private:
  struct PendingErase {
    std::vector<PersonId> people;
    EraseOptions options;
    AsOriginal original;
    keys::ErasureRequest request;
    Status status;
    std::string audit_hash;
    bool done = false;  // guarded by queue_mu_
  };
  // REQUIRES: called by the group's leader only.
  void CommitEraseGroup(const std::vector<PendingErase*>& group);
  // The keys commit of one request: suppression hashes, analytics links and
  // the request row. REQUIRES: write_mu held.
  Status PrepareCommit(PendingErase* p, keys::ErasureCommit* c);
  // The keys side found no key for someone in `people` (`not_found`): still
  // NotFound if that person names no one, Corruption if the person has rows
  // in `data` (the key was lost, not erased: "nothing to erase" would be
  // wrong while the rows are there).
  Status MissingKey(const std::vector<PersonId>& people, Status not_found);
  // The data side of the committed requests of a group (`live[i]` committed
  // as `commits[i]`). REQUIRES: write_mu held.
  void ApplyGroupToData(const std::vector<PendingErase*>& live, const std::vector<keys::ErasureCommit>& commits);
  ErasureReceipt ReceiptFrom(const keys::ErasureRequest& r, std::string audit_hash) const;
  // The analytics rows of `ticket`'s person (or category slot) that the
  // data side must unlink or delete: (event seq, analytics key) — the row is
  // staged under the seq or materialised under the key. REQUIRES: write_mu held.
  Result<std::vector<std::pair<std::uint64_t, std::string>>> TicketAnalyticsRows(storage::ReadTxn& txn,
                                                                                 const keys::PurgeTicket& ticket);
  // The analytics links an erasure of `person` in `mode` stores in its purge
  // ticket: empty for kKeep; slot → link of every key slot (or only `slot`)
  // otherwise. REQUIRES: write_mu held.
  Result<std::string> TicketLinks(const PersonId& person, std::uint32_t slot, AnalyticsOnErase mode);
  // The analytics side of ApplyErasureToData for one ticket.
  Status ApplyAnalyticsMode(storage::WriteTxn& txn, const keys::PurgeTicket& ticket);

  EngineContext& ctx_;
  std::mutex erase_queue_mu_;
  std::condition_variable erase_queue_cv_;
  std::deque<PendingErase*> erase_queue_;  // guarded by erase_queue_mu_
  bool erase_leader_ = false;              // guarded by erase_queue_mu_
};

}  // namespace shredkv::engine

#endif  // SHREDKV_ENGINE_ERASURE_H_
