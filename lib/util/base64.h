// Standard base64 (RFC 4648, with padding) for bytes in JSON documents.
// Thread safety: stateless.
#ifndef SHREDKV_UTIL_BASE64_H_
#define SHREDKV_UTIL_BASE64_H_

#include <optional>
#include <string>
#include <string_view>

namespace shredkv::util {

std::string Base64Encode(std::string_view bytes);
// nullopt for malformed input (bad characters, length or padding).
std::optional<std::string> Base64Decode(std::string_view text);

// True if `s` is well-formed UTF-8 (no overlongs, no surrogates).
bool IsValidUtf8(std::string_view s);

}  // namespace shredkv::util

#endif  // SHREDKV_UTIL_BASE64_H_
