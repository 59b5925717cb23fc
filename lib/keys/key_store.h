// The `keys` environment: the authority on whether a person exists.
//
//   meta    "format"        → plain(u32 format version)
//           "salt"          → plain(16 random bytes; KDF salt for passphrases)
//           "store_id"      → plain(16 random bytes; also in `data`, pairs them)
//           "root_check"    → sealed under root: a known constant; tells a
//                             wrong root key from a damaged store
//           "current_epoch" → plain(u64)
//           "index_key"     → sealed under root: the BLAKE2b key of the
//                             identifier index
//   epochs  u64 epoch       → sealed under root: the epoch key (32 bytes), or,
//                             held in a custody (shredkv/key_custody.h),
//                             u8(1) ‖ lp(custody label) ‖ lp(the epoch key
//                             wrapped by the custody key of that label)
//   meta "custody_destroy_tagged" → plain(tag(32) ‖ lp(label)*): custody
//                             keys of destroyed epochs not yet destroyed in
//                             the custody ("custody_destroy": the untagged
//                             form of builds before stop 37)
//   deks    person ‖ u32 slot → plain(u64 epoch) ‖ sealed under that epoch key
//   fences  person          → plain(lp(request id) i64(erased at) u64(epoch)
//                               u8(analytics mode)): erased people, forever
//   category_fences person ‖ u32 slot → plain(fence ‖ lp(category)): erased
//                             category keys, forever (a slot is never reused)
//   suppressed H(identifier)  → plain(lp(request id) i64(time))
//   purge_queue person | person ‖ u32 slot → plain(lp(request id)
//                             u8(analytics mode) [lp("") lp(analytics links sealed
//                             under TicketLinksKey(); before stop 29: lp(links) in
//                             the clear)]): erased people (or category keys) whose
//                             `data` rows remain
//   requests  request id    → plain(i64(erased at) u64(epoch) u64(people)
//                               u64(pending purge) u8(mode) u8(suppressed)
//                               lp(category; empty for whole people))
//   meta "erasures_since_rotation" → plain(u64)
//        "erasures_awaiting_rebuild", "rebuild_epoch_floor" → plain(u64),
//                                   only while "rebuild_pending" (stop 31)
//        "oldest_unrotated_ms"     → plain(i64), absent when none
//   pool    u64 index       → plain(u64 epoch) ‖ sealed under that epoch key:
//                             person keys committed ahead of use (format 4)
//   meta "next_pool_index"  → plain(u64): pool indexes are never reused
//
// The key pool (docs/architecture.md §3a): a durable create commits only
// `data`. Its person key was committed here before, as a pool row; the
// create's `data` commit records the claim (the engine's `key_claims`
// table: person → pool index), and a later `keys` commit — the next pool
// refill, or the person's erasure — adopts it: the pool row becomes the
// person's `deks` row (or is deleted with the fence). Until then GetDek
// finds the key through the claim, so the keys-before-data order holds:
// every row sealed under a key commits after the key.
//
// The erase commit (CommitErasure) deletes the keys and writes fences,
// suppression entries, purge queue entries and the request in one
// transaction: that commit is the erasure.
//
// Opening takes two steps because a passphrase provider needs the store's
// salt before it can produce the root key: Open() opens the environment and
// reads (or, for a new store, draws) the salt; Unlock() takes the root key,
// creates or checks the store and loads the epoch keys.
// Thread safety: after Unlock(), all methods are thread-safe.
#ifndef SHREDKV_KEYS_KEY_STORE_H_
#define SHREDKV_KEYS_KEY_STORE_H_

#include <cstdint>
#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "codec/sealed.h"
#include "crypto/aead.h"
#include "crypto/secure_memory.h"
#include "keys/dek_cache.h"
#include "keys/key_payloads.h"
#include "shredkv/key_custody.h"
#include "shredkv/key_provider.h"
#include "shredkv/options.h"
#include "shredkv/status.h"
#include "shredkv/types.h"
#include "storage/environment.h"

