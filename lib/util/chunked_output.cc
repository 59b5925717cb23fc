#include "util/chunked_output.h"

#include <utility>

namespace shredkv::util {

ChunkedOutputBuf::ChunkedOutputBuf(Sink sink, std::size_t buffer_size)
    : sink_(std::move(sink)), buffer_(buffer_size == 0 ? 1 : buffer_size) {
  setp(buffer_.data(), buffer_.data() + buffer_.size());
}

ChunkedOutputBuf::int_type ChunkedOutputBuf::overflow(int_type ch) {
  if (!Drain()) return traits_type::eof();
  if (!traits_type::eq_int_type(ch, traits_type::eof())) {
    *pptr() = traits_type::to_char_type(ch);
    pbump(1);
  }
  return traits_type::not_eof(ch);
}

int ChunkedOutputBuf::sync() { return Drain() ? 0 : -1; }

bool ChunkedOutputBuf::Drain() {
  const auto n = static_cast<std::size_t>(pptr() - pbase());
  if (n > 0 && !failed_ && !sink_(pbase(), n)) failed_ = true;
  setp(buffer_.data(), buffer_.data() + buffer_.size());
  return !failed_;
}

}  // namespace shredkv::util
