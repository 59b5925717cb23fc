// The write path: a WriteBatch applied in one `data` transaction, after the
// keys of new people were committed in `keys` (design §2: keys first).
#include "engine/write_path.h"

#include <algorithm>
#include <bit>
#include <map>
#include <set>
#include <unordered_map>

#include "codec/row_codec.h"
#include "codec/sealed.h"
#include "codec/value_codec.h"
#include "crypto/keyed_hash.h"
#include "crypto/random.h"
#include "engine/analytics_link.h"
#include "engine/data_rows.h"
#include "engine/keyring.h"
#include "util/base64.h"
#include "util/coding.h"
#include "util/test_point.h"

namespace shredkv::engine {
namespace {

// The analytics name of an event imported with ImportedAnalytics::kAnonymous.
constexpr std::string_view kAnonymousImportName = "imported";

using codec::TableId;

const char* OpName(const WriteBatch::Op& op) {
  static constexpr const char* kNames[] = {"CreatePerson", "LinkIdentifier", "UnlinkIdentifier",
                                           "PatchProfile", "AppendEvent",    "Put",
                                           "Delete",       "Rectify",        "RecordConsent"};
  return kNames[op.index()];
}

// Whether a stored value would change if `b` replaced `a`: doubles compare
// by their bits, so -0.0 and 0.0 differ (both are kept and exported as
// given) and a NaN is the same as itself.
bool SameStoredValue(const Value& a, const Value& b) {
  if (a.type() != b.type()) return false;
  if (a.type() == Value::Type::kDouble) {
    return std::bit_cast<std::uint64_t>(a.as_double()) == std::bit_cast<std::uint64_t>(b.as_double());
  }
  return a == b;
}

// Applies `patch` to `attrs` (unsets first, then sets: a name in both ends
// with the set's value) and adds `prefix` + name to `changed` for each
// attribute it changed: an unset of a present one (not set again), a set to
// a different value. Returns whether anything changed.
bool ApplyPatch(const ProfilePatch& patch, Attributes* attrs, std::string_view prefix,
                std::set<std::string>* changed) {
  bool any = false;
  auto note = [&](std::string_view name) {
    changed->insert(std::string(prefix) + std::string(name));
    any = true;
  };
  for (const std::string& name : patch.unset) {
    // The set decides (stop 31: unset first, a value set to what it was
    // was named as a change).
    if (patch.set.count(name) != 0) continue;
    if (attrs->erase(name) > 0) note(name);
  }
  for (const auto& [name, value] : patch.set) {
    auto it = attrs->find(name);
    if (it != attrs->end() && SameStoredValue(it->second, value)) continue;
    attrs->insert_or_assign(name, value);
    note(name);
  }
  return any;
}

// Applies a WriteBatch inside one `data` write transaction. Re-runnable: the
// storage layer runs it again after growing a full map.
class BatchApplier {
 public:
  // `first_seq`: the sequence number of the batch's first event (the
  // store's counter, or where the previous batch of the group left it).
  BatchApplier(EngineContext& ctx, storage::WriteTxn* txn,
               const std::map<PersonId, keys::PooledKey>& new_people, std::uint64_t first_seq)
      : ctx_(ctx), txn_(txn), t_(ctx.tables), new_people_(new_people),
        retention_rules_(ctx.retention->rules()), seq_(first_seq) {}
  // plain_ may still hold an event's plaintext when a batch stops early.
  ~BatchApplier() { crypto::Wipe(&plain_); }
  BatchApplier(const BatchApplier&) = delete;
  BatchApplier& operator=(const BatchApplier&) = delete;

  Status Apply(const WriteBatch& batch) {
    const auto& ops = batch.ops();
    for (std::size_t i = 0; i < ops.size(); ++i) {
      Status s = std::visit([&](const auto& op) { return Do(op); }, ops[i]);
      if (!s.ok()) {
        return s.WithContext("operation #" + std::to_string(i) + " (" + OpName(ops[i]) + ")");
      }
    }
    if (Status f = Finish(); !f.ok()) return f;
    return PutProgress(batch);
  }

  std::uint64_t next_seq() const { return seq_; }
  std::uint64_t dropped() const { return dropped_; }

 private:
  struct TrackingState {
    bool refused = false;  // tracking purpose refused by restriction or consent
    std::vector<std::string> withheld_categories;
  };
  struct PersonState {
    PersonState(const PersonId& id, keys::KeyStore* keys, keys::DekHandle person_key)
        : dek(person_key), keyring(keys, id, std::move(person_key)) {}
    keys::DekHandle dek;  // the person key (slot 0)
    Keyring keyring;      // every slot's key, new ones included
    codec::PersonPayload person;
    bool person_dirty = false;
    std::optional<Attributes> profile;  // loaded on first use
    std::set<std::uint32_t> profile_slots;  // slots of the profile rows loaded
    bool profile_dirty = false;
    bool mutated = false;  // a non-append change: bump the person's version
    bool created = false;  // created by this batch: no change notice (no recipient has data yet)
    // "record.put" / "record.delete" if this batch changed the person's
    // records: one change-feed notice for the person at the end of the batch.
    std::set<std::string> record_changes;
    // "profile.<attribute>" / "identifier.<type>" of what this batch's
    // PatchProfile, LinkIdentifier and UnlinkIdentifier changed (not its
    // Rectify, which writes its own notice): one rectification notice for
    // the person at the end of the batch.
    std::set<std::string> corrections;
    std::optional<TrackingState> tracking;  // loaded on the first tracked event
    LinkCache links;  // analytics links of the slots used in this batch
    std::optional<std::uint64_t> next_history;  // NextHistoryKey's counter, once read
  };

  // The key of the person's next consent-history entry: person ‖
  // fixed64be(n), n one past the person's last entry (1 for the first).
  // Per person, so a restriction or consent change writes no store-wide
  // counter (entries written before numbered from the event sequence keep
  // their keys; n continues after them).
  Result<std::string> NextHistoryKey(const PersonId& id, PersonState* st) {
    if (!st->next_history) {
      auto cursor = txn_->OpenCursor(t_.consent_history);
      if (!cursor.ok()) return cursor.status();
      auto& c = **cursor;
      std::string past(id.view());
      past.append(8, '\xff');
      Status m = c.Seek(past);
      if (m.ok()) m = c.Valid() ? c.Prev() : c.SeekToLast();
      if (!m.ok()) return m;
      st->next_history = 1;
      if (c.Valid() && c.key().size() == PersonId::kSize + 8 && c.key().substr(0, PersonId::kSize) == id.view()) {
        st->next_history = util::DecodeFixed64BE(c.key().data() + PersonId::kSize) + 1;
      }
    }
    std::string key(id.view());
    util::PutFixed64BE(&key, (*st->next_history)++);
    return key;
  }