namespace shredkv::keys {

// 3: purge tickets may carry analytics links. 4: the key pool (a person's
// key may be a claimed pool row, found through `data`'s key_claims, which
// older readers do not know). Formats 2 and 3 are read as they are (no
// pool rows, tickets of format 2 have no links) and marked 4 by Unlock().
inline constexpr std::uint32_t kKeysFormatVersion = 4;
inline constexpr std::uint32_t kOldestKeysFormatVersion = 2;
inline constexpr std::uint32_t kPersonSlot = 0;  // the whole-person key
// Category key slots are numbered from 1 up and never reach this: the slots
// from here up fence category erasures of a person made in another copy of
// the store, for categories this copy never gave the person a key in
// (AddForeignCategoryFences).
inline constexpr std::uint32_t kFirstForeignCategorySlot = 0x80000000u;

// An erased person (slot 0) or erased category key (slot > 0) waiting for
// purge.
struct PurgeTicket {
  PersonId person;
  std::uint32_t slot = kPersonSlot;
  std::string request_id;
  std::uint8_t analytics_mode = 0;
  // Opaque to the key store: what the data side needs to reach the person's
  // analytics rows once the keys are gone (engine/analytics_link.h), wiped
  // when let go. Empty for a whole person's kKeep ticket and in tickets
  // written by format 2.
  crypto::WipedString analytics_links;
};

// One erasure request's part of an erase commit.
struct ErasureCommit {
  std::vector<PersonId> people;
  ErasureRequest request;
  std::vector<std::string> suppress_hashes;
  // kPersonSlot: erase the people. Otherwise erase only this key slot of
  // each person (a category erasure; request.category names it).
  std::uint32_t slot = kPersonSlot;
  // Empty, or one entry per person (in `people`'s order) stored in the
  // person's purge ticket as PurgeTicket::analytics_links.
  std::vector<std::string> analytics_links;
};

// A new key to store: the person key (slot 0) or a category key.
struct NewKey {
  PersonId person;
  std::uint32_t slot = kPersonSlot;
  DekHandle dek;
};

// A person key of the pool: committed in `keys` (pool row `index`) before
// any row is sealed under it.
struct PooledKey {
  std::uint64_t index = 0;
  DekHandle dek;
};

// A claim as `data` records it: `person`'s key is pool row `index`.
struct KeyClaim {
  PersonId person;
  std::uint64_t index = 0;
};

// An erasure as its fence records it (the erasure log): a whole person
// (slot kPersonSlot) or one category key.
struct FenceRecord {
  PersonId person;
  std::uint32_t slot = kPersonSlot;
  ErasureRequest request;  // request_id, erased_at_ms, key_epoch, analytics_mode, category
};

// A suppressed identifier hash.
struct SuppressionRecord {
  std::string identifier_hash;
  std::string request_id;
  std::int64_t at_ms = 0;
};

// The purge queue's key of a ticket.
std::string TicketKey(const PurgeTicket& ticket);

struct KeyCounts {
  std::uint64_t deks = 0, fences = 0, suppressed = 0, pending_purge = 0;
  std::uint64_t category_fences = 0;  // erased category keys
  std::uint64_t erasures_since_rotation = 0;
  // Erasures whose epoch keys are destroyed, cryptographic once the pending
  // keys-file rebuild is done; and whether one is pending, as of the same
  // read.
  std::uint64_t erasures_awaiting_rebuild = 0;
  bool rebuild_pending = false;
  std::int64_t oldest_unrotated_ms = 0;  // 0: every erasure is cryptographic
};

struct KeyStoreOptions {
  std::string path;  // the `keys` environment directory
  bool create = false;
  Durability durability = Durability::kFullSync;
  crypto::CipherId cipher = crypto::CipherId::kXChaCha20Poly1305;
  std::size_t dek_cache_capacity = 10000;
  // Open an existing `keys` environment without writing anything (not even
  // removing a cut-short rebuild's files): storage::EnvOptions::read_only.
  // Every write is then ReadOnly; a pending rebuild stays pending (Load
  // reports it, nothing finishes it). REQUIRES: !create.
  bool read_only = false;
  // With read_only: beside a writer in another process
  // (storage::EnvOptions::beside_writer); a key row naming an epoch this
  // process has not loaded (the writer rotated) reloads the epoch keys.
  bool beside_writer = false;
  // Person keys committed ahead in one refill of the key pool (at least as
  // many as one write needs). 0 is taken as 1.
  std::size_t key_pool_size = 256;
  // Where new epoch keys are held (null: sealed under the root key only).
  // Required to open a store any of whose epoch keys is in a custody.
  std::shared_ptr<EpochKeyCustody> custody;
  // A writable open destroys the custody keys the keys file lists as left
  // to destroy (FinishCustodyDestroy). False for a restored copy's open:
  // its list may be another store's — a backup of a store that took over
  // its original's keys lists the original's, and a copy with keys of its
  // own must never destroy those (outside audit 41a, F2) — so RestoreBackup
  // decides (RekeyCustody drops the list; a copy that takes over obeys it).
  bool finish_custody_destroy = true;
};

// What a copy of `keys` needs to open: its epochs and, for each held in a
// custody, the custody key's label (empty: sealed under the root key only).
struct EpochRecord {
  std::uint64_t epoch = 0;
  std::string custody_label;
};

class KeyStore {
 public:
  static Result<std::unique_ptr<KeyStore>> Open(const KeyStoreOptions& options);

