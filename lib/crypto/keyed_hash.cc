#include "crypto/keyed_hash.h"

#include <sodium.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "util/coding.h"

namespace shredkv::crypto {

std::uint64_t ShortKeyedHash(std::string_view key, std::string_view message) {
  static_assert(crypto_shorthash_siphash24_KEYBYTES == 16 && crypto_shorthash_siphash24_BYTES == 8);
  unsigned char out[crypto_shorthash_siphash24_BYTES];
  crypto_shorthash_siphash24(out, reinterpret_cast<const unsigned char*>(message.data()), message.size(),
                             reinterpret_cast<const unsigned char*>(key.data()));
  std::uint64_t v = 0;
  for (unsigned char b : out) v = (v << 8) | b;
  return v;
}

std::string KeyedHash(const SecretKey& key, std::size_t out_size,
                      std::initializer_list<std::string_view> parts) {
  crypto_generichash_state state;
  crypto_generichash_init(&state, key.data(), SecretKey::kSize, out_size);
  for (std::string_view part : parts) {
    std::string len;
    util::PutVarint64(&len, part.size());
    crypto_generichash_update(&state, reinterpret_cast<const unsigned char*>(len.data()),
                              len.size());
    crypto_generichash_update(&state, reinterpret_cast<const unsigned char*>(part.data()),
                              part.size());
  }
  std::string out(out_size, '\0');
  crypto_generichash_final(&state, reinterpret_cast<unsigned char*>(out.data()), out_size);
  sodium_memzero(&state, sizeof state);
  return out;
}

void KeyedHashRaw(std::string_view key, std::string_view message, unsigned char* out, std::size_t out_size) {
  crypto_generichash(out, out_size, reinterpret_cast<const unsigned char*>(message.data()), message.size(),
                     reinterpret_cast<const unsigned char*>(key.data()), key.size());
}

std::string Hash256(std::string_view data) {
  std::string out(32, '\0');
  crypto_generichash(reinterpret_cast<unsigned char*>(out.data()), out.size(),
                     reinterpret_cast<const unsigned char*>(data.data()), data.size(), nullptr, 0);
  return out;
}

Result<std::string> FileHash256(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) {
    if (errno == ENOENT) return Status::NotFound("'" + path + "' does not exist");
    return Status::IOError("cannot open '" + path + "': " + std::strerror(errno));
  }
  crypto_generichash_state state;
  crypto_generichash_init(&state, nullptr, 0, 32);
  std::string buf(1u << 20, '\0');
  std::size_t n = 0;
  while ((n = std::fread(buf.data(), 1, buf.size(), f)) > 0) {
    crypto_generichash_update(&state, reinterpret_cast<const unsigned char*>(buf.data()), n);
  }
  const bool failed = std::ferror(f) != 0;
  std::fclose(f);
  std::string out(32, '\0');
  crypto_generichash_final(&state, reinterpret_cast<unsigned char*>(out.data()), out.size());
  if (failed) return Status::IOError("cannot read '" + path + "'");
  return out;
}

}  // namespace shredkv::crypto
