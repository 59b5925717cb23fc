// shredkv through its public API (Store, WriteBatch). Row sizes for the
// baselines come from shredkv's own codec (the internal target).
#include <algorithm>
#include <cstdlib>
#include <numeric>

#include "codec/row_codec.h"
#include "codec/sealed.h"
#include "common.h"
#include "crypto/aead.h"
#include "crypto/secure_memory.h"
#include "shredkv/key_provider.h"
#include "shredkv/store.h"
#include "shredkv/write_batch.h"

namespace shredkv_bench {
namespace {

using shredkv::Identifier;
using shredkv::PersonId;

void Check(const shredkv::Status& s, const char* what) {
  if (!s.ok()) Fail(std::string("shredkv ") + what + ": " + s.ToString());
}

struct ShredkvBatch final : PreparedBatch {
  shredkv::WriteBatch batch;
};

class ShredkvSystem final : public System {
 public:
  ShredkvSystem(const std::string& dir, const SystemOptions& o, shredkv::Cipher cipher) {
    shredkv::Options opt;
    opt.directory = dir;
    opt.create_if_missing = true;
    opt.durability = o.durability;
    opt.cipher = cipher;
    opt.key_provider = shredkv::NewRawKeyProvider(std::string(32, '\x42'));
    // Same map as the baselines: no map growth inside the timed loops.
    opt.initial_map_size = 16ull << 30;
    // SHREDKV_BENCH_DEK_CACHE overrides Options::dek_cache_capacity (experiments).
    if (const char* cap = std::getenv("SHREDKV_BENCH_DEK_CACHE"); cap != nullptr && *cap != '\0') {
      opt.dek_cache_capacity = static_cast<std::size_t>(std::strtoull(cap, nullptr, 10));
    }
    // The benchmark calls RotateEpoch/Purge itself.
    opt.rotate_after_erasures = 0;
    opt.rotate_after_ms = 0;
    auto store = shredkv::Store::Open(std::move(opt));
    Check(store.status(), "open");
    store_ = std::move(store).value();
  }
  ~ShredkvSystem() override {
    if (store_) (void)store_->Close();
  }

  void AddPeople(std::size_t n, std::size_t batch) override {
    const std::size_t end = people_ + n;
    while (people_ < end) {
      shredkv::WriteBatch b;
      const std::size_t stop = std::min(end, people_ + batch);
      std::vector<PersonId> ids;
      for (std::size_t i = people_; i < stop; ++i) {
        emails_.push_back(Email(i));
        ids.push_back(b.CreatePerson({Identifier{"email", emails_.back()}}, Profile(i)));
      }
      Check(store_->Write(b), "create people");
      ids_.insert(ids_.end(), ids.begin(), ids.end());
      people_ = stop;
    }
  }

  std::unique_ptr<PreparedBatch> PrepareEvents(std::span<const EventRef> events) override {
    auto p = std::make_unique<ShredkvBatch>();
    for (const EventRef& e : events) p->batch.AppendEvent(ids_[e.person], MakeEvent(e.ts, n_++));
    return p;
  }

  void CommitEvents(PreparedBatch& batch) override {
    Check(store_->Write(static_cast<ShredkvBatch&>(batch).batch), "write events");
  }

  std::vector<std::uint32_t> PeopleInKeyOrder() const override {
    std::vector<std::uint32_t> order(people_);
    std::iota(order.begin(), order.end(), 0u);
    std::sort(order.begin(), order.end(), [&](std::uint32_t a, std::uint32_t b) { return ids_[a] < ids_[b]; });
    return order;
  }

  // LookupProfile (one `data` read); with SHREDKV_BENCH_LOOKUP_TWO_CALLS=1
  // Resolve then GetProfile, as before it existed.
  std::size_t Lookup(std::size_t i) override {
    if (two_call_lookup_) {
      auto id = store_->Resolve(Identifier{"email", emails_[i]});
      Check(id.status(), "resolve");
      auto profile = store_->GetProfile(*id);
      Check(profile.status(), "get profile");
      return profile->size();
    }
    auto found = store_->LookupProfile(Identifier{"email", emails_[i]});
    Check(found.status(), "lookup profile");
    return found->attributes.size();
  }

  void PutRecord(std::size_t i, std::uint64_t n) override {
    Check(store_->Put(ids_[i], "orders", std::to_string(n), PoolBytes(100, n)), "put");
  }

