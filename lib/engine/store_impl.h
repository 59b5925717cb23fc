// StoreImpl: the engine behind shredkv::Store — a thin front that opens the
// store, guards each call and delegates to the services, which share one
// EngineContext (engine/context.h):
//
//   Writer       write_path.h   every change, as a WriteBatch (keys first, then data)
//   Reader       reader.h       reads of a person and of the store
//   Eraser       erasure.h      erase commit (group commit), data side, recovery, receipts
//   Maintenance  maintenance.h  purge, epoch rotation, compaction, the background loop
//   Processing   processing.h   restriction, consent, processing leases
//   Sweeper      sweep.h        retention rules, index back-fill, sweep
//   Verifier     verify.h       Verify, VerifyAuditLog
//   Backups      backup.h       Backup, the erasure log, RestoreBackup
//   iterators    iterators.h    events, records, analytics, export
//
// Write order (design §2): the keys of new people are committed in `keys`
// first, then the `data` transaction that uses them. A crash in between
// leaves a key with no data (an orphan key: it protects nothing and is not
// collected yet, docs/architecture.md §12), never data without its key.
// Thread safety: see shredkv/store.h.
#ifndef SHREDKV_ENGINE_STORE_IMPL_H_
#define SHREDKV_ENGINE_STORE_IMPL_H_

#include <memory>
#include <string>

#include "engine/backup.h"
#include "engine/context.h"
#include "engine/erasure.h"
#include "engine/maintenance.h"
#include "engine/processing.h"
#include "engine/reader.h"
#include "engine/sweep.h"
#include "engine/verify.h"
#include "engine/write_path.h"
#include "shredkv/store.h"

namespace shredkv::engine {

class StoreImpl final : public Store {
 public:
  // Whom an open is for: an application (Store::Open), RestoreBackup
  // opening its own copy, which holds the restore marker (kRestoreMarker)
  // until it is whole, or ReapplyErasureLog opening a copy put back by other
  // means. A writable open of any kind but kRestoreCopy refuses a directory
  // holding the marker. Only kUser destroys, at open, the custody keys the
  // keys file lists to destroy: in a copy they may be another store's, and
  // its restore or re-application decides (outside audit 41a, F2; review
  // 41, #3).
  enum class OpenIntent { kUser, kRestoreCopy, kReapplyCopy };
  static Result<std::unique_ptr<Store>> Open(Options options, OpenIntent intent = OpenIntent::kUser);
  ~StoreImpl() override;

  Status Close() override;

  Result<PersonId> CreatePerson(const std::vector<Identifier>& identifiers,
                                const Attributes& profile) override;
  Result<PersonId> Resolve(const Identifier& identifier) override {
    return ctx_.metrics.Timed(Operation::kResolve, [&] { return reader_.Resolve(identifier); });
  }
  Result<PersonInfo> GetPerson(const PersonId& id) override {
    return ctx_.metrics.Timed(Operation::kGetPerson, [&] { return reader_.GetPerson(id); });
  }
  Status LinkIdentifier(const PersonId& id, const Identifier& identifier) override;
  Status UnlinkIdentifier(const PersonId& id, const Identifier& identifier) override;

  Result<Attributes> GetProfile(const PersonId& id) override {
    return ctx_.metrics.Timed(Operation::kGetProfile, [&] { return reader_.GetProfile(id); });
  }
  // Timed as a profile read (get_profile in the metrics).
  Result<PersonProfile> LookupProfile(const Identifier& identifier) override {
    return ctx_.metrics.Timed(Operation::kGetProfile, [&] { return reader_.LookupProfile(identifier); });
  }
  Status PatchProfile(const PersonId& id, const ProfilePatch& patch) override;

  Status AppendEvent(const PersonId& id, const Event& event) override;
  std::unique_ptr<EventIterator> ScanEvents(const PersonId& id, TimeRange range) override;

