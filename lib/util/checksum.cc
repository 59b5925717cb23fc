#include "util/checksum.h"

#include <cerrno>
#include <cstdio>
#include <cstring>

#define XXH_STATIC_LINKING_ONLY  // XXH3_state_t on the stack
#include <xxhash.h>

namespace shredkv::util {

std::uint64_t Checksum64(std::string_view data) { return XXH3_64bits(data.data(), data.size()); }

std::uint64_t Checksum64(std::string_view a, std::string_view b) {
  XXH3_state_t state;
  XXH3_64bits_reset(&state);
  XXH3_64bits_update(&state, a.data(), a.size());
  XXH3_64bits_update(&state, b.data(), b.size());
  return XXH3_64bits_digest(&state);
}

Result<std::string> FileChecksum(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) {
    if (errno == ENOENT) return Status::NotFound("'" + path + "' does not exist");
    return Status::IOError("cannot open '" + path + "': " + std::strerror(errno));
  }
  XXH3_state_t* state = XXH3_createState();
  if (state == nullptr) {
    std::fclose(f);
    return Status::Internal("out of memory for a checksum state");
  }
  XXH3_128bits_reset(state);
  std::string buf(1u << 20, '\0');
  std::size_t n = 0;
  while ((n = std::fread(buf.data(), 1, buf.size(), f)) > 0) XXH3_128bits_update(state, buf.data(), n);
  const bool failed = std::ferror(f) != 0;
  std::fclose(f);
  const XXH128_hash_t h = XXH3_128bits_digest(state);
  XXH3_freeState(state);
  if (failed) return Status::IOError("cannot read '" + path + "'");
  XXH128_canonical_t canonical;
  XXH128_canonicalFromHash(&canonical, h);
  return std::string(reinterpret_cast<const char*>(canonical.digest), sizeof canonical.digest);
}

}  // namespace shredkv::util
