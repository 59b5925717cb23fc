// shredkv — options of a store. Plain aggregates with defaults in place.
#ifndef SHREDKV_OPTIONS_H_
#define SHREDKV_OPTIONS_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "shredkv/key_custody.h"
#include "shredkv/key_provider.h"
#include "shredkv/listener.h"

namespace shredkv {

// What a commit that returned OK survives.
enum class Durability : std::uint8_t {
  // Every commit is fsynced before it returns: it survives process death and
  // power loss.
  kFullSync,
  // Data pages are fsynced but the meta page is not: after power loss the
  // store may come back at the previous commit, never corrupt.
  kNoMetaSync,
  // Data commits are not fsynced: they survive process death (the OS has
  // the pages) but power loss may lose recent commits and, where the disk
  // reorders writes, leave the store reporting Corruption or people at
  // different points of their history (LMDB's MDB_NOSYNC; see
  // docs/testing.md, power loss). Key commits are still written in order
  // (kNoMetaSync) and erase commits fsynced, so power loss never undoes an
  // erasure that returned.
  kNoSync,
};

// The AEAD used for records. The cipher is recorded in every ciphertext, so a
// store may hold both and the choice can change between opens.
enum class Cipher : std::uint8_t {
  kAuto,               // AES-256-GCM where the CPU has AES-NI, else XChaCha20
  kXChaCha20Poly1305,  // 24-byte random nonces
  kAes256Gcm,          // 12-byte random nonces; refused if the CPU lacks AES-NI
};

// How the values of an identifier type are normalised before hashing.
enum class Normalization : std::uint8_t {
  kExact,      // bytes as given
  kTrim,       // leading/trailing ASCII whitespace removed
  kLowerTrim,  // trimmed and ASCII-lowercased
  kEmail,      // trimmed, lowercased; must be local@domain
  kPhone,      // '+' (if leading) and digits kept; at least 3 digits
};

// An application-defined identifier type ("loyalty_card"). The built-in types
// are email (kEmail), phone (kPhone), customer_id (kTrim), device_id (kTrim).
struct IdentifierTypeSpec {
  std::string name;  // [a-z0-9_]{1,32}
  Normalization normalization = Normalization::kTrim;
};

// The lawful basis of a processing purpose (GDPR Art. 6(1)). Configured in
// Options on every open; not stored.
enum class LawfulBasis : std::uint8_t {
  kConsent = 1,  // processing needs the person's granted consent
  kContract = 2,
  kLegitimateInterest = 3,
  kLegalObligation = 4,
  kVitalInterest = 5,
  kPublicTask = 6,
};

// A purpose processing reads name ("marketing").
struct PurposeSpec {
  std::string name;  // [a-z0-9_]{1,32}
  LawfulBasis basis = LawfulBasis::kConsent;
};

// What happens to a new event (tracking) of a person who is restricted, or
// whose consent the tracking purpose needs and lacks, or who objected to it
// (a withdrawal, for a legitimate-interest or public-task purpose).
enum class RestrictedTrackingPolicy : std::uint8_t {
  kReject,  // the write fails with Restricted (the whole batch)
  kDrop,    // the event is silently skipped; the rest of the batch commits
};

// Storage limitation by time (GDPR Art. 5(1)(e)): the maximum age of each
// kind of data, in ms. An item is expired once now - its time >= its max age
// (events: the event's ts; records: the time of their last write; analytics
// rows: their ts). Expired items are invisible to every read at once and
// removed by Store::Sweep. A name without a rule, and an analytics or feed
// max age of 0, mean: keep. Max ages must be > 0; names 1..255 bytes.
struct RetentionRules {
  std::map<std::string, std::int64_t, std::less<>> events;       // event name → max age
  std::map<std::string, std::int64_t, std::less<>> collections;  // record collection → max age
  std::int64_t analytics = 0;  // analytics rows (anonymous: may be kept longer than events)
  // Change-feed notices (Store::ReadFeed), acknowledged or not: a notice
  // names a person and what changed, and an application that never reads
  // the feed would keep every one — an erased person's ID in their erasure
  // notice too. The oldest notices past this age (the expired prefix by
  // cursor) are skipped by ReadFeed and Export at once and deleted by
  // Sweep; the cursors a consumer then reads start past its last
  // acknowledged one + 1, which is how it sees that notices expired unread
  // (docs/retention.md §6). 0: kept until acknowledged.
  std::int64_t feed = 0;

  friend bool operator==(const RetentionRules&, const RetentionRules&) = default;
};

// The category every item belongs to unless declared otherwise.
inline constexpr const char* kGeneralCategory = "general";

// The most shards a sharded store has.
inline constexpr std::uint32_t kMaxShards = 256;

// A store's place in a sharded store (Options::shard_placement).
struct ShardPlacement {
  std::uint32_t index = 0;  // REQUIRES: index < count
  std::uint32_t count = 0;  // REQUIRES: 1 <= count <= kMaxShards
  friend bool operator==(const ShardPlacement&, const ShardPlacement&) = default;
};

struct Options {
  // The store directory; it holds the `keys` and `data` environments.
  std::string directory;