  void Restrict(std::size_t i) override {
    Check(store_->Restrict(ids_[i], shredkv::RestrictionSpec{true, {}, {}, "bench"}), "restrict");
  }

  void Erase(std::span<const std::uint32_t> people) override {
    std::vector<PersonId> ids;
    ids.reserve(people.size());
    for (std::uint32_t p : people) ids.push_back(ids_[p]);
    Check(store_->Erase(ids).status(), "erase");
  }

  void MarkForPurge(std::span<const std::uint32_t> people) override {
    const std::size_t call = std::max<std::size_t>(1, config().erase_call);
    for (std::size_t i = 0; i < people.size(); i += call) {
      Erase(people.subspan(i, std::min(call, people.size() - i)));
    }
  }

  void Settle() override { Check(store_->RunMaintenance(), "maintenance"); }

  std::uint64_t Purge(std::size_t budget) override {
    auto r = store_->Purge(budget);
    Check(r.status(), "purge");
    return r->rows_deleted;
  }

  std::uint64_t Export(std::size_t i) override {
    auto it = store_->Export(ids_[i]);
    std::uint64_t events = 0;
    for (; it->Valid(); it->Next()) {
      if (it->value().kind == shredkv::ExportItem::Kind::kEvent) ++events;
    }
    Check(it->status(), "export");
    return events;
  }

  std::uint64_t RotateEpoch() override {
    auto r = store_->RotateEpoch();
    Check(r.status(), "rotate epoch");
    return r->rewrapped_keys;
  }

  std::uint64_t Backup(const std::string& dir) override {
    auto r = store_->Backup(dir);
    Check(r.status(), "backup");
    return r->keys_bytes + r->data_bytes;
  }

 private:
  std::unique_ptr<shredkv::Store> store_;
  const bool two_call_lookup_ = [] {
    const char* v = std::getenv("SHREDKV_BENCH_LOOKUP_TWO_CALLS");
    return v != nullptr && std::string(v) == "1";
  }();
  std::vector<PersonId> ids_;
  std::vector<std::string> emails_;
  std::uint64_t n_ = 0;
};

}  // namespace

std::unique_ptr<System> NewShredkv(const std::string& dir, const SystemOptions& o, shredkv::Cipher cipher) {
  return std::make_unique<ShredkvSystem>(dir, o, cipher);
}

RowSizes ComputeRowSizes() {
  namespace codec = shredkv::codec;
  namespace crypto = shredkv::crypto;
  Check(crypto::Init(), "crypto init");
  RowSizes r;
  r.aes_ni = crypto::Aes256GcmAvailable();
  const crypto::CipherId cipher = r.aes_ni ? crypto::CipherId::kAes256Gcm : crypto::CipherId::kXChaCha20Poly1305;
  r.cipher = r.aes_ni ? "aes256gcm" : "xchacha20poly1305";
  const std::size_t sealed_extra = 6 + crypto::SealOverhead(cipher);  // version, cipher, key slot, nonce, tag

  // Pad the URL until the event payload reaches 200 bytes.
  std::string payload;
  for (std::size_t pad = 0; pad < 400; ++pad) {
    const shredkv::Event e = MakeEventWithPad(kBaseTs, 0, pad);
    payload.clear();
    codec::EncodeEvent(e.name, shredkv::kGeneralCategory, e.properties, &payload);
    r.url_pad = pad;
    if (payload.size() >= 200) break;
  }
  r.event_payload = payload.size();
  r.event_row = payload.size() + sealed_extra;

  const shredkv::Event e = MakeEventWithPad(kBaseTs, 0, r.url_pad);
  shredkv::Attributes fields;
  for (const std::string& f : e.analytics_fields) fields.emplace(f, e.properties.at(f));
  std::string analytics;
  codec::EncodeAnalytics(shredkv::AnonymousId{}, e.name, fields, &analytics);
  r.analytics_row = analytics.size() + 8;  // plain_row checksum

  codec::PersonPayload person;
  person.created_ms = kBaseTs;
  person.identifiers = {Identifier{"email", Email(0)}};
  std::string person_plain;
  codec::EncodePerson(person, &person_plain);
  r.person_row = person_plain.size() + sealed_extra;

  std::string profile;
  codec::EncodeProfile(Profile(0), &profile);
  r.profile_row = profile.size() + sealed_extra;
  return r;
}

}  // namespace shredkv_bench
