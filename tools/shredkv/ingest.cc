// shredkv ingest: NDJSON operations, one a line, applied in atomic batches
// of up to 1000 lines. A batch that fails is split in halves until the bad
// lines are found; they are reported on stderr with their line number and
// skipped, the rest is ingested.
//
//   {"op":"profile","ids":{"email":"a@x.org"},"attrs":{"name":"Ann","city":null}}
//   {"op":"event","ids":{...},"name":"purchase","ts":1700000000123,"props":{...},"analytics":["amount"]}
//   {"op":"put","ids":{...},"collection":"orders","key":"42","value":"...",
//    "metadata":{"purposes":["billing"],"origin":"checkout","shared_with":["psp"],"automated_decision":false}}
//
// Each operation names its person by identifiers: if none of them is known
// the person is created with all of them; if the known ones agree on one
// person the unknown ones are linked to that person; if they name different
// people the line is rejected.
//
// --resume NAME commits, with every batch, the input's byte offset past the
// batch's last line (WriteBatch::SetProgress, `ingest:NAME`): a run stopped
// at any point, even killed, is resumed by running it again with the same
// NAME and input; the lines already ingested are skipped, none twice.
// SIGINT and SIGTERM stop an ingest between lines: it commits the lines
// read, prints its counts and exits 130 / 143.
#include <signal.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>

#include "cli.h"
#include "ingest_line.h"
#include "json_output.h"
#include "portability/bounded_line.h"
#include "progress.h"

namespace shredkv::cli {
namespace {

constexpr std::size_t kBatchLines = 1000;

// The signal that asked the ingest to stop (0: none).
volatile std::sig_atomic_t g_stop_signal = 0;
void OnStopSignal(int signo) { g_stop_signal = signo; }

// SIGINT and SIGTERM set g_stop_signal while an ingest runs. Without
// SA_RESTART, a read of stdin waiting for input returns (stdio sees EOF), so
// the ingest stops at once; a file stream's reads restart (libstdc++), and
// a second signal has its default effect (SA_RESETHAND) for an ingest that
// waits on a silent FIFO.
class StopSignals {
 public:
  StopSignals() {
    struct sigaction sa {};
    sa.sa_handler = &OnStopSignal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = static_cast<int>(SA_RESETHAND);
    sigaction(SIGINT, &sa, &old_int_);
    sigaction(SIGTERM, &sa, &old_term_);
  }
  ~StopSignals() {
    sigaction(SIGINT, &old_int_, nullptr);
    sigaction(SIGTERM, &old_term_, nullptr);
  }
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

 private:
  struct sigaction old_int_ {};
  struct sigaction old_term_ {};
};
bool IsFatal(const Status& s) {
  switch (s.code()) {
    case StatusCode::kCorruption:
    case StatusCode::kAuthenticationFailed:
    case StatusCode::kWrongKey:
    case StatusCode::kIOError:
    case StatusCode::kStoreFull:
    case StatusCode::kFailedPrecondition:
    case StatusCode::kUnsupportedVersion:
    case StatusCode::kReadOnly:
    case StatusCode::kKeyDestroyed:
    case StatusCode::kInternal: return true;
    default: return false;
  }
}

class Ingester {
 public:
  // `progress_name`: where each commit records its input offset (empty:
  // nowhere); `committed_offset`: the offset already recorded there.
  Ingester(OpenedStore* store, std::string progress_name, std::uint64_t committed_offset)
      : store_(store), progress_name_(std::move(progress_name)), committed_offset_(committed_offset) {}

  void Reject(std::size_t number, const Status& s) {
    if (s.IsSuppressed()) {
      ++suppressed_;
    } else if (s.IsRestricted()) {
      ++restricted_;
    } else {
      ++rejected_;
    }
    std::string msg = s.ToString();
    for (char& c : msg) {
      if (c == '\n' || c == '\r') c = ' ';
    }
    ClearProgressLine();
    std::cerr << "shredkv: ingest: line " << number << ": " << msg << "\n";
  }

