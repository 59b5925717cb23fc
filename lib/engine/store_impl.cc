#include "engine/store_impl.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <functional>
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
#include "engine/iterators.h"
#include "engine/keyring.h"
#include "util/coding.h"
#include "util/fork_generation.h"

namespace shredkv {

Result<std::unique_ptr<Store>> Store::Open(Options options) {
  return engine::StoreImpl::Open(std::move(options));
}

namespace engine {
namespace {

using codec::TableId;

constexpr std::size_t kMaxNameSize = 255;
constexpr std::size_t kMaxRecordKeySize = 1024;
constexpr std::size_t kMaxRecordValueSize = 16u << 20;

bool Exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

Status ValidateName(std::string_view name, std::string_view what) {
  if (name.empty() || name.size() > kMaxNameSize) {
    return Status::InvalidArgument(std::string(what) + " must be 1..255 bytes");
  }
  return Status::OK();
}

Status ValidateRecordKey(std::string_view collection, std::string_view key) {
  if (Status s = ValidateName(collection, "collection name"); !s.ok()) return s;
  if (key.empty() || key.size() > kMaxRecordKeySize) {
    return Status::InvalidArgument("record key must be 1..1024 bytes");
  }
  return Status::OK();
}

const char* OpName(const WriteBatch::Op& op) {
  static constexpr const char* kNames[] = {"CreatePerson", "LinkIdentifier", "UnlinkIdentifier",
                                           "PatchProfile", "AppendEvent",    "Put",
                                           "Delete",       "Rectify",        "RecordConsent"};
  return kNames[op.index()];
}

}  // namespace

// Applies a WriteBatch inside one `data` write transaction. Re-runnable: the
// storage layer runs it again after growing a full map.
class BatchApplier {
 public:
  BatchApplier(StoreImpl* store, storage::WriteTxn* txn,
               const std::map<PersonId, keys::DekHandle>& new_deks)
      : store_(store), txn_(txn), t_(store->tables_), new_deks_(new_deks),
        retention_rules_(store->retention_->rules()), seq_(store->next_event_seq_) {}
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
    return Finish();
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
    std::optional<TrackingState> tracking;  // loaded on the first tracked event
    LinkCache links;  // analytics links of the slots used in this batch
  };

