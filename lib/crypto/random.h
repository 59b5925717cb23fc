// Random bytes for IDs and nonces, from a per-thread pool refilled from the
// OS CSPRNG (libsodium randombytes_buf, one getrandom() per 4 KiB) instead of
// one syscall per nonce. The pool remembers the fork generation that filled it
// and is discarded in a forked child, so parent and child never share bytes.
// See docs/security.md, "Nonces".
// Thread safety: each thread has its own pool.
#ifndef SHREDKV_CRYPTO_RANDOM_H_
#define SHREDKV_CRYPTO_RANDOM_H_

#include <array>
#include <cstddef>
#include <cstdint>

namespace shredkv::crypto {

// Fills `out` with `n` uniformly random bytes. REQUIRES: Init() succeeded.
void RandomFill(void* out, std::size_t n);

template <std::size_t N>
std::array<std::uint8_t, N> RandomArray() {
  std::array<std::uint8_t, N> a;
  RandomFill(a.data(), N);
  return a;
}

std::uint64_t RandomU64();

}  // namespace shredkv::crypto

#endif  // SHREDKV_CRYPTO_RANDOM_H_
