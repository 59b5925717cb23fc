// Refuses a second open of the same store directory within one process
// (LMDB forbids opening one environment twice in a process: its locks are
// per process, and a second mdb_env_open would corrupt them on close).
// Directories are identified by (device, inode), so different paths to the
// same directory are caught.
// Thread safety: the registry is internally locked.
#ifndef SHREDKV_STORAGE_PROCESS_GUARD_H_
#define SHREDKV_STORAGE_PROCESS_GUARD_H_

#include <cstdint>
#include <memory>
#include <string>

#include "shredkv/status.h"

namespace shredkv::storage {

class DirectoryClaim {
 public:
  // Claims `directory` (which must exist) for this process.
  // FailedPrecondition if it is already claimed.
  static Result<std::unique_ptr<DirectoryClaim>> Acquire(const std::string& directory);
  ~DirectoryClaim();
  DirectoryClaim(const DirectoryClaim&) = delete;
  DirectoryClaim& operator=(const DirectoryClaim&) = delete;

 private:
  DirectoryClaim(std::uint64_t dev, std::uint64_t ino) : dev_(dev), ino_(ino) {}
  std::uint64_t dev_, ino_;
};

}  // namespace shredkv::storage

#endif  // SHREDKV_STORAGE_PROCESS_GUARD_H_
