// GDPRbench on raw LMDB with hand-kept metadata tables — what an
// application does without shredkv: no encryption, the indexes kept by
// hand, a log table appended by every write. Each write is one durable
// commit (LMDB's default sync); LMDB serialises writers.
//   rec     key → record (person, metadata, value)
//   by_pur  purpose ‖ 0 ‖ key, by_rcp  recipient ‖ 0 ‖ key,
//   by_usr  person(8) ‖ key   → empty
//   log     seq(8) → entry
#include <lmdb.h>

#include <atomic>
#include <cstring>

#include "gdpr.h"

namespace shredkv_gdpr {
namespace {

void Check(int rc, const char* what) {
  if (rc != MDB_SUCCESS) Fail(std::string("lmdb ") + what + ": " + mdb_strerror(rc));
}

MDB_val Val(std::string_view s) { return MDB_val{s.size(), const_cast<char*>(s.data())}; }
std::string_view View(const MDB_val& v) { return {static_cast<const char*>(v.mv_data), v.mv_size}; }

void PutU64(std::string* out, std::uint64_t v) {
  for (int i = 7; i >= 0; --i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
std::uint64_t GetU64(std::string_view s) {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<unsigned char>(s[static_cast<std::size_t>(i)]);
  return v;
}
void PutStr(std::string* out, std::string_view s) {
  PutU64(out, s.size());
  out->append(s);
}
std::string_view GetStr(std::string_view* in) {
  const std::uint64_t n = GetU64(*in);
  std::string_view s = in->substr(8, n);
  in->remove_prefix(8 + n);
  return s;
}

std::string Encode(const GdprRecord& r) {
  std::string out;
  PutU64(&out, r.id);
  PutU64(&out, r.person);
  PutStr(&out, r.purpose);
  PutStr(&out, r.recipient);
  PutStr(&out, r.origin);
  PutU64(&out, r.decision ? 1 : 0);
  PutU64(&out, static_cast<std::uint64_t>(r.expires_ms));
  PutStr(&out, r.value);
  return out;
}
GdprRecord Decode(std::string_view in) {
  GdprRecord r;
  r.id = GetU64(in);
  r.person = GetU64(in.substr(8));
  in.remove_prefix(16);
  r.purpose = GetStr(&in);
  r.recipient = GetStr(&in);
  r.origin = GetStr(&in);
  r.decision = GetU64(in) != 0;
  r.expires_ms = static_cast<std::int64_t>(GetU64(in.substr(8)));
  in.remove_prefix(16);
  r.value = GetStr(&in);
  return r;
}
std::string IndexKey(std::string_view value, std::string_view key) {
  std::string k(value);
  k.push_back('\0');
  k.append(key);
  return k;
}
std::string UserKey(std::uint64_t person, std::string_view key) {
  std::string k;
  PutU64(&k, person);
  k.append(key);
  return k;
}

class LmdbGdpr final : public GdprSystem {
 public:
  explicit LmdbGdpr(const std::string& dir) {
    Check(mdb_env_create(&env_), "env create");
    Check(mdb_env_set_mapsize(env_, 16ull << 30), "mapsize");
    Check(mdb_env_set_maxdbs(env_, 8), "maxdbs");
    Check(mdb_env_set_maxreaders(env_, 126), "maxreaders");
    Check(mdb_env_open(env_, dir.c_str(), 0, 0600), "env open");
    MDB_txn* txn = nullptr;
    Check(mdb_txn_begin(env_, nullptr, 0, &txn), "begin");
    for (auto [name, dbi] : {std::pair{"rec", &rec_}, {"by_pur", &by_pur_}, {"by_rcp", &by_rcp_},
                             {"by_usr", &by_usr_}, {"log", &log_}}) {
      Check(mdb_dbi_open(txn, name, MDB_CREATE, dbi), "dbi open");
    }
    Check(mdb_txn_commit(txn), "commit");
  }
  ~LmdbGdpr() override { mdb_env_close(env_); }
  std::string_view name() const override { return "raw_lmdb"; }

  void Load(std::uint64_t n) override {
    constexpr std::uint64_t kBatch = 10000;
    for (std::uint64_t r0 = 0; r0 < n; r0 += kBatch) {
      Txn t(this, false);
      for (std::uint64_t r = r0; r < std::min(n, r0 + kBatch); ++r) PutRecord(t.txn, MakeRecord(r, n));
      t.Commit();
    }
  }
  void ErasePerson(std::uint64_t p) override {
    Txn t(this, false);
    for (std::uint64_t r : KeysOfUser(t.txn, p)) DeleteRecord(t.txn, r);
    Log(t.txn, "erase person " + std::to_string(p));
    t.Commit();
  }

  bool ReadData(const GdprRecord& r) override {
    Txn t(this, true);
    std::string_view v;
    if (!Get(t.txn, rec_, RecordKey(r.id), &v)) return false;
    return Decode(v).purpose == r.purpose;  // the processor's purpose check
  }
  std::size_t ReadDataByPurpose(std::string_view purpose) override {
    Txn t(this, true);
    return ReadIndex(t.txn, by_pur_, IndexKey(purpose, ""), kPage);
  }
  std::size_t ReadDataByRecipient(std::string_view recipient) override {
    Txn t(this, true);
    return ReadIndex(t.txn, by_rcp_, IndexKey(recipient, ""), SIZE_MAX);
  }
  std::size_t ReadDataByUser(std::uint64_t person) override {
    Txn t(this, true);
    return ReadIndex(t.txn, by_usr_, UserKey(person, ""), SIZE_MAX);
  }
  bool ReadMetadata(const GdprRecord& r) override {
    Txn t(this, true);
    std::string_view v;
    if (!Get(t.txn, rec_, RecordKey(r.id), &v)) return false;
    return !Decode(v).purpose.empty();
  }
  std::size_t ReadLogs(std::uint64_t after, std::size_t max) override {
    Txn t(this, true);
    std::string from;
    PutU64(&from, after + 1);
    MDB_cursor* c = nullptr;
    Check(mdb_cursor_open(t.txn, log_, &c), "cursor");
    MDB_val k = Val(from), v;
    std::size_t n = 0;
    for (int rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == MDB_SUCCESS && n < max;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
      ++n;
    }
    mdb_cursor_close(c);
    return n;
  }
  std::uint64_t LogLength() override { return log_seq_.load(); }
  bool VerifyDeleted(std::uint64_t person) override {
    Txn t(this, true);
    std::string_view v;
    return KeysOfUser(t.txn, person).empty() && !Get(t.txn, rec_, RecordKey(person * kRecordsPerPerson), &v);
  }

  void Insert(const GdprRecord& r) override {
    Txn t(this, false);
    PutRecord(t.txn, r);
    Log(t.txn, "insert " + RecordKey(r.id));
    t.Commit();
  }
  void UpdateData(const GdprRecord& r, std::string_view value) override {
    Modify(r.id, [&](GdprRecord* rec) { rec->value.assign(value); }, "update data");
  }
  void UpdateMetadata(const GdprRecord& r, std::string_view recipient) override {
    Modify(r.id, [&](GdprRecord* rec) { rec->recipient.assign(recipient); }, "update metadata");
  }
  std::size_t UpdateMetadataByUser(std::uint64_t person, std::string_view recipient) override {
    Txn t(this, false);
    const auto ids = KeysOfUser(t.txn, person);
    for (std::uint64_t id : ids) SetRecipient(t.txn, id, recipient);
    Log(t.txn, "update metadata of person " + std::to_string(person));
    t.Commit();
    return ids.size();
  }
  std::size_t UpdateMetadataByPurpose(std::string_view purpose, std::string_view recipient) override {
    Txn t(this, false);
    const auto ids = IndexIds(t.txn, by_pur_, IndexKey(purpose, ""), kPage);
    for (std::uint64_t id : ids) SetRecipient(t.txn, id, recipient);
    Log(t.txn, "update metadata of purpose " + std::string(purpose));
    t.Commit();
    return ids.size();
  }
  std::size_t DeleteByRecipient(std::string_view recipient) override {
    Txn t(this, false);
    const auto ids = IndexIds(t.txn, by_rcp_, IndexKey(recipient, ""), SIZE_MAX);
    for (std::uint64_t id : ids) DeleteRecord(t.txn, id);
    Log(t.txn, "delete recipient " + std::string(recipient));
    t.Commit();
    return ids.size();
  }
  void Delete(const GdprRecord& r) override {
    Txn t(this, false);
    DeleteRecord(t.txn, r.id);
    Log(t.txn, "delete " + RecordKey(r.id));
    t.Commit();
  }

 private:
  struct Txn {
    Txn(LmdbGdpr* s, bool read_only) {
      Check(mdb_txn_begin(s->env_, nullptr, read_only ? MDB_RDONLY : 0u, &txn), "begin");
    }
    ~Txn() {
      if (txn != nullptr) mdb_txn_abort(txn);
    }
    void Commit() {
      Check(mdb_txn_commit(txn), "commit");
      txn = nullptr;
    }
    MDB_txn* txn = nullptr;
  };

  bool Get(MDB_txn* txn, MDB_dbi dbi, std::string_view key, std::string_view* out) {
    MDB_val k = Val(key), v;
    const int rc = mdb_get(txn, dbi, &k, &v);
    if (rc == MDB_NOTFOUND) return false;
    Check(rc, "get");
    *out = View(v);
    return true;
  }
  void Put(MDB_txn* txn, MDB_dbi dbi, std::string_view key, std::string_view value) {
    MDB_val k = Val(key), v = Val(value);
    Check(mdb_put(txn, dbi, &k, &v, 0), "put");
  }
  void Del(MDB_txn* txn, MDB_dbi dbi, std::string_view key) {
    MDB_val k = Val(key);
    const int rc = mdb_del(txn, dbi, &k, nullptr);
    if (rc != MDB_NOTFOUND) Check(rc, "del");
  }
  void PutRecord(MDB_txn* txn, const GdprRecord& r) {
    const std::string key = RecordKey(r.id);
    Put(txn, rec_, key, Encode(r));
    Put(txn, by_pur_, IndexKey(r.purpose, key), "");
    Put(txn, by_rcp_, IndexKey(r.recipient, key), "");
    Put(txn, by_usr_, UserKey(r.person, key), "");
  }
  void DeleteRecord(MDB_txn* txn, std::uint64_t id) {
    const std::string key = RecordKey(id);
    std::string_view v;
    if (!Get(txn, rec_, key, &v)) return;
    const GdprRecord r = Decode(v);
    Del(txn, by_pur_, IndexKey(r.purpose, key));
    Del(txn, by_rcp_, IndexKey(r.recipient, key));
    Del(txn, by_usr_, UserKey(r.person, key));
    Del(txn, rec_, key);
  }
  void SetRecipient(MDB_txn* txn, std::uint64_t id, std::string_view recipient) {
    const std::string key = RecordKey(id);
    std::string_view v;
    if (!Get(txn, rec_, key, &v)) return;
    GdprRecord r = Decode(v);
    Del(txn, by_rcp_, IndexKey(r.recipient, key));
    r.recipient.assign(recipient);
    Put(txn, by_rcp_, IndexKey(r.recipient, key), "");
    Put(txn, rec_, key, Encode(r));
  }
  template <typename Fn>
  void Modify(std::uint64_t id, Fn&& fn, const char* what) {
    Txn t(this, false);
    std::string_view v;
    if (!Get(t.txn, rec_, RecordKey(id), &v)) return;
    GdprRecord r = Decode(v);
    const std::string old_recipient = r.recipient;
    fn(&r);
    if (r.recipient != old_recipient) {
      SetRecipient(t.txn, id, r.recipient);
    } else {
      Put(t.txn, rec_, RecordKey(id), Encode(r));
    }
    Log(t.txn, std::string(what) + " " + RecordKey(id));
    t.Commit();
  }
  void Log(MDB_txn* txn, const std::string& entry) {
    std::string k;
    PutU64(&k, log_seq_.fetch_add(1) + 1);  // under LMDB's writer lock
    MDB_val kv = Val(k), v = Val(entry);
    Check(mdb_put(txn, log_, &kv, &v, MDB_APPEND), "log");
  }
  // The record ids under `prefix` of an index (the key after the prefix).
  std::vector<std::uint64_t> IndexIds(MDB_txn* txn, MDB_dbi dbi, const std::string& prefix, std::size_t max) {
    std::vector<std::uint64_t> ids;
    MDB_cursor* c = nullptr;
    Check(mdb_cursor_open(txn, dbi, &c), "cursor");
    MDB_val k = Val(prefix), v;
    for (int rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
         rc == MDB_SUCCESS && ids.size() < max && View(k).substr(0, prefix.size()) == prefix;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
      ids.push_back(std::stoull(std::string(View(k).substr(prefix.size() + 1))));  // "r<id>"
    }
    mdb_cursor_close(c);
    return ids;
  }
  std::vector<std::uint64_t> KeysOfUser(MDB_txn* txn, std::uint64_t person) {
    return IndexIds(txn, by_usr_, UserKey(person, ""), SIZE_MAX);
  }
  // Reads the records an index lists (as the query would return them).
  std::size_t ReadIndex(MDB_txn* txn, MDB_dbi dbi, const std::string& prefix, std::size_t max) {
    std::size_t n = 0;
    for (std::uint64_t id : IndexIds(txn, dbi, prefix, max)) {
      std::string_view v;
      if (Get(txn, rec_, RecordKey(id), &v) && !Decode(v).value.empty()) ++n;
    }
    return n;
  }

  MDB_env* env_ = nullptr;
  MDB_dbi rec_ = 0, by_pur_ = 0, by_rcp_ = 0, by_usr_ = 0, log_ = 0;
  std::atomic<std::uint64_t> log_seq_{0};
};

}  // namespace

std::unique_ptr<GdprSystem> NewRawLmdb(const std::string& dir) { return std::make_unique<LmdbGdpr>(dir); }

}  // namespace shredkv_gdpr
