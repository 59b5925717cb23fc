#include "keys/key_store.h"

#include <cstring>
#include <mutex>

#include "codec/row_codec.h"
#include "codec/sealed.h"
#include "crypto/random.h"
#include "util/coding.h"

namespace shredkv::keys {
namespace {

using codec::TableId;

constexpr std::string_view kFormatKey = "format";
constexpr std::string_view kSaltKey = "salt";
constexpr std::string_view kStoreIdKey = "store_id";
constexpr std::string_view kRootCheckKey = "root_check";
constexpr std::string_view kCurrentEpochKey = "current_epoch";
constexpr std::string_view kIndexKeyKey = "index_key";
constexpr std::string_view kRootCheckPlaintext = "shredkv root key check v1";
// Keys are always wrapped with XChaCha20-Poly1305: random 192-bit nonces need
// no counter state and opening them needs no AES-NI.
constexpr crypto::CipherId kWrapCipher = crypto::CipherId::kXChaCha20Poly1305;

std::string PlainRow(TableId t, std::string_view key, std::string_view payload) {
  std::string row;
  codec::SealPlain(t, key, payload, &row);
  return row;
}

std::string U64(std::uint64_t v) {
  std::string s;
  util::PutFixed64BE(&s, v);
  return s;
}

Status ReadPlain(const storage::ReadTxn& txn, storage::Table table, TableId id,
                 std::string_view key, std::string* out) {
  std::string_view row, payload;
  if (Status s = txn.Get(table, key, &row); !s.ok()) {
    if (s.IsNotFound()) {
      return Status::Corruption("keys environment lacks '" + std::string(key) + "'");
    }
    return s;
  }
  if (Status s = codec::OpenPlain(id, key, row, &payload); !s.ok()) {
    return s.WithContext("keys meta '" + std::string(key) + "'");
  }
  *out = std::string(payload);
  return Status::OK();
}

}  // namespace

Result<std::unique_ptr<KeyStore>> KeyStore::Open(const KeyStoreOptions& options) {
  if (Status s = crypto::Init(); !s.ok()) return s;
  std::unique_ptr<KeyStore> ks(new KeyStore(options));
  storage::EnvOptions env_options;
  env_options.path = options.path;
  env_options.tables = {"meta", "epochs", "deks", "fences"};
  env_options.create = options.create;
  env_options.initial_map_size = 8ull << 20;
  env_options.durability = options.durability;
  auto env = storage::Environment::Open(env_options);
  if (!env.ok()) return env.status();
  ks->env_ = std::move(env).value();
  ks->meta_ = ks->env_->table("meta");
  ks->epochs_ = ks->env_->table("epochs");
  ks->deks_ = ks->env_->table("deks");
  ks->fences_ = ks->env_->table("fences");

  Status s = ks->env_->View([&](storage::ReadTxn& txn) {
    std::string_view unused;
    Status check = txn.Get(ks->meta_, kRootCheckKey, &unused);
    if (check.IsNotFound()) return Status::OK();  // a new store
    if (!check.ok()) return check;
    ks->initialized_ = true;
    std::string format;
    if (Status r = ReadPlain(txn, ks->meta_, TableId::kKeysMeta, kFormatKey, &format); !r.ok()) {
      return r;
    }
    if (format.size() != 4 || util::DecodeFixed32BE(format.data()) != kKeysFormatVersion) {
      return Status::Corruption("keys environment has an unsupported format version");
    }
    return ReadPlain(txn, ks->meta_, TableId::kKeysMeta, kSaltKey, &ks->salt_);
  });
  if (!s.ok()) return s;
  if (!ks->initialized_) {
    auto salt = crypto::RandomArray<16>();
    ks->salt_.assign(reinterpret_cast<const char*>(salt.data()), salt.size());
  } else if (ks->salt_.size() != 16) {
    return Status::Corruption("keys environment salt has the wrong length");
  }
  return ks;
}

Status KeyStore::Unlock(const RootKey& root_key) {
  auto root = crypto::SecretKey::FromBytes(
      std::string_view(reinterpret_cast<const char*>(root_key.data()), RootKey::kSize));
  if (!root.ok()) return root.status();
  Status s = initialized_ ? Load(*root) : Create(*root);
  if (s.ok()) initialized_ = true;
  return s;
}

Status KeyStore::Create(const crypto::SecretKey& root) {
  auto epoch_key = crypto::SecretKey::Random();
  auto index_key = crypto::SecretKey::Random();
  if (!epoch_key.ok()) return epoch_key.status();
  if (!index_key.ok()) return index_key.status();
  auto id = crypto::RandomArray<16>();
  std::string store_id(reinterpret_cast<const char*>(id.data()), id.size());
  constexpr std::uint64_t kFirstEpoch = 1;
  const std::string epoch_row_key = codec::EpochKey(kFirstEpoch);

  Status s = env_->Update([&](storage::WriteTxn& txn) -> Status {
    std::string format;
    util::PutFixed32BE(&format, kKeysFormatVersion);
    std::string check, wrapped_index, wrapped_epoch;
    codec::SealRow(kWrapCipher, root, TableId::kKeysMeta, kRootCheckKey, kRootCheckPlaintext, &check);
    codec::SealRow(kWrapCipher, root, TableId::kKeysMeta, kIndexKeyKey, index_key->view(),
                   &wrapped_index);
    codec::SealRow(kWrapCipher, root, TableId::kEpochs, epoch_row_key, epoch_key->view(),
                   &wrapped_epoch);
    Status w;
    if (!(w = txn.Put(meta_, kFormatKey, PlainRow(TableId::kKeysMeta, kFormatKey, format))).ok()) return w;
    if (!(w = txn.Put(meta_, kSaltKey, PlainRow(TableId::kKeysMeta, kSaltKey, salt_))).ok()) return w;
    if (!(w = txn.Put(meta_, kStoreIdKey, PlainRow(TableId::kKeysMeta, kStoreIdKey, store_id))).ok()) return w;
    if (!(w = txn.Put(meta_, kRootCheckKey, check)).ok()) return w;
    if (!(w = txn.Put(meta_, kIndexKeyKey, wrapped_index)).ok()) return w;
    if (!(w = txn.Put(meta_, kCurrentEpochKey,
                      PlainRow(TableId::kKeysMeta, kCurrentEpochKey, U64(kFirstEpoch)))).ok()) return w;
    return txn.Put(epochs_, epoch_row_key, wrapped_epoch);
  });
  if (!s.ok()) return s.WithContext("creating the keys environment");
  store_id_ = std::move(store_id);
  index_key_.emplace(std::move(index_key).value());
  std::unique_lock lock(epoch_mu_);
  current_epoch_ = kFirstEpoch;
  epoch_keys_.emplace(kFirstEpoch, std::move(epoch_key).value());
  return Status::OK();
}

Status KeyStore::Load(const crypto::SecretKey& root) {
  std::map<std::uint64_t, crypto::SecretKey> epoch_keys;
  std::uint64_t current = 0;
  std::optional<crypto::SecretKey> index_key;
  std::string store_id;
  Status s = env_->View([&](storage::ReadTxn& txn) -> Status {
    std::string_view row;
    if (Status g = txn.Get(meta_, kRootCheckKey, &row); !g.ok()) return g;
    std::string plain;
    Status check = codec::OpenRow(root, TableId::kKeysMeta, kRootCheckKey, row, &plain);
    if (check.IsAuthenticationFailed()) {
      return Status::WrongKey("the root key does not open this store (root check failed)");
    }
    if (!check.ok()) return check.WithContext("root check");
    if (plain != kRootCheckPlaintext) return Status::Corruption("root check holds the wrong constant");

    if (Status r = ReadPlain(txn, meta_, TableId::kKeysMeta, kStoreIdKey, &store_id); !r.ok()) return r;
    std::string epoch_bytes;
    if (Status r = ReadPlain(txn, meta_, TableId::kKeysMeta, kCurrentEpochKey, &epoch_bytes); !r.ok()) {
      return r;
    }
    if (epoch_bytes.size() != 8) return Status::Corruption("current epoch has the wrong length");
    current = util::DecodeFixed64BE(epoch_bytes.data());

    if (Status g = txn.Get(meta_, kIndexKeyKey, &row); !g.ok()) {
      return g.IsNotFound() ? Status::Corruption("keys environment lacks the index key") : g;
    }
    if (Status o = codec::OpenRow(root, TableId::kKeysMeta, kIndexKeyKey, row, &plain); !o.ok()) {
      return o.WithContext("index key");
    }
    auto ik = crypto::SecretKey::FromBytes(plain);
    crypto::Wipe(&plain);
    if (!ik.ok()) return Status::Corruption("index key has the wrong length");
    index_key.emplace(std::move(ik).value());

    auto cursor = txn.OpenCursor(epochs_);
    if (!cursor.ok()) return cursor.status();
    auto& c = **cursor;
    for (Status m = c.SeekToFirst(); c.Valid(); m = c.Next()) {
      if (!m.ok()) return m;
      if (c.key().size() != 8) return Status::Corruption("epoch key has the wrong length");
      const std::uint64_t epoch = util::DecodeFixed64BE(c.key().data());
      if (Status o = codec::OpenRow(root, TableId::kEpochs, c.key(), c.value(), &plain); !o.ok()) {
        return o.WithContext("epoch key " + std::to_string(epoch));
      }
      auto ek = crypto::SecretKey::FromBytes(plain);
      crypto::Wipe(&plain);
      if (!ek.ok()) return Status::Corruption("epoch key has the wrong length");
      epoch_keys.emplace(epoch, std::move(ek).value());
    }
    if (epoch_keys.find(current) == epoch_keys.end()) {
      return Status::Corruption("current epoch " + std::to_string(current) + " has no key");
    }
    return Status::OK();
  });
  if (!s.ok()) return s;
  store_id_ = std::move(store_id);
  index_key_ = std::move(index_key);
  std::unique_lock lock(epoch_mu_);
  current_epoch_ = current;
  epoch_keys_ = std::move(epoch_keys);
  return Status::OK();
}

std::uint64_t KeyStore::current_epoch() const {
  std::shared_lock lock(epoch_mu_);
  return current_epoch_;
}

Result<DekHandle> KeyStore::NewDek() {
  auto k = crypto::SecretKey::Random();
  if (!k.ok()) return k.status();
  return DekHandle(std::make_shared<const crypto::SecretKey>(std::move(k).value()));
}

Status KeyStore::PutDeks(const std::vector<PersonId>& people, const std::vector<DekHandle>& deks) {
  if (people.size() != deks.size()) return Status::Internal("PutDeks: people and keys differ in count");
  if (people.empty()) return Status::OK();
  std::shared_lock epoch_lock(epoch_mu_);
  const std::uint64_t epoch = current_epoch_;
  const crypto::SecretKey& epoch_key = epoch_keys_.at(epoch);
  Status s = env_->Update([&](storage::WriteTxn& txn) -> Status {
    std::string row;
    for (std::size_t i = 0; i < people.size(); ++i) {
      std::string_view fence;
      Status g = txn.Get(fences_, people[i].view(), &fence);
      if (g.ok()) return Status::Erased("person " + people[i].ToHex() + " was erased");
      if (!g.IsNotFound()) return g;
      const std::string key = codec::DekKey(people[i], kPersonSlot);
      row.clear();
      util::PutFixed64BE(&row, epoch);
      // AD: the row key and the epoch prefix (see UnwrapDek).
      codec::SealRow(kWrapCipher, epoch_key, TableId::kDeks, key + row, deks[i]->view(), &row);
      if (Status p = txn.Put(deks_, key, row); !p.ok()) return p;
    }
    return Status::OK();
  });
  if (!s.ok()) return s;
  for (std::size_t i = 0; i < people.size(); ++i) {
    const std::string key = codec::DekKey(people[i], kPersonSlot);
    cache_.Erase(key);  // an orphan's old key must not linger
    cache_.Insert(key, deks[i], cache_.generation(key));
  }
  return Status::OK();
}

Result<DekHandle> KeyStore::UnwrapDek(const PersonId& person, std::uint32_t slot,
                                      std::string_view row) {
  if (row.size() < 8) return Status::Corruption("wrapped key of person " + person.ToHex() + " truncated");
  const std::uint64_t epoch = util::DecodeFixed64BE(row.data());
  std::shared_lock lock(epoch_mu_);
  auto it = epoch_keys_.find(epoch);
  if (it == epoch_keys_.end()) {
    return Status::Corruption("key of person " + person.ToHex() + " names unknown epoch " +
                              std::to_string(epoch));
  }
  std::string plain;
  // The AD covers the DEK row key and the epoch prefix: moving a wrapped key
  // to another person or relabelling its epoch fails authentication.
  const std::string ad_key = codec::DekKey(person, slot) + std::string(row.substr(0, 8));
  if (Status s = codec::OpenRow(it->second, TableId::kDeks, ad_key, row.substr(8), &plain); !s.ok()) {
    return s.WithContext("key of person " + person.ToHex());
  }
  auto k = crypto::SecretKey::FromBytes(plain);
  crypto::Wipe(&plain);
  if (!k.ok()) return Status::Corruption("key of person " + person.ToHex() + " has the wrong length");
  return DekHandle(std::make_shared<const crypto::SecretKey>(std::move(k).value()));
}

Result<DekHandle> KeyStore::GetDek(const PersonId& person, std::uint32_t slot) {
  const std::string key = codec::DekKey(person, slot);
  if (DekHandle cached = cache_.Lookup(key)) return cached;
  const std::uint64_t generation = cache_.generation(key);
  std::string row;
  Status s = env_->View([&](storage::ReadTxn& txn) {
    std::string_view v;
    Status g = txn.Get(deks_, key, &v);
    if (g.ok()) row.assign(v);
    return g;
  });
  if (s.IsNotFound()) return Status::NotFound("person " + person.ToHex() + " has no key");
  if (!s.ok()) return s;
  auto dek = UnwrapDek(person, slot, row);
  if (!dek.ok()) return dek.status();
  cache_.Insert(key, *dek, generation);
  return dek;
}

Result<std::uint64_t> KeyStore::DekEpoch(const PersonId& person, std::uint32_t slot) {
  const std::string key = codec::DekKey(person, slot);
  std::uint64_t epoch = 0;
  Status s = env_->View([&](storage::ReadTxn& txn) {
    std::string_view v;
    Status g = txn.Get(deks_, key, &v);
    if (!g.ok()) return g;
    if (v.size() < 8) return Status::Corruption("wrapped key truncated");
    epoch = util::DecodeFixed64BE(v.data());
    return Status::OK();
  });
  if (!s.ok()) return s;
  return epoch;
}

Result<bool> KeyStore::IsErased(const PersonId& person) {
  bool erased = false;
  Status s = env_->View([&](storage::ReadTxn& txn) {
    std::string_view v;
    Status g = txn.Get(fences_, person.view(), &v);
    if (g.ok()) erased = true;
    return g.IsNotFound() ? Status::OK() : g;
  });
  if (!s.ok()) return s;
  return erased;
}

Result<std::uint64_t> KeyStore::CountDeks() {
  std::uint64_t n = 0;
  Status s = env_->View([&](storage::ReadTxn& txn) {
    auto c = txn.Count(deks_);
    if (!c.ok()) return c.status();
    n = *c;
    return Status::OK();
  });
  if (!s.ok()) return s;
  return n;
}

}  // namespace shredkv::keys
