// raw_lmdb: the same tables, keys and value sizes as shredkv's `data`
// environment in one LMDB environment opened with the flags shredkv uses
// (MDB_NOTLS | MDB_NORDAHEAD, plus MDB_NOSYNC for Durability::kNoSync),
// values stored in the clear, no keys environment, no crypto.
#include <lmdb.h>
#include <sodium.h>

#include <algorithm>
#include <cstring>
#include <deque>
#include <filesystem>
#include <numeric>

#include "common.h"

namespace shredkv_bench {
namespace {

void Check(int rc, const char* what) {
  if (rc != MDB_SUCCESS) Fail(std::string("lmdb ") + what + ": " + mdb_strerror(rc));
}

MDB_val Val(std::string_view s) { return MDB_val{s.size(), const_cast<char*>(s.data())}; }
std::string_view View(const MDB_val& v) { return {static_cast<const char*>(v.mv_data), v.mv_size}; }

// A write transaction that aborts unless committed.
class WriteTxn {
 public:
  explicit WriteTxn(MDB_env* env) { Check(mdb_txn_begin(env, nullptr, 0, &txn_), "begin"); }
  ~WriteTxn() {
    if (txn_ != nullptr) mdb_txn_abort(txn_);
  }
  MDB_txn* get() const { return txn_; }
  void Put(MDB_dbi dbi, std::string_view k, std::string_view v) {
    MDB_val key = Val(k), val = Val(v);
    Check(mdb_put(txn_, dbi, &key, &val, 0), "put");
  }
  // True if the row existed.
  bool Del(MDB_dbi dbi, std::string_view k) {
    MDB_val key = Val(k);
    const int rc = mdb_del(txn_, dbi, &key, nullptr);
    if (rc == MDB_NOTFOUND) return false;
    Check(rc, "del");
    return true;
  }
  // Deletes up to `limit` rows whose key starts with `prefix` with one
  // cursor walk; returns how many.
  std::uint64_t DelPrefix(MDB_dbi dbi, std::string_view prefix, std::uint64_t limit) {
    MDB_cursor* c = nullptr;
    Check(mdb_cursor_open(txn_, dbi, &c), "cursor");
    MDB_val k = Val(prefix), v{0, nullptr};
    std::uint64_t n = 0;
    int rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
    while (rc == MDB_SUCCESS && n < limit && View(k).substr(0, prefix.size()) == prefix) {
      rc = mdb_cursor_del(c, 0);
      if (rc != MDB_SUCCESS) break;
      ++n;
      rc = mdb_cursor_get(c, &k, &v, MDB_GET_CURRENT);
    }
    mdb_cursor_close(c);
    if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND && rc != EINVAL) Check(rc, "cursor delete");
    return n;
  }
  void Commit() {
    const int rc = mdb_txn_commit(txn_);
    txn_ = nullptr;
    Check(rc, "commit");
  }

 private:
  MDB_txn* txn_ = nullptr;
};

struct RawBatch final : PreparedBatch {
  std::vector<std::string> event_keys, analytics_keys;
  std::vector<std::string_view> event_values, analytics_values;
  std::vector<std::string> sealed;  // owns sealed event values (export world)
};

class RawLmdb final : public System {
 public:
  RawLmdb(const std::string& dir, const SystemOptions& o) : opts_(o), rng_(0x12345) {
    Check(mdb_env_create(&env_), "env create");
    Check(mdb_env_set_maxdbs(env_, 8), "maxdbs");
    Check(mdb_env_set_maxreaders(env_, 126), "maxreaders");
    Check(mdb_env_set_mapsize(env_, 16ull << 30), "mapsize");
    unsigned int flags = MDB_NOTLS | MDB_NORDAHEAD;
    if (o.durability == shredkv::Durability::kNoMetaSync) flags |= MDB_NOMETASYNC;
    if (o.durability == shredkv::Durability::kNoSync) flags |= MDB_NOSYNC;
    Check(mdb_env_open(env_, dir.c_str(), flags, 0600), "env open");
    WriteTxn txn(env_);
    for (auto [name, dbi] : {std::pair{"people", &people_t_}, {"ident", &ident_t_}, {"ident_by_person", &ibp_t_},
                             {"profiles", &profiles_t_}, {"events", &events_t_}, {"analytics", &analytics_t_},
                             {"records", &records_t_}, {"restrictions", &restrictions_t_}}) {
      Check(mdb_dbi_open(txn.get(), name, MDB_CREATE, dbi), "dbi open");
    }
    txn.Commit();
    randombytes_buf(seal_key_, sizeof seal_key_);
  }
  ~RawLmdb() override { mdb_env_close(env_); }

