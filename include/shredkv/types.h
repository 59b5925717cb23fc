// shredkv — value types of the public API: people, identifiers, attribute
// values, events, records and analytics rows. All are owned values: nothing
// here points into the store's memory map.
// Thread safety: plain values; safe to share when not mutated.
#ifndef SHREDKV_TYPES_H_
#define SHREDKV_TYPES_H_

#include <array>
#include <compare>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "shredkv/status.h"
#include "shredkv/visibility.h"

namespace shredkv {

// A 128-bit random identifier, printed as 32 lowercase hex digits.
template <typename Tag>
class SHREDKV_EXPORT RandomId {
 public:
  static constexpr std::size_t kSize = 16;
  using Bytes = std::array<std::uint8_t, kSize>;

  RandomId() = default;  // all zero: "no id"
  explicit RandomId(const Bytes& bytes) : bytes_(bytes) {}

  // Parses 32 hex digits; InvalidArgument otherwise.
  static Result<RandomId> FromHex(std::string_view hex);

  const Bytes& bytes() const { return bytes_; }
  std::string_view view() const {
    return {reinterpret_cast<const char*>(bytes_.data()), bytes_.size()};
  }
  bool empty() const { return bytes_ == Bytes{}; }
  std::string ToHex() const;

  friend auto operator<=>(const RandomId&, const RandomId&) = default;

 private:
  Bytes bytes_{};
};

struct SHREDKV_EXPORT PersonIdTag {};
struct SHREDKV_EXPORT AnonymousIdTag {};
// A person's internal ID: random, never derived from any identifier.
using PersonId = RandomId<PersonIdTag>;
// A person's analytics ID: random; its link to the person lives only inside
// the person's encrypted record.
using AnonymousId = RandomId<AnonymousIdTag>;

// Well-known identifier types. Applications may register more (Options).
namespace id_type {
inline constexpr std::string_view kEmail = "email";
inline constexpr std::string_view kPhone = "phone";
inline constexpr std::string_view kCustomerId = "customer_id";
inline constexpr std::string_view kDeviceId = "device_id";
}  // namespace id_type

// An identifier of a person: a type ("email") and a value ("Ann@X.org").
// Values are normalised per type before they are hashed or stored; see
// docs/format.md, "Identifier normalisation".
struct Identifier {
  std::string type;
  std::string value;

  friend auto operator<=>(const Identifier&, const Identifier&) = default;
};

// Milliseconds since the Unix epoch, UTC.
struct Timestamp {
  std::int64_t ms = 0;
  friend auto operator<=>(const Timestamp&, const Timestamp&) = default;
};

// A typed attribute or property value.
class Value {
 public:
  enum class Type : std::uint8_t {  // do not change: part of the persistent format
    kString = 1,
    kInt64 = 2,
    kDouble = 3,
    kBool = 4,
    kTimestamp = 5,
    kBytes = 6,
  };
  struct BytesTag {};

  Value() : v_(std::string()) {}
  Value(std::string s) : v_(std::move(s)) {}               // NOLINT
  Value(const char* s) : v_(std::string(s)) {}             // NOLINT
  Value(std::int64_t i) : v_(i) {}                          // NOLINT
  Value(int i) : v_(static_cast<std::int64_t>(i)) {}       // NOLINT
  Value(double d) : v_(d) {}                                // NOLINT
  Value(bool b) : v_(b) {}                                  // NOLINT
  Value(Timestamp t) : v_(t) {}                             // NOLINT
  static Value Bytes(std::string raw) { Value v; v.v_ = ByteString{std::move(raw)}; return v; }

  Type type() const { return static_cast<Type>(v_.index() + 1); }
  // REQUIRES: type() matches.
  const std::string& as_string() const { return std::get<std::string>(v_); }
  std::int64_t as_int64() const { return std::get<std::int64_t>(v_); }
  double as_double() const { return std::get<double>(v_); }
  bool as_bool() const { return std::get<bool>(v_); }
  Timestamp as_timestamp() const { return std::get<Timestamp>(v_); }
  const std::string& as_bytes() const { return std::get<ByteString>(v_).data; }

  friend bool operator==(const Value& a, const Value& b) = default;

