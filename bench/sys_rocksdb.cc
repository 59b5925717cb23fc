// rocksdb: Debian's librocksdb with default options; one column family,
// the table as a one-byte key prefix. Durability::kNoSync writes the WAL
// without fsync (sync=false), kFullSync fsyncs it (sync=true; RocksDB
// groups concurrent writers into one WAL sync). Erase deletes a person's
// event rows with one DeleteRange and the other rows with point deletes.
#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <numeric>

#include "common.h"

namespace shredkv_bench {
namespace {

void Check(const rocksdb::Status& s, const char* what) {
  if (!s.ok()) Fail(std::string("rocksdb ") + what + ": " + s.ToString());
}

enum : char { kPeople = 'P', kIdent = 'I', kIdentByPerson = 'B', kProfiles = 'F', kEvents = 'E', kAnalytics = 'A' };

std::string K(char table, std::string_view key) {
  std::string k(1, table);
  k.append(key);
  return k;
}

struct RocksBatch final : PreparedBatch {
  rocksdb::WriteBatch batch;
};

class RocksDb final : public System {
 public:
  RocksDb(const std::string& dir, const SystemOptions& o) : rng_(0x12345) {
    rocksdb::Options opt;
    opt.create_if_missing = true;
    rocksdb::DB* db = nullptr;
    Check(rocksdb::DB::Open(opt, dir, &db), "open");
    db_.reset(db);
    write_.sync = o.durability == shredkv::Durability::kFullSync;
    durable_ = write_.sync;
  }
  ~RocksDb() override {
    if (paused_) (void)db_->ContinueBackgroundWork();
    (void)db_->Close();
  }

  void AddPeople(std::size_t n, std::size_t batch) override {
    const RowSizes& rs = row_sizes();
    const std::size_t end = people_ + n;
    while (people_ < end) {
      rocksdb::WriteBatch b;
      const std::size_t stop = std::min(end, people_ + batch);
      for (std::size_t i = people_; i < stop; ++i) {
        std::string id(16, '\0'), hash(32, '\0');
        rng_.Fill(reinterpret_cast<std::uint8_t*>(id.data()), id.size());
        rng_.Fill(reinterpret_cast<std::uint8_t*>(hash.data()), hash.size());
        Check(b.Put(K(kPeople, id), PoolBytes(rs.person_row, i)), "batch");
        Check(b.Put(K(kIdent, hash), id + std::string(8, '\0')), "batch");
        Check(b.Put(K(kIdentByPerson, id + hash), std::string(8, '\0')), "batch");
        Check(b.Put(K(kProfiles, id), PoolBytes(rs.profile_row, i + 7)), "batch");
        ids_.push_back(std::move(id));
        hashes_.push_back(std::move(hash));
      }
      Check(db_->Write(write_, &b), "write people");
      people_ = stop;
    }
  }

  std::unique_ptr<PreparedBatch> PrepareEvents(std::span<const EventRef> events) override {
    const RowSizes& rs = row_sizes();
    auto p = std::make_unique<RocksBatch>();
    for (const EventRef& e : events) {
      const std::uint64_t seq = seq_++;
      Check(p->batch.Put(K(kEvents, EventKey(ids_[e.person], e.ts, seq)), PoolBytes(rs.event_row, seq)), "batch");
      Check(p->batch.Put(K(kAnalytics, AnalyticsKey(e.ts, seq)), PoolBytes(rs.analytics_row, seq + 3)), "batch");
    }
    return p;
  }

  void CommitEvents(PreparedBatch& batch) override {
    Check(db_->Write(write_, &static_cast<RocksBatch&>(batch).batch), "write events");
  }

  std::vector<std::uint32_t> PeopleInKeyOrder() const override {
    std::vector<std::uint32_t> order(people_);
    std::iota(order.begin(), order.end(), 0u);
    std::sort(order.begin(), order.end(), [&](std::uint32_t a, std::uint32_t b) { return ids_[a] < ids_[b]; });
    return order;
  }

  std::size_t Lookup(std::size_t i) override {
    rocksdb::PinnableSlice owner, profile;
    Check(db_->Get(read_, db_->DefaultColumnFamily(), K(kIdent, hashes_[i]), &owner), "get ident");
    Check(db_->Get(read_, db_->DefaultColumnFamily(), K(kProfiles, std::string_view(owner.data(), 16)), &profile),
          "get profile");
    profile_.assign(profile.data(), profile.size());
    return profile_.size();
  }

  void SetSynced(bool synced) override { write_.sync = synced || durable_; }

  void Erase(std::span<const std::uint32_t> people) override {
    rocksdb::WriteBatch b;
    for (std::uint32_t p : people) {
      const std::string& id = ids_[p];
      // Every event key of the person sorts below person ‖ 0xff*17.
      Check(b.DeleteRange(K(kEvents, id), K(kEvents, id + std::string(17, '\xff'))), "batch");
      Check(b.Delete(K(kPeople, id)), "batch");
      Check(b.Delete(K(kProfiles, id)), "batch");
      Check(b.Delete(K(kIdent, hashes_[p])), "batch");
      Check(b.Delete(K(kIdentByPerson, id + hashes_[p])), "batch");
    }
    Check(db_->Write(write_, &b), "erase");
  }

  void Pause() override {
    if (!paused_) Check(db_->PauseBackgroundWork(), "pause");
    paused_ = true;
  }
  void Resume() override {
    if (paused_) Check(db_->ContinueBackgroundWork(), "continue");
    paused_ = false;
  }

 private:
  std::unique_ptr<rocksdb::DB> db_;
  rocksdb::WriteOptions write_;
  bool durable_ = false;  // opened with Durability::kFullSync
  rocksdb::ReadOptions read_;
  Rng rng_;
  std::vector<std::string> ids_, hashes_;
  std::uint64_t seq_ = 1;
  std::string profile_;
  bool paused_ = false;
};

}  // namespace

std::unique_ptr<System> NewRocksDb(const std::string& dir, const SystemOptions& o) {
  return std::make_unique<RocksDb>(dir, o);
}

}  // namespace shredkv_bench
