#include "util/file_io.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "util/test_point.h"

namespace shredkv::util {
namespace {

std::string ParentOf(const std::string& path) {
  const auto slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

}  // namespace

Status SyncPath(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::IOError("cannot open '" + path + "' to sync it: " + std::strerror(errno));
  const bool ok = ::fsync(fd) == 0;
  const int err = errno;
  ::close(fd);
  if (!ok) return Status::IOError("fsync of '" + path + "' failed: " + std::strerror(err));
  return Status::OK();
}

Status MakePrivateDirectories(const std::string& dir) {
  if (dir.empty()) return Status::InvalidArgument("no directory named");
  // Each prefix ending before a '/', then the whole path.
  for (std::size_t end = dir.find('/', 1);; end = dir.find('/', end + 1)) {
    const std::string prefix = end == std::string::npos ? dir : dir.substr(0, end);
    if (!prefix.empty() && ::mkdir(prefix.c_str(), 0700) != 0 && errno != EEXIST) {
      return Status::IOError("cannot create '" + prefix + "': " + std::strerror(errno));
    }
    if (end == std::string::npos) break;
  }
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return Status::IOError("'" + dir + "' is not a directory");
  }
  return Status::OK();
}

Status PrepareEmptyDirectory(const std::string& dir, bool* created) {
  std::error_code ec;
  *created = false;
  if (std::filesystem::exists(dir, ec)) {
    if (!std::filesystem::is_directory(dir, ec) || !std::filesystem::is_empty(dir, ec)) {
      return Status::AlreadyExists("'" + dir + "' exists and is not an empty directory");
    }
    return Status::OK();
  }
  if (Status m = MakePrivateDirectories(dir); !m.ok()) return m;
  *created = true;
  return Status::OK();
}

void RemoveFill(const std::string& dir, bool created) {
  std::error_code ec;
  if (created) {
    std::filesystem::remove_all(dir, ec);
    return;
  }
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) std::filesystem::remove_all(entry.path(), ec);
}

Status WriteFileDurably(const std::string& path, std::string_view bytes) {
  const std::string tmp = path + ".tmp";
  // A new file, never one already there nor a symlink's target: a stale
  // temporary file (a write cut short) is removed first, and one that
  // appears again meanwhile fails the write.
  if (::unlink(tmp.c_str()) != 0 && errno != ENOENT) {
    return Status::IOError("cannot remove '" + tmp + "': " + std::strerror(errno));
  }
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return Status::IOError("cannot create '" + tmp + "': " + std::strerror(errno));
  std::size_t done = 0;
  int err = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      err = errno;
      break;
    }
    done += static_cast<std::size_t>(n);
  }
  if (err == 0 && ::fsync(fd) != 0) err = errno;
  ::close(fd);
  TestPoint("file.before_rename");
  if (err == 0 && ::rename(tmp.c_str(), path.c_str()) != 0) err = errno;
  if (err != 0) {
    ::unlink(tmp.c_str());
    return Status::IOError("cannot write '" + path + "': " + std::strerror(err));
  }
  return SyncPath(ParentOf(path));
}

DirectoryLock::~DirectoryLock() {
  if (fd_ >= 0) ::close(fd_);  // releases the lock
}

Result<DirectoryLock> LockDirectoryOf(const std::string& path, const std::string& what) {
  // Normalised first: "top/" and "." must lock what holds them, not
  // themselves (review of stop 37, S5: a sharded restore into "top/"
  // locked top, then each shard's restore found it locked).
  std::filesystem::path p = std::filesystem::absolute(path).lexically_normal();
  if (p.filename().empty()) p = p.parent_path();
  std::string parent = p.parent_path().string();
  if (parent.empty()) parent = "/";
  const int fd = ::open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Status::IOError("cannot open '" + parent + "': " + std::strerror(errno));
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    ::close(fd);
    if (err == EWOULDBLOCK) {
      return Status::Busy("another " + what + " is running in '" + parent + "': one at a time in a directory");
    }
    if (err == ENOLCK || err == EOPNOTSUPP || err == ENOSYS || err == EINVAL) return DirectoryLock(-1);
    return Status::IOError("cannot lock '" + parent + "': " + std::strerror(err));
  }
  return DirectoryLock(fd);
}

Result<std::string> ReadSmallFile(const std::string& path, std::size_t max_bytes) {
  // O_NONBLOCK: a FIFO put in the file's place must not block the open
  // (outside audit 37c, F3); only a regular file is read.
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return Status::NotFound("'" + path + "' does not exist");
    return Status::IOError("cannot open '" + path + "': " + std::strerror(errno));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return Status::Corruption("'" + path + "' is not a regular file");
  }
  std::string out;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(fd);
      return Status::IOError("cannot read '" + path + "': " + std::strerror(err));
    }
    if (n == 0) break;
    out.append(buf, static_cast<std::size_t>(n));
    if (out.size() > max_bytes) {
      ::close(fd);
      return Status::Corruption("'" + path + "' is larger than " + std::to_string(max_bytes) + " bytes");
    }
  }
  ::close(fd);
  return out;
}

}  // namespace shredkv::util