  // True if the store was created before (has a root check).
  bool initialized() const { return initialized_; }
  // The KDF salt (16 bytes).
  const std::string& salt() const { return salt_; }

  // Creates the store's keys (if !initialized()) or verifies `root`.
  // WrongKey if `root` fails the root check; Corruption or
  // AuthenticationFailed if the check passes but stored keys do not open.
  // KeyDestroyed if an epoch key is held in a custody that no longer has
  // its key (this copy of `keys` predates the rotation that destroyed it);
  // FailedPrecondition if one is held in a custody and none was given.
  Status Unlock(const RootKey& root);

  // REQUIRES: Unlock() succeeded.
  const std::string& store_id() const { return store_id_; }
  const crypto::SecretKey& index_key() const { return *index_key_; }
  // An authentication tag (kTagSize bytes) of `message` for `purpose`, under
  // a key derived from the index key: the same for the store's whole life
  // and in every backup and restored copy of it, and unknown to anyone
  // without the root key. For what lies outside the sealed rows and must not
  // be changed unseen: a backup's MANIFEST, an erasure log, the custody
  // keys left to destroy. REQUIRES: Unlock() succeeded.
  static constexpr std::size_t kTagSize = 32;
  std::string Tag(std::string_view purpose, std::string_view message) const;
  // True if `tag` is Tag(purpose, message) (compared in constant time).
  bool TagMatches(std::string_view purpose, std::string_view message, std::string_view tag) const;
  std::uint64_t current_epoch() const;

  // A fresh random DEK (not yet stored).
  static Result<DekHandle> NewDek();

  // Wraps each key under the current epoch key and writes them all in one
  // committed transaction of the `keys` environment, then caches them. A
  // slot that already has a key gets the new one: the caller guarantees no
  // data was committed under the old key (it is an orphan of a failed
  // creation). Erased if a person is fenced: an erased ID never gets a key;
  // Internal if a category slot was erased: slots are never reused.
  Status PutDeks(const std::vector<NewKey>& keys);

  // ---- the key pool (see the top of this file) ----

  // Loads the pool at open: `claims` are every claim `data` holds. Claims
  // whose pool row exists become the claimed keys GetDek finds; the other
  // pool rows are the free pool; claims whose row is gone (adopted or
  // erased) are returned in *stale for the engine to delete from `data`.
  // REQUIRES: Unlock() succeeded; called once, before any write.
  Status LoadPool(const std::vector<KeyClaim>& claims, std::vector<PersonId>* stale);
  // `n` person keys for new people, each committed in `keys` (durable,
  // whatever the durability) before it is returned. Refills the pool first
  // when it holds fewer than `n`: one `keys` commit writing
  // max(n, key_pool_size) new keys and adopting every claimed key.
  // A key is anyone's once claimed: the caller checks a new person's ID is
  // not fenced (IsErased) before it claims one.
  Result<std::vector<PooledKey>> TakePooledKeys(std::size_t n);
  // Adopts every claimed key in one `keys` commit (none if there is none):
  // at a rotation's start and at close, so that a rotation re-wraps every
  // person's key and a closed store holds its people's keys in `deks`.
  Status AdoptClaims();
  // Deletes every free pool row in one commit (a restored copy: a backup
  // made before backups left them out may hold keys the original store
  // hands out later). Returns the rows deleted; their bytes stay in free
  // pages until the file is rebuilt (a rotation).
  Result<std::size_t> DropFreePool();
  // Before the `data` commit that records these claims: GetDek finds each
  // person's key from the moment that commit is visible (a reader that
  // sees the new person must find its key) until a refill or an erasure
  // adopts it. REQUIRES: the caller keeps every adoption and erasure out
  // until ClaimsCommitted or ClaimsFailed (the engine's write lock): a
  // claim whose commit may still fail must not be adopted. A person who
  // already has a claim keeps it.
  void RecordClaims(const std::vector<KeyClaim>& claims);
  // After the `data` commit that recorded these claims: each is the
  // person's claim (also where RecordClaims kept an earlier one: two
  // creates of one person in a group, the first failed) and the cache holds
  // each person's key. Call before ClaimsFailed of the same group.
  void ClaimsCommitted(const std::vector<KeyClaim>& claims, const std::vector<DekHandle>& deks);
  // The `data` commit of these recorded claims failed: each is forgotten
  // where it is still the person's claim (a failed create of a person that
  // exists leaves the person's own), its key leaves the cache and goes back
  // to the free pool.
  void ClaimsFailed(const std::vector<KeyClaim>& claims, std::vector<PooledKey> keys);
  // People whose claims were adopted (or erased) in `keys`: the engine
  // deletes their `key_claims` rows in a later `data` commit and then
  // calls ClaimsDeleted. A snapshot; nothing is removed.
  std::vector<PersonId> AdoptedClaims();
  void ClaimsDeleted(const std::vector<PersonId>& people);
  // Flushes every `keys` commit to disk (whatever the durability): before
  // the `data` side deletes claims a commit adopted.
  Status Sync();
  // Claimed keys not adopted yet, and free keys of the pool (this process).
  std::size_t claimed_keys();
  std::size_t free_pooled_keys();
  // For a read-only open beside a writer: how GetDek learns a claim made
  // after LoadPool (reads `data`'s key_claims; nullopt: none).
  void SetClaimLookup(std::function<Result<std::optional<std::uint64_t>>(const PersonId&)> lookup);

