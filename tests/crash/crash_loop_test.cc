// The crash loop: a forked child runs random operations through the public
// API on a kFullSync store, logging each operation before it starts and each
// acknowledgement after it returned, to an O_APPEND file; the parent kills
// it with SIGKILL at a random moment, reopens the store and checks that
// every acknowledged operation is there, the operation in flight is wholly
// present or wholly absent (the state is a prefix of the trace), no erased
// person is readable, and Store::Verify is clean. The store carries over
// from one iteration to the next, so recovery of recovered stores is tested
// too. SHREDKV_CRASH_ITERATIONS sets the number of iterations (default 200; 100
// under a sanitizer),
// SHREDKV_CRASH_SEED the base seed (iteration i uses seed + i).
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <iostream>
#include <sstream>

#include "crash/trace_model.h"
#include "sanitizers.h"
#include "test_util.h"

namespace shredkv::crash {
namespace {

std::uint64_t EnvNumber(const char* name, std::uint64_t fallback) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return fallback;
  return std::strtoull(v, nullptr, 10);
}

void WriteLine(int fd, const std::string& line) {
  const std::string text = line + "\n";
  // One write() per line on an O_APPEND file: a kill never interleaves lines.
  if (::write(fd, text.data(), text.size()) != static_cast<ssize_t>(text.size())) _exit(6);
}

class LogSink : public TraceSink {
 public:
  explicit LogSink(int fd) : fd_(fd) {}
  void Intent(const Op& op) override { WriteLine(fd_, "I " + Encode(op)); }
  void Ack(const Op& op) override { WriteLine(fd_, "A " + std::to_string(op.n)); }
  void Failed(const Op& op, const Status& status) override {
    WriteLine(fd_, "F " + std::to_string(op.n) + " " + status.ToString());
  }

 private:
  int fd_;
};

// What the parent read back from a dead child's log.
struct ChildLog {
  bool opened = false;
  std::vector<Op> acked;
  std::optional<Op> in_flight;
  std::string failure;  // an F line: an operation returned an error
};

ChildLog ReadLog(const std::string& path) {
  ChildLog log;
  std::istringstream in(test::ReadFile(path));
  std::string line;
  std::optional<Op> pending;
  while (std::getline(in, line)) {
    if (in.eof()) break;  // no newline: a torn last line (never written by one write)
    if (line == "O") {
      log.opened = true;
    } else if (line.rfind("I ", 0) == 0) {
      pending = Parse(line.substr(2));
    } else if (line.rfind("A ", 0) == 0 && pending && std::to_string(pending->n) == line.substr(2)) {
      log.acked.push_back(*pending);
      pending.reset();
    } else if (line.rfind("F ", 0) == 0) {
      log.failure = line;
    }
  }
  log.in_flight = pending;
  return log;
}

struct LoopFigures {
  std::uint64_t iterations = 0;
  std::uint64_t killed = 0;
  std::uint64_t completed = 0;        // the child finished (calibration runs, late kills)
  std::uint64_t killed_in_open = 0;   // before Store::Open returned in the child
  std::uint64_t acked_ops = 0;
  std::uint64_t in_flight_present = 0;
  std::uint64_t in_flight_absent = 0;
  std::uint64_t erased_checked = 0;
};

TEST(CrashLoopTest, EveryAcknowledgedOperationSurvivesSigkillAndStateIsATracePrefix) {
  // Each iteration forks, opens, SIGKILLs and verifies; under a sanitizer
  // that costs 3-6 times as much, so its CI default is halved to keep the
  // ASan run's share of CI time small (the plain build runs 200).
#if defined(SHREDKV_TEST_ASAN) || defined(SHREDKV_TEST_TSAN)
  constexpr std::uint64_t kDefaultIterations = 100;
#else
  constexpr std::uint64_t kDefaultIterations = 200;
#endif
  const std::uint64_t iterations = EnvNumber("SHREDKV_CRASH_ITERATIONS", kDefaultIterations);
  const std::uint64_t seed = EnvNumber("SHREDKV_CRASH_SEED", 20261129);
  const std::size_t ops_per_iteration = EnvNumber("SHREDKV_CRASH_OPS", 20);

  test::TempDir dir;
  Options options = test::TestOptions(dir.Sub("store"));
  options.durability = Durability::kFullSync;
  options.rotation_batch_size = 4;
  const std::string log_path = dir.Sub("trace.log");

  Model model;
  std::uint64_t next_n = 1;
  std::mt19937_64 parent_rng(seed);
  double child_us_estimate = 0;  // how long a child runs when not killed
  LoopFigures f;

  for (std::uint64_t iter = 0; iter < iterations; ++iter) {
    int log_fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
    ASSERT_GE(log_fd, 0);
    const auto started = std::chrono::steady_clock::now();
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      auto store = Store::Open(options);
      if (!store.ok()) {
        WriteLine(log_fd, "F 0 open: " + store.status().ToString());
        _exit(4);
      }
      WriteLine(log_fd, "O");
      std::mt19937_64 rng(seed + iter);
      LogSink sink(log_fd);
      WorkloadOptions wo;
      wo.ops = ops_per_iteration;
      const bool ok = RunWorkload(**store, model, rng, &next_n, wo, sink);
      if (!(*store)->Close().ok()) _exit(7);
      _exit(ok ? 0 : 5);
    }
    ::close(log_fd);
    // Every 50th child runs to the end: its duration calibrates the window
    // the kill moment is drawn from (open, operations and close).
    const bool calibration = iter % 50 == 0;
    if (!calibration) {
      const auto delay_us = static_cast<long>(parent_rng() % static_cast<std::uint64_t>(child_us_estimate + 1));
      timespec ts{delay_us / 1000000, (delay_us % 1000000) * 1000};
      ::nanosleep(&ts, nullptr);
      ::kill(pid, SIGKILL);
    }
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    const double elapsed_us =
        std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - started).count();

