// shredkv — where the root key comes from.
//
// The root key wraps the store's epoch keys and its identifier-index key. The
// engine never writes it into the data directory; it asks the KeyProvider for
// it once, at Store::Open, and keeps it only in guarded memory.
// Thread safety: a KeyProvider is called from Store::Open only, never
// concurrently by one store; implementations need no locking of their own
// unless shared between stores opened concurrently.
#ifndef SHREDKV_KEY_PROVIDER_H_
#define SHREDKV_KEY_PROVIDER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "shredkv/status.h"
#include "shredkv/visibility.h"

namespace shredkv {

// 32 bytes of key material in guarded memory (locked, excluded from core
// dumps where the OS allows, wiped on destruction). Move-only.
class SHREDKV_EXPORT RootKey {
 public:
  static constexpr std::size_t kSize = 32;

  // Copies exactly kSize bytes into guarded memory; InvalidArgument otherwise.
  static Result<RootKey> FromBytes(std::string_view bytes);

  RootKey(RootKey&&) noexcept;
  RootKey& operator=(RootKey&&) noexcept;
  RootKey(const RootKey&) = delete;
  RootKey& operator=(const RootKey&) = delete;
  ~RootKey();

  // Valid for the lifetime of this object.
  const std::uint8_t* data() const;

 private:
  struct Rep;
  explicit RootKey(std::unique_ptr<Rep> rep);
  std::unique_ptr<Rep> rep_;
  friend class RootKeyAccess;
};

// What a provider may use to produce the key: the store's own random salt
// (16 bytes, kept in the store; used by passphrase derivation).
struct KeyRequest {
  std::string_view store_salt;
};

class SHREDKV_EXPORT KeyProvider {
 public:
  virtual ~KeyProvider() = default;
  // Returns the root key for the store asking. Returning a key that is not the
  // store's makes Store::Open fail with WrongKey; nothing is written.
  virtual Result<RootKey> GetRootKey(const KeyRequest& request) = 0;
  // A description for messages, never containing key material ("file:/k").
  virtual std::string Describe() const = 0;
};

// Reads the root key from a file holding exactly 32 raw bytes. The file should
// be mode 0600; a group- or world-readable file is refused (InvalidArgument).
SHREDKV_EXPORT std::shared_ptr<KeyProvider> NewFileKeyProvider(std::string path);

// Derives the root key from a passphrase with Argon2id (libsodium
// crypto_pwhash, MODERATE limits by default) and the store's salt. The
// passphrase is copied into guarded memory.
struct PassphraseOptions {
  // Argon2id cost. INTERACTIVE (fast, for tests) or MODERATE (default).
  bool interactive_limits = false;
};
SHREDKV_EXPORT std::shared_ptr<KeyProvider> NewPassphraseKeyProvider(std::string_view passphrase,
                                                      PassphraseOptions options = {});

// Uses the given 32 bytes (copied into guarded memory). For applications that
// fetch the key from their own KMS, and for tests.
SHREDKV_EXPORT std::shared_ptr<KeyProvider> NewRawKeyProvider(std::string_view key_bytes);

// Creates a new root key file: 32 random bytes, mode 0600, created with
// O_EXCL (AlreadyExists if `path` exists), fsynced before return.
SHREDKV_EXPORT Status CreateKeyFile(const std::string& path);

}  // namespace shredkv

#endif  // SHREDKV_KEY_PROVIDER_H_