  // Applies lines (in order) in one batch; on failure halves until the bad
  // lines are found. On a sharded store, in one batch a shard: see
  // ApplySharded.
  void Apply(const std::vector<const IngestLine*>& lines) {
    if (lines.empty()) return;
    if (store_->sharded()) {
      store_->Visit([&](auto& s) {
        if constexpr (kIsSharded<decltype(s)>) ApplySharded(s, lines);
      });
      return;
    }
    WriteBatch batch;
    std::map<Identifier, PersonId> local;  // identifiers given a person in this batch
    std::vector<const IngestLine*> planned;
    for (const IngestLine* l : lines) {
      if (Status s = Plan(*l, batch, local); !s.ok()) {
        if (IsFatal(s)) throw Fatal(s);
        Reject(l->number, s);
      } else {
        planned.push_back(l);
      }
    }
    const std::uint64_t end = planned.empty() ? 0 : planned.back()->end_offset;
    if (!progress_name_.empty() && end > committed_offset_) batch.SetProgress(progress_name_, end);
    Commit(batch, planned, end);
  }

  // Writes `batch`, the operations of the lines `planned` (and the input
  // offset `end`, 0 for none); on failure rejects a single line, or applies
  // the lines again by halves until the bad ones are found.
  void Commit(const WriteBatch& batch, const std::vector<const IngestLine*>& planned, std::uint64_t end) {
    const Status s = Write(batch);
    if (s.ok()) {
      ingested_ += planned.size();
      committed_offset_ = std::max(committed_offset_, end);
      return;
    }
    if (IsFatal(s)) throw Fatal(s);
    if (planned.size() == 1) {
      Reject(planned.front()->number, s);
      return;
    }
    const auto half = static_cast<std::ptrdiff_t>(planned.size() / 2);
    Apply(std::vector<const IngestLine*>(planned.begin(), planned.begin() + half));
    Apply(std::vector<const IngestLine*>(planned.begin() + half, planned.end()));
  }

  // Records `offset` (every line before it ingested or reported) when the
  // batches did not: the input ended, or stopped, with lines that committed
  // nothing (rejected, blank).
  void CommitOffset(std::uint64_t offset) {
    if (progress_name_.empty() || offset <= committed_offset_) return;
    WriteBatch batch;
    batch.SetProgress(progress_name_, offset);
    if (Status s = Write(batch); !s.ok()) throw Fatal(s);
    committed_offset_ = offset;
  }

  Json Summary() const {
    return Json{{"ingested", ingested_}, {"rejected", rejected_}, {"suppressed", suppressed_},
                {"restricted", restricted_}};
  }

  struct FatalError {
    Status status;
  };

 private:
  static FatalError Fatal(const Status& s) { return FatalError{s}; }

  Status Write(const WriteBatch& batch) {
    return store_->Visit([&](auto& s) { return s.Write(batch); });
  }

  // A ShardedStore's Write of people of several shards commits part by
  // part, and a later part's failure (a restricted person's event, say)
  // leaves the earlier parts committed: retrying that batch by halves would
  // write those lines twice. So each line is planned into a batch of its
  // own, which fixes its person (a new person's ID too), and appended to
  // the batch of that person's shard; each shard's batch is one commit, all
  // or nothing, as on a Store, and is retried by halves on failure.
  void ApplySharded(ShardedStore& store, const std::vector<const IngestLine*>& lines) {
    std::vector<WriteBatch> batches(store.shard_count());
    std::vector<std::vector<const IngestLine*>> planned(store.shard_count());
    std::map<Identifier, PersonId> local;  // identifiers given a person in these lines
    for (const IngestLine* l : lines) {
      WriteBatch one;
      PersonId person;
      if (Status s = Plan(*l, one, local, &person); !s.ok()) {
        if (IsFatal(s)) throw Fatal(s);
        Reject(l->number, s);
        continue;
      }
      const std::uint32_t shard = store.ShardOf(person);
      batches[shard].Append(one);
      planned[shard].push_back(l);
    }
    for (std::size_t i = 0; i < batches.size(); ++i) {
      if (!planned[i].empty()) Commit(batches[i], planned[i], 0);
    }
  }