  // The person's DEK: NotFound if the person has none (never created, or
  // erased: ask IsErased()). A claimed pool key counts as the person's.
  Result<DekHandle> GetDek(const PersonId& person, std::uint32_t slot = kPersonSlot);
  // Epoch whose key wraps the person's DEK.
  Result<std::uint64_t> DekEpoch(const PersonId& person, std::uint32_t slot = kPersonSlot);

  // True if the person was erased (a fence exists).
  Result<bool> IsErased(const PersonId& person);
  // True if the category key in `slot` of the person was erased.
  Result<bool> IsSlotErased(const PersonId& person, std::uint32_t slot);

  Result<std::uint64_t> CountDeks();
  Result<KeyCounts> Counts();
  // How many pool keys were ever made (meta next_pool_index; 0 before the
  // first refill): a store that handed out no key has none.
  Result<std::uint64_t> PoolKeysEverMade();

  // People with at least one key, in key order, starting after person
  // `after` (empty: from the first), at most `limit`.
  Result<std::vector<PersonId>> PeopleWithKeys(std::string_view after, std::size_t limit);
  // Deletes every key (all slots) of each person in one committed
  // transaction and drops them from the cache; returns the keys deleted.
  // For orphans: keys of people whose creation never reached `data` (a
  // crash or a failed `data` commit after PutDeks). REQUIRES: no data row
  // was ever committed under them and no write can commit one now (the
  // engine's write_mu held). Writes no fence: the ID was never in use.
  Result<std::size_t> DeleteOrphanKeys(const std::vector<PersonId>& people);

  // ---- erasure ----

