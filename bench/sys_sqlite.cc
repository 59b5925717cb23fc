// sqlite: one WITHOUT ROWID table per shredkv table (k BLOB PRIMARY KEY,
// v BLOB), WAL journal, a 256 MiB page cache, prepared statements, one
// transaction per batch. synchronous=OFF for Durability::kNoSync (nothing
// fsynced), FULL otherwise; secure_delete=ON for the erase world.
#include <sqlite3.h>

#include <algorithm>
#include <array>
#include <numeric>

#include "common.h"

namespace shredkv_bench {
namespace {

enum : std::size_t { kPeople, kIdent, kIdentByPerson, kProfiles, kEvents, kAnalytics, kTables };
constexpr const char* kTableNames[kTables] = {"people", "ident", "ident_by_person", "profiles", "events", "analytics"};

class Sqlite final : public System {
 public:
  Sqlite(const std::string& dir, const SystemOptions& o) : durable_(o.durability != shredkv::Durability::kNoSync), rng_(0x12345) {
    if (sqlite3_open_v2((dir + "/bench.db").c_str(), &db_,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr) != SQLITE_OK) {
      Fail(std::string("sqlite open: ") + sqlite3_errmsg(db_));
    }
    Exec("PRAGMA journal_mode=WAL");
    Exec(o.durability == shredkv::Durability::kNoSync ? "PRAGMA synchronous=OFF" : "PRAGMA synchronous=FULL");
    Exec("PRAGMA cache_size=-262144");
    Exec(o.secure_delete ? "PRAGMA secure_delete=ON" : "PRAGMA secure_delete=OFF");
    for (std::size_t i = 0; i < kTables; ++i) {
      const std::string t = kTableNames[i];
      Exec("CREATE TABLE IF NOT EXISTS " + t + " (k BLOB PRIMARY KEY, v BLOB) WITHOUT ROWID");
      insert_[i] = Prepare("INSERT INTO " + t + " (k, v) VALUES (?1, ?2)");
      delete_[i] = Prepare("DELETE FROM " + t + " WHERE k = ?1");
    }
    get_ident_ = Prepare("SELECT v FROM ident WHERE k = ?1");
    get_profile_ = Prepare("SELECT v FROM profiles WHERE k = ?1");
    delete_events_ = Prepare("DELETE FROM events WHERE k >= ?1 AND k < ?2");
    begin_ = Prepare("BEGIN");
    commit_ = Prepare("COMMIT");
  }
  ~Sqlite() override {
    for (sqlite3_stmt* s : insert_) sqlite3_finalize(s);
    for (sqlite3_stmt* s : delete_) sqlite3_finalize(s);
    for (sqlite3_stmt* s : {get_ident_, get_profile_, delete_events_, begin_, commit_}) sqlite3_finalize(s);
    sqlite3_close(db_);
  }

  void AddPeople(std::size_t n, std::size_t batch) override {
    const RowSizes& rs = row_sizes();
    const std::size_t end = people_ + n;
    while (people_ < end) {
      Step(begin_);
      const std::size_t stop = std::min(end, people_ + batch);
      for (std::size_t i = people_; i < stop; ++i) {
        std::string id(16, '\0'), hash(32, '\0');
        rng_.Fill(reinterpret_cast<std::uint8_t*>(id.data()), id.size());
        rng_.Fill(reinterpret_cast<std::uint8_t*>(hash.data()), hash.size());
        Put(kPeople, id, PoolBytes(rs.person_row, i));
        Put(kIdent, hash, id + std::string(8, '\0'));
        Put(kIdentByPerson, id + hash, std::string(8, '\0'));
        Put(kProfiles, id, PoolBytes(rs.profile_row, i + 7));
        ids_.push_back(std::move(id));
        hashes_.push_back(std::move(hash));
      }
      Step(commit_);
      people_ = stop;
    }
  }

  struct Batch final : PreparedBatch {
    std::vector<std::string> event_keys, analytics_keys;
    std::vector<std::string_view> event_values, analytics_values;
  };

  std::unique_ptr<PreparedBatch> PrepareEvents(std::span<const EventRef> events) override {
    const RowSizes& rs = row_sizes();
    auto p = std::make_unique<Batch>();
    for (const EventRef& e : events) {
      const std::uint64_t seq = seq_++;
      p->event_keys.push_back(EventKey(ids_[e.person], e.ts, seq));
      p->analytics_keys.push_back(AnalyticsKey(e.ts, seq));
      p->event_values.push_back(PoolBytes(rs.event_row, seq));
      p->analytics_values.push_back(PoolBytes(rs.analytics_row, seq + 3));
    }
    return p;
  }

