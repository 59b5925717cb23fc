#include "storage/process_guard.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>
#include <mutex>
#include <set>
#include <utility>

#include "util/fork_generation.h"

namespace shredkv::storage {
namespace {

std::mutex g_mutex;
std::set<std::pair<std::uint64_t, std::uint64_t>>& Claimed() {
  static auto* claimed = new std::set<std::pair<std::uint64_t, std::uint64_t>>();
  return *claimed;
}

}  // namespace

Result<std::unique_ptr<DirectoryClaim>> DirectoryClaim::Acquire(const std::string& directory, ClaimMode mode,
                                                               std::int64_t swap_wait_ms) {
  const bool shared = mode != ClaimMode::kExclusive;
  struct stat st {};
  if (::stat(directory.c_str(), &st) != 0) {
    return Status::IOError("cannot stat '" + directory + "': " + std::strerror(errno));
  }
  auto id = std::make_pair(static_cast<std::uint64_t>(st.st_dev),
                           static_cast<std::uint64_t>(st.st_ino));
  {
    std::lock_guard lock(g_mutex);
    if (!Claimed().insert(id).second) {
      return Status::FailedPrecondition("store '" + directory +
                                        "' is already open in this process");
    }
  }
  // The directory is this call's from here: other opens in the process need
  // not wait for its file locks (a live reader may wait for a swap).
  auto unclaim = [&id] {
    std::lock_guard lock(g_mutex);
    Claimed().erase(id);
  };
  // Across processes: an exclusive advisory lock on <dir>/LOCK, held while
  // open; a live reader's shared lock is on <dir>/READERS.
  const std::string lock_path = directory + (mode == ClaimMode::kLiveReader ? "/READERS" : "/LOCK");
  int fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  // A live reader must hold READERS: it is what keeps the writer's file
  // swaps away from it (no lock-less fallback, found by review).
  if (fd < 0 && shared && mode != ClaimMode::kLiveReader && (errno == EROFS || errno == EACCES || errno == EPERM)) {
    fd = ::open(lock_path.c_str(), O_RDONLY | O_CLOEXEC);  // flock needs no write access
    if (fd < 0 && errno == ENOENT) {
      return std::unique_ptr<DirectoryClaim>(new DirectoryClaim(id.first, id.second, -1));
    }
  }
  if (fd < 0) {
    const int err = errno;
    unclaim();
    // A directory this process may read but not write (a read-only mount,
    // no write permission on the directory or on LOCK): ReadOnly, so callers
    // can tell it from an I/O failure.
    if ((err == EROFS || err == EACCES || err == EPERM) && ::access(directory.c_str(), R_OK | X_OK) == 0) {
      return Status::ReadOnly("store '" + directory + "' is read-only: cannot open '" + lock_path +
                              "' for writing: " + std::strerror(err));
    }
    return Status::IOError("cannot open '" + lock_path + "': " + std::strerror(err));
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(swap_wait_ms);
  while (::flock(fd, (shared ? LOCK_SH : LOCK_EX) | LOCK_NB) != 0) {
    const int err = errno;
    if (err == EINTR) continue;
    if (err == EWOULDBLOCK && mode == ClaimMode::kLiveReader && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));  // the writer is swapping a file
      continue;
    }
    ::close(fd);
    unclaim();
    if (err == EWOULDBLOCK) {
      return Status::Busy("store '" + directory + "' is in use by another process" +
                          (mode == ClaimMode::kLiveReader
                               ? " (it kept replacing a file for " + std::to_string(swap_wait_ms) + " ms)"
                               : ""));
    }
    return Status::IOError("cannot lock '" + lock_path + "': " + std::strerror(err));
  }
  return std::unique_ptr<DirectoryClaim>(new DirectoryClaim(id.first, id.second, fd));
}

DirectoryClaim::ReaderExclusion::~ReaderExclusion() {
  if (fd_ >= 0) ::close(fd_);
}

Result<std::unique_ptr<DirectoryClaim::ReaderExclusion>> DirectoryClaim::ExcludeLiveReaders(
    const std::string& directory, std::int64_t timeout_ms) {
  const std::string path = directory + "/READERS";
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return Status::IOError("cannot open '" + path + "': " + std::strerror(errno));
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    if (err != EWOULDBLOCK && err != EINTR) {
      ::close(fd);
      return Status::IOError("cannot lock '" + path + "': " + std::strerror(err));
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      ::close(fd);
      return Status::Busy("a process reads the store beside this one (a read-only open, shredkv --read-only); "
                          "its files cannot be replaced until it closes");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return std::make_unique<ReaderExclusion>(fd);
}

DirectoryClaim::DirectoryClaim(std::uint64_t dev, std::uint64_t ino, int lock_fd)
    : dev_(dev), ino_(ino), lock_fd_(lock_fd), fork_generation_(util::ForkGeneration()) {}

DirectoryClaim::~DirectoryClaim() {
  // Closing the child's descriptor keeps the parent's flock (the parent's
  // descriptor still holds the open file description).
  if (lock_fd_ >= 0) ::close(lock_fd_);  // releases the flock
  // In a forked child g_mutex may have been held by a parent thread at the
  // fork (it would never be released here), and the set is the child's copy.
  if (util::ForkGeneration() != fork_generation_) return;
  std::lock_guard lock(g_mutex);
  Claimed().erase({dev_, ino_});
}

}  // namespace shredkv::storage
