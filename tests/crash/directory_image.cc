#include "crash/directory_image.h"

#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>

#include "crash/fault_guard.h"
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

int CheckImageInChild(const DirectoryImage& image, const std::string& directory, const Options& options,
                      const std::string& reason_path, const std::function<int(const Options&)>& check) {
  std::filesystem::remove_all(directory);
  MaterializeImage(image, directory);
  Options image_options = options;
  image_options.directory = directory;
  image_options.create_if_missing = false;
  ::unlink(reason_path.c_str());
  const pid_t pid = ::fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    InstallFaultClassifier();
    _exit(check(image_options));
  }
  int status = 0;
  if (::waitpid(pid, &status, 0) != pid) return -1;
  return status;
}

}  // namespace shredkv::crash
