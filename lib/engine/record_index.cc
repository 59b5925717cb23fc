#include "engine/record_index.h"

#include <algorithm>
#include <vector>

#include "codec/sealed.h"
#include "crypto/keyed_hash.h"
#include "util/coding.h"

namespace shredkv::engine {

namespace {

using codec::TableId;

constexpr std::size_t kHashSize = 16;
constexpr std::uint8_t kExpiryField = 3;

std::uint8_t FieldByte(RecordQuery::Field field) {
  return field == RecordQuery::Field::kPurpose ? 1 : 2;
}

}  // namespace

std::string RecordIndex::QueryPrefix(RecordQuery::Field field, std::string_view value) const {
  const std::uint8_t f = FieldByte(field);
  std::string prefix(1, static_cast<char>(f));
  prefix += crypto::KeyedHash(*index_key_, kHashSize, {"record-meta", std::string_view(prefix), value});
  return prefix;
}

std::string RecordIndex::ExpiryPrefix() { return std::string(1, static_cast<char>(kExpiryField)); }

std::int64_t RecordIndex::EntryExpiry(std::string_view entry_key) {
  return util::SignedFromOrdered(util::DecodeFixed64BE(entry_key.data() + 1));
}

namespace {

// The entry prefixes a refs payload lists: varint(n) ‖ lp(prefix)*n.
Status ParseRefs(std::string_view refs, std::vector<std::string>* prefixes) {
  util::ByteReader r(refs);
  std::uint64_t n = 0;
  if (!r.GetVarint64(&n) || n > refs.size()) return Status::Corruption("record index refs are malformed");
  for (std::uint64_t i = 0; i < n; ++i) {
    std::string_view prefix;
    if (!r.GetLengthPrefixed(&prefix) || prefix.empty()) return Status::Corruption("record index refs are truncated");
    prefixes->emplace_back(prefix);
  }
  if (!r.done()) return Status::Corruption("record index refs have trailing bytes");
  return Status::OK();
}

}  // namespace

Status RecordIndex::DeleteListed(storage::WriteTxn& txn, std::string_view record_key, std::string_view refs) const {
  std::vector<std::string> prefixes;
  if (Status p = ParseRefs(refs, &prefixes); !p.ok()) return p;
  for (const std::string& prefix : prefixes) {
    if (Status d = txn.Delete(index_, prefix + std::string(record_key)); !d.ok()) return d;
  }
  return Status::OK();
}

Status RecordIndex::WalkExpired(const storage::ReadTxn& txn, std::int64_t now_ms,
                                const std::function<bool(std::string_view)>& entry) const {
  const std::string prefix = ExpiryPrefix();
  auto cursor = txn.OpenCursor(index_);
  if (!cursor.ok()) return cursor.status();
  auto& c = **cursor;
  for (Status m = c.Seek(prefix);; m = c.Next()) {
    if (!m.ok()) return m;
    if (!c.Valid() || c.key().substr(0, 1) != prefix) break;
    if (c.key().size() <= 9) return Status::Corruption("record index expiry entry is too short");
    if (EntryExpiry(c.key()) > now_ms || !entry(c.key())) break;
  }
  return Status::OK();
}

Result<std::vector<std::string>> RecordIndex::Expired(const storage::ReadTxn& txn, std::int64_t now_ms,
                                                      std::size_t limit) const {
  std::vector<std::string> out;
  if (limit == 0) return out;
  Status w = WalkExpired(txn, now_ms, [&](std::string_view key) {
    out.emplace_back(key);
    return out.size() < limit;
  });
  if (!w.ok()) return w;
  return out;
}

Result<std::uint64_t> RecordIndex::CountExpired(const storage::ReadTxn& txn, std::int64_t now_ms) const {
  std::uint64_t n = 0;
  Status w = WalkExpired(txn, now_ms, [&n](std::string_view) {
    ++n;
    return true;
  });
  if (!w.ok()) return w;
  return n;
}

Status RecordIndex::Remove(storage::WriteTxn& txn, std::string_view record_key) const {
  std::string refs;
  Status g = codec::ReadPlain(txn, refs_, TableId::kRecordIndexRefs, record_key, &refs);
  if (g.IsNotFound()) return Status::OK();
  if (!g.ok()) return g;
  if (Status d = DeleteListed(txn, record_key, refs); !d.ok()) return d;
  return txn.Delete(refs_, record_key);
}

Status RecordIndex::Update(storage::WriteTxn& txn, std::string_view record_key, const RecordMetadata& m) const {
  std::vector<std::string> prefixes;
  for (const std::string& v : m.purposes) prefixes.push_back(QueryPrefix(RecordQuery::Field::kPurpose, v));
  for (const std::string& v : m.shared_with) prefixes.push_back(QueryPrefix(RecordQuery::Field::kRecipient, v));
  if (m.expires_ms != 0) {
    std::string p = ExpiryPrefix();
    util::PutFixed64BE(&p, util::OrderedFromSigned(m.expires_ms));
    prefixes.push_back(std::move(p));
  }
  std::string refs;
  if (!prefixes.empty()) {
    util::PutVarint64(&refs, prefixes.size());
    for (const std::string& p : prefixes) util::PutLengthPrefixed(&refs, p);
  }
  // Only what changed is written: a record rewritten with the same
  // metadata (a value update) touches no page of the index, and a changed
  // recipient touches that recipient's entries only.
  std::string old_refs;
  Status g = codec::ReadPlain(txn, refs_, TableId::kRecordIndexRefs, record_key, &old_refs);
  if (!g.ok() && !g.IsNotFound()) return g;
  if (g.ok() && old_refs == refs) return Status::OK();
  std::vector<std::string> old_prefixes;
  if (g.ok()) {
    if (Status p = ParseRefs(old_refs, &old_prefixes); !p.ok()) return p;
  }
  auto listed = [](const std::vector<std::string>& v, const std::string& p) {
    return std::find(v.begin(), v.end(), p) != v.end();
  };
  for (const std::string& p : old_prefixes) {
    if (listed(prefixes, p)) continue;
    if (Status d = txn.Delete(index_, p + std::string(record_key)); !d.ok()) return d;
  }
  for (const std::string& p : prefixes) {
    if (listed(old_prefixes, p)) continue;
    const std::string key = p + std::string(record_key);
    if (Status s = txn.Put(index_, key, codec::PlainRow(TableId::kRecordIndex, key, "")); !s.ok()) return s;
  }
  if (prefixes.empty()) return g.ok() ? txn.Delete(refs_, record_key) : Status::OK();
  return txn.Put(refs_, record_key, codec::PlainRow(TableId::kRecordIndexRefs, record_key, refs));
}

Status RecordIndex::PurgePerson(storage::WriteTxn& txn, const PersonId& person, std::uint64_t budget,
                                std::uint64_t* removed, bool* done) const {
  *removed = 0;
  std::vector<std::pair<std::string, std::string>> rows;  // record key, refs payload
  const storage::WriteTxn::RowFilter collect = [&rows](std::string_view key, std::string_view value) {
    rows.emplace_back(key, value);
    return true;
  };
  bool more = false;
  auto n = txn.DeletePrefix(refs_, person.view(), budget, collect, &more);
  if (!n.ok()) return n.status();
  for (const auto& [record_key, value] : rows) {
    std::string_view payload;
    // A damaged refs row cannot name its entries: they stay, unreachable
    // (Verify reports the row; the entries name no value in the clear).
    if (!codec::OpenPlain(TableId::kRecordIndexRefs, record_key, value, &payload).ok()) continue;
    if (Status d = DeleteListed(txn, record_key, payload); !d.ok()) return d;
  }
  *removed = *n;
  *done = !more;
  return Status::OK();
}

}  // namespace shredkv::engine
