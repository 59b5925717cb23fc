#include "engine/leases.h"

#include <atomic>
#include <string>

namespace shredkv::engine {

LeaseHolder ThisThreadAsLeaseHolder() {
  static std::atomic<LeaseHolder> next{1};
  thread_local const LeaseHolder self = next.fetch_add(1, std::memory_order_relaxed);
  return self;
}

void LeaseTable::Prune(const PersonId& id) {
  auto it = entries_.find(id);
  if (it != entries_.end() && it->second.active == 0 && it->second.drainers == 0) entries_.erase(it);
}

Status LeaseTable::Acquire(const PersonId& id) {
  std::lock_guard lock(mu_);
  Entry& e = entries_[id];
  if (e.drainers > 0) {
    Prune(id);
    return Status::Busy("person " + id.ToHex() + " is being erased or restricted; no new lease");
  }
  ++e.active;
  e.holders.insert(ThisThreadAsLeaseHolder());
  return Status::OK();
}

void LeaseTable::Release(const PersonId& id, LeaseHolder holder) {
  std::lock_guard lock(mu_);
  auto it = entries_.find(id);
  if (it == entries_.end()) return;
  --it->second.active;
  if (auto h = it->second.holders.find(holder); h != it->second.holders.end()) it->second.holders.erase(h);
  Prune(id);
  cv_.notify_all();
}

Status LeaseTable::BeginDrain(const std::vector<PersonId>& people, std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  for (const PersonId& p : people) ++entries_[p].drainers;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  const bool drained = cv_.wait_until(lock, deadline, [&] {
    for (const PersonId& p : people) {
      if (entries_[p].active > 0) return false;
    }
    return true;
  });
  if (!drained) {
    // A lease the calling thread acquired may be what it waited for: say so.
    const LeaseHolder self = ThisThreadAsLeaseHolder();
    std::string own;
    for (const PersonId& p : people) {
      if (own.empty() && entries_[p].holders.count(self) != 0) own = p.ToHex();
      --entries_[p].drainers;
      Prune(p);
    }
    if (!own.empty()) {
      return Status::FailedPrecondition("the calling thread acquired a processing lease on person " + own +
                                        " that is still held: release it before erasing or restricting the "
                                        "person (the call waited " + std::to_string(timeout.count()) +
                                        " ms for it); nothing was changed");
    }
    return Status::Busy("processing leases on the person were not released within " +
                        std::to_string(timeout.count()) + " ms; nothing was changed");
  }
  return Status::OK();
}

void LeaseTable::EndDrain(const std::vector<PersonId>& people) {
  std::lock_guard lock(mu_);
  for (const PersonId& p : people) {
    --entries_[p].drainers;
    Prune(p);
  }
  cv_.notify_all();
}

std::size_t LeaseTable::active(const PersonId& id) {
  std::lock_guard lock(mu_);
  auto it = entries_.find(id);
  return it == entries_.end() ? 0 : static_cast<std::size_t>(it->second.active);
}

}  // namespace shredkv::engine