  // The erase commit: for every person (who must have a key and no fence:
  // NotFound / Erased otherwise, and nothing is written) deletes all key
  // slots, writes the fence and the purge ticket; writes the suppression
  // entries and the request (AlreadyExists if the id was used). Then drops
  // the people's keys from the cache. A category erasure (ErasureCommit::slot
  // > 0) deletes only that slot's key and fences the slot instead.
  Status CommitErasure(const std::vector<PersonId>& people, const ErasureRequest& request,
                       const std::vector<std::string>& suppress_hashes);
  // Several requests in one transaction and one fsync (group commit): all
  // or none. Their people must be disjoint.
  Status CommitErasures(const std::vector<ErasureCommit>& commits);
  Result<bool> IsSuppressed(std::string_view identifier_hash);
  // NotFound if not suppressed.
  Status Unsuppress(std::string_view identifier_hash);
  // Up to `limit` pending purge tickets in key order (a person's own ticket
  // before their category tickets); with `person`, only that person's.
  Result<std::vector<PurgeTicket>> PendingPurges(std::size_t limit, const PersonId* person = nullptr);
  // The people with a pending purge ticket (whole-person erasures only), by
  // the ticket's key alone: nothing is opened. For Stats on a read-only
  // open, where an erasure cut short before its `data` commit is not
  // finished (outside audit 39a, F3).
  Result<std::vector<PersonId>> PeoplePendingPurge();
  // Reads every pending purge ticket as PendingPurges does (checksum, key,
  // payload, the sealed links opened) and returns one problem a ticket that
  // does not read, instead of failing at the first. Fails only if the table
  // cannot be read (I/O).
  Result<std::vector<std::string>> CheckPurgeTickets();
  // Opens every row of the clear tables erasure keeps (fences, category
  // fences, erasure requests, suppressions) and returns one problem a row
  // whose checksum or key does not match: ReadErasureLog, GetErasure and
  // restores fail on such a row (outside audit 35a, F1: Verify did not look
  // at them). Fails only if a table cannot be read (I/O).
  Result<std::vector<std::string>> CheckClearRows();
  // Opens (authenticates under its epoch key) every row of the key pool,
  // free and claimed, and returns one problem a row that does not open: a
  // writable open loads the free ones and fails on such a row, which a
  // read-only open skips (outside audit 39a, F1: --read-only verify called
  // such a store clean). Fails only if the table cannot be read (I/O).
  Result<std::vector<std::string>> CheckPoolRows();
  // Removes the tickets and counts the people off their requests.
  Status FinishPurges(const std::vector<PurgeTicket>& done);
  Result<ErasureRequest> GetRequest(std::string_view request_id);
  // The ids of the requests whose key epoch is in [first_epoch, end_epoch):
  // those a rotation that moved the oldest epoch from first_epoch to
  // end_epoch made cryptographic. Reads every request (one row an erasure
  // request; a rotation reads every key anyway).
  Result<std::vector<std::string>> RequestIdsWithEpochIn(std::uint64_t first_epoch, std::uint64_t end_epoch);

  // ---- the erasure log ----

  // Every fence: erased people, then erased category keys, in key order.
  Result<std::vector<FenceRecord>> Fences();
  Result<std::vector<SuppressionRecord>> Suppressions();
  // Adds the hashes not suppressed yet, in one committed transaction;
  // returns how many were added.
  Result<std::uint64_t> AddSuppressions(const std::vector<SuppressionRecord>& entries);
  // Fences people this store never held, erased in another copy of it (a
  // restored backup re-applying the original's log), so that this store's
  // own log names their erasures from then on: a backup taken of the
  // original while they lived, restored with that log, must not bring them
  // back. A person who has a fence already is skipped; one who has a
  // person key is an error (Internal): erase them instead. Category keys of
  // a person without a person key (a creation cut short between its two
  // commits, as a volume snapshot may hold) are deleted with the fence.
  // Each fence's request gets a `requests` row so that GetErasure finds
  // it; `made_here` names the requests the caller has just made in this
  // store under the same id (the log's people this store held, erased
  // again), whose rows count the fenced people too (review 39, #12). A row
  // of any other erasure that has the id is left as it is.
  // One committed transaction; returns how many fences were written.
  Result<std::uint64_t> AddForeignFences(const std::vector<std::pair<PersonId, ErasureRequest>>& people,
                                         const std::set<std::string>& made_here = {});
  // The same for category erasures (request.category set) of people this
  // store holds but never gave a key in that category (review of stop 34,
  // R2's category half): each is fenced at a slot from
  // kFirstForeignCategorySlot up, which no key ever takes, so that this
  // store's own log names it. One already fenced (the same person, category
  // and request id) is skipped. `made_here` as for AddForeignFences. One
  // committed transaction; returns how many fences were written.
  Result<std::uint64_t> AddForeignCategoryFences(const std::vector<std::pair<PersonId, ErasureRequest>>& erasures,
                                                 const std::set<std::string>& made_here = {});
  // True if a category fence of `person` (at any slot) holds the erasure
  // `request_id` of `category`.
  Result<bool> HasCategoryFence(const PersonId& person, std::string_view category, std::string_view request_id);

  // ---- epoch rotation ----

