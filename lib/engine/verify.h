// Store::Verify and Store::VerifyAuditLog: a full consistency check of both
// environments (every sealed row opens, every clear row's checksum holds,
// indexes and back-references agree, every scanned row is reachable by its
// key) and the audit chain.
// Thread safety: thread-safe; runs in read transactions.
#ifndef SHREDKV_ENGINE_VERIFY_H_
#define SHREDKV_ENGINE_VERIFY_H_

#include "engine/context.h"

namespace shredkv::engine {

class Verifier {
 public:
  explicit Verifier(EngineContext& ctx) : ctx_(ctx) {}
  // Each takes the call guard itself.
  Result<VerifyReport> Verify();
  Result<AuditVerification> VerifyAuditLog();

 private:
  EngineContext& ctx_;
};

}  // namespace shredkv::engine

#endif  // SHREDKV_ENGINE_VERIFY_H_
