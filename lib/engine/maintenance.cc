// Maintenance: purge of erased people's rows, epoch rotation (what makes
// erasures cryptographic), compaction of `data` and the background loop that
// runs them with the retention sweep.
#include "engine/maintenance.h"

#include <unistd.h>

#include <algorithm>
#include <limits>
#include <chrono>
#include <deque>
#include <set>

#include "codec/row_codec.h"
#include "codec/sealed.h"
#include "engine/backup.h"
#include "engine/data_rows.h"
#include "util/coding.h"
#include "util/test_point.h"

namespace shredkv::engine {
namespace {

using codec::TableId;

constexpr std::uint64_t kPurgeRowsPerTxn = 5000;
constexpr std::size_t kPurgeTicketsPerRound = 256;

}  // namespace

Status Maintenance::PurgePerson(storage::WriteTxn& txn, const PersonId& id, std::uint64_t budget,
                              std::uint64_t* deleted, bool* complete) {
  *deleted = 0;
  *complete = false;
  // Identifiers first: index entries that still name the person go with
  // their back-references.
  {
    auto backrefs = KeysWithPrefix(txn, ctx_.tables.ident_by_person, id.view(), budget);
    if (!backrefs.ok()) return backrefs.status();
    for (const std::string& back : *backrefs) {
      const std::string hash = back.substr(PersonId::kSize);
      std::string owner;
      Status o = ReadPlain(txn, ctx_.tables.ident, TableId::kIdentIndex, hash, &owner);
      if ((o.ok() && owner == id.view()) || o.IsCorruption()) {
        if (Status d = txn.Delete(ctx_.tables.ident, hash); !d.ok()) return d;
      } else if (!o.ok() && !o.IsNotFound()) {
        return o;
      }
      if (Status d = txn.Delete(ctx_.tables.ident_by_person, back); !d.ok()) return d;
      ++*deleted;  // an identifier's index entry and back-reference count as one row
    }
    if (*deleted >= budget) return Status::OK();
  }
  // Consent rows take their consent_by_purpose entries with them.
  std::vector<std::string> consent_keys;
  const storage::WriteTxn::RowFilter note_consent = [&consent_keys](std::string_view key, std::string_view) {
    consent_keys.emplace_back(key);
    return true;
  };
  for (storage::Table t : {ctx_.tables.events, ctx_.tables.records, ctx_.tables.consent, ctx_.tables.consent_history, ctx_.tables.profiles}) {
    const std::uint64_t left = budget - *deleted;
    if (left == 0) return Status::OK();
    bool more = false;
    const bool consent = t.dbi == ctx_.tables.consent.dbi;
    auto n = txn.DeletePrefix(t, id.view(), left, consent ? note_consent : nullptr, &more);
    if (!n.ok()) return n.status();
    for (const std::string& k : consent_keys) {
      if (Status r = ctx_.consent_index->Remove(txn, k); !r.ok()) return r;
    }
    consent_keys.clear();
    *deleted += *n;
    if (more) return Status::OK();  // the rest next round
  }
  if (*deleted >= budget) return Status::OK();
  {
    // The person's retention time index entries and refs (engine/retention.h).
    std::uint64_t n = 0;
    bool index_done = false;
    if (Status r = ctx_.retention->PurgePerson(txn, id, budget - *deleted, &n, &index_done); !r.ok()) return r;
    *deleted += n;
    if (!index_done) return Status::OK();
  }
  {
    // The record metadata index entries of the person's records.
    std::uint64_t n = 0;
    bool index_done = false;
    if (Status r = ctx_.record_index->PurgePerson(txn, id, budget - *deleted, &n, &index_done); !r.ok()) return r;
    *deleted += n;
    if (!index_done) return Status::OK();
  }
  for (storage::Table t : {ctx_.tables.versions, ctx_.tables.restrictions, ctx_.tables.key_claims, ctx_.tables.people}) {
    std::string_view v;
    Status g = txn.Get(t, id.view(), &v);
    if (g.IsNotFound()) continue;
    if (!g.ok()) return g;
    if (*deleted >= budget) return Status::OK();  // the rest next round
    if (Status d = txn.Delete(t, id.view()); !d.ok()) return d;
    ++*deleted;
  }
  // Last, the `erased` markers (the person's and its categories').
  bool more = false;
  auto markers = txn.DeletePrefix(ctx_.tables.erased, id.view(), ~0ull, nullptr, &more);
  if (!markers.ok()) return markers.status();
  *complete = true;
  return Status::OK();
}

Status Maintenance::PurgeCategory(storage::WriteTxn& txn, const PersonId& id, std::uint32_t slot, std::uint64_t budget,
                                std::uint64_t* deleted, bool* complete) {
  *deleted = 0;
  *complete = false;
  // Rows whose header names the slot (a damaged header cannot be
  // attributed: verify reports it, the purge of the whole person removes it).
  // Their retention index entries go with them.
  std::vector<std::string> removed;
  const storage::WriteTxn::RowFilter in_slot = [slot, &removed](std::string_view key, std::string_view value) {
    std::uint32_t row_slot = 0;
    if (!codec::PersonRowSlot(value, &row_slot).ok() || row_slot != slot) return false;
    removed.emplace_back(key);
    return true;
  };
  for (storage::Table t : {ctx_.tables.events, ctx_.tables.records}) {
    const std::uint64_t left = budget - *deleted;
    if (left == 0) return Status::OK();
    bool more = false;
    removed.clear();
    auto n = txn.DeletePrefix(t, id.view(), left, in_slot, &more);
    if (!n.ok()) return n.status();
    *deleted += *n;
    for (const std::string& k : removed) {
      if (t.dbi == ctx_.tables.events.dbi) {
        std::int64_t ts = 0;
        std::uint64_t seq = 0;
        if (Status d = codec::DecodeTsSeq(std::string_view(k).substr(PersonId::kSize), &ts, &seq); !d.ok()) return d;
        if (Status u = ctx_.retention->UnindexEvent(txn, id, ts, seq); !u.ok()) return u;
      } else {
        if (Status u = ctx_.retention->UnindexRecord(txn, k); !u.ok()) return u;
        if (Status u = ctx_.record_index->Remove(txn, k); !u.ok()) return u;
      }
    }
    if (more) return Status::OK();  // the rest next round
  }
  const std::string profile_key = codec::ProfileKey(id, slot);
  std::string_view v;
  Status g = txn.Get(ctx_.tables.profiles, profile_key, &v);
  if (g.ok()) {
    if (*deleted >= budget) return Status::OK();
    if (Status d = txn.Delete(ctx_.tables.profiles, profile_key); !d.ok()) return d;
    ++*deleted;
  } else if (!g.IsNotFound()) {
    return g;
  }
  // The category's `erased` marker stays: it records that the erasure was
  // applied, so a ticket whose removal from `keys` a crash cut short is not
  // applied again (a second notice) for a person who lives on. It names
  // that person and the request (both elsewhere in `data` too); the
  // person's own purge, if they are erased, deletes it with the others.
  *complete = true;
  return Status::OK();
}

Result<PurgeResult> Maintenance::PurgeLocked(std::size_t budget_rows, std::vector<std::string>* finished) {
  PurgeResult result;
  std::uint64_t remaining = budget_rows;
  while (remaining > 0) {
    auto tickets = ctx_.keys->PendingPurges(kPurgeTicketsPerRound);
    if (!tickets.ok()) return tickets.status();
    if (tickets->empty()) break;
    std::vector<keys::PurgeTicket> done;
    for (const keys::PurgeTicket& t : *tickets) {
      if (remaining == 0) break;
      // A person's purge deletes their markers, after which a category
      // ticket of theirs counts as applied: the data side of every category
      // ticket of the person that no run applied yet (its erase transaction
      // failed, and no open recovered it) goes first, in the purge's first
      // transaction (review of stop 29, L1: the category's analytics rows
      // stayed under the erased person's anonymous ID, in every mode).
      std::vector<keys::PurgeTicket> apply;
      if (t.slot == keys::kPersonSlot) {
        auto own = ctx_.keys->PendingPurges(std::numeric_limits<std::size_t>::max(), &t.person);
        if (!own.ok()) return own.status();
        for (keys::PurgeTicket& c : *own) {
          if (c.slot != keys::kPersonSlot) apply.push_back(std::move(c));
        }
      }
      apply.push_back(t);
      bool complete = false;
      while (remaining > 0 && !complete) {
        std::uint64_t deleted = 0;
        std::uint64_t next_seq = ctx_.next_event_seq;
        Status s = ctx_.data->Update([&](storage::WriteTxn& txn) -> Status {
          next_seq = ctx_.next_event_seq;
          if (Status a = eraser_.ApplyErasureToData(txn, apply, nullptr, nullptr, &next_seq); !a.ok()) return a;
          const std::uint64_t budget = std::min(remaining, kPurgeRowsPerTxn);
          return t.slot == keys::kPersonSlot ? PurgePerson(txn, t.person, budget, &deleted, &complete)
                                             : PurgeCategory(txn, t.person, t.slot, budget, &deleted, &complete);
        });
        if (!s.ok()) {
          // Keep the progress of this round (and report it).
          if (ctx_.keys->FinishPurges(done).ok()) {
            for (const keys::PurgeTicket& d : done) finished->push_back(d.request_id);
          }
          return s.WithContext("purging person " + t.person.ToHex());
        }
        util::TestPoint("purge.after_data_txn");
        ctx_.next_event_seq = next_seq;
        result.rows_deleted += deleted;
        remaining -= std::min(remaining, deleted);
        if (deleted == 0 && !complete) break;  // no progress: do not spin
      }
      if (complete) done.push_back(t);
    }
    if (Status f = ctx_.keys->FinishPurges(done); !f.ok()) return f;
    for (const keys::PurgeTicket& t : done) finished->push_back(t.request_id);
    result.people_purged += done.size();
    if (done.empty()) break;
  }
  if (result.rows_deleted > 0 || result.people_purged > 0) {
    Status a = ctx_.data->Update([&](storage::WriteTxn& txn) {
      return ctx_.audit->Append(txn, AuditEntry{AuditKind::kPurge, ctx_.Now(), "", result.rows_deleted, result.people_purged, 0})
          .status();
    });
    if (!a.ok()) return a.WithContext("auditing the purge");
  }
  auto counts = ctx_.keys->Counts();
  if (!counts.ok()) return counts.status();
  result.people_pending = counts->pending_purge;
  return result;
}

Result<PurgeResult> Maintenance::DoPurge(std::size_t budget_rows, std::vector<std::string>* finished) {
  CallGuard guard(ctx_, CallAccess::kWrite);
  if (!guard.ok()) return guard.status();
  std::lock_guard write_lock(ctx_.write_mu);
  return PurgeLocked(budget_rows, finished);
}

Status Maintenance::RotateRootKey(const std::shared_ptr<KeyProvider>& new_provider) {
  if (!new_provider) return Status::InvalidArgument("RotateRootKey needs a key provider");
  std::lock_guard rotation_lock(ctx_.rotation_mu);
  // Readers beside this process leave before the commit, not only before
  // the rebuild (review of stop 31, M5): one that stays 30 s makes this
  // Busy with nothing changed, rather than fail after the re-seal.
  {
    CallGuard probe(ctx_, CallAccess::kWrite);  // a read-only store: refused before READERS is touched
    if (!probe.ok()) return probe.status();
  }
  auto readers_out = ctx_.ExcludeReaders();
  if (!readers_out.ok()) return readers_out.status().WithContext("the root key was not rotated");
  {
    CallGuard guard(ctx_, CallAccess::kWrite);
    if (!guard.ok()) return guard.status();
    auto root = new_provider->GetRootKey(KeyRequest{ctx_.keys->salt()});
    if (!root.ok()) return root.status().WithContext("key provider " + new_provider->Describe());
    std::lock_guard write_lock(ctx_.write_mu);
    // One commit re-seals everything under the new key; a crash after it
    // leaves the store to the new key, its rebuild pending (done at open).
    if (Status s = ctx_.keys->RewrapRoot(*root); !s.ok()) return s;
  }
  util::TestPoint("root_rotation.before_rebuild");
  if (auto rebuilt = RebuildPendingKeysFileWithReadersOut(); !rebuilt.ok()) {
    // The re-seal is committed: the old key no longer opens the store. The
    // code stays the cause's (the call did not finish: the file still holds
    // the old sealing until the rebuild).
    const Status& cause = rebuilt.status();
    return cause.WithMessage(
        "after re-sealing under the new root key: the store opens with the new key only (keep it: the old key no "
        "longer opens the store); the keys file still holds the old sealing until it is rebuilt, at the next "
        "maintenance round or writable open. The rebuild failed: " +
        cause.message());
  }
  ctx_.events.Log(LogLevel::kInfo, "root key rotated; the keys file was rebuilt");
  return Status::OK();
}

Result<RotationResult> Maintenance::DoRotateEpoch() {
  std::lock_guard rotation_lock(ctx_.rotation_mu);
  RotationResult result;
  Status audited;
  {
    CallGuard guard(ctx_, CallAccess::kWrite);
    if (!guard.ok()) return guard.status();
    auto before = ctx_.keys->Info();
    if (!before.ok()) return before.status();
    result.keys_file_bytes_before = before->file_bytes;
    {
      // Claimed keys join `deks` first, so the rotation re-wraps (and
      // counts) every person's key; free pool keys move with the epochs.
      std::lock_guard write_lock(ctx_.write_mu);
      if (Status a = ctx_.AdoptKeyClaims(); !a.ok()) return a;
    }
    auto epoch = ctx_.keys->BeginRotation(ctx_.Now());
    if (!epoch.ok()) return epoch.status();
    result.new_epoch = *epoch;
    std::uint64_t total_keys = 0;
    if (ctx_.wants_progress()) {
      auto n = ctx_.keys->CountDeks();
      if (n.ok()) total_keys = *n;
      ctx_.ReportProgress("rotate-keys", 0, total_keys);
    }
    std::string resume;
    for (bool done = false; !done;) {
      auto n = ctx_.keys->RewrapBatch(*epoch, std::max<std::size_t>(1, ctx_.options.rotation_batch_size), &resume, &done);
      if (!n.ok()) return n.status().WithContext("re-wrapping keys (the rotation can be run again)");
      result.rewrapped_keys += *n;
      ++result.batches;
      util::TestPoint("rotation.after_rewrap_batch");
      if (ctx_.wants_progress()) ctx_.ReportProgress("rotate-keys", result.rewrapped_keys, total_keys);
    }
    auto destroyed = ctx_.keys->DestroyEpochsBefore(*epoch);
    if (!destroyed.ok()) return destroyed.status();
    result.destroyed_epochs = *destroyed;
    util::TestPoint("rotation.after_destroy");
    // Audited as soon as it is final, not after the rebuild (which may be
    // refused, or cut short, and finished by a later call or open). A
    // failed append does not keep the rebuild from running (review 39, #7);
    // the next writable open appends the entry.
    audited = AuditRotation(result.rewrapped_keys, /*rotated_now=*/true);
  }
  if (auto rebuilt = RebuildPendingKeysFile(); !rebuilt.ok()) {
    return rebuilt.status().WithContext("rebuilding the keys file (done at the next maintenance round, rotation or open)");
  }
  if (!audited.ok()) return audited.WithContext("auditing the rotation");
  CallGuard guard(ctx_, CallAccess::kWrite);
  if (!guard.ok()) return guard.status();
  auto after = ctx_.keys->Info();
  if (!after.ok()) return after.status();
  result.keys_file_bytes_after = after->file_bytes;
  return result;
}

Status Maintenance::AuditRotation(std::uint64_t rewrapped, bool rotated_now) {
  if (ctx_.options.read_only) return Status::OK();
  const std::vector<keys::EpochRecord> epochs = ctx_.keys->Epochs();
  if (epochs.empty()) return Status::OK();
  const std::uint64_t current = ctx_.keys->current_epoch();
  const std::uint64_t oldest = epochs.front().epoch;
  // Read first: most calls (every open) have nothing to write.
  bool up_to_date = false;
  Status r = ctx_.data->View([&](storage::ReadTxn& txn) -> Status {
    std::string row;
    Status g = ReadPlain(txn, ctx_.tables.meta, TableId::kDataMeta, kAuditedRotationEpochKey, &row);
    if (g.IsNotFound()) return Status::OK();
    if (!g.ok()) return g;
    up_to_date = row.size() == 8 && (oldest != current || util::DecodeFixed64BE(row.data()) >= current);
    return Status::OK();
  });
  if (!r.ok()) return r;
  if (up_to_date && !rotated_now) return Status::OK();
  std::lock_guard write_lock(ctx_.write_mu);
  return ctx_.data->Update([&](storage::WriteTxn& txn) -> Status {
    std::string row;
    Status g = ReadPlain(txn, ctx_.tables.meta, TableId::kDataMeta, kAuditedRotationEpochKey, &row);
    if (!g.ok() && !g.IsNotFound()) return g;
    if (g.ok() && row.size() != 8) return Status::Corruption("the audited rotation epoch row is malformed");
    // No row: a store of an earlier build, whose rotations up to its
    // oldest epoch held are in its audit log as they were made.
    const std::uint64_t audited = g.ok() ? util::DecodeFixed64BE(row.data()) : oldest;
    std::uint64_t mark = audited;
    // Finished, not audited. The row holds an epoch number, and a store put
    // back from a snapshot that copied `keys` before a rotation and `data`
    // after it can number its next rotation as the row's (review 39, #6):
    // the rotation this call just made is audited whatever the row says.
    if (oldest == current && (rotated_now || audited < current)) {
      auto e = ctx_.audit->Append(txn, AuditEntry{AuditKind::kRotation, ctx_.Now(), "", current, rewrapped, 0});
      if (!e.ok()) return e.status();
      mark = current;
    }
    if (g.ok() && mark == audited) return Status::OK();
    row.clear();
    util::PutFixed64BE(&row, mark);
    return txn.Put(ctx_.tables.meta, kAuditedRotationEpochKey, PlainRow(TableId::kDataMeta, kAuditedRotationEpochKey, row));
  });
}

Result<CompactionResult> Maintenance::DoCompactData() {
  std::lock_guard rotation_lock(ctx_.rotation_mu);
  CompactionResult result;
  const std::string tmp = ctx_.options.directory + "/data/compact.mdb";
  for (int attempt = 0;; ++attempt) {
    std::uint64_t txn_at_copy = 0;
    {
      CallGuard guard(ctx_, CallAccess::kWrite);
      if (!guard.ok()) return guard.status();
      std::lock_guard write_lock(ctx_.write_mu);  // no write during the copy
      // Room for the rebuild first: on a full disk nothing is written (the
      // materialisation below could otherwise commit into free pages and
      // the compaction then fail, having changed the store).
      if (Status f = ctx_.data->CheckRoomForRebuild(tmp); !f.ok()) return f.WithContext("nothing was compacted");

      // Staged analytics rows first: the new file has none, and no staged
      // row of a person erased since outlives the rebuild.
      if (auto m = ctx_.MaterialiseAnalytics(std::nullopt); !m.ok()) return m.status();
      auto info = ctx_.data->Info();
      if (!info.ok()) return info.status();
      txn_at_copy = info->last_txn_id;
      result.file_bytes_before = info->file_bytes;
      ::unlink(tmp.c_str());
      // Rebuilt from the live rows, not copied page by page: no branch page
      // of the new file keeps an erased person's key as a separator.
      // The new file counts its commits from 1 again: it gets the next
      // generation, which the old file never holds (review 39, #1: written
      // to the old file first, a process reading beside this one could
      // record positions of it that the new file hands out again).
      std::uint64_t generation = 0;
      if (Status g = ctx_.data->View([&](storage::ReadTxn& txn) -> Status {
            auto p = ReadStorePosition(ctx_, txn);
            if (!p.ok()) return p.status();
            generation = p->generation;
            return Status::OK();
          });
          !g.ok()) {
        return g;
      }
      auto next_generation = [generation](storage::Environment& fresh) {
        return fresh.Update(
            [&](storage::WriteTxn& txn) { return PutGeneration(txn, fresh.table("meta"), generation + 1); });
      };
      if (Status c = ctx_.data->RebuildToFile(tmp, info->map_size, next_generation); !c.ok()) return c;
    }
    auto readers_out = ctx_.ExcludeReaders();
    if (!readers_out.ok()) {
      ::unlink(tmp.c_str());
      return readers_out.status().WithContext("compaction");
    }
    std::unique_lock close_lock(ctx_.close_mu);
    if (Status s = ctx_.CheckUsable(); !s.ok()) {
      ::unlink(tmp.c_str());
      return s;
    }
    auto info = ctx_.data->Info();
    if (!info.ok()) return info.status();
    if (info->last_txn_id != txn_at_copy) {  // a write slipped in between: copy again
      ::unlink(tmp.c_str());
      if (attempt < 3) continue;
      return Status::Busy("writes kept landing during compaction; try again");
    }
    const std::string target = ctx_.data->data_file();
    ctx_.audit.reset();
    ctx_.data.reset();
    Status r = storage::ReplaceFile(target, tmp, /*wipe_old=*/true);
    Status o = ctx_.OpenDataEnvironment(false);
    if (!o.ok()) ctx_.SetFatal(o.WithContext("reopening the data file after compaction"));
    if (!r.ok()) return r.WithContext("swapping in the compacted data file");
    if (!o.ok()) return o.WithContext("reopening the compacted data file");
    break;
  }
  CallGuard guard(ctx_);
  if (!guard.ok()) return guard.status();
  auto info = ctx_.data->Info();
  if (!info.ok()) return info.status();
  result.file_bytes_after = info->file_bytes;
  std::lock_guard write_lock(ctx_.write_mu);
  Status a = ctx_.data->Update([&](storage::WriteTxn& txn) {
    return ctx_.audit->Append(txn, AuditEntry{AuditKind::kCompaction, ctx_.Now(), "", result.file_bytes_before,
                                          result.file_bytes_after, 0})
        .status();
  });
  if (!a.ok()) return a;
  return result;
}

Result<bool> Maintenance::RotationDue() {
  CallGuard guard(ctx_);
  if (!guard.ok()) return guard.status();
  auto counts = ctx_.keys->Counts();
  if (!counts.ok()) return counts.status();
  if (ctx_.options.rotate_after_erasures > 0 && counts->erasures_since_rotation >= ctx_.options.rotate_after_erasures) {
    return true;
  }
  // Presence by the count, not by a time of 0 (an erasure at clock 0 read
  // as none). An erasure recorded after now (under a clock since set back)
  // has an age that cannot be told: due once the clock went back by the
  // bound or more, else once the clock passes its time by the bound — at
  // most twice the bound late, and a small step back (NTP) costs no
  // rotation of its own (outside audit 38b, F1: a year ahead held the
  // trigger back a year; review 38, R9). Differences as unsigned: times at
  // the ends of int64 overflow a signed one.
  if (ctx_.options.rotate_after_ms <= 0 || counts->erasures_since_rotation == 0) return false;
  const std::int64_t now = ctx_.Now();
  const std::int64_t oldest = counts->oldest_unrotated_ms;
  const auto bound = static_cast<std::uint64_t>(ctx_.options.rotate_after_ms);
  if (oldest > now) return static_cast<std::uint64_t>(oldest) - static_cast<std::uint64_t>(now) >= bound;
  return static_cast<std::uint64_t>(now) - static_cast<std::uint64_t>(oldest) >= bound;
}

Result<std::size_t> Maintenance::CollectOrphans(std::size_t budget) {
  CallGuard guard(ctx_, CallAccess::kWrite);
  if (!guard.ok()) return guard.status();
  // Under write_mu no creation is between its `keys` and `data` commits
  // (both happen inside one Writer::Write), so a person with keys and no
  // row is an orphan, not a creation in flight.
  std::lock_guard write_lock(ctx_.write_mu);
  if (!ctx_.orphan_pass_pending) return std::size_t{0};
  auto people = ctx_.keys->PeopleWithKeys(ctx_.orphan_cursor, std::max<std::size_t>(budget, 1));
  if (!people.ok()) return people.status();
  auto orphans = ctx_.PeopleWithoutRows(*people);
  if (!orphans.ok()) return orphans.status();
  auto deleted = ctx_.keys->DeleteOrphanKeys(*orphans);
  if (!deleted.ok()) return deleted.status();
  ctx_.orphan_keys_collected.fetch_add(orphans->size(), std::memory_order_relaxed);
  if (people->size() < std::max<std::size_t>(budget, 1)) {
    ctx_.orphan_pass_pending = false;
    ctx_.orphan_cursor.clear();
  } else {
    ctx_.orphan_cursor.assign(people->back().view());
  }
  return orphans->size();
}

Result<std::uint64_t> Maintenance::MaterialiseClosedAnalytics() {
  CallGuard guard(ctx_, CallAccess::kWrite);
  if (!guard.ok()) return guard.status();
  std::lock_guard write_lock(ctx_.write_mu);
  return ctx_.MaterialiseAnalytics(ctx_.LastClosedAnalyticsBucket());
}

namespace {

std::int64_t NowUs() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

void Maintenance::Report(MaintenanceJob job, bool background, const Status& status, std::int64_t started_us,
                         std::uint64_t done, std::uint64_t pending) {
  MaintenanceInfo info;
  info.job = job;
  info.background = background;
  info.status = status;
  info.duration_us = NowUs() - started_us;
  info.done = done;
  info.pending = pending;
  ctx_.events.MaintenanceCompleted(info);
  const LogLevel level = status.ok() ? LogLevel::kInfo : LogLevel::kError;
  if ((status.ok() && done == 0) || !ctx_.events.logging(level)) return;
  const std::string what = std::string(background ? "background " : "") + std::string(MaintenanceJobName(job));
  ctx_.events.Log(level, status.ok() ? what + ": " + std::to_string(done) + " done, " + std::to_string(pending) +
                                           " pending, " + std::to_string(info.duration_us / 1000) + " ms"
                                     : what + " failed: " + status.ToString());
}

template <typename Call, typename Counts>
auto Maintenance::Reported(MaintenanceJob job, bool background, Call call, Counts counts) {
  const std::int64_t t0 = NowUs();
  auto r = call();
  std::pair<std::uint64_t, std::uint64_t> done_pending{0, 0};
  if (r.ok()) done_pending = counts(*r);
  Report(job, background, r.status(), t0, done_pending.first, done_pending.second);
  return r;
}

void Maintenance::InitLevelReports() {
  std::lock_guard lock(levels_mu_);
  levels_reported_epoch_ = ctx_.keys->oldest_epoch();
}

void Maintenance::ReportLevelsLocked(const std::vector<std::string>& request_ids, ErasureLevel at_least) {
  std::vector<std::string> ids = request_ids;
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  for (const std::string& id : ids) {
    auto receipt = eraser_.GetErasure(id);
    if (!receipt.ok()) {
      ctx_.events.Log(LogLevel::kWarn, "erasure level of request " + id + " unknown: " + receipt.status().ToString());
      continue;
    }
    if (receipt->level < at_least) {
      // Its epoch key is gone (below the reported mark), yet the receipt is
      // not cryptographic: another rotation's `keys` rebuild is under way.
      // No later rotation's epoch range holds it, so it waits for the next
      // report. (From a purge: only if purged, the one level it reports.)
      if (!receipt->cryptographic && receipt->key_epoch < levels_reported_epoch_ &&
          (at_least != ErasureLevel::kPurged || receipt->purged)) {
        awaiting_rebuild_.insert(id);
      }
      continue;
    }
    if (receipt->level == ErasureLevel::kPurged) {
      // Purge and rotation may both see the same request reach kPurged.
      if (!reported_purged_.insert(id).second) continue;
      reported_purged_order_.push_back(id);
      if (reported_purged_order_.size() > kReportedPurgedKept) {
        reported_purged_.erase(reported_purged_order_.front());
        reported_purged_order_.pop_front();
      }
    }
    ctx_.events.LevelReached(*receipt);
  }
}

void Maintenance::ReportPurgedLevels(const std::vector<std::string>& request_ids) {
  if (!ctx_.events.listening() || request_ids.empty()) return;
  std::lock_guard lock(levels_mu_);
  ReportLevelsLocked(request_ids, ErasureLevel::kPurged);  // purged and already cryptographic
}

void Maintenance::ReportRotationLevels() {
  if (!ctx_.events.listening()) return;
  std::lock_guard lock(levels_mu_);
  // The erasures whose epoch keys are gone since the last report, whatever
  // the rotation's own result (it may fail after destroying them), once
  // the rebuild that makes them cryptographic is done.
  bool rebuilding = false;
  auto ids = [&]() -> Result<std::vector<std::string>> {
    CallGuard guard(ctx_);
    if (!guard.ok()) return guard.status();
    rebuilding = ctx_.keys->rebuild_pending();
    if (rebuilding) return std::vector<std::string>{};  // the rotation that finishes it reports
    const std::uint64_t oldest = ctx_.keys->oldest_epoch();
    auto found = ctx_.keys->RequestIdsWithEpochIn(levels_reported_epoch_, oldest);
    if (found.ok()) levels_reported_epoch_ = oldest;
    return found;
  }();
  if (!ids.ok()) {
    ctx_.events.Log(LogLevel::kWarn, "erasures made cryptographic unknown: " + ids.status().ToString());
    return;
  }
  if (rebuilding) return;
  std::vector<std::string> report = std::move(ids).value();
  if (!report.empty() || !awaiting_rebuild_.empty()) {
    // Those a purge finished during a rebuild (the rebuild is done when
    // the range above was read; if not, both wait for the next report).
    report.insert(report.end(), awaiting_rebuild_.begin(), awaiting_rebuild_.end());
    awaiting_rebuild_.clear();
  }
  ReportLevelsLocked(report, ErasureLevel::kCryptographic);
}

Result<PurgeResult> Maintenance::Purge(std::size_t budget_rows, bool background) {
  std::vector<std::string> finished;
  auto r = Reported(MaintenanceJob::kPurge, background, [&] { return DoPurge(budget_rows, &finished); },
                    [](const PurgeResult& p) { return std::pair{p.rows_deleted, p.people_pending}; });
  ReportPurgedLevels(finished);
  ctx_.events.Flush();
  return r;
}

Result<RotationResult> Maintenance::RotateEpoch(bool background) {
  auto r = Reported(MaintenanceJob::kRotation, background, [&] { return DoRotateEpoch(); },
                    [](const RotationResult& rr) { return std::pair{rr.rewrapped_keys, std::uint64_t{0}}; });
  ReportRotationLevels();
  ctx_.events.Flush();
  return r;
}

Result<CompactionResult> Maintenance::CompactData(bool background) {
  auto r = Reported(MaintenanceJob::kCompaction, background, [&] { return DoCompactData(); },
                    [](const CompactionResult& c) { return std::pair{c.file_bytes_after, c.file_bytes_before}; });
  ctx_.events.Flush();
  return r;
}

Result<SweepResult> Maintenance::Sweep(std::size_t budget_rows, bool background) {
  auto r = Reported(MaintenanceJob::kSweep, background, [&] { return sweeper_.Sweep(budget_rows); },
                    [](const SweepResult& sw) {
                      return std::pair{sw.deleted(), sw.pending};
                    });
  ctx_.events.Flush();
  return r;
}

Status Maintenance::RunMaintenance(bool background) {
  // Every step runs whatever the others did (a sweep that fails must not hold
  // back the rotation that makes erasures final); the first error is returned.
  Status first;
  auto keep = [&first](const Status& s) {
    if (first.ok() && !s.ok()) first = s;
  };
  auto done_only = [](std::uint64_t n) { return std::pair{n, std::uint64_t{0}}; };
  keep(Purge(ctx_.options.purge_budget_rows, background).status());
  keep(Reported(MaintenanceJob::kAnalytics, background, [&] { return MaterialiseClosedAnalytics(); }, done_only)
           .status());
  keep(Sweep(ctx_.options.sweep_budget_rows, background).status());
  keep(Reported(MaintenanceJob::kOrphanKeys, background, [&] { return CollectOrphans(ctx_.options.purge_budget_rows); },
                done_only)
           .status());
  keep(ClearStaleReaders().status());
  auto rebuilt = FinishPendingRebuild();
  keep(rebuilt.status());
  if (rebuilt.ok() && *rebuilt > 0) ReportRotationLevels();
  auto due = RotationDue();
  keep(due.status());
  if (due.ok() && *due) keep(RotateEpoch(background).status());
  // A round that Close cut short (its calls fail once the store is marked
  // closed; a rotation's rebuild is finished at the next open) is not an
  // error of the store (outside audit 34c, F6: listeners were told of one
  // at a normal shutdown).
  if (background && !first.ok() && !ctx_.closed.load()) {
    ctx_.events.BackgroundError(first);
    ctx_.events.Log(LogLevel::kError, "background maintenance failed: " + first.ToString());
  }
  ctx_.events.Flush();
  return first;
}

Result<std::uint64_t> Maintenance::ClearStaleReaders() {
  CallGuard guard(ctx_);
  if (!guard.ok()) return guard.status();
  if (ctx_.options.read_only) return std::uint64_t{0};
  auto keys = ctx_.keys->ClearStaleReaders();
  if (!keys.ok()) return keys.status();
  auto data = ctx_.data->ClearStaleReaders();
  if (!data.ok()) return data.status();
  const auto freed = static_cast<std::uint64_t>(*keys) + static_cast<std::uint64_t>(*data);
  if (freed > 0) {
    ctx_.events.Log(LogLevel::kInfo, "freed " + std::to_string(freed) +
                                         " reader slot(s) of processes that died reading beside this store");
  }
  return freed;
}

Result<std::uint64_t> Maintenance::FinishPendingRebuild() {
  std::lock_guard rotation_lock(ctx_.rotation_mu);  // no rotation or compaction meanwhile
  {
    CallGuard guard(ctx_);
    if (!guard.ok()) return guard.status();
    if (ctx_.options.read_only || !ctx_.keys->rebuild_pending()) return std::uint64_t{0};
  }
  auto rebuilt = RebuildPendingKeysFile();
  if (!rebuilt.ok()) {
    return rebuilt.status().WithContext("finishing a pending keys-file rebuild (retried at the next maintenance)");
  }
  if (!*rebuilt) return std::uint64_t{0};
  ctx_.events.Log(LogLevel::kInfo, "finished the keys-file rebuild a rotation left pending");
  return std::uint64_t{1};
}

Result<bool> Maintenance::RebuildPendingKeysFile() {
  auto readers_out = ctx_.ExcludeReaders();  // no other process maps the file swapped
  if (!readers_out.ok()) return readers_out.status();
  return RebuildPendingKeysFileWithReadersOut();
}

Result<bool> Maintenance::RebuildPendingKeysFileWithReadersOut() {
  std::unique_lock close_lock(ctx_.close_mu);  // every call waits for the file swap
  if (Status s = ctx_.CheckUsable(); !s.ok()) return s;
  if (!ctx_.keys->rebuild_pending()) return false;
  if (Status r = ctx_.keys->Rebuild(); !r.ok()) {
    if (!ctx_.keys->usable()) ctx_.SetFatal(r.WithContext("keys file swap failed"));
    return r;
  }
  return true;
}

void Maintenance::MaintenanceLoop() {
  loop_thread_.store(std::this_thread::get_id());
  LoopWait& w = *wait_;
  std::unique_lock lock(w.mu);
  while (!w.stop) {
    w.cv.wait_for(lock, std::chrono::milliseconds(ctx_.options.background_maintenance_ms), [&] { return w.stop; });
    if (w.stop) break;
    lock.unlock();
    // Errors go to the listeners (OnBackgroundError) and the log, and
    // surface again on the callers' own calls that hit the same problem.
    (void)RunMaintenance(/*background=*/true);
    lock.lock();
  }
}

void Maintenance::Start() {
  if (ctx_.options.background_maintenance_ms > 0) {
    maintenance_thread_ = std::thread([this] { MaintenanceLoop(); });
  }
}

void Maintenance::AbandonAfterFork() {
  abandoned_ = true;
  if (maintenance_thread_.joinable()) {
    // Leaked on purpose, with the wait: the thread is the parent's.
    new std::thread(std::move(maintenance_thread_));
    (void)wait_.release();
  }
}

bool Maintenance::OnLoopThread() const {
  return !abandoned_ && loop_thread_.load() == std::this_thread::get_id();
}

void Maintenance::Stop() {
  if (abandoned_) return;
  {
    std::lock_guard lock(wait_->mu);
    wait_->stop = true;
  }
  wait_->cv.notify_all();
  if (maintenance_thread_.joinable()) maintenance_thread_.join();
}

}  // namespace shredkv::engine
