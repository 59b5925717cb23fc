// The change feed (outbox) for recipients of a person's data (GDPR Art. 19).
//
//   outbox  u64 cursor (from 1) → plain(u8 kind ‖ person(16) ‖ i64 time ‖
//                                       varint(n) ‖ lp(name)*n)
// Notices are appended in the same transaction as the change they describe
// and deleted when acknowledged, so delivery is at least once.
// Thread safety: Append runs inside the caller's write transaction.
#ifndef SHREDKV_ENGINE_FEED_H_
#define SHREDKV_ENGINE_FEED_H_

#include <vector>

#include "shredkv/types.h"
#include "storage/environment.h"

namespace shredkv::engine {

class Outbox {
 public:
  explicit Outbox(storage::Table table) : table_(table) {}

  Status Append(storage::WriteTxn& txn, NoticeKind kind, const PersonId& person, std::int64_t time_ms,
                std::vector<std::string> names);
  // Notices with cursor > `after`, at most `max`, oldest first; with
  // `person` set, only that person's.
  Result<std::vector<Notice>> Read(storage::ReadTxn& txn, std::uint64_t after, std::size_t max,
                                   const PersonId* person = nullptr);
  // Deletes notices with cursor <= `cursor` and raises the floor to it
  // (never lowers it). InvalidArgument for a cursor never issued: past the
  // newest, which would make later cursors skip or, past 2^64 - 1, repeat.
  Status Ack(storage::WriteTxn& txn, std::uint64_t cursor);

 private:
  // The newest cursor issued: the last notice's or the floor's (0: none).
  Result<std::uint64_t> NewestCursor(storage::ReadTxn& txn) const;

  storage::Table table_;
};

}  // namespace shredkv::engine

#endif  // SHREDKV_ENGINE_FEED_H_