  // The oldest epoch whose key still exists.
  std::uint64_t oldest_epoch() const;
  // Creates a new epoch key (wrapped under root) and makes it current;
  // remembers how many erasures were counted so far (those become
  // cryptographic with this rotation; later ones wait for the next).
  // StoreFull, with nothing written, if the disk lacks room for the whole
  // rotation (twice the live pages of `keys` and 1 MiB); Corruption, with
  // nothing written, if a page of `keys` is damaged (CheckPages).
  Result<std::uint64_t> BeginRotation(std::int64_t now_ms);
  // Every page of the `keys` file checked (storage::Environment::CheckPages).
  Result<storage::PageCheck> CheckPages();
  // Re-wraps up to `batch` DEKs of epochs older than `epoch` under it, in
  // one transaction, starting at *resume_key; sets *done at the end.
  Result<std::size_t> RewrapBatch(std::uint64_t epoch, std::size_t batch, std::string* resume_key,
                                  bool* done);
  // Deletes every epoch key older than `epoch` (no DEK may reference one),
  // commits twice more so neither LMDB meta page points at a tree holding
  // them, counts off the erasures made cryptographic, marks a rebuild of the
  // file as pending and forgets the old keys in memory.
  Result<std::uint64_t> DestroyEpochsBefore(std::uint64_t epoch);
  // Rewrites the `keys` file row by row into fresh zeroed pages (so no
  // deleted key survives in free pages or page slack) and swaps it in.
  // REQUIRES: no other call on this KeyStore runs concurrently.
  Status Rebuild();
  // True from DestroyEpochsBefore (or RewrapRoot) until a Rebuild completed:
  // old key bytes may still sit in free pages.
  bool rebuild_pending() const { return rebuild_pending_.load(); }
  // Whether an erasure under `key_epoch` waits for that rebuild to be
  // cryptographic: its epoch key is one the pending rebuild removes from
  // the file (at or above the rebuild's epoch floor; every erasure when the
  // floor is unknown: a rebuild left pending by a build before stop 31).
  bool AwaitsRebuild(std::uint64_t key_epoch) const {
    return rebuild_pending_.load() && key_epoch >= rebuild_floor_.load();
  }
  // False after a failed Rebuild left no environment open: the store must
  // be reopened.
  bool usable() const { return env_ != nullptr; }

  // The epochs whose keys exist, oldest first, with their custody labels.
  // While a rotation's DestroyEpochsBefore runs, the epochs it destroys are
  // listed until their keys leave memory (just after its commit).
  std::vector<EpochRecord> Epochs() const;
  // The same, as the snapshot `txn` of this environment records them (for a
  // backup taken from that snapshot; another process may have rotated since
  // this one loaded its epochs). Opens the rows under the root key only.
  Result<std::vector<EpochRecord>> EpochRecordsIn(const storage::ReadTxn& txn);
  // Wraps every epoch key held in the custody under a new custody key (new
  // labels) in one commit; the old custody keys are left alone. For a
  // restored copy that must not share custody keys with the store it was
  // copied from (whose rotations would destroy them). Returns the epochs
  // moved. On a failure the custody keys it made are destroyed again,
  // except any a commit that failed ambiguously may have stored (read back
  // to tell). REQUIRES: no other call on this KeyStore runs concurrently.
  // The same commit drops the custody keys the file lists to destroy: the
  // original's, never this store's to destroy (outside audit 41a, F2).
  Result<std::size_t> RekeyCustody();
  // From this call on, a rotation leaves the custody keys of the epochs it
  // destroys in the custody, listed in the keys file
  // ("custody_destroy_tagged"),
  // for FinishCustodyDestroy: the store's next writable open, or the caller
  // (a restored copy, whose rotation must not destroy its backup's custody
  // keys before the copy is in place: RestoreBackup).
  void DeferCustodyDestroy() { defer_custody_destroy_ = true; }
  // The custody labels rotations listed in the tagged list and have not
  // destroyed yet, those MayDestroyCustodyLabel allows. The untagged list
  // of builds before stop 37 is never obeyed (anyone able to write the file
  // could forge it). Corruption if the tagged list fails its tag.
  // *listed (if given): whether either list has a row at all.
  Result<std::vector<std::string>> CustodyKeysLeftToDestroy(bool* listed = nullptr);
  // True if `label` is one of this store's custody labels ("shredkv:<store
  // id prefix>:e<epoch>:...") of an epoch older than every epoch it holds,
  // and no held epoch's label: what a rotation of this store destroyed. A
  // listed label of another store sharing the token, or of this store's
  // current epoch, is never destroyed (review of stop 37, R2). Copies of a
  // store share the prefix: the tagged list's tag is what keeps a copy from
  // naming the original's current key.
  bool MayDestroyCustodyLabel(std::string_view label) const;
  // Destroys the custody keys CustodyKeysLeftToDestroy names and removes
  // the tagged list and the untagged one of older builds (after a crash
  // between the epochs' deletion and this, or a deferred destroy).
  Status FinishCustodyDestroy();