  void CommitEvents(PreparedBatch& batch) override {
    auto& b = static_cast<Batch&>(batch);
    Step(begin_);
    for (std::size_t i = 0; i < b.event_keys.size(); ++i) {
      Put(kEvents, b.event_keys[i], b.event_values[i]);
      Put(kAnalytics, b.analytics_keys[i], b.analytics_values[i]);
    }
    Step(commit_);
  }

  std::vector<std::uint32_t> PeopleInKeyOrder() const override {
    std::vector<std::uint32_t> order(people_);
    std::iota(order.begin(), order.end(), 0u);
    std::sort(order.begin(), order.end(), [&](std::uint32_t a, std::uint32_t b) { return ids_[a] < ids_[b]; });
    return order;
  }

  // The two selects, in one (implicit) read transaction each.
  std::size_t Lookup(std::size_t i) override {
    Bind(get_ident_, 1, hashes_[i]);
    if (sqlite3_step(get_ident_) != SQLITE_ROW) Fail("sqlite: identifier not found");
    const std::string owner(static_cast<const char*>(sqlite3_column_blob(get_ident_, 0)), 16);
    sqlite3_reset(get_ident_);
    Bind(get_profile_, 1, owner);
    if (sqlite3_step(get_profile_) != SQLITE_ROW) Fail("sqlite: profile not found");
    profile_.assign(static_cast<const char*>(sqlite3_column_blob(get_profile_, 0)),
                    static_cast<std::size_t>(sqlite3_column_bytes(get_profile_, 0)));
    sqlite3_reset(get_profile_);
    return profile_.size();
  }

  void SetSynced(bool synced) override {
    Exec(synced || durable_ ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=OFF");
  }

  void Erase(std::span<const std::uint32_t> people) override {
    Step(begin_);
    for (std::uint32_t p : people) {
      const std::string& id = ids_[p];
      Bind(delete_events_, 1, id);
      Bind(delete_events_, 2, id + std::string(17, '\xff'));
      Step(delete_events_);
      Del(kPeople, id);
      Del(kProfiles, id);
      Del(kIdent, hashes_[p]);
      Del(kIdentByPerson, id + hashes_[p]);
    }
    Step(commit_);
  }

 private:
  void Exec(const std::string& sql) {
    char* err = nullptr;
    if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
      std::string msg = err != nullptr ? err : "?";
      sqlite3_free(err);
      Fail("sqlite " + sql + ": " + msg);
    }
  }
  sqlite3_stmt* Prepare(const std::string& sql) {
    sqlite3_stmt* s = nullptr;
    if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &s, nullptr) != SQLITE_OK) {
      Fail("sqlite prepare " + sql + ": " + sqlite3_errmsg(db_));
    }
    return s;
  }
  void Bind(sqlite3_stmt* s, int i, std::string_view v) {
    if (sqlite3_bind_blob(s, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT) != SQLITE_OK) {
      Fail(std::string("sqlite bind: ") + sqlite3_errmsg(db_));
    }
  }
  void Step(sqlite3_stmt* s) {
    const int rc = sqlite3_step(s);
    sqlite3_reset(s);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) Fail(std::string("sqlite step: ") + sqlite3_errmsg(db_));
  }
  void Put(std::size_t table, std::string_view k, std::string_view v) {
    sqlite3_stmt* s = insert_[table];
    Bind(s, 1, k);
    Bind(s, 2, v);
    Step(s);
  }
  void Del(std::size_t table, std::string_view k) {
    sqlite3_stmt* s = delete_[table];
    Bind(s, 1, k);
    Step(s);
  }

  sqlite3* db_ = nullptr;
  std::array<sqlite3_stmt*, kTables> insert_{}, delete_{};
  sqlite3_stmt *get_ident_ = nullptr, *get_profile_ = nullptr, *delete_events_ = nullptr;
  sqlite3_stmt *begin_ = nullptr, *commit_ = nullptr;
  bool durable_;  // opened with synchronous=FULL
  Rng rng_;
  std::vector<std::string> ids_, hashes_;
  std::uint64_t seq_ = 1;
  std::string profile_;
};

}  // namespace

std::unique_ptr<System> NewSqlite(const std::string& dir, const SystemOptions& o) {
  return std::make_unique<Sqlite>(dir, o);
}

}  // namespace shredkv_bench
