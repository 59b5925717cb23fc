// Queries by record metadata without scanning records (issue 17): which
// records — and so which people — carry a purpose or a recipient
// (RecordMetadata::purposes, shared_with). docs/format.md §5.3.1,
// docs/security.md §5.
//
//   record_index:       u8(1|2) ‖ H16(index key; "record-meta", u8(field), value) ‖ record key → plain("")
//                       u8(3) ‖ ordered64(expires_ms) ‖ record key → plain("")
//   record_index_refs:  record key → plain(varint(n) ‖ lp(entry prefix)*n)
//
// with record key = person ‖ H16_coll ‖ H16_key, the key of the record's
// row in `records`. A query seeks one prefix (field ‖ hash) and reads only
// the entries that match, so its cost grows with the result, not the store.
// The refs let a rewrite, a delete and a purge (after the person's key is
// gone) find a record's entries. No value is in the clear: the hashes are
// keyed with the store's index key (equal across people, like collection
// hashes), and the record key names the person as `records` already does.
// Thread safety: stateless apart from the tables; runs in the caller's
// transaction.
#ifndef SHREDKV_ENGINE_RECORD_INDEX_H_
#define SHREDKV_ENGINE_RECORD_INDEX_H_

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "crypto/secure_memory.h"
#include "shredkv/status.h"
#include "shredkv/store.h"
#include "storage/environment.h"

namespace shredkv::engine {

class RecordIndex {
 public:
  RecordIndex(storage::Table index, storage::Table refs, const crypto::SecretKey* index_key)
      : index_(index), refs_(refs), index_key_(index_key) {}

  // Replaces the entries of the record stored at `record_key` by those of
  // `metadata` (none if it is empty), writing only the entries and the refs
  // row that change: the same metadata again writes nothing.
  [[nodiscard]] Status Update(storage::WriteTxn& txn, std::string_view record_key,
                              const RecordMetadata& metadata) const;
  // Removes the record's entries (OK if it has none).
  [[nodiscard]] Status Remove(storage::WriteTxn& txn, std::string_view record_key) const;
  // The expiry entries (whole keys: ExpiryPrefix ‖ ordered64 ‖ record key)
  // of up to `limit` records whose own expiry is at or before `now_ms`,
  // soonest first. The caller deletes each entry and Removes the record's.
  Result<std::vector<std::string>> Expired(const storage::ReadTxn& txn, std::int64_t now_ms, std::size_t limit) const;
  // How many records' own expiry is at or before `now_ms` (the entries
  // Expired would return without a limit; a walk of just those).
  Result<std::uint64_t> CountExpired(const storage::ReadTxn& txn, std::int64_t now_ms) const;
  // The prefix of expiry entries, and an entry's expiry time.
  static std::string ExpiryPrefix();
  static std::int64_t EntryExpiry(std::string_view entry_key);
  // Removes the entries of up to `budget` records of the person (their refs
  // with them). *done once none is left; *removed counts records.
  [[nodiscard]] Status PurgePerson(storage::WriteTxn& txn, const PersonId& person, std::uint64_t budget,
                                   std::uint64_t* removed, bool* done) const;

  // The prefix of the entries of records whose `field` holds `value`; an
  // entry's key is this prefix followed by the record key.
  std::string QueryPrefix(RecordQuery::Field field, std::string_view value) const;

  storage::Table table() const { return index_; }

 private:
  // Calls `entry` with each expiry entry whose expiry is at or before
  // `now_ms`, soonest first, until it returns false.
  Status WalkExpired(const storage::ReadTxn& txn, std::int64_t now_ms,
                     const std::function<bool(std::string_view)>& entry) const;
  // Deletes the entries a refs row lists.
  [[nodiscard]] Status DeleteListed(storage::WriteTxn& txn, std::string_view record_key, std::string_view refs) const;

  storage::Table index_, refs_;
  const crypto::SecretKey* index_key_;
};

}  // namespace shredkv::engine

#endif  // SHREDKV_ENGINE_RECORD_INDEX_H_