  Result<PersonState*> Load(const PersonId& id) {
    auto it = people_.find(id);
    if (it != people_.end()) return &it->second;
    auto dek = store_->PersonKey(id);
    if (!dek.ok()) return dek.status();
    std::string_view row;
    Status g = txn_->Get(t_.people, id.view(), &row);
    if (g.IsNotFound()) return Status::NotFound("no person " + id.ToHex());
    if (!g.ok()) return g;
    std::string plain;
    if (Status o = codec::OpenPersonRow(**dek, TableId::kPeople, id.view(), row, &plain); !o.ok()) {
      return o.WithContext("person " + id.ToHex());
    }
    PersonState st(id, store_->keys_.get(), *dek);
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
    if (st->person.next_slot == ~std::uint32_t{0}) {
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
    const std::string hash = IdentifierHash(store_->index_key(), normalized);
    bool suppressed = false;
    if (Status s = store_->Suppressed(hash, &suppressed); !s.ok()) return s;
    if (suppressed) {
      store_->suppressed_rejections_.fetch_add(1, std::memory_order_relaxed);
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
      auto erased = store_->keys_->IsErased(*owner);
      if (!erased.ok()) return erased.status();
      if (!*erased) {
        return Status::AlreadyExists("identifier of type '" + normalized.type + "' belongs to another person");
      }
    } else if (!g.IsNotFound()) {
      return g;
    }
    if (Status p = txn_->Put(t_.ident, hash, PlainRow(TableId::kIdentIndex, hash, id.view())); !p.ok()) {
      return p;
    }
    const std::string back = std::string(id.view()) + hash;
    return txn_->Put(t_.ident_by_person, back, PlainRow(TableId::kIdentByPerson, back, {}));
  }

  Status Do(const WriteBatch::CreatePersonOp& op) {
    auto dek_it = new_deks_.find(op.id);
    if (dek_it == new_deks_.end() || people_.count(op.id) != 0) {
      return Status::AlreadyExists("person " + op.id.ToHex() + " is created twice in this batch");
    }
    std::string_view existing;
    Status g = txn_->Get(t_.people, op.id.view(), &existing);
    if (g.ok()) return Status::AlreadyExists("person " + op.id.ToHex() + " already exists");
    if (!g.IsNotFound()) return g;
    if (Status v = codec::ValidateAttributeNames(op.profile, "profile attribute"); !v.ok()) return v;

    PersonState st(op.id, store_->keys_.get(), dek_it->second);
    st.person.anon_id = AnonymousId(crypto::RandomArray<AnonymousId::kSize>());
    st.person.created_ms = op.created_ms != 0 ? op.created_ms : store_->Now();
    if (op.imported) {
      if (Status n = store_->outbox_->Append(*txn_, NoticeKind::kImport, op.id, store_->Now(), {}); !n.ok()) return n;
    }
    std::set<Identifier> ids;
    for (const Identifier& raw : op.identifiers) {
      auto n = store_->registry_->Normalize(raw);
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
    people_.emplace(op.id, std::move(st));
    return Status::OK();
  }

  Status Do(const WriteBatch::LinkIdentifierOp& op) {
    auto n = store_->registry_->Normalize(op.identifier);
    if (!n.ok()) return n.status();
    auto st = Load(op.id);
    if (!st.ok()) return st.status();
    bool own = false;
    if (Status c = Claim(op.id, *n, &own); !c.ok()) return c;
    auto& list = (*st)->person.identifiers;
    auto pos = std::lower_bound(list.begin(), list.end(), *n);
    if (pos == list.end() || *pos != *n) {
      list.insert(pos, *n);
      (*st)->person_dirty = true;
      (*st)->mutated = true;
    }
    return Status::OK();
  }

  Status Do(const WriteBatch::UnlinkIdentifierOp& op) {
    auto n = store_->registry_->Normalize(op.identifier);
    if (!n.ok()) return n.status();
    auto st = Load(op.id);
    if (!st.ok()) return st.status();
    const std::string hash = IdentifierHash(store_->index_key(), *n);
    std::string owner_row;
    Status g = ReadPlain(*txn_, t_.ident, TableId::kIdentIndex, hash, &owner_row);
    if (g.IsNotFound()) return Status::NotFound("identifier is not linked to person " + op.id.ToHex());
    if (!g.ok()) return g;
    auto owner = PersonIdFromBytes(owner_row);
    if (!owner.ok()) return owner.status();
    if (*owner != op.id) return Status::NotFound("identifier is not linked to person " + op.id.ToHex());
    if (Status d = txn_->Delete(t_.ident, hash); !d.ok()) return d;
    if (Status d = txn_->Delete(t_.ident_by_person, std::string(op.id.view()) + hash); !d.ok()) return d;
    auto& list = (*st)->person.identifiers;
    auto pos = std::lower_bound(list.begin(), list.end(), *n);
    if (pos != list.end() && *pos == *n) list.erase(pos);
    (*st)->person_dirty = true;
    (*st)->mutated = true;
    return Status::OK();
  }

  Status Do(const WriteBatch::PatchProfileOp& op) {
    if (Status v = codec::ValidateAttributeNames(op.patch.set, "profile attribute"); !v.ok()) return v;
    auto st = Load(op.id);
    if (!st.ok()) return st.status();
    if (Status l = LoadProfile(*st); !l.ok()) return l;
    Attributes& profile = *(*st)->profile;
    for (const std::string& name : op.patch.unset) profile.erase(name);
    for (const auto& [name, value] : op.patch.set) profile.insert_or_assign(name, value);
    (*st)->profile_dirty = true;
    (*st)->mutated = true;
    return Status::OK();
  }

  Status Do(const WriteBatch::AppendEventOp& op) {
    const Event& e = op.event;
    if (Status v = ValidateName(e.name, "event name"); !v.ok()) return v;
    const std::string category = store_->policy_->EventCategory(e.name, e.category);
    // Encoded first: checking the property names while encoding walks the
    // caller's map once. The plaintext is wiped after sealing, when the
    // event is dropped, and by the destructor (every other return ends the
    // batch), so plain_ never holds an earlier event here.
    plain_.clear();
    if (Status v = codec::EncodeValidEvent(e.name, category, e.properties, &plain_); !v.ok()) return v;
    // The analytics row's fields, as entries of the event's own map (no copy).
    fields_.clear();
    for (const std::string& f : e.analytics_fields) {
      auto it = e.properties.find(f);
      if (it == e.properties.end()) {
        return Status::InvalidArgument("analytics field '" + f + "' is not a property of the event");
      }
      fields_.push_back(&*it);
    }
    std::sort(fields_.begin(), fields_.end(), [](const auto* a, const auto* b) { return a->first < b->first; });
    fields_.erase(std::unique(fields_.begin(), fields_.end()), fields_.end());
    if (Status c = store_->policy_->CheckCategory(category); !c.ok()) return c;
    auto st = Load(op.id);
    if (!st.ok()) return st.status();
    // Tracking is processing: the restriction and consent of the person
    // decide. Imported events are history, not new tracking.
    if (!op.imported && !store_->policy_->tracking_purpose().empty()) {
      // Read once per person and batch (the ingest path); a consent or
      // restriction change in the batch clears it (RecordConsentOp).
      PersonState& person = **st;
      if (!person.tracking) {
        auto restriction = store_->ReadRestriction(*txn_, op.id);
        if (!restriction.ok()) return restriction.status();
        auto consent = store_->ReadConsent(*txn_, op.id);
        if (!consent.ok()) return consent.status();
        person.tracking = TrackingState{
            store_->policy_->Refused(*restriction, *consent, store_->policy_->tracking_purpose()),
            std::move(restriction->categories)};
      }
      const auto& cats = person.tracking->withheld_categories;
      if (person.tracking->refused || std::find(cats.begin(), cats.end(), category) != cats.end()) {
        if (store_->options_.tracking_policy == RestrictedTrackingPolicy::kDrop) {
          ++dropped_;
          crypto::Wipe(&plain_);  // the batch goes on: no refused event's bytes linger
          return Status::OK();
        }
        store_->tracking_rejected_.fetch_add(1, std::memory_order_relaxed);
        return Status::Restricted("tracking of person " + op.id.ToHex() + " is restricted or lacks consent");
      }
    }
    auto sealing = WriteKey(op.id, *st, category);
    if (!sealing.ok()) return sealing.status();
    const std::uint64_t seq = seq_++;
    const std::string key = codec::EventKey(op.id, e.ts_ms, seq);
    row_.clear();
    codec::SealPersonRow(store_->cipher_, *sealing->second, sealing->first, TableId::kEvents, key, plain_, &row_);
    crypto::Wipe(&plain_);
    if (Status p = txn_->Put(t_.events, key, row_); !p.ok()) return p;
    if (retention_rules_->IndexesEvent(e.name)) {
      if (Status x = store_->retention_->IndexEvent(*txn_, op.id, e.name, e.ts_ms, seq); !x.ok()) return x;
    }
    const std::string akey =
        store_->AnalyticsKeyFor((*st)->links.Get(sealing->first, *sealing->second), e.ts_ms, seq);
    plain_.clear();
    row_.clear();
    codec::EncodeAnalyticsEntries((*st)->person.anon_id, e.name, fields_, &plain_);
    codec::SealPlain(TableId::kAnalytics, akey, plain_, &row_);
    return txn_->Put(t_.analytics, akey, row_);
  }

  Status Do(const WriteBatch::PutRecordOp& op) {
    const Record& r = op.record;
    if (Status v = ValidateRecordKey(r.collection, r.key); !v.ok()) return v;
    if (r.value.size() > kMaxRecordValueSize) return Status::InvalidArgument("record value larger than 16 MiB");
    auto st = Load(op.id);
    if (!st.ok()) return st.status();
    const std::string key = codec::RecordKey(op.id, store_->CollectionHash(r.collection),
                                             StoreImpl::RecordKeyHash(*(*st)->dek, r.collection, r.key));
    std::string plain, row;
    (*st)->mutated = true;
    const std::string category = store_->policy_->CollectionCategory(r.collection, r.category);
    if (Status c = store_->policy_->CheckCategory(category); !c.ok()) return c;
    auto sealing = WriteKey(op.id, *st, category);
    if (!sealing.ok()) return sealing.status();
    codec::EncodeRecord(r.collection, r.key, r.value, category, &plain);
    codec::SealPersonRow(store_->cipher_, *sealing->second, sealing->first, TableId::kRecords, key, plain, &row);
    crypto::Wipe(&plain);
    // The record's last-write time, for its collection's retention rule.
    if (Status x = store_->retention_->IndexRecord(*txn_, key, store_->Now()); !x.ok()) return x;
    return txn_->Put(t_.records, key, row);
  }

  Status Do(const WriteBatch::DeleteRecordOp& op) {
    if (Status v = ValidateRecordKey(op.collection, op.key); !v.ok()) return v;
    auto st = Load(op.id);
    if (!st.ok()) return st.status();
    const std::string key = codec::RecordKey(op.id, store_->CollectionHash(op.collection),
                                             StoreImpl::RecordKeyHash(*(*st)->dek, op.collection, op.key));
    (*st)->mutated = true;
    if (Status x = store_->retention_->UnindexRecord(*txn_, key); !x.ok()) return x;
    return txn_->Delete(t_.records, key);
  }

  Status Do(const WriteBatch::RectifyOp& op) {
    const Rectification& r = op.rectification;
    if (Status v = codec::ValidateAttributeNames(r.profile.set, "profile attribute"); !v.ok()) return v;
    auto st = Load(op.id);
    if (!st.ok()) return st.status();
    std::vector<std::string> names;
    if (!r.profile.set.empty() || !r.profile.unset.empty()) {
      if (Status p = Do(WriteBatch::PatchProfileOp{op.id, r.profile}); !p.ok()) return p;
      for (const auto& [name, value] : r.profile.set) names.push_back("profile." + name);
      for (const std::string& name : r.profile.unset) names.push_back("profile." + name);
    }
    for (const auto& [old_id, new_id] : r.identifiers) {
      if (old_id.type != new_id.type) {
        return Status::InvalidArgument("an identifier is replaced by one of the same type");
      }
      if (Status u = Do(WriteBatch::UnlinkIdentifierOp{op.id, old_id}); !u.ok()) return u;
      if (Status l = Do(WriteBatch::LinkIdentifierOp{op.id, new_id}); !l.ok()) return l;
      names.push_back("identifier." + new_id.type);
    }
    for (const EventCorrection& c : r.events) {
      if (Status v = codec::ValidateAttributeNames(c.properties.set, "event property"); !v.ok()) return v;
      const std::string key = codec::EventKey(op.id, c.ts_ms, c.seq);
      std::string_view row;
      Status g = txn_->Get(t_.events, key, &row);
      if (g.IsNotFound()) {
        return Status::NotFound("person " + op.id.ToHex() + " has no event at ts " + std::to_string(c.ts_ms) +
                                " seq " + std::to_string(c.seq));
      }
      if (!g.ok()) return g;
      std::string plain, name, category;
      Attributes props;
      bool shredded = false;
      if (Status o = (*st)->keyring.Open(TableId::kEvents, key, row, &plain, &shredded); !o.ok()) return o;
      if (shredded) {
        return Status::NotFound("the event at ts " + std::to_string(c.ts_ms) + " seq " + std::to_string(c.seq) +
                                " of person " + op.id.ToHex() + " belongs to an erased category");
      }
      std::uint32_t slot = 0;
      if (Status h = codec::PersonRowSlot(row, &slot); !h.ok()) return h;
      auto slot_key = (*st)->keyring.Key(slot);
      if (!slot_key.ok()) return slot_key.status();
      Status d = codec::DecodeEvent(plain, &name, &category, &props);
      crypto::Wipe(&plain);
      if (!d.ok()) return d;
      for (const std::string& n : c.properties.unset) props.erase(n);
      for (const auto& [n, v] : c.properties.set) props.insert_or_assign(n, v);
      std::string sealed;
      codec::EncodeEvent(name, category, props, &plain);
      codec::SealPersonRow(store_->cipher_, **slot_key, slot, TableId::kEvents, key, plain, &sealed);
      crypto::Wipe(&plain);
      if (Status p = txn_->Put(t_.events, key, sealed); !p.ok()) return p;
      // Declared analytics fields carry the corrected value too.
      const std::string akey = store_->AnalyticsKeyFor((*st)->links.Get(slot, **slot_key), c.ts_ms, c.seq);
      std::string apayload;
      Status a = ReadPlain(*txn_, t_.analytics, TableId::kAnalytics, akey, &apayload);
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
          if (Status p = txn_->Put(t_.analytics, akey, PlainRow(TableId::kAnalytics, akey, enc)); !p.ok()) return p;
        }
      } else if (!a.IsNotFound()) {
        return a;
      }
      for (const auto& [n, v] : c.properties.set) names.push_back("event." + n);
      for (const std::string& n : c.properties.unset) names.push_back("event." + n);
    }
    (*st)->mutated = true;
    return store_->outbox_->Append(*txn_, NoticeKind::kRectification, op.id, store_->Now(), std::move(names));
  }

