// The write path: every change to people, profiles, events, records,
// identifiers and consent goes through one WriteBatch. The keys of people
// the batch creates are made first; the batch is applied in one `data`
// write transaction (re-run after a full map grows) under write_mu; a
// category key a batch needs for the first time is stored in `keys` inside
// that transaction, before the commit that uses it (design §2).
// Thread safety: thread-safe (writes are serialised by write_mu).
#ifndef SHREDKV_ENGINE_WRITE_PATH_H_
#define SHREDKV_ENGINE_WRITE_PATH_H_

#include <cstdint>

#include "engine/context.h"
#include "shredkv/write_batch.h"

namespace shredkv::engine {

class Writer {
 public:
  explicit Writer(EngineContext& ctx) : ctx_(ctx) {}

  // Applies the whole batch atomically or nothing (see Store::Write).
  // Takes the call guard itself.
  Status Write(const WriteBatch& batch);
  // Acknowledges the change feed up to `cursor` (Store::AckFeed).
  Status AckFeed(std::uint64_t cursor);

 private:
  EngineContext& ctx_;
};

}  // namespace shredkv::engine

#endif  // SHREDKV_ENGINE_WRITE_PATH_H_
