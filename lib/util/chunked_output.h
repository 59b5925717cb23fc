// An output stream buffer that hands what is written to a sink in chunks:
// the C API's write callback, the CLI's file descriptor.
// Thread safety: one stream at a time, as any std::streambuf.
#ifndef SHREDKV_UTIL_CHUNKED_OUTPUT_H_
#define SHREDKV_UTIL_CHUNKED_OUTPUT_H_

#include <cstddef>
#include <functional>
#include <streambuf>
#include <vector>

namespace shredkv::util {

class ChunkedOutputBuf final : public std::streambuf {
 public:
  // Takes one chunk; false when it could not (the stream fails from then on).
  using Sink = std::function<bool(const char* data, std::size_t size)>;

  // Hands the sink a chunk each time `buffer_size` bytes are buffered, and
  // what is buffered at each flush. Nothing is handed on at destruction:
  // flush the stream and check failed() before trusting the output.
  explicit ChunkedOutputBuf(Sink sink, std::size_t buffer_size = 64 * 1024);

  // True once the sink refused a chunk; that chunk and everything written
  // after it were dropped.
  bool failed() const { return failed_; }

 protected:
  int_type overflow(int_type ch) override;
  int sync() override;

 private:
  // Hands the buffered bytes to the sink (unless it failed before) and
  // empties the buffer; false once the sink has failed.
  bool Drain();

  Sink sink_;
  std::vector<char> buffer_;
  bool failed_ = false;
};

}  // namespace shredkv::util

#endif  // SHREDKV_UTIL_CHUNKED_OUTPUT_H_
