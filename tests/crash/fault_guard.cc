#include "crash/fault_guard.h"

#include <dlfcn.h>
#include <signal.h>
#include <sys/wait.h>
#include <execinfo.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace shredkv::crash {
namespace {

enum class Origin { kLmdb, kSystem, kOther };

Origin OriginOf(void* address) {
  Dl_info info{};
  if (::dladdr(address, &info) == 0 || info.dli_fname == nullptr) return Origin::kOther;
  const char* f = info.dli_fname;
  if (std::strstr(f, "liblmdb") != nullptr) return Origin::kLmdb;
  if (std::strstr(f, "libc.so") != nullptr || std::strstr(f, "libasan") != nullptr ||
      std::strstr(f, "libubsan") != nullptr || std::strstr(f, "linux-vdso") != nullptr) {
    return Origin::kSystem;
  }
  return Origin::kOther;
}

// The stack of the handler is: (under a sanitizer, its backtrace
// interceptor), this handler (the test binary), the signal
// trampoline and maybe abort/raise/memcpy (libc), then the code that
// faulted or asserted. The first frame past those decides.
// backtrace()/dladdr are not async-signal-safe; the process ends here anyway.
// True if `address` lies in a memory map of an LMDB data file (data.mdb):
// the fault read a page LMDB pointed at, past the damaged file's end.
bool InMappedDataFile(const void* address) {
  static char maps[1 << 16];
  const int fd = ::open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  std::size_t used = 0;
  for (ssize_t n; used < sizeof(maps) - 1 && (n = ::read(fd, maps + used, sizeof(maps) - 1 - used)) > 0;) {
    used += static_cast<std::size_t>(n);
  }
  ::close(fd);
  maps[used] = '\0';
  const auto target = reinterpret_cast<std::uintptr_t>(address);
  for (char* line = maps; line != nullptr && *line != '\0';) {
    char* next = std::strchr(line, '\n');
    if (next != nullptr) *next++ = '\0';
    if (std::strstr(line, "data.mdb") != nullptr) {
      char* dash = nullptr;
      const std::uintptr_t start = std::strtoull(line, &dash, 16);
      const std::uintptr_t end = std::strtoull(dash + 1, nullptr, 16);
      if (target >= start && target < end) return true;
    }
    line = next;
  }
  return false;
}

void Classify(int sig, siginfo_t* info, void* /*context*/) {
  // A read past the end of a mapped data file: LMDB handed out a pointer
  // from a damaged page (the reader may be ours, e.g. AEAD over a value).
  if (sig == SIGBUS && info != nullptr && InMappedDataFile(info->si_addr)) _exit(kExitMappedFileFault);
  void* frames[64];
  const int n = ::backtrace(frames, 64);
  int i = 0;
  while (i < n && OriginOf(frames[i]) == Origin::kSystem) ++i;  // a sanitizer's backtrace interceptor
  while (i < n && OriginOf(frames[i]) == Origin::kOther) ++i;   // the handler
  while (i < n && OriginOf(frames[i]) == Origin::kSystem) ++i;  // trampoline, libc
  if (i < n && OriginOf(frames[i]) == Origin::kLmdb) _exit(kExitLmdbFault);
  // Ours: leave the signal, the address and the stack for whoever reads
  // the test's output.
  char line[96];
  const int len = std::snprintf(line, sizeof line, "fault: signal %d at %p\n", sig,
                                info != nullptr ? info->si_addr : nullptr);
  if (len > 0) (void)!::write(STDERR_FILENO, line, static_cast<std::size_t>(len));
  ::backtrace_symbols_fd(frames, n, STDERR_FILENO);
  _exit(kExitOtherFault);
}

}  // namespace

void InstallFaultClassifier() {
  struct sigaction sa {};
  sa.sa_sigaction = &Classify;
  sa.sa_flags = SA_SIGINFO;
  sigemptyset(&sa.sa_mask);
  for (int sig : {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT}) ::sigaction(sig, &sa, nullptr);
}

std::string DescribeWaitStatus(int status) {
  if (WIFEXITED(status)) return "exit " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return std::string("signal ") + ::strsignal(WTERMSIG(status));
  return "status " + std::to_string(status);
}

}  // namespace shredkv::crash
