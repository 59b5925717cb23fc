// shredkv — what a store tells the service that runs it: an event listener
// for erasures and maintenance, and a logger hook (Options::listeners,
// Options::logger; docs/operations.md).
//
// Nothing here carries an identifier or a value of a person, and log lines
// carry no person ID: logs and monitoring outlive erasure, so the store
// never hands them anything that leads to a person. Two exceptions, both
// pseudonymous: the Status of a failed step (MaintenanceInfo::status,
// OnBackgroundError) may name the person ID of the person whose rows or
// key it failed on (random IDs, leading to nobody once the person is
// erased); and request ids are passed as the caller chose them.
#ifndef SHREDKV_LISTENER_H_
#define SHREDKV_LISTENER_H_

#include <cstdint>
#include <string_view>

#include "shredkv/status.h"
#include "shredkv/types.h"
#include "shredkv/visibility.h"

namespace shredkv {

// The maintenance work a store does, on a caller's thread or on the
// background thread (Options::background_maintenance_ms).
enum class MaintenanceJob : std::uint8_t {
  kPurge = 1,          // deleting erased people's rows (Store::Purge)
  kRotation = 2,       // epoch rotation (Store::RotateEpoch)
  kCompaction = 3,     // rebuilding the data file (Store::CompactData)
  kSweep = 4,          // retention sweep (Store::Sweep)
  kAnalytics = 5,      // moving staged analytics rows of ended buckets into place
  kOrphanKeys = 6,     // deleting keys of creations cut short
};
SHREDKV_EXPORT std::string_view MaintenanceJobName(MaintenanceJob job);

// One maintenance job's run, as EventListener::OnMaintenanceCompleted sees it.
struct MaintenanceInfo {
  MaintenanceJob job = MaintenanceJob::kPurge;
  bool background = false;  // run by the background maintenance thread
  Status status;            // OK, or why the job stopped
  std::int64_t duration_us = 0;
  // What the job did: rows deleted (purge, sweep), keys re-wrapped
  // (rotation), rows moved (analytics), orphan people's keys deleted; for a
  // compaction the data file's size after it, in bytes.
  std::uint64_t done = 0;
  // What is left for a later run: people awaiting purge, items awaiting a
  // sweep; for a compaction the file's size before it. 0 otherwise.
  std::uint64_t pending = 0;
};

// Receives notices from a store. Every method has an empty default, so a
// listener overrides what it needs.
//
// Notices are delivered after the store released its locks, one at a time
// (never two at once on one store) and in the order the work happened, on
// the thread that did the work — the caller of Erase, Purge,
// RunMaintenance, ..., or the background thread — or, when another thread
// is delivering at that moment, on that thread (so a call may return
// before its notices are delivered). A listener may call the store's
// methods (GetErasure, Stats, even Erase) but must not call Close (on the
// background thread Close returns FailedPrecondition and changes nothing) or
// destroy the store, and should return quickly: the delivering thread
// waits for it. OnProgress is the exception: it is called at once, while
// the operation runs and holds the store's locks, possibly beside another
// notice, and must not call back into the store. A listener must not
// throw; an exception it throws is caught and dropped (and logged).
class SHREDKV_EXPORT EventListener {
 public:
  virtual ~EventListener() = default;

  // An erasure (Erase, EraseByIdentifier, EraseCategory) committed: the
  // receipt is the one the caller gets (level kLogical).
  virtual void OnErasureCommitted(const ErasureReceipt& receipt) { (void)receipt; }
  // An erasure reached a higher level: kCryptographic after the rotation
  // that destroyed its epoch key, kPurged once that has happened and its
  // people's rows are gone (whichever of rotation and purge comes last).
  // `receipt` is what GetErasure returns then.
  virtual void OnErasureLevelReached(const ErasureReceipt& receipt) { (void)receipt; }
  // A maintenance job ran (also when it found nothing to do, and when it
  // failed: info.status).
  virtual void OnMaintenanceCompleted(const MaintenanceInfo& info) { (void)info; }
  // Background maintenance failed. Before listeners, such an error was
  // seen only by the next call that hit the same problem; the background
  // thread goes on at its next interval.
  virtual void OnBackgroundError(const Status& status) { (void)status; }
  // Progress of a long operation, as Options::progress: "rotate-keys",
  // "verify", "migrate".
  virtual void OnProgress(std::string_view operation, std::uint64_t done, std::uint64_t total) {
    (void)operation;
    (void)done;
    (void)total;
  }
};

enum class LogLevel : std::uint8_t { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };
SHREDKV_EXPORT std::string_view LogLevelName(LogLevel level);

// Receives the store's log lines: opening and closing, erasures committed,
// maintenance jobs that did something, and every failed job and background
// round. Called as EventListener is (one line at a time; must not throw),
// possibly from the background thread. Lines name no person: a run of 32
// hex digits in them (a person ID in a Status message) reads "<person>".
class SHREDKV_EXPORT Logger {
 public:
  virtual ~Logger() = default;
  virtual void Log(LogLevel level, std::string_view message) = 0;
};

}  // namespace shredkv

#endif  // SHREDKV_LISTENER_H_