  Result<PersonState*> Load(const PersonId& id) {
    auto it = people_.find(id);
    if (it != people_.end()) return &it->second;
    auto dek = ctx_.PersonKey(id);
    if (!dek.ok()) return dek.status();
    std::string_view row;
    Status g = txn_->Get(t_.people, id.view(), &row);
    if (g.IsNotFound()) return Status::NotFound("no person " + id.ToHex());
    if (!g.ok()) return g;
    std::string plain;
    if (Status o = codec::OpenPersonRow(**dek, TableId::kPeople, id.view(), row, &plain); !o.ok()) {
      return o.WithContext("person " + id.ToHex());
    }
    PersonState st(id, ctx_.keys.get(), *dek);
    Status d = codec::DecodePerson(plain, &st.person);
    crypto::Wipe(&plain);
    if (!d.ok()) return d.WithContext("person " + id.ToHex());
    return &people_.emplace(id, std::move(st)).first->second;
  }

  Status LoadProfile(PersonState* st) {
    if (st->profile) return Status::OK();
    Attributes attrs;
    bool found = false;
    if (Status r = ReadProfile(*txn_, t_.profiles, st->keyring, &attrs, &found, &st->profile_slots); !r.ok()) {
      return r;
    }
    st->profile = std::move(attrs);
    return Status::OK();
  }

  // The key slot and key that seal a new item of `category` for the person:
  // the person key for "general", else the person's key of that category,
  // made on first use (and again after the category was erased: a slot is
  // never reused). New keys are stored by Finish(), before the data commit.
  Result<std::pair<std::uint32_t, keys::DekHandle>> WriteKey(const PersonId& id, PersonState* st,
                                                             const std::string& category) {
    if (category == kGeneralCategory) return std::make_pair(keys::kPersonSlot, st->dek);
    auto it = st->person.category_slots.find(category);
    if (it != st->person.category_slots.end()) {
      auto key = st->keyring.Key(it->second);
      if (!key.ok()) return key.status();
      if (*key != nullptr) return std::make_pair(it->second, *key);
    }
    if (st->person.next_slot >= keys::kFirstForeignCategorySlot) {
      return Status::StoreFull("person " + id.ToHex() + " used up its category key slots");
    }
    const std::uint32_t slot = st->person.next_slot++;
    auto dek = keys::KeyStore::NewDek();
    if (!dek.ok()) return dek.status();
    st->person.category_slots.insert_or_assign(category, slot);
    st->person_dirty = true;
    st->keyring.Add(slot, *dek);
    new_keys_.push_back(keys::NewKey{id, slot, *dek});
    return std::make_pair(slot, *dek);
  }

  // Claims a normalised identifier for `id` in the index.
  Status Claim(const PersonId& id, const Identifier& normalized, bool* already_own) {
    *already_own = false;
    const std::string hash = IdentifierHash(ctx_.index_key(), normalized);
    bool suppressed = false;
    if (Status s = ctx_.Suppressed(hash, &suppressed); !s.ok()) return s;
    if (suppressed) {
      ctx_.suppressed_rejections.fetch_add(1, std::memory_order_relaxed);
      return Status::Suppressed("identifier of type '" + normalized.type + "' is suppressed after an erasure");
    }
    std::string owner_row;
    Status g = ReadPlain(*txn_, t_.ident, TableId::kIdentIndex, hash, &owner_row);
    if (g.ok()) {
      auto owner = PersonIdFromBytes(owner_row);
      if (!owner.ok()) return owner.status();
      if (*owner == id) {
        *already_own = true;
        return Status::OK();
      }
      // An erased owner whose index entry was not yet released: the
      // identifier is free, and the new owner is a new person (design §4).
      auto erased = ctx_.keys->IsErased(*owner);
      if (!erased.ok()) return erased.status();
      if (!*erased) {
        return Status::AlreadyExists("identifier of type '" + normalized.type + "' belongs to another person");
      }
    } else if (!g.IsNotFound()) {
      return g;
    }
    // A new claim only: one the person holds already (a value stored before
    // the check existed) is left as it is.
    if (Status v = ctx_.registry->CheckClaimable(normalized); !v.ok()) return v;
    if (Status p = txn_->Put(t_.ident, hash, PlainRow(TableId::kIdentIndex, hash, id.view())); !p.ok()) {
      return p;
    }
    const std::string back = std::string(id.view()) + hash;
    return txn_->Put(t_.ident_by_person, back, PlainRow(TableId::kIdentByPerson, back, {}));
  }

  Status Do(const WriteBatch::CreatePersonOp& op) {
    auto key_it = new_people_.find(op.id);
    if (key_it == new_people_.end() || people_.count(op.id) != 0) {
      return Status::AlreadyExists("person " + op.id.ToHex() + " is created twice in this batch");
    }
    std::string_view existing;
    Status g = txn_->Get(t_.people, op.id.view(), &existing);
    if (g.ok()) return Status::AlreadyExists("person " + op.id.ToHex() + " already exists");
    if (!g.IsNotFound()) return g;
    // An erased ID (purged rows, the fence forever) never gets a key again.
    auto erased = ctx_.keys->IsErased(op.id);
    if (!erased.ok()) return erased.status();
    if (*erased) return Status::Erased("person " + op.id.ToHex() + " was erased");
    // The claim: until `keys` adopts it, the person's key is this pool row.
    std::string index;
    util::PutFixed64BE(&index, key_it->second.index);
    if (Status c = txn_->Put(t_.key_claims, op.id.view(), codec::PlainRow(TableId::kKeyClaims, op.id.view(), index));
        !c.ok()) {
      return c;
    }
    const keys::DekHandle& person_key = key_it->second.dek;
    if (Status v = codec::ValidateAttributeNames(op.profile, "profile attribute"); !v.ok()) return v;

    PersonState st(op.id, ctx_.keys.get(), person_key);
    st.person.anon_id = AnonymousId(crypto::RandomArray<AnonymousId::kSize>());
    st.person.created_ms = op.created_ms != 0 ? op.created_ms : ctx_.Now();
    if (op.imported) {
      if (Status n = ctx_.outbox->Append(*txn_, NoticeKind::kImport, op.id, ctx_.Now(), {}); !n.ok()) return n;
    }
    std::set<Identifier> ids;
    for (const Identifier& raw : op.identifiers) {
      auto n = ctx_.registry->Normalize(raw);
      if (!n.ok()) return n.status();
      ids.insert(std::move(n).value());
    }
    for (const Identifier& n : ids) {
      bool own = false;
      if (Status c = Claim(op.id, n, &own); !c.ok()) return c;
    }
    st.person.identifiers.assign(ids.begin(), ids.end());
    st.person_dirty = true;
    st.profile = op.profile;
    st.profile_dirty = true;
    st.created = true;
    people_.emplace(op.id, std::move(st));
    return Status::OK();
  }

  Status Do(const WriteBatch::LinkIdentifierOp& op) {
    std::set<std::string> changed;
    if (Status l = Link(op.id, op.identifier, &changed); !l.ok()) return l;
    return NoteCorrections(op.id, &changed);
  }

  Status Do(const WriteBatch::UnlinkIdentifierOp& op) {
    std::set<std::string> changed;
    if (Status u = Unlink(op.id, op.identifier, &changed); !u.ok()) return u;
    return NoteCorrections(op.id, &changed);
  }

