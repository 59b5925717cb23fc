#include "crypto/secure_memory.h"

#include <sodium.h>

#include <cstring>

#include "shredkv/key_provider.h"

namespace shredkv::crypto {

Status Init() {
  static const int rc = sodium_init();
  if (rc < 0) return Status::Internal("libsodium failed to initialise");
  return Status::OK();
}

Result<SecretKey> SecretKey::Random() {
  if (Status s = Init(); !s.ok()) return s;
  auto* p = static_cast<std::uint8_t*>(sodium_malloc(kSize));
  if (p == nullptr) return Status::Internal("sodium_malloc failed: guarded memory exhausted");
  randombytes_buf(p, kSize);
  return SecretKey(p);
}

Result<SecretKey> SecretKey::FromBytes(std::string_view bytes) {
  if (bytes.size() != kSize) {
    return Status::InvalidArgument("key must be 32 bytes, got " + std::to_string(bytes.size()));
  }
  if (Status s = Init(); !s.ok()) return s;
  auto* p = static_cast<std::uint8_t*>(sodium_malloc(kSize));
  if (p == nullptr) return Status::Internal("sodium_malloc failed: guarded memory exhausted");
  std::memcpy(p, bytes.data(), kSize);
  return SecretKey(p);
}

SecretKey& SecretKey::operator=(SecretKey&& other) noexcept {
  if (this != &other) {
    if (data_ != nullptr) sodium_free(data_);
    data_ = other.data_;
    other.data_ = nullptr;
  }
  return *this;
}

SecretKey::~SecretKey() {
  if (data_ != nullptr) sodium_free(data_);  // wipes before unmapping
}

bool SecretEquals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && sodium_memcmp(a.data(), b.data(), a.size()) == 0;
}

void Wipe(void* p, std::size_t n) { sodium_memzero(p, n); }

void Wipe(std::string* s) {
  if (!s->empty()) sodium_memzero(s->data(), s->size());
  s->clear();
}

}  // namespace shredkv::crypto

// ---- shredkv::RootKey (public type, guarded storage) ------------------------
namespace shredkv {

struct RootKey::Rep {
  explicit Rep(crypto::SecretKey k) : key(std::move(k)) {}
  crypto::SecretKey key;
};

RootKey::RootKey(std::unique_ptr<Rep> rep) : rep_(std::move(rep)) {}
RootKey::RootKey(RootKey&&) noexcept = default;
RootKey& RootKey::operator=(RootKey&&) noexcept = default;
RootKey::~RootKey() = default;

Result<RootKey> RootKey::FromBytes(std::string_view bytes) {
  auto key = crypto::SecretKey::FromBytes(bytes);
  if (!key.ok()) return key.status();
  return RootKey(std::make_unique<Rep>(std::move(key).value()));
}

const std::uint8_t* RootKey::data() const { return rep_->key.data(); }

}  // namespace shredkv