 private:
  struct ByteString {
    std::string data;
    friend bool operator==(const ByteString&, const ByteString&) = default;
  };
  // Index + 1 == Type; keep the order in sync with Type.
  std::variant<std::string, std::int64_t, double, bool, Timestamp, ByteString> v_;
};

// Name → value. Names are UTF-8, 1..255 bytes.
using Attributes = std::map<std::string, Value, std::less<>>;

// A set of attribute changes applied atomically: `set` entries are written,
// `unset` names are removed (unsetting an absent name is not an error).
struct ProfilePatch {
  Attributes set;
  std::vector<std::string> unset;
};

// Half-open time interval [from, to) in ms since the epoch.
// [from_ms, to_ms); to_ms = INT64_MAX means no end (an event at INT64_MAX
// itself is in it; since stop 26).
struct TimeRange {
  std::int64_t from_ms = std::numeric_limits<std::int64_t>::min();
  std::int64_t to_ms = std::numeric_limits<std::int64_t>::max();
  bool Contains(std::int64_t ts) const {
    return ts >= from_ms && (ts < to_ms || to_ms == std::numeric_limits<std::int64_t>::max());
  }
};

// An event a person did. `analytics_fields` names the properties the
// application declares non-personal: only those (plus name and time) are
// copied, in the clear, into the analytics row under the anonymous ID.
struct Event {
  std::string name;
  std::int64_t ts_ms = 0;
  Attributes properties;
  std::vector<std::string> analytics_fields;
  std::string category{};  // empty: the category declared for `name`, else "general"
};

// An event as read back: `seq` orders events with the same timestamp and is
// unique within the store.
struct StoredEvent {
  std::string name;
  std::int64_t ts_ms = 0;
  std::uint64_t seq = 0;
  Attributes properties;
  std::string category;
};

// A person-scoped key → value record in a named collection.
// What a record is for and where it came from (GDPR Art. 5(1)(b), 13/14,
// 19 and 22; GDPRbench's record metadata). Sealed with the record under the
// person's key, exported with it, replaced by the next Put of the record and
// shredded with it. Empty (the default) is stored as nothing.
struct RecordMetadata {
  // Purposes (registered in Options::purposes) the record was collected for:
  // a processing lease for any other purpose cannot read it (Restricted from
  // Lease::Get, skipped by Lease::ScanRecords). Empty: any purpose the
  // person's consent and restrictions allow. At most 64, each 1..255 bytes;
  // stored sorted, without duplicates.
  std::vector<std::string> purposes;
  // Where the data came from (Art. 14(2)(f)), e.g. "signup form" or
  // "partner:acme": at most 1,024 bytes (bytes: the C API hands it out
  // with its length, so a NUL byte is kept).
  std::string origin;
  // Recipients it was disclosed to (Art. 19): at most 64, each 1..255
  // bytes without a NUL byte; stored sorted, without duplicates.
  std::vector<std::string> shared_with;
  // Used for a decision based solely on automated processing (Art. 22).
  bool automated_decision = false;
  // The record's own expiry (ms since the epoch; 0: none): from then on it
  // is gone for every reader, as if deleted, and the next Sweep (or
  // background maintenance) deletes it. "From then on" by the store's
  // clock: set back before that sweep, the clock shows the record again
  // (docs/retention.md §3). Independent of the collection's
  // retention rule: whichever comes first applies. Negative:
  // InvalidArgument.
  std::int64_t expires_ms = 0;

