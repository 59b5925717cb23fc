#include "engine/notifier.h"

#include <algorithm>
#include <exception>
#include <utility>
#include <vector>

namespace shredkv::engine {

void Notifier::Configure(const Options& options) {
  for (const auto& l : options.listeners) {
    if (l) listeners_.push_back(l);
  }
  logger_ = options.logger;
  log_level_ = options.log_level;
}

void Notifier::Enqueue(Notice notice) {
  std::lock_guard lock(queue_mu_);
  queue_.push_back(std::move(notice));
}

void Notifier::ErasureCommitted(const ErasureReceipt& receipt) {
  if (listening()) Enqueue(Committed{receipt});
}

void Notifier::LevelReached(const ErasureReceipt& receipt) {
  if (listening()) Enqueue(Reached{receipt});
}

void Notifier::MaintenanceCompleted(const MaintenanceInfo& info) {
  if (listening()) Enqueue(Completed{info});
}

void Notifier::BackgroundError(const Status& status) {
  if (listening()) Enqueue(BackgroundFailed{status});
}

std::string Notifier::WithoutPersonIds(std::string_view text) {
  auto hex = [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); };
  std::string out;
  std::size_t i = 0;
  while (i < text.size()) {
    if (!hex(text[i])) {
      out += text[i++];
      continue;
    }
    std::size_t j = i;
    while (j < text.size() && hex(text[j])) ++j;
    if (j - i == 32) {
      out += "<person>";
    } else {
      out.append(text.substr(i, j - i));
    }
    i = j;
  }
  return out;
}

void Notifier::Log(LogLevel level, std::string message) {
  if (logging(level)) Enqueue(Line{level, WithoutPersonIds(message)});
}

namespace {

// The notifiers whose callbacks run on this thread now, innermost last.
thread_local std::vector<const Notifier*> delivering;

// Marks the calling thread as inside `n`'s callbacks for its lifetime.
class InCallback {
 public:
  explicit InCallback(const Notifier* n) { delivering.push_back(n); }
  ~InCallback() { delivering.pop_back(); }
  InCallback(const InCallback&) = delete;
  InCallback& operator=(const InCallback&) = delete;
};

}  // namespace

bool Notifier::InCallbackOnThisThread() const {
  return std::find(delivering.begin(), delivering.end(), this) != delivering.end();
}

void Notifier::Progress(std::string_view operation, std::uint64_t done, std::uint64_t total) {
  InCallback mark(this);
  for (const auto& l : listeners_) {
    try {
      l->OnProgress(operation, done, total);
    } catch (...) {
      Log(LogLevel::kWarn, "an event listener threw from OnProgress; dropped");
    }
  }
}

void Notifier::Deliver(const Notice& notice) {
  InCallback mark(this);
  if (const Line* line = std::get_if<Line>(&notice)) {
    try {
      logger_->Log(line->level, line->message);
    } catch (...) {  // nowhere left to report it
    }
    return;
  }
  for (const auto& l : listeners_) {
    try {
      std::visit(
          [&l](const auto& n) {
            using T = std::decay_t<decltype(n)>;
            if constexpr (std::is_same_v<T, Committed>) {
              l->OnErasureCommitted(n.receipt);
            } else if constexpr (std::is_same_v<T, Reached>) {
              l->OnErasureLevelReached(n.receipt);
            } else if constexpr (std::is_same_v<T, Completed>) {
              l->OnMaintenanceCompleted(n.info);
            } else if constexpr (std::is_same_v<T, BackgroundFailed>) {
              l->OnBackgroundError(n.status);
            }
          },
          notice);
    } catch (...) {
      Log(LogLevel::kWarn, "an event listener threw; the exception was dropped");
    }
  }
}

void Notifier::Flush() {
  {
    std::lock_guard lock(queue_mu_);
    if (delivering_) return;  // the deliverer takes these too
    delivering_ = true;
  }
  struct Done {
    Notifier* n;
    bool finished = false;
    ~Done() {
      if (finished) return;
      std::lock_guard lock(n->queue_mu_);  // an exception left the loop: let the next Flush deliver
      n->delivering_ = false;
    }
  } done{this};
  for (;;) {
    std::vector<Notice> batch;
    {
      std::lock_guard lock(queue_mu_);
      if (queue_.empty()) {
        delivering_ = false;  // under the same lock as the check: nothing queued is left behind
        done.finished = true;
        return;
      }
      batch.swap(queue_);
    }
    for (const Notice& n : batch) Deliver(n);
  }
}

}  // namespace shredkv::engine
