// StoreImpl: the engine behind shredkv::Store.
//
// Write order (design §2): the keys of new people are committed in `keys`
// first, then the `data` transaction that uses them. A crash in between
// leaves a key with no data (an orphan key: it protects nothing and is not
// collected yet, docs/architecture.md §12), never data without
// its key. Every write runs under write_mu_, so the two environments see one
// writer at a time and LMDB's writer locks are always taken in the order
// data → keys.
//
// Reads of a person hold that person's stripe lock shared for the whole read
// (key lookup, row fetch, decrypt); erasure holds it exclusive around the
// `keys` commit and the cache invalidation, so no read that returns after
// erasure can have used the shredded key.
// Thread safety: see shredkv/store.h.
#ifndef SHREDKV_ENGINE_STORE_IMPL_H_
#define SHREDKV_ENGINE_STORE_IMPL_H_

#include <array>
#include <atomic>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>

#include <condition_variable>
#include <deque>
#include <thread>

#include "crypto/aead.h"
#include "engine/audit.h"
#include "engine/feed.h"
#include "engine/identifiers.h"
#include "engine/leases.h"
#include "engine/person_locks.h"
#include "engine/policy.h"
#include "engine/retention.h"
#include "keys/key_store.h"
#include "shredkv/store.h"
#include "storage/environment.h"
#include "storage/process_guard.h"
#include "util/gated_shared_mutex.h"

namespace shredkv::engine {

// 2: per person × category keys (person rows name their key slot, profiles
// one row per slot) and the retention time index (tables expiry,
// expiry_refs). 3: analytics rows keyed bucket ‖ row id, unlinkable from
// event rows (engine/analytics_link.h); meta `analytics_granularity`. A
// format-2 store is migrated at open (engine/migration.cc); format 1 and
// formats newer than this are UnsupportedVersion.
inline constexpr std::uint32_t kDataFormatVersion = 3;
inline constexpr std::uint32_t kOldestDataFormatVersion = 2;

struct DataTables {
  storage::Table meta, people, ident, ident_by_person, profiles, events, records, analytics;
  storage::Table erased;  // person → plain(request id): erasure applied to `data`
  storage::Table audit, audit_by_request;
  storage::Table versions;  // person → plain(u64): bumped by every non-append change
  storage::Table outbox;    // the change feed
  storage::Table restrictions;     // person → plain(restriction)
  storage::Table consent;          // person ‖ purpose → plain(u8 granted ‖ i64 time)
  storage::Table consent_history;  // person ‖ u64 seq → sealed(consent record)
  storage::Table expiry, expiry_refs;  // the retention time index (engine/retention.h)
};

class StoreImpl final : public Store {
 public:
  static Result<std::unique_ptr<Store>> Open(Options options);
  ~StoreImpl() override;

  Status Close() override;

  Result<PersonId> CreatePerson(const std::vector<Identifier>& identifiers,
                                const Attributes& profile) override;
  Result<PersonId> Resolve(const Identifier& identifier) override;
  Result<PersonInfo> GetPerson(const PersonId& id) override;
  Status LinkIdentifier(const PersonId& id, const Identifier& identifier) override;
  Status UnlinkIdentifier(const PersonId& id, const Identifier& identifier) override;

  Result<Attributes> GetProfile(const PersonId& id) override;
  Status PatchProfile(const PersonId& id, const ProfilePatch& patch) override;

  Status AppendEvent(const PersonId& id, const Event& event) override;
  std::unique_ptr<EventIterator> ScanEvents(const PersonId& id, TimeRange range) override;

  Status Put(const PersonId& id, std::string_view collection, std::string_view key,
             std::string_view value) override;
  Result<std::string> Get(const PersonId& id, std::string_view collection,
                          std::string_view key) override;
  Status Delete(const PersonId& id, std::string_view collection, std::string_view key) override;
  // Get with the record's collection and category.
  Result<Record> GetRecord(const PersonId& id, std::string_view collection, std::string_view key);
  std::unique_ptr<RecordIterator> ScanRecords(const PersonId& id, std::string_view collection,
                                              std::string_view prefix) override;

  std::unique_ptr<AnalyticsIterator> ScanAnalytics(const AnalyticsQuery& query) override;

  Status Write(const WriteBatch& batch) override;
  Result<StoreStats> Stats() override;

  Result<ErasureReceipt> Erase(const std::vector<PersonId>& people, const EraseOptions& options) override;
  Result<ErasureReceipt> EraseByIdentifier(const Identifier& identifier, const EraseOptions& options) override;
  Result<ErasureReceipt> EraseCategory(const PersonId& person, std::string_view category,
                                       const EraseOptions& options) override;
  Result<ErasureReceipt> GetErasure(std::string_view request_id) override;
  Status Unsuppress(const Identifier& identifier) override;
  Result<PurgeResult> Purge(std::size_t budget_rows) override;
  Result<RotationResult> RotateEpoch() override;
  Result<CompactionResult> CompactData() override;
  Status RunMaintenance() override;
  Result<AuditVerification> VerifyAuditLog() override;

