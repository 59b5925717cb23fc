#include "progress.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <vector>
#include <cstdio>
#include <cstdlib>

namespace shredkv::cli {
namespace {

int TerminalWidth() {
  winsize ws{};
  if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 40) return ws.ws_col;
  return 80;
}

std::string FormatCount(double n) {
  char buf[32];
  if (n >= 1e9) {
    std::snprintf(buf, sizeof buf, "%.1fG", n / 1e9);
  } else if (n >= 1e6) {
    std::snprintf(buf, sizeof buf, "%.1fM", n / 1e6);
  } else if (n >= 1e4) {
    std::snprintf(buf, sizeof buf, "%.1fk", n / 1e3);
  } else {
    std::snprintf(buf, sizeof buf, "%.0f", n);
  }
  return buf;
}

void WriteStderr(const std::string& s) {
  std::fwrite(s.data(), 1, s.size(), stderr);
  std::fflush(stderr);
}

double Seconds(std::chrono::steady_clock::duration d) { return std::chrono::duration<double>(d).count(); }

// A progress line is on the terminal and must be cleared before a message.
std::atomic<bool> g_line_drawn{false};

}  // namespace

void ClearProgressLine() {
  if (g_line_drawn.exchange(false)) WriteStderr("\r\033[K");
}

namespace {
std::atomic<bool> g_progress_suppressed{false};
}  // namespace

void SuppressProgress() { g_progress_suppressed = true; }

bool ProgressEnabled() {
  return !g_progress_suppressed && isatty(STDERR_FILENO) == 1 && std::getenv("SHREDKV_NO_PROGRESS") == nullptr;
}

std::string FormatBytes(double bytes) {
  char buf[32];
  if (bytes >= 1024.0 * 1024 * 1024) {
    std::snprintf(buf, sizeof buf, "%.1f GiB", bytes / (1024.0 * 1024 * 1024));
  } else if (bytes >= 1024.0 * 1024) {
    std::snprintf(buf, sizeof buf, "%.1f MiB", bytes / (1024.0 * 1024));
  } else if (bytes >= 1024.0) {
    std::snprintf(buf, sizeof buf, "%.1f KiB", bytes / 1024.0);
  } else {
    std::snprintf(buf, sizeof buf, "%.0f B", bytes);
  }
  return buf;
}

std::string FormatDuration(double seconds) {
  if (seconds < 0) seconds = 0;
  const auto total = static_cast<long long>(seconds + 0.5);
  char buf[32];
  if (total >= 3600) {
    std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", total / 3600, (total / 60) % 60, total % 60);
  } else {
    std::snprintf(buf, sizeof buf, "%lld:%02lld", total / 60, total % 60);
  }
  return buf;
}

ProgressBar::ProgressBar(std::string label, std::uint64_t total, std::string unit, std::string items_unit)
    : enabled_(ProgressEnabled()),
      label_(std::move(label)),
      total_(total),
      unit_(std::move(unit)),
      items_unit_(std::move(items_unit)),
      start_(std::chrono::steady_clock::now()) {}

ProgressBar::~ProgressBar() { Finish(); }

void ProgressBar::Update(std::uint64_t done, std::uint64_t items) {
  done_ = done;
  items_ = items;
  Draw(false);
}

void ProgressBar::Finish() {
  if (!enabled_ || finished_) return;
  finished_ = true;
  ClearProgressLine();
}

void ProgressBar::Draw(bool force) {
  if (!enabled_ || finished_) return;
  const auto now = std::chrono::steady_clock::now();
  if (!force && now - last_draw_ < std::chrono::milliseconds(100)) return;
  // Nothing for quick runs: the first draw after a quarter second.
  if (now - start_ < std::chrono::milliseconds(250)) return;
  last_draw_ = now;
  const double elapsed = Seconds(now - start_);
  auto amount = [&](double v) { return unit_ == "bytes" ? FormatBytes(v) : FormatCount(v) + " " + unit_; };

  // The rate of the items if counted (lines/s), else of `done`.
  const double rate_base = items_unit_.empty() ? static_cast<double>(done_) : static_cast<double>(items_);
  const std::string rate_unit = items_unit_.empty() ? unit_ : items_unit_;
  const double rate = elapsed > 0 ? rate_base / elapsed : 0;
  const std::string rate_text = (rate_unit == "bytes" ? FormatBytes(rate) : FormatCount(rate) + " " + rate_unit) + "/s";
  const std::string items_text =
      items_unit_.empty() ? std::string() : FormatCount(static_cast<double>(items_)) + " " + items_unit_;

  // Most important first, so a narrow terminal cuts the least useful part.
  std::vector<std::string> parts;
  std::string line = label_;
  if (total_ > 0) {
    const double fraction = std::min(1.0, static_cast<double>(done_) / static_cast<double>(total_));
    const double eta = fraction > 0 ? elapsed * (1 - fraction) / fraction : 0;
    char pct[16];
    std::snprintf(pct, sizeof pct, "%3.0f%%", fraction * 100);
    parts.push_back(pct);
    parts.push_back(fraction > 0 ? "ETA " + FormatDuration(eta) : std::string("ETA --:--"));
    parts.push_back(rate_text);
    if (!items_text.empty()) parts.push_back(items_text);
    parts.push_back(amount(static_cast<double>(done_)) + " of " + amount(static_cast<double>(total_)));
    std::size_t rest = 0;
    for (const auto& p : parts) rest += p.size() + 2;
    const int width = TerminalWidth() - 1;
    const int bar = std::clamp(width - static_cast<int>(label_.size() + rest) - 4, 10, 30);
    const int filled = static_cast<int>(fraction * bar);
    line += " [" + std::string(static_cast<std::size_t>(filled), '#') +
            std::string(static_cast<std::size_t>(bar - filled), '.') + "]";
  } else {
    parts.push_back(FormatDuration(elapsed));
    if (!items_text.empty()) parts.push_back(items_text);
    parts.push_back(rate_text);
    parts.push_back(amount(static_cast<double>(done_)));
  }
  const auto width = static_cast<std::size_t>(TerminalWidth() - 1);
  for (const auto& p : parts) {
    if (line.size() + 2 + p.size() > width) break;
    line += "  " + p;
  }
  WriteStderr("\r" + line + "\033[K");
  g_line_drawn = true;
}

}  // namespace shredkv::cli
