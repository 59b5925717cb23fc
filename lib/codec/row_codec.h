// Keys and payloads of every table (the grammar is in docs/format.md).
//
// data environment                       key                               value
//   people        person(16)                                  sealed(person_payload)
// (every sealed row of a person names its key slot: codec/sealed.h)
//   ident         H_index(type, normalized value)(32)         plain(person(16))
//   ident_by_person person(16) ‖ H(32)                        plain("")
//   profiles      person(16) ‖ slot(4)                        sealed(attributes of one category key)
//   events        person(16) ‖ ts(8, ordered) ‖ seq(8)        sealed(event_payload)
//   records       person(16) ‖ H_coll(16) ‖ H_key(16)         sealed(record_payload)
//   analytics     bucket(8, ordered) ‖ row_id(16)             plain(analytics_payload)
// An analytics row shares nothing with its event row: bucket is the event
// time floored to the store's analytics granularity, row_id a keyed hash
// under a key derived from the person's (slot) key, or random once unlinked
// (engine/analytics_link.h). Export and erasure find a person's rows through
// that key, never through a clear join.
// Thread safety: stateless.
#ifndef SHREDKV_CODEC_ROW_CODEC_H_
#define SHREDKV_CODEC_ROW_CODEC_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "shredkv/status.h"
#include "shredkv/types.h"

namespace shredkv::codec {

inline constexpr std::size_t kIdSize = 16;
inline constexpr std::size_t kIdentHashSize = 32;
inline constexpr std::size_t kNameHashSize = 16;

// ---- keys ------------------------------------------------------------------
std::string EventKey(const PersonId& person, std::int64_t ts_ms, std::uint64_t seq);
inline constexpr std::size_t kAnalyticsRowIdSize = 16;
inline constexpr std::size_t kAnalyticsKeySize = 8 + kAnalyticsRowIdSize;
// An analytics row's key (format 3): the time bucket's start, then the row id.
// REQUIRES: row_id.size() == kAnalyticsRowIdSize.
std::string AnalyticsKey(std::int64_t bucket_ms, std::string_view row_id);
// The bucket start of an analytics key; Corruption unless kAnalyticsKeySize long.
[[nodiscard]] Status DecodeAnalyticsKey(std::string_view key, std::int64_t* bucket_ms);
// A format-2 analytics key, ts ‖ seq of its event: read only by the
// migration to format 3 and by the recovery of an erasure that a format-2
// engine cut short.
std::string AnalyticsKeyV2(std::int64_t ts_ms, std::uint64_t seq);
// Decodes (ts, seq) from the tail of an event key (or a format-2 analytics key).
[[nodiscard]] Status DecodeTsSeq(std::string_view tail16, std::int64_t* ts_ms, std::uint64_t* seq);
std::string RecordKey(const PersonId& person, std::string_view coll_hash, std::string_view key_hash);
std::string DekKey(const PersonId& person, std::uint32_t slot);
// The profile row of the attributes sealed under key slot `slot`.
std::string ProfileKey(const PersonId& person, std::uint32_t slot);
std::string EpochKey(std::uint64_t epoch);

// ---- payloads ----------------------------------------------------------------
struct PersonPayload {
  AnonymousId anon_id;
  std::int64_t created_ms = 0;
  std::vector<Identifier> identifiers;  // normalised, sorted, unique
  // The person's category keys: category → key slot (slot 0, the person
  // key, serves "general"). A slot whose key was erased stays listed until
  // the next write of that category moves it to a fresh slot.
  std::map<std::string, std::uint32_t> category_slots;
  std::uint32_t next_slot = 1;  // slots are never reused
};
void EncodePerson(const PersonPayload& p, std::string* out);
[[nodiscard]] Status DecodePerson(std::string_view in, PersonPayload* out);

void EncodeProfile(const Attributes& attrs, std::string* out);
[[nodiscard]] Status DecodeProfile(std::string_view in, Attributes* out);

// event_payload := lp(name) lp(category) attributes
void EncodeEvent(std::string_view name, std::string_view category, const Attributes& props, std::string* out);
// EncodeEvent that also checks the property names (EncodeValidAttributes).
[[nodiscard]] Status EncodeValidEvent(std::string_view name, std::string_view category, const Attributes& props,
                                      std::string* out);
[[nodiscard]] Status DecodeEvent(std::string_view in, std::string* name, std::string* category, Attributes* props);

// record_payload := lp(collection) lp(key) lp(value) lp(category) [metadata] [written]
// metadata       := u8(1) names(purposes) lp(origin) names(shared_with) u8(flags)
//                   [ordered64(expires_ms) if flags bit 1]
// names          := varint(n) lp(name)*n;  flags bit 0: automated_decision
// written        := u8(2) ordered64(written_ms)
// The metadata section is absent when the metadata is empty, so a record
// without it is byte-identical to one written before it existed. `written`
// is the record's last-write time (data format 4: what a collection's
// retention rule measures, docs/format.md §5.7); rows written before format
// 4 lack it, and their time is in `expiry_refs`.
void EncodeRecord(std::string_view collection, std::string_view key, std::string_view value,
                  std::string_view category, const RecordMetadata& metadata,
                  std::optional<std::int64_t> written_ms, std::string* out);
// `written_ms` (may be null): the written section's time, nullopt if absent.
[[nodiscard]] Status DecodeRecord(std::string_view in, Record* out, std::optional<std::int64_t>* written_ms = nullptr);

// restriction := u8(all) varint(n) lp(purpose)*n varint(m) lp(category)*m i64(updated)
void EncodeRestriction(const RestrictionState& r, std::string* out);
[[nodiscard]] Status DecodeRestriction(std::string_view in, RestrictionState* out);

// consent_record := u8(action) lp(purpose) u8(all) varint(n) lp(purpose)*n
//                   varint(m) lp(category)*m lp(reason) i64(time) lp(source)
void EncodeConsentRecord(const ConsentRecord& r, std::string* out);
[[nodiscard]] Status DecodeConsentRecord(std::string_view in, ConsentRecord* out);

void EncodeAnalytics(const AnonymousId& anon, std::string_view name, const Attributes& fields,
                     std::string* out);
// The same from entries of the event's own properties (names strictly
// ascending), without copying them.
void EncodeAnalyticsEntries(const AnonymousId& anon, std::string_view name,
                            const std::vector<const Attributes::value_type*>& fields, std::string* out);
[[nodiscard]] Status DecodeAnalytics(std::string_view in, AnalyticsRow* out);

}  // namespace shredkv::codec

#endif  // SHREDKV_CODEC_ROW_CODEC_H_
