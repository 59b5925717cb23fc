// In-process registry of processing leases per person (design §6). A
// drainer (Erase, Restrict) announces itself, which refuses new leases, and
// waits until the person's active leases are released or a deadline passes.
// Each lease is attributed to the thread that acquired it, so a drain that
// times out while the calling thread's own lease is outstanding says so
// (FailedPrecondition) instead of a plain Busy. It cannot fail at once: a
// lease may be handed to another thread, whose release the drain must wait
// for.
// Thread safety: all methods are thread-safe.
#ifndef SHREDKV_ENGINE_LEASES_H_
#define SHREDKV_ENGINE_LEASES_H_

#include <chrono>
#include <cstdint>
#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <vector>

#include "shredkv/types.h"

namespace shredkv::engine {

// Who acquired a lease: a number the calling thread draws once, never given
// to another thread of the process. Not std::thread::id, which a new thread
// may reuse from one that ended: that one's lease was then taken for the new
// thread's own (outside audit 34c, F4), and an Erase told FailedPrecondition.
using LeaseHolder = std::uint64_t;
LeaseHolder ThisThreadAsLeaseHolder();

class LeaseTable {
 public:
  // Busy if a drainer is waiting on or holding the person. The lease is
  // attributed to the calling thread; Release takes that same holder.
  Status Acquire(const PersonId& id);
  void Release(const PersonId& id, LeaseHolder holder);

  // Refuses new leases on `people` and waits for their active leases to end.
  // On timeout withdraws and returns Busy, or FailedPrecondition if a lease
  // the calling thread acquired is among those still held (it may have
  // waited for itself). On OK the caller must call EndDrain(people) when
  // done.
  Status BeginDrain(const std::vector<PersonId>& people, std::chrono::milliseconds timeout);
  void EndDrain(const std::vector<PersonId>& people);

  std::size_t active(const PersonId& id);

 private:
  struct Entry {
    int active = 0;
    int drainers = 0;
    std::multiset<LeaseHolder> holders;  // one per active lease
  };
  void Prune(const PersonId& id);  // REQUIRES: mu_ held
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<PersonId, Entry> entries_;
};

}  // namespace shredkv::engine

#endif  // SHREDKV_ENGINE_LEASES_H_
