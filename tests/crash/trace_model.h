// A random workload over the public API, the trace it leaves, and a model of
// the state every prefix of that trace must produce. Shared by the crash
// loop (process death) and the power-loss simulation: both run the workload,
// cut it short, reopen the store and check it against the model.
#ifndef SHREDKV_TESTS_CRASH_TRACE_MODEL_H_
#define SHREDKV_TESTS_CRASH_TRACE_MODEL_H_

#include <cstdint>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "shredkv/shredkv.h"

namespace shredkv::crash {

enum class OpKind : std::uint8_t {
  kCreate,  // WriteBatch::CreatePerson (the id is chosen before the commit)
  kPut,     // Store::Put of record collection "c"
  kDelete,  // Store::Delete
  kPatch,   // Store::PatchProfile: set v, set or unset w
  kAppend,  // Store::AppendEvent
  kBatch,   // one WriteBatch: Put + AppendEvent + PatchProfile of one person
  kErase,   // Store::Erase
  kPurge,   // Store::Purge (no logical change)
  kRotate,  // Store::RotateEpoch (no logical change)
};

// One operation of the trace. `n` is the operation's sequence number, unique
// over the whole run; it is also the value written (timestamps, values).
struct Op {
  OpKind kind = OpKind::kPut;
  std::uint64_t n = 0;
  std::string person;  // hex PersonId; empty for purge/rotate
  std::string email;   // create only
  std::string key;     // put/delete/batch
};

// One line of text without spaces in fields; Parse inverts it.
std::string Encode(const Op& op);
std::optional<Op> Parse(const std::string& line);

// What one person must look like.
struct PersonState {
  std::string email;
  Attributes profile;
  std::map<std::string, std::string> records;  // collection "c"
  std::vector<std::int64_t> event_ts;          // in append order (ts increase)
  bool erased = false;
};

// The logical state a trace prefix produces.
class Model {
 public:
  // Applies a committed operation.
  void Apply(const Op& op);
  const std::map<std::string, PersonState>& people() const { return people_; }
  std::size_t live_count() const;

 private:
  std::map<std::string, PersonState> people_;
};

// Receives the trace as the workload runs: Intent before an operation is
// started, Ack after it returned OK. An operation that returns an error is
// reported through Failed and ends the workload.
class TraceSink {
 public:
  virtual ~TraceSink() = default;
  virtual void Intent(const Op& op) = 0;
  virtual void Ack(const Op& op) = 0;
  virtual void Failed(const Op& op, const Status& status) = 0;
};

struct WorkloadOptions {
  std::size_t ops = 20;
  bool allow_rotate = true;  // the power-loss journal does not model renames
  std::string email_prefix = "p";
};

// Runs `options.ops` random operations (seeded by `rng`) on `store`, numbered
// from `*next_n`, keeping `model` up to date with each acknowledged one.
// Returns false after the first failed operation (already reported to sink).
bool RunWorkload(Store& store, Model& model, std::mt19937_64& rng, std::uint64_t* next_n,
                 const WorkloadOptions& options, TraceSink& sink);

// Checks `store` against `model` (every acknowledged operation), allowing the
// operation in flight at the crash, if any, to be wholly present or wholly
// absent. On success returns "" and, if the in-flight operation is present,
// applies it to `model`; otherwise returns what differs (never plaintext of
// other runs, only of this test's synthetic values).
// `in_flight_present` (optional) tells which of the two it was; purge and
// rotation change nothing logical and count as present.
std::string CheckAgainstModel(Store& store, Model& model, const std::optional<Op>& in_flight,
                              bool* in_flight_present = nullptr);

// "" if the store's view of one person equals `state`.
std::string DiffPerson(Store& store, const std::string& person_hex, const PersonState& state);

// "" if the person (by id and email) does not exist at all.
std::string CheckAbsent(Store& store, const std::string& person_hex, const std::string& email);

}  // namespace shredkv::crash

#endif  // SHREDKV_TESTS_CRASH_TRACE_MODEL_H_
