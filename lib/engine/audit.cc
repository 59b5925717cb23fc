#include "engine/audit.h"

#include "codec/sealed.h"
#include "crypto/keyed_hash.h"
#include "util/coding.h"

namespace shredkv::engine {
namespace {

using codec::TableId;
constexpr std::size_t kHashSize = 32;


}  // namespace

void EncodeAuditEntry(const AuditEntry& e, std::string* out) {
  out->push_back(static_cast<char>(e.kind));
  util::PutFixed64BE(out, util::OrderedFromSigned(e.time_ms));
  util::PutLengthPrefixed(out, e.request_id);
  util::PutFixed64BE(out, e.count1);
  util::PutFixed64BE(out, e.count2);
  out->push_back(static_cast<char>(e.mode));
  if (e.kind == AuditKind::kProcessingRead) util::PutLengthPrefixed(out, e.subject);
}

Status DecodeAuditEntry(std::string_view in, AuditEntry* e) {
  util::ByteReader r(in);
  std::uint8_t kind = 0;
  std::uint64_t time = 0;
  std::string_view request;
  std::string_view subject;
  if (!r.GetU8(&kind) || !r.GetFixed64BE(&time) || !r.GetLengthPrefixed(&request) || !r.GetFixed64BE(&e->count1) ||
      !r.GetFixed64BE(&e->count2) || !r.GetU8(&e->mode) || kind < 1 || kind > 8 ||
      (kind == static_cast<std::uint8_t>(AuditKind::kProcessingRead) && !r.GetLengthPrefixed(&subject)) ||
      !r.done()) {
    return Status::Corruption("audit entry malformed");
  }
  e->subject = std::string(subject);
  e->kind = static_cast<AuditKind>(kind);
  e->time_ms = util::SignedFromOrdered(time);
  e->request_id = std::string(request);
  return Status::OK();
}

Result<std::string> AuditLog::Append(storage::WriteTxn& txn, const AuditEntry& entry) {
  std::uint64_t seq = 1;
  std::string prev(kHashSize, '\0');
  {
    auto cursor = txn.OpenCursor(audit_);
    if (!cursor.ok()) return cursor.status();
    auto& c = **cursor;
    if (Status m = c.SeekToLast(); !m.ok()) return m;
    if (c.Valid()) {
      std::string_view payload;
      if (Status o = codec::OpenPlain(TableId::kAudit, c.key(), c.value(), &payload); !o.ok()) {
        return o.WithContext("last audit entry");
      }
      if (c.key().size() != 8 || payload.size() < 2 * kHashSize) return Status::Corruption("last audit entry malformed");
      seq = util::DecodeFixed64BE(c.key().data()) + 1;
      prev = std::string(payload.substr(payload.size() - kHashSize));
    }
  }
  std::string body;
  EncodeAuditEntry(entry, &body);
  const std::string hash = crypto::KeyedHash(*key_, kHashSize, {"audit", prev, body});
  std::string key;
  util::PutFixed64BE(&key, seq);
  std::string row;
  codec::SealPlain(TableId::kAudit, key, body + prev + hash, &row);
  if (Status p = txn.Put(audit_, key, row); !p.ok()) return p;
  if (entry.kind == AuditKind::kErase || entry.kind == AuditKind::kEraseCategory) {
    std::string_view existing;
    Status g = txn.Get(by_request_, entry.request_id, &existing);
    if (g.ok()) return Status::AlreadyExists("request '" + entry.request_id + "' has an audit entry");
    if (!g.IsNotFound()) return g;
    std::string r;
    codec::SealPlain(TableId::kAuditByRequest, entry.request_id, key, &r);
    if (Status p = txn.Put(by_request_, entry.request_id, r); !p.ok()) return p;
  }
  return util::HexEncode(hash);
}

Result<std::string> AuditLog::HashOfRequest(storage::ReadTxn& txn, std::string_view request_id) {
  std::string_view row, seq_key, payload;
  if (Status g = txn.Get(by_request_, request_id, &row); !g.ok()) return g;
  if (Status o = codec::OpenPlain(TableId::kAuditByRequest, request_id, row, &seq_key); !o.ok()) return o;
  std::string k(seq_key);
  if (Status g = txn.Get(audit_, k, &row); !g.ok()) {
    return g.IsNotFound() ? Status::Corruption("audit index names a missing entry") : g;
  }
  if (Status o = codec::OpenPlain(TableId::kAudit, k, row, &payload); !o.ok()) return o;
  if (payload.size() < 2 * kHashSize) return Status::Corruption("audit entry malformed");
  return util::HexEncode(payload.substr(payload.size() - kHashSize));
}

Result<AuditVerification> AuditLog::Verify(storage::ReadTxn& txn) {
  AuditVerification v;
  std::string prev(kHashSize, '\0');
  auto cursor = txn.OpenCursor(audit_);
  if (!cursor.ok()) return cursor.status();
  auto& c = **cursor;
  std::uint64_t expected = 1;
  auto fail = [&](std::string why) {
    v.intact = false;
    v.problem = "entry " + std::to_string(expected) + ": " + std::move(why);
    return v;
  };
  for (Status m = c.SeekToFirst(); c.Valid() || !m.ok(); m = c.Next(), ++expected) {
    if (!m.ok()) return m;
    std::string_view payload;
    if (!codec::OpenPlain(TableId::kAudit, c.key(), c.value(), &payload).ok()) return fail("checksum mismatch");
    if (c.key().size() != 8 || util::DecodeFixed64BE(c.key().data()) != expected) return fail("sequence gap");
    if (payload.size() < 2 * kHashSize + 1) return fail("too short");
    const std::string_view body = payload.substr(0, payload.size() - 2 * kHashSize);
    const std::string_view stored_prev = payload.substr(body.size(), kHashSize);
    const std::string_view stored_hash = payload.substr(body.size() + kHashSize);
    if (stored_prev != prev) return fail("previous hash does not match");
    if (crypto::KeyedHash(*key_, kHashSize, {"audit", prev, body}) != stored_hash) return fail("hash does not match");
    prev = std::string(stored_hash);
    ++v.entries;
  }
  v.intact = true;
  v.head_hash = v.entries == 0 ? "" : util::HexEncode(prev);
  return v;
}

Result<std::vector<AuditRecord>> AuditLog::Read(storage::ReadTxn& txn, std::uint64_t after_seq, std::size_t max) {
  std::vector<AuditRecord> out;
  if (after_seq == UINT64_MAX) return out;  // nothing comes after the last possible entry
  auto cursor = txn.OpenCursor(audit_);
  if (!cursor.ok()) return cursor.status();
  auto& c = **cursor;
  std::string start;
  util::PutFixed64BE(&start, after_seq + 1);
  Status m = c.Seek(start);
  for (; m.ok() && c.Valid() && out.size() < max; m = c.Next()) {
    std::string_view payload;
    if (Status o = codec::OpenPlain(TableId::kAudit, c.key(), c.value(), &payload); !o.ok()) return o;
    if (c.key().size() != 8 || payload.size() < 2 * kHashSize + 1) return Status::Corruption("audit entry malformed");
    AuditEntry e;
    const std::string_view body = payload.substr(0, payload.size() - 2 * kHashSize);
    if (Status d = DecodeAuditEntry(body, &e); !d.ok()) return d;
    AuditRecord rec;
    rec.seq = util::DecodeFixed64BE(c.key().data());
    rec.action = static_cast<AuditAction>(e.kind);
    rec.time_ms = e.time_ms;
    rec.request_id = std::move(e.request_id);
    rec.count1 = e.count1;
    rec.count2 = e.count2;
    if (e.kind == AuditKind::kProcessingRead) {
      rec.purpose = std::move(rec.request_id);
      rec.request_id.clear();
      rec.subject = util::HexEncode(e.subject);
    }
    if (e.kind == AuditKind::kErase || e.kind == AuditKind::kEraseCategory) {
      if (e.mode > static_cast<std::uint8_t>(AnalyticsOnErase::kDelete)) {
        return Status::Corruption("audit entry has an unknown analytics mode");
      }
      rec.analytics = static_cast<AnalyticsOnErase>(e.mode);
    }
    rec.hash = util::HexEncode(payload.substr(payload.size() - kHashSize));
    out.push_back(std::move(rec));
  }
  if (!m.ok()) return m;
  return out;
}

}  // namespace shredkv::engine