  // Create the directory and an empty store if it does not exist yet.
  bool create_if_missing = false;

  // Fail with AlreadyExists if a store already exists in `directory`.
  bool error_if_exists = false;

  // Open an existing store to read only: nothing in the directory is
  // written, created or removed (not even LMDB lock files; only a store
  // without its `LOCK` file, which shredkv creates, gets one if the
  // directory is writable), so a store on a
  // read-only mount, without write permission, or whose interrupted key
  // rotation cannot be finished can still be read and exported. Other
  // read-only opens may share the store. A read-only open made while a
  // writer in another process holds the store reads beside it (LMDB's reader
  // table; it needs write access to the lock files; no person key cached, so
  // the writer's erasures are seen at once; the writer's file swaps wait for
  // it to close: docs/backup.md §5); a writer that finds read-only opens
  // made before it started gets Busy. Every write call returns ReadOnly. Work a writable open
  // finishes is left pending, not done: a half-applied erasure stays
  // half-applied in `data` (the erased person's keys are already gone, so
  // their rows read as Erased), an interrupted key-file rebuild stays
  // pending, no background maintenance runs. A store still in format 2 needs
  // one writable open to migrate (ReadOnly until then), and `retention`
  // must be unset or equal to the stored rules (InvalidArgument otherwise).
  // REQUIRES: !create_if_missing (InvalidArgument otherwise).
  bool read_only = false;

  // Crash guarantee of every commit; see Durability.
  Durability durability = Durability::kFullSync;

  // First memory-map size of the `data` environment, in bytes. The map grows
  // by doubling, with no caller involvement, whenever a write finds it full.
  std::uint64_t initial_map_size = 64ull << 20;

  // The map never grows beyond this; a write that would needs it fails with
  // StoreFull and leaves earlier data intact.
  std::uint64_t max_map_size = 1ull << 40;

  // Number of unwrapped per-person keys kept in guarded memory (LRU).
  std::size_t dek_cache_capacity = 10000;

  // Supplies the root key. Required.
  std::shared_ptr<KeyProvider> key_provider;

  // Where epoch keys are held (include/shredkv/key_custody.h): with a
  // custody every new epoch key (at creation, and at each rotation) is
  // wrapped by a per-epoch custody key that the rotation destroying the
  // epoch destroys, so no backup older than the rotation opens. Null: epoch
  // keys are sealed under the root key only. Required to open a store whose
  // epoch keys are in a custody (FailedPrecondition otherwise).
  std::shared_ptr<EpochKeyCustody> epoch_key_custody;

  // AEAD for new records.
  Cipher cipher = Cipher::kAuto;

  // Identifier types in addition to the built-in ones.
  std::vector<IdentifierTypeSpec> identifier_types;

  // Number of rows an iterator reads per short read transaction. Iterators
  // hold no transaction between calls, so a slow consumer never pins old
  // pages; larger batches are faster, smaller ones use less memory.
  std::size_t iterator_batch_size = 256;

  // The clock (ms since the epoch) used for creation times; injectable for
  // tests. Null means the system clock.
  std::function<std::int64_t()> clock;

  // Progress of long operations, called on the calling thread: "rotate-keys"
  // (keys re-wrapped of all keys) and "verify" (rows checked of all rows).
  // Must not call back into the store. Null: no reports.
  std::function<void(std::string_view operation, std::uint64_t done, std::uint64_t total)> progress;

  // ---- observability (include/shredkv/listener.h, docs/operations.md) ----

  // Told of erasures committed, erasure levels reached, every maintenance
  // job (on a caller's thread or the background thread), background errors
  // and progress. Called after the store released its locks, one at a time
  // (progress: at once); see listener.h for the rules a listener follows.
  std::vector<std::shared_ptr<EventListener>> listeners;
  // Receives log lines at or above log_level. Null: no logging.
  std::shared_ptr<Logger> logger;
  LogLevel log_level = LogLevel::kInfo;

  // ---- erasure ----

  // Granularity to which AnalyticsOnErase::kUnlink coarsens timestamps:
  // 1 s .. 366 days (InvalidArgument at open otherwise).
  std::int64_t unlink_time_granularity_ms = 24ll * 3600 * 1000;

  // Time granularity of analytics rows: a row's time is its event's time
  // floored to this (1 s .. 31 days), so no analytics row carries an event's
  // exact time and, within one bucket, rows cannot be told apart by time
  // or insertion order (docs/security.md §5). Used when the store is created
  // (or migrated from format 2) and stored; later opens use the stored value.
  std::int64_t analytics_time_granularity_ms = 3600ll * 1000;

