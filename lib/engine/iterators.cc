#include "engine/iterators.h"

#include <algorithm>
#include <deque>
#include <limits>
#include <map>
#include <set>
#include <utility>
#include <vector>

#include "codec/row_codec.h"
#include "codec/sealed.h"
#include "crypto/secure_memory.h"
#include "engine/keyring.h"
#include "engine/context.h"
#include "engine/data_rows.h"
#include "util/coding.h"

namespace shredkv::engine {
namespace {

using codec::TableId;

bool HasPrefix(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && s.substr(0, prefix.size()) == prefix;
}

// The smallest key greater than `key`.
std::string Successor(std::string_view key) {
  std::string s(key);
  s.push_back('\0');
  return s;
}

// Common batching: Fill() loads up to batch_size entries at a time.
//
// Erasure (Store::Erase: once it returned, no call returns the erased data,
// also not a read that started earlier). Entries wait in the buffer
// decrypted, so Valid() and value() first compare the store's erasure epoch
// (EngineContext::ErasureEpoch) with the one read before the entries were.
// If an erasure committed since and EntriesStale() (a key they were read
// with is gone, or the iterator cannot tell), they are dropped and
// Reposition() makes Fill read again from the first of them: an entry comes
// back only if its key still exists, and an erased person ends the
// iteration with Erased. An iterator over rows that hold no personal data
// (analytics) keeps its entries.
//
// value() hands out a reference valid until Next() (iterator.h), so the
// current entry, once value() handed it out ("shown"), is not destroyed by a
// drop: it is "retired", kept untouched at the front until Next(). If it is
// read again (it was not erased), the copy goes and it stays current; if
// not, the entry after it becomes current, and Next() moves past the
// retired entries, and past the current one only if value() showed it too.
// So a caller that read an entry and then moves on neither skips the entry
// that took its place nor sees one twice.
template <typename T>
class BatchedIterator : public Iterator<T> {
 public:
  // Valid() and value() are const in the public interface but may have to
  // drop what an erasure made stale. Every iterator is a heap object that
  // its New*Iterator made non-const, so casting const away is defined.
  bool Valid() const override {
    Self().DropIfClosed();
    Self().DropIfErasedSince();
    return Buffered() != 0;
  }
  // Also safe when not Valid(): it does nothing then.
  void Next() override {
    std::size_t past = retired_;
    if (Buffered() != 0 && (retired_ == 0 || shown_)) ++past;
    entries_.erase(entries_.begin(), entries_.begin() + static_cast<std::ptrdiff_t>(past));
    retired_ = 0;
    shown_ = false;
    Refill();
  }
  // An empty entry if nothing is left (an erasure ended the iteration after
  // Valid() was true).
  const T& value() const override {
    BatchedIterator& self = Self();
    self.DropIfClosed();
    self.DropIfErasedSince();
    if (Buffered() == 0) return gone_;
    self.shown_ = true;
    return entries_[retired_].value;
  }
  Status status() const override { return status_; }

 protected:
  // One buffered entry and, where an iterator needs it to read the entry
  // again, the row it came from.
  struct Entry {
    T value;
    std::string source;
  };

  // `personal`: the entries hold personal data, so an erasure drops them.
  BatchedIterator(EngineContext* ctx, bool personal) : ctx_(ctx), personal_(personal) {}
  virtual Status Fill() = 0;  // REQUIRES: close lock held shared
  // An erasure committed after the buffered entries were read: true if it
  // may have erased some of them. Not called for an iterator whose entries
  // are not personal.
  virtual bool EntriesStale() { return true; }
  // Makes the next Fill read again from entries[first], the first of the
  // buffered entries EntriesStale() found stale (those from `first` on).
  virtual void Reposition(const std::deque<Entry>& entries, std::size_t first) = 0;
  // True if `a` and `b` are the same row (one read again after a drop).
  virtual bool SamePlace(const Entry& a, const Entry& b) const = 0;

  // Entries buffered and not handed out yet.
  std::size_t Buffered() const { return entries_.size() - retired_; }
  void Push(T value, std::string source = {}) { entries_.push_back(Entry{std::move(value), std::move(source)}); }

