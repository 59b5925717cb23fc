// The export iterator (GDPR Art. 15/20): every item the store holds on one
// person, as one consistent snapshot read in short batches.
//
// Consistency across batches: the first batch records the person's change
// version and the store's event sequence watermark. Events (and their
// analytics rows) appended later have a sequence >= the watermark and are
// skipped; every other change to the person bumps the version, and a batch
// that sees a different version stops the export with Busy. So an export
// that completes equals the state at its first batch. Erasure in between
// stops it with Erased, a category erasure with Busy (the version changed).
//
// Items wait in the buffer decrypted, so every call that hands one out first
// compares the store's erasure epoch with the one read before the batch: if
// an erasure committed since (Store::Erase: no call returns the data of an
// erasure that returned, also not a read that started earlier), the person's
// key and the category keys the export used are looked up again, and the
// export stops with Erased or Busy if one of them is gone.
#include <set>
#include <vector>

#include "codec/row_codec.h"
#include "codec/sealed.h"
#include "crypto/secure_memory.h"
#include "engine/analytics_link.h"
#include "engine/data_rows.h"
#include "engine/iterators.h"
#include "engine/keyring.h"
#include "engine/context.h"
#include "util/coding.h"

namespace shredkv::engine {
namespace {

using codec::TableId;

// The items of one batch, reused from batch to batch: Add() gives back an
// item in place, whose previous contents are cleared member by member, so a
// stream of thousands of events neither constructs nor destroys (nor moves)
// an ExportItem — a struct with a member for every kind — per item.
class ItemBuffer {
 public:
  bool empty() const { return pos_ == size_; }
  std::size_t size() const { return size_ - pos_; }
  const ExportItem& front() const { return items_[pos_]; }
  void pop_front() { ++pos_; }
  // Keeps the items' storage for the next batch. REQUIRES: before a batch.
  // The items are not touched: a reference front() gave stays valid (and
  // unchanged) until the next Add().
  void clear() { pos_ = size_ = 0; }

  // A cleared item of `kind` at the back.
  ExportItem& Add(ExportItem::Kind kind) {
    if (size_ == items_.size()) items_.emplace_back();
    ExportItem& item = items_[size_++];
    ClearMemberOf(item);
    item.kind = kind;
    return item;
  }
  // Takes back the item Add() returned last (it was filtered out).
  void DropLast() { ClearMemberOf(items_[--size_]); }

 private:
  // Invariant: every member but the one of the item's kind is default, so
  // resetting that one member leaves a default item (no stale data of an
  // earlier item can show through any member). Strings and maps of events
  // and analytics rows are cleared, keeping their capacity.
  static void ClearMemberOf(ExportItem& item) {
    switch (item.kind) {
      case ExportItem::Kind::kPerson: item.person = {}; break;
      case ExportItem::Kind::kIdentifier: item.identifier = {}; break;
      case ExportItem::Kind::kProfile: item.profile.clear(); break;
      case ExportItem::Kind::kRestriction: item.restriction = {}; break;
      case ExportItem::Kind::kConsent: item.consent = {}; break;
      case ExportItem::Kind::kEvent:
        item.event.name.clear();
        item.event.ts_ms = 0;
        item.event.seq = 0;
        item.event.properties.clear();
        item.event.category.clear();
        break;
      case ExportItem::Kind::kRecord: item.record = {}; break;
      case ExportItem::Kind::kAnalytics:
        item.analytics.anon_id = {};
        item.analytics.name.clear();
        item.analytics.ts_ms = 0;
        item.analytics.seq = 0;
        item.analytics.fields.clear();
        break;
      case ExportItem::Kind::kNotice: item.notice = {}; break;
    }
  }

  std::vector<ExportItem> items_;
  std::size_t pos_ = 0, size_ = 0;
};

class ExportIteratorImpl final : public Iterator<ExportItem> {
 public:
  ExportIteratorImpl(EngineContext* ctx, const PersonId& id) : ctx_(ctx), id_(id) { Refill(); }

  // Valid() and value() are const in the public interface but may have to
  // stop the export on an erasure; the iterator is a heap object that
  // NewExportIterator made non-const, so casting const away is defined.
  bool Valid() const override {
    const_cast<ExportIteratorImpl*>(this)->StopIfKeysErasedSince();
    return !buffer_.empty();
  }
  void Next() override {
    // value() may have found the person erased and the export stopped.
    if (!buffer_.empty()) buffer_.pop_front();
    Refill();
  }
  // An empty item if an erasure stopped the export after Valid() was true;
  // Valid() is false from then on (iterator.h).
  const ExportItem& value() const override {
    const_cast<ExportIteratorImpl*>(this)->StopIfKeysErasedSince();
    return buffer_.empty() ? gone_ : buffer_.front();
  }
  Status status() const override { return status_; }