  Status Do(const WriteBatch::PatchProfileOp& op) {
    std::set<std::string> changed;
    if (Status p = PatchProfileOf(op.id, op.patch, &changed); !p.ok()) return p;
    return NoteCorrections(op.id, &changed);
  }

  // Adds the names of what a PatchProfile, LinkIdentifier or
  // UnlinkIdentifier changed to the person's rectification notice of this
  // batch (Finish writes it; none for a person the batch created).
  Status NoteCorrections(const PersonId& id, std::set<std::string>* changed) {
    if (changed->empty()) return Status::OK();
    auto st = Load(id);
    if (!st.ok()) return st.status();
    (*st)->corrections.merge(*changed);
    return Status::OK();
  }

  // Links `identifier` to the person. Adds "identifier.<type>" to `changed`
  // unless the person had it already (then nothing changes).
  Status Link(const PersonId& id, const Identifier& identifier, std::set<std::string>* changed) {
    auto n = ctx_.registry->Normalize(identifier);
    if (!n.ok()) return n.status();
    auto st = Load(id);
    if (!st.ok()) return st.status();
    bool own = false;
    if (Status c = Claim(id, *n, &own); !c.ok()) return c;
    auto& list = (*st)->person.identifiers;
    auto pos = std::lower_bound(list.begin(), list.end(), *n);
    if (pos == list.end() || *pos != *n) {
      list.insert(pos, *n);
      (*st)->person_dirty = true;
      (*st)->mutated = true;
      changed->insert("identifier." + n->type);
    }
    return Status::OK();
  }

  // Unlinks the person's `identifier` (NotFound if it is not theirs) and
  // adds "identifier.<type>" to `changed`.
  Status Unlink(const PersonId& id, const Identifier& identifier, std::set<std::string>* changed) {
    auto n = ctx_.registry->Normalize(identifier);
    if (!n.ok()) return n.status();
    auto st = Load(id);
    if (!st.ok()) return st.status();
    const std::string hash = IdentifierHash(ctx_.index_key(), *n);
    std::string owner_row;
    Status g = ReadPlain(*txn_, t_.ident, TableId::kIdentIndex, hash, &owner_row);
    if (g.IsNotFound()) return Status::NotFound("identifier is not linked to person " + id.ToHex());
    if (!g.ok()) return g;
    auto owner = PersonIdFromBytes(owner_row);
    if (!owner.ok()) return owner.status();
    if (*owner != id) return Status::NotFound("identifier is not linked to person " + id.ToHex());
    if (Status d = txn_->Delete(t_.ident, hash); !d.ok()) return d;
    if (Status d = txn_->Delete(t_.ident_by_person, std::string(id.view()) + hash); !d.ok()) return d;
    auto& list = (*st)->person.identifiers;
    auto pos = std::lower_bound(list.begin(), list.end(), *n);
    if (pos != list.end() && *pos == *n) list.erase(pos);
    (*st)->person_dirty = true;
    (*st)->mutated = true;
    changed->insert("identifier." + n->type);
    return Status::OK();
  }

  // Applies `patch` to the person's profile and adds "profile.<attribute>"
  // to `changed` for each attribute it changed. A patch that changes
  // nothing (values as they are, absent attributes unset) writes nothing.
  Status PatchProfileOf(const PersonId& id, const ProfilePatch& patch, std::set<std::string>* changed) {
    if (Status v = codec::ValidateAttributeNames(patch.set, "profile attribute"); !v.ok()) return v;
    auto st = Load(id);
    if (!st.ok()) return st.status();
    if (Status l = LoadProfile(*st); !l.ok()) return l;
    if (ApplyPatch(patch, &*(*st)->profile, "profile.", changed)) {
      (*st)->profile_dirty = true;
      (*st)->mutated = true;
    }
    return Status::OK();
  }

  Status Do(const WriteBatch::AppendEventOp& op) {
    const Event& e = op.event;
    if (Status v = ValidateName(e.name, "event name"); !v.ok()) return v;
    // Readers through the C API and Python see names as C strings: a NUL
    // would cut "purchase\0x" to "purchase" (stop 26's audit).
    if (e.name.find('\0') != std::string::npos) return Status::InvalidArgument("event name holds a NUL byte");
    // Text, as attribute names (codec::CheckAttribute; outside audit 37b, F3).
    if (!util::IsValidUtf8(e.name)) return Status::InvalidArgument("event name is not valid UTF-8");
    const std::string category = ctx_.policy->EventCategory(e.name, e.category);
    // Encoded first: checking the property names while encoding walks the
    // caller's map once. The plaintext is wiped after sealing, when the
    // event is dropped, and by the destructor (every other return ends the
    // batch), so plain_ never holds an earlier event here.
    plain_.clear();
    if (Status v = codec::EncodeValidEvent(e.name, category, e.properties, &plain_); !v.ok()) return v;
    // The analytics row's fields, as entries of the event's own map (no copy).
    fields_.clear();
    const bool anonymous = op.imported && op.analytics == ImportedAnalytics::kAnonymous;
    static const std::vector<std::string> kNoFields;
    for (const std::string& f : anonymous ? kNoFields : e.analytics_fields) {
      auto it = e.properties.find(f);
      if (it == e.properties.end()) {
        return Status::InvalidArgument("analytics field '" + f + "' is not a property of the event");
      }
      fields_.push_back(&*it);
    }
    std::sort(fields_.begin(), fields_.end(), [](const auto* a, const auto* b) { return a->first < b->first; });
    fields_.erase(std::unique(fields_.begin(), fields_.end()), fields_.end());
    if (Status c = ctx_.policy->CheckCategory(category); !c.ok()) return c;
    auto st = Load(op.id);
    if (!st.ok()) return st.status();
    // Tracking is processing: the restriction and consent of the person
    // decide. Imported events are history, not new tracking.
    if (!op.imported && !ctx_.policy->tracking_purpose().empty()) {
      // Read once per person and batch (the ingest path); a consent or
      // restriction change in the batch clears it (RecordConsentOp).
      PersonState& person = **st;
      if (!person.tracking) {
        auto restriction = ctx_.ReadRestriction(*txn_, op.id);
        if (!restriction.ok()) return restriction.status();
        auto consent = ctx_.ReadConsent(*txn_, op.id);
        if (!consent.ok()) return consent.status();
        person.tracking = TrackingState{
            ctx_.policy->Refused(*restriction, *consent, ctx_.policy->tracking_purpose()),
            std::move(restriction->categories)};
      }
      const auto& cats = person.tracking->withheld_categories;
      if (person.tracking->refused || std::find(cats.begin(), cats.end(), category) != cats.end()) {
        if (ctx_.options.tracking_policy == RestrictedTrackingPolicy::kDrop) {
          ++dropped_;
          crypto::Wipe(&plain_);  // the batch goes on: no refused event's bytes linger
          return Status::OK();
        }
        ctx_.tracking_rejected.fetch_add(1, std::memory_order_relaxed);
        return Status::Restricted("tracking of person " + op.id.ToHex() + " is restricted or lacks consent");
      }
    }
    auto sealing = WriteKey(op.id, *st, category);
    if (!sealing.ok()) return sealing.status();
    const std::uint64_t seq = seq_++;
    const std::string key = codec::EventKey(op.id, e.ts_ms, seq);
    row_.clear();
    codec::SealPersonRow(ctx_.cipher, *sealing->second, sealing->first, TableId::kEvents, key, plain_, &row_);
    crypto::Wipe(&plain_);
    if (Status p = txn_->Put(t_.events, key, row_); !p.ok()) return p;
    if (retention_rules_->IndexesEvent(e.name)) {
      if (Status x = ctx_.retention->IndexEvent(*txn_, op.id, e.name, e.ts_ms, seq); !x.ok()) return x;
    }
    const std::string akey =
        ctx_.AnalyticsKeyFor((*st)->links.Get(sealing->first, *sealing->second), e.ts_ms, seq);
    plain_.clear();
    row_.clear();
    codec::EncodeAnalyticsEntries((*st)->person.anon_id, anonymous ? kAnonymousImportName : e.name, fields_, &plain_);
    // Staged, not put at its pseudo-random place: a later materialisation
    // writes many rows of a bucket at once (engine/analytics_staging.h).
    ++staged_;
    return ctx_.staging->Stage(*txn_, seq, akey, plain_, &stage_scratch_);
  }

