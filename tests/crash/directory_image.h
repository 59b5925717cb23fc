// A store directory's files as bytes: snapshots to damage or rebuild.
#ifndef SHREDKV_TESTS_CRASH_DIRECTORY_IMAGE_H_
#define SHREDKV_TESTS_CRASH_DIRECTORY_IMAGE_H_

#include <functional>
#include <map>
#include <string>

#include "shredkv/options.h"

namespace shredkv::crash {

// Relative path → bytes of every regular file under a directory, LMDB lock
// files (lock.mdb, per-boot state) left out.
using DirectoryImage = std::map<std::string, std::string>;

DirectoryImage SnapshotDirectory(const std::string& directory);

// Writes `image` into `directory` (created as needed).
void MaterializeImage(const DirectoryImage& image, const std::string& directory);

// Writes `image` into `directory` and runs `check` on the store there in a
// forked child with the fault classifier installed (fault_guard.h): `check`
// gets `options` with `directory` set and create_if_missing off, and returns
// the child's exit code. Removes `reason_path` (where checks write why they
// exited) before the fork. Returns the child's wait status.
int CheckImageInChild(const DirectoryImage& image, const std::string& directory, const Options& options,
                      const std::string& reason_path, const std::function<int(const Options&)>& check);

}  // namespace shredkv::crash

#endif  // SHREDKV_TESTS_CRASH_DIRECTORY_IMAGE_H_
