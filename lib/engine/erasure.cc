// Erasure (design §2, §3): the erase commit in `keys` — group-committed for
// concurrent callers — then the data side of the erasure (identifiers,
// analytics per mode, marker, notice, audit entry), its recovery at open,
// and the receipts.
#include "engine/erasure.h"

#include <unistd.h>

#include <algorithm>
#include <map>
#include <optional>
#include <set>

#include "codec/row_codec.h"
#include "codec/sealed.h"
#include "crypto/random.h"
#include "crypto/secure_memory.h"
#include "engine/analytics_link.h"
#include "engine/data_rows.h"
#include "engine/keyring.h"
#include "util/coding.h"
#include "util/test_point.h"

namespace shredkv::engine {
namespace {

using codec::TableId;


bool ValidRequestId(std::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  return std::all_of(id.begin(), id.end(), [](char c) { return c > 0x20 && c < 0x7f; });
}

std::string NewRequestId() {
  auto b = crypto::RandomArray<16>();
  return "er-" + util::HexEncode(std::string_view(reinterpret_cast<const char*>(b.data()), b.size()));
}



// The request id and analytics mode of an Erase or EraseCategory call.
Status ValidateEraseOptions(const EraseOptions& options) {
  if (!options.request_id.empty() && !ValidRequestId(options.request_id)) {
    return Status::InvalidArgument("request id must be 1..64 printable ASCII characters without spaces");
  }
  if (options.analytics != AnalyticsOnErase::kKeep && options.analytics != AnalyticsOnErase::kUnlink &&
      options.analytics != AnalyticsOnErase::kDelete) {
    return Status::InvalidArgument("unknown analytics mode");
  }
  return Status::OK();
}

// Ends a lease drain begun by the caller when it goes out of scope.
struct DrainGuard {
  LeaseTable& leases;
  const std::vector<PersonId>& people;
  ~DrainGuard() { leases.EndDrain(people); }
};

// The `erased` marker of a ticket: the data side of its erasure was applied.
std::string MarkerKey(const keys::PurgeTicket& t) { return keys::TicketKey(t); }

}  // namespace

ErasureReceipt Eraser::ReceiptFrom(const keys::ErasureRequest& r, std::string audit_hash) const {
  ErasureReceipt out;
  out.request_id = r.request_id;
  out.erased_at_ms = r.erased_at_ms;
  out.people = r.people;
  out.analytics = static_cast<AnalyticsOnErase>(r.analytics_mode);
  out.suppressed = r.suppressed;
  out.key_epoch = r.key_epoch;
  out.cryptographic = ctx_.keys->oldest_epoch() > r.key_epoch && !ctx_.keys->AwaitsRebuild(r.key_epoch);
  out.purged = r.pending == 0;
  out.level = !out.cryptographic ? ErasureLevel::kLogical
                                 : (out.purged ? ErasureLevel::kPurged : ErasureLevel::kCryptographic);
  out.audit_hash = std::move(audit_hash);
  out.category = r.category;
  return out;
}

Result<ErasureReceipt> Eraser::Erase(const std::vector<PersonId>& people_in, const EraseOptions& options) {
  return Erase(people_in, options, AsOriginal{});
}

Result<ErasureReceipt> Eraser::Erase(const std::vector<PersonId>& people_in, const EraseOptions& options,
                                     const AsOriginal& original) {
  CallGuard guard(ctx_);
  if (!guard.ok()) return guard.status();
  if (people_in.empty()) return Status::InvalidArgument("nobody to erase");
  if (Status v = ValidateEraseOptions(options); !v.ok()) return v;
  std::vector<PersonId> people = people_in;
  std::sort(people.begin(), people.end());
  people.erase(std::unique(people.begin(), people.end()), people.end());

  // No worker may be mid-processing when the keys are destroyed (design §6).
  if (Status d = ctx_.leases.BeginDrain(people, std::chrono::milliseconds(ctx_.options.lease_drain_timeout_ms)); !d.ok()) {
    return d;
  }
  const DrainGuard drain_guard{ctx_.leases, people};

  // Group commit: concurrent erasures share one `keys` transaction and one
  // fsync. The first caller to find no leader commits everyone queued.
  PendingErase me{people, options, original, {}, Status::OK(), {}, false};
  {
    std::unique_lock queue_lock(erase_queue_mu_);
    erase_queue_.push_back(&me);
    while (!me.done) {
      if (erase_leader_) {
        erase_queue_cv_.wait(queue_lock);
        continue;
      }
      erase_leader_ = true;
      std::vector<PendingErase*> group(erase_queue_.begin(), erase_queue_.end());
      erase_queue_.clear();
      queue_lock.unlock();
      CommitEraseGroup(group);
      queue_lock.lock();
      for (PendingErase* p : group) p->done = true;
      erase_leader_ = false;
      erase_queue_cv_.notify_all();
    }
  }
  if (!me.status.ok()) return me.status;
  return ReceiptFrom(me.request, std::move(me.audit_hash));
}

Status Eraser::PrepareCommit(PendingErase* p, keys::ErasureCommit* c) {
  c->people = p->people;
  if (p->options.suppress) {
    Status s = ctx_.data->View([&](storage::ReadTxn& txn) -> Status {
      for (const PersonId& person : p->people) {
        auto keys = KeysWithPrefix(txn, ctx_.tables.ident_by_person, person.view(), ~0ull);
        if (!keys.ok()) return keys.status();
        for (const std::string& k : *keys) c->suppress_hashes.push_back(k.substr(PersonId::kSize));
      }
      return Status::OK();
    });
    if (!s.ok()) return s.WithContext("collecting identifiers to suppress");
  }
  if (p->options.analytics != AnalyticsOnErase::kKeep) {
    // Once the keys are gone only these links reach the analytics rows
    // that the data side must unlink or delete.
    for (const PersonId& person : p->people) {
      auto links = TicketLinks(person, keys::kPersonSlot, p->options.analytics);
      if (!links.ok()) return links.status();
      c->analytics_links.push_back(std::move(links).value());
    }
  }
  keys::ErasureRequest& request = c->request;
  request.request_id = p->options.request_id.empty() ? NewRequestId() : p->options.request_id;
  request.erased_at_ms = p->original.erased_at_ms != 0 ? p->original.erased_at_ms : ctx_.Now();
  request.key_epoch = ctx_.keys->current_epoch();
  request.people = p->people.size();
  request.pending = p->people.size();
  request.analytics_mode = static_cast<std::uint8_t>(p->options.analytics);
  request.suppressed = p->options.suppress || p->original.suppressed;
  p->request = request;
  return Status::OK();
}

Status Eraser::MissingKey(const std::vector<PersonId>& people, Status not_found) {
  for (const PersonId& person : people) {
    auto key = ctx_.PersonKey(person);
    if (key.status().IsCorruption()) return key.status();
  }
  return not_found;
}

void Eraser::CommitEraseGroup(const std::vector<PendingErase*>& group) {
  std::lock_guard write_lock(ctx_.write_mu);
  std::vector<keys::ErasureCommit> commits;
  // Links are in memory only until the data side is applied.
  struct WipeLinks {
    std::vector<keys::ErasureCommit>& commits;
    ~WipeLinks() {
      for (auto& c : commits) {
        for (std::string& l : c.analytics_links) crypto::Wipe(&l);
      }
    }
  } wipe_links{commits};
  std::vector<PersonId> everyone;
  std::vector<PendingErase*> live;
  for (PendingErase* p : group) {
    keys::ErasureCommit c;
    p->status = PrepareCommit(p, &c);
    if (!p->status.ok()) {
      for (std::string& l : c.analytics_links) crypto::Wipe(&l);
      continue;
    }
    everyone.insert(everyone.end(), p->people.begin(), p->people.end());
    commits.push_back(std::move(c));
    live.push_back(p);
  }
  if (live.empty()) return;
  {
    // No read of these people runs across the commit: a read either finished
    // before it or starts after it and finds no key.
    PersonLocks::ExclusiveGuard person_lock(ctx_.person_locks, everyone);
    util::TestPoint("erase.people_locked");
    Status c = live.size() == 1 ? Status::Busy("single") : ctx_.keys->CommitErasures(commits);
    if (!c.ok()) {
      // One request's failure (a person erased already, a reused request id)
      // must not fail the others: commit them one by one.
      for (std::size_t i = 0; i < live.size(); ++i) {
        live[i]->status = ctx_.keys->CommitErasures({commits[i]});
        if (live[i]->status.IsNotFound()) live[i]->status = MissingKey(live[i]->people, live[i]->status);
      }
    }
    ctx_.erasure_epoch.fetch_add(1, std::memory_order_release);
  }
  util::TestPoint("erase.after_keys_commit");
  ApplyGroupToData(live, commits);
}

void Eraser::ApplyGroupToData(const std::vector<PendingErase*>& live, const std::vector<keys::ErasureCommit>& commits) {
  // The erasures are committed. The data side follows; if it fails (a full
  // disk, say), the erasures stand and Purge() or the next open redo it.
  std::uint64_t next_seq = ctx_.next_event_seq;
  Status d = ctx_.data->Update([&](storage::WriteTxn& txn) -> Status {
    next_seq = ctx_.next_event_seq;
    for (std::size_t i = 0; i < live.size(); ++i) {
      PendingErase* p = live[i];
      if (!p->status.ok()) continue;
      std::vector<keys::PurgeTicket> tickets;
      for (std::size_t j = 0; j < p->people.size(); ++j) {
        const std::vector<std::string>& links = commits[i].analytics_links;
        tickets.push_back({p->people[j], keys::kPersonSlot, p->request.request_id, p->request.analytics_mode,
                           links.empty() ? std::string() : links[j]});
      }
      if (Status a = ApplyErasureToData(txn, tickets, &p->request, &p->audit_hash, &next_seq); !a.ok()) return a;
    }
    return Status::OK();
  });
  if (d.ok()) {
    ctx_.next_event_seq = next_seq;
  } else {
    for (PendingErase* p : live) p->audit_hash.clear();
  }
}

Result<ErasureReceipt> Eraser::EraseCategory(const PersonId& person, std::string_view category,
                                               const EraseOptions& options) {
  CallGuard guard(ctx_);
  if (!guard.ok()) return guard.status();
  if (Status v = ValidateEraseOptions(options); !v.ok()) return v;
  if (options.suppress) {
    return Status::InvalidArgument("a category erasure suppresses no identifiers: identifiers are not categorised");
  }
  if (category == kGeneralCategory) {
    return Status::InvalidArgument("category 'general' is sealed under the person key: erase the person");
  }
  if (Status c = ctx_.policy->CheckCategory(category); !c.ok()) return c;
  const std::vector<PersonId> people{person};
  if (Status d = ctx_.leases.BeginDrain(people, std::chrono::milliseconds(ctx_.options.lease_drain_timeout_ms)); !d.ok()) {
    return d;
  }
  const DrainGuard drain_guard{ctx_.leases, people};

  // Under ctx_.write_mu: no write takes a new key slot for the category between
  // reading the person's slots and the erase commit.
  std::lock_guard write_lock(ctx_.write_mu);
  auto dek = ctx_.PersonKey(person);
  if (!dek.ok()) return dek.status();
  auto payload = ctx_.ReadPersonPayload(person, **dek);
  if (!payload.ok()) return payload.status();
  auto slot = payload->category_slots.find(std::string(category));
  if (slot == payload->category_slots.end()) {
    return Status::NotFound("person " + person.ToHex() + " holds nothing in category '" + std::string(category) + "'");
  }
  auto already = ctx_.keys->IsSlotErased(person, slot->second);
  if (!already.ok()) return already.status();
  if (*already) {
    return Status::Erased("category '" + std::string(category) + "' of person " + person.ToHex() +
                          " was erased already and holds nothing written since");
  }
  keys::ErasureCommit commit;
  commit.people = people;
  commit.slot = slot->second;
  {  // every mode needs the rows of a category (ApplyAnalyticsMode)
    auto links = TicketLinks(person, slot->second, options.analytics);
    if (!links.ok()) return links.status();
    commit.analytics_links.push_back(std::move(links).value());
  }
  struct WipeLinks {
    keys::ErasureCommit& commit;
    ~WipeLinks() {
      for (std::string& l : commit.analytics_links) crypto::Wipe(&l);
    }
  } wipe_links{commit};
  keys::ErasureRequest& request = commit.request;
  request.request_id = options.request_id.empty() ? NewRequestId() : options.request_id;
  request.erased_at_ms = ctx_.Now();
  request.key_epoch = ctx_.keys->current_epoch();
  request.people = 1;
  request.pending = 1;
  request.analytics_mode = static_cast<std::uint8_t>(options.analytics);
  request.category = std::string(category);
  {
    // As in Erase: no read of the person runs across the commit.
    PersonLocks::ExclusiveGuard person_lock(ctx_.person_locks, people);
    // Bumped whatever the commit returned: a failed sync after the commit
    // leaves the key gone (KeyStore::CommitErasures).
    const Status c = ctx_.keys->CommitErasures({commit});
    ctx_.erasure_epoch.fetch_add(1, std::memory_order_release);
    if (!c.ok()) return c;
  }
  util::TestPoint("erase_category.after_keys_commit");
  // The erasure is committed; the data side follows (or Purge() and the next
  // open redo it).
  std::string audit_hash;
  std::uint64_t next_seq = ctx_.next_event_seq;
  Status d = ctx_.data->Update([&](storage::WriteTxn& txn) -> Status {
    next_seq = ctx_.next_event_seq;
    const keys::PurgeTicket ticket{person, slot->second, request.request_id, request.analytics_mode,
                                   commit.analytics_links.empty() ? std::string() : commit.analytics_links[0]};
    return ApplyErasureToData(txn, {ticket}, &request, &audit_hash, &next_seq);
  });
  if (d.ok()) {
    ctx_.next_event_seq = next_seq;
  } else {
    audit_hash.clear();
  }
  return ReceiptFrom(request, std::move(audit_hash));
}

namespace {

// OK if the person's `people` row is gone (their purge has completed: its
// last transaction deletes the row with every `erased` marker of the
// person); NotFound if the row is there; another error if it cannot be read.
Status PersonRowGone(storage::ReadTxn& txn, const DataTables& tables, const PersonId& person) {
  std::string_view row;
  Status g = txn.Get(tables.people, person.view(), &row);
  if (g.IsNotFound()) return Status::OK();
  return g.ok() ? Status::NotFound("the person's row is there") : g;
}

}  // namespace

Status Eraser::ApplyErasureToData(storage::WriteTxn& txn, const std::vector<keys::PurgeTicket>& tickets,
                                     const keys::ErasureRequest* request, std::string* audit_hash,
                                     std::uint64_t* next_seq) {
  const std::uint64_t seq_before = *next_seq;
  std::map<std::string, std::uint64_t> applied_per_request;
  for (const keys::PurgeTicket& t : tickets) {
    const std::string marker_key = MarkerKey(t);
    std::string_view marker;
    Status g = txn.Get(ctx_.tables.erased, marker_key, &marker);
    if (g.ok()) continue;  // applied before
    if (!g.IsNotFound()) return g;
    // No marker and no `people` row: the person's purge has completed (its
    // last transaction deletes the row and every marker of the person),
    // through this ticket or the person's own, and only the ticket's
    // removal from `keys` is left. Applying it again would write an erasure
    // notice, and for a category a `versions` row, naming a purged person
    // (stop 28's audit, F1: a category and a person erasure purged in one
    // run left the person ID in `data` for good).
    if (Status p = PersonRowGone(txn, ctx_.tables, t.person); p.ok()) {
      // Its audit entry is still written if no run wrote it (a category
      // erasure whose data side failed, purged with its person's before
      // any reopen applied it): the entry names no person.
      applied_per_request.try_emplace(t.request_id, 0);
      continue;
    } else if (!p.IsNotFound()) {
      return p;
    }
    const bool category = t.slot != keys::kPersonSlot;

    // The identifier index keeps naming the erased person until purge, so
    // resolving one says Erased (or Suppressed); a new person may take an
    // identifier over meanwhile (Claim), and purge releases the rest.
    // The analytics rows are reached through the ticket's links alone.
    if (Status a = ApplyAnalyticsMode(txn, t); !a.ok()) return a;
    if (Status p = txn.Put(ctx_.tables.erased, marker_key, PlainRow(TableId::kErased, marker_key, t.request_id)); !p.ok()) {
      return p;
    }
    std::vector<std::string> names;
    if (category) {
      // The person's data changed: an export in progress must not mix the
      // state before and after (it stops with Busy).
      auto v = ctx_.PersonVersion(txn, t.person);
      if (!v.ok()) return v.status();
      std::string enc;
      util::PutFixed64BE(&enc, *v + 1);
      if (Status p = txn.Put(ctx_.tables.versions, t.person.view(), PlainRow(TableId::kVersions, t.person.view(), enc));
          !p.ok()) {
        return p;
      }
      auto r = request != nullptr && request->request_id == t.request_id ? Result<keys::ErasureRequest>(*request)
                                                                          : ctx_.keys->GetRequest(t.request_id);
      if (!r.ok()) return r.status();
      names.push_back("category." + r->category);
    }
    if (Status n = ctx_.outbox->Append(txn, NoticeKind::kErasure, t.person, ctx_.Now(), std::move(names)); !n.ok()) return n;
    ++applied_per_request[t.request_id];
  }
  if (*next_seq != seq_before) {
    std::string v;
    util::PutFixed64BE(&v, *next_seq);
    if (Status p = txn.Put(ctx_.tables.meta, kEventSeqKey, PlainRow(TableId::kDataMeta, kEventSeqKey, v)); !p.ok()) return p;
  }
  // One audit entry per request, written by whichever run applies it first.
  for (const auto& [request_id, n] : applied_per_request) {
    auto existing = ctx_.audit->HashOfRequest(txn, request_id);
    if (existing.ok()) {
      if (audit_hash != nullptr) *audit_hash = *existing;
      continue;
    }
    if (!existing.status().IsNotFound()) return existing.status();
    keys::ErasureRequest r;
    if (request != nullptr && request->request_id == request_id) {
      r = *request;
    } else {
      auto stored = ctx_.keys->GetRequest(request_id);
      if (!stored.ok()) return stored.status();
      r = *stored;
    }
    AuditEntry e{r.category.empty() ? AuditKind::kErase : AuditKind::kEraseCategory, r.erased_at_ms, request_id,
                 r.people, r.suppressed ? 1u : 0u, r.analytics_mode};
    auto hash = ctx_.audit->Append(txn, e);
    if (!hash.ok()) return hash.status();
    if (audit_hash != nullptr) *audit_hash = *hash;
  }
  return Status::OK();
}

Status Eraser::ApplyAnalyticsMode(storage::WriteTxn& txn, const keys::PurgeTicket& t) {
  const auto mode = static_cast<AnalyticsOnErase>(t.analytics_mode);
  // kKeep: the rows stay together under one anonymous ID. For a person
  // erased whole that is their own, whose link to them goes with their
  // key. A category's person lives on, and their export shows that ID: the
  // category's rows get one fresh ID of their own (outside audit 29b F5; a
  // category ticket written before stop 29 carries no link to find them).
  std::optional<AnonymousId> relabel;
  if (mode == AnalyticsOnErase::kKeep) {
    if (t.slot == keys::kPersonSlot || t.analytics_links.empty()) return Status::OK();
    relabel.emplace(crypto::RandomArray<AnonymousId::kSize>());
  }
  // A random row id in `bucket_ms`, free in `analytics`.
  auto free_key = [&](std::int64_t bucket_ms, std::string* out) -> Status {
    for (;;) {
      *out = RandomAnalyticsKey(bucket_ms);
      std::string_view taken;
      Status q = txn.Get(ctx_.tables.analytics, *out, &taken);
      if (q.IsNotFound()) return Status::OK();
      if (!q.ok()) return q;
    }
  };
  auto rows = TicketAnalyticsRows(txn, t);
  if (!rows.ok()) return rows.status();
  for (const auto& [seq, akey] : *rows) {
    // Staged (engine/analytics_staging.h) or materialised: removed from
    // wherever it is.
    auto remove = [&, seq = seq, &akey = akey]() -> Status {
      if (Status d = ctx_.staging->Remove(txn, seq); !d.ok()) return d;
      return txn.Delete(ctx_.tables.analytics, akey);
    };
    std::string payload;
    bool staged = false;
    Status r = ctx_.ReadAnalyticsRow(txn, seq, akey, &payload, &staged);
    if (r.IsNotFound()) continue;
    if (mode == AnalyticsOnErase::kDelete || r.IsCorruption() || r.IsAuthenticationFailed()) {
      if (Status d = remove(); !d.ok()) return d;
      continue;
    }
    if (!r.ok()) return r;
    AnalyticsRow row;
    if (Status d = codec::DecodeAnalytics(payload, &row); !d.ok()) return d;
    std::int64_t time = 0;
    if (akey.size() == codec::kAnalyticsKeySize) {
      if (Status d = codec::DecodeAnalyticsKey(akey, &time); !d.ok()) return d;
    } else {  // a format-2 key (an erasure recovered before the migration)
      std::uint64_t key_seq = 0;
      if (Status d = codec::DecodeTsSeq(akey, &time, &key_seq); !d.ok()) return d;
    }
    if (relabel) {
      // The category's new ID, at a random row id of the same bucket, so no
      // key ties the row to its old bytes (in free pages until CompactData,
      // and in older copies of the file). A staged row stays staged,
      // re-sealed: materialising it in this commit would show a holder of
      // two copies of `data` which rows were this person's (review of stop
      // 29).
      std::string new_key, new_payload;
      if (Status k = free_key(time, &new_key); !k.ok()) return k;
      codec::EncodeAnalytics(*relabel, row.name, row.fields, &new_payload);
      if (staged) {
        if (Status p = ctx_.staging->Restage(txn, StagedRow{seq, new_key, new_payload}); !p.ok()) return p;
        continue;
      }
      if (Status d = txn.Delete(ctx_.tables.analytics, akey); !d.ok()) return d;
      if (Status p = txn.Put(ctx_.tables.analytics, new_key, PlainRow(TableId::kAnalytics, new_key, new_payload));
          !p.ok()) {
        return p;
      }
      continue;
    }
    // A fresh ID per row, a coarser time and a random row id, so neither
    // ID, time nor order links the rows to each other or to anything.
    const AnonymousId fresh(crypto::RandomArray<AnonymousId::kSize>());
    std::string new_key;
    if (Status k = free_key(FloorTo(time, ctx_.options.unlink_time_granularity_ms), &new_key); !k.ok()) return k;
    std::string new_payload;
    codec::EncodeAnalytics(fresh, row.name, row.fields, &new_payload);
    if (Status d = remove(); !d.ok()) return d;
    if (Status p = txn.Put(ctx_.tables.analytics, new_key, PlainRow(TableId::kAnalytics, new_key, new_payload)); !p.ok()) {
      return p;
    }
  }
  return Status::OK();
}

Result<std::string> Eraser::TicketLinks(const PersonId& person, std::uint32_t slot, AnalyticsOnErase mode) {
  if (mode == AnalyticsOnErase::kKeep && slot == keys::kPersonSlot) return std::string();
  auto dek = ctx_.PersonKey(person);
  if (!dek.ok()) return dek.status();
  Keyring keyring(ctx_.keys.get(), person, *dek);
  std::vector<std::uint32_t> slots;
  if (slot != keys::kPersonSlot) {
    slots.push_back(slot);
  } else {
    // Every key slot the person's events may be sealed under.
    auto payload = ctx_.ReadPersonPayload(person, **dek);
    if (!payload.ok()) return payload.status();
    slots.push_back(keys::kPersonSlot);
    for (const auto& [category, s] : payload->category_slots) slots.push_back(s);
  }
  std::map<std::uint32_t, std::string> links;
  for (std::uint32_t s : slots) {
    auto key = s == keys::kPersonSlot ? Result<keys::DekHandle>(*dek) : keyring.Key(s);
    if (!key.ok()) return key.status();
    if (*key == nullptr) continue;  // an erased category: handled by its own erasure
    links[s] = AnalyticsLink(**key);
  }
  std::string out = EncodeLinks(links);
  for (auto& [s, l] : links) crypto::Wipe(&l);
  return out;
}

Result<std::vector<std::pair<std::uint64_t, std::string>>> Eraser::TicketAnalyticsRows(storage::ReadTxn& txn,
                                                                                        const keys::PurgeTicket& t) {
  const bool format2 = ctx_.data_format < kUnlinkedDataFormatVersion;  // recovery before the migration
  std::map<std::uint32_t, std::string> links;
  struct Wipe {
    std::map<std::uint32_t, std::string>& links;
    ~Wipe() {
      for (auto& [s, l] : links) crypto::Wipe(&l);
    }
  } wipe{links};
  if (!format2) {
    if (t.analytics_links.empty()) {
      return Status::Corruption("purge ticket of person " + t.person.ToHex() +
                                " lacks the analytics links its mode needs");
    }
    if (Status d = DecodeLinks(t.analytics_links, &links); !d.ok()) return d;
  }
  // One walk of the person's event rows: the key gives (ts, seq), the header
  // the slot whose link finds the row (a category ticket carries only its
  // slot's link; a category erased before is handled by its own erasure).
  std::vector<std::pair<std::uint64_t, std::string>> out;
  auto cursor = txn.OpenCursor(ctx_.tables.events);
  if (!cursor.ok()) return cursor.status();
  auto& c = **cursor;
  Status m = c.Seek(t.person.view());
  for (; m.ok() && c.Valid() && c.key().substr(0, PersonId::kSize) == t.person.view(); m = c.Next()) {
    std::uint32_t slot = 0;
    const bool header_ok = codec::PersonRowSlot(c.value(), &slot).ok();  // damaged: Verify reports it
    std::int64_t ts = 0;
    std::uint64_t seq = 0;
    if (Status d = codec::DecodeTsSeq(c.key().substr(PersonId::kSize), &ts, &seq); !d.ok()) return d;
    if (format2) {  // rows share (ts, seq) with their events
      if (t.slot == keys::kPersonSlot || (header_ok && slot == t.slot)) out.emplace_back(seq, codec::AnalyticsKeyV2(ts, seq));
      continue;
    }
    if (!header_ok) continue;
    auto link = links.find(slot);
    if (link != links.end()) out.emplace_back(seq, ctx_.AnalyticsKeyFor(link->second, ts, seq));
  }
  if (!m.ok()) return m;
  return out;
}

Status Eraser::RecoverErasures() {
  std::lock_guard write_lock(ctx_.write_mu);
  auto tickets = ctx_.keys->PendingPurges(~std::size_t{0});
  if (!tickets.ok()) return tickets.status();
  if (tickets->empty()) return Status::OK();
  // Tickets applied before only have their marker looked up (`erased` is
  // walked at open). One not applied yet — an erasure cut short between its
  // two commits, when torn pages are likeliest — makes this open read and
  // write rows of most tables: walk every page first (stop 26's review).
  bool unapplied = false;
  if (Status m = ctx_.data->View([&](storage::ReadTxn& txn) -> Status {
        for (const keys::PurgeTicket& t : *tickets) {
          std::string_view marker;
          Status g = txn.Get(ctx_.tables.erased, MarkerKey(t), &marker);
          if (g.IsNotFound()) {
            // No marker and no `people` row: purged, its removal from
            // `keys` cut short — nothing to apply (ApplyErasureToData).
            Status p = PersonRowGone(txn, ctx_.tables, t.person);
            if (p.ok()) continue;
            if (!p.IsNotFound()) return p;
            unapplied = true;
            return Status::OK();
          }
          if (!g.ok()) return g;
        }
        return Status::OK();
      });
      !m.ok()) {
    return m;
  }
  if (unapplied) {
    if (Status p = ctx_.CheckAllPages("recovered"); !p.ok()) return p;
  }
  std::uint64_t next_seq = ctx_.next_event_seq;
  Status s = ctx_.data->Update([&](storage::WriteTxn& txn) {
    next_seq = ctx_.next_event_seq;
    return ApplyErasureToData(txn, *tickets, nullptr, nullptr, &next_seq);
  });
  if (s.ok()) ctx_.next_event_seq = next_seq;
  return s;
}

Result<ErasureReceipt> Eraser::GetErasure(std::string_view request_id) {
  CallGuard guard(ctx_);
  if (!guard.ok()) return guard.status();
  if (!ValidRequestId(request_id)) {
    return Status::InvalidArgument("request id must be 1..64 printable ASCII characters without spaces");
  }
  auto r = ctx_.keys->GetRequest(request_id);
  if (!r.ok()) return r.status();
  std::string hash;
  Status s = ctx_.data->View([&](storage::ReadTxn& txn) -> Status {
    auto h = ctx_.audit->HashOfRequest(txn, request_id);
    if (h.ok()) hash = *h;
    return h.ok() || h.status().IsNotFound() ? Status::OK() : h.status();
  });
  if (!s.ok()) return s;
  return ReceiptFrom(*r, std::move(hash));
}

Status Eraser::Unsuppress(const Identifier& identifier) {
  CallGuard guard(ctx_);
  if (!guard.ok()) return guard.status();
  auto n = ctx_.registry->Normalize(identifier);
  if (!n.ok()) return n.status();
  std::lock_guard write_lock(ctx_.write_mu);
  if (Status u = ctx_.keys->Unsuppress(IdentifierHash(ctx_.keys->index_key(), *n)); !u.ok()) return u;
  return ctx_.data->Update([&](storage::WriteTxn& txn) {
    return ctx_.audit->Append(txn, AuditEntry{AuditKind::kUnsuppress, ctx_.Now(), "", 1, 0, 0}).status();
  });
}

}  // namespace shredkv::engine
