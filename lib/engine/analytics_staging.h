// Analytics rows between ingest and their place in `analytics` (format 3,
// docs/format.md §5.4.1, docs/security.md §5.1).
//
// An analytics row's key (bucket ‖ row id, engine/analytics_link.h) is a
// pseudo-random point of its bucket, so that key order says nothing about
// write order. Written at ingest, every row would dirty its own leaf page
// of the bucket. So the write path stages it instead: `analytics_staged`
// maps the event's sequence number (fixed64be, in the clear in the event
// key already) to
//   sealed_row(store cipher; K_stage(g); table 34; key = seq; analytics key ‖ payload)
// with g = seq >> 30, K_stage(0) = H32(index key; "analytics-staging") and
// K_stage(g) = H32(index key; "analytics-staging", fixed64be(g)): a new key
// every 2^30 events, so no key seals more rows than AES-GCM's random 96-bit
// nonces allow (2^32 messages; 2^30 keeps the collision chance below
// 2^-37). Appended in sequence
// order. Materialise moves staged rows into `analytics` in one transaction,
// sorted by key: the rows of a bucket staged whole are written as a
// sequential run, and a batch merged into a bucket that already has rows
// touches each of its leaf pages once for many rows. Readers that find a
// person's rows by event (export, rectification, erasure) look in the
// staging first (Find), then in `analytics`.
// Thread safety: const methods only; the caller's transaction serialises.
#ifndef SHREDKV_ENGINE_ANALYTICS_STAGING_H_
#define SHREDKV_ENGINE_ANALYTICS_STAGING_H_

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "crypto/aead.h"
#include "crypto/secure_memory.h"
#include "shredkv/status.h"
#include "storage/environment.h"

namespace shredkv::engine {

// The write path materialises every staged row in the transaction that
// brings the staging to this many rows, so the staging (and the memory a
// materialisation sorts in) stays bounded: ~100 bytes a row.
inline constexpr std::uint64_t kMaxStagedAnalyticsRows = 1u << 18;

// One staged analytics row.
struct StagedRow {
  std::uint64_t seq = 0;
  std::string key;      // its key in `analytics` (bucket ‖ row id)
  std::string payload;  // its payload there (codec::EncodeAnalytics), before the checksum
};

class AnalyticsStaging {
 public:
  // `staged` and `analytics` are the two tables; `index_key` the store's
  // index key (the staging keys are derived from it, one per 2^30 event
  // sequence numbers); `cipher` seals new rows.
  AnalyticsStaging(storage::Table staged, storage::Table analytics, const crypto::SecretKey& index_key,
                   crypto::CipherId cipher);

  // Buffers a caller reuses across Stage calls (the write path stages a row
  // an event: no allocation a row once they have grown).
  struct Scratch {
    std::string plain, row;
    ~Scratch() { crypto::Wipe(&plain); }
  };
  // Stages the analytics row key → payload of the event `seq`, which is
  // greater than every staged seq (the event counter only grows).
  [[nodiscard]] Status Stage(storage::WriteTxn& txn, std::uint64_t seq, std::string_view key,
                             std::string_view payload, Scratch* scratch) const;
  // Rewrites the staged row of `seq` (rectification), freshly sealed.
  [[nodiscard]] Status Restage(storage::WriteTxn& txn, const StagedRow& row) const;
  // The staged row of the event `seq`: NotFound if it has none (its row is
  // in `analytics`, or was never written). Corruption or AuthenticationFailed
  // if it does not open.
  [[nodiscard]] Status Find(const storage::ReadTxn& txn, std::uint64_t seq, StagedRow* out) const;
  // OK if absent.
  [[nodiscard]] Status Remove(storage::WriteTxn& txn, std::uint64_t seq) const;
  // Rows staged, as of `txn`.
  Result<std::uint64_t> Count(const storage::ReadTxn& txn) const { return txn.Count(staged_); }

  // Rows staged whose bucket starts at or before `last_bucket_ms` (what
  // Materialise(txn, last_bucket_ms) would move), as of `txn`: every row
  // is opened. A row that does not open is not counted (Verify reports
  // it; a count in the stats must not fail over it).
  Result<std::uint64_t> CountUpTo(const storage::ReadTxn& txn, std::int64_t last_bucket_ms) const;

  // What Materialise does with a staged row that does not open.
  enum class Unreadable { kFail, kKeep };
  // Moves staged rows into `analytics`, sorted by key, and deletes them from
  // the staging: all of them, or with `last_bucket_ms` only those whose
  // bucket starts at or before it. Returns the rows moved; with 0 nothing
  // was written. A staged row that does not open fails the call (kFail:
  // maintenance and scans report it), or stays where it is (kKeep: the write
  // path, which must not stop every ingest over one damaged row; Verify
  // reports it).
  Result<std::uint64_t> Materialise(storage::WriteTxn& txn, std::optional<std::int64_t> last_bucket_ms,
                                    Unreadable unreadable = Unreadable::kFail) const;
  // Every staged row whose analytics key is in [from_key, to_key) (to_key
  // empty: no end), sorted by key: what a scan of a store that cannot
  // materialise (a read-only open) merges with `analytics`.
  Result<std::vector<StagedRow>> Collect(const storage::ReadTxn& txn, std::string_view from_key,
                                         std::string_view to_key) const;

  // Opens the staged row stored at `stored_key` (a row of the staged
  // table, as a cursor returns it). Errors as Find.
  [[nodiscard]] Status Open(std::string_view stored_key, std::string_view value, StagedRow* out) const;
  storage::Table table() const { return staged_; }

 private:
  // Opens a stored staged row into `*plain` (analytics key ‖ payload).
  [[nodiscard]] Status OpenPlain(std::string_view stored_key, std::string_view value, std::string* plain) const;
  // Calls `fn` with every stored staged row (key, sealed value) in seq
  // order; stops at its first error.
  [[nodiscard]] Status Walk(const storage::ReadTxn& txn,
                            const std::function<Status(std::string_view, std::string_view)>& fn) const;
  // Seals key ‖ payload (assembled in *plain, wiped after) into *out.
  void Seal(std::string_view stored_key, std::string_view key, std::string_view payload, std::string* plain,
            std::string* out) const;

  // The staging key of the row of event `seq` (its generation seq >> 30).
  const crypto::SecretKey& KeyFor(std::uint64_t seq) const;

  storage::Table staged_, analytics_;
  const crypto::SecretKey* index_key_;
  crypto::CipherId cipher_;
  std::vector<crypto::SecretKey> first_keys_;  // generations 0..3, made at construction
  mutable std::mutex later_mu_;
  mutable std::map<std::uint64_t, crypto::SecretKey> later_keys_;  // generations >= 4, on first use
};

}  // namespace shredkv::engine

#endif  // SHREDKV_ENGINE_ANALYTICS_STAGING_H_
