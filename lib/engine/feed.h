// The change feed (outbox) for recipients of a person's data (GDPR Art. 19).
//
//   outbox  u64 cursor (from 1) → plain(u8 kind ‖ person(16) ‖ i64 time ‖
//                                       varint(n) ‖ lp(name)*n)
// Notices are appended in the same transaction as the change they describe
// and deleted when acknowledged, so delivery is at least once — or, with a
// feed retention rule (RetentionRules::feed), when older than its max age:
// reads skip the expired prefix at once and the sweep deletes it.
// Thread safety: Append runs inside the caller's write transaction.
#ifndef SHREDKV_ENGINE_FEED_H_
#define SHREDKV_ENGINE_FEED_H_

#include <cstdint>
#include <functional>
#include <limits>
#include <vector>

#include "shredkv/options.h"
#include "shredkv/types.h"
#include "storage/environment.h"

namespace shredkv::engine {

// No notice is expired (no feed retention rule).
inline constexpr std::int64_t kNoNoticeExpiry = std::numeric_limits<std::int64_t>::min();

// The expiry cutoff of notices under `rules` at `now_ms`: notices whose time
// is <= it are expired. kNoNoticeExpiry without a feed rule.
std::int64_t NoticeExpiryCutoff(const RetentionRules& rules, std::int64_t now_ms);

class Outbox {
 public:
  explicit Outbox(storage::Table table) : table_(table) {}

  Status Append(storage::WriteTxn& txn, NoticeKind kind, const PersonId& person, std::int64_t time_ms,
                std::vector<std::string> names);
  // Notices with cursor > `after`, at most `max`, oldest first; with
  // `person` set, only that person's. Notices of the expired prefix (see
  // DeleteExpired; `expired_at` from NoticeExpiryCutoff) are skipped: reads
  // hide exactly what the sweep deletes and the counts count.
  Result<std::vector<Notice>> Read(storage::ReadTxn& txn, std::uint64_t after, std::size_t max,
                                   const PersonId* person = nullptr, std::int64_t expired_at = kNoNoticeExpiry);

  struct Expired {
    std::uint64_t deleted = 0;
    bool more = false;  // stopped at `max` with expired notices left
  };
  // Deletes up to `max` notices from the oldest on, while their time is <=
  // `expired_at`: a prefix by cursor, so the cursors left stay consecutive
  // after a gap a consumer can see (its last acknowledged cursor + 1 is
  // below the first it reads). Raises the floor to the last one deleted, so
  // no cursor is issued twice. A notice behind a younger one (the clock went
  // back) waits until the notices before it are gone; reads skip it meanwhile.
  Result<Expired> DeleteExpired(storage::WriteTxn& txn, std::int64_t expired_at, std::uint64_t max);
  // The expired prefix: how many notices DeleteExpired would delete with no
  // limit, and the last one's cursor (0: none). Cost: the prefix's length
  // (each notice's checksum and time, not its names).
  struct Prefix {
    std::uint64_t count = 0;
    std::uint64_t last = 0;
  };
  Result<Prefix> ExpiredPrefix(const storage::ReadTxn& txn, std::int64_t expired_at) const;
  // Deletes notices with cursor <= `cursor` and raises the floor to it
  // (never lowers it). InvalidArgument for a cursor never issued: past the
  // newest, which would make later cursors skip or, past 2^64 - 1, repeat.
  Status Ack(storage::WriteTxn& txn, std::uint64_t cursor);
  // The newest cursor issued: the last notice's or the floor's (0: none).
  // Corruption if the floor row does not open (Verify reports it).
  Result<std::uint64_t> NewestCursor(storage::ReadTxn& txn) const;

 private:
  // Sets the floor (the highest cursor acknowledged or expired) to `cursor`
  // unless it is higher already.
  Status RaiseFloor(storage::WriteTxn& txn, std::uint64_t cursor);
  // Walks the expired prefix (see DeleteExpired): calls `visit` with each
  // notice's key, at most `max` of them; `*more` if an expired one is left.
  Status WalkExpired(const storage::ReadTxn& txn, std::int64_t expired_at, std::uint64_t max,
                     const std::function<Status(std::string_view key)>& visit, bool* more) const;

  storage::Table table_;
};

}  // namespace shredkv::engine

#endif  // SHREDKV_ENGINE_FEED_H_
