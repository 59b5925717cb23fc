// util/chunked_output: the stream buffer behind the C API's export callback and the CLI's output files.
#include "util/chunked_output.h"

#include <gtest/gtest.h>

#include <ostream>
#include <string>
#include <vector>

namespace shredkv::util {
namespace {

TEST(ChunkedOutputTest, WritesReachTheSinkInBufferSizedChunksAndTheRestAtFlush) {
  std::vector<std::string> chunks;
  ChunkedOutputBuf buf(
      [&](const char* data, std::size_t size) {
        chunks.emplace_back(data, size);
        return true;
      },
      4);
  std::ostream out(&buf);
  out << "abcdefghij";
  EXPECT_EQ(chunks, (std::vector<std::string>{"abcd", "efgh"}));
  out.flush();
  EXPECT_TRUE(out.good());
  EXPECT_FALSE(buf.failed());
  EXPECT_EQ(chunks, (std::vector<std::string>{"abcd", "efgh", "ij"}));
  out.flush();  // nothing buffered: no empty chunk
  EXPECT_EQ(chunks.size(), 3u);
}

TEST(ChunkedOutputTest, ASinkThatRefusesFailsTheStreamAndIsNotCalledAgain) {
  int calls = 0;
  ChunkedOutputBuf buf(
      [&](const char*, std::size_t) {
        ++calls;
        return false;
      },
      4);
  std::ostream out(&buf);
  out << "abcdef";
  EXPECT_TRUE(buf.failed());
  EXPECT_TRUE(out.bad());
  out.clear();
  out << "ghijklmnop";
  out.flush();
  EXPECT_TRUE(out.fail());
  EXPECT_EQ(calls, 1);
}

TEST(ChunkedOutputTest, NothingIsHandedOnWithoutAFlush) {
  int calls = 0;
  {
    ChunkedOutputBuf buf(
        [&](const char*, std::size_t) {
          ++calls;
          return true;
        },
        64);
    std::ostream out(&buf);
    out << "short";
  }
  EXPECT_EQ(calls, 0);
}

}  // namespace
}  // namespace shredkv::util