  void AddPeople(std::size_t n, std::size_t batch) override {
    const RowSizes& rs = row_sizes();
    const std::size_t end = people_ + n;
    while (people_ < end) {
      WriteTxn txn(env_);
      const std::size_t stop = std::min(end, people_ + batch);
      for (std::size_t i = people_; i < stop; ++i) {
        std::string id(16, '\0'), hash(32, '\0');
        rng_.Fill(reinterpret_cast<std::uint8_t*>(id.data()), id.size());
        rng_.Fill(reinterpret_cast<std::uint8_t*>(hash.data()), hash.size());
        txn.Put(people_t_, id, PoolBytes(rs.person_row, i));
        txn.Put(ident_t_, hash, id + std::string(8, '\0'));
        txn.Put(ibp_t_, id + hash, std::string(8, '\0'));
        txn.Put(profiles_t_, id, PoolBytes(rs.profile_row, i + 7));
        ids_.push_back(std::move(id));
        hashes_.push_back(std::move(hash));
      }
      txn.Commit();
      people_ = stop;
    }
  }

  std::unique_ptr<PreparedBatch> PrepareEvents(std::span<const EventRef> events) override {
    const RowSizes& rs = row_sizes();
    auto p = std::make_unique<RawBatch>();
    p->event_keys.reserve(events.size());
    p->analytics_keys.reserve(events.size());
    for (const EventRef& e : events) {
      const std::uint64_t seq = seq_++;
      p->event_keys.push_back(EventKey(ids_[e.person], e.ts, seq));
      p->analytics_keys.push_back(AnalyticsKey(e.ts, seq));
      p->analytics_values.push_back(PoolBytes(rs.analytics_row, seq + 3));
      if (opts_.sealed_event_rows) {
        p->sealed.push_back(Seal(p->event_keys.back(), PoolBytes(rs.event_payload, seq)));
      } else {
        p->event_values.push_back(PoolBytes(rs.event_row, seq));
      }
    }
    if (opts_.sealed_event_rows) {
      for (const std::string& s : p->sealed) p->event_values.push_back(s);
    }
    return p;
  }

  void CommitEvents(PreparedBatch& batch) override {
    auto& b = static_cast<RawBatch&>(batch);
    WriteTxn txn(env_);
    for (std::size_t i = 0; i < b.event_keys.size(); ++i) {
      txn.Put(events_t_, b.event_keys[i], b.event_values[i]);
      txn.Put(analytics_t_, b.analytics_keys[i], b.analytics_values[i]);
    }
    txn.Commit();
  }

  std::vector<std::uint32_t> PeopleInKeyOrder() const override {
    std::vector<std::uint32_t> order(people_);
    std::iota(order.begin(), order.end(), 0u);
    std::sort(order.begin(), order.end(), [&](std::uint32_t a, std::uint32_t b) { return ids_[a] < ids_[b]; });
    return order;
  }

  // The two gets, in one read transaction; the profile is copied out.
  std::size_t Lookup(std::size_t i) override {
    MDB_txn* txn = nullptr;
    Check(mdb_txn_begin(env_, nullptr, MDB_RDONLY, &txn), "begin read");
    MDB_val k = Val(hashes_[i]), v;
    int rc = mdb_get(txn, ident_t_, &k, &v);
    if (rc == MDB_SUCCESS) {
      k = MDB_val{16, v.mv_data};
      rc = mdb_get(txn, profiles_t_, &k, &v);
      if (rc == MDB_SUCCESS) profile_.assign(static_cast<const char*>(v.mv_data), v.mv_size);
    }
    mdb_txn_abort(txn);
    Check(rc, "lookup");
    return profile_.size();
  }

  // Deletes every row of the people (events by cursor walk), in one commit.
  // Analytics rows stay, as with shredkv's default AnalyticsOnErase::kKeep.
  void Erase(std::span<const std::uint32_t> people) override {
    WriteTxn txn(env_);
    for (std::uint32_t p : people) DeleteAll(txn, p, ~std::uint64_t{0});
    txn.Commit();
  }

  // The record row (person ‖ collection ‖ key → value), one commit.
  void PutRecord(std::size_t i, std::uint64_t n) override {
    WriteTxn txn(env_);
    std::string key = ids_[i] + "orders";
    key.append(reinterpret_cast<const char*>(&n), sizeof n);
    txn.Put(records_t_, key, PoolBytes(100, n));
    txn.Commit();
  }

  // The restriction row (person → flag ‖ time), one commit.
  void Restrict(std::size_t i) override {
    WriteTxn txn(env_);
    txn.Put(restrictions_t_, ids_[i], PoolBytes(16, i));
    txn.Commit();
  }

  void SetSynced(bool synced) override {
    const bool opened_unsynced = opts_.durability == shredkv::Durability::kNoSync;
    Check(mdb_env_set_flags(env_, MDB_NOSYNC, synced || !opened_unsynced ? 0 : 1), "set flags");
  }

  void DeleteOneRow(std::span<const std::uint32_t> people) override {
    WriteTxn txn(env_);
    for (std::uint32_t p : people) txn.Del(profiles_t_, ids_[p]);
    txn.Commit();
    queue_.insert(queue_.end(), people.begin(), people.end());
  }

