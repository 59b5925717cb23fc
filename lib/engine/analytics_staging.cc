#include "engine/analytics_staging.h"

#include <algorithm>

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

crypto::SecretKey StagingKey(const crypto::SecretKey& index_key) {
  std::string bytes = crypto::KeyedHash(index_key, crypto::SecretKey::kSize, {"analytics-staging"});
  auto key = crypto::SecretKey::FromBytes(bytes);
  crypto::Wipe(&bytes);
  return std::move(key).value();  // exactly kSize bytes: cannot fail
}

}  // namespace

AnalyticsStaging::AnalyticsStaging(storage::Table staged, storage::Table analytics,
                                   const crypto::SecretKey& index_key, crypto::CipherId cipher)
    : staged_(staged), analytics_(analytics), staging_key_(StagingKey(index_key)), cipher_(cipher) {}

void AnalyticsStaging::Seal(std::string_view stored_key, std::string_view key, std::string_view payload,
                            std::string* out) const {
  std::string plain;
  plain.reserve(key.size() + payload.size());
  plain.append(key);
  plain.append(payload);
  codec::SealRow(cipher_, staging_key_, TableId::kAnalyticsStaged, stored_key, plain, out);
  crypto::Wipe(&plain);
}

Status AnalyticsStaging::Open(std::string_view stored_key, std::string_view value, StagedRow* out) const {
  if (stored_key.size() != 8) return Status::Corruption("staged analytics row has a malformed key");
  std::string plain;
  if (Status o = codec::OpenRow(staging_key_, TableId::kAnalyticsStaged, stored_key, value, &plain); !o.ok()) {
    return o.WithContext("staged analytics row");
  }
  if (plain.size() < codec::kAnalyticsKeySize) return Status::Corruption("staged analytics row is truncated");
  out->seq = util::DecodeFixed64BE(stored_key.data());
  out->key.assign(plain, 0, codec::kAnalyticsKeySize);
  out->payload.assign(plain, codec::kAnalyticsKeySize);
  crypto::Wipe(&plain);
  return Status::OK();
}

Status AnalyticsStaging::Stage(storage::WriteTxn& txn, std::uint64_t seq, std::string_view key,
                               std::string_view payload) const {
  const std::string k = SeqKey(seq);
  std::string row;
  Seal(k, key, payload, &row);
  return txn.Append(staged_, k, row);
}

Status AnalyticsStaging::Restage(storage::WriteTxn& txn, const StagedRow& r) const {
  const std::string k = SeqKey(r.seq);
  std::string row;
  Seal(k, r.key, r.payload, &row);
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

Result<std::uint64_t> AnalyticsStaging::Materialise(storage::WriteTxn& txn,
                                                    std::optional<std::int64_t> last_bucket_ms) const {
  std::vector<StagedRow> rows;
  bool all = true;
  {
    auto cursor = txn.OpenCursor(staged_);
    if (!cursor.ok()) return cursor.status();
    auto& c = **cursor;
    for (Status m = c.SeekToFirst();; m = c.Next()) {
      if (!m.ok()) return m;
      if (!c.Valid()) break;
      StagedRow r;
      if (Status o = Open(c.key(), c.value(), &r); !o.ok()) return o;
      if (last_bucket_ms) {
        std::int64_t bucket = 0;
        if (Status d = codec::DecodeAnalyticsKey(r.key, &bucket); !d.ok()) return d;
        if (bucket > *last_bucket_ms) {
          all = false;
          continue;
        }
      }
      rows.push_back(std::move(r));
    }
  }
  if (rows.empty()) return std::uint64_t{0};
  std::sort(rows.begin(), rows.end(), [](const StagedRow& a, const StagedRow& b) { return a.key < b.key; });
  // Rows past the table's last key (new buckets, typically) are appended:
  // full pages instead of half-split ones, and no search per row.
  std::string last_key;
  {
    auto cursor = txn.OpenCursor(analytics_);
    if (!cursor.ok()) return cursor.status();
    if (Status m = (*cursor)->SeekToLast(); !m.ok()) return m;
    if ((*cursor)->Valid()) last_key.assign((*cursor)->key());
  }
  for (const StagedRow& r : rows) {
    const std::string row = codec::PlainRow(TableId::kAnalytics, r.key, r.payload);
    Status p = r.key > last_key ? txn.Append(analytics_, r.key, row) : txn.Put(analytics_, r.key, row);
    if (!p.ok()) return p;
  }
  if (all) {
    if (Status c = txn.Clear(staged_); !c.ok()) return c;
  } else {
    std::sort(rows.begin(), rows.end(), [](const StagedRow& a, const StagedRow& b) { return a.seq < b.seq; });
    for (const StagedRow& r : rows) {
      if (Status d = Remove(txn, r.seq); !d.ok()) return d;
    }
  }
  return static_cast<std::uint64_t>(rows.size());
}

Result<std::vector<StagedRow>> AnalyticsStaging::Collect(const storage::ReadTxn& txn, std::string_view from_key,
                                                         std::string_view to_key) const {
  std::vector<StagedRow> rows;
  auto cursor = txn.OpenCursor(staged_);
  if (!cursor.ok()) return cursor.status();
  auto& c = **cursor;
  for (Status m = c.SeekToFirst();; m = c.Next()) {
    if (!m.ok()) return m;
    if (!c.Valid()) break;
    StagedRow r;
    if (Status o = Open(c.key(), c.value(), &r); !o.ok()) return o;
    if (r.key < from_key || (!to_key.empty() && r.key >= to_key)) continue;
    rows.push_back(std::move(r));
  }
  std::sort(rows.begin(), rows.end(), [](const StagedRow& a, const StagedRow& b) { return a.key < b.key; });
  return rows;
}

}  // namespace shredkv::engine