 private:
  enum class Phase { kStart, kConsent, kEvents, kRecords, kAnalytics, kNotices, kDone };

  void Refill() {
    if (buffer_.empty()) buffer_.clear();
    while (buffer_.empty() && phase_ != Phase::kDone && status_.ok()) {
      // Read before the batch: an erasure that commits while it is read
      // changes the epoch, and the next call checks the keys again.
      filled_at_epoch_ = ctx_->ErasureEpoch();
      CallGuard guard(*ctx_);
      Status s = guard.status();
      if (s.ok()) {
        PersonLocks::SharedGuard person_lock(ctx_->person_locks, id_);
        auto dek = ctx_->PersonKey(id_);
        if (dek.ok()) {
          // A keyring per batch: a category key erased between batches is
          // not used again.
          Keyring keyring(ctx_->keys.get(), id_, *dek);
          s = (*ctx_->data).View([&](storage::ReadTxn& txn) { return Fill(txn, keyring); });
          for (std::uint32_t slot : keyring.LiveCategorySlots()) used_slots_.insert(slot);
        } else {
          s = dek.status();
        }
      }
      if (!s.ok()) {
        status_ = s;
        buffer_.clear();
        phase_ = Phase::kDone;
      }
    }
  }

  void StopIfKeysErasedSince() {
    if (buffer_.empty()) return;  // nothing decrypted waits (and no epoch read)
    // Close wipes the keys and fails every later call: the export stops,
    // its decrypted items with it (outside audit 34c, F1: items read before
    // Close came out after it, after the person was erased through a store
    // opened again on the directory).
    if (ctx_->closed.load(std::memory_order_acquire)) {
      status_ = Status::FailedPrecondition("store is closed");
      buffer_.clear();
      phase_ = Phase::kDone;
      return;
    }
    // Read before the keys are: an erasure that commits meanwhile is
    // checked for at the next call.
    const std::uint64_t epoch = ctx_->ErasureEpoch();
    if (epoch == filled_at_epoch_) return;
    Status s = KeysStillThere(ctx_, id_, used_slots_);
    if (s.IsBusy()) {
      s = Status::Busy("a data category of person " + id_.ToHex() + " was erased during the export; export again");
    }
    if (s.ok()) {
      filled_at_epoch_ = epoch;  // someone else's erasure
      return;
    }
    status_ = s;
    buffer_.clear();  // the item value() handed out stays valid until Next()
    phase_ = Phase::kDone;
  }

  Status CheckVersion(storage::ReadTxn& txn) {
    auto v = ctx_->PersonVersion(txn, id_);
    if (!v.ok()) return v.status();
    if (*v != version_) {
      return Status::Busy("person " + id_.ToHex() + " was modified during the export; export again");
    }
    return Status::OK();
  }

  // What one row of the current phase needs besides its cursor.
  struct RowContext {
    storage::ReadTxn& txn;
    Keyring& keyring;
    const CompiledRetention& rules;
    std::int64_t now;
    // The staging holds rows (as of txn): if not, no analytics row is
    // looked up there.
    bool staged_rows;
  };

  Status Fill(storage::ReadTxn& txn, Keyring& keyring) {
    const DataTables& t = ctx_->tables;
    const std::size_t limit = ctx_->options.iterator_batch_size;
    const auto rules = ctx_->retention->rules();
    if (phase_ == Phase::kStart) return Start(txn, keyring);
    if (Status v = CheckVersion(txn); !v.ok()) return v;
    if (phase_ == Phase::kNotices) return FillNotices(txn, limit, NoticeExpiryCutoff(rules->rules, ctx_->Now()));
    auto cursor = txn.OpenCursor(phase_ == Phase::kRecords   ? t.records
                                 : phase_ == Phase::kConsent ? t.consent_history
                                                             : t.events);
    if (!cursor.ok()) return cursor.status();
    auto& c = **cursor;
    bool staged_rows = false;
    if (phase_ == Phase::kAnalytics) {
      auto n = ctx_->staging->Count(txn);
      if (!n.ok()) return n.status();
      staged_rows = *n != 0;
    }
    const RowContext row{txn, keyring, *rules, ctx_->Now(), staged_rows};
    Status m = c.Seek(next_key_);
    std::size_t examined = 0;
    for (; m.ok() && c.Valid() && buffer_.size() < limit && examined < 16 * limit; m = c.Next()) {
      if (c.key().substr(0, PersonId::kSize) != id_.view()) break;
      ++examined;
      next_key_ = std::string(c.key()) + '\0';
      Status s = phase_ == Phase::kConsent   ? AddConsent(row, c)
                 : phase_ == Phase::kRecords ? AddRecord(row, c)
                 : phase_ == Phase::kEvents  ? AddEvent(row, c)
                                             : AddAnalytics(row, c);
      if (!s.ok()) return s;
    }
    if (!m.ok()) return m;
    const bool phase_done = !c.Valid() || c.key().substr(0, PersonId::kSize) != id_.view();
    if (phase_done) {
      next_key_ = std::string(id_.view());
      phase_ = phase_ == Phase::kConsent   ? Phase::kEvents
               : phase_ == Phase::kEvents  ? Phase::kRecords
               : phase_ == Phase::kRecords ? Phase::kAnalytics
                                           : Phase::kNotices;
    }
    return Status::OK();
  }