  // Fills until an entry is buffered or the end is reached (a batch may
  // yield nothing when a filter matched none of the rows it examined).
  void Refill() {
    while (Buffered() == 0 && !exhausted_ && status_.ok()) {
      // Read before the batch: an erasure that commits while it is read
      // changes the epoch, and the next call drops the batch.
      filled_at_epoch_ = ctx_->ErasureEpoch();
      if (LeaseEndedNow()) {
        status_ = Status::FailedPrecondition(kLeaseEndedMessage);
        exhausted_ = true;
        break;
      }
      CallGuard guard(*ctx_);
      Status s = guard.status();
      if (s.ok()) s = Fill();
      if (!s.ok()) {
        status_ = s;
        DropBuffered();
        exhausted_ = true;
      }
    }
  }

  EngineContext* ctx_;
  bool exhausted_ = false;
  Status status_;
  LeaseEnded lease_ended_;  // see NewEventIterator

 private:
  static constexpr const char* kLeaseEndedMessage =
      "the lease this iterator read for was released: it reads nothing more";
  bool LeaseEndedNow() const { return lease_ended_ && lease_ended_->load(std::memory_order_acquire); }

  BatchedIterator& Self() const { return const_cast<BatchedIterator&>(*this); }

  // Close wipes the keys, and every later call fails: so do the iterators,
  // and what they hold buffered, decrypted, goes (outside audit 34c, F1: a
  // batch read before Close was handed out after it — also after the person
  // was erased through a store opened again on the directory, whose
  // erasures this store's epoch never sees). An entry value() handed out
  // stays until Next() (iterator.h), as after an erasure.
  // The same when the lease the iterator reads for was released (outside
  // audit 37d, F1: a lease's scan kept reading, after the lease was
  // released and the person restricted, what the restriction withholds).
  void DropIfClosed() {
    const bool closed = ctx_->closed.load(std::memory_order_acquire);
    if ((!closed && !LeaseEndedNow()) || (exhausted_ && Buffered() == 0)) return;
    if (shown_ && Buffered() != 0) {  // handed out: retired, not destroyed
      ++retired_;
      shown_ = false;
    }
    DropBuffered();
    exhausted_ = true;
    if (status_.ok()) status_ = Status::FailedPrecondition(closed ? "store is closed" : kLeaseEndedMessage);
  }

  void DropIfErasedSince() {
    if (!personal_ || Buffered() == 0) return;
    // Read before the keys are: an erasure that commits meanwhile is
    // checked for at the next call.
    const std::uint64_t epoch = ctx_->ErasureEpoch();
    if (epoch == filled_at_epoch_) return;
    if (!EntriesStale()) {
      filled_at_epoch_ = epoch;  // another person's erasure
      return;
    }
    Reposition(entries_, retired_);
    const bool keep_current = shown_;  // value() may have handed it out
    if (keep_current) ++retired_;
    DropBuffered();
    exhausted_ = false;
    Refill();
    if (keep_current) {
      shown_ = false;
      const std::size_t current = retired_ - 1;
      if (Buffered() != 0 && SamePlace(entries_[current], entries_[retired_])) {
        // Still there: the object handed out stays current, and the copy
        // read again goes. Not by erase() in the middle of the deque, which
        // may shift the front part back over it and destroy the object
        // handed out (outside audit 37b, F1): the entries after the copy
        // move forward one place instead, and the last slot goes, which
        // leaves every entry before the copy where it was.
        std::move(entries_.begin() + static_cast<std::ptrdiff_t>(retired_) + 1, entries_.end(),
                  entries_.begin() + static_cast<std::ptrdiff_t>(retired_));
        entries_.pop_back();
        --retired_;
        shown_ = true;
      }
    }
  }

  // The entries not handed out go.
  void DropBuffered() { entries_.erase(entries_.begin() + static_cast<std::ptrdiff_t>(retired_), entries_.end()); }

