// Reads of one person and of the store: identifier resolution, person,
// profile, records, consent and restriction state, the feed, statistics.
#include "engine/reader.h"

#include "codec/row_codec.h"
#include "codec/sealed.h"
#include "crypto/secure_memory.h"
#include "engine/data_rows.h"
#include "engine/keyring.h"
#include "util/coding.h"
#include "util/test_point.h"

namespace shredkv::engine {
namespace {

using codec::TableId;

// Reads one sealed row of a person and decrypts it with the key of the slot
// it names. NotFound if absent, or if its category key was erased.
Status ReadSealed(storage::Environment& env, storage::Table table, TableId id, Keyring& keyring,
                  std::string_view key, std::string* plain) {
  return env.View([&](storage::ReadTxn& txn) -> Status {
    std::string_view row;
    if (Status g = txn.Get(table, key, &row); !g.ok()) return g;
    bool shredded = false;
    if (Status o = keyring.Open(id, key, row, plain, &shredded); !o.ok()) return o;
    return shredded ? Status::NotFound("the row's category key was erased") : Status::OK();
  });
}

// Runs `read(person_key)` for a person who has a key (NotFound / Erased
// otherwise), under the call guard and the person's stripe (shared) for the
// whole read, so no read that returns after an erasure used the shredded key.
template <typename Read>
auto WithLivePerson(EngineContext& ctx, const PersonId& id, Read read) -> decltype(read(keys::DekHandle())) {
  CallGuard guard(ctx);
  if (!guard.ok()) return guard.status();
  PersonLocks::SharedGuard person_lock(ctx.person_locks, id);
  auto dek = ctx.PersonKey(id);
  if (!dek.ok()) return dek.status();
  return read(*dek);
}

// A read of clear per-person state in one read transaction.
template <typename T, typename Read>
Result<T> ReadInView(storage::Environment& env, Read read) {
  T out;
  Status s = env.View([&](storage::ReadTxn& txn) -> Status {
    auto r = read(txn);
    if (!r.ok()) return r.status();
    out = std::move(r).value();
    return Status::OK();
  });
  if (!s.ok()) return s;
  return out;
}

// What a read by identifier answers when it found no live owner (`miss`:
// NotFound, or the owner's key status): Suppressed when the identifier is
// on the suppression list after an erasure, `miss` otherwise.
Status IdentifierMiss(EngineContext& ctx, const std::string& hash, const std::string& type, Status miss) {
  if (miss.IsNotFound() || miss.IsErased()) {
    bool suppressed = false;
    if (Status q = ctx.Suppressed(hash, &suppressed); !q.ok()) return q;
    if (suppressed) return Status::Suppressed("this " + type + " is suppressed after an erasure");
  }
  return miss;
}

}  // namespace

Result<PersonId> Reader::Resolve(const Identifier& identifier) {
  CallGuard guard(ctx_);
  if (!guard.ok()) return guard.status();
  auto n = ctx_.registry->Normalize(identifier);
  if (!n.ok()) return n.status();
  const std::string hash = IdentifierHash(ctx_.keys->index_key(), *n);
  std::string owner;
  Status s = ctx_.data->View([&](storage::ReadTxn& txn) {
    return ReadPlain(txn, ctx_.tables.ident, TableId::kIdentIndex, hash, &owner);
  });
  if (!s.ok() && !s.IsNotFound()) return s.WithContext("identifier index");
  Status result = Status::NotFound("no person has this " + n->type);
  if (s.ok()) {
    auto id = PersonIdFromBytes(owner);
    if (!id.ok()) return id.status();
    PersonLocks::SharedGuard person_lock(ctx_.person_locks, *id);
    auto dek = ctx_.PersonKey(*id);
    if (dek.ok()) return id;
    result = dek.status();
  }
  return IdentifierMiss(ctx_, hash, n->type, std::move(result));
}

Result<PersonProfile> Reader::LookupProfile(const Identifier& identifier) {
  bool would_wait = false;
  auto found = LookupProfileInOneRead(identifier, &would_wait);
  if (!would_wait) return found;
  // Outside the first call's guard: Resolve and GetProfile take their own
  // (a second shared hold of the gate could wait behind a Close for ever).
  auto id = Resolve(identifier);
  if (!id.ok()) return id.status();
  auto profile = GetProfile(*id);
  if (!profile.ok()) return profile.status();
  return PersonProfile{*id, std::move(profile).value()};
}

Result<PersonProfile> Reader::LookupProfileInOneRead(const Identifier& identifier, bool* would_wait) {
  CallGuard guard(ctx_);
  if (!guard.ok()) return guard.status();
  auto n = ctx_.registry->Normalize(identifier);
  if (!n.ok()) return n.status();
  const std::string hash = IdentifierHash(ctx_.keys->index_key(), *n);
  // One snapshot: the identifier's owner, the owner's key (a nested read
  // of `keys`) and the profile rows. The person's stripe is taken inside
  // the read only if that needs no wait: a stripe is never waited for
  // inside a `data` read (GetProfile takes it before its read), so no
  // holder of a stripe can wait on a reader that waits on it (a map growth
  // waits for every read to end; today an erasure holds stripes only over
  // its `keys` commit). Otherwise *would_wait: the caller takes the
  // two-call path, which waits for the stripe before its read.
  enum class Outcome { kFound, kNoOwner, kOwnerHasNoKey, kWouldWait };
  Outcome outcome = Outcome::kNoOwner;
  Status key_status;
  PersonProfile out;
  Status s = ctx_.data->View([&](storage::ReadTxn& txn) -> Status {
    std::string owner;
    Status g = ReadPlain(txn, ctx_.tables.ident, TableId::kIdentIndex, hash, &owner);
    if (g.IsNotFound()) return Status::OK();
    if (!g.ok()) return g.WithContext("identifier index");
    auto id = PersonIdFromBytes(owner);
    if (!id.ok()) return id.status();
    if (!ctx_.person_locks.TryLockShared(*id)) {
      util::TestPoint("lookup_profile.stripe_busy");
      outcome = Outcome::kWouldWait;
      return Status::OK();
    }
    PersonLocks::SharedGuard person_lock(ctx_.person_locks, *id, std::adopt_lock);
    auto dek = ctx_.PersonKey(*id);
    if (!dek.ok()) {
      outcome = Outcome::kOwnerHasNoKey;
      key_status = dek.status();
      return Status::OK();
    }
    Keyring keyring(ctx_.keys.get(), *id, *dek);
    bool found = false;
    if (Status r = ReadProfile(txn, ctx_.tables.profiles, keyring, &out.attributes, &found); !r.ok()) return r;
    if (!found) return Status::NotFound("no profile for person " + id->ToHex());
    out.id = *id;
    outcome = Outcome::kFound;
    return Status::OK();
  });
  if (!s.ok()) return s;
  switch (outcome) {
    case Outcome::kFound:
      return out;
    case Outcome::kWouldWait:
      *would_wait = true;
      return Status::Busy("the person's stripe is held");
    case Outcome::kNoOwner:
    case Outcome::kOwnerHasNoKey:
      break;
  }
  return IdentifierMiss(ctx_, hash, n->type,
                        outcome == Outcome::kNoOwner ? Status::NotFound("no person has this " + n->type) : key_status);
}

Result<PersonInfo> Reader::GetPerson(const PersonId& id) {
  return WithLivePerson(ctx_, id, [&](const keys::DekHandle& dek) -> Result<PersonInfo> {
    Keyring keyring(ctx_.keys.get(), id, dek);
    std::string plain;
    Status s = ReadSealed(*ctx_.data, ctx_.tables.people, TableId::kPeople, keyring, id.view(), &plain);
    if (s.IsNotFound()) return Status::NotFound("no person " + id.ToHex());
    if (!s.ok()) return s.WithContext("person " + id.ToHex());
    codec::PersonPayload p;
    Status d = codec::DecodePerson(plain, &p);
    crypto::Wipe(&plain);
    if (!d.ok()) return d.WithContext("person " + id.ToHex());
    auto epoch = ctx_.keys->DekEpoch(id);
    if (!epoch.ok()) return epoch.status();
    return PersonInfo{id, p.anon_id, p.created_ms, std::move(p.identifiers), *epoch};
  });
}

Result<Attributes> Reader::GetProfile(const PersonId& id) {
  return WithLivePerson(ctx_, id, [&](const keys::DekHandle& dek) -> Result<Attributes> {
    Keyring keyring(ctx_.keys.get(), id, dek);
    Attributes attrs;
    bool found = false;
    Status s = ctx_.data->View([&](storage::ReadTxn& txn) {
      return ReadProfile(txn, ctx_.tables.profiles, keyring, &attrs, &found);
    });
    if (!s.ok()) return s;
    if (!found) return Status::NotFound("no profile for person " + id.ToHex());
    return attrs;
  });
}

Result<Record> Reader::GetRecord(const PersonId& id, std::string_view collection, std::string_view key) {
  if (Status v = ValidateRecordKey(collection, key); !v.ok()) return v;
  return WithLivePerson(ctx_, id, [&](const keys::DekHandle& dek) -> Result<Record> {
    const std::string skey = codec::RecordKey(id, ctx_.CollectionHash(collection), EngineContext::RecordKeyHash(*dek, collection, key));
    Keyring keyring(ctx_.keys.get(), id, dek);
    const auto rules = ctx_.retention->rules();
    const std::int64_t now = ctx_.Now();
    Record r;
    Status s = ctx_.data->View([&](storage::ReadTxn& txn) -> Status {
      std::string_view row;
      if (Status g = txn.Get(ctx_.tables.records, skey, &row); !g.ok()) return g;
      std::string plain;
      bool shredded = false;
      if (Status o = keyring.Open(TableId::kRecords, skey, row, &plain, &shredded); !o.ok()) return o;
      if (shredded) return Status::NotFound("the record's category key was erased");
      std::optional<std::int64_t> written;
      Status d = codec::DecodeRecord(plain, &r, &written);
      crypto::Wipe(&plain);
      if (!d.ok()) return d;
      // A record past its collection's retention is gone for every reader.
      auto expired = ctx_.retention->RecordExpired(txn, *rules, collection, skey, written, now);
      if (!expired.ok()) return expired.status();
      if (*expired) {
        crypto::Wipe(&r.value);
        return Status::NotFound("expired");
      }
      return Status::OK();
    });
    if (s.IsNotFound()) return Status::NotFound("no record '" + std::string(collection) + "' of person " + id.ToHex() + " under this key");
    if (!s.ok()) return s.WithContext("record of " + id.ToHex());
    if (RecordMetadataExpired(r, now)) {
      return Status::NotFound("no record '" + std::string(collection) + "' of person " + id.ToHex() + " under this key");
    }
    if (r.collection != collection || r.key != key) {
      return Status::Corruption("record of " + id.ToHex() + " holds a different key than its hash names");
    }
    return r;
  });
}

Result<std::vector<Notice>> Reader::ReadFeed(std::size_t max) {
  CallGuard guard(ctx_);
  if (!guard.ok()) return guard.status();
  std::vector<Notice> out;
  const std::int64_t expired_at = NoticeExpiryCutoff(ctx_.retention->rules()->rules, ctx_.Now());
  Status s = ctx_.data->View([&](storage::ReadTxn& txn) -> Status {
    auto r = ctx_.outbox->Read(txn, 0, max, nullptr, expired_at);
    if (!r.ok()) return r.status();
    out = std::move(r).value();
    return Status::OK();
  });
  if (!s.ok()) return s;
  return out;
}

Result<std::vector<AuditRecord>> Reader::ReadAudit(std::uint64_t after_seq, std::size_t max) {
  CallGuard guard(ctx_);
  if (!guard.ok()) return guard.status();
  std::vector<AuditRecord> out;
  Status s = ctx_.data->View([&](storage::ReadTxn& txn) -> Status {
    auto r = ctx_.audit->Read(txn, after_seq, max);
    if (!r.ok()) return r.status();
    out = std::move(r).value();
    return Status::OK();
  });
  if (!s.ok()) return s;
  return out;
}

Result<std::string> Reader::AuditSubject(const PersonId& id) {
  CallGuard guard(ctx_);
  if (!guard.ok()) return guard.status();
  PersonLocks::SharedGuard person_lock(ctx_.person_locks, id);
  auto dek = ctx_.PersonKey(id);
  if (!dek.ok()) return dek.status();
  return util::HexEncode(EngineContext::AuditSubject(**dek));
}

Result<StoreStats> Reader::Stats() {
  CallGuard guard(ctx_);
  if (!guard.ok()) return guard.status();
  StoreStats st;
  st.operations = ctx_.metrics.Snapshot();
  // A read-only open finishes nothing: an erasure cut short between its
  // `keys` commit and its `data` commit (or one in flight in the writing
  // process beside) has its ticket and fence, and not yet its `erased`
  // marker. Such a person is erased (every read says so), not held
  // (outside audit 39a, F3: `people` counted them while `get` said Erased).
  std::vector<PersonId> unapplied_candidates;
  if (ctx_.options.read_only) {
    auto pending = ctx_.keys->PeoplePendingPurge();
    if (!pending.ok()) return pending.status();
    unapplied_candidates = std::move(*pending);
  }
  Status s = ctx_.data->View([&](storage::ReadTxn& txn) -> Status {
    struct { storage::Table t; std::uint64_t* out; } counts[] = {
        {ctx_.tables.people, &st.people},   {ctx_.tables.ident, &st.identifiers},
        {ctx_.tables.events, &st.events},   {ctx_.tables.records, &st.records},
        {ctx_.tables.analytics, &st.analytics_rows}, {ctx_.tables.restrictions, &st.restricted}};
    for (auto& c : counts) {
      auto n = txn.Count(c.t);
      if (!n.ok()) return n.status();
      *c.out = *n;
    }
    // An erased person's rows stay until the purge: not a person held, nor
    // one with a restriction in force (outside audit 36c, F3: both counted
    // them). `erased` holds a person-sized key per such person.
    // An erased person whose rows are still here: neither held nor restricted.
    auto leave_out = [&](std::string_view person) -> Status {
      std::string_view row;
      Status had_row = txn.Get(ctx_.tables.people, person, &row);
      if (had_row.ok() && st.people > 0) --st.people;
      if (!had_row.ok() && !had_row.IsNotFound()) return had_row;
      Status restricted = txn.Get(ctx_.tables.restrictions, person, &row);
      if (restricted.ok() && st.restricted > 0) --st.restricted;
      return restricted.ok() || restricted.IsNotFound() ? Status::OK() : restricted;
    };
    auto cursor = txn.OpenCursor(ctx_.tables.erased);
    if (!cursor.ok()) return cursor.status();
    auto& c = **cursor;
    for (Status m = c.SeekToFirst(); c.Valid() || !m.ok(); m = c.Next()) {
      if (!m.ok()) return m;
      if (c.key().size() != PersonId::kSize) continue;  // a category erasure's marker
      if (Status l = leave_out(c.key()); !l.ok()) return l;
    }
    for (const PersonId& p : unapplied_candidates) {
      std::string_view row;
      Status marked = txn.Get(ctx_.tables.erased, p.view(), &row);
      if (marked.ok()) continue;  // applied: left out above
      if (!marked.IsNotFound()) return marked;
      if (Status l = leave_out(p.view()); !l.ok()) return l;
    }
    auto staged = ctx_.staging->Count(txn);
    if (!staged.ok()) return staged.status();
    st.analytics_staged = *staged;
    st.analytics_rows += *staged;
    auto counters = Retention::ReadCounters(txn, ctx_.tables.meta);
    if (!counters.ok()) return counters.status();
    st.expired_removed = counters->removed;
    const std::int64_t now = ctx_.Now();
    auto pending = ctx_.ExpiredPending(txn, *ctx_.retention->rules(), now, /*count_staged=*/true);
    if (!pending.ok()) return pending.status();
    st.expired_pending = *pending;
    auto backfill = Retention::LoadBackfill(txn, ctx_.tables.meta);
    if (!backfill.ok()) return backfill.status();
    st.retention_backfill_pending = backfill->has_value();
    return Status::OK();
  });
  if (!s.ok()) return s;
  st.key_epoch = ctx_.keys->current_epoch();
  st.oldest_key_epoch = ctx_.keys->oldest_epoch();
  auto counts = ctx_.keys->Counts();
  if (!counts.ok()) return counts.status();
  st.erased = counts->fences;
  st.suppressed = counts->suppressed;
  st.pending_purge = counts->pending_purge;
  st.erased_categories = counts->category_fences;
  st.erasures_since_rotation = counts->erasures_since_rotation;
  st.keys_rebuild_pending = counts->rebuild_pending;
  st.erasures_awaiting_rebuild = counts->erasures_awaiting_rebuild;
  st.suppressed_rejections = ctx_.suppressed_rejections.load(std::memory_order_relaxed);
  st.tracking_rejected = ctx_.tracking_rejected.load(std::memory_order_relaxed);
  st.tracking_dropped = ctx_.tracking_dropped.load(std::memory_order_relaxed);
  st.orphan_keys_collected = ctx_.orphan_keys_collected.load(std::memory_order_relaxed);
  st.store_id = util::HexEncode(ctx_.keys->store_id());
  st.format_version = ctx_.data_format;
  st.write_batches = ctx_.write_batches.load(std::memory_order_relaxed);
  st.write_commits = ctx_.write_commits.load(std::memory_order_relaxed);
  auto ki = ctx_.keys->Info();
  if (!ki.ok()) return ki.status();
  auto di = ctx_.data->Info();
  if (!di.ok()) return di.status();
  st.keys_file_bytes = ki->file_bytes;
  st.data_file_bytes = di->file_bytes;
  st.data_map_bytes = di->map_size;
  return st;
}

Result<RestrictionState> Reader::GetRestriction(const PersonId& id) {
  return WithLivePerson(ctx_, id, [&](const keys::DekHandle&) {
    return ReadInView<RestrictionState>(*ctx_.data, [&](storage::ReadTxn& txn) { return ctx_.ReadRestriction(txn, id); });
  });
}

Result<std::map<std::string, bool>> Reader::GetConsent(const PersonId& id) {
  return WithLivePerson(ctx_, id, [&](const keys::DekHandle&) {
    return ReadInView<std::map<std::string, bool>>(*ctx_.data,
                                                   [&](storage::ReadTxn& txn) { return ctx_.ReadConsent(txn, id); });
  });
}

Result<std::vector<ConsentRecord>> Reader::GetConsentHistory(const PersonId& id) {
  return WithLivePerson(ctx_, id, [&](const keys::DekHandle& dek) -> Result<std::vector<ConsentRecord>> {
    std::vector<ConsentRecord> out;
    Status s = ctx_.data->View([&](storage::ReadTxn& txn) -> Status {
      auto cursor = txn.OpenCursor(ctx_.tables.consent_history);
      if (!cursor.ok()) return cursor.status();
      auto& c = **cursor;
      Status m = c.Seek(id.view());
      for (; m.ok() && c.Valid() && c.key().substr(0, PersonId::kSize) == id.view(); m = c.Next()) {
        std::string plain;
        if (Status o = codec::OpenPersonRow(*dek, TableId::kConsentHistory, c.key(), c.value(), &plain); !o.ok()) {
          return o;
        }
        ConsentRecord rec;
        Status d = codec::DecodeConsentRecord(plain, &rec);
        crypto::Wipe(&plain);
        if (!d.ok()) return d;
        out.push_back(std::move(rec));
      }
      return m;
    });
    if (!s.ok()) return s;
    return out;
  });
}

}  // namespace shredkv::engine
