#include "crash/directory_image.h"

#include <filesystem>

#include "test_util.h"

namespace shredkv::crash {

DirectoryImage SnapshotDirectory(const std::string& directory) {
  DirectoryImage image;
  for (const std::string& path : test::FilesUnder(directory)) {
    std::string rel = path.substr(directory.size() + 1);
    if (rel.size() >= 8 && rel.compare(rel.size() - 8, 8, "lock.mdb") == 0) continue;
    image[rel] = test::ReadFile(path);
  }
  return image;
}

void MaterializeImage(const DirectoryImage& image, const std::string& directory) {
  for (const auto& [rel, bytes] : image) {
    const std::filesystem::path p = std::filesystem::path(directory) / rel;
    std::filesystem::create_directories(p.parent_path());
    test::WriteFile(p.string(), bytes);
  }
}

}  // namespace shredkv::crash