  const bool personal_;
  // retired_ retired entries, then the current one and those after it. An
  // entry value() handed out must keep its address until Next(): entries
  // are only added at the back and removed at either end (a deque keeps the
  // others in place then), never erased in the middle.
  std::deque<Entry> entries_;
  std::size_t retired_ = 0;
  bool shown_ = false;  // value() handed out the current entry
  std::uint64_t filled_at_epoch_ = 0;
  const T gone_{};
};

// An iterator over one person's sealed rows: each batch is read under the
// person's lock with a keyring of the person's keys, and after an erasure
// the buffered entries are stale only if a key they were read with is gone.
template <typename T>
class PersonIterator : public BatchedIterator<T> {
 protected:
  PersonIterator(EngineContext* ctx, const PersonId& id, EntryFilter<T> keep, LeaseEnded lease_ended)
      : BatchedIterator<T>(ctx, /*personal=*/true), id_(id), keep_(std::move(keep)) {
    this->lease_ended_ = std::move(lease_ended);
  }
  // One batch. REQUIRES: the person's lock held shared.
  virtual Status FillWith(Keyring& keyring) = 0;
  // Whether the filter lets `value` out. Applied where a batch is read, so
  // an entry read again after an erasure is filtered like any other.
  bool Wanted(const T& value) const { return !keep_ || keep_(value); }

  const PersonId id_;

 private:
  Status Fill() final {
    PersonLocks::SharedGuard person_lock(this->ctx_->person_locks, id_);
    auto dek = this->ctx_->PersonKey(id_);
    if (!dek.ok()) return dek.status();
    Keyring keyring(this->ctx_->keys.get(), id_, *dek);
    Status s = FillWith(keyring);
    // Fill runs with nothing buffered: the batch's slots are all that count.
    const std::vector<std::uint32_t> slots = keyring.LiveCategorySlots();
    batch_slots_ = std::set<std::uint32_t>(slots.begin(), slots.end());
    return s;
  }
  bool EntriesStale() final { return !KeysStillThere(this->ctx_, id_, batch_slots_).ok(); }

  const EntryFilter<T> keep_;

  std::set<std::uint32_t> batch_slots_;  // category key slots of the buffered batch's rows
};

class EventIteratorImpl final : public PersonIterator<StoredEvent> {
 public:
  EventIteratorImpl(EngineContext* ctx, const PersonId& id, TimeRange range, EntryFilter<StoredEvent> keep,
                    LeaseEnded lease_ended)
      : PersonIterator(ctx, id, std::move(keep), std::move(lease_ended)),
        range_(range),
        next_key_(codec::EventKey(id, range.from_ms, 0)) {
    Refill();
  }

 private:
  Status FillWith(Keyring& keyring) override {
    const std::size_t limit = ctx_->options.iterator_batch_size;
    const auto rules = (*ctx_->retention).rules();
    const std::int64_t now = ctx_->Now();
    return (*ctx_->data).View([&](storage::ReadTxn& txn) -> Status {
      auto cursor = txn.OpenCursor(ctx_->tables.events);
      if (!cursor.ok()) return cursor.status();
      auto& c = **cursor;
      Status m = c.Seek(next_key_);
      std::size_t examined = 0;
      for (; m.ok() && c.Valid() && examined < limit; m = c.Next()) {
        if (!HasPrefix(c.key(), id_.view())) break;
        ++examined;
        StoredEvent e;
        if (Status d = codec::DecodeTsSeq(c.key().substr(codec::kIdSize), &e.ts_ms, &e.seq); !d.ok()) {
          return d;
        }
        // INT64_MAX as the end is "no end" (c.h, Python's end=None): an
        // event at INT64_MAX itself is in it (stop 26's audit).
        if (e.ts_ms >= range_.to_ms && range_.to_ms != std::numeric_limits<std::int64_t>::max()) break;
        std::string plain;
        bool shredded = false;
        if (Status o = keyring.Open(TableId::kEvents, c.key(), c.value(), &plain, &shredded); !o.ok()) {
          return o.WithContext("event of person " + id_.ToHex());
        }
        next_key_ = Successor(c.key());
        if (shredded) continue;  // its category was erased: awaiting purge
        Status d = codec::DecodeEvent(plain, &e.name, &e.category, &e.properties);
        crypto::Wipe(&plain);
        if (!d.ok()) return d.WithContext("event of person " + id_.ToHex());
        // Past its retention: gone for every reader before the sweep removes it.
        if (Retention::EventExpired(*rules, e.name, e.ts_ms, now)) continue;
        if (Wanted(e)) Push(std::move(e));
      }
      if (!m.ok()) return m;
      if (examined < limit) exhausted_ = true;
      return Status::OK();
    });
  }

