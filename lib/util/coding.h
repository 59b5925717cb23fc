// Byte encoding helpers: fixed-width big-endian integers (sortable in LMDB
// keys), varints and length-prefixed strings for values, and a bounds-checked
// reader that reports truncation instead of reading past the end.
// Thread safety: stateless functions; a ByteReader is used by one thread.
#ifndef SHREDKV_UTIL_CODING_H_
#define SHREDKV_UTIL_CODING_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace shredkv::util {

void PutFixed32BE(std::string* dst, std::uint32_t v);
void PutFixed64BE(std::string* dst, std::uint64_t v);
void PutVarint64(std::string* dst, std::uint64_t v);
// Varint length, then the bytes.
void PutLengthPrefixed(std::string* dst, std::string_view s);
// Lower-case hex digits of `bytes`, two a byte.
std::string HexEncode(std::string_view bytes);
// The bytes of lower-case hex digits (HexEncode's form); nullopt if `hex`
// is not that (odd length, another character).
std::optional<std::string> HexDecode(std::string_view hex);

std::uint32_t DecodeFixed32BE(const char* p);
std::uint64_t DecodeFixed64BE(const char* p);

// Order-preserving mapping of signed 64-bit timestamps to unsigned (flip the
// sign bit), so big-endian keys sort in time order including negative times.
inline std::uint64_t OrderedFromSigned(std::int64_t v) {
  return static_cast<std::uint64_t>(v) ^ (1ull << 63);
}
inline std::int64_t SignedFromOrdered(std::uint64_t v) {
  return static_cast<std::int64_t>(v ^ (1ull << 63));
}

// Reads from a byte string; every getter returns false on truncation or an
// over-long varint, after which the reader stays failed.
class ByteReader {
 public:
  explicit ByteReader(std::string_view in) : in_(in) {}

  bool GetU8(std::uint8_t* v);
  bool GetFixed32BE(std::uint32_t* v);
  bool GetFixed64BE(std::uint64_t* v);
  // LEB128 as PutVarint64 writes it: fails on more than 10 bytes, a value
  // over 64 bits, or a padded form (a last byte of 0 after the first).
  bool GetVarint64(std::uint64_t* v);
  bool GetLengthPrefixed(std::string_view* s);
  bool GetBytes(std::size_t n, std::string_view* s);

  bool done() const { return in_.empty(); }
  bool failed() const { return failed_; }
  std::string_view remaining() const { return in_; }

 private:
  bool Fail() {
    failed_ = true;
    in_ = {};
    return false;
  }
  std::string_view in_;
  bool failed_ = false;
};

}  // namespace shredkv::util

#endif  // SHREDKV_UTIL_CODING_H_
