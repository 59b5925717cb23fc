#include "common.h"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <sstream>

namespace shredkv_bench {

// ---- scale ---------------------------------------------------------------------

namespace {
Config g_config;

std::size_t Times(std::size_t n, double f) {
  const double v = std::ceil(static_cast<double>(n) * f);
  return v < 1 ? 1 : static_cast<std::size_t>(v);
}
}  // namespace

Config Config::ForScale(const std::string& scale) {
  Config c;
  c.scale = scale.empty() ? "default" : scale;
  if (c.scale == "default") return c;
  if (c.scale == "tiny") {
    // The smoke test: every workload and system once, in seconds.
    c.people = 300;
    c.batch = 100;
    c.ingest_batches = 2;
    c.bulk_events_per_person = 20;
    c.bulk_batches = 2;
    c.erase_people = 40;
    c.erase_events = 20;
    c.erase_call = 10;
    c.erase_synced_calls = 1;
    c.purge_budget = 100;
    c.durable_calls = 1;
    c.durable_events = 2;
    c.durable_people = 20;
    c.durable_write_ops = 5;
    c.rotate_people = 300;
    c.rotate_iterations = 1;
    c.export_people = 2;
    c.export_events = 50;
    c.export_iterations = 2;
    c.backup_iterations = 1;
    return c;
  }
  if (c.scale == "full") {
    // The sizes named in the issue (about 15-20 minutes on 2 cores).
    c.ingest_batches = 100;  // 1,000,000 events
    c.bulk_batches = 100;
    c.erase_people = 4000;
    c.durable_calls = 32;
    c.rotate_people = 1000000;
    c.rotate_iterations = 2;
    c.export_iterations = 200;
    c.backup_iterations = 50;
    return c;
  }
  char* end = nullptr;
  const double f = std::strtod(c.scale.c_str(), &end);
  if (end == c.scale.c_str() || *end != '\0' || !(f > 0) || f > 1000) {
    Fail("SHREDKV_BENCH_SCALE / --scale must be tiny, default, full or a factor in (0, 1000], not '" +
         scale + "'");
  }
  c.ingest_batches = Times(c.ingest_batches, f);
  c.bulk_batches = Times(c.bulk_batches, f);
  c.erase_people = std::max<std::size_t>(2 * c.erase_call, Times(c.erase_people, f) / (2 * c.erase_call) *
                                                               (2 * c.erase_call));
  c.durable_calls = Times(c.durable_calls, f);
  c.rotate_people = Times(c.rotate_people, f);
  c.export_iterations = Times(c.export_iterations, f);
  c.backup_iterations = Times(c.backup_iterations, f);
  return c;
}

std::string Config::Describe() const {
  std::ostringstream o;
  o << "scale=" << scale << " people=" << people << " batch=" << batch << " ingest_batches=" << ingest_batches
    << " bulk=" << bulk_batches << "x" << batch << " (" << bulk_events_per_person << "/person)"
    << " erase_people=" << erase_people << "x" << erase_events << " erase_call=" << erase_call
    << " erase_synced=" << erase_synced_calls << "x" << erase_call
    << " purge_budget=" << purge_budget << " durable=" << durable_threads << "x" << durable_calls
    << " rotate_people=" << rotate_people << " export=" << export_people << "x" << export_events;
  return o.str();
}

const Config& config() { return g_config; }
void SetConfig(Config c) { g_config = std::move(c); }

void Fail(const std::string& what) { throw BenchError(what); }

// ---- data ------------------------------------------------------------------------

void Rng::Fill(std::uint8_t* out, std::size_t n) {
  while (n > 0) {
    const std::uint64_t v = Next();
    const std::size_t k = n < 8 ? n : 8;
    std::memcpy(out, &v, k);
    out += k;
    n -= k;
  }
}

std::string_view PoolBytes(std::size_t n, std::uint64_t salt) {
  static constexpr std::size_t kPool = 1u << 20;
  static const std::string pool = [] {
    std::string p(kPool, '\0');
    Rng rng(0x5eed);
    rng.Fill(reinterpret_cast<std::uint8_t*>(p.data()), p.size());
    return p;
  }();
  if (n > 65536) Fail("PoolBytes: too many bytes");
  const std::size_t off = static_cast<std::size_t>((salt * 0x9e3779b97f4a7c15ull) >> 44) % (kPool - n);
  return std::string_view(pool).substr(off, n);
}

std::string Email(std::size_t person) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "user%08zu@example.com", person);
  return buf;
}

