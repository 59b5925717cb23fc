#include "engine/notifier.h"

#include <exception>
#include <utility>

namespace shredkv::engine {
namespace {

// Set while this thread delivers: a Flush from inside a listener returns.
thread_local bool tls_delivering = false;

}  // namespace

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

void Notifier::Log(LogLevel level, std::string message) {
  if (logger_ && level >= log_level_) Enqueue(Line{level, std::move(message)});
}

void Notifier::Progress(std::string_view operation, std::uint64_t done, std::uint64_t total) {
  for (const auto& l : listeners_) {
    try {
      l->OnProgress(operation, done, total);
    } catch (...) {
      Log(LogLevel::kWarn, "an event listener threw from OnProgress; dropped");
    }
  }
}

void Notifier::Deliver(const Notice& notice) {
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
  if (tls_delivering) return;
  std::lock_guard deliver(deliver_mu_);
  tls_delivering = true;
  for (;;) {
    std::vector<Notice> batch;
    {
      std::lock_guard lock(queue_mu_);
      batch.swap(queue_);
    }
    if (batch.empty()) break;
    for (const Notice& n : batch) Deliver(n);
  }
  tls_delivering = false;
}

}  // namespace shredkv::engine
