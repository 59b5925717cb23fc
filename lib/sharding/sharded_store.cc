#include "shredkv/sharded_store.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "crypto/keyed_hash.h"
#include "engine/backup.h"
#include "engine/store_impl.h"
#include "crypto/random.h"
#include "sharding/key_claims.h"
#include "sharding/shard_manifest.h"
#include "util/checksum.h"
#include "util/file_io.h"
#include "util/test_point.h"

namespace shredkv {

using sharding::KeyClaims;

// Builds a shard's part of a batch with the operations as queued (the
// person IDs a caller already holds must not change).
class WriteBatchAccess {
 public:
  static void Append(WriteBatch* batch, const WriteBatch::Op& op) { batch->ops_.push_back(op); }
  static void CreatePerson(WriteBatch* batch, const PersonId& id, std::vector<Identifier> identifiers,
                           Attributes profile) {
    batch->ops_.emplace_back(WriteBatch::CreatePersonOp{id, std::move(identifiers), std::move(profile)});
  }
};

namespace {

namespace fs = std::filesystem;

constexpr std::size_t kStripes = 64;

std::string ShardDirectory(const std::string& top, std::uint32_t index) {
  char name[24];
  std::snprintf(name, sizeof name, "shard-%03u", index);
  return top + "/" + name;
}

std::string ShardContext(std::uint32_t shard) { return "shard " + std::to_string(shard); }

// The ID of the store in `options.directory`, opened read only as whatever
// store it is (a backup's MANIFEST is not authenticated: the store's own
// ID decides what was restored).
Result<std::string> StoredId(Options options) {
  options.read_only = true;
  options.create_if_missing = false;
  options.shard_placement.reset();
  auto store = Store::Open(std::move(options));
  if (!store.ok()) return store.status();
  return (*store)->StoreId();
}

// `s` with the shards whose parts of the same call were committed before
// it failed named first (nothing to add when none was).
Status PartsCommitted(const Status& s, const std::vector<std::uint32_t>& committed) {
  if (committed.empty()) return s;
  std::string list;
  for (std::uint32_t c : committed) list += (list.empty() ? "" : ", ") + std::to_string(c);
  return s.WithContext("the parts of shards " + list + " are committed, the rest not");
}

const PersonId& OpPerson(const WriteBatch::Op& op) {
  return std::visit([](const auto& o) -> const PersonId& { return o.id; }, op);
}

// A shard part's error, naming the shard and, when the engine named the
// failing operation ("operation #k (…): …", k its index in the part), that
// operation by its index in the caller's batch instead.
Status PartError(const Status& s, const std::vector<std::size_t>& original, std::uint32_t shard) {
  static constexpr std::string_view kPrefix = "operation #";
  const std::string& m = s.message();
  if (m.compare(0, kPrefix.size(), kPrefix) == 0) {
    std::size_t end = kPrefix.size();
    std::size_t k = 0;
    while (end < m.size() && end < kPrefix.size() + 9 && m[end] >= '0' && m[end] <= '9') {
      k = k * 10 + static_cast<std::size_t>(m[end++] - '0');
    }
    if (end > kPrefix.size() && k < original.size()) {
      return s.WithMessage("operation #" + std::to_string(original[k]) + m.substr(end) + " (" + ShardContext(shard) + ")");
    }
  }
  return s.WithContext(ShardContext(shard));
}

// The shards' iterators one after another; shard k's is made (by
// `open(k)`) only when shard k-1's is exhausted. A shard's iterator can end
// between calls (an erasure ends or shortens its batch: iterator.h), so
// Valid() and value() move on to the next shard then too; the iterator is
// a heap object made non-const, so casting const away is defined. As in one
// store (iterator.h), an entry value() handed out stays valid until Next()
// (the shard's iterator that ended is kept until then), and Next() moves
// past it, not past an entry of the next shard only Valid() has seen.
template <typename T>
class ConcatIterator final : public Iterator<T> {
 public:
  ConcatIterator(std::uint32_t shards, std::function<std::unique_ptr<Iterator<T>>(std::uint32_t)> open)
      : shards_(shards), open_(std::move(open)) {
    Settle();
  }
  bool Valid() const override {
    Self().Settle();
    return current_ != nullptr;
  }
  void Next() override {
    // Settle() moved past the shown entry already unless value() showed
    // the current one since.
    if (current_ != nullptr && (!moved_past_shown_ || shown_)) current_->Next();
    moved_past_shown_ = false;
    shown_ = false;
    finished_.clear();
    Settle();
  }
  const T& value() const override {
    ConcatIterator& self = Self();
    self.Settle();
    if (current_ == nullptr) return gone_;
    self.shown_ = true;
    return current_->value();
  }
  Status status() const override { return status_; }

 private:
  ConcatIterator& Self() const { return const_cast<ConcatIterator&>(*this); }
  // The current shard's iterator ended: kept until Next() if value() handed
  // out its entry (Settle() then moved past that entry).
  void Retire() {
    if (shown_) {
      finished_.push_back(std::move(current_));
      moved_past_shown_ = true;
      shown_ = false;
    }
    current_.reset();
  }
  // Moves on to the next shard while the current one is exhausted; stays
  // at the end after an error.
  void Settle() {
    if (!status_.ok()) return;
    for (;;) {
      if (current_ != nullptr) {
        if (current_->Valid()) return;
        if (Status s = current_->status(); !s.ok()) {
          status_ = s.WithContext(ShardContext(shard_ - 1));
          Retire();
          return;
        }
        Retire();
      }
      if (shard_ == shards_) return;
      current_ = open_(shard_++);
    }
  }

  std::uint32_t shards_;
  std::function<std::unique_ptr<Iterator<T>>(std::uint32_t)> open_;
  std::uint32_t shard_ = 0;  // the next shard to open
  std::unique_ptr<Iterator<T>> current_;  // valid, or null at the end
  bool shown_ = false;                     // value() handed out current_'s entry
  bool moved_past_shown_ = false;          // an ended shard's shown entry is behind us
  std::vector<std::unique_ptr<Iterator<T>>> finished_;  // ended, with a shown entry: until Next()
  Status status_;
  const T gone_{};
};

// Found records of every shard merged by expiry (each shard's in expiry
// order already): the shard with the soonest current record goes first. A
// shard's current record can change between calls (an erasure: iterator.h),
// so Valid() and value() pick again; the iterator is a heap object made
// non-const, so casting const away is defined.
class ExpiryMergeIterator final : public Iterator<FoundRecord> {
 public:
  explicit ExpiryMergeIterator(std::vector<std::unique_ptr<Iterator<FoundRecord>>> parts)
      : parts_(std::move(parts)) {
    Pick();
  }
  bool Valid() const override {
    Self().Pick();
    return current_ != kNone;
  }
  // Past the record value() handed out last (the pick may have changed
  // since, after an erasure); without one, past the current record.
  void Next() override {
    const std::size_t past = shown_part_ != kNone ? shown_part_ : current_;
    if (past != kNone) parts_[past]->Next();
    shown_part_ = kNone;
    Pick();
  }
  const FoundRecord& value() const override {
    ExpiryMergeIterator& self = Self();
    self.Pick();
    if (current_ == kNone) return gone_;
    self.shown_part_ = current_;
    return parts_[current_]->value();
  }
  Status status() const override { return status_; }

 private:
  static constexpr std::size_t kNone = SIZE_MAX;
  ExpiryMergeIterator& Self() const { return const_cast<ExpiryMergeIterator&>(*this); }
  void Pick() {
    if (!status_.ok()) return;
    current_ = kNone;
    for (std::size_t i = 0; i < parts_.size(); ++i) {
      auto& p = *parts_[i];
      if (!p.Valid()) {
        if (Status s = p.status(); !s.ok()) {
          status_ = s.WithContext(ShardContext(static_cast<std::uint32_t>(i)));
          current_ = kNone;
          return;
        }
        continue;
      }
      if (current_ == kNone ||
          p.value().record.metadata.expires_ms < parts_[current_]->value().record.metadata.expires_ms) {
        current_ = i;
      }
    }
  }

  std::vector<std::unique_ptr<Iterator<FoundRecord>>> parts_;
  std::size_t current_ = kNone;
  std::size_t shown_part_ = kNone;  // the part value() handed out a record of since Next()
  Status status_;
  const FoundRecord gone_{};
};

ErasureLevel Lower(ErasureLevel a, ErasureLevel b) {
  return static_cast<std::uint8_t>(a) < static_cast<std::uint8_t>(b) ? a : b;
}

}  // namespace

struct ShardedStore::Impl {
  Options options;
  std::vector<std::unique_ptr<Store>> shards;
  sharding::ShardManifest manifest;  // count, salt, routing key (Backup writes them)
  std::vector<std::string> store_ids;  // each shard's store ID, by shard
  std::array<std::mutex, kStripes> stripes;
  std::atomic<std::uint64_t> next_start{0};  // Write: the first shard of a split batch
  // Writes CheckClaim refused as Suppressed before any shard saw them
  // (StoreStats::suppressed_rejections counts them with the shards').
  std::atomic<std::uint64_t> suppressed_rejections{0};

  std::uint32_t count() const { return static_cast<std::uint32_t>(shards.size()); }

  std::uint32_t ShardOf(const PersonId& id) const {
    return static_cast<std::uint32_t>(util::Checksum64(id.view()) % shards.size());
  }