  void Reposition(const std::deque<Entry>& entries, std::size_t first) override {
    next_key_ = codec::EventKey(id_, entries[first].value.ts_ms, entries[first].value.seq);
  }
  bool SamePlace(const Entry& a, const Entry& b) const override {
    return a.value.ts_ms == b.value.ts_ms && a.value.seq == b.value.seq;
  }

  TimeRange range_;
  std::string next_key_;
};

class RecordIteratorImpl final : public PersonIterator<Record> {
 public:
  RecordIteratorImpl(EngineContext* ctx, const PersonId& id, std::string collection, std::string prefix,
                     EntryFilter<Record> keep, LeaseEnded lease_ended)
      : PersonIterator(ctx, id, std::move(keep), std::move(lease_ended)),
        collection_(std::move(collection)),
        prefix_(std::move(prefix)) {
    if (collection_.empty() || collection_.size() > 255) {
      status_ = Status::InvalidArgument("collection name must be 1..255 bytes");
      exhausted_ = true;
      return;
    }
    Refill();
  }

 private:
  // First call: collect the matching (key, storage key) pairs in key order,
  // decrypting every record of the collection (keys are stored only as
  // hashes). Later calls: fetch values in batches by storage key.
  Status FillWith(Keyring& keyring) override {
    const auto rules = (*ctx_->retention).rules();
    const std::int64_t now = ctx_->Now();
    if (!listed_) {
      const std::string scan_prefix = std::string(id_.view()) + ctx_->CollectionHash(collection_);
      Status s = (*ctx_->data).View([&](storage::ReadTxn& txn) -> Status {
        auto cursor = txn.OpenCursor(ctx_->tables.records);
        if (!cursor.ok()) return cursor.status();
        auto& c = **cursor;
        Status m = c.Seek(scan_prefix);
        for (; m.ok() && c.Valid() && HasPrefix(c.key(), scan_prefix); m = c.Next()) {
          std::string plain;
          bool shredded = false;
          if (Status o = keyring.Open(TableId::kRecords, c.key(), c.value(), &plain, &shredded); !o.ok()) {
            return o.WithContext("record of person " + id_.ToHex());
          }
          if (shredded) continue;  // its category was erased: awaiting purge
          Record r;
          std::optional<std::int64_t> written;
          Status d = codec::DecodeRecord(plain, &r, &written);
          crypto::Wipe(&plain);
          crypto::Wipe(&r.value);
          if (!d.ok()) return d.WithContext("record of person " + id_.ToHex());
          if (!HasPrefix(r.key, prefix_) || RecordMetadataExpired(r, now)) continue;
          auto expired = (*ctx_->retention).RecordExpired(txn, *rules, collection_, c.key(), written, now);
          if (!expired.ok()) return expired.status();
          if (!*expired) keys_.emplace_back(std::move(r.key), std::string(c.key()));
        }
        return m;
      });
      if (!s.ok()) return s;
      std::sort(keys_.begin(), keys_.end());
      listed_ = true;
    }
    const std::size_t limit = ctx_->options.iterator_batch_size;
    Status s = (*ctx_->data).View([&](storage::ReadTxn& txn) -> Status {
      // Bounded by rows read, not entries kept: a filter that refuses most
      // records must not read the rest of the collection in one transaction.
      for (std::size_t read = 0; next_ < keys_.size() && read < limit; ++read) {
        const auto& [key, skey] = keys_[next_++];
        std::string_view row;
        Status g = txn.Get(ctx_->tables.records, skey, &row);
        if (g.IsNotFound()) continue;  // deleted since the listing
        if (!g.ok()) return g;
        std::string plain;
        bool shredded = false;
        if (Status o = keyring.Open(TableId::kRecords, skey, row, &plain, &shredded); !o.ok()) {
          return o.WithContext("record of person " + id_.ToHex());
        }
        if (shredded) continue;  // its category was erased since the listing
        Record r;
        std::optional<std::int64_t> written;
        Status d = codec::DecodeRecord(plain, &r, &written);
        crypto::Wipe(&plain);
        if (!d.ok()) return d.WithContext("record of person " + id_.ToHex());
        auto expired = (*ctx_->retention).RecordExpired(txn, *rules, collection_, skey, written, now);
        if (!expired.ok()) return expired.status();
        if (*expired || RecordMetadataExpired(r, now) || !Wanted(r)) {  // expired since the listing, or filtered
          crypto::Wipe(&r.value);
          continue;
        }
        Push(std::move(r));
      }
      return Status::OK();
    });
    if (next_ >= keys_.size()) exhausted_ = true;
    return s;
  }

