#include "storage/process_guard.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <mutex>
#include <set>
#include <utility>

namespace shredkv::storage {
namespace {

std::mutex g_mutex;
std::set<std::pair<std::uint64_t, std::uint64_t>>& Claimed() {
  static auto* claimed = new std::set<std::pair<std::uint64_t, std::uint64_t>>();
  return *claimed;
}

}  // namespace

Result<std::unique_ptr<DirectoryClaim>> DirectoryClaim::Acquire(const std::string& directory, ClaimMode mode) {
  const bool shared = mode == ClaimMode::kShared;
  struct stat st {};
  if (::stat(directory.c_str(), &st) != 0) {
    return Status::IOError("cannot stat '" + directory + "': " + std::strerror(errno));
  }
  auto id = std::make_pair(static_cast<std::uint64_t>(st.st_dev),
                           static_cast<std::uint64_t>(st.st_ino));
  std::lock_guard lock(g_mutex);
  if (!Claimed().insert(id).second) {
    return Status::FailedPrecondition("store '" + directory +
                                      "' is already open in this process");
  }
  // Across processes: an exclusive advisory lock on <dir>/LOCK, held while open.
  const std::string lock_path = directory + "/LOCK";
  int fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0 && shared && (errno == EROFS || errno == EACCES || errno == EPERM)) {
    fd = ::open(lock_path.c_str(), O_RDONLY | O_CLOEXEC);  // flock needs no write access
    if (fd < 0 && errno == ENOENT) {
      return std::unique_ptr<DirectoryClaim>(new DirectoryClaim(id.first, id.second, -1));
    }
  }
  if (fd < 0) {
    const int err = errno;
    Claimed().erase(id);
    // A directory this process may read but not write (a read-only mount,
    // no write permission on the directory or on LOCK): ReadOnly, so callers
    // can tell it from an I/O failure.
    if ((err == EROFS || err == EACCES || err == EPERM) && ::access(directory.c_str(), R_OK | X_OK) == 0) {
      return Status::ReadOnly("store '" + directory + "' is read-only: cannot open '" + lock_path +
                              "' for writing: " + std::strerror(err));
    }
    return Status::IOError("cannot open '" + lock_path + "': " + std::strerror(err));
  }
  if (::flock(fd, (shared ? LOCK_SH : LOCK_EX) | LOCK_NB) != 0) {
    const int err = errno;
    ::close(fd);
    Claimed().erase(id);
    if (err == EWOULDBLOCK) {
      return Status::Busy("store '" + directory + "' is in use by another process");
    }
    return Status::IOError("cannot lock '" + lock_path + "': " + std::strerror(err));
  }
  return std::unique_ptr<DirectoryClaim>(new DirectoryClaim(id.first, id.second, fd));
}

DirectoryClaim::~DirectoryClaim() {
  if (lock_fd_ >= 0) ::close(lock_fd_);  // releases the flock
  std::lock_guard lock(g_mutex);
  Claimed().erase({dev_, ino_});
}

}  // namespace shredkv::storage
