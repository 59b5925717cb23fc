// shredkv benchmarks — what every system shares: sizes of the run (scale),
// the synthetic people and events, and the interface each system implements.
//
// Every system writes the same logical rows (docs/format.md §5) with the
// same key layout and value sizes:
//   people          person(16)                 → person row
//   ident           H(identifier)(32)          → person(16) ‖ checksum(8)
//   ident_by_person person(16) ‖ H(32)         → checksum(8)
//   profiles        person(16)                 → profile row
//   events          person(16) ‖ ts(8) ‖ seq(8) → event row (~200 B payload)
//   analytics       ts(8) ‖ seq(8)             → analytics row
// shredkv encrypts the personal rows; the baselines store bytes of the same
// length in the clear.
#ifndef SHREDKV_BENCH_COMMON_H_
#define SHREDKV_BENCH_COMMON_H_

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "shredkv/options.h"
#include "shredkv/types.h"

namespace shredkv_bench {

// ---- scale ---------------------------------------------------------------------

struct Config {
  std::string scale = "default";
  std::size_t people = 100000;             // people of the ingest/bulk/lookup world
  std::size_t batch = 10000;               // events per write batch
  std::size_t ingest_batches = 20;         // IngestEvents iterations
  std::size_t bulk_events_per_person = 100;
  std::size_t bulk_batches = 20;           // BulkLoad iterations
  std::size_t erase_people = 2000;         // people of the erase world
  std::size_t erase_events = 1000;         // events per person there
  std::size_t erase_call = 100;            // people per Erase call
  std::size_t erase_synced_calls = 5;      // EraseBatchSynced iterations (people beyond erase_people)
  std::size_t purge_budget = 10000;        // rows per Purge call
  std::size_t durable_threads = 16;
  std::size_t durable_calls = 8;           // erasures per caller
  std::size_t durable_events = 10;         // events per person of the durable world
  std::size_t durable_people = 1000;       // people of the durable-write world
  std::size_t durable_write_ops = 500;     // DurableWrite iterations (one durable write each)
  std::size_t rotate_people = 100000;
  std::size_t rotate_iterations = 3;
  std::size_t export_people = 20;
  std::size_t export_events = 1000;
  std::size_t export_iterations = 100;
  std::size_t backup_iterations = 20;      // Backup: copies of the export world
  std::string dir;                         // where stores are created

  // "tiny" (smoke test), "default", "full" (the sizes) or a number
  // that multiplies the default counts. InvalidArgument-style throw on junk.
  static Config ForScale(const std::string& scale);
  std::string Describe() const;
};

const Config& config();
void SetConfig(Config c);

// ---- errors ----------------------------------------------------------------------

struct BenchError : std::runtime_error {
  using std::runtime_error::runtime_error;
};
[[noreturn]] void Fail(const std::string& what);

// ---- deterministic data ------------------------------------------------------------

// splitmix64: fast, seedable, good enough for picking people and bytes.
class Rng {
 public:
  explicit Rng(std::uint64_t seed) : s_(seed) {}
  std::uint64_t Next() {
    std::uint64_t z = (s_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  std::size_t Uniform(std::size_t n) { return static_cast<std::size_t>(Next() % n); }
  // Uniform in [0, 1).
  double Unit() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }
  void Fill(std::uint8_t* out, std::size_t n);

 private:
  std::uint64_t s_;
};

// A 1 MiB pool of random bytes; Bytes(n, salt) returns n of them (n < 64 KiB)
// starting at an offset derived from `salt`, so values are incompressible
// and differ from row to row without generating them in the timed loop.
std::string_view PoolBytes(std::size_t n, std::uint64_t salt);

std::string Email(std::size_t person);
shredkv::Attributes Profile(std::size_t person);
// The event of the benchmarks: ~200 bytes of encoded payload; two
// non-personal fields go to the analytics row.
shredkv::Event MakeEvent(std::int64_t ts_ms, std::uint64_t n);
// The same with an explicit padding of the URL property (for sizing).
shredkv::Event MakeEventWithPad(std::int64_t ts_ms, std::uint64_t n, std::size_t url_pad);

// Byte sizes of shredkv's rows for the data above (cipher kAuto), so the
// baselines write rows of exactly the same length.
struct RowSizes {
  std::size_t event_payload = 0;  // plaintext of an event row
  std::size_t event_row = 0;
  std::size_t analytics_row = 0;
  std::size_t person_row = 0;
  std::size_t profile_row = 0;
  std::size_t ident_row = 16 + 8;
  std::size_t ident_by_person_row = 8;
  std::size_t url_pad = 0;        // URL padding that makes the payload ~200 B
  std::string cipher;             // what kAuto picked: "aes256gcm" or "xchacha20poly1305"
  bool aes_ni = false;
};
const RowSizes& row_sizes();

// Key encodings (docs/format.md).
void PutBE64(std::string* out, std::uint64_t v);
std::string EventKey(std::string_view person, std::int64_t ts, std::uint64_t seq);
std::string AnalyticsKey(std::int64_t ts, std::uint64_t seq);

// The first timestamp of the synthetic events.
inline constexpr std::int64_t kBaseTs = 1700000000000;

// ---- systems -----------------------------------------------------------------------

enum class SystemKind { kRawLmdb, kShredkv, kShredkvXChaCha, kRocksDb, kSqlite };
std::string_view SystemName(SystemKind kind);
bool SystemAvailable(SystemKind kind);

struct EventRef {
  std::uint32_t person;  // index into the system's people
  std::int64_t ts;
};

// A batch made ready outside the timed region (shredkv: the WriteBatch;
// baselines: the encoded keys and values).
struct PreparedBatch {
  virtual ~PreparedBatch() = default;
};

struct SystemOptions {
  shredkv::Durability durability = shredkv::Durability::kNoSync;
  bool secure_delete = false;      // SQLite: PRAGMA secure_delete=ON
  bool sealed_event_rows = false;  // raw_lmdb: event values are XChaCha20 boxes (export baseline)
};

// One system holding one data set in its own directory. People are numbered
// 0..people()-1 in creation order; methods throw BenchError on failure.
class System {
 public:
  virtual ~System() = default;

