// Claims on keys (person IDs, erasure request ids) held by one ShardedStore
// call from its checks to its last shard part, so that a call of another
// thread on the same people waits instead of committing between the parts.
//
// A claim takes all its keys at once, so unrelated keys never wait for each
// other (unlike lock stripes) and two claims never hold part of each
// other's keys. Shared claims on a key coexist (writers of batches that
// share people run side by side); an exclusive claim (an erasure, a
// restriction) excludes every other claim on its keys. Once an exclusive
// claim waits for a key, new shared claims on that key wait behind it, so a
// stream of writers cannot starve an erasure.
//
// Thread safety: every member may be called from any thread. A claim
// belongs to the thread that took it (the re-entrancy checks below use the
// thread's identity), but a Held may be destroyed on any thread.
#ifndef SHREDKV_SHARDING_KEY_CLAIMS_H_
#define SHREDKV_SHARDING_KEY_CLAIMS_H_

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "shredkv/status.h"

namespace shredkv::sharding {

class KeyClaims {
 public:
  enum class Mode { kShared, kExclusive };

  // The keys of one claim; releases them when destroyed or assigned over.
  class Held {
   public:
    Held() = default;
    Held(Held&& other) noexcept;
    Held& operator=(Held&& other) noexcept;
    Held(const Held&) = delete;
    Held& operator=(const Held&) = delete;
    ~Held() { Release(); }

    // Releases the keys now (idempotent).
    void Release();

   private:
    friend class KeyClaims;
    Held(KeyClaims* owner, std::vector<std::string> keys, Mode mode, std::thread::id holder)
        : owner_(owner), keys_(std::move(keys)), mode_(mode), holder_(holder) {}
    KeyClaims* owner_ = nullptr;
    std::vector<std::string> keys_;
    Mode mode_ = Mode::kShared;
    std::thread::id holder_;
  };

  KeyClaims() = default;
  KeyClaims(const KeyClaims&) = delete;
  KeyClaims& operator=(const KeyClaims&) = delete;
  // REQUIRES: no Held of this object outlives it.
  ~KeyClaims() = default;

  // Waits until every key in `keys` (duplicates allowed) can be taken in
  // `mode`, then takes them all. A thread that holds claims here already
  // never waits for an exclusive claim that is only waiting (it could be
  // waiting for this thread's keys). FailedPrecondition, at once and
  // taking nothing, where waiting could never end: the calling thread holds
  // one of the keys exclusively, or holds it shared and asks for it
  // exclusively (a listener told of an erasure on the erasing thread that
  // calls back on the same people or request). `what` names the keys in
  // that message ("one of these people").
  Result<Held> Claim(std::vector<std::string> keys, Mode mode, std::string_view what);

  // As Claim, but std::nullopt instead of waiting when a key is taken.
  Result<std::optional<Held>> TryClaim(std::vector<std::string> keys, Mode mode, std::string_view what);

  // Exclusive claims waiting now (for tests of the order above).
  std::size_t exclusive_waiters() const;

 private:
  struct KeyState {
    std::vector<std::thread::id> shared;  // one entry a shared claim (a thread may hold several)
    std::optional<std::thread::id> exclusive;
    std::uint32_t exclusive_waiting = 0;
  };

  // Status of a claim of `keys` in `mode` by `self` (REQUIRES: mu_ held).
  enum class Outcome { kFree, kTaken, kNeverFree };
  Outcome Check(const std::vector<std::string>& keys, Mode mode, std::thread::id self) const;
  Held Take(std::vector<std::string> keys, Mode mode, std::thread::id self);  // REQUIRES: mu_ held
  Result<std::optional<Held>> ClaimImpl(std::vector<std::string> keys, Mode mode, std::string_view what, bool wait);
  void Release(const std::vector<std::string>& keys, Mode mode, std::thread::id holder);

  mutable std::mutex mu_;
  std::condition_variable freed_;
  std::unordered_map<std::string, KeyState> keys_;      // keys held or waited for
  std::unordered_map<std::thread::id, std::size_t> holding_;  // keys each thread holds
  std::size_t exclusive_waiters_ = 0;
};

}  // namespace shredkv::sharding

#endif  // SHREDKV_SHARDING_KEY_CLAIMS_H_
