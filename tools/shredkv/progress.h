// shredkv command-line tool: progress on stderr, only when stderr is a
// terminal. Nothing is written otherwise, so scripts see clean output.
#ifndef SHREDKV_TOOLS_PROGRESS_H_
#define SHREDKV_TOOLS_PROGRESS_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>

namespace shredkv::cli {

// True if stderr is a terminal, $SHREDKV_NO_PROGRESS is unset and --quiet
// was not given.
bool ProgressEnabled();
// --quiet: no progress bar for the rest of the process (errors
// still go to stderr).
void SuppressProgress();

// Erases a progress line from the terminal, if one is shown, so that a
// message can be written; the bar comes back at its next update.
void ClearProgressLine();

// A bar with percentage, rate and ETA when the total is known; a count,
// rate and elapsed time when it is not. Redraws at most 10 times a second.
class ProgressBar {
 public:
  // `total` 0 means unknown. `unit` names what `done` counts ("bytes" are
  // shown as KiB/MiB); `items_unit` names the optional second counter shown
  // with its rate ("lines").
  ProgressBar(std::string label, std::uint64_t total, std::string unit, std::string items_unit = {});
  ~ProgressBar();
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;

  void Update(std::uint64_t done, std::uint64_t items = 0);
  void SetTotal(std::uint64_t total) { total_ = total; }
  // Erases the bar.
  void Finish();

 private:
  void Draw(bool force);

  bool enabled_;
  bool finished_ = false;
  std::string label_;
  std::uint64_t total_;
  std::string unit_;
  std::string items_unit_;
  std::uint64_t done_ = 0;
  std::uint64_t items_ = 0;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_{};
};


// "1.5 MiB", "12.0 KiB", "512 B".
std::string FormatBytes(double bytes);
// "1:02:03" or "2:03".
std::string FormatDuration(double seconds);

}  // namespace shredkv::cli

#endif  // SHREDKV_TOOLS_PROGRESS_H_