  // keys_ is sorted by record key, and a collection holds a key once.
  void Reposition(const std::deque<Entry>& entries, std::size_t first) override {
    const auto at = std::lower_bound(keys_.begin(), keys_.end(), std::make_pair(entries[first].value.key, std::string()));
    next_ = static_cast<std::size_t>(at - keys_.begin());
  }
  bool SamePlace(const Entry& a, const Entry& b) const override { return a.value.key == b.value.key; }

  std::string collection_, prefix_;
  bool listed_ = false;
  std::vector<std::pair<std::string, std::string>> keys_;  // (record key, storage key)
  std::size_t next_ = 0;
};

// Rows of `analytics` in key order. Staged rows (engine/analytics_staging.h)
// are materialised before the first batch on a writable open; a read-only
// open cannot write them, so it merges them in, collected once (nothing
// writes a store open read-only).
class AnalyticsIteratorImpl final : public BatchedIterator<AnalyticsRow> {
 public:
  AnalyticsIteratorImpl(EngineContext* ctx, const AnalyticsQuery& query)
      : BatchedIterator(ctx, /*personal=*/false), query_(query), next_key_(codec::AnalyticsKey(query.range.from_ms, std::string(codec::kAnalyticsRowIdSize, '\0'))) {
    Refill();
  }

 private:
  Status TakeInStagedRows() {
    staged_taken_ = true;
    if (!ctx_->options.read_only) {
      std::lock_guard write_lock(ctx_->write_mu);
      Status m = ctx_->MaterialiseAnalytics(std::nullopt).status();
      // A store that cannot write now (disk full, map at its maximum) still
      // answers the read: the staged rows are merged in, as read-only. (A
      // write that materialises between two batches could then show a row
      // twice; with writes failing that is unlikely, and never wrong data.)
      if (m.ok() || m.IsCorruption() || m.IsAuthenticationFailed()) return m;
    }
    const std::string end = query_.range.to_ms == INT64_MAX
                                ? std::string()
                                : codec::AnalyticsKey(query_.range.to_ms, std::string(codec::kAnalyticsRowIdSize, '\0'));
    return ctx_->data->View([&](storage::ReadTxn& txn) -> Status {
      auto rows = ctx_->staging->Collect(txn, next_key_, end);
      if (!rows.ok()) return rows.status();
      staged_ = std::move(rows).value();
      return Status::OK();
    });
  }

  // Buffers the row key → payload if the query wants it. False once the
  // range ends.
  Result<bool> Take(std::string_view key, std::string_view payload, const CompiledRetention& rules, std::int64_t now) {
    AnalyticsRow row;
    // The row's coarse time; seq stays 0: no analytics row names an event.
    if (Status d = codec::DecodeAnalyticsKey(key, &row.ts_ms); !d.ok()) return d;
    if (row.ts_ms >= query_.range.to_ms) return false;
    next_key_ = Successor(key);
    if (Status d = codec::DecodeAnalytics(payload, &row); !d.ok()) return d.WithContext("analytics row");
    if (query_.name && row.name != *query_.name) return true;
    if (Retention::AnalyticsExpired(rules, row.ts_ms, now)) return true;
    Push(std::move(row));
    return true;
  }

  Status Fill() override {
    if (!staged_taken_) {
      if (Status t = TakeInStagedRows(); !t.ok()) return t;
    }
    const std::size_t limit = ctx_->options.iterator_batch_size;
    // Bound the rows examined per batch too, so a rare name does not turn
    // one batch into a scan of the whole range inside one transaction.
    const std::size_t examine_limit = limit * 16;
    const auto rules = (*ctx_->retention).rules();
    const std::int64_t now = ctx_->Now();
    return (*ctx_->data).View([&](storage::ReadTxn& txn) -> Status {
      auto cursor = txn.OpenCursor(ctx_->tables.analytics);
      if (!cursor.ok()) return cursor.status();
      auto& c = **cursor;
      std::size_t examined = 0;
      Status m = c.Seek(next_key_);
      for (;;) {
        if (!m.ok()) return m;
        if (Buffered() >= limit || examined >= examine_limit) return Status::OK();
        const bool from_table = c.Valid() && (next_staged_ == staged_.size() || c.key() < staged_[next_staged_].key);
        if (!from_table && next_staged_ == staged_.size()) break;
        ++examined;
        Result<bool> more = false;
        if (from_table) {
          std::string_view payload;
          if (Status o = codec::OpenPlain(TableId::kAnalytics, c.key(), c.value(), &payload); !o.ok()) {
            return o.WithContext("analytics row");
          }
          more = Take(c.key(), payload, *rules, now);
          m = c.Next();
        } else {
          const StagedRow& r = staged_[next_staged_++];
          more = Take(r.key, r.payload, *rules, now);
        }
        if (!more.ok()) return more.status();
        if (!*more) break;
      }
      exhausted_ = true;
      return Status::OK();
    });
  }

