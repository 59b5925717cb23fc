// Key material in libsodium guarded memory: slots of large sodium_malloc
// chunks (guard pages around each chunk, mlock, excluded from core dumps via
// MADV_DONTDUMP); a slot is wiped the moment its key is destroyed.
// Thread safety: a SecretKey is immutable after construction and may be read
// from many threads; moving it is not thread-safe.
#ifndef SHREDKV_CRYPTO_SECURE_MEMORY_H_
#define SHREDKV_CRYPTO_SECURE_MEMORY_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "shredkv/status.h"

namespace shredkv::crypto {

// Initialises libsodium once per process. Safe to call from many threads.
Status Init();

// A 32-byte key in guarded memory. Move-only; wiped on destruction.
class SecretKey {
 public:
  static constexpr std::size_t kSize = 32;

  // A fresh random key. Internal if guarded memory cannot be allocated.
  static Result<SecretKey> Random();
  // Copies exactly kSize bytes; InvalidArgument otherwise.
  static Result<SecretKey> FromBytes(std::string_view bytes);

  SecretKey(SecretKey&& other) noexcept : data_(other.data_) { other.data_ = nullptr; }
  SecretKey& operator=(SecretKey&& other) noexcept;
  SecretKey(const SecretKey&) = delete;
  SecretKey& operator=(const SecretKey&) = delete;
  ~SecretKey();

  const std::uint8_t* data() const { return data_; }
  // The raw bytes, for wrapping under another key. Never log or persist.
  std::string_view view() const {
    return {reinterpret_cast<const char*>(data_), kSize};
  }

 private:
  explicit SecretKey(std::uint8_t* data) : data_(data) {}
  std::uint8_t* data_ = nullptr;
};

// A secret of any length (a PIN, a plaintext being unwrapped) in its own
// sodium_malloc allocation: locked, guard pages around it, wiped and freed on
// destruction. Move-only.
class SecretBytes {
 public:
  // `size` zero bytes. Internal if guarded memory cannot be allocated.
  static Result<SecretBytes> Allocate(std::size_t size);
  // A guarded copy of `bytes`.
  static Result<SecretBytes> Copy(std::string_view bytes);

  SecretBytes(SecretBytes&& other) noexcept : data_(other.data_), size_(other.size_) {
    other.data_ = nullptr;
    other.size_ = 0;
  }
  SecretBytes& operator=(SecretBytes&& other) noexcept;
  SecretBytes(const SecretBytes&) = delete;
  SecretBytes& operator=(const SecretBytes&) = delete;
  ~SecretBytes();

  const std::uint8_t* data() const { return data_; }
  std::uint8_t* mutable_data() { return data_; }
  std::size_t size() const { return size_; }

 private:
  SecretBytes(std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}
  std::uint8_t* data_ = nullptr;
  std::size_t size_ = 0;
};

// Constant-time comparison.
bool SecretEquals(std::string_view a, std::string_view b);

// Wipes a plaintext buffer before it is released.
void Wipe(void* p, std::size_t n);
void Wipe(std::string* s);

// A std::string of secret-derived bytes (an erased person's analytics
// links, say) that is wiped whenever its buffer is let go: on destruction,
// when something is assigned over it, and when it is moved from. Copies
// are wiped in turn. Thread safety: as std::string.
class WipedString {
 public:
  WipedString() = default;
  WipedString(std::string bytes) : bytes_(std::move(bytes)) {}  // NOLINT: implicit by design
  WipedString(const WipedString& other) = default;
  WipedString(WipedString&& other) noexcept : bytes_(std::move(other.bytes_)) { Wipe(&other.bytes_); }
  WipedString& operator=(WipedString other) noexcept {
    Wipe(&bytes_);
    bytes_ = std::move(other.bytes_);
    return *this;
  }
  ~WipedString() { Wipe(&bytes_); }

  bool empty() const { return bytes_.empty(); }
  const std::string& str() const { return bytes_; }
  // For a callee that fills it (what was there is wiped first).
  std::string* mutable_str() {
    Wipe(&bytes_);
    return &bytes_;
  }
  operator std::string_view() const { return bytes_; }  // NOLINT: implicit by design

 private:
  std::string bytes_;
};

}  // namespace shredkv::crypto

#endif  // SHREDKV_CRYPTO_SECURE_MEMORY_H_
