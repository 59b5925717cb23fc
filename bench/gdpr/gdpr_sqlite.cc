// GDPRbench on SQLite, as the GDPRbench paper's relational baselines keep
// it: one table with the metadata as columns and an index on each queried
// column, a log table, WAL with synchronous=FULL (each write durable), one
// connection per thread.
#include <sqlite3.h>

#include <atomic>
#include <map>
#include <mutex>
#include <thread>

#include "gdpr.h"

namespace shredkv_gdpr {
namespace {

class Conn {
 public:
  explicit Conn(const std::string& path) {
    if (sqlite3_open(path.c_str(), &db_) != SQLITE_OK) Fail("sqlite open " + path);
    sqlite3_busy_timeout(db_, 60000);
    Exec("PRAGMA journal_mode=WAL");
    Exec("PRAGMA synchronous=FULL");
  }
  ~Conn() {
    for (auto& [sql, st] : statements_) sqlite3_finalize(st);
    sqlite3_close(db_);
  }
  void Exec(const char* sql) {
    char* err = nullptr;
    if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
      const std::string msg = err != nullptr ? err : "?";
      sqlite3_free(err);
      Fail(std::string("sqlite ") + sql + ": " + msg);
    }
  }
  // A prepared statement, reset, with `bind` applied.
  sqlite3_stmt* Prepare(const char* sql) {
    sqlite3_stmt*& st = statements_[sql];
    if (st == nullptr && sqlite3_prepare_v2(db_, sql, -1, &st, nullptr) != SQLITE_OK) {
      Fail(std::string("sqlite prepare ") + sql + ": " + sqlite3_errmsg(db_));
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return st;
  }
  void Text(sqlite3_stmt* st, int i, std::string_view s) {
    sqlite3_bind_text(st, i, s.data(), static_cast<int>(s.size()), SQLITE_TRANSIENT);
  }
  // Steps `st` to its end; returns the rows it produced.
  std::size_t Run(sqlite3_stmt* st) {
    std::size_t rows = 0;
    for (;;) {
      const int rc = sqlite3_step(st);
      if (rc == SQLITE_ROW) {
        ++rows;
        continue;
      }
      if (rc == SQLITE_DONE) return rows;
      Fail(std::string("sqlite step: ") + sqlite3_errmsg(db_));
    }
  }

 private:
  sqlite3* db_ = nullptr;
  std::map<const char*, sqlite3_stmt*> statements_;
};

class SqliteGdpr final : public GdprSystem {
 public:
  explicit SqliteGdpr(const std::string& dir) : path_(dir + "/gdpr.db") {
    Conn& c = Mine();
    c.Exec(
        "CREATE TABLE IF NOT EXISTS rec (k TEXT PRIMARY KEY, usr INTEGER, pur TEXT, rcp TEXT, src TEXT, "
        "dec INTEGER, exp INTEGER, val BLOB) WITHOUT ROWID");
    c.Exec("CREATE INDEX IF NOT EXISTS rec_usr ON rec(usr)");
    c.Exec("CREATE INDEX IF NOT EXISTS rec_pur ON rec(pur)");
    c.Exec("CREATE INDEX IF NOT EXISTS rec_rcp ON rec(rcp)");
    c.Exec("CREATE INDEX IF NOT EXISTS rec_exp ON rec(exp)");
    c.Exec("CREATE TABLE IF NOT EXISTS log (seq INTEGER PRIMARY KEY, entry TEXT)");
  }
  std::string_view name() const override { return "sqlite"; }

  void Load(std::uint64_t n) override {
    Conn& c = Mine();
    constexpr std::uint64_t kBatch = 10000;
    for (std::uint64_t r0 = 0; r0 < n; r0 += kBatch) {
      c.Exec("BEGIN");
      for (std::uint64_t r = r0; r < std::min(n, r0 + kBatch); ++r) PutRecord(c, MakeRecord(r, n));
      c.Exec("COMMIT");
    }
  }
  void ErasePerson(std::uint64_t p) override {
    Write([&](Conn& c) {
      auto* st = c.Prepare("DELETE FROM rec WHERE usr = ?");
      sqlite3_bind_int64(st, 1, static_cast<sqlite3_int64>(p));
      c.Run(st);
      Log(c, "erase person " + std::to_string(p));
    });
  }

  bool ReadData(const GdprRecord& r) override {
    Conn& c = Mine();
    auto* st = c.Prepare("SELECT val FROM rec WHERE k = ? AND pur = ?");
    c.Text(st, 1, RecordKey(r.id));
    c.Text(st, 2, r.purpose);
    return c.Run(st) == 1;
  }
  std::size_t ReadDataByPurpose(std::string_view purpose) override {
    Conn& c = Mine();
    auto* st = c.Prepare("SELECT val FROM rec WHERE pur = ? LIMIT 10");
    c.Text(st, 1, purpose);
    return c.Run(st);
  }
  std::size_t ReadDataByRecipient(std::string_view recipient) override {
    Conn& c = Mine();
    auto* st = c.Prepare("SELECT val FROM rec WHERE rcp = ?");
    c.Text(st, 1, recipient);
    return c.Run(st);
  }
  std::size_t ReadDataByUser(std::uint64_t person) override {
    Conn& c = Mine();
    auto* st = c.Prepare("SELECT val FROM rec WHERE usr = ?");
    sqlite3_bind_int64(st, 1, static_cast<sqlite3_int64>(person));
    return c.Run(st);
  }
  bool ReadMetadata(const GdprRecord& r) override {
    Conn& c = Mine();
    auto* st = c.Prepare("SELECT usr, pur, rcp, src, dec, exp FROM rec WHERE k = ?");
    c.Text(st, 1, RecordKey(r.id));
    return c.Run(st) == 1;
  }
  std::size_t ReadLogs(std::uint64_t after, std::size_t max) override {
    Conn& c = Mine();
    auto* st = c.Prepare("SELECT entry FROM log WHERE seq > ? ORDER BY seq LIMIT ?");
    sqlite3_bind_int64(st, 1, static_cast<sqlite3_int64>(after));
    sqlite3_bind_int64(st, 2, static_cast<sqlite3_int64>(max));
    return c.Run(st);
  }
  std::uint64_t LogLength() override {
    Conn& c = Mine();
    auto* st = c.Prepare("SELECT seq FROM log");
    return c.Run(st);
  }
  bool VerifyDeleted(std::uint64_t person) override {
    Conn& c = Mine();
    auto* st = c.Prepare("SELECT k FROM rec WHERE usr = ?");
    sqlite3_bind_int64(st, 1, static_cast<sqlite3_int64>(person));
    return c.Run(st) == 0;
  }

