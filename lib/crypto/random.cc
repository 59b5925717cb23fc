#include "crypto/random.h"

#include <sodium.h>

#include <algorithm>
#include <cstring>

#include "util/fork_generation.h"

namespace shredkv::crypto {
namespace {

constexpr std::size_t kPoolSize = 4096;

struct Pool {
  unsigned char bytes[kPoolSize];
  std::size_t used = kPoolSize;  // empty
  std::uint64_t fork_generation = ~0ull;  // never matches: starts empty

  ~Pool() { sodium_memzero(bytes, sizeof bytes); }
};

thread_local Pool tls_pool;

}  // namespace

void RandomFill(void* out, std::size_t n) {
  auto* dst = static_cast<unsigned char*>(out);
  if (n >= kPoolSize / 4) {  // large requests bypass the pool
    randombytes_buf(dst, n);
    return;
  }
  Pool& pool = tls_pool;
  const std::uint64_t generation = util::ForkGeneration();
  if (pool.fork_generation != generation) {  // a forked child: never reuse bytes
    pool.used = kPoolSize;
    pool.fork_generation = generation;
  }
  while (n > 0) {
    if (pool.used == kPoolSize) {
      randombytes_buf(pool.bytes, kPoolSize);
      pool.used = 0;
    }
    std::size_t take = std::min(n, kPoolSize - pool.used);
    std::memcpy(dst, pool.bytes + pool.used, take);
    sodium_memzero(pool.bytes + pool.used, take);  // a byte is handed out once
    pool.used += take;
    dst += take;
    n -= take;
  }
}

std::uint64_t RandomU64() {
  std::uint64_t v;
  RandomFill(&v, sizeof v);
  return v;
}

}  // namespace shredkv::crypto