  // Re-seals everything sealed under the root key (the root check, the
  // index key, every epoch row) under `new_root` in one committed
  // transaction, commits twice more so neither meta page names the old
  // tree, and marks a rebuild pending (the old sealed rows may sit in free
  // pages until Rebuild). From then on only `new_root` opens the store.
  // REQUIRES: no other call on this KeyStore runs concurrently.
  Status RewrapRoot(const RootKey& new_root);

  // The keys environment's stale reader slots (Environment::ClearStaleReaders).
  Result<int> ClearStaleReaders() { return env_->ClearStaleReaders(); }

  // ---- test seams (forensic tests) ----
  Result<std::string> RawRowForTesting(std::string_view table, std::string_view key);
  Result<std::string> EpochKeyForTesting(std::uint64_t epoch);
  // The pool index of the person's claimed key (nullopt: not claimed).
  std::optional<std::uint64_t> ClaimForTesting(const PersonId& person);
  Result<storage::EnvInfo> Info() { return env_->Info(); }
  storage::Environment& environment() { return *env_; }
  DekCache& cache() { return cache_; }

 private:
  explicit KeyStore(const KeyStoreOptions& options)
      : options_(options), cache_(options.dek_cache_capacity) {}
  Status Create(const crypto::SecretKey& root);
  Status Load(const crypto::SecretKey& root);
  // Calls fn(epoch, payload) for every epoch row `txn` sees, the payload
  // (format.md §4.2) opened under `root` and wiped after fn returns.
  Status ForEachEpochPayload(const storage::ReadTxn& txn, const crypto::SecretKey& root,
                             const std::function<Status(std::uint64_t, std::string_view)>& fn);
  // The epoch keys and their custody labels as `txn` sees them; Corruption
  // if `current` has no key.
  Status ReadEpochKeys(const storage::ReadTxn& txn, const crypto::SecretKey& root, std::uint64_t current,
                       std::map<std::uint64_t, crypto::SecretKey>* keys, std::map<std::uint64_t, std::string>* labels);
  // Loads the epoch keys again (a writer in another process rotated).
  // REQUIRES: Unlock() succeeded.
  // In `txn`: `n` more erasures await the next rotation (the count the
  // rotation triggers read), the earliest of them at `erased_at_ms` or
  // before.
  Status CountUnrotatedErasures(storage::WriteTxn& txn, std::uint64_t n, std::int64_t erased_at_ms);
  // CheckPoolRows' one look, under the epoch keys loaded now.
  Result<std::vector<std::string>> CheckPoolRowsOnce();
  Status ReloadEpochs();
  // Opens a wrapped key row (u64 epoch ‖ sealed) whose AD key is `ad_key`.
  // REQUIRES: epoch_mu_ held (shared or unique).
  Result<DekHandle> OpenWrappedLocked(codec::TableId table, std::string_view ad_key, std::string_view row,
                                      const std::string& what) const;
  // A stored key as one snapshot holds it: the table (deks or pool), the
  // row key its AD binds, and the row (u64 epoch ‖ sealed).
  struct StoredKey {
    codec::TableId table;
    std::string_view ad_key;
    std::string_view row;
  };
  // The claim this process recorded for `person`, if any.
  std::optional<std::uint64_t> ClaimInMemory(const PersonId& person);
  // Calls `fn` inside one `keys` snapshot with the stored key of (person,
  // slot): its `deks` row or, for a person key claimed and not adopted,
  // its pool row (the claim this process holds or, beside a writer, the
  // one `data` holds). `lock_epochs`: the snapshot is taken, and fn runs,
  // under the shared epoch lock. NotFound if there is neither (read again
  // when a claim moved meanwhile); otherwise fn's status.
  Status WithStoredKey(const PersonId& person, std::uint32_t slot, bool lock_epochs,
                       const std::function<Status(const StoredKey&)>& fn);
  // Writes `count` new pool rows and adopts every claimed key, in one
  // commit, then syncs. REQUIRES: pool_mu_ held.
  Status RefillPoolLocked(std::size_t count);
  // Re-wraps every pool row of an epoch older than `epoch` under it.
  // REQUIRES: epoch_mu_ held (shared is enough: it only reads epoch keys).
  Status RewrapPoolInTxn(storage::WriteTxn& txn, std::uint64_t epoch);
  Status OpenEnvironment(bool create);
  Status EraseInTxn(storage::WriteTxn& txn, const ErasureCommit& commit);
  // The key purge tickets' analytics links are sealed under: H32(index key;
  // "purge-ticket-links"), so a holder of `keys` and `data` without the
  // root key cannot join an erased person to their old analytics rows
  // (outside audit 29a F2). REQUIRES: Unlock() succeeded.
  crypto::SecretKey TicketLinksKey() const;
  // Decodes one purge-queue row into `*out`, opening its sealed links with
  // `*links_key` (derived on first use).
  Status ReadTicket(std::string_view key, std::string_view row, std::optional<crypto::SecretKey>* links_key,
                    PurgeTicket* out) const;
  // The stored form of a new epoch's key: the key itself, or with a custody
  // a new custody key's label and the key wrapped by it (*label set).
  Result<std::string> NewEpochPayload(std::uint64_t epoch, const crypto::SecretKey& key, std::string* label);
  // The epoch key from its stored form; *label gets the custody label.
  Result<crypto::SecretKey> OpenEpochPayload(std::uint64_t epoch, std::string_view payload, std::string* label);
  // The custody keys left to destroy, as listed in the tagged row (its tag
  // checked: Corruption if it fails) and in the untagged row of older builds.
  // "shredkv:<store id prefix>:e": every custody label of this store starts
  // so, its epoch number following (NewEpochPayload, MayDestroyCustodyLabel).
  std::string CustodyLabelPrefix() const;
  // Calls `fn(slot, request)` for each category fence of `person` from slot
  // `from_slot` up, in slot order; stops at the first error `fn` returns.
  Status ForEachCategoryFence(const storage::ReadTxn& txn, const PersonId& person, std::uint32_t from_slot,
                              const std::function<Status(std::uint32_t, const ErasureRequest&)>& fn) const;
  Status ReadCustodyDestroyLists(const storage::ReadTxn& txn, std::vector<std::string>* tagged,
                                 std::vector<std::string>* untagged) const;
  // Flushes both LMDB meta pages past the last commit (two more commits).
  Status FlushMetaPages();
  Status ApplyRewrap(storage::WriteTxn& txn, const std::vector<std::pair<std::string, std::string>>& updates,
                     std::size_t* count);

