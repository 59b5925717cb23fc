// A store directory's files as bytes: snapshots to damage or rebuild.
#ifndef SHREDKV_TESTS_CRASH_DIRECTORY_IMAGE_H_
#define SHREDKV_TESTS_CRASH_DIRECTORY_IMAGE_H_

#include <map>
#include <string>

namespace shredkv::crash {

// Relative path → bytes of every regular file under a directory, LMDB lock
// files (lock.mdb, per-boot state) left out.
using DirectoryImage = std::map<std::string, std::string>;

DirectoryImage SnapshotDirectory(const std::string& directory);

// Writes `image` into `directory` (created as needed).
void MaterializeImage(const DirectoryImage& image, const std::string& directory);

}  // namespace shredkv::crash

#endif  // SHREDKV_TESTS_CRASH_DIRECTORY_IMAGE_H_