    const ChildLog log = ReadLog(log_path);
    ASSERT_TRUE(log.failure.empty()) << "iteration " << iter << " (seed " << seed + iter << "): " << log.failure;
    if (WIFSIGNALED(status)) {
      ASSERT_EQ(WTERMSIG(status), SIGKILL) << "iteration " << iter << ": child died of a signal of its own";
      ++f.killed;
      if (!log.opened) ++f.killed_in_open;
    } else {
      ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
          << "iteration " << iter << ": child exit status " << status;
      ++f.completed;
      if (calibration) child_us_estimate = elapsed_us;
    }

    for (const Op& op : log.acked) model.Apply(op);
    f.acked_ops += log.acked.size();
    next_n += ops_per_iteration;

    auto store = Store::Open(options);
    ASSERT_TRUE(store.ok()) << "iteration " << iter << " (seed " << seed + iter
                            << "): reopen: " << store.status().ToString();
    bool present = false;
    const std::string diff = CheckAgainstModel(**store, model, log.in_flight, &present);
    ASSERT_EQ(diff, "") << "iteration " << iter << " (seed " << seed + iter << ")";
    if (log.in_flight) ++(present ? f.in_flight_present : f.in_flight_absent);
    auto report = (*store)->Verify();
    ASSERT_TRUE(report.ok()) << report.status().ToString();
    ASSERT_TRUE(report->ok()) << "iteration " << iter << ": Verify found " << report->problem_count
                              << " problems, first: " << (report->problems.empty() ? "" : report->problems[0]);
    for (const auto& [hex, p] : model.people()) f.erased_checked += p.erased ? 1 : 0;
    SKV_ASSERT_OK((*store)->Close());
    ++f.iterations;
  }
  std::cout << "crash loop: " << f.iterations << " iterations, " << f.killed << " killed (" << f.killed_in_open
            << " during open), " << f.completed << " completed before the kill, " << f.acked_ops
            << " acknowledged operations, in flight at the kill: " << f.in_flight_present << " present, "
            << f.in_flight_absent << " absent; " << model.people().size() << " people (" << model.live_count()
            << " live), " << f.erased_checked << " erased-person checks\n";
  EXPECT_EQ(f.iterations, iterations);
  EXPECT_GT(f.killed, 0u);
}

}  // namespace
}  // namespace shredkv::crash