  Status Do(const WriteBatch::RecordConsentOp& op) {
    ConsentRecord rec = op.record;
    if (rec.time_ms == 0) rec.time_ms = store_->Now();
    using A = ConsentRecord::Action;
    if (rec.action == A::kGrant || rec.action == A::kWithdraw) {
      if (auto b = store_->policy_->Basis(rec.purpose); !b.ok()) return b.status();
    } else if (rec.action == A::kRestrict || rec.action == A::kUnrestrict) {
      for (const std::string& p : rec.restriction.purposes) {
        if (auto b = store_->policy_->Basis(p); !b.ok()) return b.status();
      }
      for (const std::string& c : rec.restriction.categories) {
        if (Status cs = store_->policy_->CheckCategory(c); !cs.ok()) return cs;
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
      names.push_back("consent." + rec.purpose);
    } else {
      auto state = store_->ReadRestriction(*txn_, op.id);
      if (!state.ok()) return state.status();
      RestrictionState r = *state;
      auto apply = [&](std::vector<std::string>& list, const std::vector<std::string>& change, const char* prefix) {
        for (const std::string& x : change) {
          auto pos = std::lower_bound(list.begin(), list.end(), x);
          const bool present = pos != list.end() && *pos == x;
          if (rec.action == A::kRestrict && !present) list.insert(pos, x);
          if (rec.action == A::kUnrestrict && present) list.erase(pos);
          names.push_back(std::string(prefix) + x);
        }
      };
      if (rec.action == A::kRestrict) {
        if (rec.restriction.all) r.all = true;
      } else if (rec.restriction.all) {
        r = RestrictionState{};  // lifts everything
      }
      if (rec.restriction.all) names.push_back("restriction.all");
      apply(r.purposes, rec.restriction.purposes, "restriction.purpose.");
      apply(r.categories, rec.restriction.categories, "restriction.category.");
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
    const std::uint64_t seq = seq_++;
    std::string hkey(op.id.view());
    util::PutFixed64BE(&hkey, seq);
    std::string plain, row;
    codec::EncodeConsentRecord(rec, &plain);
    codec::SealPersonRow(store_->cipher_, *(*st)->dek, keys::kPersonSlot, TableId::kConsentHistory, hkey, plain, &row);
    crypto::Wipe(&plain);
    if (Status p = txn_->Put(t_.consent_history, hkey, row); !p.ok()) return p;
    (*st)->mutated = true;
    return store_->outbox_->Append(*txn_, NoticeKind::kRestriction, op.id, store_->Now(), std::move(names));
  }

  Status Finish() {
    for (auto& [id, st] : people_) {
      if (st.mutated) {
        auto v = store_->PersonVersion(*txn_, id);
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
        codec::SealPersonRow(store_->cipher_, *st.dek, keys::kPersonSlot, TableId::kPeople, id.view(), plain, &row);
        crypto::Wipe(&plain);
        if (Status p = txn_->Put(t_.people, id.view(), row); !p.ok()) return p;
      }
    }
    if (seq_ != store_->next_event_seq_) {
      std::string v;
      util::PutFixed64BE(&v, seq_);
      if (Status p = txn_->Put(t_.meta, kEventSeqKey, PlainRow(TableId::kDataMeta, kEventSeqKey, v)); !p.ok()) {
        return p;
      }
    }
    // Keys of new people and new category keys are committed in `keys`
    // before this `data` transaction commits (design §2).
    if (!new_deks_.empty() || !new_keys_.empty()) {
      std::vector<keys::NewKey> all;
      all.reserve(new_deks_.size() + new_keys_.size());
      for (const auto& [id, dek] : new_deks_) all.push_back(keys::NewKey{id, keys::kPersonSlot, dek});
      all.insert(all.end(), new_keys_.begin(), new_keys_.end());
      if (Status k = store_->keys_->PutDeks(all); !k.ok()) return k.WithContext("storing new keys");
    }
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
      auto sealing = WriteKey(id, st, store_->policy_->AttributeCategory(name));
      if (!sealing.ok()) return sealing.status();
      rows[sealing->first].insert_or_assign(name, value);
      row_keys[sealing->first] = sealing->second;
    }
    for (const auto& [slot, attrs] : rows) {
      const std::string key = codec::ProfileKey(id, slot);
      std::string plain, row;
      codec::EncodeProfile(attrs, &plain);
      codec::SealPersonRow(store_->cipher_, *row_keys.at(slot), slot, TableId::kProfiles, key, plain, &row);
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

  StoreImpl* store_;
  storage::WriteTxn* txn_;
  const DataTables& t_;
  const std::map<PersonId, keys::DekHandle>& new_deks_;
  // The rules in force for this batch (taken under write_mu_, like SetRetention).
  std::shared_ptr<const CompiledRetention> retention_rules_;
  std::uint64_t seq_;
  std::uint64_t dropped_ = 0;
  struct PersonIdHash {
    std::size_t operator()(const PersonId& id) const { return std::hash<std::string_view>{}(id.view()); }
  };
  std::unordered_map<PersonId, PersonState, PersonIdHash> people_;
  std::vector<keys::NewKey> new_keys_;  // category keys made by this batch
  std::vector<const Attributes::value_type*> fields_;  // scratch: an event's analytics fields
  std::string plain_, row_;                            // scratch: encodings of the current row
};

// ---- open / close --------------------------------------------------------------

Result<std::unique_ptr<Store>> StoreImpl::Open(Options options) {
  if (options.directory.empty()) return Status::InvalidArgument("Options::directory is empty");
  if (!options.key_provider) return Status::InvalidArgument("Options::key_provider is required");
  if (options.initial_map_size < (1u << 20)) options.initial_map_size = 1u << 20;
  if (options.max_map_size < options.initial_map_size) {
    return Status::InvalidArgument("Options::max_map_size is below initial_map_size");
  }
  if (options.iterator_batch_size == 0) options.iterator_batch_size = 1;
  if (options.analytics_time_granularity_ms < kMinAnalyticsGranularityMs ||
      options.analytics_time_granularity_ms > 31ll * 24 * 3600 * 1000) {
    return Status::InvalidArgument("Options::analytics_time_granularity_ms must be between 1 s and 31 days");
  }
  if (Status s = crypto::Init(); !s.ok()) return s;
  util::InstallForkHandler();

  std::unique_ptr<StoreImpl> store(new StoreImpl());
  store->fork_generation_ = util::ForkGeneration();
  auto registry = IdentifierRegistry::Create(options.identifier_types);
  if (!registry.ok()) return registry.status();
  store->registry_.emplace(std::move(registry).value());
  auto policy = Policy::Create(options);
  if (!policy.ok()) return policy.status();
  store->policy_.emplace(std::move(policy).value());

  switch (options.cipher) {
    case Cipher::kXChaCha20Poly1305: store->cipher_ = crypto::CipherId::kXChaCha20Poly1305; break;
    case Cipher::kAes256Gcm:
      if (!crypto::Aes256GcmAvailable()) {
        return Status::InvalidArgument("AES-256-GCM requested but this CPU lacks AES-NI");
      }
      store->cipher_ = crypto::CipherId::kAes256Gcm;
      break;
    case Cipher::kAuto:
      store->cipher_ = crypto::Aes256GcmAvailable() ? crypto::CipherId::kAes256Gcm
                                                    : crypto::CipherId::kXChaCha20Poly1305;
      break;
  }

  const std::string& dir = options.directory;
  if (!Exists(dir)) {
    if (!options.create_if_missing) return Status::NotFound("no store at '" + dir + "'");
    if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
      return Status::IOError("cannot create '" + dir + "': " + std::strerror(errno));
    }
  }
  auto claim = storage::DirectoryClaim::Acquire(dir);
  if (!claim.ok()) return claim.status();
  store->claim_ = std::move(claim).value();

  const bool keys_exist = Exists(dir + "/keys/data.mdb");
  const bool data_exists = Exists(dir + "/data/data.mdb");
  if (data_exists && !keys_exist) {
    return Status::Corruption("store '" + dir +
                              "' has a data environment but no keys environment: without its keys "
                              "the data cannot be read");
  }
  if (!keys_exist && !options.create_if_missing) return Status::NotFound("no store at '" + dir + "'");
  ::unlink((dir + "/data/compact.mdb").c_str());  // a compaction cut short before its swap
  ::unlink((dir + "/data/compact.mdb-lock").c_str());

  keys::KeyStoreOptions ko;
  ko.path = dir + "/keys";
  ko.create = !keys_exist;
  // Fully synced, so the keys-before-data order (design §2) holds across
  // power loss — except when the data itself is kNoSync, whose commits power
  // loss may drop anyway; then key creations need not be durable at once, but
  // `keys` is still never MDB_NOSYNC: an unsynced commit whose meta page
  // reaches the disk before its pages can make a leaf that held an erased
  // person's key (a page the erase commit freed, reused and not yet
  // rewritten) part of the live tree again — an erasure undone (found by
  // PowerLossTest). MDB_NOMETASYNC writes a meta page only after the pages it
  // names are on disk. Erase commits are always synced
  // (KeyStore::CommitErasures): an erasure that returned is never undone.
  ko.durability = options.durability == Durability::kNoSync ? Durability::kNoMetaSync : Durability::kFullSync;
  ko.cipher = store->cipher_;
  ko.dek_cache_capacity = options.dek_cache_capacity;
  auto ks = keys::KeyStore::Open(ko);
  if (!ks.ok()) return ks.status();
  store->keys_ = std::move(ks).value();
  if (store->keys_->initialized() && data_exists && options.error_if_exists) {
    return Status::AlreadyExists("a store already exists at '" + dir + "'");
  }
  if (!store->keys_->initialized() && data_exists) {
    // Only a creation cut short leaves a keys environment without its root
    // check, and creation writes the data environment after the keys. With
    // data present the keys environment lost its contents (damage, a torn
    // write): report it, and never create new keys over it.
    return Status::Corruption("store '" + dir +
                              "' has a data environment but its keys environment holds no store keys");
  }
  if (!store->keys_->initialized() && !options.create_if_missing) {
    return Status::NotFound("no store at '" + dir + "' (keys environment is empty)");
  }

  auto root = options.key_provider->GetRootKey(KeyRequest{store->keys_->salt()});
  if (!root.ok()) return root.status().WithContext("key provider " + options.key_provider->Describe());
  if (Status s = store->keys_->Unlock(*root); !s.ok()) return s;
  // A rotation destroyed epoch keys but its rebuild of the keys file was cut
  // short: finish it before anything else reads the file.
  if (store->keys_->rebuild_pending()) {
    if (Status s = store->keys_->Rebuild(); !s.ok()) return s.WithContext("finishing an interrupted key rotation");
  }

  if (!data_exists) {
    // A keys environment without data is a store whose creation was cut
    // short; it holds no one's key yet. With keys of people, data was lost.
    auto deks = store->keys_->CountDeks();
    if (!deks.ok()) return deks.status();
    if (*deks != 0) {
      return Status::Corruption("store '" + dir + "' has keys of " + std::to_string(*deks) +
                                " people but no data environment");
    }
  }
  store->options_ = std::move(options);
  if (Status s = store->OpenDataEnvironment(!data_exists); !s.ok()) return s;
  if (Status s = store->RecoverErasures(); !s.ok()) return s.WithContext("recovering erasures");
  if (Status s = store->MigrateData(); !s.ok()) return s.WithContext("migrating the data environment to format 3");
  if (Status s = store->InitRetention(); !s.ok()) return s.WithContext("retention rules");
  if (store->options_.background_maintenance_ms > 0) {
    store->maintenance_thread_ = std::thread([raw = store.get()] { raw->MaintenanceLoop(); });
  }
  return std::unique_ptr<Store>(std::move(store));
}

Status StoreImpl::OpenDataEnvironment(bool create) {
  storage::EnvOptions eo;
  eo.path = options_.directory + "/data";
  eo.tables = {"meta",    "people",    "ident",  "ident_by_person", "profiles",         "events",
               "records", "analytics", "erased", "audit",           "audit_by_request", "versions",
               "outbox",  "restrictions", "consent", "consent_history", "expiry", "expiry_refs"};
  eo.create = create;
  eo.initial_map_size = options_.initial_map_size;
  eo.max_map_size = options_.max_map_size;
  eo.durability = options_.durability;
  auto env = storage::Environment::Open(eo);
  if (!env.ok()) return env.status();
  data_ = std::move(env).value();
  tables_ = DataTables{data_->table("meta"),     data_->table("people"),
                       data_->table("ident"),    data_->table("ident_by_person"),
                       data_->table("profiles"), data_->table("events"),
                       data_->table("records"),  data_->table("analytics"),
                       data_->table("erased"),   data_->table("audit"),
                       data_->table("audit_by_request"), data_->table("versions"),
                       data_->table("outbox"),   data_->table("restrictions"),
                       data_->table("consent"),  data_->table("consent_history"),
                       data_->table("expiry"),   data_->table("expiry_refs")};
  // A compaction reopens the environment: the rules in force carry over.
  const std::shared_ptr<const CompiledRetention> rules_in_force = retention_ ? retention_->rules() : nullptr;
  retention_.emplace(RetentionTables{tables_.expiry, tables_.expiry_refs, tables_.events, tables_.records,
                                     tables_.analytics, tables_.meta},
                     &keys_->index_key());
  if (rules_in_force) retention_->SetRules(rules_in_force->rules);
  audit_.emplace(tables_.audit, tables_.audit_by_request, &keys_->index_key());
  outbox_.emplace(tables_.outbox);

  bool fresh = false;
  Status s = data_->View([&](storage::ReadTxn& txn) -> Status {
    std::string format, store_id, seq;
    Status f = ReadPlain(txn, tables_.meta, TableId::kDataMeta, kDataFormatKey, &format);
    if (f.IsNotFound()) {
      fresh = true;
      return Status::OK();
    }
    if (!f.ok()) return f.WithContext("data environment format");
    if (format.size() != 4) return Status::Corruption("data environment format version has the wrong length");
    data_format_ = util::DecodeFixed32BE(format.data());
    if (data_format_ > kDataFormatVersion) {
      return Status::UnsupportedVersion("data environment has format version " + std::to_string(data_format_) +
                                        ", newer than this shredkv reads (" + std::to_string(kDataFormatVersion) +
                                        "): open it with a newer shredkv");
    }
    if (data_format_ < kOldestDataFormatVersion) {
      return Status::UnsupportedVersion("data environment has format version " + std::to_string(data_format_) +
                                        ", older than this shredkv migrates (" +
                                        std::to_string(kOldestDataFormatVersion) + ")");
    }
    std::string granularity;
    Status gr = ReadPlain(txn, tables_.meta, TableId::kDataMeta, kAnalyticsGranularityKey, &granularity);
    if (gr.ok()) {
      if (granularity.size() != 8) return Status::Corruption("analytics granularity has the wrong length");
      analytics_granularity_ms_ = static_cast<std::int64_t>(util::DecodeFixed64BE(granularity.data()));
      if (analytics_granularity_ms_ < 1) return Status::Corruption("analytics granularity is not positive");
    } else if (gr.IsNotFound()) {
      if (data_format_ >= 3) return Status::Corruption("data environment lacks its analytics granularity");
      analytics_granularity_ms_ = options_.analytics_time_granularity_ms;  // stored by the migration
    } else {
      return gr;
    }
    if (Status r = ReadPlain(txn, tables_.meta, TableId::kDataMeta, kDataStoreIdKey, &store_id); !r.ok()) {
      return r.IsNotFound() ? Status::Corruption("data environment lacks its store id") : r;
    }
    if (store_id != keys_->store_id()) {
      return Status::Corruption("the keys and data environments belong to different stores");
    }
    Status q = ReadPlain(txn, tables_.meta, TableId::kDataMeta, kEventSeqKey, &seq);
    if (q.ok()) {
      if (seq.size() != 8) return Status::Corruption("event sequence has the wrong length");
      next_event_seq_ = util::DecodeFixed64BE(seq.data());
    } else if (!q.IsNotFound()) {
      return q;
    }
    return Status::OK();
  });
  if (!s.ok()) return s;
  if (fresh) {
    s = data_->Update([&](storage::WriteTxn& txn) -> Status {
      std::string format;
      util::PutFixed32BE(&format, kDataFormatVersion);
      if (Status p = txn.Put(tables_.meta, kDataFormatKey, PlainRow(TableId::kDataMeta, kDataFormatKey, format));
          !p.ok()) {
        return p;
      }
      std::string granularity;
      util::PutFixed64BE(&granularity, static_cast<std::uint64_t>(options_.analytics_time_granularity_ms));
      if (Status p = txn.Put(tables_.meta, kAnalyticsGranularityKey,
                             PlainRow(TableId::kDataMeta, kAnalyticsGranularityKey, granularity));
          !p.ok()) {
        return p;
      }
      return txn.Put(tables_.meta, kDataStoreIdKey,
                     PlainRow(TableId::kDataMeta, kDataStoreIdKey, keys_->store_id()));
    });
    data_format_ = kDataFormatVersion;
    analytics_granularity_ms_ = options_.analytics_time_granularity_ms;
  }
  return s;
}

StoreImpl::~StoreImpl() { (void)Close(); }

Status StoreImpl::Close() {
  if (closed_.exchange(true)) return Status::OK();  // one closer
  {
    std::lock_guard lock(maintenance_mu_);
    maintenance_stop_ = true;
  }
  maintenance_cv_.notify_all();
  if (maintenance_thread_.joinable() && maintenance_thread_.get_id() != std::this_thread::get_id()) {
    maintenance_thread_.join();
  }
  std::unique_lock lock(close_mu_);  // waits for calls in flight
  audit_.reset();
  outbox_.reset();
  data_.reset();
  keys_.reset();
  claim_.reset();
  return Status::OK();
}

Status StoreImpl::CheckUsable() const {
  if (closed_.load()) return Status::FailedPrecondition("store is closed");
  {
    std::lock_guard lock(fatal_mu_);
    if (!fatal_.ok()) return Status::IOError("store must be reopened: " + fatal_.message());
  }
  if (util::ForkGeneration() != fork_generation_) {
    return Status::FailedPrecondition("store was opened by the parent process: not usable after fork()");
  }
  return Status::OK();
}

std::int64_t StoreImpl::Now() const {
  if (options_.clock) return options_.clock();
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Result<keys::DekHandle> StoreImpl::PersonKey(const PersonId& id) {
  auto dek = keys_->GetDek(id);
  if (dek.ok() || !dek.status().IsNotFound()) return dek;
  auto erased = keys_->IsErased(id);
  if (!erased.ok()) return erased.status();
  if (*erased) return Status::Erased("person " + id.ToHex() + " was erased");
  return Status::NotFound("no person " + id.ToHex());
}

std::string StoreImpl::AnalyticsKeyFor(std::string_view link, std::int64_t ts_ms, std::uint64_t seq) const {
  return LinkedAnalyticsKey(link, analytics_granularity_ms_, ts_ms, seq);
}

std::string StoreImpl::CollectionHash(std::string_view collection) const {
  return crypto::KeyedHash(keys_->index_key(), codec::kNameHashSize, {"collection", collection});
}

std::string StoreImpl::RecordKeyHash(const crypto::SecretKey& dek, std::string_view collection,
                                     std::string_view key) {
  return crypto::KeyedHash(dek, codec::kNameHashSize, {"record-key", collection, key});
}

// ---- writes --------------------------------------------------------------------

Status StoreImpl::Write(const WriteBatch& batch) {
  std::shared_lock close_lock(close_mu_);
  if (Status s = CheckUsable(); !s.ok()) return s;
  if (batch.empty()) return Status::OK();
  std::map<PersonId, keys::DekHandle> new_deks;
  for (const auto& op : batch.ops()) {
    if (const auto* create = std::get_if<WriteBatch::CreatePersonOp>(&op)) {
      if (create->id.empty()) return Status::InvalidArgument("CreatePerson with an empty person id");
      auto dek = keys::KeyStore::NewDek();
      if (!dek.ok()) return dek.status();
      new_deks.emplace(create->id, std::move(dek).value());
    }
  }
  std::lock_guard write_lock(write_mu_);
  std::uint64_t next_seq = next_event_seq_;
  std::uint64_t dropped = 0;
  Status s = data_->Update([&](storage::WriteTxn& txn) {
    BatchApplier applier(this, &txn, new_deks);
    Status a = applier.Apply(batch);
    next_seq = applier.next_seq();
    dropped = applier.dropped();
    return a;
  });
  if (s.ok()) {
    next_event_seq_ = next_seq;
    tracking_dropped_.fetch_add(dropped, std::memory_order_relaxed);
  }
  return s;
}

Result<PersonId> StoreImpl::CreatePerson(const std::vector<Identifier>& identifiers,
                                         const Attributes& profile) {
  if (identifiers.empty()) return Status::InvalidArgument("a person needs at least one identifier");
  WriteBatch batch;
  PersonId id = batch.CreatePerson(identifiers, profile);
  if (Status s = Write(batch); !s.ok()) return s;
  return id;
}

Status StoreImpl::LinkIdentifier(const PersonId& id, const Identifier& identifier) {
  WriteBatch batch;
  batch.LinkIdentifier(id, identifier);
  return Write(batch);
}

Status StoreImpl::UnlinkIdentifier(const PersonId& id, const Identifier& identifier) {
  WriteBatch batch;
  batch.UnlinkIdentifier(id, identifier);
  return Write(batch);
}

Status StoreImpl::PatchProfile(const PersonId& id, const ProfilePatch& patch) {
  WriteBatch batch;
  batch.PatchProfile(id, patch);
  return Write(batch);
}

Status StoreImpl::AppendEvent(const PersonId& id, const Event& event) {
  WriteBatch batch;
  batch.AppendEvent(id, event);
  return Write(batch);
}

Status StoreImpl::Put(const PersonId& id, std::string_view collection, std::string_view key,
                      std::string_view value) {
  WriteBatch batch;
  batch.Put(id, std::string(collection), std::string(key), std::string(value));
  return Write(batch);
}

Status StoreImpl::Delete(const PersonId& id, std::string_view collection, std::string_view key) {
  WriteBatch batch;
  batch.Delete(id, std::string(collection), std::string(key));
  return Write(batch);
}

// ---- reads ---------------------------------------------------------------------

namespace {

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

}  // namespace

Result<PersonId> StoreImpl::Resolve(const Identifier& identifier) {
  std::shared_lock close_lock(close_mu_);
  if (Status s = CheckUsable(); !s.ok()) return s;
  auto n = registry_->Normalize(identifier);
  if (!n.ok()) return n.status();
  const std::string hash = IdentifierHash(keys_->index_key(), *n);
  std::string owner;
  Status s = data_->View([&](storage::ReadTxn& txn) {
    return ReadPlain(txn, tables_.ident, TableId::kIdentIndex, hash, &owner);
  });
  if (!s.ok() && !s.IsNotFound()) return s.WithContext("identifier index");
  Status result = Status::NotFound("no person has this " + n->type);
  if (s.ok()) {
    auto id = PersonIdFromBytes(owner);
    if (!id.ok()) return id.status();
    PersonLocks::SharedGuard person_lock(person_locks_, *id);
    auto dek = PersonKey(*id);
    if (dek.ok()) return id;
    result = dek.status();
  }
  if (result.IsNotFound() || result.IsErased()) {
    bool suppressed = false;
    if (Status q = Suppressed(hash, &suppressed); !q.ok()) return q;
    if (suppressed) return Status::Suppressed("this " + n->type + " is suppressed after an erasure");
  }
  return result;
}

Result<PersonInfo> StoreImpl::GetPerson(const PersonId& id) {
  std::shared_lock close_lock(close_mu_);
  if (Status s = CheckUsable(); !s.ok()) return s;
  PersonLocks::SharedGuard person_lock(person_locks_, id);
  auto dek = PersonKey(id);
  if (!dek.ok()) return dek.status();
  Keyring keyring(keys_.get(), id, *dek);
  std::string plain;
  Status s = ReadSealed(*data_, tables_.people, TableId::kPeople, keyring, id.view(), &plain);
  if (s.IsNotFound()) return Status::NotFound("no person " + id.ToHex());
  if (!s.ok()) return s.WithContext("person " + id.ToHex());
  codec::PersonPayload p;
  Status d = codec::DecodePerson(plain, &p);
  crypto::Wipe(&plain);
  if (!d.ok()) return d.WithContext("person " + id.ToHex());
  auto epoch = keys_->DekEpoch(id);
  if (!epoch.ok()) return epoch.status();
  return PersonInfo{id, p.anon_id, p.created_ms, std::move(p.identifiers), *epoch};
}

Result<Attributes> StoreImpl::GetProfile(const PersonId& id) {
  std::shared_lock close_lock(close_mu_);
  if (Status s = CheckUsable(); !s.ok()) return s;
  PersonLocks::SharedGuard person_lock(person_locks_, id);
  auto dek = PersonKey(id);
  if (!dek.ok()) return dek.status();
  Keyring keyring(keys_.get(), id, *dek);
  Attributes attrs;
  bool found = false;
  Status s = data_->View([&](storage::ReadTxn& txn) {
    return ReadProfile(txn, tables_.profiles, keyring, &attrs, &found);
  });
  if (!s.ok()) return s;
  if (!found) return Status::NotFound("no profile for person " + id.ToHex());
  return attrs;
}

Result<std::string> StoreImpl::Get(const PersonId& id, std::string_view collection,
                                   std::string_view key) {
  auto r = GetRecord(id, collection, key);
  if (!r.ok()) return r.status();
  return std::move(r->value);
}

Result<Record> StoreImpl::GetRecord(const PersonId& id, std::string_view collection, std::string_view key) {
  std::shared_lock close_lock(close_mu_);
  if (Status s = CheckUsable(); !s.ok()) return s;
  if (Status v = ValidateRecordKey(collection, key); !v.ok()) return v;
  PersonLocks::SharedGuard person_lock(person_locks_, id);
  auto dek = PersonKey(id);
  if (!dek.ok()) return dek.status();
  const std::string skey = codec::RecordKey(id, CollectionHash(collection), RecordKeyHash(**dek, collection, key));
  Keyring keyring(keys_.get(), id, *dek);
  std::string plain;
  const auto rules = retention_->rules();
  const std::int64_t now = Now();
  Status s = data_->View([&](storage::ReadTxn& txn) -> Status {
    std::string_view row;
    if (Status g = txn.Get(tables_.records, skey, &row); !g.ok()) return g;
    // A record past its collection's retention is gone for every reader.
    auto expired = retention_->RecordExpired(txn, *rules, collection, skey, now);
    if (!expired.ok()) return expired.status();
    if (*expired) return Status::NotFound("expired");
    bool shredded = false;
    if (Status o = keyring.Open(TableId::kRecords, skey, row, &plain, &shredded); !o.ok()) return o;
    return shredded ? Status::NotFound("the record's category key was erased") : Status::OK();
  });
  if (s.IsNotFound()) return Status::NotFound("no record '" + std::string(collection) + "' of person " + id.ToHex() + " under this key");
  if (!s.ok()) return s.WithContext("record of " + id.ToHex());
  Record r;
  Status d = codec::DecodeRecord(plain, &r);
  crypto::Wipe(&plain);
  if (!d.ok()) return d.WithContext("record of " + id.ToHex());
  if (r.collection != collection || r.key != key) {
    return Status::Corruption("record of " + id.ToHex() + " holds a different key than its hash names");
  }
  return r;
}

Status StoreImpl::Rectify(const PersonId& id, const Rectification& rectification) {
  WriteBatch batch;
  batch.Rectify(id, rectification);
  return Write(batch);
}

Result<std::vector<Notice>> StoreImpl::ReadFeed(std::size_t max) {
  std::shared_lock close_lock(close_mu_);
  if (Status s = CheckUsable(); !s.ok()) return s;
  std::vector<Notice> out;
  Status s = data_->View([&](storage::ReadTxn& txn) -> Status {
    auto r = outbox_->Read(txn, 0, max);
    if (!r.ok()) return r.status();
    out = std::move(r).value();
    return Status::OK();
  });
  if (!s.ok()) return s;
  return out;
}

Status StoreImpl::AckFeed(std::uint64_t cursor) {
  std::shared_lock close_lock(close_mu_);
  if (Status s = CheckUsable(); !s.ok()) return s;
  std::lock_guard write_lock(write_mu_);
  return data_->Update([&](storage::WriteTxn& txn) { return outbox_->Ack(txn, cursor); });
}

Result<std::uint64_t> StoreImpl::PersonVersion(storage::ReadTxn& txn, const PersonId& id) const {
  std::string v;
  Status g = ReadPlain(txn, tables_.versions, TableId::kVersions, id.view(), &v);
  if (g.IsNotFound()) return std::uint64_t{0};
  if (!g.ok()) return g;
  if (v.size() != 8) return Status::Corruption("person version has the wrong length");
  return util::DecodeFixed64BE(v.data());
}

std::unique_ptr<Iterator<ExportItem>> StoreImpl::Export(const PersonId& id) { return NewExportIterator(this, id); }

std::unique_ptr<EventIterator> StoreImpl::ScanEvents(const PersonId& id, TimeRange range) {
  return NewEventIterator(this, id, range);
}

std::unique_ptr<RecordIterator> StoreImpl::ScanRecords(const PersonId& id, std::string_view collection,
                                                       std::string_view prefix) {
  return NewRecordIterator(this, id, std::string(collection), std::string(prefix));
}

std::unique_ptr<AnalyticsIterator> StoreImpl::ScanAnalytics(const AnalyticsQuery& query) {
  return NewAnalyticsIterator(this, query);
}

Result<StoreStats> StoreImpl::Stats() {
  std::shared_lock close_lock(close_mu_);
  if (Status s = CheckUsable(); !s.ok()) return s;
  StoreStats st;
  Status s = data_->View([&](storage::ReadTxn& txn) -> Status {
    struct { storage::Table t; std::uint64_t* out; } counts[] = {
        {tables_.people, &st.people},   {tables_.ident, &st.identifiers},
        {tables_.events, &st.events},   {tables_.records, &st.records},
        {tables_.analytics, &st.analytics_rows}, {tables_.restrictions, &st.restricted}};
    for (auto& c : counts) {
      auto n = txn.Count(c.t);
      if (!n.ok()) return n.status();
      *c.out = *n;
    }
    auto counters = Retention::ReadCounters(txn, tables_.meta);
    if (!counters.ok()) return counters.status();
    st.expired_removed = counters->removed;
    auto pending = retention_->CountPending(txn, *retention_->rules(), Now());
    if (!pending.ok()) return pending.status();
    st.expired_pending = *pending;
    return Status::OK();
  });
  if (!s.ok()) return s;
  st.key_epoch = keys_->current_epoch();
  st.oldest_key_epoch = keys_->oldest_epoch();
  auto counts = keys_->Counts();
  if (!counts.ok()) return counts.status();
  st.erased = counts->fences;
  st.suppressed = counts->suppressed;
  st.pending_purge = counts->pending_purge;
  st.erased_categories = counts->category_fences;
  st.erasures_since_rotation = counts->erasures_since_rotation;
  st.suppressed_rejections = suppressed_rejections_.load(std::memory_order_relaxed);
  st.tracking_rejected = tracking_rejected_.load(std::memory_order_relaxed);
  st.tracking_dropped = tracking_dropped_.load(std::memory_order_relaxed);
  auto ki = keys_->Info();
  if (!ki.ok()) return ki.status();
  auto di = data_->Info();
  if (!di.ok()) return di.status();
  st.keys_file_bytes = ki->file_bytes;
  st.data_file_bytes = di->file_bytes;
  st.data_map_bytes = di->map_size;
  return st;
}

}  // namespace engine
}  // namespace shredkv
