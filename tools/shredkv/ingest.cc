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
#include <sys/stat.h>

#include <cerrno>
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
  explicit Ingester(Store* store) : store_(store) {}

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
  // lines are found.
  void Apply(const std::vector<const IngestLine*>& lines) {
    if (lines.empty()) return;
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
    const Status s = store_->Write(batch);
    if (s.ok()) {
      ingested_ += planned.size();
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

  Json Summary() const {
    return Json{{"ingested", ingested_}, {"rejected", rejected_}, {"suppressed", suppressed_},
                {"restricted", restricted_}};
  }

  struct FatalError {
    Status status;
  };

 private:
  static FatalError Fatal(const Status& s) { return FatalError{s}; }

  // Queues the line's operations on `batch`; nothing is queued on error.
  Status Plan(const IngestLine& l, WriteBatch& batch, std::map<Identifier, PersonId>& local) {
    std::optional<PersonId> who;
    std::vector<Identifier> unknown;
    for (const Identifier& id : l.ids) {
      PersonId owner;
      if (auto it = local.find(id); it != local.end()) {
        owner = it->second;
      } else {
        Result<PersonId> r = store_->Resolve(id);
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
    return Status::OK();
  }

  Store* store_;
  std::uint64_t ingested_ = 0;
  std::uint64_t rejected_ = 0;
  std::uint64_t suppressed_ = 0;
  std::uint64_t restricted_ = 0;
};

}  // namespace

int CmdIngest(const GlobalOptions& global, const ParsedArgs& args) {
  InputFile input = OpenInput(args, "ingest");
  std::istream* in = input.stream;
  const std::uint64_t total = input.size;
  auto store = OpenStore(global, false);
  Ingester ingester(store.get());
  ProgressBar progress("ingest", total, "bytes", "lines");

  std::vector<IngestLine> chunk;
  chunk.reserve(kBatchLines);
  std::uint64_t bytes = 0;
  std::size_t number = 0;
  auto flush = [&] {
    std::vector<const IngestLine*> ptrs;
    ptrs.reserve(chunk.size());
    for (const IngestLine& l : chunk) ptrs.push_back(&l);
    ingester.Apply(ptrs);
    chunk.clear();
    progress.Update(bytes, number);
  };
  try {
    std::string text;
    bool too_long = false;
    while (portability::ReadBoundedLine(*in, &text, portability::kMaxLineBytes, &too_long)) {
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
      if (chunk.size() >= kBatchLines) flush();
    }
    if (in->bad()) throw CliError(kExitError, "ingest: cannot read '" + input.name + "'");
    flush();
  } catch (const Ingester::FatalError& e) {
    progress.Finish();
    PrintLine(Dump(ingester.Summary(), global.pretty));
    FlushStdout();
    Fail(e.status, "ingest: line " + std::to_string(number) + " (batch ending here)");
  }
  progress.Finish();
  PrintLine(Dump(ingester.Summary(), global.pretty));
  return 0;
}

}  // namespace shredkv::cli
