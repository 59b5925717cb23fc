// shredkv_gdprbench — the four workloads of GDPRbench (Shastri et al.,
// "Understanding and Benchmarking the Impact of GDPR on Database Systems",
// VLDB 2020), implemented here from the published workload definitions, on
// shredkv and on baselines that answer the same queries from hand-kept
// metadata tables (raw LMDB; SQLite with indexes) — docs/performance.md §8.
//
// The data set: `records` records, ten per person (person p holds records
// 10p … 10p+9), each a 100-byte value with GDPRbench's metadata:
//   purpose    one of 100 ("p00" … "p99"): record r has purpose r % 100
//   recipient  one of records/10 ("rcpt<n>"): record r is shared with
//              recipient r % (records/10), so every recipient has ten
//   origin     one of five sources; automated decision: r % 2; expiry: a
//              time in 2100 (nothing expires during a run)
// Queries by metadata return about ten records whatever the store's size
// (by purpose: the first page of ten), so a fast store answers them at a
// cost that does not grow with the data.
#ifndef SHREDKV_BENCH_GDPR_GDPR_H_
#define SHREDKV_BENCH_GDPR_GDPR_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace shredkv_gdpr {

inline constexpr std::size_t kRecordsPerPerson = 10;
inline constexpr std::size_t kPurposes = 100;
inline constexpr std::size_t kPage = 10;  // by-purpose queries: the first page
inline constexpr std::size_t kValueSize = 100;
inline constexpr std::int64_t kExpiryBase = 4102444800000;  // 2100-01-01

// One record of the model, as every system stores it.
struct GdprRecord {
  std::uint64_t id = 0;      // record number; key "r<id>"
  std::uint64_t person = 0;  // owner (GDPRbench's USR)
  std::string value;
  std::string purpose;
  std::string recipient;
  std::string origin;
  bool decision = false;
  std::int64_t expires_ms = 0;
};

std::string RecordKey(std::uint64_t id);
std::string PurposeName(std::size_t i);
std::string RecipientName(std::uint64_t i);
// The loaded record `id` of a data set of `records` records.
GdprRecord MakeRecord(std::uint64_t id, std::uint64_t records);

// Throws std::runtime_error with `what`.
[[noreturn]] void Fail(const std::string& what);

// What each system answers. Methods are called by several threads at once
// (the 16-thread runs); each write is one durable commit of the system.
class GdprSystem {
 public:
  virtual ~GdprSystem() = default;
  virtual std::string_view name() const = 0;

  // Untimed set-up: records [0, n), people [0, n / 10), in large batches.
  virtual void Load(std::uint64_t n) = 0;
  // Untimed set-up: erases person `p` (all their records) and logs it.
  virtual void ErasePerson(std::uint64_t p) = 0;

  // Processor and customer reads. Returns false if the record is absent.
  virtual bool ReadData(const GdprRecord& r) = 0;  // by key, for its purpose
  virtual std::size_t ReadDataByPurpose(std::string_view purpose) = 0;  // first page
  virtual std::size_t ReadDataByRecipient(std::string_view recipient) = 0;
  virtual std::size_t ReadDataByUser(std::uint64_t person) = 0;
  // Regulator.
  virtual bool ReadMetadata(const GdprRecord& r) = 0;  // by key
  virtual std::size_t ReadLogs(std::uint64_t after, std::size_t max) = 0;
  virtual std::uint64_t LogLength() = 0;
  virtual bool VerifyDeleted(std::uint64_t person) = 0;  // true: nothing of them remains readable
  // Controller and customer writes.
  virtual void Insert(const GdprRecord& r) = 0;
  virtual void UpdateData(const GdprRecord& r, std::string_view value) = 0;
  virtual void UpdateMetadata(const GdprRecord& r, std::string_view recipient) = 0;  // by key
  virtual std::size_t UpdateMetadataByUser(std::uint64_t person, std::string_view recipient) = 0;
  virtual std::size_t UpdateMetadataByPurpose(std::string_view purpose, std::string_view recipient) = 0;
  virtual std::size_t DeleteByRecipient(std::string_view recipient) = 0;
  virtual void Delete(const GdprRecord& r) = 0;

  // Write batches and the commits that carried them so far (group commit;
  // shredkv only: {0, 0} elsewhere).
  struct WriteCounters {
    std::uint64_t batches = 0, commits = 0;
  };
  virtual WriteCounters Counters() { return {}; }
};

std::unique_ptr<GdprSystem> NewShredkv(const std::string& dir);
// A ShardedStore of `shards` shards (the same calls, routed).
std::unique_ptr<GdprSystem> NewShredkvSharded(const std::string& dir, std::uint32_t shards);
std::unique_ptr<GdprSystem> NewRawLmdb(const std::string& dir);
#ifdef SHREDKV_BENCH_HAVE_SQLITE
std::unique_ptr<GdprSystem> NewSqlite(const std::string& dir);
#endif

}  // namespace shredkv_gdpr

#endif  // SHREDKV_BENCH_GDPR_GDPR_H_