  Status Do(const WriteBatch::PutRecordOp& op) {
    const Record& r = op.record;
    if (Status v = ValidateRecordKey(r.collection, r.key); !v.ok()) return v;
    if (r.value.size() > kMaxRecordValueSize) return Status::InvalidArgument("record value larger than 16 MiB");
    auto st = Load(op.id);
    if (!st.ok()) return st.status();
    const std::string key = codec::RecordKey(op.id, ctx_.CollectionHash(r.collection),
                                             EngineContext::RecordKeyHash(*(*st)->dek, r.collection, r.key));
    std::string plain, row;
    (*st)->mutated = true;
    // An update that names no category keeps the record's own (issue 16:
    // it used to fall back to the collection's, moving the record out of a
    // category whose erasure must reach it).
    std::string kept;
    if (r.category.empty()) {
      auto existing = LiveRecordCategory(**st, key);
      if (!existing.ok()) return existing.status();
      kept = std::move(existing)->value_or(std::string());
    }
    const std::string category = ctx_.policy->CollectionCategory(r.collection, kept.empty() ? r.category : kept);
    if (Status c = ctx_.policy->CheckCategory(category); !c.ok()) return c;
    auto sealing = WriteKey(op.id, *st, category);
    if (!sealing.ok()) return sealing.status();
    RecordMetadata metadata = r.metadata;
    if (Status m = CanonicalRecordMetadata(*ctx_.policy, &metadata); !m.ok()) return m;
    // The record carries its last-write time (sealed with it); the time
    // index holds it in clear only for collections with a retention rule
    // (a rule added later is back-filled from the rows, IndexBackfill).
    const std::int64_t now = ctx_.Now();
    codec::EncodeRecord(r.collection, r.key, r.value, category, metadata, now, &plain);
    codec::SealPersonRow(ctx_.cipher, *sealing->second, sealing->first, TableId::kRecords, key, plain, &row);
    crypto::Wipe(&plain);
    Status indexed = retention_rules_->IndexesCollection(r.collection) ? ctx_.retention->IndexRecord(*txn_, key, now)
                                                                        : ctx_.retention->UnindexRecord(*txn_, key);
    if (!indexed.ok()) return indexed;
    if (Status x = ctx_.record_index->Update(*txn_, key, metadata); !x.ok()) return x;
    (*st)->record_changes.insert("record.put");
    return txn_->Put(t_.records, key, row);
  }

  // The category of the live record stored at `key`, or nullopt if there
  // is none: no row, or its category key was erased, or it is past its own
  // expiry or its collection's retention rule (the record is gone for every
  // reader). A put over a record that is not live writes a new record, in
  // the collection's category (outside audit 30, F3: it inherited the dead
  // record's); a delete of one writes nothing.
  // *expired (if given) tells a stored, readable record past its time from
  // no record at all.
  Result<std::optional<std::string>> LiveRecordCategory(PersonState& st, const std::string& key,
                                                        bool* expired = nullptr) {
    if (expired != nullptr) *expired = false;
    std::string_view row;
    Status g = txn_->Get(t_.records, key, &row);
    if (g.IsNotFound()) return std::optional<std::string>();
    if (!g.ok()) return g;
    std::string plain;
    bool shredded = false;
    if (Status o = st.keyring.Open(TableId::kRecords, key, row, &plain, &shredded); !o.ok()) return o;
    if (shredded) return std::optional<std::string>();
    Record old;
    std::optional<std::int64_t> written;
    Status d = codec::DecodeRecord(plain, &old, &written);
    crypto::Wipe(&plain);
    crypto::Wipe(&old.value);
    if (!d.ok()) return d;
    const std::int64_t now = ctx_.Now();
    auto past_rule = ctx_.retention->RecordExpired(*txn_, *retention_rules_, old.collection, key, written, now);
    if (!past_rule.ok()) return past_rule.status();
    if (RecordMetadataExpired(old, now) || *past_rule) {
      if (expired != nullptr) *expired = true;
      return std::optional<std::string>();
    }
    return std::optional<std::string>(std::move(old.category));
  }

  Status Do(const WriteBatch::DeleteRecordOp& op) {
    if (Status v = ValidateRecordKey(op.collection, op.key); !v.ok()) return v;
    auto st = Load(op.id);
    if (!st.ok()) return st.status();
    const std::string key = codec::RecordKey(op.id, ctx_.CollectionHash(op.collection),
                                             EngineContext::RecordKeyHash(*(*st)->dek, op.collection, op.key));
    // Deleting a record that is not live writes no notice: an absent one
    // changes nothing; one erased with its category stays for the purge
    // (the erasure's notice was written: stop 34's campaign, a
    // "record.delete" notice named a record every read answered NotFound
    // for); one past its own expiry or its collection's rule is deleted
    // now, without a notice (outside audit 35a, F2: the notice told
    // recipients of data the store no longer holds; review of stop 35, R1:
    // left for the sweep, it came back when the rule was lifted first).
    bool expired = false;
    auto live = LiveRecordCategory(**st, key, &expired);
    if (!live.ok()) return live.status();
    if (!live->has_value() && !expired) return Status::OK();
    if (live->has_value()) {
      (*st)->mutated = true;
      (*st)->record_changes.insert("record.delete");
    }
    if (Status x = ctx_.retention->UnindexRecord(*txn_, key); !x.ok()) return x;
    if (Status x = ctx_.record_index->Remove(*txn_, key); !x.ok()) return x;
    return txn_->Delete(t_.records, key);
  }