  // Queues the line's operations on `batch`; nothing is queued on error.
  // `person_out`, if given, is set to the line's person.
  Status Plan(const IngestLine& l, WriteBatch& batch, std::map<Identifier, PersonId>& local,
              PersonId* person_out = nullptr) {
    std::optional<PersonId> who;
    std::vector<Identifier> unknown;
    for (const Identifier& id : l.ids) {
      PersonId owner;
      if (auto it = local.find(id); it != local.end()) {
        owner = it->second;
      } else {
        Result<PersonId> r = store_->Visit([&](auto& s) { return s.Resolve(id); });
        // An identifier of an erased person is free: a new person takes it.
        if (r.status().IsNotFound() || r.status().IsErased()) {
          unknown.push_back(id);
          continue;
        }
        if (!r.ok()) return r.status().WithContext(id.type);
        owner = *r;
      }
      if (who && *who != owner) return Status::InvalidArgument("the identifiers belong to different people");
      who = owner;
    }
    PersonId person;
    if (!who) {
      Attributes initial = l.kind == IngestOp::kProfile ? l.patch.set : Attributes{};
      person = batch.CreatePerson(l.ids, std::move(initial));
      for (const Identifier& id : l.ids) local[id] = person;
    } else {
      person = *who;
      for (const Identifier& id : unknown) {
        batch.LinkIdentifier(person, id);
        local[id] = person;
      }
      if (l.kind == IngestOp::kProfile && (!l.patch.set.empty() || !l.patch.unset.empty())) {
        batch.PatchProfile(person, l.patch);
      }
    }
    if (l.kind == IngestOp::kEvent) batch.AppendEvent(person, l.event);
    if (l.kind == IngestOp::kPut) batch.Put(person, Record{l.collection, l.key, l.value, {}, l.metadata});
    if (person_out != nullptr) *person_out = person;
    return Status::OK();
  }