  bool empty() const {
    return purposes.empty() && origin.empty() && shared_with.empty() && !automated_decision && expires_ms == 0;
  }
  bool operator==(const RecordMetadata&) const = default;
};

struct Record {
  std::string collection;
  std::string key;
  std::string value;
  std::string category{};  // on write, empty: the collection's declared category
  RecordMetadata metadata{};
};

// One analytics row: no personal data, only the anonymous ID, event name,
// time and the declared non-personal fields.
struct AnalyticsRow {
  AnonymousId anon_id;
  std::string name;
  // The row's own time: its event's time floored to the store's analytics
  // granularity (Options::analytics_time_granularity_ms; after an unlinking
  // erasure, to unlink_time_granularity_ms). Never the event's exact time.
  std::int64_t ts_ms = 0;
  // In an export (ExportItem), the seq of the person's event the row belongs
  // to; 0 from ScanAnalytics, where no row names an event.
  std::uint64_t seq = 0;
  Attributes fields;
};

// What the store holds about a person apart from profile, events and records.
struct PersonInfo {
  PersonId id;
  AnonymousId anon_id;
  std::int64_t created_ms = 0;
  std::vector<Identifier> identifiers;  // normalised, sorted by (type, value)
  std::uint64_t key_epoch = 0;          // epoch whose key wraps this person's DEK
};

// A person and their profile, found by an identifier (Store::LookupProfile).
struct PersonProfile {
  PersonId id;
  Attributes attributes;
};

// Why a change-feed notice was written. Do not change the values: part of
// the persistent format. Notice::names say what changed (docs/format.md §5).
enum class NoticeKind : std::uint8_t {
  // Profile attributes, identifiers or event properties corrected: by
  // Store::Rectify, and by a batch's PatchProfile, LinkIdentifier and
  // UnlinkIdentifier of a person that existed before the batch (one notice
  // per person and batch). Names only what changed: "profile.<attribute>",
  // "identifier.<type>", "event.<property>".
  kRectification = 1,
  kErasure = 2,  // the person was erased; names "category.<category>" for a category erasure
  // Processing restricted or lifted, consent granted or withdrawn. Names
  // exactly one "action.<grant|withdraw|restrict|unrestrict>" (the
  // ConsentRecord::Action, ConsentActionName) and what it concerns:
  // "consent.<purpose>", "restriction.all", "restriction.purpose.<purpose>",
  // "restriction.category.<category>".
  kRestriction = 3,
  kImport = 4,         // the person was imported from a portability export
  kRecordChange = 5,   // records put or deleted; names: "record.put" and/or "record.delete"
};
SHREDKV_EXPORT std::string_view NoticeKindName(NoticeKind kind);

// A notice of the change feed (GDPR Art. 19): what changed for whom, never
// the values. `cursor` orders notices and is what AckFeed takes.
struct Notice {
  std::uint64_t cursor = 0;
  NoticeKind kind = NoticeKind::kRectification;
  PersonId person;
  std::int64_t time_ms = 0;
  // Sorted and unique, e.g. "profile.city", "identifier.email", "event.amount",
  // "action.withdraw" + "consent.marketing".
  std::vector<std::string> names;
};

// A correction of one stored event's properties (found by ts and seq).
struct EventCorrection {
  std::int64_t ts_ms = 0;
  std::uint64_t seq = 0;
  ProfilePatch properties;
};

// Corrections applied atomically by Store::Rectify (GDPR Art. 16).
struct Rectification {
  ProfilePatch profile;
  // Each pair replaces an identifier of the person (first) by another (second).
  std::vector<std::pair<Identifier, Identifier>> identifiers;
  std::vector<EventCorrection> events;
};

// Which processing a person has restricted (GDPR Art. 18/21).
struct RestrictionState {
  bool all = false;                     // every purpose
  std::vector<std::string> purposes;    // sorted
  std::vector<std::string> categories;  // sorted: items of these categories are withheld
  std::int64_t updated_ms = 0;          // 0: never restricted
};

// A restriction to add (Store::Restrict) or lift (Store::Unrestrict).
struct RestrictionSpec {
  bool all = false;
  std::vector<std::string> purposes;
  std::vector<std::string> categories;
  std::string reason;  // kept encrypted in the person's history; shown in the export
};

// One consent decision or restriction change, as kept in the history.
struct ConsentRecord {
  enum class Action : std::uint8_t {  // do not change: persistent
    kGrant = 1,
    kWithdraw = 2,
    kRestrict = 3,
    kUnrestrict = 4,
  };
  Action action = Action::kGrant;
  std::string purpose;                  // grant / withdraw
  RestrictionSpec restriction;          // restrict / unrestrict
  std::int64_t time_ms = 0;
  std::string source;                   // e.g. "web-banner", "support-ticket-17"
};
// "grant", "withdraw", "restrict", "unrestrict" (the export's consent
// "action" and the change feed's "action.<name>"); "unknown" otherwise.
SHREDKV_EXPORT std::string_view ConsentActionName(ConsentRecord::Action action);

// One item of a person's export, in this order: kPerson, kIdentifier*,
// kProfile, kRestriction, kConsent*, kEvent*, kRecord*, kAnalytics*, kNotice*.
struct ExportItem {
  enum class Kind : std::uint8_t {
    kPerson, kIdentifier, kProfile, kRestriction, kConsent, kEvent, kRecord, kAnalytics, kNotice
  };
  Kind kind = Kind::kPerson;
  PersonInfo person;             // kPerson
  Identifier identifier;         // kIdentifier
  Attributes profile;            // kProfile
  RestrictionState restriction;  // kRestriction
  ConsentRecord consent;         // kConsent
  StoredEvent event;             // kEvent
  Record record;                 // kRecord
  AnalyticsRow analytics;        // kAnalytics
  Notice notice;                 // kNotice
};

// What erasure does with the person's analytics rows.
// Do not change the values: part of the persistent format.
enum class AnalyticsOnErase : std::uint8_t {
  // Rows stay under the anonymous ID, whose link to the person is destroyed
  // with the person's key. A category erasure (Store::EraseCategory) moves
  // the category's rows to one fresh anonymous ID of their own: the person
  // keeps theirs.
  kKeep = 0,
  // Each row gets a fresh random ID of its own and its time is coarsened to
  // Options::unlink_time_granularity_ms, so the rows can no longer be linked
  // to each other either (EDPB: one stable ID can still single a person out).
  kUnlink = 1,
  // Rows are deleted.
  kDelete = 2,
};

// How far an erasure has got (design §3). Levels are cumulative.
enum class ErasureLevel : std::uint8_t {
  // The erase commit is durable: no API returns the data, the key is gone
  // from the live key tree and from every cache.
  kLogical = 1,
  // An epoch rotation destroyed the epoch key that wrapped the person's key:
  // no byte in the store's files can decrypt the data, even with the root key.
  kCryptographic = 2,
  // Cryptographic, and the person's rows are gone from the live data tree.
  kPurged = 3,
};

SHREDKV_EXPORT std::string_view ErasureLevelName(ErasureLevel level);
SHREDKV_EXPORT std::string_view AnalyticsOnEraseName(AnalyticsOnErase mode);

// What an audit log entry records (values are part of the file format).
enum class AuditAction : std::uint8_t {
  kErase = 1,          // count1: people erased; count2: 1 if suppressed; analytics: the mode
  kUnsuppress = 2,     // count1: 1 (the identifier is not named)
  kRotation = 3,       // count1: the new epoch; count2: keys re-wrapped
  kPurge = 4,          // count1: rows deleted; count2: people completed
  kCompaction = 5,     // count1: data file bytes before; count2: after
  kSweep = 6,          // count1: events and records expired; count2: analytics rows
  kEraseCategory = 7,  // count1: 1; analytics: the mode; request_id names it
  kProcessingRead = 8,  // a granted lease (Options::audit_processing_reads): purpose, subject
};
SHREDKV_EXPORT std::string_view AuditActionName(AuditAction action);  // "erase", "erase_category", ...

// One entry of the audit log (Store::ReadAudit): what happened, when, to
// how many, under which request; never a person, an identifier or a value.
struct AuditRecord {
  std::uint64_t seq = 0;  // 1, 2, ... in the order of the chain
  AuditAction action = AuditAction::kErase;
  std::int64_t time_ms = 0;
  std::string request_id;  // erasures; empty otherwise
  std::uint64_t count1 = 0, count2 = 0;  // per action, see AuditAction
  std::optional<AnalyticsOnErase> analytics;  // erasures only
  std::string purpose;  // processing reads: the lease's purpose
  std::string subject;  // processing reads: the person's audit subject (32 hex digits)
  std::string hash;  // hex chain hash of this entry (the receipt's audit_hash for an erasure)
};

// The proof of one erasure request. Holds nothing personal.
struct ErasureReceipt {
  std::string request_id;
  std::int64_t erased_at_ms = 0;
  std::uint64_t people = 0;
  AnalyticsOnErase analytics = AnalyticsOnErase::kKeep;
  bool suppressed = false;        // identifiers put on the suppression list
  ErasureLevel level = ErasureLevel::kLogical;
  bool cryptographic = false;     // the wrapping epoch key is destroyed
  bool purged = false;            // all rows of all its people are purged
  std::uint64_t key_epoch = 0;    // epoch whose destruction makes it cryptographic
  std::string audit_hash;         // hex BLAKE2b chain hash of its audit entry
  std::string category;           // a category erasure: its category; empty: whole people
};

}  // namespace shredkv

#endif  // SHREDKV_TYPES_H_