  void MarkForPurge(std::span<const std::uint32_t> people) override {
    queue_.insert(queue_.end(), people.begin(), people.end());
  }

  // Range delete of queued people's rows, up to `budget` rows, one commit.
  std::uint64_t Purge(std::size_t budget) override {
    WriteTxn txn(env_);
    std::uint64_t deleted = 0;
    while (!queue_.empty() && deleted < budget) {
      const std::uint64_t n = DeleteAll(txn, queue_.front(), budget - deleted);
      deleted += n;
      if (deleted < budget) queue_.pop_front();  // person complete
    }
    txn.Commit();
    return deleted;
  }

  // Cursor scan of the person's event rows, each opened with XChaCha20-Poly1305.
  std::uint64_t Backup(const std::string& dir) override {
    std::filesystem::create_directories(dir);
    Check(mdb_env_copy2(env_, dir.c_str(), MDB_CP_COMPACT), "copy");
    return std::filesystem::file_size(dir + "/data.mdb");
  }

  std::uint64_t Export(std::size_t i) override {
    if (!opts_.sealed_event_rows) Fail("raw_lmdb export needs sealed event rows");
    MDB_txn* txn = nullptr;
    Check(mdb_txn_begin(env_, nullptr, MDB_RDONLY, &txn), "begin read");
    MDB_cursor* c = nullptr;
    int rc = mdb_cursor_open(txn, events_t_, &c);
    std::uint64_t n = 0;
    const std::string_view prefix = ids_[i];
    MDB_val k = Val(prefix), v;
    if (rc == MDB_SUCCESS) rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
    while (rc == MDB_SUCCESS && View(k).substr(0, prefix.size()) == prefix) {
      const auto* box = static_cast<const unsigned char*>(v.mv_data);
      if (v.mv_size < kSealExtra) Fail("sealed row too short");
      plain_.resize(v.mv_size - kSealExtra);
      unsigned long long len = 0;
      if (crypto_aead_xchacha20poly1305_ietf_decrypt(
              reinterpret_cast<unsigned char*>(plain_.data()), &len, nullptr, box + 2 + kNonce,
              v.mv_size - 2 - kNonce, static_cast<const unsigned char*>(k.mv_data), k.mv_size, box + 2,
              seal_key_) != 0) {
        Fail("raw_lmdb export: authentication failed");
      }
      ++n;
      rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(c);
    mdb_txn_abort(txn);
    if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND) Check(rc, "export scan");
    return n;
  }

 private:
  static constexpr std::size_t kNonce = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;
  static constexpr std::size_t kSealExtra = 2 + kNonce + crypto_aead_xchacha20poly1305_ietf_ABYTES;

  // version ‖ cipher ‖ nonce ‖ ciphertext ‖ tag, AD = the row key.
  std::string Seal(std::string_view key, std::string_view plain) {
    std::string box(plain.size() + kSealExtra, '\0');
    auto* out = reinterpret_cast<unsigned char*>(box.data());
    out[0] = 1;
    out[1] = 1;
    randombytes_buf(out + 2, kNonce);
    unsigned long long len = 0;
    crypto_aead_xchacha20poly1305_ietf_encrypt(out + 2 + kNonce, &len,
                                               reinterpret_cast<const unsigned char*>(plain.data()), plain.size(),
                                               reinterpret_cast<const unsigned char*>(key.data()), key.size(),
                                               nullptr, out + 2, seal_key_);
    return box;
  }

  // Deletes up to `budget` rows of person p: events first, then the rest.
  std::uint64_t DeleteAll(WriteTxn& txn, std::uint32_t p, std::uint64_t budget) {
    const std::string& id = ids_[p];
    std::uint64_t n = txn.DelPrefix(events_t_, id, budget);
    if (n == budget) return n;
    n += txn.Del(people_t_, id) ? 1u : 0u;
    n += txn.Del(profiles_t_, id) ? 1u : 0u;
    n += txn.Del(ident_t_, hashes_[p]) ? 1u : 0u;
    n += txn.Del(ibp_t_, id + hashes_[p]) ? 1u : 0u;
    return n;
  }

  SystemOptions opts_;
  Rng rng_;
  MDB_env* env_ = nullptr;
  MDB_dbi people_t_ = 0, ident_t_ = 0, ibp_t_ = 0, profiles_t_ = 0, events_t_ = 0, analytics_t_ = 0;
  MDB_dbi records_t_ = 0, restrictions_t_ = 0;
  std::vector<std::string> ids_, hashes_;
  std::uint64_t seq_ = 1;
  std::deque<std::uint32_t> queue_;
  std::string profile_, plain_;
  unsigned char seal_key_[crypto_aead_xchacha20poly1305_ietf_KEYBYTES];
};

}  // namespace

std::unique_ptr<System> NewRawLmdb(const std::string& dir, const SystemOptions& o) {
  return std::make_unique<RawLmdb>(dir, o);
}

}  // namespace shredkv_bench