  // One EventCorrection of a Rectify: the event row re-sealed with the
  // corrected properties, and its analytics row's declared fields. Adds
  // "event.<property>" to `names` for each property it changed; a
  // correction that changes none writes nothing.
  Status CorrectEvent(const PersonId& id, PersonState* st, const EventCorrection& c, std::set<std::string>* names) {
    if (Status v = codec::ValidateAttributeNames(c.properties.set, "event property"); !v.ok()) return v;
    const std::string key = codec::EventKey(id, c.ts_ms, c.seq);
    std::string_view row;
    Status g = txn_->Get(t_.events, key, &row);
    if (g.IsNotFound()) {
      return Status::NotFound("person " + id.ToHex() + " has no event at ts " + std::to_string(c.ts_ms) +
                              " seq " + std::to_string(c.seq));
    }
    if (!g.ok()) return g;
    std::string plain, name, category;
    Attributes props;
    bool shredded = false;
    if (Status o = st->keyring.Open(TableId::kEvents, key, row, &plain, &shredded); !o.ok()) return o;
    if (shredded) {
      return Status::NotFound("the event at ts " + std::to_string(c.ts_ms) + " seq " + std::to_string(c.seq) +
                              " of person " + id.ToHex() + " belongs to an erased category");
    }
    std::uint32_t slot = 0;
    if (Status h = codec::PersonRowSlot(row, &slot); !h.ok()) return h;
    auto slot_key = st->keyring.Key(slot);
    if (!slot_key.ok()) return slot_key.status();
    Status d = codec::DecodeEvent(plain, &name, &category, &props);
    crypto::Wipe(&plain);
    if (!d.ok()) return d;
    // An event past its name's retention rule is gone for every reader, and
    // so for a correction (outside audit 35a, F2: Rectify re-sealed it and
    // named the properties whose value changed, which let a caller test
    // guesses at an expired value).
    if (Retention::EventExpired(*retention_rules_, name, c.ts_ms, ctx_.Now())) {
      // The message of an unknown event: it must not tell that one is stored
      // (review of stop 35, R6).
      return Status::NotFound("person " + id.ToHex() + " has no event at ts " + std::to_string(c.ts_ms) + " seq " +
                              std::to_string(c.seq));
    }
    std::set<std::string> changed_properties;
    if (!ApplyPatch(c.properties, &props, "event.", &changed_properties)) return Status::OK();
    std::string sealed;
    codec::EncodeEvent(name, category, props, &plain);
    codec::SealPersonRow(ctx_.cipher, **slot_key, slot, TableId::kEvents, key, plain, &sealed);
    crypto::Wipe(&plain);
    if (Status p = txn_->Put(t_.events, key, sealed); !p.ok()) return p;
    // Declared analytics fields carry the corrected value too, staged or not.
    const std::string akey = ctx_.AnalyticsKeyFor(st->links.Get(slot, **slot_key), c.ts_ms, c.seq);
    std::string apayload;
    bool is_staged = false;
    Status a = ctx_.ReadAnalyticsRow(*txn_, c.seq, akey, &apayload, &is_staged);
    if (a.ok()) {
      AnalyticsRow arow;
      if (Status ad = codec::DecodeAnalytics(apayload, &arow); !ad.ok()) return ad;
      bool changed = false;
      for (const std::string& n : c.properties.unset) changed |= arow.fields.erase(n) > 0;
      for (const auto& [n, v] : c.properties.set) {
        auto it = arow.fields.find(n);
        if (it != arow.fields.end()) {
          it->second = v;
          changed = true;
        }
      }
      if (changed) {
        std::string enc;
        codec::EncodeAnalytics(arow.anon_id, arow.name, arow.fields, &enc);
        if (is_staged) {
          if (Status p = ctx_.staging->Restage(*txn_, StagedRow{c.seq, akey, std::move(enc)}); !p.ok()) return p;
        } else if (Status p = txn_->Put(t_.analytics, akey, PlainRow(TableId::kAnalytics, akey, enc)); !p.ok()) {
          return p;
        }
      }
    } else if (!a.IsNotFound()) {
      return a;
    }
    st->mutated = true;
    names->merge(changed_properties);
    return Status::OK();
  }

  Status Do(const WriteBatch::RectifyOp& op) {
    const Rectification& r = op.rectification;
    if (Status v = codec::ValidateAttributeNames(r.profile.set, "profile attribute"); !v.ok()) return v;
    // What the notice names must be a change: no attribute both set and
    // unset (which one was meant?), none unset twice or unnamed, and no
    // identifier replaced by itself.
    std::set<std::string_view> unset;
    for (const std::string& name : r.profile.unset) {
      if (name.empty()) return Status::InvalidArgument("an unset profile attribute needs a name");
      if (!unset.insert(name).second) return Status::InvalidArgument("profile attribute '" + name + "' unset twice");
      if (r.profile.set.count(name) != 0) {
        return Status::InvalidArgument("profile attribute '" + name + "' is both set and unset");
      }
    }
    for (const auto& [old_id, new_id] : r.identifiers) {
      auto o = ctx_.registry->Normalize(old_id);
      if (!o.ok()) return o.status().WithContext("the identifier to replace");
      auto n = ctx_.registry->Normalize(new_id);
      if (!n.ok()) return n.status().WithContext("the replacement identifier");
      // A replacement corrects a value; a change of type is an unlink and a link.
      if (o->type != n->type) {
        return Status::InvalidArgument("an identifier of type '" + o->type + "' cannot be replaced by one of type '" +
                                       n->type + "' (only by another of its own type)");
      }
      if (o->value == n->value) {
        return Status::InvalidArgument("an identifier of type '" + o->type + "' is replaced by itself");
      }
    }
    auto st = Load(op.id);
    if (!st.ok()) return st.status();
    // The notice names what changed (outside audit 29b F3: it named what
    // was asked, so an unset of an attribute the person never had told
    // every recipient of a correction that did not happen).
    std::set<std::string> names;
    if (!r.profile.set.empty() || !r.profile.unset.empty()) {
      if (Status p = PatchProfileOf(op.id, r.profile, &names); !p.ok()) return p;
    }
    for (const auto& [old_id, new_id] : r.identifiers) {
      if (Status u = Unlink(op.id, old_id, &names); !u.ok()) return u;
      if (Status l = Link(op.id, new_id, &names); !l.ok()) return l;
    }
    for (const EventCorrection& c : r.events) {
      if (Status e = CorrectEvent(op.id, *st, c, &names); !e.ok()) return e;
    }
    // Nothing changed: nothing to tell recipients, no new version.
    return Notify(NoticeKind::kRectification, op.id, names);
  }

  // Appends a notice of `kind` naming `names` to the change feed; none if
  // `names` is empty.
  Status Notify(NoticeKind kind, const PersonId& id, const std::set<std::string>& names) {
    if (names.empty()) return Status::OK();
    return ctx_.outbox->Append(*txn_, kind, id, ctx_.Now(), std::vector<std::string>(names.begin(), names.end()));
  }

