// Containment of faults in forked children: a damaged file may make liblmdb
// dereference a bad page pointer. The child installs a classifier for
// SIGSEGV/SIGBUS/SIGILL/SIGFPE/SIGABRT that walks the stack (backtrace,
// dladdr) and exits with kExitLmdbFault if the innermost frame outside libc
// lies in liblmdb (a fault there, or one of its own assertions), with
// kExitOtherFault otherwise (our code), so the parent can count contained
// LMDB faults and fail on any other crash.
#ifndef SHREDKV_TESTS_CRASH_FAULT_GUARD_H_
#define SHREDKV_TESTS_CRASH_FAULT_GUARD_H_

#include <string>

namespace shredkv::crash {

inline constexpr int kExitLmdbFault = 40;
inline constexpr int kExitOtherFault = 41;
// SIGBUS at an address inside a memory map of an LMDB data file: a read
// (in any code) of a value LMDB returned from a damaged page, past the end
// of the file. Counted as contained damage, like kExitLmdbFault.
inline constexpr int kExitMappedFileFault = 42;

// Installs the classifier in the calling (child) process.
void InstallFaultClassifier();

// A readable name of a child's wait status, for failure messages.
std::string DescribeWaitStatus(int status);

}  // namespace shredkv::crash

#endif  // SHREDKV_TESTS_CRASH_FAULT_GUARD_H_