  // The feed rule's expired prefix (`expired_at`, NoticeExpiryCutoff) is left out, as ReadFeed leaves it.
  Status FillNotices(storage::ReadTxn& txn, std::size_t limit, std::int64_t expired_at) {
    auto notices = ctx_->outbox->Read(txn, notice_after_, limit, &id_, expired_at);
    if (!notices.ok()) return notices.status();
    if (notices->size() < limit) phase_ = Phase::kDone;
    for (Notice& n : *notices) {
      notice_after_ = n.cursor;
      buffer_.Add(ExportItem::Kind::kNotice).notice = std::move(n);
    }
    return Status::OK();
  }

  Status AddConsent(const RowContext& row, const storage::Cursor& c) {
    std::string plain;
    bool shredded = false;
    if (Status o = row.keyring.Open(TableId::kConsentHistory, c.key(), c.value(), &plain, &shredded); !o.ok()) return o;
    if (shredded) return Status::OK();
    Status d = codec::DecodeConsentRecord(plain, &buffer_.Add(ExportItem::Kind::kConsent).consent);
    crypto::Wipe(&plain);
    return d;
  }

  Status AddRecord(const RowContext& row, const storage::Cursor& c) {
    std::string plain;
    bool shredded = false;
    if (Status o = row.keyring.Open(TableId::kRecords, c.key(), c.value(), &plain, &shredded); !o.ok()) return o;
    if (shredded) return Status::OK();  // an erased category, awaiting purge
    Record& record = buffer_.Add(ExportItem::Kind::kRecord).record;
    std::optional<std::int64_t> written;
    Status d = codec::DecodeRecord(plain, &record, &written);
    crypto::Wipe(&plain);
    if (!d.ok()) return d;
    auto expired = ctx_->retention->RecordExpired(row.txn, row.rules, record.collection, c.key(), written, row.now);
    if (!expired.ok()) return expired.status();
    // Past its retention or its own expiry: not held any more.
    if (*expired || RecordMetadataExpired(record, row.now)) buffer_.DropLast();
    return Status::OK();
  }

  Status AddEvent(const RowContext& row, const storage::Cursor& c) {
    std::int64_t ts = 0;
    std::uint64_t seq = 0;
    if (Status d = codec::DecodeTsSeq(c.key().substr(PersonId::kSize), &ts, &seq); !d.ok()) return d;
    if (seq >= watermark_) return Status::OK();  // appended after the export started
    std::string plain;
    bool shredded = false;
    if (Status o = row.keyring.Open(TableId::kEvents, c.key(), c.value(), &plain, &shredded); !o.ok()) return o;
    if (shredded) return Status::OK();  // an erased category, awaiting purge
    StoredEvent& event = buffer_.Add(ExportItem::Kind::kEvent).event;
    event.ts_ms = ts;
    event.seq = seq;
    Status d = codec::DecodeEvent(plain, &event.name, &event.category, &event.properties);
    crypto::Wipe(&plain);
    if (!d.ok()) return d;
    if (Retention::EventExpired(row.rules, event.name, ts, row.now)) buffer_.DropLast();
    return Status::OK();
  }

