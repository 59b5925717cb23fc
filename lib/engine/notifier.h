// Notifier: delivers a store's notices to Options::listeners and its log
// lines to Options::logger (include/shredkv/listener.h).
//
// The engine queues notices where the work happens, often under the
// store's locks; the public call (or the background loop) that did the
// work calls Flush after releasing them, so listeners run lock-free. One
// thread delivers at a time: a Flush while another is delivering (another
// thread's, or a listener's own call into the store) returns at once, and
// the deliverer, which only stops when it finds the queue empty, delivers
// those notices too, in queue order. So no Flush ever waits for a
// listener, and notices are never delivered twice or out of order.
// Exceptions from listeners and the logger are caught and dropped (and
// logged). Log lines name no person: a 32-hex-digit run (a person ID, as
// Status messages print them) is replaced by "<person>".
// Thread safety: thread-safe.
#ifndef SHREDKV_ENGINE_NOTIFIER_H_
#define SHREDKV_ENGINE_NOTIFIER_H_

#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "shredkv/listener.h"
#include "shredkv/options.h"

namespace shredkv::engine {

class Notifier {
 public:
  Notifier() = default;
  Notifier(const Notifier&) = delete;
  Notifier& operator=(const Notifier&) = delete;

  // Takes the listeners and logger of `options`. Called once, by Open,
  // before any other call.
  void Configure(const Options& options);
  // True if there is anyone to tell: callers skip building notices otherwise.
  bool listening() const { return !listeners_.empty(); }
  // True if a line at `level` goes anywhere: callers skip building it otherwise.
  bool logging(LogLevel level) const { return logger_ != nullptr && level >= log_level_; }

  // Queued; delivered by the next Flush.
  void ErasureCommitted(const ErasureReceipt& receipt);
  void LevelReached(const ErasureReceipt& receipt);
  void MaintenanceCompleted(const MaintenanceInfo& info);
  void BackgroundError(const Status& status);
  void Log(LogLevel level, std::string message);
  // Delivered at once, on the calling thread (progress is only useful then).
  void Progress(std::string_view operation, std::uint64_t done, std::uint64_t total);

  // Delivers every queued notice, or leaves them to the Flush delivering
  // now. REQUIRES: the caller holds no store lock.
  void Flush();
  // `text` with every run of exactly 32 hex digits (a person ID) replaced
  // by "<person>".
  static std::string WithoutPersonIds(std::string_view text);
  // True while the calling thread is inside a listener's or the logger's
  // callback delivered by this notifier (Store::Close refuses there: the
  // call that delivers it still uses the store).
  bool InCallbackOnThisThread() const;

 private:
  struct Committed { ErasureReceipt receipt; };
  struct Reached { ErasureReceipt receipt; };
  struct Completed { MaintenanceInfo info; };
  struct BackgroundFailed { Status status; };
  struct Line { LogLevel level; std::string message; };
  using Notice = std::variant<Committed, Reached, Completed, BackgroundFailed, Line>;

  void Enqueue(Notice notice);
  void Deliver(const Notice& notice);

  std::vector<std::shared_ptr<EventListener>> listeners_;
  std::shared_ptr<Logger> logger_;
  LogLevel log_level_ = LogLevel::kInfo;
  std::mutex queue_mu_;
  std::vector<Notice> queue_;  // guarded by queue_mu_
  bool delivering_ = false;    // guarded by queue_mu_: a Flush is delivering
};

}  // namespace shredkv::engine

#endif  // SHREDKV_ENGINE_NOTIFIER_H_
