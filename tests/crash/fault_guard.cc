#include "crash/fault_guard.h"

#include <dlfcn.h>
#include <signal.h>
#include <sys/wait.h>
#include <ucontext.h>
#include <unistd.h>

#include <cstring>

namespace shredkv::crash {
namespace {

void Classify(int /*sig*/, siginfo_t* /*info*/, void* context) {
  const auto* uc = static_cast<const ucontext_t*>(context);
#if defined(__x86_64__)
  const auto pc = static_cast<std::uintptr_t>(uc->uc_mcontext.gregs[REG_RIP]);
#elif defined(__aarch64__)
  const auto pc = static_cast<std::uintptr_t>(uc->uc_mcontext.pc);
#else
  const std::uintptr_t pc = 0;
  (void)uc;
#endif
  Dl_info info{};
  // dladdr is not formally async-signal-safe, but the process ends here
  // and only a few of its bytes are read.
  if (pc != 0 && ::dladdr(reinterpret_cast<void*>(pc), &info) != 0 && info.dli_fname != nullptr &&
      std::strstr(info.dli_fname, "liblmdb") != nullptr) {
    _exit(kExitLmdbFault);
  }
  _exit(kExitOtherFault);
}

}  // namespace

void InstallFaultClassifier() {
  struct sigaction sa {};
  sa.sa_sigaction = &Classify;
  sa.sa_flags = SA_SIGINFO;
  sigemptyset(&sa.sa_mask);
  for (int sig : {SIGSEGV, SIGBUS, SIGILL, SIGFPE}) ::sigaction(sig, &sa, nullptr);
}

std::string DescribeWaitStatus(int status) {
  if (WIFEXITED(status)) return "exit " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return std::string("signal ") + ::strsignal(WTERMSIG(status));
  return "status " + std::to_string(status);
}

}  // namespace shredkv::crash
