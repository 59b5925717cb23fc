#include "sharding/shard_manifest.h"

#include "crypto/aead.h"
#include "crypto/keyed_hash.h"
#include "crypto/random.h"
#include "util/checksum.h"
#include "util/coding.h"
#include "util/file_io.h"

namespace shredkv::sharding {
namespace {

// magic ‖ u32 version ‖ u32 shard count ‖ salt(16) ‖ u8 cipher ‖
// u32 box length ‖ box ‖ u64 XXH3-64 of everything before it; integers
// big-endian. The box seals the 32-byte routing key under the root key,
// with magic ‖ version ‖ count ‖ salt as associated data.
constexpr std::string_view kMagic = "SHKVSHRD";
constexpr std::uint32_t kVersion = 1;
constexpr std::size_t kSaltSize = 16;
constexpr std::size_t kHeaderSize = 8 + 4 + 4 + kSaltSize;
constexpr std::size_t kMaxFile = 4096;
constexpr auto kCipher = crypto::CipherId::kXChaCha20Poly1305;

std::string Header(std::uint32_t count, std::string_view salt) {
  std::string h(kMagic);
  util::PutFixed32BE(&h, kVersion);
  util::PutFixed32BE(&h, count);
  h.append(salt);
  return h;
}

Result<crypto::SecretKey> RootFor(KeyProvider& provider, std::string_view salt) {
  auto root = provider.GetRootKey(KeyRequest{salt});
  if (!root.ok()) return root.status();
  return crypto::SecretKey::FromBytes(
      std::string_view(reinterpret_cast<const char*>(root->data()), RootKey::kSize));
}

}  // namespace

Result<ShardManifest> NewManifest(std::uint32_t shard_count) {
  if (Status s = crypto::Init(); !s.ok()) return s;
  auto key = crypto::SecretKey::Random();
  if (!key.ok()) return key.status();
  ShardManifest m;
  m.shard_count = shard_count;
  m.salt.resize(kSaltSize);
  crypto::RandomFill(m.salt.data(), m.salt.size());
  m.routing_key = std::make_unique<crypto::SecretKey>(std::move(*key));
  return m;
}

Status WriteManifest(const std::string& path, const ShardManifest& manifest, KeyProvider& provider) {
  auto root = RootFor(provider, manifest.salt);
  if (!root.ok()) return root.status();
  std::string file = Header(manifest.shard_count, manifest.salt);
  std::string box;
  crypto::Seal(kCipher, *root, file, manifest.routing_key->view(), &box);
  file.push_back(static_cast<char>(kCipher));
  util::PutFixed32BE(&file, static_cast<std::uint32_t>(box.size()));
  file += box;
  util::PutFixed64BE(&file, util::Checksum64(file));
  return util::WriteFileDurably(path, file);
}

Result<ShardManifest> ReadManifest(const std::string& path, KeyProvider& provider) {
  auto file = util::ReadSmallFile(path, kMaxFile);
  if (!file.ok()) return file.status();
  const std::string& f = *file;
  auto damaged = [&](const std::string& what) { return Status::Corruption("'" + path + "': " + what); };
  if (f.size() < kHeaderSize + 1 + 4 + 8 || f.compare(0, kMagic.size(), kMagic) != 0) {
    return damaged("not a sharded store's SHARDS file");
  }
  const std::size_t body = f.size() - 8;
  if (util::DecodeFixed64BE(f.data() + body) != util::Checksum64(std::string_view(f).substr(0, body))) {
    return damaged("checksum mismatch");
  }
  const std::uint32_t version = util::DecodeFixed32BE(f.data() + 8);
  if (version != kVersion) {
    return Status::UnsupportedVersion("'" + path + "' has layout version " + std::to_string(version) +
                                      "; this build reads version " + std::to_string(kVersion));
  }
  ShardManifest m;
  m.shard_count = util::DecodeFixed32BE(f.data() + 12);
  m.salt = f.substr(16, kSaltSize);
  if (m.shard_count == 0) return damaged("shard count 0");
  if (static_cast<std::uint8_t>(f[kHeaderSize]) != static_cast<std::uint8_t>(kCipher)) {
    return damaged("unknown cipher");
  }
  const std::uint32_t box_size = util::DecodeFixed32BE(f.data() + kHeaderSize + 1);
  if (kHeaderSize + 1 + 4 + std::size_t{box_size} != body) return damaged("wrong length");
  auto root = RootFor(provider, m.salt);
  if (!root.ok()) return root.status();
  std::string key;
  Status o = crypto::Open(kCipher, *root, std::string_view(f).substr(0, kHeaderSize),
                          std::string_view(f).substr(kHeaderSize + 5, box_size), &key);
  if (!o.ok()) {
    crypto::Wipe(&key);
    if (o.code() == StatusCode::kAuthenticationFailed) {
      return Status::WrongKey("the root key does not open this sharded store (" + provider.Describe() + ")");
    }
    return o;
  }
  auto routing = crypto::SecretKey::FromBytes(key);
  crypto::Wipe(&key);
  if (!routing.ok()) return damaged("routing key of the wrong size");
  m.routing_key = std::make_unique<crypto::SecretKey>(std::move(*routing));
  return m;
}

namespace {

// Layout 2: magic ‖ u32 index ‖ u32 count ‖ count × store ID (32 hex
// digits) ‖ u64 SipHash-2-4(routing key[0..16), salt ‖ everything before).
// Layout 1 (before stop 27): magic ‖ index ‖ count ‖ tag, no store IDs.
constexpr std::string_view kMarkerMagic = "SHKVSHD2";
constexpr std::string_view kMarkerMagicV1 = "SHKVSHID";
constexpr std::size_t kStoreIdSize = 32;
constexpr std::size_t kMaxMarker = 16 + kStoreIdSize * 256 + 8;
constexpr const char* kMarkerName = "/SHARD";

std::uint64_t Tag(const ShardManifest& m, std::string_view body) {
  return crypto::ShortKeyedHash(m.routing_key->view().substr(0, 16), m.salt + std::string(body));
}

std::string Marker(std::string_view magic, std::uint32_t index, const std::vector<std::string>& store_ids,
                   const ShardManifest& m) {
  std::string body(magic);
  util::PutFixed32BE(&body, index);
  util::PutFixed32BE(&body, m.shard_count);
  for (const std::string& id : store_ids) body += id;
  util::PutFixed64BE(&body, Tag(m, body));
  return body;
}

}  // namespace

Status WriteShardMarker(const std::string& shard_dir, std::uint32_t index, const std::vector<std::string>& store_ids,
                        const ShardManifest& manifest) {
  for (const std::string& id : store_ids) {
    if (id.size() != kStoreIdSize) return Status::InvalidArgument("a store ID is 32 hex digits");
  }
  if (store_ids.size() != manifest.shard_count) return Status::InvalidArgument("one store ID a shard");
  return util::WriteFileDurably(shard_dir + kMarkerName, Marker(kMarkerMagic, index, store_ids, manifest));
}

Result<ShardMarker> ReadShardMarker(const std::string& shard_dir, std::uint32_t index, const ShardManifest& manifest) {
  auto found = util::ReadSmallFile(shard_dir + kMarkerName, kMaxMarker);
  if (found.status().IsNotFound()) {
    return Status::Corruption("'" + shard_dir + "' has no SHARD marker: not a shard of this store");
  }
  if (!found.ok()) return found.status();
  const std::string& f = *found;
  auto elsewhere = [&] {
    return Status::Corruption("'" + shard_dir + "' is not shard " + std::to_string(index) +
                              " of this store (its SHARD marker names another place)");
  };
  ShardMarker marker;
  if (f.compare(0, kMarkerMagicV1.size(), kMarkerMagicV1) == 0) {
    if (!crypto::SecretEquals(f, Marker(kMarkerMagicV1, index, {}, manifest))) return elsewhere();
    return marker;
  }
  const std::size_t ids_size = std::size_t{manifest.shard_count} * kStoreIdSize;
  if (f.size() != 16 + ids_size + 8 || f.compare(0, kMarkerMagic.size(), kMarkerMagic) != 0) return elsewhere();
  for (std::uint32_t i = 0; i < manifest.shard_count; ++i) marker.store_ids.push_back(f.substr(16 + i * kStoreIdSize, kStoreIdSize));
  if (!crypto::SecretEquals(f, Marker(kMarkerMagic, index, marker.store_ids, manifest))) return elsewhere();
  return marker;
}

namespace {

// magic ‖ u32 index ‖ u32 count ‖ run ID (16 bytes) ‖ u64 SipHash-2-4(routing
// key[0..16), salt ‖ everything before ‖ the shard backup's MANIFEST).
constexpr std::string_view kRunMagic = "SHKVRUN1";
constexpr std::size_t kRunSize = 8 + 4 + 4 + kBackupRunIdSize + 8;
constexpr std::size_t kMaxBackupManifest = 64 * 1024;

Result<std::string> RunFile(const std::string& shard_backup_dir, std::uint32_t index, std::string_view run_id,
                            const ShardManifest& m) {
  auto backup_manifest = util::ReadSmallFile(shard_backup_dir + "/MANIFEST", kMaxBackupManifest);
  if (!backup_manifest.ok()) return backup_manifest.status();
  std::string body(kRunMagic);
  util::PutFixed32BE(&body, index);
  util::PutFixed32BE(&body, m.shard_count);
  body.append(run_id);
  util::PutFixed64BE(&body, Tag(m, body + *backup_manifest));
  return body;
}

}  // namespace

std::string NewBackupRunId() {
  std::string id(kBackupRunIdSize, '\0');
  crypto::RandomFill(id.data(), id.size());
  return id;
}

Status WriteBackupRun(const std::string& shard_backup_dir, std::uint32_t index, std::string_view run_id,
                      const ShardManifest& manifest) {
  if (run_id.size() != kBackupRunIdSize) return Status::InvalidArgument("a backup run ID is 16 bytes");
  auto file = RunFile(shard_backup_dir, index, run_id, manifest);
  if (!file.ok()) return file.status();
  return util::WriteFileDurably(shard_backup_dir + "/" + kBackupRunName, *file);
}

Result<std::string> ReadBackupRun(const std::string& shard_backup_dir, std::uint32_t index,
                                  const ShardManifest& manifest) {
  auto found = util::ReadSmallFile(shard_backup_dir + "/" + kBackupRunName, kRunSize);
  if (found.status().IsNotFound()) {
    return Status::Corruption("'" + shard_backup_dir + "' has no RUN file: not a shard's part of a whole sharded "
                              "backup (one cut short, a shard(i).Backup, or one made before stop 34)");
  }
  if (!found.ok()) return found.status();
  const std::string& f = *found;
  auto mismatch = [&] {
    return Status::Corruption("'" + shard_backup_dir + "': its RUN file is not of shard " + std::to_string(index) +
                              " of this store or does not match its MANIFEST (shard backups of different "
                              "backups put together, or altered)");
  };
  if (f.size() != kRunSize || f.compare(0, kRunMagic.size(), kRunMagic) != 0) return mismatch();
  const std::string run_id = f.substr(16, kBackupRunIdSize);
  auto expected = RunFile(shard_backup_dir, index, run_id, manifest);
  if (!expected.ok()) return expected.status();
  if (!crypto::SecretEquals(f, *expected)) return mismatch();
  return run_id;
}

}  // namespace shredkv::sharding
