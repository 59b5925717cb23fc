// shredkv — where epoch keys are held: key custody outside the store.
//
// Every epoch key is sealed under the root key in the `keys` environment
// (docs/security.md §2). With an EpochKeyCustody the sealed payload is not
// the epoch key itself but the epoch key encrypted under a per-epoch custody
// key that lives outside every file of the store — in an HSM or KMS — and is
// destroyed when the rotation destroys its epoch. A copy of `keys` taken
// before that rotation, together with the root key, then opens nothing: the
// custody key it needs is gone (docs/security.md §8, the backup bound).
//
// The engine calls a custody only when it opens a store (one Unwrap an
// epoch), when a rotation starts an epoch (CreateKey, Wrap) and when it
// destroys one (DestroyKey) — never on the per-person key path.
// Thread safety: the engine calls one custody from one thread at a time per
// store; an implementation shared between stores must lock for itself (the
// PKCS#11 one does).
#ifndef SHREDKV_KEY_CUSTODY_H_
#define SHREDKV_KEY_CUSTODY_H_

#include <memory>
#include <string>
#include <string_view>

#include "shredkv/key_provider.h"
#include "shredkv/status.h"
#include "shredkv/visibility.h"

namespace shredkv {

// Labels name custody keys: printable ASCII, at most 64 bytes, chosen by the
// engine ("shredkv:<store id prefix>:e<epoch>:<random>"), never reused.
class SHREDKV_EXPORT EpochKeyCustody {
 public:
  virtual ~EpochKeyCustody() = default;

  // Creates a new custody key named `label`: generated inside the custody,
  // never extractable. AlreadyExists if a key of that label exists.
  virtual Status CreateKey(std::string_view label) = 0;

  // Encrypts `epoch_key` (RootKey::kSize bytes) under the key `label` and
  // returns what Unwrap needs to recover it (opaque to the engine, stored
  // sealed under the root key). KeyDestroyed if no key has that label.
  virtual Result<std::string> Wrap(std::string_view label, std::string_view epoch_key) = 0;

  // Recovers the epoch key Wrap encrypted, in guarded memory. KeyDestroyed
  // if the key `label` no longer exists (it was destroyed by a rotation:
  // whatever `wrapped` came from predates it); AuthenticationFailed if
  // `wrapped` was not made by this key.
  virtual Result<RootKey> Unwrap(std::string_view label, std::string_view wrapped) = 0;

  // Destroys the key `label` in the custody. OK if it does not exist.
  virtual Status DestroyKey(std::string_view label) = 0;

  // True if a key named `label` exists.
  virtual Result<bool> HasKey(std::string_view label) = 0;

  // A description for messages ("pkcs11:/usr/lib/softhsm/libsofthsm2.so
  // token 'shredkv'"), never holding a PIN or key material.
  virtual std::string Describe() const = 0;
};

// A PKCS#11 token (an HSM, a cloud HSM, a YubiHSM, SoftHSM2) as the custody.
struct Pkcs11Options {
  // The PKCS#11 module (a shared library), e.g. /usr/lib/softhsm/libsofthsm2.so.
  std::string module_path;
  // The label of the token to use (the slot is found by it).
  std::string token_label;
  // The user PIN. Copied into guarded memory; never in messages.
  std::string pin;
};

// Loads the module, finds the token and logs in. Custody keys are AES-256
// token objects (CKA_TOKEN, CKA_PRIVATE, CKA_SENSITIVE, not
// CKA_EXTRACTABLE); Wrap and Unwrap use CKM_AES_GCM with a random 96-bit IV
// the caller supplies (tokens that insist on generating the IV themselves,
// as FIPS-mode HSMs may, refuse it: IOError) and the label as associated
// data. Errors: NotFound (no module file, no token with that label),
// WrongKey (the token refuses the PIN), IOError (the module fails to load or
// initialise), InvalidArgument (an empty field). A PKCS#11 login holds for
// the whole process: while another custody of this process is logged in to
// the same token, the token does not check the PIN again
// (CKR_USER_ALREADY_LOGGED_IN), so a second custody with a wrong PIN opens.
SHREDKV_EXPORT Result<std::shared_ptr<EpochKeyCustody>> NewPkcs11Custody(const Pkcs11Options& options);

}  // namespace shredkv

#endif  // SHREDKV_KEY_CUSTODY_H_
