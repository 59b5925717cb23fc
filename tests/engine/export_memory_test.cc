// The export of a person with 1,000,000 events runs in bounded memory.
// Bound: peak heap growth during the export stays under 32 MiB, whereas the
// export holds ~60 MB of event plaintext (the iterator buffers one batch).
#include <gtest/gtest.h>
#include <malloc.h>

#include <sstream>

#include "sanitizers.h"
#include "shredkv/portability.h"
#include "test_util.h"

namespace shredkv {
namespace {

std::size_t HeapInUse() { return mallinfo2().uordblks; }

// Counts bytes, keeps none.
class CountingBuf : public std::streambuf {
 public:
  std::size_t bytes = 0;
 protected:
  int_type overflow(int_type c) override {
    if (c != traits_type::eof()) ++bytes;
    return c;
  }
  std::streamsize xsputn(const char*, std::streamsize n) override {
    bytes += static_cast<std::size_t>(n);
    return n;
  }
};

TEST(ExportMemoryTest, MillionEventExportStaysUnderBoundedHeapGrowth) {
#if defined(SHREDKV_TEST_ASAN) || defined(SHREDKV_TEST_TSAN)
  GTEST_SKIP() << "mallinfo2 does not see the sanitizer's allocator; measured in the plain build";
#endif
  test::TempDir dir;
  Options o = test::TestOptions(dir.Sub("s"));
  o.initial_map_size = 256u << 20;
  auto store = Store::Open(o);
  ASSERT_TRUE(store.ok());
  auto id = (*store)->CreatePerson({{"email", "heavy@x.org"}});
  ASSERT_TRUE(id.ok());
  constexpr int kEvents = 1'000'000;
  for (int done = 0; done < kEvents; done += 20000) {
    WriteBatch b;
    for (int i = done; i < done + 20000; ++i) {
      b.AppendEvent(*id, Event{"tick", i, {{"n", i}, {"page", "/some/page/path"}}, {"n"}});
    }
    ASSERT_TRUE((*store)->Write(b).ok());
  }
  const std::size_t before = HeapInUse();
  std::size_t peak = before;
  CountingBuf buf;
  std::ostream out(&buf);
  auto it = (*store)->Export(*id);
  // Sample the heap while writing through a wrapping iterator.
  class Sampling final : public Iterator<ExportItem> {
   public:
    Sampling(Iterator<ExportItem>& inner, std::size_t& peak) : inner_(inner), peak_(peak) {}
    bool Valid() const override { return inner_.Valid(); }
    void Next() override {
      inner_.Next();
      if (++n_ % 1000 == 0) peak_ = std::max(peak_, HeapInUse());
    }
    const ExportItem& value() const override { return inner_.value(); }
    Status status() const override { return inner_.status(); }
   private:
    Iterator<ExportItem>& inner_;
    std::size_t& peak_;
    std::size_t n_ = 0;
  } sampling(*it, peak);
  Status s = WriteExport(sampling, ExportFormat::kNdjson, out, 0);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_GT(buf.bytes, 100u << 20);  // really exported ~2M items
  const std::size_t growth = peak > before ? peak - before : 0;
  std::printf("export of %d events: %zu bytes written, peak heap growth %zu bytes\n", kEvents, buf.bytes, growth);
  EXPECT_LT(growth, 32u << 20);
}

}  // namespace
}  // namespace shredkv