  // SipHash-2-4 of the normalised identifier under the routing key: its
  // home shard (low bits) and its lock stripe (high bits).
  std::uint64_t RouteHash(const Identifier& normalized) const {
    std::string message = normalized.type;
    message.push_back('\0');
    message += normalized.value;
    const std::uint64_t h = crypto::ShortKeyedHash(manifest.routing_key->view().substr(0, 16), message);
    crypto::Wipe(&message);
    return h;
  }
  std::uint32_t HomeOf(const Identifier& normalized) const {
    return static_cast<std::uint32_t>(RouteHash(normalized) % shards.size());
  }

  Result<Identifier> Normalize(const Identifier& identifier) const {
    return NormalizeIdentifier(identifier, options.identifier_types);
  }

  PersonId NewPersonIn(std::uint32_t shard) const {
    for (;;) {
      PersonId id(crypto::RandomArray<PersonId::kSize>());
      if (ShardOf(id) == shard) return id;
    }
  }

  // The lock stripes of the identifiers, locked in stripe order (so that
  // two calls never wait for each other crosswise), released on scope exit.
  class StripeGuard {
   public:
    StripeGuard(Impl& impl, const std::vector<Identifier>& normalized) {
      std::set<std::size_t> wanted;
      for (const Identifier& i : normalized) wanted.insert((impl.RouteHash(i) >> 32) % kStripes);
      for (std::size_t s : wanted) locks_.emplace_back(impl.stripes[s]);
    }

   private:
    std::vector<std::unique_lock<std::mutex>> locks_;
  };

  // OK if `claimant` (a person of shard `claimant_shard`) may take the
  // identifier: no shard holds it for another live person — except its own
  // shard when `released_there` (an earlier operation of the same batch
  // gives it up there: that shard decides, in one commit). AlreadyExists
  // (someone else's), Suppressed (after an erasure). An identifier whose
  // person was erased is free, as in one store. Checking the claimant's own
  // shard too means a batch is refused before any of its parts commits.
  Status CheckClaim(const Identifier& normalized, const PersonId& claimant, std::uint32_t claimant_shard,
                    bool released_there = false) {
    bool held = false;  // by the claimant already: nothing new is claimed
    for (std::uint32_t s = 0; s < count(); ++s) {
      auto r = shards[s]->Resolve(normalized);
      if (r.ok()) {
        held = held || *r == claimant;
        if (*r == claimant || (s == claimant_shard && released_there)) continue;
        return Status::AlreadyExists("identifier of type '" + normalized.type + "' belongs to another person");
      }
      const StatusCode c = r.status().code();
      if (c == StatusCode::kNotFound || c == StatusCode::kErased) continue;
      if (c == StatusCode::kSuppressed) {
        suppressed_rejections.fetch_add(1, std::memory_order_relaxed);
        return Status::Suppressed("identifier of type '" + normalized.type + "' is suppressed after an erasure");
      }
      return r.status().WithContext(ShardContext(s));
    }
    // A look-alike identifier, refused before any part commits as a shard
    // would refuse it in its own part (second review of stop 36, R2).
    if (!held) return CheckNewIdentifier(normalized, options.identifier_types);
    return Status::OK();
  }

  // Where an identifier's person lives: the home shard first. A suppressed
  // identifier is Suppressed at once (no shard may hold it then); one whose
  // person was erased is Erased unless another shard holds it for a live
  // person (created again after the erasure).
  Result<std::pair<std::uint32_t, PersonId>> Locate(const Identifier& identifier) {
    auto normalized = Normalize(identifier);
    if (!normalized.ok()) return normalized.status();
    const std::uint32_t home = HomeOf(*normalized);
    std::optional<Status> erased;
    for (std::uint32_t k = 0; k < count(); ++k) {
      const std::uint32_t s = (home + k) % count();
      auto r = shards[s]->Resolve(*normalized);
      if (r.ok()) return std::make_pair(s, *r);
      const StatusCode c = r.status().code();
      if (c == StatusCode::kNotFound) continue;
      if (c == StatusCode::kErased) {
        if (!erased) erased = r.status();
        continue;
      }
      return r.status();
    }
    if (erased) return *erased;
    return Status::NotFound("no person has this identifier");
  }

  // Claims the people (person_claims) for a call on many of them
  // (Restrict, Unrestrict, SetConsent, Erase) or EraseByIdentifier, from
  // its check of the people (CheckedParts, LocateAndRead) to its last part, so a concurrent
  // erasure of one of them cannot fail a later part after an earlier one
  // committed (stop 27's audit, F7). Calls through shard(i) bypass it.
  // A split Write claims its people shared (ClaimPeople with kShared):
  // writers of batches that share people do not wait for each other, an
  // erasure of one of them waits for the Write and new writers wait behind
  // the erasure.
  Result<KeyClaims::Held> ClaimPeople(const std::vector<PersonId>& people,
                                      KeyClaims::Mode mode = KeyClaims::Mode::kExclusive) {
    std::vector<std::string> keys;
    keys.reserve(people.size());
    for (const PersonId& p : people) keys.emplace_back(p.view());
    return person_claims.Claim(std::move(keys), mode, "one of these people");
  }

  // Where a person is, and what reading them there gave (GetPerson's
  // status: OK, Erased, ...; NotFound when no shard holds them).
  struct Located {
    std::uint32_t shard;
    Status status;
  };

  // The shard that holds `id`: its ShardOf, unless the person is not there
  // but in another shard — one created through a shard opened alone, whose
  // random ID routes elsewhere (outside audit 32b, F4: export and erasure
  // by ID answered NotFound while the person's data was there). One
  // GetPerson in the home shard; the others are asked only on a miss.
  Located LocateAndRead(const PersonId& id) {
    const std::uint32_t home = ShardOf(id);
    Status at_home = shards[home]->GetPerson(id).status();
    if (!at_home.IsNotFound()) return {home, std::move(at_home)};
    for (std::uint32_t s = 0; s < count(); ++s) {
      if (s == home) continue;
      Status there = shards[s]->GetPerson(id).status();
      if (!there.IsNotFound()) return {s, std::move(there)};
    }
    return {home, std::move(at_home)};
  }
  std::uint32_t Locate(const PersonId& id) { return LocateAndRead(id).shard; }

  // `people` by the shard that holds them, each part in the caller's
  // order, once every person is found live (the check, with the people
  // claimed, before a call on many people commits its first part). One
  // read a person.
  Result<std::map<std::uint32_t, std::vector<PersonId>>> CheckedParts(const std::vector<PersonId>& people) {
    std::map<std::uint32_t, std::vector<PersonId>> parts;
    for (const PersonId& p : people) {
      Located at = LocateAndRead(p);
      if (!at.status.ok()) return at.status;
      parts[at.shard].push_back(p);
    }
    return parts;
  }

  // `call(shard)` on every shard in order, each result folded into one by
  // `add(sum, result)`; the first error, naming its shard.
  template <typename Sum, typename Call, typename Add>
  Result<Sum> SumOverShards(Call&& call, Add&& add) {
    Sum sum{};
    for (std::uint32_t s = 0; s < count(); ++s) {
      auto r = call(*shards[s]);
      if (!r.ok()) return r.status().WithContext(ShardContext(s));
      add(sum, *r);
    }
    return sum;
  }

  // Runs `fn(shard, part)` on every part in shard order; the first error,
  // naming its shard and the shards whose parts were committed before it.
  template <typename Fn>
  Status EachPart(const std::map<std::uint32_t, std::vector<PersonId>>& parts, Fn&& fn) {
    std::vector<std::uint32_t> committed;
    for (const auto& [s, part] : parts) {
      if (Status st = fn(*shards[s], part); !st.ok()) return PartsCommitted(st.WithContext(ShardContext(s)), committed);
      committed.push_back(s);
    }
    return Status::OK();
  }

