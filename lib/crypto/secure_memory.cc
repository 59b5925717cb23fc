#include "crypto/secure_memory.h"

#include <sodium.h>

#include <cstring>
#include <mutex>
#include <vector>

#include "shredkv/key_provider.h"

namespace shredkv::crypto {

Status Init() {
  static const int rc = sodium_init();
  if (rc < 0) return Status::Internal("libsodium failed to initialise");
  return Status::OK();
}

namespace {

// Keys live in slots of large sodium_malloc chunks: each chunk is locked,
// excluded from core dumps and fenced by guard pages, but one sodium_malloc
// per key would cost ~4 memory mappings each and hit vm.max_map_count
// (65530) at ~16,000 live keys. A freed slot is wiped at once.
class KeyArena {
 public:
  static KeyArena& Get() {
    static auto* arena = new KeyArena();  // never destroyed: keys may outlive statics
    return *arena;
  }
  std::uint8_t* Allocate() {
    std::lock_guard lock(mu_);
    if (free_.empty()) {
      auto* chunk = static_cast<std::uint8_t*>(sodium_malloc(kSlotsPerChunk * SecretKey::kSize));
      if (chunk == nullptr) return nullptr;
      ++chunks_;
      // Capacity for every slot ever made: Free() then never reallocates
      // (it runs in destructors, which must not throw).
      free_.reserve(chunks_ * kSlotsPerChunk);
      for (std::size_t i = kSlotsPerChunk; i-- > 0;) free_.push_back(chunk + i * SecretKey::kSize);
    }
    std::uint8_t* slot = free_.back();
    free_.pop_back();
    return slot;
  }
  void Free(std::uint8_t* slot) {
    sodium_memzero(slot, SecretKey::kSize);
    std::lock_guard lock(mu_);
    free_.push_back(slot);
  }

 private:
  static constexpr std::size_t kSlotsPerChunk = 2048;  // 64 KiB chunks
  std::mutex mu_;
  std::size_t chunks_ = 0;
  std::vector<std::uint8_t*> free_;
};

}  // namespace

Result<SecretKey> SecretKey::Random() {
  if (Status s = Init(); !s.ok()) return s;
  std::uint8_t* p = KeyArena::Get().Allocate();
  if (p == nullptr) return Status::Internal("guarded memory exhausted (sodium_malloc failed)");
  randombytes_buf(p, kSize);
  return SecretKey(p);
}

Result<SecretKey> SecretKey::FromBytes(std::string_view bytes) {
  if (bytes.size() != kSize) {
    return Status::InvalidArgument("key must be 32 bytes, got " + std::to_string(bytes.size()));
  }
  if (Status s = Init(); !s.ok()) return s;
  std::uint8_t* p = KeyArena::Get().Allocate();
  if (p == nullptr) return Status::Internal("guarded memory exhausted (sodium_malloc failed)");
  std::memcpy(p, bytes.data(), kSize);
  return SecretKey(p);
}

SecretKey& SecretKey::operator=(SecretKey&& other) noexcept {
  if (this != &other) {
    if (data_ != nullptr) KeyArena::Get().Free(data_);
    data_ = other.data_;
    other.data_ = nullptr;
  }
  return *this;
}

SecretKey::~SecretKey() {
  if (data_ != nullptr) KeyArena::Get().Free(data_);  // wiped before reuse
}

bool SecretEquals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && sodium_memcmp(a.data(), b.data(), a.size()) == 0;
}

Result<SecretBytes> SecretBytes::Allocate(std::size_t size) {
  if (Status s = Init(); !s.ok()) return s;
  // At least one byte, so the pointer is valid for an empty secret too.
  auto* p = static_cast<std::uint8_t*>(sodium_malloc(size == 0 ? 1 : size));
  if (p == nullptr) return Status::Internal("guarded memory exhausted (sodium_malloc failed)");
  sodium_memzero(p, size == 0 ? 1 : size);
  return SecretBytes(p, size);
}

Result<SecretBytes> SecretBytes::Copy(std::string_view bytes) {
  auto out = Allocate(bytes.size());
  if (!out.ok()) return out;
  if (!bytes.empty()) std::memcpy(out->mutable_data(), bytes.data(), bytes.size());
  return out;
}

SecretBytes& SecretBytes::operator=(SecretBytes&& other) noexcept {
  if (this != &other) {
    if (data_ != nullptr) sodium_free(data_);  // sodium_free wipes first
    data_ = other.data_;
    size_ = other.size_;
    other.data_ = nullptr;
    other.size_ = 0;
  }
  return *this;
}

SecretBytes::~SecretBytes() {
  if (data_ != nullptr) sodium_free(data_);
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