  OpenedStore* store_;
  const std::string progress_name_;
  std::uint64_t committed_offset_;
  std::uint64_t ingested_ = 0;
  std::uint64_t rejected_ = 0;
  std::uint64_t suppressed_ = 0;
  std::uint64_t restricted_ = 0;
};

// The progress name `ingest --resume NAME` commits under (SetProgress's
// rules apply to the whole name: the store refuses a bad one).
std::string ProgressNameOf(const std::string& resume) { return "ingest:" + resume; }

// Skips the first `offset` bytes of `in`, whole lines only, counting them in
// `number` and `bytes` as the main loop would. Exit 1 if the input ends
// first or a line straddles `offset`: not the input the earlier run read.
void SkipIngested(std::istream& in, std::uint64_t offset, const std::string& resume, std::size_t* number,
                  std::uint64_t* bytes) {
  std::string text;
  bool too_long = false;
  while (*bytes < offset && portability::ReadBoundedLine(in, &text, portability::kMaxLineBytes, &too_long)) {
    ++*number;
    *bytes += text.size() + 1;
  }
  if (in.bad()) throw CliError(kExitError, "ingest: cannot read the input");
  if (*bytes != offset) {
    throw CliError(kExitError, "ingest: --resume " + resume + ": an earlier run ingested " + std::to_string(offset) +
                                   " bytes of its input, and this input " +
                                   (*bytes < offset ? "is shorter"
                                                    : "has no line ending there (line " + std::to_string(*number) +
                                                          " crosses it)") +
                                   ": not the same input (use a new NAME to ingest another)");
  }
}

}  // namespace

int CmdIngest(const GlobalOptions& global, const ParsedArgs& args) {
  const std::string resume = args.Get("resume").value_or("");
  if (args.Has("resume") && resume.empty()) UsageError("ingest: --resume needs a NAME");
  InputFile input = OpenInput(args, "ingest");
  std::istream* in = input.stream;
  const std::uint64_t total = input.size;
  if (!resume.empty() && IsShardedStoreDir(global.db)) {
    UsageError("ingest: --resume is not available on a sharded store (its writes commit a shard at a time, so no "
               "commit can record how far the input was read)");
  }
  OpenedStore opened = OpenAnyStore(global);
  std::uint64_t resume_offset = 0;
  const std::string progress_name = resume.empty() ? std::string() : ProgressNameOf(resume);
  if (!resume.empty()) {
    auto committed = opened.Visit([&](auto& s) -> Result<std::uint64_t> {
      if constexpr (kIsSharded<decltype(s)>) {
        return Status::InvalidArgument("a sharded store");  // refused above
      } else {
        return s.ReadProgress(progress_name);
      }
    });
    if (committed.status().IsInvalidArgument()) {
      UsageError("ingest: --resume " + resume + ": a NAME is 1 to 57 characters of A-Z a-z 0-9 . _ : -");
    }
    if (committed.ok()) {
      resume_offset = *committed;
    } else if (!committed.status().IsNotFound()) {
      Fail(committed.status(), "ingest: reading the progress of --resume " + resume);
    }
  }
  Ingester ingester(&opened, progress_name, resume_offset);
  ProgressBar progress("ingest", total, "bytes", "lines");
  const StopSignals stop_signals;

  std::vector<IngestLine> chunk;
  chunk.reserve(kBatchLines);
  std::uint64_t bytes = 0;
  std::size_t number = 0;
  SkipIngested(*in, resume_offset, resume, &number, &bytes);
  const std::size_t resumed_after_line = number;
  auto flush = [&] {
    std::vector<const IngestLine*> ptrs;
    ptrs.reserve(chunk.size());
    for (const IngestLine& l : chunk) ptrs.push_back(&l);
    ingester.Apply(ptrs);
    chunk.clear();
    progress.Update(bytes, number);
  };
  const auto summary = [&] {
    Json out = ingester.Summary();
    if (!resume.empty()) out["resumed_after_line"] = resumed_after_line;
    if (g_stop_signal != 0) out["interrupted"] = true;
    return out;
  };
  try {
    std::string text;
    bool too_long = false;
    while (g_stop_signal == 0 &&
           portability::ReadBoundedLine(*in, &text, portability::kMaxLineBytes, &too_long)) {
      // A line without its newline when a signal came: cut short by it (or
      // the input's unterminated last line): not taken, not counted.
      if (g_stop_signal != 0 && in->eof()) break;
      ++number;
      bytes += text.size() + 1;
      if (too_long) {
        ingester.Reject(number, Status::InvalidArgument("line longer than 32 MiB"));
        continue;
      }
      if (text.find_first_not_of(" \t\r") == std::string::npos) continue;  // blank line
      Result<IngestLine> line = ParseIngestLine(text, number, &NowMs);
      if (!line.ok()) {
        ingester.Reject(number, line.status());
        continue;
      }
      chunk.push_back(std::move(line).value());
      chunk.back().end_offset = bytes;
      if (chunk.size() >= kBatchLines) flush();
    }
    if (g_stop_signal == 0 && in->bad()) throw CliError(kExitError, "ingest: cannot read '" + input.name + "'");
    flush();
    ingester.CommitOffset(bytes);
  } catch (const Ingester::FatalError& e) {
    progress.Finish();
    PrintLine(Dump(summary(), global.pretty));
    FlushStdout();
    Fail(e.status, "ingest: line " + std::to_string(number) + " (batch ending here)");
  }
  progress.Finish();
  PrintLine(Dump(summary(), global.pretty));
  if (const int signo = g_stop_signal; signo != 0) {
    FlushStdout();
    std::cerr << "shredkv: ingest: stopped by " << (signo == SIGINT ? "SIGINT" : "SIGTERM") << " after line "
              << number << " (every line up to it ingested or reported)"
              << (!resume.empty() ? "; run again with --resume " + resume + " to go on"
                  : opened.sharded()
                      ? std::string("; a sharded store takes no --resume: run again on the lines after it")
                      : std::string("; --resume NAME would let a second run skip them"))
              << "\n";
    return 128 + signo;
  }
  return 0;
}

}  // namespace shredkv::cli
