// Authenticated encryption of records and wrapped keys.
//
// A sealed box is  nonce ‖ ciphertext ‖ tag  for the given cipher; the nonce
// is drawn from the random pool inside Seal (callers never choose nonces).
// Associated data binds the box to its place; Open with different associated
// data or a different key fails with AuthenticationFailed and leaves no
// plaintext behind.
// Thread safety: stateless; keys are read-only.
#ifndef SHREDKV_CRYPTO_AEAD_H_
#define SHREDKV_CRYPTO_AEAD_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "crypto/secure_memory.h"
#include "shredkv/status.h"

namespace shredkv::crypto {

// On-disk cipher identifiers. Do not change: part of the persistent format.
enum class CipherId : std::uint8_t {
  kXChaCha20Poly1305 = 1,  // 24-byte nonce, 16-byte tag
  kAes256Gcm = 2,          // 12-byte nonce, 16-byte tag
};

bool IsKnownCipher(std::uint8_t id);
bool Aes256GcmAvailable();
std::size_t NonceSize(CipherId cipher);
constexpr std::size_t kTagSize = 16;
// Bytes Seal adds to the plaintext.
std::size_t SealOverhead(CipherId cipher);

// Appends the sealed box of `plaintext` to `*out`.
void Seal(CipherId cipher, const SecretKey& key, std::string_view associated_data,
          std::string_view plaintext, std::string* out);

// Opens a sealed box into `*plaintext` (replaced). Errors: Corruption if the
// box is shorter than nonce + tag; AuthenticationFailed if the tag does not
// verify (wrong key, tampered bytes or different associated data).
[[nodiscard]] Status Open(CipherId cipher, const SecretKey& key, std::string_view associated_data,
                          std::string_view box, std::string* plaintext);

}  // namespace shredkv::crypto

#endif  // SHREDKV_CRYPTO_AEAD_H_