  Status Do(const WriteBatch::RecordConsentOp& op) {
    ConsentRecord rec = op.record;
    if (rec.time_ms == 0) rec.time_ms = ctx_.Now();
    using A = ConsentRecord::Action;
    // Recorded in canonical form (outside audit 36a, F5: an imported grant
    // kept the restriction fields it carried, and `restrict --purpose P
    // --purpose P` recorded P twice; the history then failed the export
    // schema): a grant or withdrawal names only its purpose, a restriction
    // or lift its lists sorted and without repeats.
    if (rec.action == A::kGrant || rec.action == A::kWithdraw) {
      rec.restriction = RestrictionSpec{};
    } else {
      rec.purpose.clear();
      for (auto* list : {&rec.restriction.purposes, &rec.restriction.categories}) {
        std::sort(list->begin(), list->end());
        list->erase(std::unique(list->begin(), list->end()), list->end());
      }
    }
    if (rec.action == A::kGrant || rec.action == A::kWithdraw) {
      if (auto b = ctx_.policy->Basis(rec.purpose); !b.ok()) return b.status();
    } else if (rec.action == A::kRestrict || rec.action == A::kUnrestrict) {
      if (rec.action == A::kRestrict && !rec.restriction.all && rec.restriction.purposes.empty() &&
          rec.restriction.categories.empty()) {
        // As Store::Restrict (helper-43: a batch wrote a restriction of
        // nothing, with a history entry and a notice).
        return Status::InvalidArgument("a restriction names all processing, purposes or categories");
      }
      for (const std::string& p : rec.restriction.purposes) {
        if (auto b = ctx_.policy->Basis(p); !b.ok()) return b.status();
      }
      for (const std::string& c : rec.restriction.categories) {
        if (Status cs = ctx_.policy->CheckCategory(c); !cs.ok()) return cs;
      }
    } else {
      return Status::InvalidArgument("unknown consent action");
    }
    if (rec.source.size() > 1024 || rec.restriction.reason.size() > 4096) {
      return Status::InvalidArgument("consent source or reason too long");
    }
    auto st = Load(op.id);
    if (!st.ok()) return st.status();
    (*st)->tracking.reset();  // the person's tracking decision changes with this
    std::vector<std::string> names;
    if (rec.action == A::kGrant || rec.action == A::kWithdraw) {
      const std::string key = std::string(op.id.view()) + rec.purpose;
      std::string v;
      v.push_back(rec.action == A::kGrant ? 1 : 0);
      util::PutFixed64BE(&v, util::OrderedFromSigned(rec.time_ms));
      if (Status p = txn_->Put(t_.consent, key, PlainRow(TableId::kConsent, key, v)); !p.ok()) return p;
      if (Status x = ctx_.consent_index->Set(*txn_, op.id, rec.purpose, rec.action == A::kGrant); !x.ok()) return x;
      names.push_back("consent." + rec.purpose);
    } else {
      auto state = ctx_.ReadRestriction(*txn_, op.id);
      if (!state.ok()) return state.status();
      RestrictionState r = *state;
      // Applies `change` to `list`; a lift keeps in `change` only what it
      // lifted, so the notice and the history entry name that (Store::
      // Unrestrict's contract; helper-43: the history entry named what was
      // asked).
      auto apply = [&](std::vector<std::string>& list, std::vector<std::string>& change, const char* prefix) {
        std::vector<std::string> lifted;
        for (std::string& x : change) {
          auto pos = std::lower_bound(list.begin(), list.end(), x);
          const bool present = pos != list.end() && *pos == x;
          if (rec.action == A::kRestrict && !present) list.insert(pos, x);
          if (rec.action == A::kUnrestrict && present) list.erase(pos);
          if (rec.action == A::kRestrict || present) names.push_back(std::string(prefix) + x);
          if (rec.action == A::kUnrestrict && present) lifted.push_back(std::move(x));
        }
        if (rec.action == A::kUnrestrict) change = std::move(lifted);
      };
      if (rec.action == A::kRestrict) {
        if (rec.restriction.all) r.all = true;
      } else if (rec.restriction.all) {
        // Lifts everything, and names what was restricted: `all` if it was,
        // and each purpose and category, lifted by apply() below (outside
        // audit 38a, F4: it named restriction.all whatever was restricted,
        // and not the purposes and categories it lifted).
        rec.restriction.all = state->all;
        rec.restriction.purposes = state->purposes;
        rec.restriction.categories = state->categories;
        r.all = false;
      }
      if (rec.restriction.all) names.push_back("restriction.all");
      apply(r.purposes, rec.restriction.purposes, "restriction.purpose.");
      apply(r.categories, rec.restriction.categories, "restriction.category.");
      // A lift of what is not restricted changes nothing: no history entry,
      // no notice to recipients (there is nothing to tell), no new version.
      if (rec.action == A::kUnrestrict && r.all == state->all && r.purposes == state->purposes &&
          r.categories == state->categories) {
        return Status::OK();
      }
      r.updated_ms = rec.time_ms;
      if (!r.all && r.purposes.empty() && r.categories.empty()) {
        if (Status d = txn_->Delete(t_.restrictions, op.id.view()); !d.ok()) return d;
      } else {
        std::string enc;
        codec::EncodeRestriction(r, &enc);
        if (Status p = txn_->Put(t_.restrictions, op.id.view(), PlainRow(TableId::kRestrictions, op.id.view(), enc));
            !p.ok()) {
          return p;
        }
      }
    }
    // The history, with the reason and source, sealed under the person's key.
    auto next = NextHistoryKey(op.id, *st);
    if (!next.ok()) return next.status();
    const std::string& hkey = *next;
    std::string plain, row;
    codec::EncodeConsentRecord(rec, &plain);
    codec::SealPersonRow(ctx_.cipher, *(*st)->dek, keys::kPersonSlot, TableId::kConsentHistory, hkey, plain, &row);
    crypto::Wipe(&plain);
    if (Status p = txn_->Put(t_.consent_history, hkey, row); !p.ok()) return p;
    (*st)->mutated = true;
    // Which way it went, so a recipient knows whether to stop or resume
    // (outside audit 29b F1: a restriction and its lift, a grant and its
    // withdrawal, wrote the same notice).
    names.push_back("action." + std::string(ConsentActionName(rec.action)));
    return ctx_.outbox->Append(*txn_, NoticeKind::kRestriction, op.id, ctx_.Now(), std::move(names));
  }

  // The batch's WriteBatch::SetProgress positions (names checked by
  // Writer::Write), in the order set: the last of a name is kept.
  Status PutProgress(const WriteBatch& batch) {
    for (const auto& [name, position] : batch.progress()) {
      const std::string key = ProgressKey(name);
      std::string v;
      util::PutFixed64BE(&v, position);
      if (Status p = txn_->Put(t_.meta, key, PlainRow(TableId::kDataMeta, key, v)); !p.ok()) {
        return p.WithContext("progress '" + name + "'");
      }
    }
    return Status::OK();
  }

