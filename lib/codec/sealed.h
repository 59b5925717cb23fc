// Envelopes of stored values.
//
// Encrypted rows (personal data, wrapped keys):
//   sealed_row := u8(format_version=1) u8(cipher) box
//   box        := nonce ciphertext tag                (crypto/aead.h)
//   AD         := "shredkv" 0x00 u8(format_version) u8(cipher) u8(table_id) key
// so a box moved to another table, row or person fails authentication.
//
// Person rows (the `data` rows sealed under one of a person's keys):
//   person_row := u8(person_row_version=2) u8(cipher) u32be(key slot) box
//   AD         := "shredkv" 0x00 u8(2) u8(cipher) u8(table_id) u32be(slot) key
// The slot names which of the person's keys seals the row: 0 is the person
// key, others are keys of one data category (erased on their own). A row
// relabelled to another slot fails authentication.
//
// Plaintext rows (indexes, analytics, metadata):
//   plain_row  := payload fixed64be(XXH3-64(u8(table_id) ‖ key ‖ payload))
// so corruption is reported, not served.
// Thread safety: stateless.
#ifndef SHREDKV_CODEC_SEALED_H_
#define SHREDKV_CODEC_SEALED_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "crypto/aead.h"
#include "crypto/secure_memory.h"
#include "shredkv/status.h"

namespace shredkv::codec {

inline constexpr std::uint8_t kFormatVersion = 1;
inline constexpr std::uint8_t kPersonRowVersion = 2;

// Table identifiers, bound into AD and checksums.
// Do not change: part of the persistent format.
enum class TableId : std::uint8_t {
  // keys environment
  kKeysMeta = 1,
  kEpochs = 2,
  kDeks = 3,
  kFences = 4,
  kSuppressed = 5,
  kPurgeQueue = 6,
  kRequests = 7,
  kCategoryFences = 8,
  kKeyPool = 9,  // person keys committed ahead of use (keys/key_store.h)
  // data environment
  kDataMeta = 16,
  kPeople = 17,
  kIdentIndex = 18,
  kIdentByPerson = 19,
  kProfiles = 20,
  kEvents = 21,
  kRecords = 22,
  kAnalytics = 23,
  kErased = 24,
  kAudit = 25,
  kAuditByRequest = 26,
  kVersions = 27,
  kOutbox = 28,
  kRestrictions = 29,
  kConsent = 30,
  kConsentHistory = 31,
  kExpiry = 32,       // retention time index (engine/retention.h)
  kExpiryRefs = 33,   // person → its time index entries
  kAnalyticsStaged = 34,  // event seq → sealed staged analytics row (engine/analytics_staging.h)
  kRecordIndex = 35,      // record metadata index (engine/record_index.h)
  kRecordIndexRefs = 36,  // record key → its record_index entries
  kConsentByPurpose = 37, // purpose ‖ granted ‖ person (engine/consent_index.h)
  kKeyClaims = 38,        // person → the pool index of its key (keys/key_store.h)
};

// Appends the sealed row of `plaintext` to `*out`.
void SealRow(crypto::CipherId cipher, const crypto::SecretKey& key, TableId table,
             std::string_view storage_key, std::string_view plaintext, std::string* out);

// Opens a sealed row. Corruption for a malformed envelope (unknown version or
// cipher, truncated); AuthenticationFailed for a wrong key or moved/tampered
// bytes. On error `*plaintext` is empty.
[[nodiscard]] Status OpenRow(const crypto::SecretKey& key, TableId table,
                             std::string_view storage_key, std::string_view row,
                             std::string* plaintext);

// Appends the person row of `plaintext`, sealed under the person's key of
// `slot`, to `*out`.
void SealPersonRow(crypto::CipherId cipher, const crypto::SecretKey& key, std::uint32_t slot, TableId table,
                   std::string_view storage_key, std::string_view plaintext, std::string* out);

// The key slot a person row names (read from its header, before any key is
// needed). Corruption for a malformed header.
[[nodiscard]] Status PersonRowSlot(std::string_view row, std::uint32_t* slot);

// Opens a person row with the key of the slot it names (the caller looked it
// up with PersonRowSlot). Errors as OpenRow.
[[nodiscard]] Status OpenPersonRow(const crypto::SecretKey& key, TableId table, std::string_view storage_key,
                                   std::string_view row, std::string* plaintext);

// Appends payload and checksum.
void SealPlain(TableId table, std::string_view storage_key, std::string_view payload,
               std::string* out);
// Verifies the checksum; `*payload` views into `row`. Corruption on mismatch.
[[nodiscard]] Status OpenPlain(TableId table, std::string_view storage_key, std::string_view row,
                               std::string_view* payload);

// The plain_row of `payload` (the one home of clear-row encoding: the
// engine and the key store both use these).
inline std::string PlainRow(TableId table, std::string_view storage_key, std::string_view payload) {
  std::string row;
  SealPlain(table, storage_key, payload, &row);
  return row;
}

// Reads the plain row at `key` of `table` in a storage transaction (any
// type with Get(Table, key, std::string_view*)) and verifies its checksum:
// the transaction's NotFound if absent, Corruption if damaged.
template <typename Txn, typename Table>
[[nodiscard]] Status ReadPlain(const Txn& txn, Table table, TableId id, std::string_view key, std::string* out) {
  std::string_view row, payload;
  if (Status s = txn.Get(table, key, &row); !s.ok()) return s;
  if (Status s = OpenPlain(id, key, row, &payload); !s.ok()) return s;
  *out = std::string(payload);
  return Status::OK();
}

}  // namespace shredkv::codec

#endif  // SHREDKV_CODEC_SEALED_H_
