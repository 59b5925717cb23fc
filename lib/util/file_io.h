// Small whole files written so that a crash leaves either the old file or
// the new one: manifests, marker files.
// Thread safety: stateless; concurrent writers of one path race (last
// rename wins), as with any file.
#ifndef SHREDKV_UTIL_FILE_IO_H_
#define SHREDKV_UTIL_FILE_IO_H_

#include <cstddef>
#include <string>
#include <string_view>

#include "shredkv/status.h"

namespace shredkv::util {

// fsync of a file or directory: what makes its contents, or a rename or a
// new entry in it, durable. IOError naming the path.
Status SyncPath(const std::string& path);

// Writes `bytes` to `path` durably and atomically: into a new `<path>.tmp`
// (mode 0600; one left there is removed first, and a symlink is never
// followed), fsynced, renamed over `path`, the directory fsynced.
// IOError on any failure (the temporary file is removed).
Status WriteFileDurably(const std::string& path, std::string_view bytes);

// Creates `dir` and every missing directory above it with mode 0700 (the
// owner's only, as a store's directory: docs/format.md §1); directories that
// exist are left as they are. IOError naming the directory that failed.
Status MakePrivateDirectories(const std::string& dir);

// Makes `dir` ready to be filled (a backup, a restored store): OK if it
// does not exist (it is created as MakePrivateDirectories does, and
// *created set) or is an empty directory (*created cleared); AlreadyExists
// if it is anything else, IOError if it cannot be created.
Status PrepareEmptyDirectory(const std::string& dir, bool* created);

// Leaves `dir` as PrepareEmptyDirectory found it, after a fill that failed:
// removes `dir` if that call created it, else everything in it. Best
// effort: errors are ignored.
void RemoveFill(const std::string& dir, bool created);

// An exclusive flock on a directory, held while the object lives (moved,
// not copied). See LockDirectoryOf.
class DirectoryLock {
 public:
  explicit DirectoryLock(int fd) : fd_(fd) {}
  DirectoryLock(DirectoryLock&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  DirectoryLock& operator=(DirectoryLock&&) = delete;
  DirectoryLock(const DirectoryLock&) = delete;
  ~DirectoryLock();

 private:
  int fd_;  // -1: none (moved from, or a file system without flock)
};

// Takes an exclusive flock on the directory that holds `path` (the
// directory itself: nothing is left behind), for one `what` (e.g.
// "restore") at a time beside it, in this process or another: Busy if one
// holds it. Where the file system has no flock (ENOLCK, EOPNOTSUPP, ENOSYS,
// EINVAL), no lock is taken and the call succeeds: nothing then keeps two
// beside each other apart.
Result<DirectoryLock> LockDirectoryOf(const std::string& path, const std::string& what);

// The whole file at `path`, which must be a regular file (a symbolic link
// to one is followed): NotFound if it does not exist; Corruption if it is
// not a regular file (a FIFO or a device is never read or waited on) or is
// larger than `max_bytes`; IOError otherwise.
Result<std::string> ReadSmallFile(const std::string& path, std::size_t max_bytes);

}  // namespace shredkv::util

#endif  // SHREDKV_UTIL_FILE_IO_H_