  Status Finish() {
    for (auto& [id, st] : people_) {
      // Art. 19, for a person the batch did not create: recipients learn
      // which profile attributes and identifier types changed (outside
      // audit 29b F2), and that records changed (not which: collection
      // names are never stored in clear).
      if (!st.created) {
        if (Status n = Notify(NoticeKind::kRectification, id, st.corrections); !n.ok()) return n;
        if (Status n = Notify(NoticeKind::kRecordChange, id, st.record_changes); !n.ok()) return n;
      }
      if (st.mutated) {
        auto v = ctx_.PersonVersion(*txn_, id);
        if (!v.ok()) return v.status();
        std::string enc;
        util::PutFixed64BE(&enc, *v + 1);
        if (Status p = txn_->Put(t_.versions, id.view(), PlainRow(TableId::kVersions, id.view(), enc)); !p.ok()) {
          return p;
        }
      }
      // The profile first: its categories may take new key slots, which
      // the person row records.
      if (st.profile_dirty) {
        if (Status p = WriteProfile(id, &st); !p.ok()) return p;
      }
      if (st.person_dirty) {
        std::string plain, row;
        codec::EncodePerson(st.person, &plain);
        codec::SealPersonRow(ctx_.cipher, *st.dek, keys::kPersonSlot, TableId::kPeople, id.view(), plain, &row);
        crypto::Wipe(&plain);
        if (Status p = txn_->Put(t_.people, id.view(), row); !p.ok()) return p;
      }
    }
    if (staged_ != 0) {
      auto n = ctx_.staging->Count(*txn_);
      if (!n.ok()) return n.status();
      if (*n >= kMaxStagedAnalyticsRows) {
        if (auto m = ctx_.staging->Materialise(*txn_, std::nullopt, AnalyticsStaging::Unreadable::kKeep); !m.ok()) {
          return m.status().WithContext("materialising analytics rows");
        }
      }
    }
    if (seq_ != first_seq_) {
      std::string v;
      util::PutFixed64BE(&v, seq_);
      if (Status p = txn_->Put(t_.meta, kEventSeqKey, PlainRow(TableId::kDataMeta, kEventSeqKey, v)); !p.ok()) {
        return p;
      }
    }
    // New category keys are committed in `keys` before this `data`
    // transaction commits (design §2); new people's keys were, in the pool.
    if (!new_keys_.empty()) {
      if (Status k = ctx_.keys->PutDeks(new_keys_); !k.ok()) return k.WithContext("storing new keys");
      util::TestPoint("create.after_keys_commit");
    }
    if (!new_people_.empty()) util::TestPoint("create.before_data_commit");
    return Status::OK();
  }

  // Writes the profile as one row per key slot (attributes grouped by their
  // declared category); the row of the person key is always written.
  Status WriteProfile(const PersonId& id, PersonState* st) {
    std::map<std::uint32_t, Attributes> rows;
    std::map<std::uint32_t, keys::DekHandle> row_keys;
    rows[keys::kPersonSlot];
    row_keys[keys::kPersonSlot] = st->dek;
    for (const auto& [name, value] : *st->profile) {
      auto sealing = WriteKey(id, st, ctx_.policy->AttributeCategory(name));
      if (!sealing.ok()) return sealing.status();
      rows[sealing->first].insert_or_assign(name, value);
      row_keys[sealing->first] = sealing->second;
    }
    std::size_t profile_bytes = 0;
    for (const auto& [slot, attrs] : rows) {
      const std::string key = codec::ProfileKey(id, slot);
      std::string plain, row;
      codec::EncodeProfile(attrs, &plain);
      profile_bytes += plain.size();
      if (profile_bytes > codec::kMaxAttributesSize) {
        crypto::Wipe(&plain);
        return Status::InvalidArgument("profile larger than 16 MiB in all (its attributes encoded)");
      }
      codec::SealPersonRow(ctx_.cipher, *row_keys.at(slot), slot, TableId::kProfiles, key, plain, &row);
      crypto::Wipe(&plain);
      if (Status p = txn_->Put(t_.profiles, key, row); !p.ok()) return p;
    }
    // Rows of categories that no longer hold an attribute (rows of erased
    // category keys were not loaded: purge removes them).
    for (std::uint32_t slot : st->profile_slots) {
      if (rows.count(slot) != 0) continue;
      Status d = txn_->Delete(t_.profiles, codec::ProfileKey(id, slot));
      if (!d.ok() && !d.IsNotFound()) return d;
    }
    return Status::OK();
  }