  // Erasure request ids: two erasures under one request id run one after
  // the other, so the id is checked unused in every shard and used in all
  // of them atomically with respect to each other.
  KeyClaims request_claims;
  // People (ClaimPeople). Claimed before a request id.
  KeyClaims person_claims;
};

// ---- Open and close ------------------------------------------------------------

Result<std::unique_ptr<ShardedStore>> ShardedStore::Open(Options options, std::uint32_t shard_count) {
  if (options.directory.empty()) return Status::InvalidArgument("Options::directory is empty");
  if (!options.key_provider) return Status::InvalidArgument("Options::key_provider is required");
  if (shard_count > kMaxShards) {
    return Status::InvalidArgument("a sharded store has at most " + std::to_string(kMaxShards) + " shards");
  }
  if (options.read_only && options.create_if_missing) {
    return Status::InvalidArgument("read_only and create_if_missing exclude each other");
  }
  const std::string top = options.directory;
  const std::string manifest_path = top + "/" + sharding::kManifestName;
  auto impl = std::make_unique<Impl>();

  std::error_code exists_ec;
  if (options.error_if_exists && fs::exists(manifest_path, exists_ec)) {
    return Status::AlreadyExists("a sharded store exists in '" + top + "'");
  }
  auto manifest = sharding::ReadManifest(manifest_path, *options.key_provider);
  bool creating = false;
  std::vector<sharding::ShardMarker> markers;  // by shard, when not creating
  std::vector<std::string> store_ids;         // by shard
  if (manifest.ok()) {
    if (shard_count != 0 && shard_count != manifest->shard_count) {
      return Status::InvalidArgument("the store in '" + top + "' has " + std::to_string(manifest->shard_count) +
                                     " shards, not " + std::to_string(shard_count));
    }
    if (manifest->shard_count > kMaxShards) return Status::Corruption("'" + manifest_path + "': too many shards");
  } else if (manifest.status().IsNotFound()) {
    if (!options.create_if_missing || options.read_only) {
      return Status::NotFound("no sharded store in '" + top + "' (no " + sharding::kManifestName + " file)");
    }
    if (shard_count == 0) return Status::InvalidArgument("the shard count is required to create a sharded store");
    std::error_code ec;
    if (fs::exists(top + "/keys", ec) || fs::exists(top + "/data", ec)) {
      return Status::InvalidArgument("'" + top + "' holds a store, not a sharded store");
    }
    // Shards beyond the count asked for: not a creation cut short.
    if (fs::exists(ShardDirectory(top, shard_count), ec)) {
      return Status::Corruption("'" + top + "' has no " + sharding::kManifestName + " file but more than " +
                                std::to_string(shard_count) + " shards (a lost manifest?)");
    }
    // A creation cut short leaves empty shards behind; a sharded restore
    // cut short leaves restored shards, whose keys files list custody keys
    // for their next writable open to destroy (with kTakeOver, the
    // backup's own). So each shard found is read first, read-only, and one
    // holding data refuses the creation before anything opens it to write
    // (outside audit 38c, F3: the writable open below came first, destroyed
    // the backup's custody keys, and only then refused; the backup could
    // not be restored again).
    for (std::uint32_t i = 0; i < shard_count; ++i) {
      Options probe = options;
      probe.directory = ShardDirectory(top, i);
      if (!fs::exists(probe.directory, ec)) continue;
      probe.read_only = true;
      probe.create_if_missing = false;
      probe.error_if_exists = false;
      probe.shard_placement.reset();
      auto found = Store::Open(std::move(probe));
      if (found.status().IsNotFound()) continue;  // no store there yet
      if (!found.ok()) return found.status().WithContext(ShardContext(i));
      auto st = (*found)->Stats();
      if (!st.ok()) return st.status().WithContext(ShardContext(i));
      if (st->people != 0 || st->erased != 0) {
        return Status::Corruption("'" + top + "' has no " + sharding::kManifestName + " file but shard " +
                                  std::to_string(i) +
                                  " holds data (a lost manifest, or a sharded restore cut short: remove the "
                                  "directory and restore again)");
      }
    }
    fs::create_directories(top, ec);
    if (ec) return Status::IOError("cannot create '" + top + "': " + ec.message());
    manifest = sharding::NewManifest(shard_count);
    if (!manifest.ok()) return manifest.status();
    creating = true;
  } else {
    return manifest.status();
  }

  // The shards first, SHARDS last: a creation cut short leaves no SHARDS,
  // and the next creating open picks up the shards already made. With
  // SHARDS present every shard must exist (a missing one is not re-created).
  for (std::uint32_t i = 0; i < manifest->shard_count; ++i) {
    Options o = options;
    o.directory = ShardDirectory(top, i);
    // A sharded restore cut short after it wrote SHARDS (which it writes
    // once every shard is in place, each with its SHARD marker) leaves
    // shards still marked as restores in progress: they are whole (review
    // of stop 38, R3). A shard marked without a SHARD marker that places
    // it here is a RestoreShard cut short after its rename: its keys file
    // may list the backup's custody keys to destroy, so it is not opened to
    // write (outside audit 41a, F1: the marker was removed, the shard
    // opened writable — the backup's token key destroyed — and only then
    // refused for its missing SHARD).
    std::error_code marked_ec;
    if (!creating && !options.read_only &&
        fs::exists(o.directory + "/" + std::string(engine::kRestoreMarker), marked_ec)) {
      if (auto placed = sharding::ReadShardMarker(o.directory, i, *manifest); !placed.ok()) {
        for (auto& opened : impl->shards) (void)opened->Close();
        return Status::InvalidArgument(
                   "'" + o.directory + "' holds a shard restore cut short (its " +
                   std::string(engine::kRestoreMarker) + " file, and " + placed.status().message() +
                   "): run ShardedStore::RestoreShard for it again, which removes it and restores it anew, "
                   "or open that shard alone read-only to look (the sharded store does not open without the "
                   "shard's SHARD marker, read-only either); opening it to write would destroy custody keys "
                   "its backup needs")
            .WithContext(ShardContext(i));
      }
      if (Status m = CompleteDeferredRestore(o.directory); !m.ok()) {
        for (auto& opened : impl->shards) (void)opened->Close();
        return m.WithContext(ShardContext(i));
      }
    }
    o.error_if_exists = false;
    o.create_if_missing = creating;
    o.shard_placement = ShardPlacement{i, manifest->shard_count};  // its people only; recorded
    auto shard = Store::Open(std::move(o));
    if (!shard.ok()) {
      for (auto& opened : impl->shards) (void)opened->Close();
      if (!creating && shard.status().IsNotFound()) {
        return Status::Corruption("shard " + std::to_string(i) + " of '" + top + "' is missing");
      }
      return shard.status().WithContext(ShardContext(i));
    }
    impl->shards.push_back(std::move(*shard));
    // An existing shard must be this one; one a creation cut short left
    // behind must hold nothing yet (else the manifest was lost, and a new
    // routing key and count would make its people unreachable).
    Status place;
    auto id = impl->shards.back()->StoreId();
    if (!id.ok()) {
      place = id.status();
    } else if (!creating) {
      store_ids.push_back(*id);
      auto marker = sharding::ReadShardMarker(ShardDirectory(top, i), i, *manifest);
      if (marker.ok()) {
        markers.push_back(std::move(*marker));
      } else {
        place = marker.status();
      }
    } else if (auto st = impl->shards.back()->Stats(); !st.ok()) {
      place = st.status();
    } else if (st->people != 0 || st->erased != 0) {
      place = Status::Corruption("'" + top + "' has no " + sharding::kManifestName + " file but shard " +
                                 std::to_string(i) + " holds data (a lost manifest?)");
    } else {
      store_ids.push_back(*id);
    }
    if (!place.ok()) {
      for (auto& opened : impl->shards) (void)opened->Close();
      return place;
    }
  }
  // Every marker of layout 2 names every shard's store: the store in each
  // directory must be the one its place names (another store's files put
  // in place of a shard's, or two shards' contents swapped, are not).
  bool layout1 = creating;
  for (std::uint32_t i = 0; !creating && i < manifest->shard_count; ++i) {
    const std::vector<std::string>& named = markers[i].store_ids;
    if (named.empty()) {
      layout1 = true;
      continue;
    }
    for (std::uint32_t j = 0; j < manifest->shard_count; ++j) {
      if (named[j] == store_ids[j]) continue;
      for (auto& opened : impl->shards) (void)opened->Close();
      return Status::Corruption("'" + ShardDirectory(top, j) + "' holds store " + store_ids[j] + ", but shard " +
                                std::to_string(j) + " of this store is store " + named[j] +
                                " (a shard's files replaced or swapped?)");
    }
  }
  // Markers only once every shard is known to be empty: a refused creation
  // rewrites nothing. Layout-1 markers (before stop 27) are rewritten with
  // the store IDs at a writable open.
  for (std::uint32_t i = 0; layout1 && !options.read_only && i < manifest->shard_count; ++i) {
    if (Status w = sharding::WriteShardMarker(ShardDirectory(top, i), i, store_ids, *manifest); !w.ok()) {
      for (auto& opened : impl->shards) (void)opened->Close();
      return w;
    }
  }
  if (creating) {
    util::TestPoint("sharded.before_manifest");
    if (Status w = sharding::WriteManifest(manifest_path, *manifest, *options.key_provider); !w.ok()) {
      for (auto& opened : impl->shards) (void)opened->Close();
      return w;
    }
  }
  impl->manifest = std::move(*manifest);
  impl->store_ids = std::move(store_ids);
  impl->options = std::move(options);
  return std::unique_ptr<ShardedStore>(new ShardedStore(std::move(impl)));
}

Result<RestoreResult> ShardedStore::RestoreShard(const std::string& backup_dir, const Options& options,
                                                 std::uint32_t index, const RestoreOptions& restore) {
  if (options.key_provider == nullptr) return Status::InvalidArgument("Options::key_provider is required");
  // As RestoreBackup checks them, before anything is read: the path below
  // for files found in place does not go through it.
  if (restore.erasure_log == nullptr && !restore.without_erasure_log) {
    return Status::InvalidArgument(
        "restoring needs the live store's erasure log (erasures made after the backup would come back "
        "otherwise), or RestoreOptions::without_erasure_log");
  }
  if (restore.erasure_log != nullptr && restore.without_erasure_log) {
    return Status::InvalidArgument("an erasure log and without_erasure_log contradict each other: give one");
  }
  const std::string& top = options.directory;
  auto manifest = sharding::ReadManifest(top + "/" + sharding::kManifestName, *options.key_provider);
  if (manifest.status().IsNotFound()) return Status::NotFound("no sharded store in '" + top + "'");
  if (!manifest.ok()) return manifest.status();
  if (index >= manifest->shard_count) {
    return Status::InvalidArgument("the store in '" + top + "' has " + std::to_string(manifest->shard_count) +
                                   " shards, no shard " + std::to_string(index));
  }
  // The store the other shards name for this place: any one readable
  // marker of layout 2 tells (others may be lost too).
  std::vector<std::string> store_ids;
  Status unreadable;
  for (std::uint32_t j = 0; j < manifest->shard_count && store_ids.empty(); ++j) {
    if (j == index) continue;
    auto marker = sharding::ReadShardMarker(ShardDirectory(top, j), j, *manifest);
    if (marker.ok()) {
      store_ids = marker->store_ids;
    } else if (unreadable.ok()) {
      unreadable = marker.status().WithContext(ShardContext(j));
    }
  }
  if (store_ids.empty()) {
    if (!unreadable.ok()) return unreadable;
    return Status::FailedPrecondition("no other shard of '" + top + "' names the store of shard " +
                                      std::to_string(index) +
                                      " (a one-shard store, or markers made before stop 27: open it writable "
                                      "once while it is whole)");
  }
  const std::string& expected = store_ids[index];
  auto info = ReadBackupInfo(backup_dir);
  if (!info.ok()) return info.status();
  if (info->store_id != expected) {
    return Status::InvalidArgument("the backup in '" + backup_dir + "' is of store " + info->store_id + "; shard " +
                                   std::to_string(index) + " of '" + top + "' is store " + expected);
  }
  // Also for files found in place, which skip RestoreBackup and its check
  // (review of stop 35, R2).
  if (restore.erasure_log != nullptr) {
    if (Status t = CheckErasureLogReadAfter(*restore.erasure_log, *info); !t.ok()) {
      return t.WithContext(ShardContext(index));
    }
  }
  Options shard_options = options;
  shard_options.directory = ShardDirectory(top, index);
  shard_options.shard_placement.reset();  // the restore opens whatever store the backup holds
  RestoreResult result;
  std::error_code ec;
  // A restore of this shard cut short after its copy was renamed into
  // place, its restore marker not yet removed (since stop 40 the marker
  // goes into place with the copy): nothing in it was used (writable opens
  // refuse the marker) and the backup's custody keys are all there, so it
  // is removed and the shard restored again (review 40, #3: the files in
  // place were re-applied through a writable open the marker refused).
  if (fs::exists(shard_options.directory + "/" + std::string(engine::kRestoreMarker), ec) &&
      !fs::exists(shard_options.directory + "/SHARD", ec)) {
    fs::remove_all(shard_options.directory, ec);
    if (ec) {
      return Status::IOError("cannot remove '" + shard_options.directory + "', a restore of it cut short: " +
                             ec.message());
    }
  }
  if (fs::exists(shard_options.directory + "/keys", ec) && !fs::exists(shard_options.directory + "/SHARD", ec)) {
    // A restore cut short after its copy was renamed into place and before
    // its marker was written: finished if the store there is the right one.
    // The files may as well be a copy put there by hand, of any age: the
    // log is re-applied to them as RestoreBackup applies it (outside audit
    // 34, F1: they were blessed as restored with the log ignored, and a
    // person erased after them came back). For the copy of a cut-short
    // restore it finds every erasure applied and changes nothing. Files it
    // cannot open say why (review of stop 34, R8: a wrong key read as
    // "not the shard's store").
    auto there = StoredId(shard_options);
    if (!there.ok()) {
      Status s = there.status().WithContext("'" + shard_options.directory + "' holds files without a marker");
      if (s.IsWrongKey()) {
        s = s.WithContext("(files under another root key, as of a backup taken before a root-key rotation: move "
                          "them away and restore from the backup with RestoreOptions::backup_key_provider)");
      }
      return s.WithContext(ShardContext(index));
    }
    if (*there != expected) {
      return Status::AlreadyExists("'" + shard_options.directory + "' holds files that are not shard " +
                                   std::to_string(index) + "'s store: move them away first");
    }
    if (restore.erasure_log != nullptr) {
      // The restore's custody choice holds for these files too (outside
      // audit 40a, F1: a copy of a token store shares its custody keys).
      ReapplyOptions reapply;
      reapply.accept_untagged_log = restore.accept_untagged_log;
      reapply.custody_keys = restore.custody_keys;
      auto applied = ReapplyErasureLog(shard_options, *restore.erasure_log, reapply);
      if (!applied.ok()) return applied.status().WithContext(ShardContext(index));
      result.applied = *applied;
    }
    result.backup = std::move(*info);
  } else {
    auto restored = RestoreBackup(backup_dir, shard_options, restore);
    if (!restored.ok()) return restored.status().WithContext(ShardContext(index));
    result = std::move(*restored);
    // The backup's MANIFEST is not authenticated: the store's own ID decides.
    auto there = StoredId(shard_options);
    if (!there.ok() || *there != expected) {
      fs::remove_all(shard_options.directory, ec);
      for (const std::string& label : result.new_custody_labels) (void)options.epoch_key_custody->DestroyKey(label);
      if (!there.ok()) return there.status().WithContext(ShardContext(index));
      return Status::InvalidArgument("the backup in '" + backup_dir + "' holds store " + *there + ", not " + expected +
                                     " (its MANIFEST names another)");
    }
  }
  if (Status w = sharding::WriteShardMarker(shard_options.directory, index, store_ids, *manifest); !w.ok()) {
    return w;
  }
  return result;
}

Status ShardedStore::RotateRootKey(const Options& options, std::shared_ptr<KeyProvider> new_key) {
  if (options.key_provider == nullptr || new_key == nullptr) {
    return Status::InvalidArgument("RotateRootKey needs Options::key_provider (the current root key) and the new one");
  }
  if (options.read_only) return Status::InvalidArgument("RotateRootKey cannot run on a read-only open");
  const std::string& top = options.directory;
  const std::string manifest_path = top + "/" + sharding::kManifestName;
  std::error_code ec;
  if (!fs::exists(manifest_path, ec)) return Status::NotFound("no sharded store in '" + top + "'");
  // SHARDS is re-sealed last: while it opens with the old key only, the
  // rotation is not finished (a run cut short is run again).
  bool manifest_rotated = true;
  auto manifest = sharding::ReadManifest(manifest_path, *new_key);
  if (manifest.status().IsWrongKey()) {
    manifest_rotated = false;
    manifest = sharding::ReadManifest(manifest_path, *options.key_provider);
  }
  if (!manifest.ok()) return manifest.status();
  // Every shard in its place before the first is rotated: a missing one
  // found half-way would leave the store under two keys.
  for (std::uint32_t i = 0; i < manifest->shard_count; ++i) {
    if (!fs::exists(ShardDirectory(top, i) + "/keys", ec)) {
      return Status::Corruption("shard " + std::to_string(i) + " of '" + top +
                                "' is missing (put it back with RestoreShard first); nothing was rotated");
    }
  }
  // Once a shard is under the new key, every error says the rotation is
  // cut short and how to finish it: the store then opens with neither key
  // (outside audit 34, F7: a shard that could not be opened half-way said
  // only why, and the operator found WrongKey under both keys).
  bool rotating = false;
  auto failed = [&](Status s, std::uint32_t i) {
    s = s.WithContext(ShardContext(i));
    if (!rotating) return s;
    return s.WithContext("the rotation is cut short: shards up to " + ShardContext(i) +
                         " may be under the new root key already, and the store opens with neither key until "
                         "RotateRootKey is run again with the same two keys to finish");
  };
  // Every shard opened (and closed) first, under either key, before any is
  // re-sealed: a shard another process holds, or one neither key opens,
  // stops the rotation with nothing changed (outside audit 41b, F4: shards
  // before a busy one were re-sealed, and the store then opened with
  // neither key). A shard taken between this pass and its turn still cuts
  // the rotation short, as before, with the message saying how to finish.
  // Shard i's options under the new key.
  auto shard_options = [&](std::uint32_t i) {
    Options o = options;
    o.directory = ShardDirectory(top, i);
    o.create_if_missing = false;
    o.error_if_exists = false;
    o.background_maintenance_ms = 0;
    o.shard_placement = ShardPlacement{i, manifest->shard_count};
    o.key_provider = new_key;
    return o;
  };
  for (std::uint32_t i = 0; i < manifest->shard_count; ++i) {
    Options o = shard_options(i);
    auto probe = Store::Open(o);
    if (!probe.ok() && probe.status().IsWrongKey()) {
      o.key_provider = options.key_provider;
      probe = Store::Open(o);
    } else if (probe.ok()) {
      rotating = true;  // under the new key already: a rotation cut short before
    }
    if (!probe.ok()) return failed(probe.status(), i);
    if (Status c = (*probe)->Close(); !c.ok()) return failed(c, i);
  }
  for (std::uint32_t i = 0; i < manifest->shard_count; ++i) {
    Options o = shard_options(i);
    auto rotated = Store::Open(o);  // a shard already under the new key (its rebuild finished at the open)
    if (rotated.ok()) {
      rotating = true;
      if (Status c = (*rotated)->Close(); !c.ok()) return failed(c, i);
      continue;
    }
    if (!rotated.status().IsWrongKey()) return failed(rotated.status(), i);
    o.key_provider = options.key_provider;
    auto shard = Store::Open(o);
    if (!shard.ok()) return failed(shard.status(), i);
    if (Status r = (*shard)->RotateRootKey(new_key); !r.ok()) {
      return r.WithContext(ShardContext(i) + " (run RotateRootKey again with the same keys to finish)");
    }
    rotating = true;
    if (Status c = (*shard)->Close(); !c.ok()) return failed(c, i);
  }
  if (manifest_rotated) return Status::OK();
  return sharding::WriteManifest(manifest_path, *manifest, *new_key)
      .WithContext("every shard is under the new root key; SHARDS is not (run RotateRootKey again to finish)");
}

ShardedStore::ShardedStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

ShardedStore::~ShardedStore() { (void)Close(); }

Status ShardedStore::Close() {
  Status first;
  for (std::uint32_t s = 0; s < impl_->count(); ++s) {
    Status c = impl_->shards[s]->Close();
    if (first.ok() && !c.ok()) first = c.WithContext(ShardContext(s));
  }
  return first;
}

std::uint32_t ShardedStore::shard_count() const { return impl_->count(); }
std::uint32_t ShardedStore::ShardOf(const PersonId& person) const { return impl_->ShardOf(person); }
Store& ShardedStore::shard(std::uint32_t index) { return *impl_->shards[index]; }

// ---- People and identifiers -------------------------------------------------------

Result<PersonId> ShardedStore::CreatePerson(const std::vector<Identifier>& identifiers, const Attributes& profile) {
  if (identifiers.empty()) return Status::InvalidArgument("a person needs at least one identifier");
  std::vector<Identifier> normalized;
  for (const Identifier& i : identifiers) {
    auto n = impl_->Normalize(i);
    if (!n.ok()) return n.status();
    normalized.push_back(std::move(*n));
  }
  const std::uint32_t home = impl_->HomeOf(normalized.front());
  const PersonId id = impl_->NewPersonIn(home);
  Impl::StripeGuard guard(*impl_, normalized);
  for (const Identifier& n : normalized) {
    if (Status s = impl_->CheckClaim(n, id, home); !s.ok()) return s;
  }
  WriteBatch batch;
  WriteBatchAccess::CreatePerson(&batch, id, identifiers, profile);
  if (Status w = impl_->shards[home]->Write(batch); !w.ok()) return w;
  return id;
}

Result<PersonId> ShardedStore::Resolve(const Identifier& identifier) {
  auto at = impl_->Locate(identifier);
  if (!at.ok()) return at.status();
  return at->second;
}

Result<PersonInfo> ShardedStore::GetPerson(const PersonId& id) {
  const std::uint32_t home = ShardOf(id);
  auto info = shard(home).GetPerson(id);
  if (!info.status().IsNotFound()) return info;
  for (std::uint32_t s = 0; s < shard_count(); ++s) {  // one created through a shard opened alone
    if (s == home) continue;
    auto there = shard(s).GetPerson(id);
    if (!there.status().IsNotFound()) return there;
  }
  return info;
}

Status ShardedStore::LinkIdentifier(const PersonId& id, const Identifier& identifier) {
  auto n = impl_->Normalize(identifier);
  if (!n.ok()) return n.status();
  const std::uint32_t s = ShardOf(id);
  Impl::StripeGuard guard(*impl_, {*n});
  if (Status c = impl_->CheckClaim(*n, id, s); !c.ok()) return c;
  return impl_->shards[s]->LinkIdentifier(id, identifier);
}

Status ShardedStore::UnlinkIdentifier(const PersonId& id, const Identifier& identifier) {
  return shard(ShardOf(id)).UnlinkIdentifier(id, identifier);
}

// ---- One person's data -----------------------------------------------------------

Result<Attributes> ShardedStore::GetProfile(const PersonId& id) { return shard(ShardOf(id)).GetProfile(id); }

Result<PersonProfile> ShardedStore::LookupProfile(const Identifier& identifier) {
  auto normalized = impl_->Normalize(identifier);
  if (!normalized.ok()) return normalized.status();
  auto at_home = impl_->shards[impl_->HomeOf(*normalized)]->LookupProfile(*normalized);
  if (at_home.ok()) return at_home;
  auto at = impl_->Locate(identifier);
  if (!at.ok()) return at.status();
  auto profile = impl_->shards[at->first]->GetProfile(at->second);
  if (!profile.ok()) return profile.status();
  return PersonProfile{at->second, std::move(profile).value()};
}
Status ShardedStore::PatchProfile(const PersonId& id, const ProfilePatch& patch) {
  return shard(ShardOf(id)).PatchProfile(id, patch);
}
Status ShardedStore::AppendEvent(const PersonId& id, const Event& event) {
  return shard(ShardOf(id)).AppendEvent(id, event);
}
std::unique_ptr<EventIterator> ShardedStore::ScanEvents(const PersonId& id, TimeRange range) {
  return shard(ShardOf(id)).ScanEvents(id, range);
}
Status ShardedStore::Put(const PersonId& id, std::string_view collection, std::string_view key,
                         std::string_view value) {
  return shard(ShardOf(id)).Put(id, collection, key, value);
}
Result<std::string> ShardedStore::Get(const PersonId& id, std::string_view collection, std::string_view key) {
  return shard(ShardOf(id)).Get(id, collection, key);
}
Result<Record> ShardedStore::GetRecord(const PersonId& id, std::string_view collection, std::string_view key) {
  return shard(ShardOf(id)).GetRecord(id, collection, key);
}
Status ShardedStore::Delete(const PersonId& id, std::string_view collection, std::string_view key) {
  return shard(ShardOf(id)).Delete(id, collection, key);
}
std::unique_ptr<RecordIterator> ShardedStore::ScanRecords(const PersonId& id, std::string_view collection,
                                                          std::string_view prefix) {
  return shard(ShardOf(id)).ScanRecords(id, collection, prefix);
}

Status ShardedStore::Rectify(const PersonId& id, const Rectification& rectification) {
  const std::uint32_t s = ShardOf(id);
  std::vector<Identifier> added;
  for (const auto& [old_identifier, replacement] : rectification.identifiers) {
    auto n = impl_->Normalize(replacement);
    if (!n.ok()) return n.status();
    added.push_back(std::move(*n));
  }
  Impl::StripeGuard guard(*impl_, added);
  for (const Identifier& n : added) {
    if (Status c = impl_->CheckClaim(n, id, s); !c.ok()) return c;
  }
  return impl_->shards[s]->Rectify(id, rectification);
}

std::unique_ptr<Iterator<ExportItem>> ShardedStore::Export(const PersonId& id) {
  return shard(impl_->Locate(id)).Export(id);
}
Result<RestrictionState> ShardedStore::GetRestriction(const PersonId& id) {
  return shard(ShardOf(id)).GetRestriction(id);
}
Result<std::map<std::string, bool>> ShardedStore::GetConsent(const PersonId& id) {
  return shard(ShardOf(id)).GetConsent(id);
}
Result<std::vector<ConsentRecord>> ShardedStore::GetConsentHistory(const PersonId& id) {
  return shard(ShardOf(id)).GetConsentHistory(id);
}
Result<std::unique_ptr<Lease>> ShardedStore::AcquireLease(const PersonId& id, std::string_view purpose) {
  return shard(ShardOf(id)).AcquireLease(id, purpose);
}
Result<std::string> ShardedStore::AuditSubject(const PersonId& id) { return shard(ShardOf(id)).AuditSubject(id); }

// ---- Queries over every shard ------------------------------------------------------

std::unique_ptr<Iterator<FoundRecord>> ShardedStore::FindRecords(const RecordQuery& query) {
  if (query.field == RecordQuery::Field::kExpiresBefore) {
    std::vector<std::unique_ptr<Iterator<FoundRecord>>> parts;
    for (auto& s : impl_->shards) parts.push_back(s->FindRecords(query));
    return std::make_unique<ExpiryMergeIterator>(std::move(parts));
  }
  return std::make_unique<ConcatIterator<FoundRecord>>(
      impl_->count(), [this, query](std::uint32_t s) { return impl_->shards[s]->FindRecords(query); });
}

std::unique_ptr<Iterator<PersonId>> ShardedStore::PeopleWithConsent(std::string_view purpose, bool granted) {
  return std::make_unique<ConcatIterator<PersonId>>(
      impl_->count(), [this, p = std::string(purpose), granted](std::uint32_t s) {
        return impl_->shards[s]->PeopleWithConsent(p, granted);
      });
}

// ---- Many people ---------------------------------------------------------------------

Status ShardedStore::Write(const WriteBatch& batch) {
  if (!batch.progress().empty()) {
    return Status::InvalidArgument(
        "WriteBatch::SetProgress needs one commit, and a ShardedStore commits once per shard");
  }
  if (batch.empty()) return Status::OK();
  const auto& ops = batch.ops();
  struct Claim {
    Identifier normalized;
    PersonId person;
    std::uint32_t shard;
    std::size_t op;
    bool released_there;  // an earlier operation gives it up in that shard
  };
  std::vector<Claim> claims;
  std::map<Identifier, PersonId> claimed_by;
  std::set<std::pair<Identifier, std::uint32_t>> released;  // by earlier operations, in their shard
  std::vector<std::uint32_t> shard_of(ops.size());
  for (std::size_t i = 0; i < ops.size(); ++i) {
    const PersonId& person = OpPerson(ops[i]);
    shard_of[i] = ShardOf(person);
    std::vector<const Identifier*> added, given_up;
    if (const auto* c = std::get_if<WriteBatch::CreatePersonOp>(&ops[i])) {
      for (const Identifier& id : c->identifiers) added.push_back(&id);
    } else if (const auto* l = std::get_if<WriteBatch::LinkIdentifierOp>(&ops[i])) {
      added.push_back(&l->identifier);
    } else if (const auto* u = std::get_if<WriteBatch::UnlinkIdentifierOp>(&ops[i])) {
      given_up.push_back(&u->identifier);
    } else if (const auto* r = std::get_if<WriteBatch::RectifyOp>(&ops[i])) {
      for (const auto& pair : r->rectification.identifiers) {
        given_up.push_back(&pair.first);
        added.push_back(&pair.second);
      }
    }
    const std::string where = "operation #" + std::to_string(i) + " of the batch";
    for (const Identifier* id : added) {
      auto n = impl_->Normalize(*id);
      if (!n.ok()) return n.status().WithContext(where);
      auto [it, fresh] = claimed_by.emplace(*n, person);
      if (!fresh && it->second != person) {
        return Status::AlreadyExists(where + ": identifier of type '" + n->type +
                                     "' is claimed by another person of this batch");
      }
      const bool released_there = released.count({*n, shard_of[i]}) != 0;
      claims.push_back(Claim{std::move(*n), person, shard_of[i], i, released_there});
    }
    for (const Identifier* id : given_up) {
      auto n = impl_->Normalize(*id);
      if (n.ok()) released.emplace(std::move(*n), shard_of[i]);  // a bad one fails in its shard
    }
  }

  // A batch over several shards claims its people, shared, before the
  // identifier stripes (the order every call takes them in): an erasure of
  // one of them waits until the last part is written rather than commit
  // between the parts (outside audit 34c, F3), while writers of batches
  // that share people still run side by side.
  const bool split =
      !std::all_of(shard_of.begin(), shard_of.end(), [&](std::uint32_t s) { return s == shard_of.front(); });
  KeyClaims::Held people_claimed;
  if (split) {
    std::vector<PersonId> people;
    people.reserve(ops.size());
    for (const auto& op : ops) people.push_back(OpPerson(op));
    auto claimed = impl_->ClaimPeople(people, KeyClaims::Mode::kShared);
    if (!claimed.ok()) return claimed.status();
    people_claimed = std::move(*claimed);
  }

  std::vector<Identifier> locked;
  for (const Claim& c : claims) locked.push_back(c.normalized);
  Impl::StripeGuard guard(*impl_, locked);
  for (const Claim& c : claims) {
    if (Status s = impl_->CheckClaim(c.normalized, c.person, c.shard, c.released_there); !s.ok()) {
      return s.WithContext("operation #" + std::to_string(c.op) + " of the batch");
    }
  }

  // One shard: the caller's batch as it is (no copy).
  if (!split) {
    Status w = impl_->shards[shard_of.front()]->Write(batch);
    return w.ok() ? w : w.WithContext(ShardContext(shard_of.front()));
  }
  // Its people are claimed shared, not exclusively like Restrict's and
  // Erase's: two writers' batches of random people nearly always share one,
  // and exclusive claims ran them one after the other (stop 34 tried it:
  // Sharded/ingest/sharded2 fell from about 1.5x to 0.94x with two
  // threads). They are not checked up front either (a person read per
  // operation): a person unknown or erased before the call fails its part
  // after the earlier parts committed, which the error names.
  std::map<std::uint32_t, std::pair<WriteBatch, std::vector<std::size_t>>> parts;
  for (std::size_t i = 0; i < ops.size(); ++i) {
    auto& [part, original] = parts[shard_of[i]];
    WriteBatchAccess::Append(&part, ops[i]);
    original.push_back(i);
  }
  // Parts are written starting at a shard that rotates from call to call:
  // concurrent writers whose batches all span every shard then spread over
  // the shards' writers instead of queueing at shard 0 together and moving
  // on to shard 1 together.
  std::vector<std::uint32_t> order;
  for (const auto& entry : parts) order.push_back(entry.first);
  std::rotate(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(impl_->next_start.fetch_add(1) % order.size()),
              order.end());
  std::vector<std::uint32_t> committed;
  for (std::uint32_t s : order) {
    const auto& part = parts.at(s);
    if (Status w = impl_->shards[s]->Write(part.first); !w.ok()) return PartsCommitted(PartError(w, part.second, s), committed);
    committed.push_back(s);
    if (committed.size() < order.size()) util::TestPoint("sharded.write.between_parts");
  }
  return Status::OK();
}

Status ShardedStore::Restrict(const std::vector<PersonId>& people, const RestrictionSpec& spec) {
  if (people.empty()) return impl_->shards[0]->Restrict(people, spec);
  auto claimed = impl_->ClaimPeople(people);
  if (!claimed.ok()) return claimed.status();
  auto parts = impl_->CheckedParts(people);
  if (!parts.ok()) return parts.status();
  return impl_->EachPart(*parts,
                         [&](Store& s, const std::vector<PersonId>& part) { return s.Restrict(part, spec); });
}

Status ShardedStore::Unrestrict(const std::vector<PersonId>& people, const RestrictionSpec& spec) {
  if (people.empty()) return impl_->shards[0]->Unrestrict(people, spec);
  auto claimed = impl_->ClaimPeople(people);
  if (!claimed.ok()) return claimed.status();
  auto parts = impl_->CheckedParts(people);
  if (!parts.ok()) return parts.status();
  return impl_->EachPart(*parts,
                         [&](Store& s, const std::vector<PersonId>& part) { return s.Unrestrict(part, spec); });
}

Status ShardedStore::SetConsent(const std::vector<PersonId>& people, std::string_view purpose, bool granted,
                                std::string_view source) {
  if (people.empty()) return impl_->shards[0]->SetConsent(people, purpose, granted, source);
  auto claimed = impl_->ClaimPeople(people);
  if (!claimed.ok()) return claimed.status();
  auto parts = impl_->CheckedParts(people);
  if (!parts.ok()) return parts.status();
  return impl_->EachPart(*parts, [&](Store& s, const std::vector<PersonId>& part) {
    return s.SetConsent(part, purpose, granted, source);
  });
}

// ---- Erasure -------------------------------------------------------------------------

namespace {

// The request id every part of a sharded erasure shares — the caller's, or
// a fresh random one — claimed until the erasure's last part is made, with
// the parts the shards already have under it (`made`: a request cut short;
// an unused id has none).
struct HeldRequest {
  EraseOptions options;
  KeyClaims::Held claim;
  std::map<std::uint32_t, ErasureReceipt> made;
};

Result<HeldRequest> HoldRequest(std::vector<std::unique_ptr<Store>>& shards, KeyClaims& claims,
                                const EraseOptions& options) {
  HeldRequest held{options, {}, {}};
  if (held.options.request_id.empty()) {
    held.options.request_id = PersonId(crypto::RandomArray<PersonId::kSize>()).ToHex();
  }
  auto claim = claims.Claim({held.options.request_id}, KeyClaims::Mode::kExclusive, "this erasure request");
  if (!claim.ok()) return claim.status();
  held.claim = std::move(*claim);
  for (std::uint32_t s = 0; s < shards.size(); ++s) {
    auto known = shards[s]->GetErasure(held.options.request_id);
    if (known.ok()) {
      held.made.emplace(s, std::move(*known));
    } else if (!known.status().IsNotFound()) {
      return known.status().WithContext(ShardContext(s));
    }
  }
  return held;
}

Status MadeBefore(const HeldRequest& held, std::string_view why = {}) {
  return Status::AlreadyExists("erasure request '" + held.options.request_id + "' was made before" +
                               std::string(why));
}

// OK if `held.made`, the parts the shards have under the request id, are
// parts of this call that an earlier call under the same id made before it
// stopped: each of their shards is one of this call's, and its part erased
// exactly this call's people of that shard — each fenced under this
// request id (the shard's erasure log; read only on this rare path) and as
// many as the part's receipt counts — as a whole-person erasure with the
// same options. AlreadyExists otherwise, and when nothing is left to make.
// What no shard records cannot be checked: a call that adds people of
// other shards to a request that was whole is taken for a retry.
Status CheckResumable(std::vector<std::unique_ptr<Store>>& shards, const HeldRequest& held,
                      const std::map<std::uint32_t, std::vector<PersonId>>& parts) {
  const Status other = MadeBefore(held, " for other people or with other options");
  for (const auto& [s, receipt] : held.made) {
    auto part = parts.find(s);
    const std::set<PersonId> people(part == parts.end() ? std::set<PersonId>{}
                                                        : std::set<PersonId>(part->second.begin(), part->second.end()));
    if (part == parts.end() || !receipt.category.empty() || receipt.analytics != held.options.analytics ||
        receipt.suppressed != held.options.suppress || receipt.people != people.size()) {
      return other;
    }
    auto log = shards[s]->ReadErasureLog();
    if (!log.ok()) return log.status().WithContext(ShardContext(s));
    std::size_t fenced = 0;
    for (const ErasedPersonEntry& e : log->people) {
      if (people.count(e.person) == 0) continue;
      if (e.request_id != held.options.request_id) return other;
      ++fenced;
    }
    if (fenced != people.size()) return other;
  }
  if (held.made.size() == parts.size()) return MadeBefore(held);
  return Status::OK();
}

void AddPart(ShardedErasureReceipt* r, std::uint32_t shard, ErasureReceipt part) {
  r->level = r->parts.empty() ? part.level : Lower(r->level, part.level);
  r->people += part.people;
  r->request_id = part.request_id;
  r->parts.emplace_back(shard, std::move(part));
}

}  // namespace

Result<ShardedErasureReceipt> ShardedStore::Erase(const std::vector<PersonId>& people, const EraseOptions& options) {
  if (people.empty()) return Status::InvalidArgument("no people to erase");
  auto claimed = impl_->ClaimPeople(people);
  if (!claimed.ok()) return claimed.status();
  auto held = HoldRequest(impl_->shards, impl_->request_claims, options);
  if (!held.ok()) return held.status();
  const EraseOptions* o = &held->options;
  // Each person located and read once: the parts, then the check that the
  // people of the parts still to make are live (those of parts made
  // before, by a request cut short, are erased).
  std::vector<Impl::Located> located;
  located.reserve(people.size());
  std::map<std::uint32_t, std::vector<PersonId>> parts;
  for (const PersonId& p : people) {
    located.push_back(impl_->LocateAndRead(p));
    parts[located.back().shard].push_back(p);
  }
  if (!held->made.empty()) {
    if (Status r = CheckResumable(impl_->shards, *held, parts); !r.ok()) return r;
  }
  for (const Impl::Located& at : located) {
    if (held->made.count(at.shard) == 0 && !at.status.ok()) return at.status;
  }
  ShardedErasureReceipt receipt;
  std::vector<std::uint32_t> committed;
  for (const auto& [s, part] : parts) {
    if (auto m = held->made.find(s); m != held->made.end()) {
      committed.push_back(s);
      AddPart(&receipt, s, std::move(m->second));
      continue;
    }
    auto r = impl_->shards[s]->Erase(part, *o);
    if (!r.ok()) {
      Status e = r.status().WithContext(ShardContext(s));
      if (committed.empty()) return e;
      return PartsCommitted(e, committed)
          .WithContext("erasure request '" + o->request_id +
                       "' is partly made (Erase the same people under this request id again to finish it)");
    }
    committed.push_back(s);
    AddPart(&receipt, s, std::move(*r));
  }
  return receipt;
}

Result<ShardedErasureReceipt> ShardedStore::EraseByIdentifier(const Identifier& identifier,
                                                              const EraseOptions& options) {
  // The person the identifier leads to, claimed (ClaimPeople): a person the
  // identifier moved to meanwhile is located again.
  for (;;) {
    auto at = impl_->Locate(identifier);
    if (!at.ok()) return at.status();
    auto claimed = impl_->ClaimPeople({at->second});
    if (!claimed.ok()) return claimed.status();
    auto again = impl_->Locate(identifier);
    if (!again.ok()) return again.status();
    if (*again != *at) continue;
    auto held = HoldRequest(impl_->shards, impl_->request_claims, options);
    if (!held.ok()) return held.status();
    if (!held->made.empty()) return MadeBefore(*held);
    auto r = impl_->shards[at->first]->Erase(std::vector<PersonId>{at->second}, held->options);
    if (!r.ok()) return r.status();
    ShardedErasureReceipt receipt;
    AddPart(&receipt, at->first, std::move(*r));
    return receipt;
  }
}

Result<ErasureReceipt> ShardedStore::EraseCategory(const PersonId& person, std::string_view category,
                                                   const EraseOptions& options) {
  // Under a request id no shard has used, like a person erasure.
  auto held = HoldRequest(impl_->shards, impl_->request_claims, options);
  if (!held.ok()) return held.status();
  if (!held->made.empty()) return MadeBefore(*held);
  return shard(impl_->Locate(person)).EraseCategory(person, category, held->options);
}

Result<ShardedErasureReceipt> ShardedStore::GetErasure(std::string_view request_id) {
  ShardedErasureReceipt receipt;
  for (std::uint32_t s = 0; s < impl_->count(); ++s) {
    auto r = impl_->shards[s]->GetErasure(request_id);
    if (r.ok()) {
      AddPart(&receipt, s, std::move(*r));
    } else if (!r.status().IsNotFound()) {
      return r.status().WithContext(ShardContext(s));
    }
  }
  if (receipt.parts.empty()) return Status::NotFound("no erasure request '" + std::string(request_id) + "'");
  return receipt;
}

Status ShardedStore::Unsuppress(const Identifier& identifier) {
  bool found = false;
  for (std::uint32_t s = 0; s < impl_->count(); ++s) {
    Status u = impl_->shards[s]->Unsuppress(identifier);
    if (u.ok()) {
      found = true;
    } else if (!u.IsNotFound()) {
      return u.WithContext(ShardContext(s));
    }
  }
  return found ? Status::OK() : Status::NotFound("the identifier is not suppressed");
}

// ---- Every shard -------------------------------------------------------------------------

Result<std::vector<StoreStats>> ShardedStore::ShardStats() {
  return impl_->SumOverShards<std::vector<StoreStats>>(
      [](Store& s) { return s.Stats(); },
      [](std::vector<StoreStats>& all, StoreStats& r) { all.push_back(std::move(r)); });
}

Result<StoreStats> ShardedStore::Stats() {
  auto all = ShardStats();
  if (!all.ok()) return all.status();
  StoreStats sum = all->front();
  sum.store_id.clear();  // each shard has its own (ShardStats)
  sum.suppressed_rejections += impl_->suppressed_rejections.load(std::memory_order_relaxed);
  for (std::size_t i = 1; i < all->size(); ++i) {
    const StoreStats& x = (*all)[i];
    sum.format_version = std::min(sum.format_version, x.format_version);
    sum.oldest_key_epoch = std::min(sum.oldest_key_epoch, x.oldest_key_epoch);
    sum.key_epoch = std::min(sum.key_epoch, x.key_epoch);
    sum.retention_backfill_pending = sum.retention_backfill_pending || x.retention_backfill_pending;
    sum.keys_rebuild_pending = sum.keys_rebuild_pending || x.keys_rebuild_pending;
    for (auto field : {&StoreStats::people, &StoreStats::erased, &StoreStats::suppressed, &StoreStats::pending_purge,
                       &StoreStats::erased_categories, &StoreStats::erasures_since_rotation,
                       &StoreStats::erasures_awaiting_rebuild,
                       &StoreStats::suppressed_rejections, &StoreStats::restricted, &StoreStats::tracking_rejected,
                       &StoreStats::tracking_dropped, &StoreStats::expired_removed, &StoreStats::expired_pending,
                       &StoreStats::orphan_keys_collected, &StoreStats::write_batches, &StoreStats::write_commits,
                       &StoreStats::identifiers, &StoreStats::events, &StoreStats::records,
                       &StoreStats::analytics_rows, &StoreStats::analytics_staged, &StoreStats::keys_file_bytes,
                       &StoreStats::data_file_bytes, &StoreStats::data_map_bytes}) {
      sum.*field += x.*field;
    }
    // Every store lists the same operations in the same order.
    for (std::size_t k = 0; k < sum.operations.size() && k < x.operations.size(); ++k) {
      OperationStats& to = sum.operations[k];
      const OperationStats& from = x.operations[k];
      to.calls += from.calls;
      to.errors += from.errors;
      to.total_us += from.total_us;
      for (std::size_t b = 0; b < kLatencyBuckets; ++b) to.latency_buckets[b] += from.latency_buckets[b];
    }
  }
  return sum;
}

Result<PurgeResult> ShardedStore::Purge(std::size_t budget_rows) {
  return impl_->SumOverShards<PurgeResult>(
      [&](Store& s) { return s.Purge(budget_rows); },
      [](PurgeResult& sum, const PurgeResult& r) {
        sum.rows_deleted += r.rows_deleted;
        sum.people_purged += r.people_purged;
        sum.people_pending += r.people_pending;
      });
}

Result<RotationResult> ShardedStore::RotateEpoch() {
  return impl_->SumOverShards<RotationResult>(
      [](Store& s) { return s.RotateEpoch(); },
      [](RotationResult& sum, const RotationResult& r) {
        sum.new_epoch = std::max(sum.new_epoch, r.new_epoch);
        sum.destroyed_epochs += r.destroyed_epochs;
        sum.rewrapped_keys += r.rewrapped_keys;
        sum.batches += r.batches;
        sum.keys_file_bytes_before += r.keys_file_bytes_before;
        sum.keys_file_bytes_after += r.keys_file_bytes_after;
      });
}

Result<CompactionResult> ShardedStore::CompactData() {
  return impl_->SumOverShards<CompactionResult>(
      [](Store& s) { return s.CompactData(); },
      [](CompactionResult& sum, const CompactionResult& r) {
        sum.file_bytes_before += r.file_bytes_before;
        sum.file_bytes_after += r.file_bytes_after;
      });
}

Status ShardedStore::RunMaintenance() {
  Status first;
  for (std::uint32_t s = 0; s < impl_->count(); ++s) {
    Status m = impl_->shards[s]->RunMaintenance();
    if (first.ok() && !m.ok()) first = m.WithContext(ShardContext(s));
  }
  return first;
}

Result<VerifyReport> ShardedStore::Verify() {
  std::uint32_t shard = 0;
  return impl_->SumOverShards<VerifyReport>(
      [](Store& s) { return s.Verify(); },
      [&shard](VerifyReport& sum, const VerifyReport& r) {
        for (auto field : {&VerifyReport::pages, &VerifyReport::people, &VerifyReport::identifiers,
                           &VerifyReport::events, &VerifyReport::records, &VerifyReport::analytics_rows,
                           &VerifyReport::audit_entries, &VerifyReport::orphan_keys, &VerifyReport::problem_count}) {
          sum.*field += r.*field;
        }
        for (const std::string& p : r.problems) {
          if (sum.problems.size() < 1000) sum.problems.push_back(ShardContext(shard) + ": " + p);
        }
        ++shard;
      });
}

Status ShardedStore::SetRetention(const RetentionRules& rules) {
  for (std::uint32_t s = 0; s < impl_->count(); ++s) {
    if (Status r = impl_->shards[s]->SetRetention(rules); !r.ok()) return r.WithContext(ShardContext(s));
  }
  return Status::OK();
}

Result<ShardedBackupInfo> ShardedStore::Backup(const std::string& directory) {
  bool created = false;
  if (Status p = util::PrepareEmptyDirectory(directory, &created); !p.ok()) return p;
  ShardedBackupInfo result;
  result.directory = directory;
  const std::string run_id = sharding::NewBackupRunId();
  // Every shard's snapshots begun at one point (outside audit 38c, F1: shard
  // by shard, an identifier unlinked in shard 0 after its copy began and
  // linked in shard 1 before its copy did was in both shards' backups, and
  // the restored store held it twice).
  std::vector<engine::Backups*> shards;
  std::vector<std::string> shard_dirs;
  for (std::uint32_t s = 0; s < impl_->count(); ++s) {
    shards.push_back(&static_cast<engine::StoreImpl&>(*impl_->shards[s]).backups());
    shard_dirs.push_back(ShardDirectory(directory, s));
  }
  Status failed;
  auto infos = engine::BackupTogether(shards, shard_dirs);
  if (infos.ok()) {
    result.shards = std::move(*infos);
  } else {
    failed = infos.status();
  }
  for (std::uint32_t s = 0; s < impl_->count() && failed.ok(); ++s) {
    const std::string& shard_dir = shard_dirs[s];
    // The marker as the live shard's (layout 2, every shard's store ID),
    // made afresh: what Restore checks each shard's backup against.
    failed = sharding::WriteShardMarker(shard_dir, s, impl_->store_ids, impl_->manifest).WithContext(ShardContext(s));
    if (failed.ok()) {
      failed = sharding::WriteBackupRun(shard_dir, s, run_id, impl_->manifest).WithContext(ShardContext(s));
    }
  }
  if (failed.ok()) {
    failed = sharding::WriteManifest(directory + "/" + sharding::kManifestName, impl_->manifest,
                                     *impl_->options.key_provider);
  }
  if (!failed.ok()) {
    util::RemoveFill(directory, created);
    return failed;
  }
  return result;
}

Result<std::vector<ErasureLog>> ShardedStore::ReadErasureLogs() {
  std::vector<ErasureLog> logs;
  for (std::uint32_t s = 0; s < impl_->count(); ++s) {
    auto log = impl_->shards[s]->ReadErasureLog();
    if (!log.ok()) return log.status().WithContext(ShardContext(s));
    logs.push_back(std::move(*log));
  }
  return logs;
}

Result<ShardedRestoreResult> ShardedStore::Restore(const std::string& backup_dir, const Options& options,
                                                   const ShardedRestoreOptions& restore) {
  if (options.key_provider == nullptr) return Status::InvalidArgument("Options::key_provider is required");
  const std::string& top = options.directory;
  if (top.empty()) return Status::InvalidArgument("Options::directory names where to restore");
  // Under the root key the backup was taken under (outside audit 38c, F4:
  // there was no way to name it, and a backup from before a root-key
  // rotation came back under the retired key); the restored SHARDS and
  // every shard's copy are sealed under options.key_provider's.
  KeyProvider& backup_key =
      restore.backup_key_provider != nullptr ? *restore.backup_key_provider : *options.key_provider;
  auto manifest = sharding::ReadManifest(backup_dir + "/" + sharding::kManifestName, backup_key);
  if (manifest.status().IsNotFound()) {
    return Status::NotFound("no sharded backup in '" + backup_dir + "' (no " + sharding::kManifestName +
                            ": not a sharded backup, or one cut short)");
  }
  if (manifest.status().IsWrongKey() && restore.backup_key_provider == nullptr) {
    return manifest.status().WithContext(
        "(a backup taken before a root-key rotation opens with the old root key: "
        "ShardedRestoreOptions::backup_key_provider)");
  }
  if (!manifest.ok()) return manifest.status();
  const std::uint32_t count = manifest->shard_count;
  if (restore.without_erasure_log && !restore.erasure_logs.empty()) {  // outside audit 34, F4: they were dropped
    return Status::InvalidArgument("erasure logs and without_erasure_log contradict each other: give one");
  }
  if (!restore.without_erasure_log && restore.erasure_logs.size() != count) {
    return Status::InvalidArgument("the backup has " + std::to_string(count) + " shards: restoring it needs " +
                                   std::to_string(count) + " erasure logs (ReadErasureLogs of the live store, by "
                                   "shard), not " + std::to_string(restore.erasure_logs.size()) +
                                   ", or without_erasure_log");
  }
  // Every shard's backup checked before anything is written.
  std::vector<std::string> store_ids;
  std::string run_id;
  for (std::uint32_t s = 0; s < count; ++s) {
    const std::string shard_backup = ShardDirectory(backup_dir, s);
    auto marker = sharding::ReadShardMarker(shard_backup, s, *manifest);
    if (!marker.ok()) return marker.status().WithContext("the backup of " + ShardContext(s));
    // One Backup call's shards, not shards of several put together: those
    // may disagree on who holds an identifier (outside audit 34, F3).
    auto run = sharding::ReadBackupRun(shard_backup, s, *manifest);
    if (!run.ok()) return run.status().WithContext("the backup of " + ShardContext(s));
    if (s == 0) run_id = *run;
    if (*run != run_id) {
      return Status::Corruption("the backup of " + ShardContext(s) +
                                " was made by another ShardedStore::Backup than shard 0's (shard backups of "
                                "different times put together: they may disagree on who holds an identifier)");
    }
    if (s == 0) store_ids = marker->store_ids;
    if (marker->store_ids.size() != count || marker->store_ids != store_ids) {
      return Status::Corruption("the backup of " + ShardContext(s) + " names other shards than shard 0's");
    }
    auto info = ReadBackupInfo(shard_backup);
    if (!info.ok()) return info.status().WithContext("the backup of " + ShardContext(s));
    if (info->store_id != store_ids[s]) {
      return Status::Corruption("the backup of " + ShardContext(s) + " is of store " + info->store_id +
                                ", its marker names " + store_ids[s] + " (shard backups swapped or replaced?)");
    }
    // Before any shard is written (review of stop 35, R4). Whose log it is
    // first: a log of another shard (logs given in the wrong order) was
    // reported as read before the backup (outside audit 40b, F4).
    if (!restore.without_erasure_log) {
      if (restore.erasure_logs[s].store_id != info->store_id) {
        return Status::InvalidArgument("the erasure log given for " + ShardContext(s) + " is of store " +
                                       restore.erasure_logs[s].store_id + ", the shard's backup of store " +
                                       info->store_id + " (the logs go in shard order: ReadErasureLogs)");
      }
      if (Status t = CheckErasureLogReadAfter(restore.erasure_logs[s], *info); !t.ok()) {
        return t.WithContext(ShardContext(s));
      }
    }
  }
  bool created = false;
  if (Status p = util::PrepareEmptyDirectory(top, &created); !p.ok()) return p;
  // One sharded restore at a time beside `top` (review of stop 37, R6: a
  // failing one removed the shards of another running beside it, which
  // then reported success and destroyed its backup's custody keys).
  auto lock = util::LockDirectoryOf(top, "sharded restore");
  if (!lock.ok()) {
    util::RemoveFill(top, created);
    return lock.status();
  }
  ShardedRestoreResult result;
  Status failed;
  for (std::uint32_t s = 0; s < count && failed.ok(); ++s) {
    Options o = options;
    o.directory = ShardDirectory(top, s);
    o.create_if_missing = false;
    o.error_if_exists = false;
    o.read_only = false;
    o.shard_placement.reset();  // the backup's recorded place (if any) stays
    RestoreOptions r;
    r.erasure_log = restore.without_erasure_log ? nullptr : &restore.erasure_logs[s];
    r.without_erasure_log = restore.without_erasure_log;
    r.custody_keys = restore.custody_keys;
    r.accept_untagged_backup = restore.accept_untagged_backup;
    r.accept_untagged_log = restore.accept_untagged_log;
    r.backup_key_provider = restore.backup_key_provider;
    // A shard in place may still be removed (a later shard fails): its
    // rotation's retired custody keys (with kTakeOver, its backup's) are
    // destroyed below once every shard is in place.
    r.defer_custody_destroy = true;
    auto restored = RestoreBackup(ShardDirectory(backup_dir, s), o, r);
    if (!restored.ok()) {
      failed = restored.status().WithContext(ShardContext(s));
      break;
    }
    auto there = StoredId(o);
    if (!there.ok()) {
      failed = there.status().WithContext(ShardContext(s));
    } else if (*there != store_ids[s]) {
      failed = Status::Corruption("the backup of " + ShardContext(s) + " holds store " + *there + ", not " +
                                  store_ids[s] + " (its MANIFEST names another)");
    } else {
      failed = sharding::WriteShardMarker(o.directory, s, store_ids, *manifest).WithContext(ShardContext(s));
    }
    result.shards.push_back(std::move(*restored));
  }
  if (failed.ok()) {
    failed = sharding::WriteManifest(top + "/" + sharding::kManifestName, *manifest, *options.key_provider);
  }
  // Every shard's rename into `top` (RestoreBackup leaves that sync to us
  // with defer_custody_destroy: WriteManifest's rename syncs `top`) and
  // `top` in its parent made durable before any custody key goes; on
  // failure everything is undone below, the keys made for the shards with
  // it (review 37b, S4).
  if (failed.ok()) {
    const std::string parent = fs::path(top).parent_path().string();
    failed = util::SyncPath(parent.empty() ? "." : parent);
  }
  if (!failed.ok()) {
    util::RemoveFill(top, created);
    // The custody keys made for shards restored before the failure wrap
    // epoch keys of copies just removed (outside audit 34, F6), and so do
    // those their rotations retired, unless they are the backup's own.
    for (const RestoreResult& r : result.shards) {
      for (const std::string& label : r.new_custody_labels) (void)options.epoch_key_custody->DestroyKey(label);
      for (const std::string& label : r.custody_keys_to_destroy) {
        const auto& backups = r.backup.custody_labels;
        if (std::find(backups.begin(), backups.end(), label) == backups.end()) {
          (void)options.epoch_key_custody->DestroyKey(label);
        }
      }
    }
    return failed;
  }
  // Every shard in place: each is marked whole (until then a writable open
  // of a shard refuses it: review of stop 38, R3), and the retired custody
  // keys go (a shard's next writable open destroys any that cannot be
  // destroyed here). A shard whose mark cannot be removed keeps its keys
  // listed: ShardedStore::Open removes the mark (SHARDS says the restore
  // finished), and the shard's next writable open destroys them.
  for (std::uint32_t s = 0; s < count; ++s) {
    RestoreResult& r = result.shards[s];
    if (!CompleteDeferredRestore(ShardDirectory(top, s)).ok()) continue;
    for (const std::string& label : r.custody_keys_to_destroy) (void)options.epoch_key_custody->DestroyKey(label);
    r.custody_keys_to_destroy.clear();
  }
  return result;
}

}  // namespace shredkv
