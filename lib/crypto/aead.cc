#include "crypto/aead.h"

#include <sodium.h>

#include "crypto/random.h"

namespace shredkv::crypto {

bool IsKnownCipher(std::uint8_t id) {
  return id == static_cast<std::uint8_t>(CipherId::kXChaCha20Poly1305) ||
         id == static_cast<std::uint8_t>(CipherId::kAes256Gcm);
}

bool Aes256GcmAvailable() {
  (void)Init();
  return crypto_aead_aes256gcm_is_available() == 1;
}

std::size_t NonceSize(CipherId cipher) {
  return cipher == CipherId::kAes256Gcm ? crypto_aead_aes256gcm_NPUBBYTES
                                        : crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;
}

std::size_t SealOverhead(CipherId cipher) { return NonceSize(cipher) + kTagSize; }

void Seal(CipherId cipher, const SecretKey& key, std::string_view associated_data,
          std::string_view plaintext, std::string* out) {
  const std::size_t nonce_size = NonceSize(cipher);
  const std::size_t start = out->size();
  out->resize(start + nonce_size + plaintext.size() + kTagSize);
  auto* nonce = reinterpret_cast<unsigned char*>(out->data() + start);
  RandomFill(nonce, nonce_size);
  unsigned char* ct = nonce + nonce_size;
  unsigned long long ct_len = 0;
  const auto* m = reinterpret_cast<const unsigned char*>(plaintext.data());
  const auto* ad = reinterpret_cast<const unsigned char*>(associated_data.data());
  if (cipher == CipherId::kAes256Gcm) {
    crypto_aead_aes256gcm_encrypt(ct, &ct_len, m, plaintext.size(), ad, associated_data.size(),
                                  nullptr, nonce, key.data());
  } else {
    crypto_aead_xchacha20poly1305_ietf_encrypt(ct, &ct_len, m, plaintext.size(), ad,
                                               associated_data.size(), nullptr, nonce,
                                               key.data());
  }
}

Status Open(CipherId cipher, const SecretKey& key, std::string_view associated_data,
            std::string_view box, std::string* plaintext) {
  const std::size_t nonce_size = NonceSize(cipher);
  if (box.size() < nonce_size + kTagSize) {
    plaintext->clear();
    return Status::Corruption("sealed box truncated: " + std::to_string(box.size()) + " bytes");
  }
  const auto* nonce = reinterpret_cast<const unsigned char*>(box.data());
  const unsigned char* ct = nonce + nonce_size;
  const std::size_t ct_len = box.size() - nonce_size;
  plaintext->resize(ct_len - kTagSize);
  unsigned long long m_len = 0;
  auto* m = reinterpret_cast<unsigned char*>(plaintext->data());
  const auto* ad = reinterpret_cast<const unsigned char*>(associated_data.data());
  int rc;
  if (cipher == CipherId::kAes256Gcm) {
    rc = crypto_aead_aes256gcm_decrypt(m, &m_len, nullptr, ct, ct_len, ad, associated_data.size(),
                                       nonce, key.data());
  } else {
    rc = crypto_aead_xchacha20poly1305_ietf_decrypt(m, &m_len, nullptr, ct, ct_len, ad,
                                                    associated_data.size(), nonce, key.data());
  }
  if (rc != 0) {
    Wipe(plaintext);
    return Status::AuthenticationFailed("ciphertext failed authentication");
  }
  return Status::OK();
}

}  // namespace shredkv::crypto
