// Detects fork(): a counter bumped in every child process by a
// pthread_atfork handler. Cheaper than getpid() (a syscall on current glibc)
// on hot paths such as the nonce pool and the per-call "used after fork" check.
// Thread safety: lock-free.
#ifndef SHREDKV_UTIL_FORK_GENERATION_H_
#define SHREDKV_UTIL_FORK_GENERATION_H_

#include <cstdint>

namespace shredkv::util {

// Installs the handler (once per process). Call before anything records a
// generation; ForkGeneration() calls it too.
void InstallForkHandler();

// Number of forks between the process's start and now, as seen from this
// process (0 in the original process, ≥ 1 in a child).
std::uint64_t ForkGeneration();

}  // namespace shredkv::util

#endif  // SHREDKV_UTIL_FORK_GENERATION_H_
