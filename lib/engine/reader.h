// Reads of one person and of the whole store. Each read of a person holds
// the person's stripe lock shared from the key lookup to the decryption, so
// no read that returns after an erasure can have used the shredded key.
// Every method takes the call guard itself.
// Thread safety: thread-safe.
#ifndef SHREDKV_ENGINE_READER_H_
#define SHREDKV_ENGINE_READER_H_

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "engine/context.h"

namespace shredkv::engine {

class Reader {
 public:
  explicit Reader(EngineContext& ctx) : ctx_(ctx) {}

  // See the methods of the same name in shredkv/store.h.
  Result<PersonId> Resolve(const Identifier& identifier);
  Result<PersonInfo> GetPerson(const PersonId& id);
  Result<Attributes> GetProfile(const PersonId& id);
  // Resolve + GetProfile in one `data` read transaction (Store::LookupProfile).
  Result<PersonProfile> LookupProfile(const Identifier& identifier);
  // Store::Get with the record's collection and category.
  Result<Record> GetRecord(const PersonId& id, std::string_view collection, std::string_view key);
  Result<RestrictionState> GetRestriction(const PersonId& id);
  Result<std::map<std::string, bool>> GetConsent(const PersonId& id);
  Result<std::vector<ConsentRecord>> GetConsentHistory(const PersonId& id);
  Result<std::vector<Notice>> ReadFeed(std::size_t max);
  Result<StoreStats> Stats();
  Result<std::vector<AuditRecord>> ReadAudit(std::uint64_t after_seq, std::size_t max);
  Result<std::string> AuditSubject(const PersonId& id);

 private:
  // LookupProfile's one-read path; *would_wait (and an unspecified error)
  // when the person's stripe could not be taken without waiting.
  Result<PersonProfile> LookupProfileInOneRead(const Identifier& identifier, bool* would_wait);
  EngineContext& ctx_;
};

}  // namespace shredkv::engine

#endif  // SHREDKV_ENGINE_READER_H_