  // Never called: the rows hold no personal data.
  void Reposition(const std::deque<Entry>&, std::size_t) override {}
  bool SamePlace(const Entry&, const Entry&) const override { return false; }

  AnalyticsQuery query_;
  std::string next_key_;
  bool staged_taken_ = false;
  std::vector<StagedRow> staged_;  // read-only opens: the staged rows in range, sorted by key
  std::size_t next_staged_ = 0;
};

// Store::FindRecords: one prefix of the record metadata index, each entry's
// record read and opened with its person's key, in batches.
class FoundRecordIteratorImpl final : public BatchedIterator<FoundRecord> {
 public:
  FoundRecordIteratorImpl(EngineContext* ctx, RecordQuery query)
      : BatchedIterator(ctx, /*personal=*/true), query_(std::move(query)) {
    Refill();
  }

 private:
  Status Start() {
    if (query_.field == RecordQuery::Field::kExpiresBefore) {
      // Records not yet expired (those are gone for every reader), soonest first.
      prefix_ = RecordIndex::ExpiryPrefix();
      entry_prefix_size_ = prefix_.size() + 8;
      const std::int64_t now = ctx_->Now();
      next_key_ = prefix_;
      util::PutFixed64BE(&next_key_, util::OrderedFromSigned(now == INT64_MAX ? now : now + 1));
      return Status::OK();
    }
    if (query_.value.empty() || query_.value.size() > 255) {
      return Status::InvalidArgument("a record query needs a value of 1..255 bytes");
    }
    if (query_.field == RecordQuery::Field::kPurpose && !ctx_->policy->Basis(query_.value).ok()) {
      return Status::InvalidArgument("purpose '" + query_.value + "' is not registered");
    }
    prefix_ = ctx_->record_index->QueryPrefix(query_.field, query_.value);
    entry_prefix_size_ = prefix_.size();
    next_key_ = prefix_;
    return Status::OK();
  }

  // The record at `record_key`, if it is still there for every reader.
  Status Read(std::string_view record_key, const CompiledRetention& rules, std::int64_t now) {
    auto person = PersonIdFromBytes(record_key.substr(0, PersonId::kSize));
    if (!person.ok()) return person.status();
    PersonLocks::SharedGuard person_lock(ctx_->person_locks, *person);
    auto dek = ctx_->PersonKey(*person, EngineContext::LostKey::kNotFound);
    // Erased, awaiting purge; or a lost key (Verify reports it).
    if (dek.status().IsErased() || dek.status().IsNotFound()) return Status::OK();
    if (!dek.ok()) return dek.status();
    Keyring keyring(ctx_->keys.get(), *person, *dek);
    Status s = ctx_->data->View([&](storage::ReadTxn& txn) -> Status {
      std::string_view row;
      Status g = txn.Get(ctx_->tables.records, record_key, &row);
      if (g.IsNotFound()) return Status::OK();  // deleted since the index was read
      if (!g.ok()) return g;
      std::string plain;
      bool shredded = false;
      if (Status o = keyring.Open(TableId::kRecords, record_key, row, &plain, &shredded); !o.ok()) {
        return o.WithContext("record of person " + person->ToHex());
      }
      if (shredded) return Status::OK();  // its category was erased
      FoundRecord found{*person, {}};
      std::optional<std::int64_t> written;
      Status d = codec::DecodeRecord(plain, &found.record, &written);
      crypto::Wipe(&plain);
      if (!d.ok()) return d.WithContext("record of person " + person->ToHex());
      auto expired = ctx_->retention->RecordExpired(txn, rules, found.record.collection, record_key, written, now);
      if (!expired.ok()) return expired.status();
      if (!*expired && !RecordMetadataExpired(found.record, now)) Push(std::move(found), std::string(record_key));
      return Status::OK();
    });
    std::set<std::uint32_t>& slots = batch_keys_[*person];
    for (std::uint32_t slot : keyring.LiveCategorySlots()) slots.insert(slot);
    return s;
  }