  Status Put(const PersonId& id, std::string_view collection, std::string_view key,
             std::string_view value) override;
  Result<std::string> Get(const PersonId& id, std::string_view collection, std::string_view key) override;
  Result<Record> GetRecord(const PersonId& id, std::string_view collection, std::string_view key) override {
    return ctx_.metrics.Timed(Operation::kGetRecord, [&] { return reader_.GetRecord(id, collection, key); });
  }
  Status Delete(const PersonId& id, std::string_view collection, std::string_view key) override;
  std::unique_ptr<RecordIterator> ScanRecords(const PersonId& id, std::string_view collection,
                                              std::string_view prefix) override;

  std::unique_ptr<AnalyticsIterator> ScanAnalytics(const AnalyticsQuery& query) override;
  std::unique_ptr<Iterator<FoundRecord>> FindRecords(const RecordQuery& query) override;
  std::unique_ptr<Iterator<PersonId>> PeopleWithConsent(std::string_view purpose, bool granted) override;

  Status Write(const WriteBatch& batch) override {
    return ctx_.metrics.Timed(Operation::kWrite, [&] { return writer_.Write(batch); });
  }
  Result<std::uint64_t> ReadProgress(std::string_view name) override;
  Result<StoreStats> Stats() override { return reader_.Stats(); }
  Result<std::string> StoreId() override;

  Result<ErasureReceipt> Erase(const std::vector<PersonId>& people, const EraseOptions& options) override {
    return Erased(ctx_.metrics.Timed(Operation::kErase, [&] { return eraser_.Erase(people, options); }));
  }
  Result<ErasureReceipt> EraseByIdentifier(const Identifier& identifier, const EraseOptions& options) override;
  Result<ErasureReceipt> EraseCategory(const PersonId& person, std::string_view category,
                                       const EraseOptions& options) override {
    return Erased(
        ctx_.metrics.Timed(Operation::kErase, [&] { return eraser_.EraseCategory(person, category, options); }));
  }
  Result<ErasureReceipt> GetErasure(std::string_view request_id) override { return eraser_.GetErasure(request_id); }
  Status Unsuppress(const Identifier& identifier) override { return eraser_.Unsuppress(identifier); }
  Result<PurgeResult> Purge(std::size_t budget_rows) override {
    return ctx_.metrics.Timed(Operation::kPurge, [&] { return maintenance_.Purge(budget_rows); });
  }
  Result<RotationResult> RotateEpoch() override {
    return ctx_.metrics.Timed(Operation::kRotateEpoch, [&] { return maintenance_.RotateEpoch(); });
  }
  Result<CompactionResult> CompactData() override {
    return ctx_.metrics.Timed(Operation::kCompactData, [&] { return maintenance_.CompactData(); });
  }
  Status RunMaintenance() override {
    return ctx_.metrics.Timed(Operation::kRunMaintenance, [&] { return maintenance_.RunMaintenance(); });
  }
  Result<AuditVerification> VerifyAuditLog() override { return verifier_.VerifyAuditLog(); }
  Result<std::vector<AuditRecord>> ReadAudit(std::uint64_t after_seq, std::size_t max) override {
    return reader_.ReadAudit(after_seq, max);
  }
  Result<std::string> AuditSubject(const PersonId& id) override { return reader_.AuditSubject(id); }

  Status SetRetention(const RetentionRules& rules) override { return sweeper_.SetRetention(rules); }
  Result<RetentionRules> GetRetention() override { return sweeper_.GetRetention(); }
  Result<SweepResult> Sweep(std::size_t budget_rows) override {
    return ctx_.metrics.Timed(Operation::kSweep, [&] { return maintenance_.Sweep(budget_rows); });
  }

  Status Rectify(const PersonId& id, const Rectification& rectification) override;
  Result<std::vector<Notice>> ReadFeed(std::size_t max) override { return reader_.ReadFeed(max); }
  Status AckFeed(std::uint64_t cursor) override { return writer_.AckFeed(cursor); }
  std::unique_ptr<Iterator<ExportItem>> Export(const PersonId& id) override;

