#include "codec/sealed.h"

#include "util/checksum.h"
#include "util/coding.h"

namespace shredkv::codec {
namespace {

constexpr std::string_view kAdMagic{"shredkv\0", 8};

constexpr std::size_t kPersonRowHeader = 6;  // version, cipher, u32 slot

std::string AssociatedData(std::uint8_t cipher, TableId table, std::string_view storage_key) {
  std::string ad;
  ad.reserve(kAdMagic.size() + 3 + storage_key.size());
  ad.append(kAdMagic);
  ad.push_back(static_cast<char>(kFormatVersion));
  ad.push_back(static_cast<char>(cipher));
  ad.push_back(static_cast<char>(table));
  ad.append(storage_key);
  return ad;
}

std::string PersonRowAssociatedData(std::uint8_t cipher, TableId table, std::uint32_t slot,
                                    std::string_view storage_key) {
  std::string ad;
  ad.reserve(kAdMagic.size() + 7 + storage_key.size());
  ad.append(kAdMagic);
  ad.push_back(static_cast<char>(kPersonRowVersion));
  ad.push_back(static_cast<char>(cipher));
  ad.push_back(static_cast<char>(table));
  util::PutFixed32BE(&ad, slot);
  ad.append(storage_key);
  return ad;
}

// Checks the cipher byte of a sealed envelope.
Status CheckCipher(std::uint8_t cipher) {
  if (!crypto::IsKnownCipher(cipher)) {
    return Status::Corruption("sealed row has unknown cipher " + std::to_string(cipher));
  }
  if (static_cast<crypto::CipherId>(cipher) == crypto::CipherId::kAes256Gcm && !crypto::Aes256GcmAvailable()) {
    return Status::FailedPrecondition("row sealed with AES-256-GCM but this CPU lacks AES-NI");
  }
  return Status::OK();
}

std::uint64_t PlainChecksum(TableId table, std::string_view storage_key, std::string_view payload) {
  std::string prefix;
  prefix.reserve(1 + storage_key.size());
  prefix.push_back(static_cast<char>(table));
  prefix.append(storage_key);
  return util::Checksum64(prefix, payload);
}

}  // namespace

void SealRow(crypto::CipherId cipher, const crypto::SecretKey& key, TableId table,
             std::string_view storage_key, std::string_view plaintext, std::string* out) {
  const auto c = static_cast<std::uint8_t>(cipher);
  out->push_back(static_cast<char>(kFormatVersion));
  out->push_back(static_cast<char>(c));
  crypto::Seal(cipher, key, AssociatedData(c, table, storage_key), plaintext, out);
}

Status OpenRow(const crypto::SecretKey& key, TableId table, std::string_view storage_key,
               std::string_view row, std::string* plaintext) {
  plaintext->clear();
  if (row.size() < 2) return Status::Corruption("sealed row truncated");
  const auto version = static_cast<std::uint8_t>(row[0]);
  const auto cipher = static_cast<std::uint8_t>(row[1]);
  if (version != kFormatVersion) {
    return Status::Corruption("sealed row has unknown format version " + std::to_string(version));
  }
  if (Status c = CheckCipher(cipher); !c.ok()) return c;
  return crypto::Open(static_cast<crypto::CipherId>(cipher), key, AssociatedData(cipher, table, storage_key),
                      row.substr(2), plaintext);
}

void SealPersonRow(crypto::CipherId cipher, const crypto::SecretKey& key, std::uint32_t slot, TableId table,
                   std::string_view storage_key, std::string_view plaintext, std::string* out) {
  const auto c = static_cast<std::uint8_t>(cipher);
  out->push_back(static_cast<char>(kPersonRowVersion));
  out->push_back(static_cast<char>(c));
  util::PutFixed32BE(out, slot);
  crypto::Seal(cipher, key, PersonRowAssociatedData(c, table, slot, storage_key), plaintext, out);
}

Status PersonRowSlot(std::string_view row, std::uint32_t* slot) {
  if (row.size() < kPersonRowHeader) return Status::Corruption("sealed row truncated");
  const auto version = static_cast<std::uint8_t>(row[0]);
  if (version != kPersonRowVersion) {
    return Status::Corruption("sealed row has unknown format version " + std::to_string(version));
  }
  *slot = util::DecodeFixed32BE(row.data() + 2);
  return Status::OK();
}

Status OpenPersonRow(const crypto::SecretKey& key, TableId table, std::string_view storage_key,
                     std::string_view row, std::string* plaintext) {
  plaintext->clear();
  std::uint32_t slot = 0;
  if (Status s = PersonRowSlot(row, &slot); !s.ok()) return s;
  const auto cipher = static_cast<std::uint8_t>(row[1]);
  if (Status c = CheckCipher(cipher); !c.ok()) return c;
  return crypto::Open(static_cast<crypto::CipherId>(cipher), key,
                      PersonRowAssociatedData(cipher, table, slot, storage_key), row.substr(kPersonRowHeader),
                      plaintext);
}

void SealPlain(TableId table, std::string_view storage_key, std::string_view payload,
               std::string* out) {
  out->append(payload);
  util::PutFixed64BE(out, PlainChecksum(table, storage_key, payload));
}

Status OpenPlain(TableId table, std::string_view storage_key, std::string_view row,
                 std::string_view* payload) {
  if (row.size() < 8) return Status::Corruption("row shorter than its checksum");
  std::string_view body = row.substr(0, row.size() - 8);
  const std::uint64_t stored = util::DecodeFixed64BE(row.data() + body.size());
  if (stored != PlainChecksum(table, storage_key, body)) {
    return Status::Corruption("checksum mismatch in table " +
                              std::to_string(static_cast<int>(table)));
  }
  *payload = body;
  return Status::OK();
}

}  // namespace shredkv::codec
