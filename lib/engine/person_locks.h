// Per-person reader/writer locks, striped: reads of a person hold its stripe
// shared; erasure holds it exclusive. Writer-preferring, so a stream of
// overlapping readers cannot starve an erasure (glibc's default rwlock
// prefers readers).
// Thread safety: all methods are thread-safe.
#ifndef SHREDKV_ENGINE_PERSON_LOCKS_H_
#define SHREDKV_ENGINE_PERSON_LOCKS_H_

#include <array>
#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <set>
#include <vector>

#include "shredkv/types.h"

namespace shredkv::engine {

class PersonLocks {
 public:
  static constexpr std::size_t kStripes = 256;

  void LockShared(const PersonId& id);
  // LockShared if it need not wait (no writer holds or waits for the
  // stripe); false, and nothing held, otherwise. For a reader already inside
  // a `data` read, which must not wait for a stripe (Reader::LookupProfile).
  bool TryLockShared(const PersonId& id);
  void UnlockShared(const PersonId& id);
  // Locks the stripes of all `people` exclusively (in stripe order, so two
  // callers cannot deadlock).
  void LockExclusive(const std::vector<PersonId>& people);
  void UnlockExclusive(const std::vector<PersonId>& people);

  // RAII shared hold.
  class SharedGuard {
   public:
    SharedGuard(PersonLocks& locks, const PersonId& id) : locks_(locks), id_(id) { locks_.LockShared(id_); }
    // Adopts a shared hold the caller took (TryLockShared).
    SharedGuard(PersonLocks& locks, const PersonId& id, std::adopt_lock_t) : locks_(locks), id_(id) {}
    ~SharedGuard() { locks_.UnlockShared(id_); }
    SharedGuard(const SharedGuard&) = delete;
    SharedGuard& operator=(const SharedGuard&) = delete;

   private:
    PersonLocks& locks_;
    PersonId id_;
  };
  class ExclusiveGuard {
   public:
    ExclusiveGuard(PersonLocks& locks, std::vector<PersonId> people)
        : locks_(locks), people_(std::move(people)) {
      locks_.LockExclusive(people_);
    }
    ~ExclusiveGuard() { locks_.UnlockExclusive(people_); }
    ExclusiveGuard(const ExclusiveGuard&) = delete;
    ExclusiveGuard& operator=(const ExclusiveGuard&) = delete;

   private:
    PersonLocks& locks_;
    std::vector<PersonId> people_;
  };

 private:
  struct Stripe {
    std::mutex mu;
    std::condition_variable cv;
    int readers = 0;
    int writers_waiting = 0;
    bool writer = false;
  };
  static std::size_t StripeOf(const PersonId& id) { return id.bytes()[0] % kStripes; }
  static std::set<std::size_t> StripesOf(const std::vector<PersonId>& people);
  std::array<Stripe, kStripes> stripes_;
};

}  // namespace shredkv::engine

#endif  // SHREDKV_ENGINE_PERSON_LOCKS_H_