  Status Fill() override {
    if (prefix_.empty()) {
      if (Status s = Start(); !s.ok()) return s;
    }
    batch_keys_.clear();  // nothing is buffered when Fill runs
    const auto rules = ctx_->retention->rules();
    const std::int64_t now = ctx_->Now();
    if (!reread_.empty()) {
      // The entries an erasure made stale, each read again by itself.
      const std::vector<std::string> again = std::move(reread_);
      reread_.clear();
      for (const std::string& k : again) {
        if (Status r = Read(k, *rules, now); !r.ok()) return r;
      }
      return Status::OK();
    }
    // Each entry costs a random read and an AEAD open, so the first batch is
    // small and batches double up to iterator_batch_size: a caller that
    // reads the first page pays for about that page, not for a whole batch.
    const std::size_t limit = std::min(next_batch_, ctx_->options.iterator_batch_size);
    next_batch_ = std::min(next_batch_ * 2, ctx_->options.iterator_batch_size);
    std::vector<std::string> record_keys;
    Status s = ctx_->data->View([&](storage::ReadTxn& txn) -> Status {
      auto cursor = txn.OpenCursor(ctx_->record_index->table());
      if (!cursor.ok()) return cursor.status();
      auto& c = **cursor;
      Status m = c.Seek(next_key_);
      for (; m.ok() && c.Valid() && HasPrefix(c.key(), prefix_); m = c.Next()) {
        if (record_keys.size() >= limit) return Status::OK();
        if (c.key().size() <= entry_prefix_size_) return Status::Corruption("record index entry is too short");
        if (query_.field == RecordQuery::Field::kExpiresBefore &&
            RecordIndex::EntryExpiry(c.key()) >= query_.before_ms) {
          break;
        }
        record_keys.emplace_back(c.key().substr(entry_prefix_size_));
        next_key_ = Successor(c.key());
      }
      if (!m.ok()) return m;
      exhausted_ = true;
      return Status::OK();
    });
    if (!s.ok()) return s;
    for (const std::string& k : record_keys) {
      if (k.size() <= PersonId::kSize) return Status::Corruption("record index entry is too short");
      if (Status r = Read(k, *rules, now); !r.ok()) return r;
    }
    return Status::OK();
  }

  // The entries come from several people: each is read again by its record
  // key, before the index is read on from next_key_.
  void Reposition(const std::deque<Entry>& entries, std::size_t first) override {
    reread_.clear();
    for (std::size_t i = first; i < entries.size(); ++i) reread_.push_back(entries[i].source);
  }
  bool SamePlace(const Entry& a, const Entry& b) const override { return a.source == b.source; }
  // Stale only if a key of a buffered record's person is gone.
  bool EntriesStale() override {
    for (const auto& [person, slots] : batch_keys_) {
      if (!KeysStillThere(ctx_, person, slots).ok()) return true;
    }
    return false;
  }

  RecordQuery query_;
  std::vector<std::string> reread_;  // record keys Fill reads first
  // The people of the buffered batch and the category key slots its
  // records were opened with.
  std::map<PersonId, std::set<std::uint32_t>> batch_keys_;
  std::string prefix_, next_key_;
  std::size_t entry_prefix_size_ = 0;  // bytes before the record key in an entry
  std::size_t next_batch_ = 16;        // entries the next Fill reads
};

// Store::PeopleWithConsent: one prefix of consent_by_purpose, in batches.
class ConsentPeopleIteratorImpl final : public BatchedIterator<PersonId> {
 public:
  ConsentPeopleIteratorImpl(EngineContext* ctx, std::string purpose, bool granted)
      : BatchedIterator(ctx, /*personal=*/true), purpose_(std::move(purpose)),
        prefix_(ConsentIndex::Prefix(purpose_, granted)),
        next_key_(prefix_) {
    Refill();
  }

