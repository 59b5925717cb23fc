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

namespace shredkv::cli {

void CheckOutputTarget(const GlobalOptions& global, const std::string& path, std::string_view command,
                       std::string_view own_head, std::string_view what) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path target = fs::weakly_canonical(path, ec);
  const fs::path db = fs::weakly_canonical(global.db, ec);
  if (!global.db.empty() && !db.empty()) {
    const auto [d, t] = std::mismatch(db.begin(), db.end(), target.begin(), target.end());
    if (d == db.end()) {
      throw CliError(kExitUsage, std::string(command) + ": --out must not be inside the store directory");
    }
  }
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

}  // namespace

void ReplaceFile(const std::string& path, std::string_view command, mode_t mode,
                 const std::function<void(std::ostream&)>& write) {
  const std::string cmd(command);
  std::vector<char> name(path.begin(), path.end());
  static constexpr std::string_view kSuffix = ".XXXXXX";
  name.insert(name.end(), kSuffix.begin(), kSuffix.end());
  name.push_back('\0');
  const int fd = ::mkostemp(name.data(), O_CLOEXEC);  // a new file: nothing is truncated
  if (fd < 0) throw CliError(kExitError, cmd + ": cannot create a file beside '" + path + "': " + std::strerror(errno));
  const std::string tmp(name.data());
  const bool mode_set = ::fchmod(fd, mode) == 0;
  ::close(fd);
  struct Remove {
    const std::string& tmp;
    bool armed = true;
    ~Remove() {
      if (armed) std::remove(tmp.c_str());
    }
  } remove{tmp};
  if (!mode_set) throw CliError(kExitError, cmd + ": cannot set the permissions of '" + tmp + "'");
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) throw CliError(kExitError, cmd + ": cannot write '" + tmp + "'");
    write(f);
    f.close();
    if (!f) throw CliError(kExitError, cmd + ": cannot write '" + tmp + "'");
  }
  // Durable before it replaces the old file: a crash must not leave an
  // empty one where a whole one was.
  if (!SyncPath(tmp, O_RDONLY)) throw CliError(kExitError, cmd + ": cannot fsync '" + tmp + "'");
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    throw CliError(kExitError, cmd + ": cannot replace '" + path + "': " + std::strerror(errno));
  }
  remove.armed = false;
  const std::string parent = std::filesystem::path(path).parent_path().string();
  (void)SyncPath(parent.empty() ? "." : parent, O_RDONLY | O_DIRECTORY);
}

}  // namespace shredkv::cli