shredkv::Attributes Profile(std::size_t person) {
  static const char* kCities[] = {"Berlin", "Lisbon", "Oslo", "Vienna", "Madrid", "Dublin", "Prague", "Riga"};
  static const char* kPlans[] = {"free", "plus", "pro"};
  char name[32];
  std::snprintf(name, sizeof name, "Person %08zu", person);
  shredkv::Attributes a;
  a.emplace("name", std::string(name));
  a.emplace("city", kCities[person % 8]);
  a.emplace("plan", kPlans[person % 3]);
  a.emplace("age", static_cast<std::int64_t>(18 + person % 60));
  a.emplace("newsletter", person % 2 == 0);
  a.emplace("signup", shredkv::Timestamp{kBaseTs - static_cast<std::int64_t>(person) * 1000});
  a.emplace("bio", std::string("Likes long walks, short queues and well-documented storage engines."));
  return a;
}

shredkv::Event MakeEventWithPad(std::int64_t ts_ms, std::uint64_t n, std::size_t url_pad) {
  shredkv::Event e;
  e.name = "page_view";
  e.ts_ms = ts_ms;
  std::string url = "https://shop.example.com/p/";
  url.resize(url.size() + url_pad + 8, 'x');
  // Vary the tail so rows differ.
  for (std::size_t i = 0; i < 8; ++i) {
    url[url.size() - 1 - i] = static_cast<char>('a' + ((n >> (3 * i)) & 7));
  }
  e.properties.emplace("url", std::move(url));
  e.properties.emplace("referrer", std::string("https://search.example.org/?q=shoes"));
  e.properties.emplace("duration_ms", static_cast<std::int64_t>(n % 5000));
  e.properties.emplace("screen", std::string("1920x1080"));
  e.analytics_fields = {"duration_ms", "screen"};
  return e;
}

shredkv::Event MakeEvent(std::int64_t ts_ms, std::uint64_t n) {
  return MakeEventWithPad(ts_ms, n, row_sizes().url_pad);
}

const RowSizes& row_sizes() {
  static const RowSizes sizes = ComputeRowSizes();
  return sizes;
}

void PutBE64(std::string* out, std::uint64_t v) {
  for (int i = 7; i >= 0; --i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

std::string EventKey(std::string_view person, std::int64_t ts, std::uint64_t seq) {
  std::string k(person);
  PutBE64(&k, static_cast<std::uint64_t>(ts) ^ (1ull << 63));
  PutBE64(&k, seq);
  return k;
}

std::string AnalyticsKey(std::int64_t ts, std::uint64_t seq) {
  std::string k;
  PutBE64(&k, static_cast<std::uint64_t>(ts) ^ (1ull << 63));
  PutBE64(&k, seq);
  return k;
}

// ---- systems -----------------------------------------------------------------------

std::string_view SystemName(SystemKind kind) {
  switch (kind) {
    case SystemKind::kRawLmdb: return "raw_lmdb";
    case SystemKind::kShredkv: return "shredkv";
    case SystemKind::kShredkvXChaCha: return "shredkv_xchacha";
    case SystemKind::kRocksDb: return "rocksdb";
    case SystemKind::kSqlite: return "sqlite";
  }
  return "unknown";
}

bool SystemAvailable(SystemKind kind) {
  switch (kind) {
    case SystemKind::kRocksDb:
#ifdef SHREDKV_BENCH_HAVE_ROCKSDB
      return true;
#else
      return false;
#endif
    case SystemKind::kSqlite:
#ifdef SHREDKV_BENCH_HAVE_SQLITE
      return true;
#else
      return false;
#endif
    default: return true;
  }
}

std::unique_ptr<System> NewSystem(SystemKind kind, const std::string& dir, const SystemOptions& o) {
  switch (kind) {
    case SystemKind::kRawLmdb: return NewRawLmdb(dir, o);
    case SystemKind::kShredkv: return NewShredkv(dir, o, shredkv::Cipher::kAuto);
    case SystemKind::kShredkvXChaCha: return NewShredkv(dir, o, shredkv::Cipher::kXChaCha20Poly1305);
#ifdef SHREDKV_BENCH_HAVE_ROCKSDB
    case SystemKind::kRocksDb: return NewRocksDb(dir, o);
#endif
#ifdef SHREDKV_BENCH_HAVE_SQLITE
    case SystemKind::kSqlite: return NewSqlite(dir, o);
#endif
    default: break;
  }
  Fail(std::string(SystemName(kind)) + " is not built into this binary");
}

void System::DeleteOneRow(std::span<const std::uint32_t>) { Fail("DeleteOneRow: not supported"); }
void System::MarkForPurge(std::span<const std::uint32_t>) { Fail("MarkForPurge: not supported"); }
std::uint64_t System::Purge(std::size_t) { Fail("Purge: not supported"); }
void System::PutRecord(std::size_t, std::uint64_t) { Fail("PutRecord: not supported"); }
void System::Restrict(std::size_t) { Fail("Restrict: not supported"); }
std::uint64_t System::Export(std::size_t) { Fail("Export: not supported"); }
std::uint64_t System::RotateEpoch() { Fail("RotateEpoch: not supported"); }
std::uint64_t System::Backup(const std::string&) { Fail("Backup: not supported"); }

}  // namespace shredkv_bench
