#include "engine/person_locks.h"

namespace shredkv::engine {

void PersonLocks::LockShared(const PersonId& id) {
  Stripe& s = stripes_[StripeOf(id)];
  std::unique_lock lock(s.mu);
  s.cv.wait(lock, [&] { return !s.writer && s.writers_waiting == 0; });
  ++s.readers;
}

bool PersonLocks::TryLockShared(const PersonId& id) {
  Stripe& s = stripes_[StripeOf(id)];
  std::lock_guard lock(s.mu);
  if (s.writer || s.writers_waiting != 0) return false;
  ++s.readers;
  return true;
}

void PersonLocks::UnlockShared(const PersonId& id) {
  Stripe& s = stripes_[StripeOf(id)];
  std::lock_guard lock(s.mu);
  if (--s.readers == 0) s.cv.notify_all();
}

std::set<std::size_t> PersonLocks::StripesOf(const std::vector<PersonId>& people) {
  std::set<std::size_t> out;
  for (const PersonId& p : people) out.insert(StripeOf(p));
  return out;
}

void PersonLocks::LockExclusive(const std::vector<PersonId>& people) {
  for (std::size_t i : StripesOf(people)) {
    Stripe& s = stripes_[i];
    std::unique_lock lock(s.mu);
    ++s.writers_waiting;
    s.cv.wait(lock, [&] { return !s.writer && s.readers == 0; });
    --s.writers_waiting;
    s.writer = true;
  }
}

void PersonLocks::UnlockExclusive(const std::vector<PersonId>& people) {
  for (std::size_t i : StripesOf(people)) {
    Stripe& s = stripes_[i];
    std::lock_guard lock(s.mu);
    s.writer = false;
    s.cv.notify_all();
  }
}

}  // namespace shredkv::engine
