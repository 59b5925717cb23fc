// Who decided what for a purpose, without scanning everyone (issue 17):
// the people whose latest consent decision for a purpose is a withdrawal —
// an objection (Art. 21) — or a grant. docs/format.md §5.6.1.
//
//   consent_by_purpose:  purpose ‖ 0x00 ‖ u8(granted) ‖ person → plain("")
//
// One entry per `consent` row (person ‖ purpose → granted, time), written
// and replaced with it; purpose names are already in the clear in `consent`
// keys, so the index shows nothing that table does not. Stores made before
// the index get it built once, at the first writable open (data meta
// `consent_index` marks it done).
// Thread safety: runs in the caller's transaction; Backfill takes its own.
#ifndef SHREDKV_ENGINE_CONSENT_INDEX_H_
#define SHREDKV_ENGINE_CONSENT_INDEX_H_

#include <string>
#include <string_view>

#include "shredkv/status.h"
#include "shredkv/types.h"
#include "storage/environment.h"

namespace shredkv::engine {

class ConsentIndex {
 public:
  ConsentIndex(storage::Table index, storage::Table consent, storage::Table meta)
      : index_(index), consent_(consent), meta_(meta) {}

  // Records the person's latest decision for `purpose`.
  [[nodiscard]] Status Set(storage::WriteTxn& txn, const PersonId& person, std::string_view purpose,
                           bool granted) const;
  // Removes the entry of the consent row stored at `consent_key`
  // (person ‖ purpose), before the purge deletes the row.
  [[nodiscard]] Status Remove(storage::WriteTxn& txn, std::string_view consent_key) const;
  // The prefix of the entries of people whose decision for `purpose` is
  // `granted`; an entry's key is this prefix followed by the person ID.
  static std::string Prefix(std::string_view purpose, bool granted);
  // Whether the index covers every consent row (false only on a read-only
  // open of a store made before the index).
  Result<bool> Ready(const storage::ReadTxn& txn) const;
  // Marks a new, empty store's index complete. REQUIRES: in its first txn.
  [[nodiscard]] Status MarkReady(storage::WriteTxn& txn) const;
  // Builds the entries of every consent row unless the index is marked
  // complete, in transactions of at most 10,000 rows, then marks it.
  [[nodiscard]] Status Backfill(storage::Environment& env) const;

  storage::Table table() const { return index_; }

 private:
  storage::Table index_, consent_, meta_;
};

}  // namespace shredkv::engine

#endif  // SHREDKV_ENGINE_CONSENT_INDEX_H_
