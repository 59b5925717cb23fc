#include "util/coding.h"

namespace shredkv::util {

void PutFixed32BE(std::string* dst, std::uint32_t v) {
  char buf[4];
  for (int i = 3; i >= 0; --i) {
    buf[i] = static_cast<char>(v & 0xff);
    v >>= 8;
  }
  dst->append(buf, 4);
}

void PutFixed64BE(std::string* dst, std::uint64_t v) {
  char buf[8];
  for (int i = 7; i >= 0; --i) {
    buf[i] = static_cast<char>(v & 0xff);
    v >>= 8;
  }
  dst->append(buf, 8);
}

void PutVarint64(std::string* dst, std::uint64_t v) {
  while (v >= 0x80) {
    dst->push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  dst->push_back(static_cast<char>(v));
}

std::string HexEncode(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * bytes.size());
  for (char c : bytes) {
    out.push_back(kDigits[static_cast<unsigned char>(c) >> 4]);
    out.push_back(kDigits[static_cast<unsigned char>(c) & 0x0f]);
  }
  return out;
}

std::optional<std::string> HexDecode(std::string_view hex) {
  if (hex.size() % 2 != 0) return std::nullopt;
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  std::string out;
  out.reserve(hex.size() / 2);
  for (std::size_t i = 0; i < hex.size(); i += 2) {
    const int hi = nibble(hex[i]), lo = nibble(hex[i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out.push_back(static_cast<char>(hi * 16 + lo));
  }
  return out;
}

void PutLengthPrefixed(std::string* dst, std::string_view s) {
  PutVarint64(dst, s.size());
  dst->append(s);
}

std::uint32_t DecodeFixed32BE(const char* p) {
  std::uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v = (v << 8) | static_cast<std::uint8_t>(p[i]);
  return v;
}

std::uint64_t DecodeFixed64BE(const char* p) {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<std::uint8_t>(p[i]);
  return v;
}

bool ByteReader::GetU8(std::uint8_t* v) {
  if (in_.empty()) return Fail();
  *v = static_cast<std::uint8_t>(in_[0]);
  in_.remove_prefix(1);
  return true;
}

bool ByteReader::GetFixed32BE(std::uint32_t* v) {
  if (in_.size() < 4) return Fail();
  *v = DecodeFixed32BE(in_.data());
  in_.remove_prefix(4);
  return true;
}

bool ByteReader::GetFixed64BE(std::uint64_t* v) {
  if (in_.size() < 8) return Fail();
  *v = DecodeFixed64BE(in_.data());
  in_.remove_prefix(8);
  return true;
}

bool ByteReader::GetVarint64(std::uint64_t* v) {
  std::uint64_t result = 0;
  for (unsigned shift = 0; shift <= 63; shift += 7) {
    if (in_.empty()) return Fail();
    auto byte = static_cast<std::uint8_t>(in_[0]);
    in_.remove_prefix(1);
    if (shift == 63 && byte > 1) return Fail();
    result |= static_cast<std::uint64_t>(byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) {
      // One encoding a value (what PutVarint64 writes): a last byte of 0
      // after the first is padding, refused so a payload cannot be
      // re-encoded into different bytes that decode the same.
      if (byte == 0 && shift > 0) return Fail();
      *v = result;
      return true;
    }
  }
  return Fail();
}

bool ByteReader::GetLengthPrefixed(std::string_view* s) {
  std::uint64_t n = 0;
  if (!GetVarint64(&n)) return false;
  if (n > in_.size()) return Fail();
  return GetBytes(static_cast<std::size_t>(n), s);
}

bool ByteReader::GetBytes(std::size_t n, std::string_view* s) {
  if (n > in_.size()) return Fail();
  *s = in_.substr(0, n);
  in_.remove_prefix(n);
  return true;
}

}  // namespace shredkv::util
