// libFuzzer harness: a byte-driven sequence of store operations applied both
// to a real Store (public API only) and to an in-memory model.
//
// Operations: create person, link identifier, patch profile, append event,
// put / delete record, erase (with suppression and every analytics mode),
// unsuppress, restrict / unrestrict, rotate epoch, purge, compact, close and
// reopen, retention rules for record collections, an advancing clock and
// sweeps. After every step each person of the model is read back through
// every read path (GetPerson with its creation time, Resolve, GetProfile,
// LookupProfile, ScanEvents, Get, GetRecord, ScanRecords, GetRestriction,
// GetConsent, Export), FindRecords is asked by every purpose, recipient and
// a few expiry bounds, and all must agree with the model; every
// call's status must be the one the model predicts. An erased person must be
// Erased or NotFound on every read path and no read may return any of its
// data. A disagreement aborts (libFuzzer reports it as a crash with the input).
//
// The change feed is modelled too: every call that the contract says writes
// a notice (a link, a profile change, a record put or delete, a restriction
// or its lift, an erasure) adds one with the kind, person, time and names
// the contract gives, and after every step ReadFeed and each person's export
// must return exactly the model's notices — cursors consecutive, never
// reused after an acknowledgement or a sweep. Feed actions take no input
// bytes (so the corpus keeps its meaning): every reopen step acknowledges up
// to the middle notice (after checking that a cursor past the newest is
// refused), and the "notes" collection's rule is also the feed rule, so the
// clock's steps expire notices and sweeps delete them.
//
// Op 17 takes a second byte since stop 31: a close and reopen (as before,
// for two of its seven values since stop 32, three before), or one of the
// operations added then — UnlinkIdentifier, Rectify (profile and one
// identifier replacement), SetConsent (a withdrawal of "analytics" stops
// tracking until a grant) and EraseCategory (a category's events leave
// every read, their analytics rows leave the person's export; NotFound for
// a category never written, Erased for one erased with nothing written
// since) — or, since stop 32 in place of the third reopen, a WriteBatch
// (Batch below). Kept under one code so earlier corpus inputs keep their
// meaning up to their first op 17.
//
// Since stop 33 (review of stop 32, F10) a batch that must fail must name
// in Write's message the operation the model predicts fails first, and a
// batch's operations have variants drawn from bits of their bytes that the
// modulo of their choices dropped (ConsumeSplit; earlier inputs read the
// same bytes up to their first put with metadata): ImportPerson (with an
// exported creation time and an import notice), ImportEvent (past the
// tracking policy), a restriction or lift through RecordConsent, and a put
// with a category and RecordMetadata (an own expiry, purposes, recipients,
// origin, automated decision; an eighth invalid). The model keeps each
// person's creation time and each record's category and metadata; a record
// past its own expiry is gone from every read, and a sweep deletes it.
//
// Since stop 34 every check also takes a processing lease on each person
// (AcquireLease; no input bytes, so the corpus keeps its meaning), for a
// purpose that rotates with the check: refused (Restricted) exactly when
// the person restricted everything or the purpose, or the purpose's basis
// wants consent the model does not hold (marketing: a grant; analytics: no
// objection); Erased or NotFound for erased people and those of failed
// batches; InvalidArgument for an unregistered purpose. A granted lease's
// GetProfile, ScanEvents, ScanRecords and Get must leave out exactly what
// the person's restricted categories hold and the records collected only
// for other purposes.
//
// Each input runs in a fresh store directory (under /dev/shm when present),
// with an injected clock (advanced only by the AdvanceClock step), kNoSync
// durability and a 1 MiB first map.
//
// Records expire by their collection's rule and their last-write time: the
// time index holds entries only under a rule, and a rule added later is
// back-filled from the sealed rows (data format 4). The model keeps each
// record's write time; a read hides what is past the rule, a sweep deletes
// it for good (the model drops it), and a rule removed or lengthened shows
// again what no sweep deleted — so a record the index missed, or one it
// swept wrongly, disagrees. A record's own expiry (RecordMetadata) applies
// whatever the rules: whichever comes first.
#include <fuzzer/FuzzedDataProvider.h>
#include <malloc.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iterator>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "shredkv/shredkv.h"

namespace {

using namespace shredkv;

constexpr std::int64_t kClockMs = 1'700'000'000'000;
constexpr std::size_t kMaxSteps = 40;
constexpr std::size_t kMaxPeople = 6;

[[noreturn]] void Fail(const std::string& what) {
  std::fprintf(stderr, "fuzz_store_model: model disagreement: %s\n", what.c_str());
  std::abort();
}

void Expect(bool condition, const std::string& what) {
  if (!condition) Fail(what);
}

void ExpectStatus(const Status& s, StatusCode want, const std::string& what) {
  if (s.code() != want) {
    Fail(what + ": got " + s.ToString() + ", model expects code " +
         std::to_string(static_cast<int>(want)));
  }
}

void ExpectOneOf(const Status& s, const std::set<StatusCode>& want, const std::string& what) {
  if (want.count(s.code()) != 0) return;
  std::string codes;
  for (StatusCode c : want) codes += (codes.empty() ? "" : " or ") + std::to_string(static_cast<int>(c));
  Fail(what + ": got " + s.ToString() + ", model expects code " + codes);
}

// FUZZ_STORE_MODEL_TRACE=1 prints each step's operation, each patch and
// the feed as read, for explaining a disagreement.
bool Tracing() {
  static const bool tracing = std::getenv("FUZZ_STORE_MODEL_TRACE") != nullptr;
  return tracing;
}

// The status every read of an erased person may give.
void ExpectGone(const Status& s, const std::string& what) {
  if (!s.IsErased() && !s.IsNotFound()) Fail(what + ": erased person read gave " + s.ToString());
}

// ---- the model -------------------------------------------------------------------

struct ModelEvent {
  std::string name;
  std::int64_t ts_ms = 0;
  Attributes properties;
  std::vector<std::string> analytics_fields;
  std::string category;  // resolved: "general" when none given
};

struct ModelRecord {
  std::string value;
  std::int64_t written_ms = 0;  // the store's clock at the put
  std::string category;         // resolved: "general" unless a batch put named another or kept it
  RecordMetadata metadata;      // canonical: purposes and recipients sorted, without duplicates
};

struct ModelRestriction {
  bool all = false;
  std::set<std::string> purposes;
  std::set<std::string> categories;
};

// The state of a person's key for a category other than "general".
enum class CategoryKey { kNone, kLive, kErased };

struct ModelPerson {
  PersonId id;
  std::int64_t created_ms = 0;  // PersonInfo::created_ms
  bool erased = false;
  std::map<std::string, bool> consent;              // purpose → granted
  std::map<std::string, CategoryKey> category_keys;  // absent: kNone
  std::set<Identifier> identifiers;
  Attributes profile;
  std::vector<ModelEvent> events;  // in (ts, append order)
  std::map<std::pair<std::string, std::string>, ModelRecord> records;  // (collection, key) → record
  ModelRestriction restriction;
};

struct ModelNotice {
  std::uint64_t cursor = 0;
  NoticeKind kind = NoticeKind::kRectification;
  PersonId person;
  std::int64_t time_ms = 0;
  std::vector<std::string> names;  // sorted, unique
};

struct Model {
  std::vector<ModelPerson> people;
  std::vector<ModelNotice> notices;  // unacknowledged and unswept, by cursor
  std::uint64_t newest_cursor = 0;   // the last cursor issued (never reused)
  std::map<Identifier, std::size_t> owner;  // identifier → index into people (live only)
  std::set<Identifier> suppressed;
  std::vector<std::string> erasure_requests;
  std::vector<PersonId> phantoms;  // created by batches that failed: NotFound for good
  RetentionRules rules;  // collections and the feed (events and analytics: none)
};

// Small pools so that identifiers, names and keys collide often.
const char* const kAttributeNames[] = {"name", "city", "age", "vip", "blob"};
const char* const kEventNames[] = {"view", "purchase", "login"};
const char* const kEventCategories[] = {"", "behaviour", "location"};
const char* const kCollections[] = {"orders", "notes"};
const char* const kPurposes[] = {"analytics", "marketing", "support"};
const char* const kCategories[] = {"general", "behaviour", "location", "contact"};
// A batch put's category: empty (keep the record's, else the collection's:
// "general") a quarter of the time.
const char* const kRecordCategories[] = {"", "general", "behaviour", "contact"};
const char* const kRecipients[] = {"acme", "bank"};
// An import's exported creation time (0: now, as for CreatePerson).
const std::int64_t kImportCreatedMs[] = {0, 1, -1, kClockMs - 86'400'000, kClockMs + 60'000,
                                         946'684'800'000, std::numeric_limits<std::int64_t>::min(),
                                         std::numeric_limits<std::int64_t>::max()};

// One byte, read as ConsumeIntegralInRange<int>(0, n - 1) reads it (n <= 256:
// one byte from the end, modulo n; 0 when none is left), and what the modulo
// dropped (the byte divided by n). Operations added since stop 33 draw their
// variants from those dropped bits, so an earlier input consumes the same
// bytes as before and changes meaning only where a variant is drawn.
struct Split {
  int value = 0;
  int rest = 0;
};

Split ConsumeSplit(FuzzedDataProvider& in, int n) {
  const int b = in.ConsumeIntegral<std::uint8_t>();
  return Split{b % n, b / n};
}

// Identifier n (0..5) of the email (type 0) or customer ID (type 1) pool.
Identifier IdentifierOf(std::size_t type, int n) {
  if (type == 0) return Identifier{"email", "u" + std::to_string(n) + "@x.org"};
  return Identifier{"customer_id", "c" + std::to_string(n)};
}

Identifier PickIdentifier(FuzzedDataProvider& in) {
  const std::size_t t = in.ConsumeIntegralInRange<std::size_t>(0, 1);
  const int n = in.ConsumeIntegralInRange<int>(0, 5);
  return IdentifierOf(t, n);
}

Value PickValue(FuzzedDataProvider& in) {
  switch (in.ConsumeIntegralInRange<int>(0, 5)) {
    case 0: return Value(in.ConsumeRandomLengthString(12));
    case 1: return Value(in.ConsumeIntegral<std::int64_t>());
    case 2: return Value(static_cast<double>(in.ConsumeIntegral<std::int32_t>()) / 8.0);
    case 3: return Value(in.ConsumeBool());
    case 4: return Value(Timestamp{in.ConsumeIntegral<std::int64_t>()});
    default: return Value::Bytes(in.ConsumeRandomLengthString(12));
  }
}

Attributes PickAttributes(FuzzedDataProvider& in, std::size_t max) {
  Attributes out;
  const std::size_t n = in.ConsumeIntegralInRange<std::size_t>(0, max);
  for (std::size_t i = 0; i < n; ++i) {
    out.insert_or_assign(in.PickValueInArray(kAttributeNames), PickValue(in));
  }
  return out;
}

// Up to two attributes set and up to two names unset (either may repeat or
// overlap: the calls' contracts say what that means).
ProfilePatch PickPatch(FuzzedDataProvider& in) {
  ProfilePatch patch;
  patch.set = PickAttributes(in, 2);
  const std::size_t unset = in.ConsumeIntegralInRange<std::size_t>(0, 2);
  for (std::size_t u = 0; u < unset; ++u) patch.unset.emplace_back(in.PickValueInArray(kAttributeNames));
  return patch;
}

std::string Describe(const Identifier& id) { return id.type + ":" + id.value; }

// ---- the harness -----------------------------------------------------------------

class Harness {
 public:
  explicit Harness(std::string dir) : dir_(std::move(dir)) {}