 private:
  Status Fill() override {
    if (!checked_) {
      if (auto basis = ctx_->policy->Basis(purpose_); !basis.ok()) {
        return Status::InvalidArgument("purpose '" + purpose_ + "' is not registered");
      }
      checked_ = true;
    }
    const std::size_t limit = ctx_->options.iterator_batch_size;
    return ctx_->data->View([&](storage::ReadTxn& txn) -> Status {
      auto ready = ctx_->consent_index->Ready(txn);
      if (!ready.ok()) return ready.status();
      if (!*ready) {
        return Status::FailedPrecondition("the consent index of this store is not built yet: open it writable once");
      }
      auto cursor = txn.OpenCursor(ctx_->consent_index->table());
      if (!cursor.ok()) return cursor.status();
      auto& c = **cursor;
      Status m = c.Seek(next_key_);
      for (; m.ok() && c.Valid() && HasPrefix(c.key(), prefix_); m = c.Next()) {
        if (Buffered() >= limit) return Status::OK();
        next_key_ = Successor(c.key());
        auto person = PersonIdFromBytes(c.key().substr(prefix_.size()));
        if (!person.ok()) return person.status();
        // Erased: the `erased` marker, or (its data side not applied yet)
        // no key any more.
        std::string_view marker;
        Status e = txn.Get(ctx_->tables.erased, person->view(), &marker);
        if (e.ok()) continue;
        if (!e.IsNotFound()) return e;
        auto key = ctx_->PersonKey(*person, EngineContext::LostKey::kNotFound);
        if (key.status().IsErased() || key.status().IsNotFound()) continue;
        if (!key.ok()) return key.status();
        Push(*person);
      }
      if (!m.ok()) return m;
      exhausted_ = true;
      return Status::OK();
    });
  }

  // An erased person's ID is left out from then on.
  void Reposition(const std::deque<Entry>& entries, std::size_t first) override {
    next_key_ = prefix_ + std::string(entries[first].value.view());
  }
  bool SamePlace(const Entry& a, const Entry& b) const override { return a.value == b.value; }

  std::string purpose_, prefix_, next_key_;
  bool checked_ = false;
};

}  // namespace

Status KeysStillThere(EngineContext* ctx, const PersonId& person, const std::set<std::uint32_t>& category_slots) {
  CallGuard guard(*ctx);
  if (!guard.ok()) return guard.status();
  PersonLocks::SharedGuard person_lock(ctx->person_locks, person);
  auto dek = ctx->PersonKey(person);
  if (!dek.ok()) return dek.status();
  for (std::uint32_t slot : category_slots) {
    auto erased = ctx->keys->IsSlotErased(person, slot);
    if (!erased.ok()) return erased.status();
    if (*erased) return Status::Busy("a data category of person " + person.ToHex() + " was erased");
  }
  return Status::OK();
}

std::unique_ptr<EventIterator> NewEventIterator(EngineContext* ctx, const PersonId& id, TimeRange range,
                                                EntryFilter<StoredEvent> keep, LeaseEnded lease_ended) {
  return std::make_unique<EventIteratorImpl>(ctx, id, range, std::move(keep), std::move(lease_ended));
}

std::unique_ptr<RecordIterator> NewRecordIterator(EngineContext* ctx, const PersonId& id,
                                                  std::string collection, std::string prefix,
                                                  EntryFilter<Record> keep, LeaseEnded lease_ended) {
  return std::make_unique<RecordIteratorImpl>(ctx, id, std::move(collection), std::move(prefix), std::move(keep),
                                              std::move(lease_ended));
}

std::unique_ptr<AnalyticsIterator> NewAnalyticsIterator(EngineContext* ctx, const AnalyticsQuery& query) {
  return std::make_unique<AnalyticsIteratorImpl>(ctx, query);
}

std::unique_ptr<Iterator<FoundRecord>> NewFoundRecordIterator(EngineContext* ctx, const RecordQuery& query) {
  return std::make_unique<FoundRecordIteratorImpl>(ctx, query);
}

std::unique_ptr<Iterator<PersonId>> NewConsentPeopleIterator(EngineContext* ctx, std::string purpose, bool granted) {
  return std::make_unique<ConsentPeopleIteratorImpl>(ctx, std::move(purpose), granted);
}

}  // namespace shredkv::engine