  void Insert(const GdprRecord& r) override {
    Write([&](Conn& c) {
      PutRecord(c, r);
      Log(c, "insert " + RecordKey(r.id));
    });
  }
  void UpdateData(const GdprRecord& r, std::string_view value) override {
    Write([&](Conn& c) {
      auto* st = c.Prepare("UPDATE rec SET val = ? WHERE k = ?");
      sqlite3_bind_blob(st, 1, value.data(), static_cast<int>(value.size()), SQLITE_TRANSIENT);
      c.Text(st, 2, RecordKey(r.id));
      c.Run(st);
      Log(c, "update data " + RecordKey(r.id));
    });
  }
  void UpdateMetadata(const GdprRecord& r, std::string_view recipient) override {
    Write([&](Conn& c) {
      auto* st = c.Prepare("UPDATE rec SET rcp = ? WHERE k = ?");
      c.Text(st, 1, recipient);
      c.Text(st, 2, RecordKey(r.id));
      c.Run(st);
      Log(c, "update metadata " + RecordKey(r.id));
    });
  }
  std::size_t UpdateMetadataByUser(std::uint64_t person, std::string_view recipient) override {
    std::size_t n = 0;
    Write([&](Conn& c) {
      auto* st = c.Prepare("UPDATE rec SET rcp = ? WHERE usr = ?");
      c.Text(st, 1, recipient);
      sqlite3_bind_int64(st, 2, static_cast<sqlite3_int64>(person));
      c.Run(st);
      n = 1;
      Log(c, "update metadata of person " + std::to_string(person));
    });
    return n;
  }
  std::size_t UpdateMetadataByPurpose(std::string_view purpose, std::string_view recipient) override {
    Write([&](Conn& c) {
      auto* st = c.Prepare("UPDATE rec SET rcp = ? WHERE k IN (SELECT k FROM rec WHERE pur = ? LIMIT 10)");
      c.Text(st, 1, recipient);
      c.Text(st, 2, purpose);
      c.Run(st);
      Log(c, "update metadata of purpose " + std::string(purpose));
    });
    return kPage;
  }
  std::size_t DeleteByRecipient(std::string_view recipient) override {
    Write([&](Conn& c) {
      auto* st = c.Prepare("DELETE FROM rec WHERE rcp = ?");
      c.Text(st, 1, recipient);
      c.Run(st);
      Log(c, "delete recipient " + std::string(recipient));
    });
    return 1;
  }
  void Delete(const GdprRecord& r) override {
    Write([&](Conn& c) {
      auto* st = c.Prepare("DELETE FROM rec WHERE k = ?");
      c.Text(st, 1, RecordKey(r.id));
      c.Run(st);
      Log(c, "delete " + RecordKey(r.id));
    });
  }

 private:
  // This thread's connection.
  Conn& Mine() {
    std::lock_guard lock(mu_);
    auto& c = conns_[std::this_thread::get_id()];
    if (!c) c = std::make_unique<Conn>(path_);
    return *c;
  }
  template <typename Fn>
  void Write(Fn&& fn) {
    Conn& c = Mine();
    c.Exec("BEGIN IMMEDIATE");
    fn(c);
    c.Exec("COMMIT");
  }
  void PutRecord(Conn& c, const GdprRecord& r) {
    auto* st = c.Prepare("INSERT OR REPLACE INTO rec VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
    c.Text(st, 1, RecordKey(r.id));
    sqlite3_bind_int64(st, 2, static_cast<sqlite3_int64>(r.person));
    c.Text(st, 3, r.purpose);
    c.Text(st, 4, r.recipient);
    c.Text(st, 5, r.origin);
    sqlite3_bind_int(st, 6, r.decision ? 1 : 0);
    sqlite3_bind_int64(st, 7, r.expires_ms);
    sqlite3_bind_blob(st, 8, r.value.data(), static_cast<int>(r.value.size()), SQLITE_TRANSIENT);
    c.Run(st);
  }
  void Log(Conn& c, const std::string& entry) {
    auto* st = c.Prepare("INSERT INTO log (entry) VALUES (?)");
    c.Text(st, 1, entry);
    c.Run(st);
  }

  std::string path_;
  std::mutex mu_;
  std::map<std::thread::id, std::unique_ptr<Conn>> conns_;
};

}  // namespace

std::unique_ptr<GdprSystem> NewSqlite(const std::string& dir) { return std::make_unique<SqliteGdpr>(dir); }

}  // namespace shredkv_gdpr
