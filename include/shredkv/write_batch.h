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

#include <cstdint>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "shredkv/types.h"
#include "shredkv/visibility.h"

namespace shredkv {

// What an imported event writes into its analytics row, which is in the
// clear and outlives the person's erasure (unless erased with
// AnalyticsOnErase::kDelete).
enum class ImportedAnalytics {
  // As AppendEvent: the event's name and its analytics_fields. For history
  // whose names and fields you chose: an export of one of your own stores.
  kAsExported,
  // The name "imported" and no field, whatever the event declares: nothing
  // the file chose is in the clear beyond the event's hour. For a file
  // someone else wrote (outside audit 36a, F3: a crafted export made an
  // erased person's SSN an analytics field, and readable after the purge).
  kAnonymous,
};

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
    ImportedAnalytics analytics = ImportedAnalytics::kAsExported;  // of an imported event
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
  // tracking policy does not apply); `analytics` says what its analytics
  // row holds.
  void ImportEvent(const PersonId& id, Event event, ImportedAnalytics analytics = ImportedAnalytics::kAsExported);
  // Queues an imported person: like CreatePerson, with the exported creation
  // time, and an import notice on the change feed.
  PersonId ImportPerson(std::vector<Identifier> identifiers, Attributes profile, std::int64_t created_ms);

  // Records `position` under `name` in the batch's commit: a consumer's
  // resume point (an input offset, a message sequence number) that is
  // durable exactly when the data it covers is, so a consumer that crashed
  // reads it back (Store::ReadProgress) and neither loses nor repeats
  // anything. `name`: 1 to 64 characters of [A-Za-z0-9._:-]
  // (InvalidArgument at commit otherwise). Names and positions are kept in
  // the clear and outlive every erasure: they must not identify anyone
  // (docs/security.md). A batch holding only positions commits them; set
  // twice in a batch, the last position is kept. Not on a ShardedStore,
  // whose writes are a commit per shard (InvalidArgument).
  void SetProgress(std::string name, std::uint64_t position);

  // Appends `other`'s operations, in their order, after this batch's, and
  // its positions after this batch's (as LevelDB's WriteBatch::Append): as
  // if they had been queued here. The people `other` creates keep the IDs
  // its CreatePerson returned. `other` may be this batch (its operations
  // are then queued twice).
  void Append(const WriteBatch& other);

  // Clears the operations and the positions.
  void Clear() {
    ops_.clear();
    progress_.clear();
  }
  // The number of operations (positions not counted).
  std::size_t size() const { return ops_.size(); }
  // True if the batch holds neither an operation nor a position.
  bool empty() const { return ops_.empty() && progress_.empty(); }
  const std::vector<Op>& ops() const { return ops_; }
  // The positions set, in the order set.
  const std::vector<std::pair<std::string, std::uint64_t>>& progress() const { return progress_; }

 private:
  // Splits batches by shard with their person IDs kept (ShardedStore).
  friend class WriteBatchAccess;
  std::vector<Op> ops_;
  std::vector<std::pair<std::string, std::uint64_t>> progress_;
};

}  // namespace shredkv

#endif  // SHREDKV_WRITE_BATCH_H_
