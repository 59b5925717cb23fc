#include "engine/analytics_staging.h"

#include <algorithm>
#include <array>

#include "codec/row_codec.h"
#include "codec/sealed.h"
#include "crypto/keyed_hash.h"
#include "engine/analytics_link.h"
#include "util/coding.h"

namespace shredkv::engine {

namespace {

using codec::TableId;

std::string SeqKey(std::uint64_t seq) {
  std::string k;
  util::PutFixed64BE(&k, seq);
  return k;
}

constexpr unsigned kGenerationShift = 30;
constexpr std::uint64_t kFirstGenerations = 4;

crypto::SecretKey StagingKey(const crypto::SecretKey& index_key, std::uint64_t generation) {
  std::string g;
  util::PutFixed64BE(&g, generation);
  std::string bytes = generation == 0 ? crypto::KeyedHash(index_key, crypto::SecretKey::kSize, {"analytics-staging"})
                                      : crypto::KeyedHash(index_key, crypto::SecretKey::kSize, {"analytics-staging", g});
  auto key = crypto::SecretKey::FromBytes(bytes);
  crypto::Wipe(&bytes);
  return std::move(key).value();  // exactly kSize bytes: cannot fail
}

}  // namespace

AnalyticsStaging::AnalyticsStaging(storage::Table staged, storage::Table analytics,
                                   const crypto::SecretKey& index_key, crypto::CipherId cipher)
    : staged_(staged), analytics_(analytics), index_key_(&index_key), cipher_(cipher) {
  for (std::uint64_t g = 0; g < kFirstGenerations; ++g) first_keys_.push_back(StagingKey(index_key, g));
}

const crypto::SecretKey& AnalyticsStaging::KeyFor(std::uint64_t seq) const {
  const std::uint64_t g = seq >> kGenerationShift;
  if (g < kFirstGenerations) return first_keys_[g];
  std::lock_guard lock(later_mu_);
  auto it = later_keys_.find(g);
  if (it == later_keys_.end()) it = later_keys_.emplace(g, StagingKey(*index_key_, g)).first;
  return it->second;  // map nodes are stable
}

void AnalyticsStaging::Seal(std::string_view stored_key, std::string_view key, std::string_view payload,
                            std::string* plain, std::string* out) const {
  plain->clear();
  plain->append(key);
  plain->append(payload);
  out->clear();
  codec::SealRow(cipher_, KeyFor(util::DecodeFixed64BE(stored_key.data())), TableId::kAnalyticsStaged, stored_key,
                 *plain, out);
  crypto::Wipe(plain);
}

Status AnalyticsStaging::OpenPlain(std::string_view stored_key, std::string_view value, std::string* plain) const {
  if (stored_key.size() != 8) return Status::Corruption("staged analytics row has a malformed key");
  if (Status o = codec::OpenRow(KeyFor(util::DecodeFixed64BE(stored_key.data())), TableId::kAnalyticsStaged, stored_key,
                                value, plain);
      !o.ok()) {
    return o.WithContext("staged analytics row");
  }
  if (plain->size() < codec::kAnalyticsKeySize) return Status::Corruption("staged analytics row is truncated");
  return Status::OK();
}

Status AnalyticsStaging::Open(std::string_view stored_key, std::string_view value, StagedRow* out) const {
  std::string plain;
  if (Status o = OpenPlain(stored_key, value, &plain); !o.ok()) return o;
  out->seq = util::DecodeFixed64BE(stored_key.data());
  out->key.assign(plain, 0, codec::kAnalyticsKeySize);
  out->payload.assign(plain, codec::kAnalyticsKeySize);
  crypto::Wipe(&plain);
  return Status::OK();
}

Status AnalyticsStaging::Walk(const storage::ReadTxn& txn,
                              const std::function<Status(std::string_view, std::string_view)>& fn) const {
  auto cursor = txn.OpenCursor(staged_);
  if (!cursor.ok()) return cursor.status();
  auto& c = **cursor;
  for (Status m = c.SeekToFirst();; m = c.Next()) {
    if (!m.ok()) return m;
    if (!c.Valid()) return Status::OK();
    if (Status f = fn(c.key(), c.value()); !f.ok()) return f;
  }
}

Status AnalyticsStaging::Stage(storage::WriteTxn& txn, std::uint64_t seq, std::string_view key,
                               std::string_view payload, Scratch* scratch) const {
  const std::string k = SeqKey(seq);
  Seal(k, key, payload, &scratch->plain, &scratch->row);
  return txn.Append(staged_, k, scratch->row);
}

Status AnalyticsStaging::Restage(storage::WriteTxn& txn, const StagedRow& r) const {
  const std::string k = SeqKey(r.seq);
  std::string plain, row;
  Seal(k, r.key, r.payload, &plain, &row);
  return txn.Put(staged_, k, row);
}

Status AnalyticsStaging::Find(const storage::ReadTxn& txn, std::uint64_t seq, StagedRow* out) const {
  const std::string k = SeqKey(seq);
  std::string_view value;
  if (Status g = txn.Get(staged_, k, &value); !g.ok()) return g;
  return Open(k, value, out);
}

Status AnalyticsStaging::Remove(storage::WriteTxn& txn, std::uint64_t seq) const {
  return txn.Delete(staged_, SeqKey(seq));
}

Result<std::uint64_t> AnalyticsStaging::CountUpTo(const storage::ReadTxn& txn, std::int64_t last_bucket_ms) const {
  std::uint64_t n = 0;
  std::string plain;
  Status w = Walk(txn, [&](std::string_view stored_key, std::string_view value) -> Status {
    if (!OpenPlain(stored_key, value, &plain).ok()) return Status::OK();
    std::int64_t bucket = 0;
    if (codec::DecodeAnalyticsKey(std::string_view(plain).substr(0, codec::kAnalyticsKeySize), &bucket).ok() &&
        bucket <= last_bucket_ms) {
      ++n;
    }
    return Status::OK();
  });
  crypto::Wipe(&plain);
  if (!w.ok()) return w;
  return n;
}

Result<std::uint64_t> AnalyticsStaging::Materialise(storage::WriteTxn& txn,
                                                    std::optional<std::int64_t> last_bucket_ms,
                                                    Unreadable unreadable) const {
  // A row's key is held in its entry, as three big-endian words (the sort
  // compares integers, not bytes behind a pointer); its payload in one
  // arena, payloads back to back. Both are sized from the row count before
  // the walk: a batch may hold kMaxStagedAnalyticsRows rows, and growing
  // them by doubling cost more than opening the rows (copies and page
  // faults of every doubling).
  static_assert(codec::kAnalyticsKeySize == 3 * sizeof(std::uint64_t));
  struct Entry {
    std::array<std::uint64_t, 3> key;
    std::size_t offset;  // of the payload in the arena
    std::uint32_t size;  // of the payload
    std::uint64_t seq;
  };
  auto count = Count(txn);
  if (!count.ok()) return count.status();
  if (*count == 0) return std::uint64_t{0};
  std::vector<Entry> entries;
  entries.reserve(*count);
  std::string arena, plain;
  bool all = true;
  Status w = Walk(txn, [&](std::string_view stored_key, std::string_view value) -> Status {
    const Status o = OpenPlain(stored_key, value, &plain);
    if (!o.ok()) {
      if (unreadable == Unreadable::kFail) return o;
      all = false;  // it stays
      return Status::OK();
    }
    if (last_bucket_ms) {
      std::int64_t bucket = 0;
      if (Status d = codec::DecodeAnalyticsKey(std::string_view(plain).substr(0, codec::kAnalyticsKeySize), &bucket);
          !d.ok()) {
        return d;
      }
      if (bucket > *last_bucket_ms) {
        all = false;
        return Status::OK();
      }
    }
    const std::size_t payload_size = plain.size() - codec::kAnalyticsKeySize;
    if (entries.empty()) arena.reserve(*count * (payload_size + payload_size / 4 + 16));
    Entry e{{util::DecodeFixed64BE(plain.data()), util::DecodeFixed64BE(plain.data() + 8),
             util::DecodeFixed64BE(plain.data() + 16)},
            arena.size(), static_cast<std::uint32_t>(payload_size), util::DecodeFixed64BE(stored_key.data())};
    entries.push_back(e);
    arena.append(plain, codec::kAnalyticsKeySize);
    return Status::OK();
  });
  crypto::Wipe(&plain);
  if (!w.ok()) return w;
  if (entries.empty()) return std::uint64_t{0};
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) { return a.key < b.key; });
  // Rows past the table's last key (new buckets, typically) are appended:
  // full pages instead of half-split ones, and no search per row.
  std::string last_key;
  {
    auto cursor = txn.OpenCursor(analytics_);
    if (!cursor.ok()) return cursor.status();
    if (Status m = (*cursor)->SeekToLast(); !m.ok()) return m;
    if ((*cursor)->Valid()) last_key.assign((*cursor)->key());
  }
  std::string key, row;
  constexpr std::size_t kPrefetchAhead = 8;  // payloads are read in key order: random places of the arena
  for (std::size_t i = 0; i < entries.size(); ++i) {
    if (i + kPrefetchAhead < entries.size()) __builtin_prefetch(arena.data() + entries[i + kPrefetchAhead].offset);
    const Entry& e = entries[i];
    key.clear();
    for (std::uint64_t word : e.key) util::PutFixed64BE(&key, word);
    row.clear();
    codec::SealPlain(TableId::kAnalytics, key, std::string_view(arena).substr(e.offset, e.size), &row);
    Status p = key > last_key ? txn.Append(analytics_, key, row) : txn.Put(analytics_, key, row);
    if (!p.ok()) return p;
  }
  if (all) {
    if (Status c = txn.Clear(staged_); !c.ok()) return c;
  } else {
    std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) { return a.seq < b.seq; });
    for (const Entry& e : entries) {
      if (Status d = Remove(txn, e.seq); !d.ok()) return d;
    }
  }
  return static_cast<std::uint64_t>(entries.size());
}

Result<std::vector<StagedRow>> AnalyticsStaging::Collect(const storage::ReadTxn& txn, std::string_view from_key,
                                                         std::string_view to_key) const {
  std::vector<StagedRow> rows;
  Status w = Walk(txn, [&](std::string_view stored_key, std::string_view value) -> Status {
    StagedRow r;
    if (Status o = Open(stored_key, value, &r); !o.ok()) return o;
    if (r.key >= from_key && (to_key.empty() || r.key < to_key)) rows.push_back(std::move(r));
    return Status::OK();
  });
  if (!w.ok()) return w;
  std::sort(rows.begin(), rows.end(), [](const StagedRow& a, const StagedRow& b) { return a.key < b.key; });
  return rows;
}

}  // namespace shredkv::engine
