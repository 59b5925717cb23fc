#include "crash/fault_guard.h"

#include <dlfcn.h>
#include <signal.h>
#include <sys/wait.h>
#include <execinfo.h>
#include <unistd.h>

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

// The stack of the handler is: this handler (the test binary), the signal
// trampoline and maybe abort/raise/memcpy (libc), then the code that
// faulted or asserted. The first frame past those decides.
// backtrace()/dladdr are not async-signal-safe; the process ends here anyway.
void Classify(int /*sig*/, siginfo_t* /*info*/, void* /*context*/) {
  void* frames[64];
  const int n = ::backtrace(frames, 64);
  int i = 0;
  while (i < n && OriginOf(frames[i]) == Origin::kOther) ++i;   // the handler
  while (i < n && OriginOf(frames[i]) == Origin::kSystem) ++i;  // trampoline, libc
  _exit(i < n && OriginOf(frames[i]) == Origin::kLmdb ? kExitLmdbFault : kExitOtherFault);
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