  // The analytics row of the person's event at `c`, found through the
  // event's key slot only (analytics_link.h). Not those of events of an
  // erased category: before their purge as after it, the export does not
  // reach them through the person.
  Status AddAnalytics(const RowContext& row, const storage::Cursor& c) {
    std::int64_t ts = 0;
    std::uint64_t seq = 0;
    if (Status d = codec::DecodeTsSeq(c.key().substr(PersonId::kSize), &ts, &seq); !d.ok()) return d;
    if (seq >= watermark_) return Status::OK();  // appended after the export started
    std::uint32_t slot = 0;
    if (Status h = codec::PersonRowSlot(c.value(), &slot); !h.ok()) return h;
    keys::DekHandle slot_key = row.keyring.person_key();
    if (slot != 0) {
      auto key = row.keyring.Key(slot);
      if (!key.ok()) return key.status();
      if (*key == nullptr) return Status::OK();
      slot_key = *key;
    }
    const std::string akey = ctx_->AnalyticsKeyFor(links_.Get(slot, *slot_key), ts, seq);
    std::string payload;
    bool staged = false;
    Status a = ctx_->ReadAnalyticsRow(row.txn, seq, akey, &payload, &staged, row.staged_rows);
    if (a.IsNotFound()) return Status::OK();
    if (!a.ok()) return a;
    std::int64_t bucket = 0;
    if (Status d = codec::DecodeAnalyticsKey(akey, &bucket); !d.ok()) return d;
    if (Retention::AnalyticsExpired(row.rules, bucket, row.now)) return Status::OK();
    AnalyticsRow& out = buffer_.Add(ExportItem::Kind::kAnalytics).analytics;
    if (Status d = codec::DecodeAnalytics(payload, &out); !d.ok()) return d;
    // The row of an expired event is no longer linked to the person: the
    // sweep removes the event row through which export finds it.
    if (Retention::EventExpired(row.rules, out.name, ts, row.now)) {
      buffer_.DropLast();
      return Status::OK();
    }
    // The row's own (coarse) time; seq names the person's event it belongs
    // to, which only the person's export can tell.
    out.ts_ms = bucket;
    out.seq = seq;
    return Status::OK();
  }

  Status Start(storage::ReadTxn& txn, Keyring& keyring) {
    const DataTables& t = ctx_->tables;
    auto v = ctx_->PersonVersion(txn, id_);
    if (!v.ok()) return v.status();
    version_ = *v;
    std::string seq;
    Status q = ReadPlain(txn, t.meta, TableId::kDataMeta, "event_seq", &seq);
    if (q.ok() && seq.size() == 8) {
      watermark_ = util::DecodeFixed64BE(seq.data());
    } else if (q.IsNotFound()) {
      watermark_ = 1;
    } else {
      return q.ok() ? Status::Corruption("event sequence has the wrong length") : q;
    }
    std::string_view row;
    Status g = txn.Get(t.people, id_.view(), &row);
    if (g.IsNotFound()) return Status::NotFound("no person " + id_.ToHex());
    if (!g.ok()) return g;
    std::string plain;
    if (Status o = codec::OpenPersonRow(*keyring.person_key(), TableId::kPeople, id_.view(), row, &plain); !o.ok()) {
      return o;
    }
    codec::PersonPayload p;
    Status d = codec::DecodePerson(plain, &p);
    crypto::Wipe(&plain);
    if (!d.ok()) return d;
    auto epoch = (*ctx_->keys).DekEpoch(id_);
    if (!epoch.ok()) return epoch.status();
    buffer_.Add(ExportItem::Kind::kPerson).person = PersonInfo{id_, p.anon_id, p.created_ms, p.identifiers, *epoch};
    for (const Identifier& ident : p.identifiers) buffer_.Add(ExportItem::Kind::kIdentifier).identifier = ident;
    bool found = false;
    if (Status r = ReadProfile(txn, t.profiles, keyring, &buffer_.Add(ExportItem::Kind::kProfile).profile, &found);
        !r.ok()) {
      return r;
    }
    auto r = ctx_->ReadRestriction(txn, id_);
    if (!r.ok()) return r.status();
    buffer_.Add(ExportItem::Kind::kRestriction).restriction = std::move(r).value();
    next_key_ = std::string(id_.view());
    phase_ = Phase::kConsent;
    return Status::OK();
  }

  EngineContext* ctx_;
  PersonId id_;
  Phase phase_ = Phase::kStart;
  std::uint64_t version_ = 0;
  std::uint64_t watermark_ = 0;
  std::string next_key_;
  std::uint64_t notice_after_ = 0;
  ItemBuffer buffer_;
  std::uint64_t filled_at_epoch_ = 0;   // the erasure epoch read before the buffered batch
  std::set<std::uint32_t> used_slots_;  // category key slots whose rows were exported
  const ExportItem gone_{};
  LinkCache links_;  // analytics links of the person's key slots
  Status status_;
};

}  // namespace

std::unique_ptr<Iterator<ExportItem>> NewExportIterator(EngineContext* ctx, const PersonId& id) {
  return std::make_unique<ExportIteratorImpl>(ctx, id);
}

}  // namespace shredkv::engine