  KeyStoreOptions options_;
  std::unique_ptr<storage::Environment> env_;
  storage::Table meta_, epochs_, deks_, fences_, suppressed_, purge_queue_, requests_, category_fences_, pool_;
  bool initialized_ = false;
  std::uint32_t format_ = kKeysFormatVersion;  // as read at Open
  std::string salt_;
  std::string store_id_;
  std::optional<crypto::SecretKey> index_key_;

  mutable std::shared_mutex epoch_mu_;
  std::uint64_t current_epoch_ = 0;
  std::map<std::uint64_t, crypto::SecretKey> epoch_keys_;
  std::map<std::uint64_t, std::string> epoch_labels_;  // custody labels; empty: root only
  std::optional<crypto::SecretKey> root_;  // to wrap new epoch keys
  std::atomic<bool> rebuild_pending_{false};
  std::atomic<std::uint64_t> rebuild_floor_{0};  // see AwaitsRebuild
  bool defer_custody_destroy_ = false;            // see DeferCustodyDestroy

  DekCache cache_;

  // The key pool, guarded by pool_mu_. Lock order: pool_mu_, then
  // epoch_mu_, then the environment's write lock. pool_mu_ is held over
  // the commits (and syncs) that move pool rows: a refill, an erasure.
  struct PersonIdHash {
    std::size_t operator()(const PersonId& id) const { return std::hash<std::string_view>{}(id.view()); }
  };
  std::mutex pool_mu_;
  std::vector<PooledKey> free_pool_;
  // claimed_ and claim_lookup_ are changed under pool_mu_ and claims_mu_
  // together and read under either (pool_generation_ moves with claimed_,
  // under claims_mu_): a key read (ClaimInMemory) takes only
  // claims_mu_, which is never held over I/O or another lock, so it does
  // not wait for a refill's or an erasure's flushes (review F4).
  std::mutex claims_mu_;
  std::unordered_map<PersonId, std::uint64_t, PersonIdHash> claimed_;
  std::vector<PersonId> adopted_;
  // Bumped by every commit that moves a claimed key (adoption, erasure):
  // a GetDek that raced with one reads again.
  std::atomic<std::uint64_t> pool_generation_{0};
  std::function<Result<std::optional<std::uint64_t>>(const PersonId&)> claim_lookup_;
};

}  // namespace shredkv::keys

#endif  // SHREDKV_KEYS_KEY_STORE_H_
