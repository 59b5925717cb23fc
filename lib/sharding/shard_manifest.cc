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

constexpr std::string_view kMarkerMagic = "SHKVSHID";
constexpr const char* kMarkerName = "/SHARD";

// magic ‖ u32 index ‖ u32 count ‖ u64 SipHash-2-4(routing key[0..16),
// salt ‖ magic ‖ index ‖ count).
std::string Marker(std::uint32_t index, const ShardManifest& m) {
  std::string body(kMarkerMagic);
  util::PutFixed32BE(&body, index);
  util::PutFixed32BE(&body, m.shard_count);
  util::PutFixed64BE(&body, crypto::ShortKeyedHash(m.routing_key->view().substr(0, 16), m.salt + body));
  return body;
}

}  // namespace

Status WriteShardMarker(const std::string& shard_dir, std::uint32_t index, const ShardManifest& manifest) {
  return util::WriteFileDurably(shard_dir + kMarkerName, Marker(index, manifest));
}

Status CheckShardMarker(const std::string& shard_dir, std::uint32_t index, const ShardManifest& manifest) {
  auto found = util::ReadSmallFile(shard_dir + kMarkerName, 64);
  if (found.status().IsNotFound()) {
    return Status::Corruption("'" + shard_dir + "' has no SHARD marker: not a shard of this store");
  }
  if (!found.ok()) return found.status();
  if (!crypto::SecretEquals(*found, Marker(index, manifest))) {
    return Status::Corruption("'" + shard_dir + "' is not shard " + std::to_string(index) + " of this store (its SHARD marker names another place)");
  }
  return Status::OK();
}

}  // namespace shredkv::sharding
