// The write path: every change to people, profiles, events, records,
// identifiers and consent goes through one WriteBatch. The keys of people
// the batch creates are made first; the batch is applied in one `data`
// write transaction (re-run after a full map grows) under write_mu. A new
// person's key comes from the key pool, committed in `keys` before (a
// refill when the pool runs short); the batch's `data` commit records the
// claim (keys/key_store.h). A category key a batch needs for the first time
// is stored in `keys` inside that transaction, before the commit that uses
// it (design §2).
//
// Group commit (as LevelDB's writer queue): concurrent Write calls queue;
// the first in line (the leader) applies its batch and those queued behind
// it — up to kMaxGroupBatches batches and kMaxGroupOps operations — in one
// `data` transaction, each batch in a child transaction so that a batch that
// fails is undone alone, and commits them with one fsync. Every caller
// returns its own batch's status once the group's commit is done.
// Thread safety: thread-safe.
#ifndef SHREDKV_ENGINE_WRITE_PATH_H_
#define SHREDKV_ENGINE_WRITE_PATH_H_

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <vector>

#include "engine/context.h"
#include "shredkv/write_batch.h"

namespace shredkv::engine {

class Writer {
 public:
  explicit Writer(EngineContext& ctx) : ctx_(ctx) {}

  // Applies the whole batch atomically or nothing (see Store::Write),
  // possibly in one commit with other threads' batches. Takes the call
  // guard itself.
  Status Write(const WriteBatch& batch);
  // Acknowledges the change feed up to `cursor` (Store::AckFeed).
  Status AckFeed(std::uint64_t cursor);

  // Bounds of one group: a leader does not make a small batch wait for a
  // long run of others.
  static constexpr std::size_t kMaxGroupBatches = 64;
  static constexpr std::size_t kMaxGroupOps = 65536;

 private:
  // One Write call waiting in the queue.
  struct PendingWrite {
    const WriteBatch* batch = nullptr;
    // Keys of the people it creates, taken from the key pool by the leader.
    std::map<PersonId, keys::PooledKey> new_people;
    bool keys_failed = false;  // no pooled keys could be had: status says why
    Status status;
    bool done = false;  // guarded by queue_mu_
    std::condition_variable cv;
  };
  // What the store's shard placement refuses (Options::shard_placement):
  // in a shard opened alone, creating people and claiming identifiers
  // (FailedPrecondition); in a shard of an open ShardedStore, a person
  // whose ID routes to another shard (InvalidArgument). OK without one.
  Status CheckPlacement(const WriteBatch& batch) const;
  // Applies and commits `group` (front of the queue) under write_mu, and
  // sets each one's status. If the group does not fit in a map that cannot
  // grow (StoreFull), commits each batch alone instead.
  void CommitGroup(const std::vector<PendingWrite*>& group);
  // Takes the pooled keys of the people `group` creates (a pool refill
  // when short). On failure the batches that create people fail with it
  // (keys_failed) and the others go on. REQUIRES: write_mu held.
  bool TakeKeys(const std::vector<PendingWrite*>& group);
  // After the commit (`committed`) or its failure: keys of committed
  // batches become claims, the others return to the pool.
  void SettleKeys(const std::vector<PendingWrite*>& group, bool committed);
  // One attempt: all of `group` in one transaction. REQUIRES: write_mu held.
  // Returns false if it failed with StoreFull.
  bool CommitGroupLocked(const std::vector<PendingWrite*>& group);

  EngineContext& ctx_;
  std::mutex queue_mu_;
  std::deque<PendingWrite*> queue_;  // guarded by queue_mu_; the front is the leader
};

}  // namespace shredkv::engine

#endif  // SHREDKV_ENGINE_WRITE_PATH_H_
