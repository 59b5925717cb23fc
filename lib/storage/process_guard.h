// Refuses a second open of the same store directory within one process
// (LMDB forbids opening one environment twice in a process: its locks are
// per process, and a second mdb_env_open would corrupt them on close), and
// in another process (an exclusive flock on <dir>/LOCK): the engine keeps
// per-process state (event sequence, key cache, leases, file swaps) that a
// second writer process would corrupt.
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

// How a process claims a store directory.
enum class ClaimMode {
  kExclusive,  // to write: no other process may have it open
  kShared,     // to read only: other readers may, a writer may not
  // To read only beside the writer that holds the store (issue 18): a
  // shared lock on <dir>/READERS instead of LOCK. The environments are then
  // opened with LMDB's reader table (EnvOptions::beside_writer), so the
  // writer never reuses a page a reader sees, and the writer takes READERS
  // exclusively before it swaps a file (ExcludeLiveReaders).
  kLiveReader,
};

class DirectoryClaim {
 public:
  // Claims `directory` (which must exist) for this process.
  // Errors: FailedPrecondition if this process claimed it already, Busy if
  // another process holds it (in use), ReadOnly if its LOCK file cannot be
  // opened for writing in a directory this process can read (a read-only
  // mount or no write permission), IOError otherwise.
  // kShared takes a shared lock on LOCK, opened read-only if it cannot be
  // opened for writing (never ReadOnly); Busy while a process holds it
  // exclusively, and an exclusive claim is Busy while one holds it shared.
  // A directory without LOCK that this process cannot create one in has no
  // writer to exclude that uses this lock: claimed without it.
  // kLiveReader waits up to `swap_wait_ms` while the writer holds READERS
  // exclusively (a file swap: compaction, the keys rebuild) instead of
  // failing at once (outside audit 31, F3); Busy after that.
  static Result<std::unique_ptr<DirectoryClaim>> Acquire(const std::string& directory,
                                                         ClaimMode mode = ClaimMode::kExclusive,
                                                         std::int64_t swap_wait_ms = 0);
  ~DirectoryClaim();
  DirectoryClaim(const DirectoryClaim&) = delete;
  DirectoryClaim& operator=(const DirectoryClaim&) = delete;

  // Held by a writer while it replaces an environment's file (compaction,
  // the keys rebuild): no kLiveReader process has the store open meanwhile,
  // so none maps a file that is being replaced and wiped. Released on
  // destruction.
  class ReaderExclusion {
   public:
    explicit ReaderExclusion(int fd) : fd_(fd) {}
    ~ReaderExclusion();
    ReaderExclusion(const ReaderExclusion&) = delete;
    ReaderExclusion& operator=(const ReaderExclusion&) = delete;

   private:
    int fd_;
  };
  // Waits up to `timeout_ms` for the live readers of `directory` to leave
  // and keeps new ones out until the result is destroyed. Busy if readers
  // stay; IOError if READERS cannot be opened.
  static Result<std::unique_ptr<ReaderExclusion>> ExcludeLiveReaders(const std::string& directory,
                                                                     std::int64_t timeout_ms);

 private:
  DirectoryClaim(std::uint64_t dev, std::uint64_t ino, int lock_fd);
  std::uint64_t dev_, ino_;
  int lock_fd_;
  std::uint64_t fork_generation_;  // a claim destroyed in a forked child releases nothing shared
};

}  // namespace shredkv::storage

#endif  // SHREDKV_STORAGE_PROCESS_GUARD_H_