  Status SetRetention(const RetentionRules& rules) override;
  Result<RetentionRules> GetRetention() override;
  Result<SweepResult> Sweep(std::size_t budget_rows) override;

  Status Rectify(const PersonId& id, const Rectification& rectification) override;
  Result<std::vector<Notice>> ReadFeed(std::size_t max) override;
  Status AckFeed(std::uint64_t cursor) override;
  std::unique_ptr<Iterator<ExportItem>> Export(const PersonId& id) override;

  Status Restrict(const PersonId& id, const RestrictionSpec& spec) override;
  Status Unrestrict(const PersonId& id, const RestrictionSpec& spec) override;
  Result<RestrictionState> GetRestriction(const PersonId& id) override;
  Status SetConsent(const PersonId& id, std::string_view purpose, bool granted, std::string_view source) override;
  Result<std::map<std::string, bool>> GetConsent(const PersonId& id) override;
  Result<std::vector<ConsentRecord>> GetConsentHistory(const PersonId& id) override;
  Result<std::unique_ptr<Lease>> AcquireLease(const PersonId& id, std::string_view purpose) override;
  Result<VerifyReport> Verify() override;

  Outbox& outbox() { return *outbox_; }
  const Retention& retention() const { return *retention_; }
  // The store's clock (Options::clock or the system clock), ms since the epoch.
  std::int64_t NowMs() const { return Now(); }
  const Policy& policy() const { return *policy_; }
  LeaseTable& leases() { return leases_; }
  Result<RestrictionState> ReadRestriction(storage::ReadTxn& txn, const PersonId& id) const;
  Result<std::map<std::string, bool>> ReadConsent(storage::ReadTxn& txn, const PersonId& id) const;
  // The person's change version (0 if never changed). REQUIRES: in a txn.
  Result<std::uint64_t> PersonVersion(storage::ReadTxn& txn, const PersonId& id) const;

  // The key store (for the export iterator and forensic tests).
  keys::KeyStore& key_store() { return *keys_; }

  // ---- for iterators and the layers above (not part of the public API) ----

  // Shared while a call is in flight; Close() takes it exclusively.
  util::GatedSharedMutex& close_mutex() { return close_mu_; }
  // Event rows the retention back-fill skipped because they did not open or
  // decode, since open (for tests and diagnostics).
  std::uint64_t backfill_unreadable_rows() const { return backfill_unreadable_rows_.load(); }
  // OK unless closed or used after fork. REQUIRES: close_mutex() held shared.
  Status CheckUsable() const;
  PersonLocks& person_locks() { return person_locks_; }
  // The person's key: NotFound / Erased for people without one.
  Result<keys::DekHandle> PersonKey(const PersonId& id);
  storage::Environment& data() { return *data_; }
  const DataTables& tables() const { return tables_; }
  const crypto::SecretKey& index_key() const { return keys_->index_key(); }
  std::size_t batch_size() const { return options_.iterator_batch_size; }
  // The key of the analytics row of the event (ts, seq) sealed under the slot
  // key whose analytics link is `link` (engine/analytics_link.h).
  std::string AnalyticsKeyFor(std::string_view link, std::int64_t ts_ms, std::uint64_t seq) const;
  // 16-byte keyed hash of a collection name (store-wide key).
  std::string CollectionHash(std::string_view collection) const;
  // 16-byte hash of a record key under the person's own key: unlinkable once
  // the key is shredded.
  static std::string RecordKeyHash(const crypto::SecretKey& dek, std::string_view collection,
                                   std::string_view key);