  using Store::Restrict;
  using Store::SetConsent;
  using Store::Unrestrict;
  Status Restrict(const std::vector<PersonId>& people, const RestrictionSpec& spec) override {
    return processing_.Restrict(people, spec);
  }
  Status Unrestrict(const std::vector<PersonId>& people, const RestrictionSpec& spec) override {
    return processing_.Unrestrict(people, spec);
  }
  Result<RestrictionState> GetRestriction(const PersonId& id) override { return reader_.GetRestriction(id); }
  Status SetConsent(const std::vector<PersonId>& people, std::string_view purpose, bool granted,
                    std::string_view source) override {
    return processing_.SetConsent(people, purpose, granted, source);
  }
  Result<std::map<std::string, bool>> GetConsent(const PersonId& id) override { return reader_.GetConsent(id); }
  Result<std::vector<ConsentRecord>> GetConsentHistory(const PersonId& id) override {
    return reader_.GetConsentHistory(id);
  }
  Result<std::unique_ptr<Lease>> AcquireLease(const PersonId& id, std::string_view purpose) override {
    return ctx_.metrics.Timed(Operation::kAcquireLease, [&] { return processing_.AcquireLease(id, purpose); });
  }
  Result<VerifyReport> Verify() override {
    return ctx_.metrics.Timed(Operation::kVerify, [&] { return verifier_.Verify(); });
  }

  Result<BackupInfo> Backup(const std::string& directory) override { return backups_.Backup(directory); }
  Result<ErasureLog> ReadErasureLog() override { return backups_.ReadErasureLog(); }
  Result<ErasureLogApplied> ApplyErasureLog(const ErasureLog& log) override { return backups_.ApplyErasureLog(log); }
  Status RotateRootKey(const std::shared_ptr<KeyProvider>& new_provider) override {
    return maintenance_.RotateRootKey(new_provider);
  }

  // ---- seams for tests (not part of the public API) ----
  EngineContext& context() { return ctx_; }
  keys::KeyStore& key_store() { return *ctx_.keys; }
  // For BackupTogether over several stores (ShardedStore::Backup).
  Backups& backups() { return backups_; }
  // RestoreBackup and ReapplyErasureLog: ApplyErasureLog for a log whose tag
  // they checked (or accepted untagged).
  Result<ErasureLogApplied> ApplyCheckedErasureLog(const ErasureLog& log) {
    return backups_.ApplyErasureLog(log, /*tag_checked=*/true);
  }
  storage::Environment& data() { return *ctx_.data; }
  const DataTables& tables() const { return ctx_.tables; }
  // Event rows the retention back-fill skipped as unreadable, since open.
  std::uint64_t backfill_unreadable_rows() const { return ctx_.backfill_unreadable_rows.load(); }

 private:
  StoreImpl() = default;
  // Open's steps after the options are checked.
  // `copy`: a copy's open (not OpenIntent::kUser), whose key store leaves
  // the custody keys its keys file lists to destroy alone
  // (KeyStoreOptions::finish_custody_destroy): its caller decides.
  Status OpenEnvironments(bool keys_exist, bool data_exists, bool copy);
  // After the environments are open: recovers half-applied erasures and
  // migrates a format-2 store; a read-only open does neither (ReadOnly for
  // format 2).
  Status FinishPendingWork();
  // Tells the listeners of a committed erasure and delivers the notices.
  Result<ErasureReceipt> Erased(Result<ErasureReceipt> receipt);

  EngineContext ctx_;
  Writer writer_{ctx_};
  Reader reader_{ctx_};
  Eraser eraser_{ctx_};
  Sweeper sweeper_{ctx_};
  Maintenance maintenance_{ctx_, eraser_, sweeper_};
  Processing processing_{ctx_, writer_, reader_};
  Verifier verifier_{ctx_};
  Backups backups_{ctx_, eraser_};
};

}  // namespace shredkv::engine

#endif  // SHREDKV_ENGINE_STORE_IMPL_H_
