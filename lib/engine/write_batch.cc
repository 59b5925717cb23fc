#include "shredkv/write_batch.h"

#include "crypto/random.h"
#include "crypto/secure_memory.h"

namespace shredkv {

PersonId WriteBatch::CreatePerson(std::vector<Identifier> identifiers, Attributes profile) {
  (void)crypto::Init();
  PersonId id(crypto::RandomArray<PersonId::kSize>());
  ops_.emplace_back(CreatePersonOp{id, std::move(identifiers), std::move(profile)});
  return id;
}

void WriteBatch::Rectify(const PersonId& id, Rectification rectification) {
  ops_.emplace_back(RectifyOp{id, std::move(rectification)});
}

PersonId WriteBatch::ImportPerson(std::vector<Identifier> identifiers, Attributes profile,
                                  std::int64_t created_ms) {
  PersonId id = CreatePerson(std::move(identifiers), std::move(profile));
  auto& op = std::get<CreatePersonOp>(ops_.back());
  op.created_ms = created_ms;
  op.imported = true;
  return id;
}

void WriteBatch::LinkIdentifier(const PersonId& id, Identifier identifier) {
  ops_.emplace_back(LinkIdentifierOp{id, std::move(identifier)});
}

void WriteBatch::UnlinkIdentifier(const PersonId& id, Identifier identifier) {
  ops_.emplace_back(UnlinkIdentifierOp{id, std::move(identifier)});
}

void WriteBatch::PatchProfile(const PersonId& id, ProfilePatch patch) {
  ops_.emplace_back(PatchProfileOp{id, std::move(patch)});
}

void WriteBatch::AppendEvent(const PersonId& id, Event event) {
  ops_.emplace_back(AppendEventOp{id, std::move(event)});
}

void WriteBatch::Put(const PersonId& id, std::string collection, std::string key, std::string value,
                     std::string category) {
  ops_.emplace_back(
      PutRecordOp{id, Record{std::move(collection), std::move(key), std::move(value), std::move(category), {}}});
}

void WriteBatch::Put(const PersonId& id, Record record) { ops_.emplace_back(PutRecordOp{id, std::move(record)}); }

void WriteBatch::ImportEvent(const PersonId& id, Event event, ImportedAnalytics analytics) {
  ops_.emplace_back(AppendEventOp{id, std::move(event), true, analytics});
}

void WriteBatch::RecordConsent(const PersonId& id, ConsentRecord record) {
  ops_.emplace_back(RecordConsentOp{id, std::move(record)});
}

void WriteBatch::SetProgress(std::string name, std::uint64_t position) {
  progress_.emplace_back(std::move(name), position);
}

void WriteBatch::Append(const WriteBatch& other) {
  if (&other == this) {
    const WriteBatch copy = other;
    Append(copy);
    return;
  }
  ops_.insert(ops_.end(), other.ops_.begin(), other.ops_.end());
  progress_.insert(progress_.end(), other.progress_.begin(), other.progress_.end());
}

void WriteBatch::Delete(const PersonId& id, std::string collection, std::string key) {
  ops_.emplace_back(DeleteRecordOp{id, std::move(collection), std::move(key)});
}

}  // namespace shredkv
