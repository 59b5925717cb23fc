#include "engine/record_index.h"

#include <vector>

#include "codec/sealed.h"
#include "crypto/keyed_hash.h"
#include "util/coding.h"

namespace shredkv::engine {

namespace {

using codec::TableId;

constexpr std::size_t kHashSize = 16;

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

std::string RecordIndex::EntryKey(std::uint8_t field, std::string_view hash, std::string_view record_key) const {
  std::string k(1, static_cast<char>(field));
  k.append(hash);
  k.append(record_key);
  return k;
}

Status RecordIndex::DeleteListed(storage::WriteTxn& txn, std::string_view record_key, std::string_view refs) const {
  util::ByteReader r(refs);
  std::uint64_t n = 0;
  if (!r.GetVarint64(&n) || n > refs.size()) return Status::Corruption("record index refs are malformed");
  for (std::uint64_t i = 0; i < n; ++i) {
    std::uint8_t field = 0;
    std::string_view hash;
    if (!r.GetU8(&field) || !r.GetBytes(kHashSize, &hash)) return Status::Corruption("record index refs are truncated");
    if (Status d = txn.Delete(index_, EntryKey(field, hash, record_key)); !d.ok()) return d;
  }
  if (!r.done()) return Status::Corruption("record index refs have trailing bytes");
  return Status::OK();
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
  if (Status r = Remove(txn, record_key); !r.ok()) return r;
  if (m.purposes.empty() && m.shared_with.empty()) return Status::OK();
  std::string refs;
  util::PutVarint64(&refs, m.purposes.size() + m.shared_with.size());
  for (auto [field, values] : {std::pair{RecordQuery::Field::kPurpose, &m.purposes},
                               std::pair{RecordQuery::Field::kRecipient, &m.shared_with}}) {
    for (const std::string& v : *values) {
      const std::string prefix = QueryPrefix(field, v);
      refs.append(prefix);  // u8(field) ‖ H16
      const std::string key = prefix + std::string(record_key);
      if (Status p = txn.Put(index_, key, codec::PlainRow(TableId::kRecordIndex, key, "")); !p.ok()) return p;
    }
  }
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
