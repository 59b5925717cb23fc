// Identifier types and their normalisation rules (docs/format.md,
// "Identifier normalisation"), and the keyed hash under which an identifier
// is indexed. The clear value is never stored outside the person's encrypted
// record.
// Thread safety: an IdentifierRegistry is immutable after construction.
#ifndef SHREDKV_ENGINE_IDENTIFIERS_H_
#define SHREDKV_ENGINE_IDENTIFIERS_H_

#include <map>
#include <string>
#include <vector>

#include "crypto/secure_memory.h"
#include "shredkv/options.h"
#include "shredkv/status.h"
#include "shredkv/types.h"

namespace shredkv::engine {

inline constexpr std::size_t kMaxIdentifierValue = 1024;

class IdentifierRegistry {
 public:
  // Built-in types plus `extra`. InvalidArgument for a malformed or duplicate
  // type name (a built-in name cannot be redefined).
  static Result<IdentifierRegistry> Create(const std::vector<IdentifierTypeSpec>& extra);

  // The normalised identifier; InvalidArgument for an unknown type, an empty
  // or over-long value, or one its rule rejects.
  Result<Identifier> Normalize(const Identifier& id) const;

  // OK if the normalised identifier may be given to a person (created,
  // linked, imported, a rectification's new one); InvalidArgument if its
  // value holds a control character, or, for an e-mail address, an
  // invisible or space-like one: it would look like another identifier.
  // Lookups do not check it, so values stored before the check was made
  // (stop 36) are still found and erased by value.
  Status CheckClaimable(const Identifier& normalized) const;

 private:
  std::map<std::string, Normalization, std::less<>> types_;
};

// The index key of a normalised identifier: BLAKE2b-256 keyed with the
// store's index key over ("ident", type, value).
std::string IdentifierHash(const crypto::SecretKey& index_key, const Identifier& normalized);

}  // namespace shredkv::engine

#endif  // SHREDKV_ENGINE_IDENTIFIERS_H_