  // Rotation policy: the bound on how long an erasure stays only logical.
  // RunMaintenance() (and the background thread) rotate the epoch once this
  // many erasures happened since the last rotation, or once the oldest
  // not-yet-cryptographic erasure is this old (the earliest erasure time
  // since the rotation; one recorded after now — under a clock since set
  // back — is due once the clock went back by this bound or more, else
  // once the clock passes its time by it). 0 disables either trigger; a negative
  // rotate_after_ms is InvalidArgument at open.
  std::uint64_t rotate_after_erasures = 1000;
  std::int64_t rotate_after_ms = 24ll * 3600 * 1000;

  // DEKs re-wrapped per `keys` write transaction during rotation: writers
  // proceed between batches.
  std::size_t rotation_batch_size = 10000;

  // Run RunMaintenance() on a background thread every this many ms: purge
  // (purge_budget_rows), rotation if the policy says so, a retention sweep
  // (sweep_budget_rows), materialising the analytics rows of ended hours,
  // and collecting keys orphaned by a creation cut short. 0 = no thread:
  // the application calls Purge()/RotateEpoch()/Sweep()/RunMaintenance().
  // Negative: InvalidArgument at open; above ten years: ten years.
  std::int64_t background_maintenance_ms = 0;
  std::size_t purge_budget_rows = 10000;

  // ---- retention (storage limitation) ----

  // The rules are stored in the store and outlive this open. Set: they
  // replace the stored rules at open (and are stored). Unset: the stored
  // rules apply (none in a new store). Store::SetRetention changes them on
  // an open store.
  std::optional<RetentionRules> retention;
  // Rows RunMaintenance() (and the background thread) sweep per round.
  std::size_t sweep_budget_rows = 10000;

  // ---- restriction, consent, leases (GDPR Art. 18, 21) ----

  // Purposes processing may name. Empty means the defaults: marketing
  // (consent), personalization (consent), analytics (legitimate interest),
  // support (contract), billing (contract).
  std::vector<PurposeSpec> purposes;

  // Data categories besides "general". Empty means the defaults: contact,
  // location, behaviour, payment.
  std::vector<std::string> categories;

  // Declared categories: event name → category, record collection →
  // category, profile attribute → category. Anything not listed is
  // "general". Events and records may override theirs per write.
  std::map<std::string, std::string, std::less<>> event_categories;
  std::map<std::string, std::string, std::less<>> collection_categories;
  std::map<std::string, std::string, std::less<>> attribute_categories;

  // Appending an event is processing for this purpose (tracking): it is
  // refused or dropped (tracking_policy) when the person is restricted for
  // it, for the event's category or for everything, when the purpose needs
  // consent the person has not granted, or when the person objected to it
  // (SetConsent with false, for a legitimate-interest or public-task
  // purpose: since stop 28, a stored withdrawal of `analytics` stops the
  // person's tracking, and with kReject fails a batch holding their event).
  std::string tracking_purpose = "analytics";
  RestrictedTrackingPolicy tracking_policy = RestrictedTrackingPolicy::kReject;

  // How long Erase and Restrict wait for processing leases on the person to
  // be released before they give up with Busy, changing nothing. 0: not at
  // all; negative: InvalidArgument at open; above ten years: ten years (for
  // ever, in practice).
  std::int64_t lease_drain_timeout_ms = 5000;

  // Log every processing read (a granted AcquireLease) in the audit chain:
  // its purpose, time and the person's audit subject (Store::AuditSubject:
  // a pseudonym keyed with the person's own key, so the entries lead to the
  // person while they exist and to nobody once they are erased). For the
  // regulator's "read logs" and a person's "who processed my data". Each
  // granted lease is then a durable commit; off by default. On a read-only
  // open, leases are refused (ReadOnly) while this is on.
  bool audit_processing_reads = false;

  // For ShardedStore, which sets it for each shard; leave it unset. The
  // store holds the people whose ID's XXH3-64 is `index` modulo `count`
  // (ShardedStore::ShardOf). A store opened with a placement records it
  // (data meta `placement`, docs/format.md §5.1; a writable open of a store
  // that does not record one yet adds it) and creates only people in its
  // place: CreatePerson draws such an ID, and a Write that creates a person
  // whose ID routes elsewhere is InvalidArgument. A store that records a
  // placement and is opened without one (a shard opened alone) refuses the
  // writes only the sharded store can check, as FailedPrecondition, with
  // nothing written: creating a person (CreatePerson, a Write with
  // CreatePerson or ImportPerson: the ID would route to another shard) and
  // claiming an identifier (LinkIdentifier, a Rectify that replaces one:
  // identifiers are unique across the shards). Every other call works.
  // Setting it yourself on Store::Open of a shard gets past those refusals
  // and with them past the one check that keeps identifiers unique across
  // shards: a person created that way may take an identifier another shard
  // holds, and Verify of the sharded store does not find it (outside audit
  // 34, F8). Open the ShardedStore to write instead.
  // Open: InvalidArgument if index >= count or count is 0 or above
  // kMaxShards;
  // Corruption if the store records another placement.
  std::optional<ShardPlacement> shard_placement;
};

}  // namespace shredkv

#endif  // SHREDKV_OPTIONS_H_
