#include "engine/consent_index.h"

#include <vector>

#include "codec/sealed.h"

namespace shredkv::engine {

namespace {

using codec::TableId;

constexpr std::string_view kReadyKey = "consent_index";
constexpr std::size_t kRowsPerTxn = 10000;

}  // namespace

std::string ConsentIndex::Prefix(std::string_view purpose, bool granted) {
  std::string p(purpose);
  p.push_back('\0');  // purpose names are [a-z0-9_]: no name is a prefix of another past this byte
  p.push_back(granted ? '\1' : '\0');
  return p;
}

Status ConsentIndex::Set(storage::WriteTxn& txn, const PersonId& person, std::string_view purpose,
                         bool granted) const {
  const std::string other = Prefix(purpose, !granted) + std::string(person.view());
  if (Status d = txn.Delete(index_, other); !d.ok()) return d;
  const std::string key = Prefix(purpose, granted) + std::string(person.view());
  return txn.Put(index_, key, codec::PlainRow(TableId::kConsentByPurpose, key, ""));
}

Status ConsentIndex::Remove(storage::WriteTxn& txn, std::string_view consent_key) const {
  if (consent_key.size() <= PersonId::kSize) return Status::Corruption("consent key is too short");
  const std::string_view person = consent_key.substr(0, PersonId::kSize);
  const std::string_view purpose = consent_key.substr(PersonId::kSize);
  for (bool granted : {false, true}) {
    if (Status d = txn.Delete(index_, Prefix(purpose, granted) + std::string(person)); !d.ok()) return d;
  }
  return Status::OK();
}

Result<bool> ConsentIndex::Ready(const storage::ReadTxn& txn) const {
  std::string_view v;
  Status g = txn.Get(meta_, kReadyKey, &v);
  if (g.IsNotFound()) return false;
  if (!g.ok()) return g;
  return true;
}

Status ConsentIndex::MarkReady(storage::WriteTxn& txn) const {
  return txn.Put(meta_, kReadyKey, codec::PlainRow(TableId::kDataMeta, kReadyKey, "\x01"));
}

Status ConsentIndex::Backfill(storage::Environment& env) const {
  bool ready = false;
  if (Status v = env.View([&](storage::ReadTxn& txn) -> Status {
        auto r = Ready(txn);
        if (!r.ok()) return r.status();
        ready = *r;
        return Status::OK();
      });
      !v.ok() || ready) {
    return v;
  }
  // Entries are idempotent: a back-fill cut short starts again from the
  // first row, and the marker is written only after the last batch.
  std::string next;
  for (bool done = false; !done;) {
    std::string batch_next;  // set inside: Update may run the function again
    Status s = env.Update([&](storage::WriteTxn& txn) -> Status {
      auto cursor = txn.OpenCursor(consent_);
      if (!cursor.ok()) return cursor.status();
      auto& c = **cursor;
      std::vector<std::pair<std::string, bool>> rows;
      Status m = next.empty() ? c.SeekToFirst() : c.Seek(next);
      for (; m.ok() && c.Valid() && rows.size() < kRowsPerTxn; m = c.Next()) {
        std::string_view payload;
        if (Status o = codec::OpenPlain(TableId::kConsent, c.key(), c.value(), &payload); !o.ok()) return o;
        if (payload.empty() || c.key().size() <= PersonId::kSize) return Status::Corruption("consent row malformed");
        rows.emplace_back(std::string(c.key()), payload[0] == 1);
      }
      if (!m.ok()) return m;
      const bool more = c.Valid();
      batch_next = more ? std::string(c.key()) : std::string();
      cursor->reset();
      for (const auto& [key, granted] : rows) {
        const std::string entry = Prefix(std::string_view(key).substr(PersonId::kSize), granted) + key.substr(0, PersonId::kSize);
        if (Status p = txn.Put(index_, entry, codec::PlainRow(TableId::kConsentByPurpose, entry, "")); !p.ok()) return p;
      }
      done = !more;
      return done ? MarkReady(txn) : Status::OK();
    });
    if (!s.ok()) return s.WithContext("building the consent index");
    next = std::move(batch_next);
  }
  return Status::OK();
}

}  // namespace shredkv::engine