  std::size_t people() const { return people_; }

  // Creates `n` more people (identifier + profile), `batch` per commit.
  virtual void AddPeople(std::size_t n, std::size_t batch) = 0;

  virtual std::unique_ptr<PreparedBatch> PrepareEvents(std::span<const EventRef> events) = 0;
  // One commit: the events and their analytics rows.
  virtual void CommitEvents(PreparedBatch& batch) = 0;

  // People indices ordered by person key (for sequential-key loads).
  virtual std::vector<std::uint32_t> PeopleInKeyOrder() const = 0;

  // Resolves person i's identifier and reads the (decrypted) profile;
  // returns the number of bytes or attributes read.
  virtual std::size_t Lookup(std::size_t i) = 0;

  // Erases people in one call (one commit where the system allows).
  virtual void Erase(std::span<const std::uint32_t> people) = 0;
  // Makes every later commit durable (fsynced before it returns) or, with
  // false, as the data set was opened. shredkv: nothing to do (its erase
  // commits are always fsynced); raw_lmdb: MDB_NOSYNC off; RocksDB:
  // WriteOptions::sync; SQLite: synchronous=FULL (WAL).
  virtual void SetSynced(bool synced) { (void)synced; }
  // raw_lmdb only: deletes one row per person in one commit (the erase
  // limit baseline); the person's other rows stay for Purge.
  virtual void DeleteOneRow(std::span<const std::uint32_t> people);
  // Queues people whose rows remain for Purge without timing anything
  // (baselines: nothing to do in the store).
  virtual void MarkForPurge(std::span<const std::uint32_t> people);
  // Deletes up to `budget` rows of erased people; returns rows deleted.
  virtual std::uint64_t Purge(std::size_t budget);

  // One record of person i (collection "orders", key `n`, a 100-byte
  // value) written in one commit (DurableWrite/put).
  virtual void PutRecord(std::size_t i, std::uint64_t n);
  // Restricts all processing of person i, in one commit
  // (DurableWrite/restrict). raw_lmdb: the restriction row alone.
  virtual void Restrict(std::size_t i);

  // Exports person i; returns the number of events.
  virtual std::uint64_t Export(std::size_t i);
  // shredkv: RotateEpoch(); returns DEKs re-wrapped.
  virtual std::uint64_t RotateEpoch();
  // A consistent copy of the whole store into the new directory `dir` while
  // it stays open; returns the bytes written. shredkv: Store::Backup (both
  // environments rebuilt from live rows, checksummed, fsynced); raw_lmdb:
  // mdb_env_copy2 with MDB_CP_COMPACT (LMDB's own compacting copy).
  virtual std::uint64_t Backup(const std::string& dir);

  // Brings a freshly built data set to the state a deployed store reaches
  // on its own: shredkv runs one maintenance pass, which materialises the
  // staged analytics rows of hours that have ended (its background thread
  // would within the hour). Called once after each world is built, untimed;
  // SHREDKV_BENCH_SETTLE=0 skips it, to measure the unsettled state.
  virtual void Settle() {}
  // Background work (RocksDB compaction) is paused while other systems run.
  virtual void Pause() {}
  virtual void Resume() {}

 protected:
  std::size_t people_ = 0;
};

std::unique_ptr<System> NewRawLmdb(const std::string& dir, const SystemOptions& o);
std::unique_ptr<System> NewShredkv(const std::string& dir, const SystemOptions& o, shredkv::Cipher cipher);
#ifdef SHREDKV_BENCH_HAVE_ROCKSDB
std::unique_ptr<System> NewRocksDb(const std::string& dir, const SystemOptions& o);
#endif
#ifdef SHREDKV_BENCH_HAVE_SQLITE
std::unique_ptr<System> NewSqlite(const std::string& dir, const SystemOptions& o);
#endif
std::unique_ptr<System> NewSystem(SystemKind kind, const std::string& dir, const SystemOptions& o);

// Computes row_sizes() from shredkv's codec (sys_shredkv.cc).
RowSizes ComputeRowSizes();

}  // namespace shredkv_bench

#endif  // SHREDKV_BENCH_COMMON_H_
