// GatedSharedMutex: a writer gets in under a steady stream of overlapping
// readers; re-entrant shared holds pass a waiting writer; a new reader's
// yield to a writer is bounded (it gets in while the writer still waits).
#include "util/gated_shared_mutex.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <shared_mutex>
#include <thread>
#include <vector>

namespace shredkv::util {
namespace {

using namespace std::chrono_literals;

// Polls until `done` or a generous deadline (a liveness bound, not a timing
// expectation: the assertion is that it happens at all).
template <typename Pred>
bool Eventually(Pred done, std::chrono::seconds deadline = 60s) {
  const auto until = std::chrono::steady_clock::now() + deadline;
  while (!done()) {
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

TEST(GatedSharedMutexTest, WriterGetsInUnderOverlappingReaders) {
  GatedSharedMutex mu;
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> reads{0};
  std::vector<std::thread> readers;
  // Four readers whose holds always overlap: with glibc's reader-preferring
  // rwlock there is never a moment without a reader.
  for (int i = 0; i < 4; ++i) {
    readers.emplace_back([&] {
      while (!stop.load()) {
        std::shared_lock lock(mu);
        std::this_thread::sleep_for(2ms);
        reads.fetch_add(1);
      }
    });
  }
  ASSERT_TRUE(Eventually([&] { return reads.load() > 20; }));
  std::atomic<bool> written{false};
  std::thread writer([&] {
    std::unique_lock lock(mu);
    written = true;
  });
  const bool got_in = Eventually([&] { return written.load(); });
  stop = true;
  for (auto& r : readers) r.join();
  writer.join();
  EXPECT_TRUE(got_in);
}

TEST(GatedSharedMutexTest, ReentrantSharedHoldPassesAWaitingWriter) {
  GatedSharedMutex mu;
  std::shared_lock outer(mu);
  std::thread writer([&] { std::unique_lock lock(mu); });
  ASSERT_TRUE(Eventually([&] { return mu.writers_waiting() == 1; }));
  {
    std::shared_lock inner(mu);  // same thread: must not yield to the writer
    EXPECT_EQ(mu.writers_waiting(), 1);
  }
  EXPECT_EQ(mu.gate_waits(), 0u);
  outer.unlock();
  writer.join();
  EXPECT_EQ(mu.writers_waiting(), 0);
}

TEST(GatedSharedMutexTest, NewReaderYieldsToAWriterOnlyForABoundedTime) {
  GatedSharedMutex mu;
  std::shared_lock holder(mu);  // keeps the writer waiting throughout
  std::thread writer([&] { std::unique_lock lock(mu); });
  ASSERT_TRUE(Eventually([&] { return mu.writers_waiting() == 1; }));
  std::atomic<bool> read{false};
  std::thread reader([&] {
    std::shared_lock lock(mu);
    read = true;
  });
  // The reader (yielding if it came in a gate window) gets in although the
  // writer is still waiting for `holder`.
  EXPECT_TRUE(Eventually([&] { return read.load(); }));
  EXPECT_EQ(mu.writers_waiting(), 1);
  reader.join();
  holder.unlock();
  writer.join();
}

}  // namespace
}  // namespace shredkv::util