  EngineContext& ctx_;
  storage::WriteTxn* txn_;
  const DataTables& t_;
  const std::map<PersonId, keys::PooledKey>& new_people_;
  // The rules in force for this batch (taken under write_mu_, like SetRetention).
  std::shared_ptr<const CompiledRetention> retention_rules_;
  std::uint64_t seq_;
  const std::uint64_t first_seq_ = seq_;
  std::uint64_t dropped_ = 0;
  std::uint64_t staged_ = 0;  // analytics rows staged by this batch
  struct PersonIdHash {
    std::size_t operator()(const PersonId& id) const { return std::hash<std::string_view>{}(id.view()); }
  };
  std::unordered_map<PersonId, PersonState, PersonIdHash> people_;
  std::vector<keys::NewKey> new_keys_;  // category keys made by this batch
  std::vector<const Attributes::value_type*> fields_;  // scratch: an event's analytics fields
  std::string plain_, row_;                            // scratch: encodings of the current row
  AnalyticsStaging::Scratch stage_scratch_;            // scratch: the staged row of the current event
};

}  // namespace

Status Writer::CheckPlacement(const WriteBatch& batch) const {
  if (!ctx_.placement) return Status::OK();
  // Built only for a refusal: every write of a shard passes here.
  const auto where = [&] {
    return "this store is shard " + std::to_string(ctx_.placement->index) + " of " +
           std::to_string(ctx_.placement->count) + " of a sharded store";
  };
  for (const auto& op : batch.ops()) {
    const auto* create = std::get_if<WriteBatch::CreatePersonOp>(&op);
    if (ctx_.shard_opened_alone) {
      const auto* rectify = std::get_if<WriteBatch::RectifyOp>(&op);
      const char* refused = create != nullptr                                           ? "create people"
                            : std::holds_alternative<WriteBatch::LinkIdentifierOp>(op) ? "link identifiers"
                            : rectify != nullptr && !rectify->rectification.identifiers.empty()
                                ? "replace identifiers"
                                : nullptr;
      if (refused != nullptr) {
        return Status::FailedPrecondition(where() + ", opened alone: it cannot " + refused +
                                          " (a new person's ID routes to any shard, and identifiers are unique "
                                          "across the shards): write through the ShardedStore");
      }
    } else if (create != nullptr && !ctx_.InPlace(create->id)) {
      return Status::InvalidArgument(where() + ": person " + create->id.ToHex() +
                                     " routes to another shard (create people through the ShardedStore)");
    }
  }
  return Status::OK();
}

Status Writer::Write(const WriteBatch& batch) {
  CallGuard guard(ctx_);
  if (!guard.ok()) return guard.status();
  if (batch.empty()) return Status::OK();
  if (Status p = CheckPlacement(batch); !p.ok()) return p;
  for (const auto& progress : batch.progress()) {
    if (Status n = CheckProgressName(progress.first); !n.ok()) return n;
  }
  PendingWrite w;
  w.batch = &batch;
  for (const auto& op : batch.ops()) {
    if (const auto* create = std::get_if<WriteBatch::CreatePersonOp>(&op)) {
      if (create->id.empty()) return Status::InvalidArgument("CreatePerson with an empty person id");
      w.new_people.emplace(create->id, keys::PooledKey{});  // its key: taken by the leader
    }
  }

  std::unique_lock queue_lock(queue_mu_);
  queue_.push_back(&w);
  util::TestPoint("write.queued");  // under queue_mu_: a hook must not block
  while (!w.done && &w != queue_.front()) w.cv.wait(queue_lock);
  if (w.done) return w.status;  // a leader committed (or failed) it with its group

  // The leader: this batch and those queued behind it, up to the bounds.
  queue_lock.unlock();
  util::TestPoint("write.group_leader");
  queue_lock.lock();
  std::vector<PendingWrite*> group;
  std::size_t ops = 0;
  for (PendingWrite* p : queue_) {
    const std::size_t batch_ops = p->batch->ops().size();
    if (!group.empty() && (group.size() >= kMaxGroupBatches || ops + batch_ops > kMaxGroupOps)) break;
    group.push_back(p);
    ops += batch_ops;
  }
  queue_lock.unlock();

  CommitGroup(group);

  queue_lock.lock();
  for (PendingWrite* p : group) {
    queue_.pop_front();
    p->done = true;
    if (p != &w) p->cv.notify_one();
  }
  if (!queue_.empty()) queue_.front()->cv.notify_one();  // the next leader
  return w.status;
}

void Writer::CommitGroup(const std::vector<PendingWrite*>& group) {
  std::lock_guard write_lock(ctx_.write_mu);
  const bool full = !CommitGroupLocked(group);
  if (full && group.size() > 1) {
    // The map is full and cannot grow: one batch of the group may not fit
    // at all. Each batch alone, so that only batches that do not fit fail
    // (a group must not make one caller's oversized batch fail the others).
    for (PendingWrite* p : group) (void)CommitGroupLocked({p});
  }
}

bool Writer::TakeKeys(const std::vector<PendingWrite*>& group) {
  std::size_t wanted = 0;
  for (PendingWrite* p : group) wanted += p->new_people.size();
  if (wanted == 0) return true;
  auto pooled = ctx_.keys->TakePooledKeys(wanted);
  if (!pooled.ok()) {
    for (PendingWrite* p : group) {
      if (p->new_people.empty()) continue;
      p->status = pooled.status().WithContext("taking keys for new people");
      p->keys_failed = true;
    }
    return false;
  }
  std::size_t next = 0;
  std::vector<keys::KeyClaim> claims;
  for (PendingWrite* p : group) {
    p->keys_failed = false;
    for (auto& [id, key] : p->new_people) {
      key = std::move((*pooled)[next++]);
      claims.push_back(keys::KeyClaim{id, key.index});
    }
  }
  // Recorded before the commit: a reader that sees a new person finds its
  // key (write_mu keeps adoptions and erasures out until SettleKeys).
  ctx_.keys->RecordClaims(claims);
  return true;
}

void Writer::SettleKeys(const std::vector<PendingWrite*>& group, bool committed) {
  std::vector<keys::KeyClaim> claims, failed;
  std::vector<keys::DekHandle> deks;
  std::vector<keys::PooledKey> unused;
  for (PendingWrite* p : group) {
    if (p->keys_failed) continue;
    const bool claimed = committed && p->status.ok();
    for (auto& [id, key] : p->new_people) {
      if (!key.dek) continue;
      if (claimed) {
        claims.push_back(keys::KeyClaim{id, key.index});
        deks.push_back(key.dek);
      } else {
        failed.push_back(keys::KeyClaim{id, key.index});
        unused.push_back(std::move(key));
      }
      key = keys::PooledKey{};
    }
  }
  if (!claims.empty()) ctx_.keys->ClaimsCommitted(claims, deks);
  if (!failed.empty()) ctx_.keys->ClaimsFailed(failed, std::move(unused));
}

bool Writer::CommitGroupLocked(const std::vector<PendingWrite*>& group) {
  TakeKeys(group);
  // Claims `keys` adopted (or erased) since: their rows go with this commit.
  const std::vector<PersonId> adopted = ctx_.keys->AdoptedClaims();
  std::uint64_t next_seq = ctx_.next_event_seq;
  std::uint64_t dropped = 0;
  // One batch alone is applied in the transaction itself; in a group each
  // runs in a child transaction so that one batch's failure leaves the
  // others' changes (Store::Write's all-or-nothing is per batch).
  const bool alone = group.size() == 1;
  Status s = ctx_.data->Update([&](storage::WriteTxn& txn) -> Status {
    next_seq = ctx_.next_event_seq;
    dropped = 0;
    for (const PersonId& id : adopted) {
      if (Status d = txn.Delete(ctx_.tables.key_claims, id.view()); !d.ok() && !d.IsNotFound()) return d;
    }
    bool any = false;
    for (PendingWrite* p : group) {
      if (p->keys_failed) continue;  // its status says why
      auto apply = [&](storage::WriteTxn& t) -> Status {
        BatchApplier applier(ctx_, &t, p->new_people, next_seq);
        Status a = applier.Apply(*p->batch);
        if (a.ok()) {
          next_seq = applier.next_seq();
          dropped += applier.dropped();
        }
        return a;
      };
      p->status = alone ? apply(txn) : txn.Nested(apply);
      if (txn.map_full()) return p->status;  // Update grows the map and runs the group again
      any = any || p->status.ok();
    }
    // A group whose batches all failed writes nothing: each keeps its own
    // error (adopted claims wait for the next commit).
    if (any) return Status::OK();
    for (PendingWrite* p : group) {
      if (!p->status.ok()) return p->status;
    }
    return Status::Internal("a write group applied nothing");
  });
  for (PendingWrite* p : group) {
    if (!s.ok() && p->status.ok()) p->status = s;  // the commit itself failed
  }
  util::TestPoint("create.after_data_commit");
  SettleKeys(group, s.ok());
  if (s.ok()) ctx_.keys->ClaimsDeleted(adopted);
  if (s.ok()) {
    ctx_.next_event_seq = next_seq;
    ctx_.tracking_dropped.fetch_add(dropped, std::memory_order_relaxed);
    ctx_.write_commits.fetch_add(1, std::memory_order_relaxed);
    std::uint64_t committed = 0;
    for (PendingWrite* p : group) committed += p->status.ok() ? 1u : 0u;
    ctx_.write_batches.fetch_add(committed, std::memory_order_relaxed);
  }
  return !s.IsStoreFull();
}

Status Writer::AckFeed(std::uint64_t cursor) {
  CallGuard guard(ctx_);
  if (!guard.ok()) return guard.status();
  std::lock_guard write_lock(ctx_.write_mu);
  return ctx_.data->Update([&](storage::WriteTxn& txn) { return ctx_.outbox->Ack(txn, cursor); });
}

}  // namespace shredkv::engine
