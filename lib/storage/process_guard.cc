#include "storage/process_guard.h"

#include <sys/stat.h>

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

Result<std::unique_ptr<DirectoryClaim>> DirectoryClaim::Acquire(const std::string& directory) {
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
  return std::unique_ptr<DirectoryClaim>(new DirectoryClaim(id.first, id.second));
}

DirectoryClaim::~DirectoryClaim() {
  std::lock_guard lock(g_mutex);
  Claimed().erase({dev_, ino_});
}

}  // namespace shredkv::storage
