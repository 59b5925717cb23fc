// The audit log: a hash chain of entries that hold no personal data (no
// person IDs, no identifiers): what happened, when, to how many, under which
// request id. Each entry's hash is keyed BLAKE2b-256 over the previous hash
// and the entry, keyed with the store's index key, so rewriting the chain
// needs the root key.
//
//   audit             u64 seq (from 1)  → plain(entry ‖ prev_hash(32) ‖ hash(32))
//   audit_by_request  request id        → plain(u64 seq)    (erase entries)
//   entry := u8(kind) i64(time ms) lp(request id) u64(count1) u64(count2) u8(mode)
//            [lp(subject): kind 8, a processing read, only]
// Thread safety: Append runs inside the caller's write transaction.
#ifndef SHREDKV_ENGINE_AUDIT_H_
#define SHREDKV_ENGINE_AUDIT_H_

#include <cstdint>
#include <string>

#include "crypto/secure_memory.h"
#include "shredkv/store.h"
#include "storage/environment.h"

namespace shredkv::engine {

// Do not change: part of the persistent format.
enum class AuditKind : std::uint8_t {
  kErase = 1,        // count1 = people, mode = analytics mode
  kUnsuppress = 2,   // count1 = 1
  kRotation = 3,     // count1 = new epoch, count2 = keys re-wrapped
  kPurge = 4,        // count1 = rows deleted, count2 = people completed
  kCompaction = 5,   // count1 = bytes before, count2 = bytes after
  kSweep = 6,        // count1 = events + records expired, count2 = analytics rows expired
  kEraseCategory = 7,  // a category erasure: count1 = 1, mode = analytics mode
  kProcessingRead = 8,  // a granted lease: request id = the purpose; subject set
};

struct AuditEntry {
  AuditKind kind = AuditKind::kErase;
  std::int64_t time_ms = 0;
  std::string request_id;
  std::uint64_t count1 = 0;
  std::uint64_t count2 = 0;
  std::uint8_t mode = 0;
  // kProcessingRead only: the person's audit subject (16 bytes), appended to
  // the entry as lp(subject).
  std::string subject{};
};

// An entry's body (the part the chain hash covers, before the two hashes).
void EncodeAuditEntry(const AuditEntry& e, std::string* out);
// Corruption unless `in` is exactly an encoded entry of a known kind.
Status DecodeAuditEntry(std::string_view in, AuditEntry* e);

class AuditLog {
 public:
  AuditLog(storage::Table audit, storage::Table by_request, const crypto::SecretKey* key)
      : audit_(audit), by_request_(by_request), key_(key) {}

  // Appends `entry`; returns the hex chain hash. Erase entries are indexed by
  // request id (AlreadyExists if that request has one).
  Result<std::string> Append(storage::WriteTxn& txn, const AuditEntry& entry);
  // Hex chain hash of the erase entry of `request_id`; NotFound if none.
  Result<std::string> HashOfRequest(storage::ReadTxn& txn, std::string_view request_id);
  Result<AuditVerification> Verify(storage::ReadTxn& txn);
  // Up to `max` entries after `after_seq`, decoded (Store::ReadAudit).
  Result<std::vector<AuditRecord>> Read(storage::ReadTxn& txn, std::uint64_t after_seq, std::size_t max);

 private:
  storage::Table audit_, by_request_;
  const crypto::SecretKey* key_;
};

}  // namespace shredkv::engine

#endif  // SHREDKV_ENGINE_AUDIT_H_