  ~Harness() {
    if (store_) {
      (void)store_->Close();
      store_.reset();
    }
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  void Run(FuzzedDataProvider& in) {
    OpenStore(/*create=*/true);
    for (std::size_t step = 0; step < kMaxSteps && in.remaining_bytes() > 0; ++step) {
      Step(in);
      CheckAll();
    }
    Reopen();
    CheckAll();
  }

 private:
  Options StoreOptions(bool create) const {
    Options o;
    o.directory = dir_;
    o.create_if_missing = create;
    o.durability = Durability::kNoSync;
    o.initial_map_size = 1u << 20;
    o.key_provider = NewRawKeyProvider(std::string(32, 'f'));
    o.clock = [this] { return now_; };
    o.iterator_batch_size = 3;  // several batches per scan even for small inputs
    o.rotation_batch_size = 2;
    return o;
  }

  void OpenStore(bool create) {
    auto s = Store::Open(StoreOptions(create));
    if (!s.ok()) Fail("Open: " + s.status().ToString());
    store_ = std::move(s).value();
  }

  void Reopen() {
    const Status c = store_->Close();
    ExpectStatus(c, StatusCode::kOk, "Close");
    store_.reset();
    OpenStore(/*create=*/false);
  }

  // Index of a person of the model, or nullopt when there are none.
  static std::optional<std::size_t> PickPerson(const Model& m, FuzzedDataProvider& in) {
    if (m.people.empty()) return std::nullopt;
    return in.ConsumeIntegralInRange<std::size_t>(0, m.people.size() - 1);
  }

  // What a write to person `p` must return before any other check.
  static StatusCode PersonState(const ModelPerson& p) {
    return p.erased ? StatusCode::kErased : StatusCode::kOk;
  }

  // The records of `p` a read must show, as a read returns them: those not
  // Gone at the clock's time.
  std::map<std::pair<std::string, std::string>, Record> LiveRecords(const ModelPerson& p) const {
    std::map<std::pair<std::string, std::string>, Record> out;
    for (const auto& [key, record] : p.records) {
      if (!Gone(key.first, record)) {
        out.emplace(key, Record{key.first, key.second, record.value, record.category, record.metadata});
      }
    }
    return out;
  }

  // Past its collection's rule or its own expiry (types.h: "from then on it
  // is gone for every reader": at expires_ms itself too).
  bool Gone(const std::string& collection, const ModelRecord& record) const {
    auto rule = model_.rules.collections.find(collection);
    return (rule != model_.rules.collections.end() && record.written_ms <= now_ - rule->second) ||
           (record.metadata.expires_ms != 0 && record.metadata.expires_ms <= now_);
  }

  static bool SameRecord(const Record& a, const Record& b) {
    return a.collection == b.collection && a.key == b.key && a.value == b.value && a.category == b.category &&
           a.metadata == b.metadata;
  }

  // A notice the store must have written now; none for empty names unless
  // `always` (an erasure notice names nothing).
  void Notify(Model& m, NoticeKind kind, const PersonId& person, const std::set<std::string>& names,
              bool always = false) const {
    if (names.empty() && !always) return;
    m.notices.push_back(
        ModelNotice{++m.newest_cursor, kind, person, now_, std::vector<std::string>(names.begin(), names.end())});
  }

  // How many notices from the oldest on are past the feed rule: the prefix
  // reads skip and a sweep deletes.
  std::size_t ExpiredNotices() const {
    if (model_.rules.feed <= 0) return 0;
    std::size_t n = 0;
    while (n < model_.notices.size() && model_.notices[n].time_ms <= now_ - model_.rules.feed) ++n;
    return n;
  }

  void Step(FuzzedDataProvider& in) {
    const int op = in.ConsumeIntegralInRange<int>(0, 17);
    if (Tracing()) std::fprintf(stderr, "step: op %d\n", op);
    switch (op) {
      case 0: case 1: return Create(in);
      case 2: return Link(in);
      case 3: return Patch(in);
      case 4: case 5: return Append(in);
      case 6: return PutRecord(in);
      case 7: return DeleteRecord(in);
      case 8: return EraseOne(in);
      case 9: return RestrictOrLift(in);
      case 10: return Unsuppress(in);
      case 11: return Rotate();
      case 12: return PurgeSome(in);
      case 13: return Compact();
      case 14: return AdvanceClock(in);
      case 15: return SetCollectionRule(in);
      case 16: return SweepAll();
      default: return MoreOrReopen(in);
    }
  }

  void MoreOrReopen(FuzzedDataProvider& in) {
    const int op = in.ConsumeIntegralInRange<int>(0, 6);
    if (Tracing()) std::fprintf(stderr, "  sub-op %d\n", op);
    switch (op) {
      case 2: return Batch(in);
      case 3: return Unlink(in);
      case 4: return RectifyOne(in);
      case 5: return Consent(in);
      case 6: return EraseCategoryOf(in);
      default: return ReopenAndAcknowledge();
    }
  }

  // ---- operations: a single call, or one operation of a batch ----------------------
  //
  // Each operation is picked from the input (in the order its single call
  // always consumed it, so the corpus keeps its meaning), predicted against
  // a model and applied to it: `model_` for a single call, the batch's
  // copy of it (kept only if the store committed the batch) for a batch.
  // An Apply returns the names a change-feed notice gives what it changed.

  struct CreateArgs {
    std::vector<Identifier> identifiers;  // distinct
    Attributes profile;
    // In a batch, an ImportPerson with this creation time (a quarter of
    // the values of the count's byte, since stop 33); a single call has no
    // import and ignores it.
    std::optional<std::int64_t> import_created_ms;
  };

  static CreateArgs PickCreate(FuzzedDataProvider& in) {
    CreateArgs a;
    const Split count = ConsumeSplit(in, 2);
    const std::size_t n = 1 + static_cast<std::size_t>(count.value);
    if (count.rest % 4 == 3) {
      a.import_created_ms = kImportCreatedMs[static_cast<std::size_t>(count.rest / 4) % std::size(kImportCreatedMs)];
    }
    std::set<Identifier> unique;
    for (std::size_t i = 0; i < n; ++i) {
      Identifier id = PickIdentifier(in);
      if (unique.insert(id).second) a.identifiers.push_back(std::move(id));
    }
    a.profile = PickAttributes(in, 2);
    return a;
  }

  // With one identifier suppressed and another taken, either error is right
  // (the contract gives no precedence; the store reports the first it meets).
  static std::set<StatusCode> CreateWant(const Model& m, const CreateArgs& a) {
    std::set<StatusCode> want;
    for (const Identifier& id : a.identifiers) {
      if (m.suppressed.count(id) != 0) want.insert(StatusCode::kSuppressed);
      if (m.owner.count(id) != 0) want.insert(StatusCode::kAlreadyExists);
    }
    if (want.empty()) want.insert(StatusCode::kOk);
    return want;
  }

  // An import's notice is written as the operation applies (like
  // Rectify's and RecordConsent's; no names), and it keeps the exported
  // creation time (0: now).
  void CreateApply(Model& m, const PersonId& id, const CreateArgs& a, bool imported) const {
    ModelPerson p;
    p.id = id;
    p.created_ms = imported && *a.import_created_ms != 0 ? *a.import_created_ms : now_;
    if (imported) Notify(m, NoticeKind::kImport, id, {}, /*always=*/true);
    p.identifiers.insert(a.identifiers.begin(), a.identifiers.end());
    p.profile = a.profile;
    for (const Identifier& x : a.identifiers) m.owner[x] = m.people.size();
    m.people.push_back(std::move(p));
  }

  static StatusCode LinkWant(const Model& m, std::size_t i, const Identifier& id) {
    StatusCode want = PersonState(m.people[i]);
    if (want != StatusCode::kOk) return want;
    if (m.suppressed.count(id) != 0) return StatusCode::kSuppressed;
    auto o = m.owner.find(id);
    return o != m.owner.end() && o->second != i ? StatusCode::kAlreadyExists : StatusCode::kOk;
  }

  // A link of an identifier the person has already changes nothing.
  static std::set<std::string> LinkApply(Model& m, std::size_t i, const Identifier& id) {
    if (!m.people[i].identifiers.insert(id).second) return {};
    m.owner[id] = i;
    return {"identifier." + id.type};
  }

  static StatusCode UnlinkWant(const Model& m, std::size_t i, const Identifier& id) {
    const StatusCode want = PersonState(m.people[i]);
    return want == StatusCode::kOk && m.people[i].identifiers.count(id) == 0 ? StatusCode::kNotFound : want;
  }

  static std::set<std::string> UnlinkApply(Model& m, std::size_t i, const Identifier& id) {
    m.people[i].identifiers.erase(id);
    m.owner.erase(id);
    return {"identifier." + id.type};
  }

  // The documented order: set entries are written, unset names removed (an
  // attribute both set and unset keeps the set's value). The names are of
  // each attribute whose value or presence changed.
  static std::set<std::string> PatchApply(Model& m, std::size_t i, const ProfilePatch& patch) {
    Attributes& profile = m.people[i].profile;
    const Attributes before = profile;
    for (const auto& [name, value] : patch.set) profile.insert_or_assign(name, value);
    for (const std::string& name : patch.unset) {
      if (patch.set.count(name) == 0) profile.erase(name);
    }
    std::set<std::string> changed;
    auto note = [&](const std::string& name) {
      auto a = before.find(name);
      auto b = profile.find(name);
      if ((a == before.end()) != (b == profile.end()) || (a != before.end() && !(a->second == b->second))) {
        changed.insert("profile." + name);
      }
    };
    for (const auto& [name, value] : patch.set) note(name);
    for (const std::string& name : patch.unset) note(name);
    return changed;
  }

  // `imported`: in a batch, an ImportEvent (history from an export, not
  // subject to the tracking policy) — about a quarter of the values of the
  // time's byte, since stop 33; a single call ignores it.
  static Event PickEvent(FuzzedDataProvider& in, bool* imported = nullptr) {
    Event e;
    e.name = in.PickValueInArray(kEventNames);
    const Split ts = ConsumeSplit(in, 7);
    e.ts_ms = kClockMs + (ts.value - 3) * std::int64_t{1000};
    if (imported != nullptr) *imported = ts.rest % 4 == 3;
    e.properties = PickAttributes(in, 3);
    for (const auto& [name, value] : e.properties) {
      if (in.ConsumeBool()) e.analytics_fields.push_back(name);
    }
    e.category = in.PickValueInArray(kEventCategories);
    return e;
  }

  static std::string CategoryOf(const Event& e) { return e.category.empty() ? std::string(kGeneralCategory) : e.category; }

  static StatusCode AppendWant(const Model& m, std::size_t i, const Event& e, bool imported = false) {
    const ModelPerson& p = m.people[i];
    const StatusCode want = PersonState(p);
    if (want != StatusCode::kOk || imported) return want;
    // Tracking is processing for "analytics"; a withdrawal is an objection.
    auto consent = p.consent.find("analytics");
    if (p.restriction.all || p.restriction.purposes.count("analytics") != 0 ||
        p.restriction.categories.count(CategoryOf(e)) != 0 || (consent != p.consent.end() && !consent->second)) {
      return StatusCode::kRestricted;
    }
    return StatusCode::kOk;
  }

  static void AppendApply(Model& m, std::size_t i, const Event& e) {
    ModelPerson& p = m.people[i];
    const std::string category = CategoryOf(e);
    if (category != kGeneralCategory) p.category_keys[category] = CategoryKey::kLive;
    ModelEvent x{e.name, e.ts_ms, e.properties, e.analytics_fields, category};
    // Ordered by (ts, seq); seq grows with every append.
    auto pos = std::upper_bound(p.events.begin(), p.events.end(), x.ts_ms,
                                [](std::int64_t ts, const ModelEvent& y) { return ts < y.ts_ms; });
    p.events.insert(pos, std::move(x));
  }

  struct RecordArgs {
    std::string collection;
    std::string key;
    std::string value;  // a put's
    // A batch put's: WriteBatch::Put(id, Record) with this category and
    // metadata; else the put without either (a single Put has neither).
    bool with_record = false;
    std::string category;
    RecordMetadata metadata;
  };

  // `rest`: what the collection's byte left unused (ConsumeSplit).
  static RecordArgs PickRecordKey(FuzzedDataProvider& in, int* rest = nullptr) {
    RecordArgs a;
    const Split collection = ConsumeSplit(in, 2);  // as PickValueInArray(kCollections) read it
    a.collection = kCollections[collection.value];
    if (rest != nullptr) *rest = collection.rest;
    a.key = "k" + std::to_string(in.ConsumeIntegralInRange<int>(0, 4));
    return a;
  }

  // A put's key and value; in a batch, for half of the values of the
  // collection's byte (since stop 33), with a category and metadata drawn
  // from two more bytes (PickRecordMetadata).
  RecordArgs PickPut(FuzzedDataProvider& in, bool batch) const {
    int rest = 0;
    RecordArgs a = PickRecordKey(in, &rest);
    a.value = in.ConsumeRandomLengthString(40);
    if (batch && rest % 2 == 1) PickRecordMetadata(in, &a);
    return a;
  }

  // Purposes are listed in reverse order, recipients out of order and with
  // a duplicate (the store keeps both sorted and unique); an eighth of the values of
  // the second byte make the metadata invalid (an unregistered purpose or
  // an empty recipient).
  void PickRecordMetadata(FuzzedDataProvider& in, RecordArgs* a) const {
    const unsigned names = in.ConsumeIntegral<std::uint8_t>();
    const unsigned more = in.ConsumeIntegral<std::uint8_t>();
    a->with_record = true;
    RecordMetadata& m = a->metadata;
    for (int j = 2; j >= 0; --j) {
      if ((names & (1u << j)) != 0) m.purposes.emplace_back(kPurposes[j]);
    }
    switch ((names >> 3) & 3) {
      case 1: m.shared_with = {kRecipients[0]}; break;
      case 2: m.shared_with = {kRecipients[1], kRecipients[0]}; break;
      case 3: m.shared_with = {kRecipients[1], kRecipients[0], kRecipients[1]}; break;
      default: break;
    }
    if ((names & 0x20) != 0) m.origin = "signup form";
    m.automated_decision = (names & 0x40) != 0;
    // The record's own expiry: none (three in eight), now (gone at once),
    // or seconds ahead (the clock's steps cross them).
    static constexpr std::int64_t kExpiresIn[] = {0, 1000, 2500, 5000, 20000};
    m.expires_ms = more % 8 < 3 ? 0 : now_ + kExpiresIn[more % 8 - 3];
    a->category = kRecordCategories[(more / 8) % 4];
    if (more / 32 == 7) {
      if ((names & 0x80) != 0) {
        m.purposes.emplace_back("unregistered");
      } else {
        m.shared_with.emplace_back();
      }
    }
  }

  // write_batch.h: InvalidArgument for an unregistered purpose or a bad
  // name (types.h: 1..255 bytes each). The harness's purposes other than
  // "unregistered" are among the defaults.
  static bool ValidMetadata(const RecordMetadata& m) {
    auto bad = [](const std::string& name) { return name.empty() || name.size() > 255; };
    return std::none_of(m.purposes.begin(), m.purposes.end(),
                        [&](const std::string& p) { return bad(p) || p == "unregistered"; }) &&
           std::none_of(m.shared_with.begin(), m.shared_with.end(), bad);
  }

  // With the person erased and the metadata invalid either error is right
  // (the contract gives no precedence).
  static std::set<StatusCode> PutWant(const Model& m, std::size_t i, const RecordArgs& a) {
    std::set<StatusCode> want{PersonState(m.people[i])};
    if (!ValidMetadata(a.metadata)) {
      want.erase(StatusCode::kOk);
      want.insert(StatusCode::kInvalidArgument);
    }
    return want;
  }

  // The category named, else the record's own if it is there to keep (not
  // past its expiry or its collection's rule), else the collection's
  // ("general": none is declared). The metadata replaces the record's (a
  // put without any clears it).
  std::set<std::string> PutApply(Model& m, std::size_t i, const RecordArgs& a) const {
    ModelPerson& p = m.people[i];
    std::string category = a.category;
    if (category.empty()) {
      auto old = p.records.find({a.collection, a.key});
      category = old != p.records.end() && !Gone(a.collection, old->second) ? old->second.category
                                                                           : std::string(kGeneralCategory);
    }
    if (category != kGeneralCategory) p.category_keys[category] = CategoryKey::kLive;
    RecordMetadata metadata = a.metadata;
    for (auto* names : {&metadata.purposes, &metadata.shared_with}) {
      std::sort(names->begin(), names->end());
      names->erase(std::unique(names->begin(), names->end()), names->end());
    }
    p.records[{a.collection, a.key}] = ModelRecord{a.value, now_, std::move(category), std::move(metadata)};
    return {"record.put"};
  }

  // An absent record changes nothing. One past its own expiry or its
  // collection's rule but not swept yet is deleted without a notice
  // (outside audit 35a, F2; until stop 35 it was told).
  std::set<std::string> DeleteApply(Model& m, std::size_t i, const RecordArgs& a) const {
    auto& records = m.people[i].records;
    auto it = records.find({a.collection, a.key});
    if (it == records.end()) return {};
    const bool gone = Gone(a.collection, it->second);
    records.erase(it);
    if (gone) return {};
    return {"record.delete"};
  }

  // A profile correction and, half of the time, one identifier replaced by
  // another of its type.
  struct RectifyArgs {
    Rectification rectification;
    std::optional<std::pair<Identifier, Identifier>> replace;
  };

  static RectifyArgs PickRectify(FuzzedDataProvider& in) {
    RectifyArgs a;
    a.rectification.profile = PickPatch(in);
    if (in.ConsumeBool()) {
      Identifier old_id = PickIdentifier(in);
      Identifier new_id = IdentifierOf(old_id.type == "email" ? 0 : 1, in.ConsumeIntegralInRange<int>(0, 5));
      a.replace.emplace(std::move(old_id), std::move(new_id));
      a.rectification.identifiers.push_back(*a.replace);
    }
    return a;
  }

  // The contract's order: arguments, then the person, then the identifiers.
  static StatusCode RectifyWant(const Model& m, std::size_t i, const RectifyArgs& a) {
    const ProfilePatch& patch = a.rectification.profile;
    std::set<std::string> unset_names;
    for (const std::string& name : patch.unset) {
      if (!unset_names.insert(name).second || patch.set.count(name) != 0) return StatusCode::kInvalidArgument;
    }
    if (a.replace && a.replace->first == a.replace->second) return StatusCode::kInvalidArgument;
    const ModelPerson& p = m.people[i];
    const StatusCode want = PersonState(p);
    if (want != StatusCode::kOk || !a.replace) return want;
    const Identifier& n = a.replace->second;
    auto owner = m.owner.find(n);
    if (p.identifiers.count(a.replace->first) == 0) return StatusCode::kNotFound;
    if (m.suppressed.count(n) != 0) return StatusCode::kSuppressed;
    if (owner != m.owner.end() && owner->second != i) return StatusCode::kAlreadyExists;
    return StatusCode::kOk;
  }

  // Only what changed is named.
  static std::set<std::string> RectifyApply(Model& m, std::size_t i, const RectifyArgs& a) {
    ModelPerson& p = m.people[i];
    std::set<std::string> names;
    for (const std::string& name : a.rectification.profile.unset) {
      if (p.profile.erase(name) > 0) names.insert("profile." + name);
    }
    for (const auto& [name, value] : a.rectification.profile.set) {
      auto it = p.profile.find(name);
      if (it != p.profile.end() && it->second == value) continue;
      p.profile.insert_or_assign(name, value);
      names.insert("profile." + name);
    }
    if (a.replace) {
      p.identifiers.erase(a.replace->first);
      m.owner.erase(a.replace->first);
      p.identifiers.insert(a.replace->second);
      m.owner[a.replace->second] = i;
      names.insert("identifier." + a.replace->first.type);
    }
    return names;
  }

  // What Store::Restrict or Unrestrict (`lift`) of `spec`, or a batch's
  // RecordConsent of that restriction change, does: a restriction adds
  // what it names, a lift removes it (`all`: everything). A restriction
  // names everything it was asked for; a lift names what it lifted (a lift
  // of everything: `all` if it was restricted, and each purpose and
  // category that was — since stop 38, outside audit 38a F4), and one
  // that changed nothing writes no notice (no names returned).
  static std::set<std::string> RestrictApply(Model& m, std::size_t i, const RestrictionSpec& spec, bool lift) {
    ModelRestriction& r = m.people[i].restriction;
    const ModelRestriction before = r;
    const bool lift_all = lift && spec.all;
    if (lift_all) r = ModelRestriction{};
    if (!lift && spec.all) r.all = true;
    for (const std::string& x : spec.purposes) lift ? (void)r.purposes.erase(x) : (void)r.purposes.insert(x);
    for (const std::string& x : spec.categories) lift ? (void)r.categories.erase(x) : (void)r.categories.insert(x);
    if (lift && r.all == before.all && r.purposes == before.purposes && r.categories == before.categories) return {};
    std::set<std::string> names;
    if (lift_all) {
      if (before.all) names.insert("restriction.all");
      for (const std::string& x : before.purposes) names.insert("restriction.purpose." + x);
      for (const std::string& x : before.categories) names.insert("restriction.category." + x);
    } else {
      if (spec.all) names.insert("restriction.all");
      for (const std::string& x : spec.purposes) {
        if (!lift || before.purposes.count(x) != 0) names.insert("restriction.purpose." + x);
      }
      for (const std::string& x : spec.categories) {
        if (!lift || before.categories.count(x) != 0) names.insert("restriction.category." + x);
      }
    }
    names.insert(lift ? "action.unrestrict" : "action.restrict");
    return names;
  }

  static std::set<std::string> ConsentApply(Model& m, std::size_t i, const std::string& purpose, bool granted) {
    m.people[i].consent[purpose] = granted;
    return {granted ? "action.grant" : "action.withdraw", "consent." + purpose};
  }

  void Create(FuzzedDataProvider& in) {
    if (model_.people.size() >= kMaxPeople) return;
    const CreateArgs a = PickCreate(in);
    auto r = store_->CreatePerson(a.identifiers, a.profile);
    ExpectOneOf(r.status(), CreateWant(model_, a), "CreatePerson");
    if (r.ok()) CreateApply(model_, *r, a, /*imported=*/false);
  }

  void Link(FuzzedDataProvider& in) {
    auto i = PickPerson(model_, in);
    if (!i) return;
    const Identifier id = PickIdentifier(in);
    const Status s = store_->LinkIdentifier(model_.people[*i].id, id);
    ExpectStatus(s, LinkWant(model_, *i, id), "LinkIdentifier " + Describe(id));
    if (s.ok()) Notify(model_, NoticeKind::kRectification, model_.people[*i].id, LinkApply(model_, *i, id));
  }

  void Unlink(FuzzedDataProvider& in) {
    auto i = PickPerson(model_, in);
    if (!i) return;
    const Identifier id = PickIdentifier(in);
    const Status s = store_->UnlinkIdentifier(model_.people[*i].id, id);
    ExpectStatus(s, UnlinkWant(model_, *i, id), "UnlinkIdentifier " + Describe(id));
    if (s.ok()) Notify(model_, NoticeKind::kRectification, model_.people[*i].id, UnlinkApply(model_, *i, id));
  }

  void Patch(FuzzedDataProvider& in) {
    auto i = PickPerson(model_, in);
    if (!i) return;
    const ProfilePatch patch = PickPatch(in);
    if (Tracing()) {
      for (const auto& [name, value] : patch.set) std::fprintf(stderr, "  set %s\n", name.c_str());
      for (const std::string& name : patch.unset) std::fprintf(stderr, "  unset %s\n", name.c_str());
      for (const auto& [name, value] : model_.people[*i].profile) std::fprintf(stderr, "  has %s\n", name.c_str());
    }
    const Status s = store_->PatchProfile(model_.people[*i].id, patch);
    ExpectStatus(s, PersonState(model_.people[*i]), "PatchProfile");
    if (s.ok()) Notify(model_, NoticeKind::kRectification, model_.people[*i].id, PatchApply(model_, *i, patch));
  }

  void Append(FuzzedDataProvider& in) {
    auto i = PickPerson(model_, in);
    if (!i) return;
    const Event e = PickEvent(in);
    const Status s = store_->AppendEvent(model_.people[*i].id, e);
    ExpectStatus(s, AppendWant(model_, *i, e), "AppendEvent");
    if (s.ok()) AppendApply(model_, *i, e);
  }

  void PutRecord(FuzzedDataProvider& in) {
    auto i = PickPerson(model_, in);
    if (!i) return;
    const RecordArgs a = PickPut(in, /*batch=*/false);
    const Status s = store_->Put(model_.people[*i].id, a.collection, a.key, a.value);
    ExpectOneOf(s, PutWant(model_, *i, a), "Put");
    if (s.ok()) Notify(model_, NoticeKind::kRecordChange, model_.people[*i].id, PutApply(model_, *i, a));
  }

  void DeleteRecord(FuzzedDataProvider& in) {
    auto i = PickPerson(model_, in);
    if (!i) return;
    const RecordArgs a = PickRecordKey(in);
    const Status s = store_->Delete(model_.people[*i].id, a.collection, a.key);
    ExpectStatus(s, PersonState(model_.people[*i]), "Delete");
    if (s.ok()) Notify(model_, NoticeKind::kRecordChange, model_.people[*i].id, DeleteApply(model_, *i, a));
  }

  void RectifyOne(FuzzedDataProvider& in) {
    auto i = PickPerson(model_, in);
    if (!i) return;
    const RectifyArgs a = PickRectify(in);
    const Status s = store_->Rectify(model_.people[*i].id, a.rectification);
    ExpectStatus(s, RectifyWant(model_, *i, a), "Rectify");
    if (s.ok()) Notify(model_, NoticeKind::kRectification, model_.people[*i].id, RectifyApply(model_, *i, a));
  }

  void Consent(FuzzedDataProvider& in) {
    auto i = PickPerson(model_, in);
    if (!i) return;
    const std::string purpose = in.PickValueInArray(kPurposes);
    const bool granted = in.ConsumeBool();
    const Status s = store_->SetConsent(model_.people[*i].id, purpose, granted, "fuzz");
    ExpectStatus(s, PersonState(model_.people[*i]), "SetConsent");
    if (s.ok()) Notify(model_, NoticeKind::kRestriction, model_.people[*i].id, ConsentApply(model_, *i, purpose, granted));
  }

  // A batch's restriction change, from bits the bytes of a consent
  // decision left unused: the purpose (half of the time), a category (four
  // in five) and everything (a quarter). Nothing at all about one in
  // thirteen: a RecordConsent restriction of nothing is InvalidArgument,
  // as Store::Restrict's is (since stop 33: before, it was written, naming
  // only its action; write_batch.h now says so), and a lift of nothing
  // lifts nothing (unlike Store::Unrestrict's, which lifts everything).
  static RestrictionSpec PickBatchRestriction(const Split& purpose, int rest) {
    RestrictionSpec spec;
    if (purpose.rest % 2 == 1) spec.purposes.emplace_back(kPurposes[purpose.value]);
    const int category = (purpose.rest / 2) % 5;
    if (category != 0) spec.categories.emplace_back(kCategories[category - 1]);
    spec.all = rest % 4 == 0;
    return spec;
  }

  // A WriteBatch of one to five operations on the people of the model and
  // those the batch creates. Each operation is predicted against the batch's
  // copy of the model, in order: the first that must fail decides the
  // status of Write, whose message must name it ("operation #<index>
  // (<kind>)"), and then nothing of the batch may show (its new people
  // are NotFound for good: CheckAll asks). Otherwise the copy becomes the
  // model, with the notices write_batch.h promises: an import's, a
  // Rectify's and a consent or restriction change's as they happen, and at
  // the end, for each person the batch did not create, one rectification
  // notice naming what its PatchProfile, LinkIdentifier and
  // UnlinkIdentifier changed and one record notice for its puts and
  // deletes. Across people the order of those is not promised: it is taken
  // from the feed, once the model's set of them is found there.
  //
  // Since stop 33 the bytes of an operation that the modulo of its choices
  // dropped (ConsumeSplit) also make a create an ImportPerson (a quarter of
  // the values of its count's byte; an exported creation time, an import
  // notice), an append an ImportEvent (about a quarter of its time's byte:
  // not refused by restriction or consent), a consent decision a
  // restriction or a lift (half of its decision's byte), and a put one with
  // a category and metadata (half of its collection's byte; it then reads
  // two more bytes). An earlier input reads the same bytes as before up to
  // its first put with metadata, and means the same up to its first of
  // these variants.
  void Batch(FuzzedDataProvider& in) {
    Model copy = model_;
    WriteBatch batch;
    std::optional<std::set<StatusCode>> failure;  // what Write may return, once an operation must fail
    std::string failing_op;  // how Write's message names it: "operation #<index> (<kind>)"
    std::vector<PersonId> created;
    std::map<std::size_t, std::set<std::string>> corrections, record_changes;
    // Called once the operation is queued (the last of the batch); `kind`:
    // the engine's name of its WriteBatch::Op (an import is a CreatePerson
    // or AppendEvent op).
    auto fails = [&](std::set<StatusCode> want, const char* kind) {
      if (!failure && want != std::set<StatusCode>{StatusCode::kOk}) {
        failure = std::move(want);
        failing_op = "operation #" + std::to_string(batch.size() - 1) + " (" + kind + ")";
      }
      return failure.has_value();
    };
    const int ops = in.ConsumeIntegralInRange<int>(1, 5);
    for (int op = 0; op < ops && in.remaining_bytes() > 0; ++op) {
      const int kind = in.ConsumeIntegralInRange<int>(0, 8);
      if (Tracing()) std::fprintf(stderr, "  batch op %d\n", kind);
      if (kind == 0) {
        if (copy.people.size() >= kMaxPeople) continue;
        const CreateArgs a = PickCreate(in);
        const bool imported = a.import_created_ms.has_value();
        const PersonId id = imported ? batch.ImportPerson(a.identifiers, a.profile, *a.import_created_ms)
                                     : batch.CreatePerson(a.identifiers, a.profile);
        created.push_back(id);
        if (!fails(CreateWant(copy, a), "CreatePerson")) CreateApply(copy, id, a, imported);
        continue;
      }
      auto picked = PickPerson(copy, in);
      if (!picked) continue;
      const std::size_t i = *picked;
      const PersonId id = copy.people[i].id;
      switch (kind) {
        case 1: {
          const Identifier x = PickIdentifier(in);
          batch.LinkIdentifier(id, x);
          if (!fails({LinkWant(copy, i, x)}, "LinkIdentifier")) corrections[i].merge(LinkApply(copy, i, x));
          break;
        }
        case 2: {
          const Identifier x = PickIdentifier(in);
          batch.UnlinkIdentifier(id, x);
          if (!fails({UnlinkWant(copy, i, x)}, "UnlinkIdentifier")) corrections[i].merge(UnlinkApply(copy, i, x));
          break;
        }
        case 3: {
          const ProfilePatch patch = PickPatch(in);
          batch.PatchProfile(id, patch);
          if (!fails({PersonState(copy.people[i])}, "PatchProfile")) corrections[i].merge(PatchApply(copy, i, patch));
          break;
        }
        case 4: {
          bool imported = false;
          const Event e = PickEvent(in, &imported);
          if (imported) {
            batch.ImportEvent(id, e);
          } else {
            batch.AppendEvent(id, e);
          }
          if (!fails({AppendWant(copy, i, e, imported)}, "AppendEvent")) AppendApply(copy, i, e);
          break;
        }
        case 5: {
          const RecordArgs a = PickPut(in, /*batch=*/true);
          if (a.with_record) {
            batch.Put(id, Record{a.collection, a.key, a.value, a.category, a.metadata});
          } else {
            batch.Put(id, a.collection, a.key, a.value);
          }
          if (!fails(PutWant(copy, i, a), "Put")) record_changes[i].merge(PutApply(copy, i, a));
          break;
        }
        case 6: {
          const RecordArgs a = PickRecordKey(in);
          batch.Delete(id, a.collection, a.key);
          if (!fails({PersonState(copy.people[i])}, "Delete")) record_changes[i].merge(DeleteApply(copy, i, a));
          break;
        }
        case 7: {
          const RectifyArgs a = PickRectify(in);
          batch.Rectify(id, a.rectification);
          if (!fails({RectifyWant(copy, i, a)}, "Rectify")) {
            Notify(copy, NoticeKind::kRectification, id, RectifyApply(copy, i, a));
          }
          break;
        }
        default: {
          // The purpose's and the decision's bytes, read as PickValueInArray
          // and ConsumeBool read them; since stop 33 half of the values of
          // the decision's byte make a restriction (a quarter) or a lift (a
          // quarter) instead, of what the rest of the two bytes name.
          const Split purpose = ConsumeSplit(in, 3);
          const Split decision = ConsumeSplit(in, 2);
          ConsentRecord record;
          record.source = "fuzz";
          const bool restriction = decision.rest % 4 >= 2;
          if (restriction) {
            record.action =
                decision.rest % 4 == 2 ? ConsentRecord::Action::kRestrict : ConsentRecord::Action::kUnrestrict;
            record.restriction = PickBatchRestriction(purpose, decision.rest / 4);
          } else {
            record.purpose = kPurposes[purpose.value];
            record.action = decision.value == 1 ? ConsentRecord::Action::kGrant : ConsentRecord::Action::kWithdraw;
          }
          batch.RecordConsent(id, record);
          using A = ConsentRecord::Action;
          // The spec is checked before the person is looked up.
          const bool restricts_nothing = record.action == A::kRestrict && !record.restriction.all &&
                                         record.restriction.purposes.empty() &&
                                         record.restriction.categories.empty();
          if (!fails({restricts_nothing ? StatusCode::kInvalidArgument : PersonState(copy.people[i])},
                     "RecordConsent")) {
            const std::set<std::string> names =
                restriction ? RestrictApply(copy, i, record.restriction, record.action == A::kUnrestrict)
                            : ConsentApply(copy, i, record.purpose, record.action == A::kGrant);
            Notify(copy, NoticeKind::kRestriction, id, names);
          }
          break;
        }
      }
    }
    if (batch.empty()) return;
    const Status s = store_->Write(batch);
    if (failure) {
      ExpectOneOf(s, *failure, "Write of a batch with a failing operation");
      // write_batch.h: "returns the first error, naming the operation's index".
      Expect(s.message().starts_with(failing_op + ": "),
             "Write names the operation that fails first: got " + s.ToString() + ", model expects " + failing_op);
      model_.phantoms.insert(model_.phantoms.end(), created.begin(), created.end());
      return;
    }
    ExpectStatus(s, StatusCode::kOk, "Write");
    std::vector<ModelNotice> at_end;
    auto at_end_of = [&](NoticeKind kind, const std::map<std::size_t, std::set<std::string>>& changes, std::size_t i) {
      auto names = changes.find(i);
      if (names == changes.end() || names->second.empty()) return;
      at_end.push_back(ModelNotice{0, kind, copy.people[i].id, now_,
                                   std::vector<std::string>(names->second.begin(), names->second.end())});
    };
    // People the batch created are left out: no recipient has their data yet.
    for (std::size_t i = 0; i < model_.people.size(); ++i) {
      at_end_of(NoticeKind::kRectification, corrections, i);
      at_end_of(NoticeKind::kRecordChange, record_changes, i);
    }
    if (!at_end.empty()) {
      auto feed = store_->ReadFeed(1000);
      if (!feed.ok()) Fail("ReadFeed: " + feed.status().ToString());
      Expect(feed->size() >= at_end.size(), "a batch's notices are on the feed");
      for (auto n = feed->end() - static_cast<std::ptrdiff_t>(at_end.size()); n != feed->end(); ++n) {
        auto match = std::find_if(at_end.begin(), at_end.end(), [&](const ModelNotice& want) {
          return want.cursor == 0 && n->kind == want.kind && n->person == want.person && n->time_ms == want.time_ms &&
                 n->names == want.names;
        });
        Expect(match != at_end.end(), "a notice at the end of a batch that the model does not expect");
        match->cursor = ++copy.newest_cursor;
        copy.notices.push_back(*match);
      }
    }
    model_ = std::move(copy);
  }

  void EraseCategoryOf(FuzzedDataProvider& in) {
    auto i = PickPerson(model_, in);
    if (!i) return;
    ModelPerson& p = model_.people[*i];
    const std::string category = in.PickValueInArray(kCategories);
    EraseOptions options;
    options.suppress = in.ConsumeIntegralInRange<int>(0, 7) == 0;
    options.analytics = static_cast<AnalyticsOnErase>(in.ConsumeIntegralInRange<int>(0, 2));
    // The category key's state decides: a category whose records were all
    // deleted or moved still has its key, and its erasure is OK (store.h
    // says so since stop 33; before, it promised NotFound "if the person
    // holds nothing in the category").
    StatusCode want = options.suppress || category == kGeneralCategory ? StatusCode::kInvalidArgument : PersonState(p);
    if (want == StatusCode::kOk) {
      auto key = p.category_keys.find(category);
      const CategoryKey state = key == p.category_keys.end() ? CategoryKey::kNone : key->second;
      want = state == CategoryKey::kNone ? StatusCode::kNotFound
             : state == CategoryKey::kErased ? StatusCode::kErased
                                             : StatusCode::kOk;
    }
    auto r = store_->EraseCategory(p.id, category, options);
    ExpectStatus(r.status(), want, "EraseCategory " + category);
    if (!r.ok()) return;
    Expect(r->people == 1, "EraseCategory receipt counts one person");
    p.category_keys[category] = CategoryKey::kErased;
    std::erase_if(p.events, [&](const ModelEvent& e) { return e.category == category; });
    std::erase_if(p.records, [&](const auto& r) { return r.second.category == category; });
    model_.erasure_requests.push_back(r->request_id);
    Notify(model_, NoticeKind::kErasure, p.id, {"category." + category});
  }

  // A consumer restarting with the store: a cursor past the newest issued
  // is refused (nothing acknowledged), then it acknowledges up to the middle
  // of what it reads.
  void ReopenAndAcknowledge() {
    Reopen();
    ExpectStatus(store_->AckFeed(model_.newest_cursor + 1), StatusCode::kInvalidArgument,
                 "AckFeed past the newest cursor");
    const std::size_t expired = ExpiredNotices();
    const std::size_t visible = model_.notices.size() - expired;
    if (visible == 0) return;
    const std::uint64_t cursor = model_.notices[expired + visible / 2].cursor;
    ExpectStatus(store_->AckFeed(cursor), StatusCode::kOk, "AckFeed");
    std::erase_if(model_.notices, [cursor](const ModelNotice& n) { return n.cursor <= cursor; });
  }

  void EraseOne(FuzzedDataProvider& in) {
    auto i = PickPerson(model_, in);
    if (!i) return;
    EraseOptions options;
    options.suppress = in.ConsumeBool();
    options.analytics = static_cast<AnalyticsOnErase>(in.ConsumeIntegralInRange<int>(0, 2));
    // By identifier: one the picked person has or had. After an erasure it
    // may be suppressed, free, or taken by someone else since.
    std::optional<Identifier> by_identifier;
    if (!model_.people[*i].identifiers.empty() && in.ConsumeBool()) {
      by_identifier = *model_.people[*i].identifiers.begin();
    }
    std::optional<std::size_t> target = *i;
    if (by_identifier) {
      auto o = model_.owner.find(*by_identifier);
      target = o == model_.owner.end() ? std::nullopt : std::optional<std::size_t>(o->second);
    }
    Result<ErasureReceipt> r = by_identifier ? store_->EraseByIdentifier(*by_identifier, options)
                                             : store_->Erase(model_.people[*i].id, options);
    if (by_identifier && model_.suppressed.count(*by_identifier) != 0) {
      ExpectStatus(r.status(), StatusCode::kSuppressed, "EraseByIdentifier of a suppressed identifier");
      return;
    }
    if (!target || model_.people[*target].erased) {
      if (!r.status().IsErased() && !r.status().IsNotFound()) {
        Fail("Erase of an erased person gave " + r.status().ToString());
      }
      return;
    }
    if (!r.ok()) Fail("Erase: " + r.status().ToString());
    Expect(r->people == 1, "Erase receipt counts one person");
    Expect(r->suppressed == options.suppress, "Erase receipt suppression flag");
    ModelPerson& p = model_.people[*target];
    p.erased = true;
    for (const Identifier& id : p.identifiers) {
      model_.owner.erase(id);
      if (options.suppress) model_.suppressed.insert(id);
    }
    model_.erasure_requests.push_back(r->request_id);
    Notify(model_, NoticeKind::kErasure, p.id, {}, /*always=*/true);
  }

  void RestrictOrLift(FuzzedDataProvider& in) {
    auto i = PickPerson(model_, in);
    if (!i) return;
    ModelPerson& p = model_.people[*i];
    const bool lift = in.ConsumeBool();
    RestrictionSpec spec;
    spec.all = in.ConsumeIntegralInRange<int>(0, 3) == 0;
    if (in.ConsumeBool()) spec.purposes.emplace_back(in.PickValueInArray(kPurposes));
    if (in.ConsumeBool()) spec.categories.emplace_back(in.PickValueInArray(kCategories));
    spec.reason = in.ConsumeRandomLengthString(16);
    const bool empty = !spec.all && spec.purposes.empty() && spec.categories.empty();
    // Restrict needs something to restrict; an empty Unrestrict lifts everything.
    const StatusCode want = !lift && empty ? StatusCode::kInvalidArgument : PersonState(p);
    const Status s = lift ? store_->Unrestrict(p.id, spec) : store_->Restrict(p.id, spec);
    ExpectStatus(s, want, lift ? "Unrestrict" : "Restrict");
    if (!s.ok()) return;
    RestrictionSpec effective = spec;
    if (lift && empty) effective.all = true;
    Notify(model_, NoticeKind::kRestriction, p.id, RestrictApply(model_, *i, effective, lift));
  }

  void Unsuppress(FuzzedDataProvider& in) {
    const Identifier id = PickIdentifier(in);
    const Status s = store_->Unsuppress(id);
    ExpectStatus(s, model_.suppressed.count(id) != 0 ? StatusCode::kOk : StatusCode::kNotFound,
                 "Unsuppress " + Describe(id));
    model_.suppressed.erase(id);
  }

  void Rotate() {
    auto r = store_->RotateEpoch();
    if (!r.ok()) Fail("RotateEpoch: " + r.status().ToString());
    for (const ModelPerson& p : model_.people) {
      if (p.erased) continue;
      auto info = store_->GetPerson(p.id);
      if (!info.ok()) Fail("GetPerson after rotation: " + info.status().ToString());
      Expect(info->key_epoch == r->new_epoch, "a live DEK is wrapped under the new epoch");
    }
    for (const std::string& id : model_.erasure_requests) {
      auto receipt = store_->GetErasure(id);
      if (!receipt.ok()) Fail("GetErasure: " + receipt.status().ToString());
      Expect(receipt->cryptographic, "every erasure before a rotation is cryptographic");
    }
  }

  void PurgeSome(FuzzedDataProvider& in) {
    auto r = store_->Purge(in.ConsumeIntegralInRange<std::size_t>(1, 50));
    if (!r.ok()) Fail("Purge: " + r.status().ToString());
  }

  void Compact() {
    auto r = store_->CompactData();
    if (!r.ok()) Fail("CompactData: " + r.status().ToString());
  }

  void AdvanceClock(FuzzedDataProvider& in) { now_ += in.ConsumeIntegralInRange<std::int64_t>(1, 4000); }

  // Adds, changes or removes the rule of one collection (ages of a few
  // seconds, so the clock's steps cross them).
  void SetCollectionRule(FuzzedDataProvider& in) {
    const std::string collection = in.PickValueInArray(kCollections);
    RetentionRules rules = model_.rules;
    const int age = in.ConsumeIntegralInRange<int>(0, 3);
    if (age == 0) {
      rules.collections.erase(collection);
    } else {
      rules.collections[collection] = std::int64_t{age} * 2500;
    }
    if (collection == std::string_view("notes")) rules.feed = std::int64_t{age} * 2500;  // 0: no feed rule
    const Status s = store_->SetRetention(rules);
    ExpectStatus(s, StatusCode::kOk, "SetRetention");
    model_.rules = std::move(rules);
    auto got = store_->GetRetention();
    if (!got.ok()) Fail("GetRetention: " + got.status().ToString());
    Expect(*got == model_.rules, "GetRetention returns the rules set");
  }

  // A sweep with a budget larger than the store: every expired record (by
  // its collection's rule or its own expiry) is deleted (the model drops
  // them: no later rule change brings them back).
  void SweepAll() {
    const std::size_t expired_notices = ExpiredNotices();
    auto r = store_->Sweep(100000);
    if (!r.ok()) Fail("Sweep: " + r.status().ToString());
    Expect(r->pending == 0, "Sweep left expired rows");
    Expect(r->notices_deleted == expired_notices, "Sweep deleted the expired notices, and only those");
    model_.notices.erase(model_.notices.begin(), model_.notices.begin() + static_cast<std::ptrdiff_t>(expired_notices));
    std::uint64_t live_expired = 0;
    for (ModelPerson& p : model_.people) {
      for (auto it = p.records.begin(); it != p.records.end();) {
        if (Gone(it->first.first, it->second)) {
          live_expired += p.erased ? 0 : 1;
          it = p.records.erase(it);
        } else {
          ++it;
        }
      }
    }
    // Erased people's records (awaiting purge) may be swept too.
    Expect(r->records_deleted >= live_expired, "Sweep deleted fewer records than expired");
    Expect(r->events_deleted == 0 && r->analytics_deleted == 0, "Sweep deleted events without a rule");
    auto stats = store_->Stats();
    if (!stats.ok()) Fail("Stats: " + stats.status().ToString());
    Expect(stats->expired_pending == 0, "expired_pending after a full sweep");
    // What the sweep left is all there is: with the collection rules lifted
    // nothing it should have deleted shows again (a record the time index
    // missed would). Then the rules go back, back-filled again.
    const RetentionRules rules = model_.rules;
    RetentionRules lifted = rules;
    lifted.collections.clear();
    ExpectStatus(store_->SetRetention(lifted), StatusCode::kOk, "SetRetention (lifted)");
    model_.rules = lifted;
    CheckAll();
    ExpectStatus(store_->SetRetention(rules), StatusCode::kOk, "SetRetention (restored)");
    model_.rules = rules;
  }

  // ---- checks ----------------------------------------------------------------------

  void CheckAll() {
    ++checks_;
    CheckFeed();
    CheckFindRecords();
    for (std::size_t i = 0; i < model_.people.size(); ++i) {
      // One processing lease a person a check, its purpose rotating with
      // the check and the person (every purpose of a person within three
      // checks, at a third of the cost of all three each time).
      const char* purpose = kPurposes[(checks_ + i) % std::size(kPurposes)];
      if (model_.people[i].erased) {
        CheckErased(model_.people[i]);
        ExpectGone(store_->AcquireLease(model_.people[i].id, purpose).status(),
                   "erased person " + model_.people[i].id.ToHex() + " AcquireLease");
      } else {
        CheckLive(model_.people[i]);
        CheckLease(model_.people[i], purpose);
      }
    }
    if (!model_.people.empty()) {
      ExpectStatus(store_->AcquireLease(model_.people[0].id, "no_such_purpose").status(),
                   StatusCode::kInvalidArgument, "AcquireLease for an unregistered purpose");
    }
    for (const PersonId& id : model_.phantoms) {
      ExpectStatus(store_->GetPerson(id).status(), StatusCode::kNotFound, "a person of a failed batch");
      ExpectStatus(store_->AcquireLease(id, kPurposes[0]).status(), StatusCode::kNotFound,
                   "AcquireLease on a person of a failed batch");
    }
    for (const Identifier& id : model_.suppressed) {
      ExpectStatus(store_->Resolve(id).status(), StatusCode::kSuppressed, "Resolve suppressed " + Describe(id));
      ExpectStatus(store_->LookupProfile(id).status(), StatusCode::kSuppressed,
                   "LookupProfile suppressed " + Describe(id));
    }
    for (const auto& [id, index] : model_.owner) {
      auto r = store_->Resolve(id);
      if (!r.ok()) Fail("Resolve " + Describe(id) + ": " + r.status().ToString());
      Expect(*r == model_.people[index].id, "Resolve " + Describe(id) + " names its owner");
      auto found = store_->LookupProfile(id);
      if (!found.ok()) Fail("LookupProfile " + Describe(id) + ": " + found.status().ToString());
      Expect(found->id == model_.people[index].id, "LookupProfile " + Describe(id) + " names its owner");
      Expect(found->attributes == model_.people[index].profile, "LookupProfile " + Describe(id) + " profile");
    }
  }

  // FindRecords by each purpose, each recipient and an expiry bound returns
  // exactly the model's live records of live people whose metadata matches
  // (in no meaningful order for purposes and recipients: compared sorted;
  // by expiry, soonest first). The bounds: 3 s ahead, and the expiries of
  // up to two live records (a record expiring at the bound is not before it).
  void CheckFindRecords() {
    using Found = std::pair<PersonId, Record>;
    std::vector<Found> live;
    for (const ModelPerson& p : model_.people) {
      if (p.erased) continue;
      for (auto& [key, record] : LiveRecords(p)) live.emplace_back(p.id, std::move(record));
    }
    auto order = [](const Found& a, const Found& b) {
      return std::tie(a.first, a.second.collection, a.second.key) <
             std::tie(b.first, b.second.collection, b.second.key);
    };
    auto check = [&](const RecordQuery& q, const std::string& what, auto matches) {
      std::vector<Found> want, got;
      for (const Found& f : live) {
        if (matches(f.second.metadata)) want.push_back(f);
      }
      auto it = store_->FindRecords(q);
      for (; it->Valid(); it->Next()) {
        const FoundRecord& f = it->value();
        Expect(got.empty() || q.field != RecordQuery::Field::kExpiresBefore ||
                   got.back().second.metadata.expires_ms <= f.record.metadata.expires_ms,
               what + ": not soonest first");
        got.emplace_back(f.person, f.record);
      }
      ExpectStatus(it->status(), StatusCode::kOk, what);
      std::sort(want.begin(), want.end(), order);
      std::sort(got.begin(), got.end(), order);
      Expect(got.size() == want.size(), what + ": found " + std::to_string(got.size()) + " records, model " +
                                            std::to_string(want.size()));
      for (std::size_t n = 0; n < got.size(); ++n) {
        Expect(got[n].first == want[n].first && SameRecord(got[n].second, want[n].second),
               what + ": a record found differs from the model's");
      }
    };
    auto has = [](const std::vector<std::string>& names, const std::string& x) {
      return std::find(names.begin(), names.end(), x) != names.end();
    };
    for (const char* purpose : kPurposes) {
      check(RecordQuery{RecordQuery::Field::kPurpose, purpose, 0}, std::string("FindRecords purpose ") + purpose,
            [&](const RecordMetadata& m) { return has(m.purposes, purpose); });
    }
    for (const char* recipient : kRecipients) {
      check(RecordQuery{RecordQuery::Field::kRecipient, recipient, 0},
            std::string("FindRecords recipient ") + recipient,
            [&](const RecordMetadata& m) { return has(m.shared_with, recipient); });
    }
    std::set<std::int64_t> bounds{now_ + 3000};
    for (const Found& f : live) {
      if (f.second.metadata.expires_ms != 0 && bounds.size() < 3) bounds.insert(f.second.metadata.expires_ms);
    }
    for (const std::int64_t before : bounds) {
      check(RecordQuery{RecordQuery::Field::kExpiresBefore, {}, before},
            "FindRecords expiring before " + std::to_string(before - now_) + " ms from now",
            [&](const RecordMetadata& m) { return m.expires_ms != 0 && m.expires_ms < before; });
    }
  }

  static void CompareNotice(const Notice& got, const ModelNotice& want, const std::string& where) {
    Expect(got.cursor == want.cursor, where + ": cursor " + std::to_string(got.cursor) + ", model " +
                                          std::to_string(want.cursor));
    Expect(got.kind == want.kind && got.person == want.person && got.time_ms == want.time_ms,
           where + ": kind, person or time");
    Expect(got.names == want.names, where + ": names");
  }

  // The feed is exactly the model's notices past the expired prefix.
  void CheckFeed() {
    auto feed = store_->ReadFeed(1000);
    if (!feed.ok()) Fail("ReadFeed: " + feed.status().ToString());
    const std::size_t expired = ExpiredNotices();
    if (Tracing()) {
      for (const Notice& n : *feed) {
        std::string names;
        for (const std::string& x : n.names) names += " " + x;
        std::fprintf(stderr, "  feed %llu %s %s%s\n", static_cast<unsigned long long>(n.cursor),
                     std::string(NoticeKindName(n.kind)).c_str(), n.person.ToHex().substr(0, 8).c_str(), names.c_str());
      }
    }
    Expect(feed->size() == model_.notices.size() - expired,
           "ReadFeed returned " + std::to_string(feed->size()) + " notices, model " +
               std::to_string(model_.notices.size() - expired));
    for (std::size_t n = 0; n < feed->size(); ++n) {
      CompareNotice((*feed)[n], model_.notices[expired + n], "feed notice " + std::to_string(n));
    }
  }

  static void CompareEvent(const StoredEvent& got, const ModelEvent& want, const std::string& where) {
    Expect(got.name == want.name && got.ts_ms == want.ts_ms, where + ": event name/time");
    Expect(got.properties == want.properties, where + ": event properties");
    Expect(got.category == want.category, where + ": event category");
  }

  void CheckLive(const ModelPerson& p) {
    const std::string who = "person " + p.id.ToHex();
    auto info = store_->GetPerson(p.id);
    if (!info.ok()) Fail(who + " GetPerson: " + info.status().ToString());
    Expect(info->created_ms == p.created_ms, who + " created_ms " + std::to_string(info->created_ms) + ", model " +
                                                 std::to_string(p.created_ms));
    Expect(std::vector<Identifier>(p.identifiers.begin(), p.identifiers.end()) == info->identifiers,
           who + " identifiers");

    auto profile = store_->GetProfile(p.id);
    if (!profile.ok()) Fail(who + " GetProfile: " + profile.status().ToString());
    Expect(*profile == p.profile, who + " profile");

    auto events = store_->ScanEvents(p.id);
    std::size_t n = 0;
    for (; events->Valid(); events->Next(), ++n) {
      Expect(n < p.events.size(), who + " has more events than the model");
      CompareEvent(events->value(), p.events[n], who + " event " + std::to_string(n));
    }
    ExpectStatus(events->status(), StatusCode::kOk, who + " ScanEvents");
    Expect(n == p.events.size(), who + " event count");

    const auto live = LiveRecords(p);
    for (const char* collection : kCollections) {
      auto it = store_->ScanRecords(p.id, collection);
      auto want = live.lower_bound({collection, ""});
      for (; it->Valid(); it->Next(), ++want) {
        Expect(want != live.end() && want->first.first == collection, who + " extra record");
        Expect(it->value().key == want->first.second && it->value().value == want->second.value,
               who + " record in scan");
        Expect(it->value().category == want->second.category, who + " record category");
      }
      ExpectStatus(it->status(), StatusCode::kOk, who + " ScanRecords");
      Expect(want == live.end() || want->first.first != collection, who + " missing record in scan");
      for (int k = 0; k < 5; ++k) {
        const std::string key = "k" + std::to_string(k);
        auto g = store_->Get(p.id, collection, key);
        auto whole = store_->GetRecord(p.id, collection, key);
        auto m = live.find({collection, key});
        if (m == live.end()) {
          ExpectStatus(g.status(), StatusCode::kNotFound, who + " Get absent record");
          ExpectStatus(whole.status(), StatusCode::kNotFound, who + " GetRecord absent record");
        } else {
          if (!g.ok()) Fail(who + " Get: " + g.status().ToString());
          Expect(*g == m->second.value, who + " Get value");
          if (!whole.ok()) Fail(who + " GetRecord: " + whole.status().ToString());
          Expect(SameRecord(*whole, m->second), who + " GetRecord: value, category or metadata");
        }
      }
    }

    auto restriction = store_->GetRestriction(p.id);
    if (!restriction.ok()) Fail(who + " GetRestriction: " + restriction.status().ToString());
    Expect(restriction->all == p.restriction.all, who + " restriction.all");
    Expect(restriction->purposes == std::vector<std::string>(p.restriction.purposes.begin(), p.restriction.purposes.end()),
           who + " restricted purposes");
    Expect(restriction->categories ==
               std::vector<std::string>(p.restriction.categories.begin(), p.restriction.categories.end()),
           who + " restricted categories");

    auto consent = store_->GetConsent(p.id);
    if (!consent.ok()) Fail(who + " GetConsent: " + consent.status().ToString());
    Expect(*consent == p.consent, who + " consent");

    CheckExport(p, *info);
  }

  // Whether the store must refuse a lease on `p` for `purpose`
  // (Store::AcquireLease): everything or the purpose restricted, or the
  // purpose's lawful basis wants what the person's consent decisions do
  // not give. The default purposes (options.h): marketing needs a grant,
  // analytics (legitimate interest) stops at an objection (a withdrawal),
  // support (contract) has no right to object.
  static bool LeaseRefused(const ModelPerson& p, const std::string& purpose) {
    if (p.restriction.all || p.restriction.purposes.count(purpose) != 0) return true;
    const auto decision = p.consent.find(purpose);
    const bool decided = decision != p.consent.end();
    if (purpose == "marketing") return !decided || !decision->second;
    if (purpose == "analytics") return decided && !decision->second;
    return false;
  }

  // A processing lease on live person `p` for `purpose`: Restricted when
  // the model refuses it; otherwise its reads leave out what the person's
  // restricted categories hold (the harness declares no attribute
  // categories, so every attribute is "general"; a record's category is its
  // own, as a batch put may name one), and a record that names purposes is
  // read only for them.
  // The lease is released at once: one left registered would make the
  // next Erase or Restrict of the person wait and fail Busy.
  void CheckLease(const ModelPerson& p, const std::string& purpose) {
    const std::string who = "lease on " + p.id.ToHex() + " for " + purpose;
    auto lease = store_->AcquireLease(p.id, purpose);
    if (LeaseRefused(p, purpose)) {
      ExpectStatus(lease.status(), StatusCode::kRestricted, who);
      return;
    }
    if (!lease.ok()) Fail(who + ": " + lease.status().ToString());
    Lease& l = **lease;
    Expect(l.person() == p.id && l.purpose() == purpose, who + ": person() and purpose()");
    const auto withheld = [&](const std::string& category) { return p.restriction.categories.count(category) != 0; };
    auto profile = l.GetProfile();
    if (!profile.ok()) Fail(who + " GetProfile: " + profile.status().ToString());
    Expect(*profile == (withheld("general") ? Attributes{} : p.profile), who + " GetProfile");

    auto events = l.ScanEvents();
    std::size_t n = 0;
    for (const ModelEvent& e : p.events) {
      if (withheld(e.category)) continue;
      Expect(events->Valid(), who + " ScanEvents ended early: event " + std::to_string(n) + " missing");
      CompareEvent(events->value(), e, who + " event " + std::to_string(n));
      events->Next();
      ++n;
    }
    Expect(!events->Valid(), who + " ScanEvents returned an event the lease withholds");
    ExpectStatus(events->status(), StatusCode::kOk, who + " ScanEvents");

    const auto collected_for = [&](const Record& r) {
      const auto& ps = r.metadata.purposes;
      return ps.empty() || std::find(ps.begin(), ps.end(), purpose) != ps.end();
    };
    const auto live = LiveRecords(p);
    for (const char* collection : kCollections) {
      auto it = l.ScanRecords(collection);
      for (auto want = live.lower_bound({collection, ""}); want != live.end() && want->first.first == collection;
           ++want) {
        if (withheld(want->second.category) || !collected_for(want->second)) continue;
        Expect(it->Valid(), who + " ScanRecords ended early: " + want->first.second + " missing");
        Expect(it->value().key == want->first.second && it->value().value == want->second.value,
               who + " ScanRecords: record");
        it->Next();
      }
      Expect(!it->Valid(), who + " ScanRecords returned a record the lease withholds");
      ExpectStatus(it->status(), StatusCode::kOk, who + " ScanRecords");
      for (int k = 0; k < 5; ++k) {
        const std::string key = "k" + std::to_string(k);
        auto g = l.Get(collection, key);
        auto m = live.find({collection, key});
        const std::string what = who + " Get " + collection + "/" + key;
        if (m == live.end()) {
          ExpectStatus(g.status(), StatusCode::kNotFound, what);
        } else if (withheld(m->second.category) || !collected_for(m->second)) {
          ExpectStatus(g.status(), StatusCode::kRestricted, what);
        } else {
          if (!g.ok()) Fail(what + ": " + g.status().ToString());
          Expect(*g == m->second.value, what + ": value");
        }
      }
    }
  }

  void CheckExport(const ModelPerson& p, const PersonInfo& info) {
    const std::string who = "export of " + p.id.ToHex();
    auto it = store_->Export(p.id);
    std::vector<Identifier> identifiers;
    std::optional<Attributes> profile;
    std::vector<StoredEvent> events;
    std::map<std::pair<std::string, std::string>, Record> records;
    std::vector<AnalyticsRow> analytics;
    std::vector<Notice> notices;
    bool person_seen = false;
    for (; it->Valid(); it->Next()) {
      const ExportItem& item = it->value();
      switch (item.kind) {
        case ExportItem::Kind::kPerson:
          person_seen = true;
          Expect(item.person.id == p.id && item.person.anon_id == info.anon_id &&
                     item.person.created_ms == p.created_ms,
                 who + ": person item");
          break;
        case ExportItem::Kind::kIdentifier: identifiers.push_back(item.identifier); break;
        case ExportItem::Kind::kProfile: profile = item.profile; break;
        case ExportItem::Kind::kRestriction:
          Expect(item.restriction.all == p.restriction.all, who + ": restriction item");
          break;
        case ExportItem::Kind::kEvent: events.push_back(item.event); break;
        case ExportItem::Kind::kRecord:
          Expect(records.emplace(std::make_pair(item.record.collection, item.record.key), item.record).second,
                 who + ": duplicate record");
          break;
        case ExportItem::Kind::kAnalytics: analytics.push_back(item.analytics); break;
        case ExportItem::Kind::kNotice: notices.push_back(item.notice); break;
        case ExportItem::Kind::kConsent: break;
      }
    }
    ExpectStatus(it->status(), StatusCode::kOk, who);
    std::vector<const ModelNotice*> own;
    for (std::size_t n = ExpiredNotices(); n < model_.notices.size(); ++n) {
      if (model_.notices[n].person == p.id) own.push_back(&model_.notices[n]);
    }
    Expect(notices.size() == own.size(), who + ": " + std::to_string(notices.size()) + " notices, model " +
                                            std::to_string(own.size()));
    for (std::size_t n = 0; n < notices.size(); ++n) CompareNotice(notices[n], *own[n], who + ": notice");
    Expect(person_seen, who + ": no person item");
    std::sort(identifiers.begin(), identifiers.end());
    Expect(identifiers == std::vector<Identifier>(p.identifiers.begin(), p.identifiers.end()), who + ": identifiers");
    Expect(profile.has_value() && *profile == p.profile, who + ": profile");
    Expect(events.size() == p.events.size(), who + ": event count");
    for (std::size_t e = 0; e < events.size(); ++e) CompareEvent(events[e], p.events[e], who);
    const auto live = LiveRecords(p);
    Expect(records.size() == live.size() &&
               std::equal(records.begin(), records.end(), live.begin(),
                          [](const auto& a, const auto& b) { return SameRecord(a.second, b.second); }),
           who + ": records (value, category, metadata)");
    // Every event wrote one analytics row under the person's anonymous ID,
    // carrying exactly the declared analytics fields.
    Expect(analytics.size() == p.events.size(), who + ": analytics row count");
    for (std::size_t a = 0; a < analytics.size(); ++a) {
      const ModelEvent& e = p.events[a];
      // The row keeps the event's hour only (the store's default granularity).
      constexpr std::int64_t kHour = 3600 * 1000;
      const std::int64_t hour = e.ts_ms - ((e.ts_ms % kHour) + kHour) % kHour;
      Expect(analytics[a].anon_id == info.anon_id && analytics[a].name == e.name && analytics[a].ts_ms == hour,
             who + ": analytics row");
      Attributes fields;
      for (const std::string& f : e.analytics_fields) fields.insert_or_assign(f, e.properties.at(f));
      Expect(analytics[a].fields == fields, who + ": analytics fields");
      Expect(analytics[a].seq == events[a].seq, who + ": the export names the analytics row's event");
    }
  }

  void CheckErased(const ModelPerson& p) {
    const std::string who = "erased person " + p.id.ToHex();
    ExpectGone(store_->GetPerson(p.id).status(), who + " GetPerson");
    ExpectGone(store_->GetProfile(p.id).status(), who + " GetProfile");
    ExpectGone(store_->GetRestriction(p.id).status(), who + " GetRestriction");
    ExpectGone(store_->GetConsentHistory(p.id).status(), who + " GetConsentHistory");
    ExpectGone(store_->GetConsent(p.id).status(), who + " GetConsent");
    auto events = store_->ScanEvents(p.id);
    Expect(!events->Valid(), who + " ScanEvents returned an event");
    ExpectGone(events->status(), who + " ScanEvents");
    for (const char* collection : kCollections) {
      auto records = store_->ScanRecords(p.id, collection);
      Expect(!records->Valid(), who + " ScanRecords returned a record");
      ExpectGone(records->status(), who + " ScanRecords");
      for (const auto& [key, value] : p.records) {
        ExpectGone(store_->Get(p.id, key.first, key.second).status(), who + " Get");
        ExpectGone(store_->GetRecord(p.id, key.first, key.second).status(), who + " GetRecord");
      }
    }
    auto exported = store_->Export(p.id);
    Expect(!exported->Valid(), who + " Export returned an item");
    ExpectGone(exported->status(), who + " Export");
    for (const Identifier& id : p.identifiers) {
      auto r = store_->Resolve(id);
      Expect(!r.ok() || *r != p.id, who + " still resolves by " + Describe(id));
      auto found = store_->LookupProfile(id);
      Expect(!found.ok() || found->id != p.id, who + " still found by LookupProfile " + Describe(id));
    }
  }

  std::string dir_;
  std::unique_ptr<Store> store_;
  Model model_;
  std::int64_t now_ = kClockMs;  // the store's clock
  std::uint64_t checks_ = 0;      // CheckAll calls so far (rotates the lease purposes)
};

// A directory for the process's stores, removed at exit.
class BaseDirectory {
 public:
  BaseDirectory() {
    const std::string root =
        std::filesystem::exists("/dev/shm") ? "/dev/shm" : std::filesystem::temp_directory_path().string();
    std::string templ = root + "/shredkv-fuzz-XXXXXX";
    if (mkdtemp(templ.data()) == nullptr) Fail("mkdtemp failed");
    path_ = templ;
  }
  ~BaseDirectory() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // Every input opens fresh LMDB environments, and each open callocs 3 MiB
  // of writer bookkeeping (the dirty list and the free-page list). After
  // the first free of such a block glibc raises its mmap threshold above
  // it, and every later calloc came from the heap and was memset: 10 % of
  // an execution. A fixed threshold keeps them fresh zero pages.
  mallopt(M_MMAP_THRESHOLD, 256 * 1024);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static BaseDirectory base;
  static std::uint64_t run = 0;
  FuzzedDataProvider in(data, size);
  Harness harness(base.path() + "/" + std::to_string(run++));
  harness.Run(in);
  return 0;
}
