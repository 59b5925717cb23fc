#include "output_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <vector>

#include "util/chunked_output.h"

namespace shredkv::cli {

bool InsideStoreDirectory(const GlobalOptions& global, const std::string& path) {
  namespace fs = std::filesystem;
  if (global.db.empty()) return false;
  // Absolute first: weakly_canonical leaves a relative name that does not
  // exist yet relative ("r.html" with the working directory inside the
  // store was not found inside it: outside audit 39a, F6).
  std::error_code ec;
  const fs::path target = fs::weakly_canonical(fs::absolute(path, ec), ec);
  const fs::path db = fs::weakly_canonical(fs::absolute(global.db, ec), ec);
  if (db.empty()) return false;
  return std::mismatch(db.begin(), db.end(), target.begin(), target.end()).first == db.end();
}

void CheckOutputTarget(const GlobalOptions& global, const std::string& path, std::string_view command,
                       std::string_view own_head, std::string_view what) {
  namespace fs = std::filesystem;
  if (InsideStoreDirectory(global, path)) {
    throw CliError(kExitUsage, std::string(command) + ": --out must not be inside the store directory");
  }
  std::error_code ec;
  if (!fs::exists(path, ec)) return;
  std::ifstream existing(path, std::ios::binary);
  std::string head(own_head.size(), '\0');
  existing.read(head.data(), static_cast<std::streamsize>(head.size()));
  if (!fs::is_regular_file(path, ec) || !existing || head != own_head) {
    throw CliError(kExitError, std::string(command) + ": '" + path + "' exists and is not a shredkv " +
                                   std::string(what) + "; not replaced");
  }
}

namespace {

bool SyncPath(const std::string& path, int flags) {
  const int fd = ::open(path.c_str(), flags | O_CLOEXEC);
  const bool ok = fd >= 0 && ::fsync(fd) == 0;
  if (fd >= 0) ::close(fd);
  return ok;
}

// Writes all of [data, data + size) to `fd`; false on an error (errno set).
bool WriteAll(int fd, const char* data, std::size_t size) {
  while (size > 0) {
    const ssize_t n = ::write(fd, data, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data += n;
    size -= static_cast<std::size_t>(n);
  }
  return true;
}

}  // namespace

void ReplaceFile(const std::string& path, std::string_view command, mode_t mode,
                 const std::function<void(std::ostream&)>& write) {
  const std::string cmd(command);
  std::vector<char> name(path.begin(), path.end());
  static constexpr std::string_view kSuffix = ".XXXXXX";
  name.insert(name.end(), kSuffix.begin(), kSuffix.end());
  name.push_back('\0');
  // A new file (nothing is truncated), written, synced and checked through
  // its descriptor only: the name is used again just to rename it.
  const int fd = ::mkostemp(name.data(), O_CLOEXEC);
  if (fd < 0) throw CliError(kExitError, cmd + ": cannot create a file beside '" + path + "': " + std::strerror(errno));
  const std::string tmp(name.data());
  struct Cleanup {
    int fd;
    const std::string& tmp;
    bool remove = true;
    ~Cleanup() {
      ::close(fd);
      if (remove) std::remove(tmp.c_str());
    }
  } cleanup{fd, tmp};
  const mode_t mask = ::umask(0);
  ::umask(mask);
  if (::fchmod(fd, mode & ~mask) != 0) throw CliError(kExitError, cmd + ": cannot set the permissions of '" + tmp + "'");
  {
    // Through the descriptor it does not own: what is written goes to the
    // file it created, never to whatever its name points at later.
    util::ChunkedOutputBuf buf([fd](const char* data, std::size_t size) { return WriteAll(fd, data, size); });
    std::ostream out(&buf);
    write(out);
    out.flush();
    if (!out || buf.failed()) throw CliError(kExitError, cmd + ": cannot write '" + tmp + "': " + std::strerror(errno));
  }
  // Durable before it replaces the old file: a crash must not leave an
  // empty one where a whole one was.
  if (::fsync(fd) != 0) throw CliError(kExitError, cmd + ": cannot fsync '" + tmp + "'");
  // The name must still be the file written (not something put in its
  // place meanwhile) when it is renamed over `path`.
  struct stat written {}, named {};
  if (::fstat(fd, &written) != 0 || ::lstat(tmp.c_str(), &named) != 0 || written.st_dev != named.st_dev ||
      written.st_ino != named.st_ino) {
    throw CliError(kExitError, cmd + ": '" + tmp + "' was replaced while it was written; '" + path + "' is unchanged");
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    throw CliError(kExitError, cmd + ": cannot replace '" + path + "': " + std::strerror(errno));
  }
  cleanup.remove = false;
  const std::string parent = std::filesystem::path(path).parent_path().string();
  (void)SyncPath(parent.empty() ? "." : parent, O_RDONLY | O_DIRECTORY);
}

}  // namespace shredkv::cli
