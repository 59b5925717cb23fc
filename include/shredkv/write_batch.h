// shredkv — WriteBatch: many operations on many people, committed atomically.
//
// Operations are applied in order inside one `data` transaction (and one
// `keys` transaction for the keys of new people): either all take effect or,
// if any fails, none does and Store::Write returns the first error, naming the
// operation's index.
// Thread safety: a batch is built by one thread; Store::Write may be called
// with different batches from many threads.
#ifndef SHREDKV_WRITE_BATCH_H_
#define SHREDKV_WRITE_BATCH_H_

#include <string>
#include <variant>
#include <vector>

#include "shredkv/types.h"
#include "shredkv/visibility.h"

namespace shredkv {

class SHREDKV_EXPORT WriteBatch {
 public:
  struct CreatePersonOp {
    PersonId id;
    std::vector<Identifier> identifiers;
    Attributes profile;
    std::int64_t created_ms = 0;  // 0: now
    bool imported = false;        // writes an import notice to the change feed
  };
  struct LinkIdentifierOp {
    PersonId id;
    Identifier identifier;
  };
  struct UnlinkIdentifierOp {
    PersonId id;
    Identifier identifier;
  };
  struct PatchProfileOp {
    PersonId id;
    ProfilePatch patch;
  };
  struct AppendEventOp {
    PersonId id;
    Event event;
    bool imported = false;  // history from an export: not subject to the tracking policy
  };
  struct PutRecordOp {
    PersonId id;
    Record record;
  };
  struct DeleteRecordOp {
    PersonId id;
    std::string collection;
    std::string key;
  };
  struct RectifyOp {
    PersonId id;
    Rectification rectification;
  };
  struct RecordConsentOp {
    PersonId id;
    ConsentRecord record;
  };
  using Op = std::variant<CreatePersonOp, LinkIdentifierOp, UnlinkIdentifierOp, PatchProfileOp,
                          AppendEventOp, PutRecordOp, DeleteRecordOp, RectifyOp, RecordConsentOp>;

  // Queues the creation of a person and returns the new person's ID (random,
  // chosen now so later operations of the batch can refer to the person).
  // Each identifier must be free; the person gets a fresh key and anonymous ID.
  PersonId CreatePerson(std::vector<Identifier> identifiers, Attributes profile = {});

  // Identifier must be free or already the person's (then a no-op).
  // LinkIdentifier, UnlinkIdentifier and PatchProfile of a person that
  // existed before the batch write, at commit, one rectification notice
  // per person naming what they changed ("identifier.<type>",
  // "profile.<attribute>"); none if they changed nothing, and none for a
  // person the batch creates (no recipient has their data yet). Put and
  // Delete likewise write one record notice per person ("record.put",
  // "record.delete"), none for a person the batch creates. Across people
  // the order of these notices is not promised. Rectify and RecordConsent
  // write their own notices as they apply, for every person (one the batch
  // creates too).
  void LinkIdentifier(const PersonId& id, Identifier identifier);
  // NotFound at commit if the identifier is not the person's.
  void UnlinkIdentifier(const PersonId& id, Identifier identifier);
  void PatchProfile(const PersonId& id, ProfilePatch patch);
  void AppendEvent(const PersonId& id, Event event);
  // `category` empty: a new record takes its collection's declared
  // category (else `general`); an existing one keeps its own (one past its
  // expiry or its collection's rule counts as gone: a new record).
  void Put(const PersonId& id, std::string collection, std::string key, std::string value,
           std::string category = {});
  // The same with the record's metadata (Record::metadata; validated at
  // commit: InvalidArgument for an unregistered purpose or a name too long).
  void Put(const PersonId& id, Record record);
  // Deleting an absent record is not an error.
  void Delete(const PersonId& id, std::string collection, std::string key);
  // Corrections with their own change-feed notice (one per Rectify that
  // changes something); see Store::Rectify.
  void Rectify(const PersonId& id, Rectification rectification);
  // Applies a consent decision or restriction change and appends it to the
  // person's history (time 0: now), with a restriction notice naming its
  // action ("action.grant", ...; NoticeKind::kRestriction). Unlike
  // Store::Restrict this does not wait for processing leases: use it for
  // people no worker can hold yet (import). A restriction that names
  // nothing (not `all`, no purpose, no category) is InvalidArgument at
  // commit, as Store::Restrict. A lift names, in its history entry and
  // notice, what it lifted; a lift of nothing restricted writes nothing
  // (Store::Unrestrict), and so does one whose spec names nothing (unlike
  // Store::Unrestrict, which takes that as everything).
  void RecordConsent(const PersonId& id, ConsentRecord record);
  // Queues an event of an imported person's history (not new tracking: the
  // tracking policy does not apply).
  void ImportEvent(const PersonId& id, Event event);
  // Queues an imported person: like CreatePerson, with the exported creation
  // time, and an import notice on the change feed.
  PersonId ImportPerson(std::vector<Identifier> identifiers, Attributes profile, std::int64_t created_ms);

  void Clear() { ops_.clear(); }
  std::size_t size() const { return ops_.size(); }
  bool empty() const { return ops_.empty(); }
  const std::vector<Op>& ops() const { return ops_; }

 private:
  // Splits batches by shard with their person IDs kept (ShardedStore).
  friend class WriteBatchAccess;
  std::vector<Op> ops_;
};

}  // namespace shredkv

#endif  // SHREDKV_WRITE_BATCH_H_
