// XXH3 checksums for rows kept in the clear (design §5). Never used where an
// attacker must not be able to forge: that is what AEAD tags and keyed
// BLAKE2b are for.
// Thread safety: stateless.
#ifndef SHREDKV_UTIL_CHECKSUM_H_
#define SHREDKV_UTIL_CHECKSUM_H_

#include <cstdint>
#include <string_view>

namespace shredkv::util {

std::uint64_t Checksum64(std::string_view data);
// Checksum of the concatenation a‖b without building it.
std::uint64_t Checksum64(std::string_view a, std::string_view b);

}  // namespace shredkv::util

#endif  // SHREDKV_UTIL_CHECKSUM_H_
