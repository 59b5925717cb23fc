// Restriction of processing, consent and processing leases (design §6).
// Restrict waits for the person's leases to drain (bounded) and refuses new
// ones meanwhile; a lease registers before it reads the restriction state, so
// a restriction either sees it or it sees the restriction. Every change is a
// RecordConsentOp through the write path (history, notice, version).
// Thread safety: thread-safe.
#ifndef SHREDKV_ENGINE_PROCESSING_H_
#define SHREDKV_ENGINE_PROCESSING_H_

#include <memory>
#include <string_view>

#include "engine/context.h"
#include "engine/reader.h"
#include "engine/write_path.h"

namespace shredkv::engine {

class Processing {
 public:
  Processing(EngineContext& ctx, Writer& writer, Reader& reader) : ctx_(ctx), writer_(writer), reader_(reader) {}

  // See the methods of the same name in shredkv/store.h. Each takes the
  // call guard itself.
  // Store::Restrict, Unrestrict and SetConsent for many people, one commit.
  Status Restrict(const std::vector<PersonId>& people, const RestrictionSpec& spec);
  Status Unrestrict(const std::vector<PersonId>& people, const RestrictionSpec& spec);
  Status SetConsent(const std::vector<PersonId>& people, std::string_view purpose, bool granted,
                    std::string_view source);
  Result<std::unique_ptr<Lease>> AcquireLease(const PersonId& id, std::string_view purpose);

 private:
  EngineContext& ctx_;
  Writer& writer_;
  Reader& reader_;
};

}  // namespace shredkv::engine

#endif  // SHREDKV_ENGINE_PROCESSING_H_
