// The keys of one person's sealed rows within one call. Every sealed row of
// a person names the key slot that seals it (codec/sealed.h): slot 0 is the
// person key, other slots are keys of one data category that can be erased
// on their own (a category erasure). A Keyring looks each slot up once and
// tells a shredded category key (its rows await purge and read as absent)
// from a key that is missing without an erasure (corruption).
// Thread safety: one per call; not shared between threads.
#ifndef SHREDKV_ENGINE_KEYRING_H_
#define SHREDKV_ENGINE_KEYRING_H_

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "codec/sealed.h"
#include "keys/key_store.h"
#include "shredkv/types.h"
#include "storage/environment.h"

namespace shredkv::engine {

class Keyring {
 public:
  // `person_key` is the person's slot-0 key, looked up by the caller (who
  // also decided the person is not erased).
  Keyring(keys::KeyStore* keys, const PersonId& person, keys::DekHandle person_key);

  const PersonId& person() const { return person_; }
  const keys::DekHandle& person_key() const { return person_key_; }

  // The key of `slot`; a null handle (with OK) if that category key was
  // erased. Corruption if the key is missing without an erasure.
  Result<keys::DekHandle> Key(std::uint32_t slot);
  // Makes a key created in the caller's write known (it is not stored yet).
  void Add(std::uint32_t slot, keys::DekHandle key);

  // The category slots whose key this keyring found (not erased when looked
  // up), in order.
  std::vector<std::uint32_t> LiveCategorySlots() const;

  // Opens a sealed row of the person with the key of the slot it names. If
  // that key was erased, returns OK with *shredded set and *plain empty.
  [[nodiscard]] Status Open(codec::TableId table, std::string_view key, std::string_view row, std::string* plain,
                            bool* shredded);

 private:
  keys::KeyStore* keys_;
  PersonId person_;
  keys::DekHandle person_key_;
  std::map<std::uint32_t, keys::DekHandle> by_slot_;  // category slots; null: erased
};

// Reads the person's profile: the merge of its rows, one per key slot,
// skipping rows whose category key was erased. *found is false if the person
// has no profile row at all. `slots`, if given, receives the slots of the
// readable rows.
[[nodiscard]] Status ReadProfile(const storage::ReadTxn& txn, storage::Table profiles, Keyring& keyring,
                                 Attributes* out, bool* found, std::set<std::uint32_t>* slots = nullptr);

}  // namespace shredkv::engine

#endif  // SHREDKV_ENGINE_KEYRING_H_
