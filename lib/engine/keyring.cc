#include "engine/keyring.h"

#include "codec/row_codec.h"
#include "crypto/secure_memory.h"

namespace shredkv::engine {

Keyring::Keyring(keys::KeyStore* keys, const PersonId& person, keys::DekHandle person_key)
    : keys_(keys), person_(person), person_key_(std::move(person_key)) {}

Result<keys::DekHandle> Keyring::Key(std::uint32_t slot) {
  if (slot == keys::kPersonSlot) return person_key_;  // no map node on the common path
  auto it = by_slot_.find(slot);
  if (it != by_slot_.end()) return it->second;
  auto dek = keys_->GetDek(person_, slot);
  if (dek.ok()) {
    by_slot_.emplace(slot, *dek);
    return dek;
  }
  if (!dek.status().IsNotFound()) return dek.status();
  auto erased = keys_->IsSlotErased(person_, slot);
  if (!erased.ok()) return erased.status();
  if (!*erased) {
    // The whole person erased since this read took their key: a writer in
    // another process (a read-only open beside it) erased them mid-read.
    auto person_erased = keys_->IsErased(person_);
    if (!person_erased.ok()) return person_erased.status();
    if (*person_erased) return Status::Erased("person " + person_.ToHex() + " was erased");
    return Status::Corruption("a row of person " + person_.ToHex() + " is sealed under key slot " +
                              std::to_string(slot) + ", which has no key and was not erased");
  }
  by_slot_.emplace(slot, nullptr);
  return keys::DekHandle{};
}

std::vector<std::uint32_t> Keyring::LiveCategorySlots() const {
  std::vector<std::uint32_t> slots;
  for (const auto& [slot, key] : by_slot_) {
    if (key != nullptr) slots.push_back(slot);
  }
  return slots;
}

void Keyring::Add(std::uint32_t slot, keys::DekHandle key) { by_slot_.insert_or_assign(slot, std::move(key)); }

Status Keyring::Open(codec::TableId table, std::string_view key, std::string_view row, std::string* plain,
                     bool* shredded) {
  plain->clear();
  *shredded = false;
  std::uint32_t slot = 0;
  if (Status s = codec::PersonRowSlot(row, &slot); !s.ok()) return s;
  auto dek = Key(slot);
  if (!dek.ok()) return dek.status();
  if (*dek == nullptr) {
    *shredded = true;
    return Status::OK();
  }
  return codec::OpenPersonRow(**dek, table, key, row, plain);
}

Status ReadProfile(const storage::ReadTxn& txn, storage::Table profiles, Keyring& keyring, Attributes* out,
                   bool* found, std::set<std::uint32_t>* slots) {
  out->clear();
  *found = false;
  const std::string_view prefix = keyring.person().view();
  auto cursor = txn.OpenCursor(profiles);
  if (!cursor.ok()) return cursor.status();
  auto& c = **cursor;
  Status m = c.Seek(prefix);
  for (; m.ok() && c.Valid() && c.key().substr(0, prefix.size()) == prefix; m = c.Next()) {
    *found = true;
    std::string plain;
    bool shredded = false;
    if (Status o = keyring.Open(codec::TableId::kProfiles, c.key(), c.value(), &plain, &shredded); !o.ok()) {
      return o.WithContext("profile of " + keyring.person().ToHex());
    }
    if (shredded) continue;
    // The first readable row decodes straight into *out; a later one (a
    // category slot) is merged by moving its map nodes, not copying them.
    Attributes part;
    Status d = codec::DecodeProfile(plain, out->empty() ? out : &part);
    crypto::Wipe(&plain);
    if (!d.ok()) return d.WithContext("profile of " + keyring.person().ToHex());
    while (!part.empty()) {
      auto node = part.extract(part.begin());
      auto placed = out->insert(std::move(node));
      if (!placed.inserted) placed.position->second = std::move(placed.node.mapped());
    }
    if (slots != nullptr) {
      std::uint32_t slot = 0;
      if (Status s = codec::PersonRowSlot(c.value(), &slot); !s.ok()) return s;
      slots->insert(slot);
    }
  }
  return m;
}

}  // namespace shredkv::engine
