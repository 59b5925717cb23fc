// XXH3 checksums for rows kept in the clear (design §5). Never used where an
// attacker must not be able to forge: that is what AEAD tags and keyed
// BLAKE2b are for.
// Thread safety: stateless.
#ifndef SHREDKV_UTIL_CHECKSUM_H_
#define SHREDKV_UTIL_CHECKSUM_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "shredkv/status.h"

namespace shredkv::util {

std::uint64_t Checksum64(std::string_view data);
// Checksum of the concatenation a‖b without building it.
std::uint64_t Checksum64(std::string_view a, std::string_view b);

// XXH3-128 of the whole file at `path` (16 bytes), read in 1 MiB blocks:
// detects damage to a backup's files, at memory speed. NotFound / IOError if
// the file cannot be read.
Result<std::string> FileChecksum(const std::string& path);

}  // namespace shredkv::util

#endif  // SHREDKV_UTIL_CHECKSUM_H_