 private:
  StoreImpl() = default;
  Status OpenDataEnvironment(bool create);
  std::int64_t Now() const;
  // REQUIRES: write_mu_ held. Applies the data side of an erasure (release
  // or keep identifiers, analytics mode, audit entry) for people whose
  // `erased` marker is missing; idempotent, so crash recovery can rerun it.
  Status ApplyErasureToData(storage::WriteTxn& txn, const std::vector<keys::PurgeTicket>& tickets,
                            const keys::ErasureRequest* request, std::string* audit_hash,
                            std::uint64_t* next_seq);
  // REQUIRES: write_mu_ held. Deletes up to `budget` rows of the person.
  Status PurgePerson(storage::WriteTxn& txn, const PersonId& id, std::uint64_t budget,
                     std::uint64_t* deleted, bool* complete);
  // REQUIRES: write_mu_ held. Deletes up to `budget` rows of the person
  // sealed under the erased category key `slot`.
  Status PurgeCategory(storage::WriteTxn& txn, const PersonId& id, std::uint32_t slot, std::uint64_t budget,
                       std::uint64_t* deleted, bool* complete);
  Result<PurgeResult> PurgeLocked(std::size_t budget_rows);
  // REQUIRES: write_mu_ held. See Sweep.
  Result<SweepResult> SweepLocked(std::size_t budget_rows);
  // At open: stores Options::retention, or loads the stored rules.
  Status InitRetention();
  // REQUIRES: write_mu_ held. Stores `rules` and swaps them in; records a
  // time index back-fill for the event names that gained a rule.
  Status ReplaceRetentionLocked(const RetentionRules& rules);
  // REQUIRES: write_mu_ held. One transaction of the pending time index
  // back-fill (engine/retention.h IndexBackfill): up to 1,000 event rows
  // examined; rows that do not open or decode are skipped and counted in
  // backfill_unreadable_rows_. *done once no back-fill is pending.
  Status BackfillIndexBatch(bool* done);
  // Runs the pending back-fill to its end, one BackfillIndexBatch per
  // close_mu_ (shared) + write_mu_ hold. REQUIRES: neither held.
  Status FinishIndexBackfill();
  // At open: applies the data side of erasures a crash cut short.
  Status RecoverErasures();
  // At open, after RecoverErasures: migrates a format-2 `data` environment
  // to format 3 in bounded, resumable transactions (engine/migration.cc).
  Status MigrateData();
  // The analytics rows of `ticket`'s person (or category slot) that the
  // data side of an erasure must unlink or delete. REQUIRES: write_mu_ held.
  Result<std::vector<std::string>> TicketAnalyticsKeys(storage::ReadTxn& txn, const keys::PurgeTicket& ticket);
  // The analytics links an erasure of `person` in `mode` stores in its purge
  // ticket: empty for kKeep; slot → link of every key slot (or only `slot`)
  // otherwise. REQUIRES: write_mu_ held.
  Result<std::string> TicketLinks(const PersonId& person, std::uint32_t slot, AnalyticsOnErase mode);
  Result<bool> RotationDue();
  Status Suppressed(std::string_view hash, bool* suppressed);
  void MaintenanceLoop();
  struct PendingErase {
    std::vector<PersonId> people;
    EraseOptions options;
    keys::ErasureRequest request;
    Status status;
    std::string audit_hash;
    bool done = false;  // guarded by erase_queue_mu_
  };
  // REQUIRES: called by the group's leader only.
  void CommitEraseGroup(const std::vector<PendingErase*>& group);
  ErasureReceipt ReceiptFrom(const keys::ErasureRequest& r, std::string audit_hash) const;

  Options options_;
  std::unique_ptr<storage::DirectoryClaim> claim_;
  std::unique_ptr<keys::KeyStore> keys_;
  std::unique_ptr<storage::Environment> data_;
  DataTables tables_;
  std::optional<IdentifierRegistry> registry_;
  crypto::CipherId cipher_ = crypto::CipherId::kXChaCha20Poly1305;
  std::uint64_t fork_generation_ = 0;

  // Shared by every call, exclusive for Close and the file swaps; writer-first
  // so a steady stream of calls cannot hold off a swap or Close.
  util::GatedSharedMutex close_mu_;
  std::atomic<bool> closed_{false};
  // Set when a file swap left an environment closed: every call fails with
  // it until the store is reopened.
  mutable std::mutex fatal_mu_;
  Status fatal_;
  void SetFatal(Status s) {
    std::lock_guard lock(fatal_mu_);
    if (fatal_.ok()) fatal_ = std::move(s);
  }
  std::mutex write_mu_;
  std::mutex rotation_mu_;  // one rotation or compaction at a time
  std::mutex erase_queue_mu_;
  std::condition_variable erase_queue_cv_;
  std::deque<PendingErase*> erase_queue_;  // guarded by erase_queue_mu_
  bool erase_leader_ = false;              // guarded by erase_queue_mu_
  std::uint64_t next_event_seq_ = 1;  // guarded by write_mu_
  // The data format as stored: kOldestDataFormatVersion until MigrateData()
  // finished. Set at open, before any call is served.
  std::uint32_t data_format_ = kDataFormatVersion;
  // The stored analytics granularity (data meta `analytics_granularity`).
  std::int64_t analytics_granularity_ms_ = 3600ll * 1000;

  PersonLocks person_locks_;
  std::optional<AuditLog> audit_;
  std::optional<Outbox> outbox_;
  std::optional<Policy> policy_;
  std::optional<Retention> retention_;
  LeaseTable leases_;
  std::atomic<std::uint64_t> tracking_rejected_{0};
  std::atomic<std::uint64_t> tracking_dropped_{0};
  std::atomic<std::uint64_t> suppressed_rejections_{0};
  std::atomic<std::uint64_t> backfill_unreadable_rows_{0};

  std::thread maintenance_thread_;
  std::mutex maintenance_mu_;
  std::condition_variable maintenance_cv_;
  bool maintenance_stop_ = false;  // guarded by maintenance_mu_

  friend class BatchApplier;
};

}  // namespace shredkv::engine

#endif  // SHREDKV_ENGINE_STORE_IMPL_H_
