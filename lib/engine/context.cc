#include "engine/context.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <string>

#include "codec/row_codec.h"
#include "codec/sealed.h"
#include "crypto/keyed_hash.h"
#include "crypto/secure_memory.h"
#include "engine/analytics_link.h"
#include "engine/data_rows.h"
#include "util/checksum.h"
#include "util/coding.h"
#include "util/fork_generation.h"
#include "util/test_point.h"

namespace shredkv::engine {
namespace {

using codec::TableId;

constexpr std::size_t kMaxNameSize = 255;
constexpr std::size_t kMaxRecordKeySize = 1024;

}  // namespace

Status ValidateName(std::string_view name, std::string_view what) {
  if (name.empty() || name.size() > kMaxNameSize) {
    return Status::InvalidArgument(std::string(what) + " must be 1..255 bytes");
  }
  return Status::OK();
}

Status ValidateRecordKey(std::string_view collection, std::string_view key) {
  if (Status s = ValidateName(collection, "collection name"); !s.ok()) return s;
  if (key.empty() || key.size() > kMaxRecordKeySize) {
    return Status::InvalidArgument("record key must be 1..1024 bytes");
  }
  return Status::OK();
}

Status CanonicalRecordMetadata(const Policy& policy, RecordMetadata* m) {
  constexpr std::size_t kMaxNames = 64, kMaxName = 255, kMaxOrigin = 1024;
  auto canonical = [&](std::vector<std::string>* names, const char* what) -> Status {
    std::sort(names->begin(), names->end());
    names->erase(std::unique(names->begin(), names->end()), names->end());
    if (names->size() > kMaxNames) return Status::InvalidArgument(std::string("record metadata: more than 64 ") + what);
    for (const std::string& n : *names) {
      if (n.empty() || n.size() > kMaxName) {
        return Status::InvalidArgument(std::string("record metadata: ") + what + " must be 1..255 bytes each");
      }
      // Names reach C and Python as C strings: "a\0b" read as "a", and a
      // query for it found nothing (outside audit 37d, F3).
      if (n.find('\0') != std::string::npos) {
        return Status::InvalidArgument(std::string("record metadata: ") + what + " hold a NUL byte");
      }
    }
    return Status::OK();
  };
  if (Status s = canonical(&m->purposes, "purposes"); !s.ok()) return s;
  if (Status s = canonical(&m->shared_with, "recipients (shared_with)"); !s.ok()) return s;
  for (const std::string& p : m->purposes) {
    if (auto basis = policy.Basis(p); !basis.ok()) {
      return Status::InvalidArgument("record metadata: purpose '" + p + "' is not registered");
    }
  }
  if (m->origin.size() > kMaxOrigin) return Status::InvalidArgument("record metadata: origin longer than 1,024 bytes");
  if (m->expires_ms < 0) return Status::InvalidArgument("record metadata: expires_ms must be >= 0 (0: none)");
  return Status::OK();
}

void EngineContext::SetFatal(Status s) {
  std::lock_guard lock(fatal_mu_);
  if (fatal_.ok()) fatal_ = std::move(s);
}

Status EngineContext::OpenDataEnvironment(bool create) {
  storage::EnvOptions eo;
  eo.path = options.directory + "/data";
  eo.tables = {"meta",    "people",    "ident",  "ident_by_person", "profiles",         "events",
               "records", "analytics", "erased", "audit",           "audit_by_request", "versions",
               "outbox",  "restrictions", "consent", "consent_history", "expiry", "expiry_refs",
               "analytics_staged", "record_index", "record_index_refs", "consent_by_purpose", "key_claims"};
  eo.added_tables = {"analytics_staged", "record_index", "record_index_refs", "consent_by_purpose", "key_claims"};
  // The tables the open reads (format and retention rules in meta, the key
  // claims): walked first, so a damaged page is Corruption, not an abort. A
  // writable open with erasures not yet purged looks up each one's marker
  // in `erased` (one row per erasure; Eraser::RecoverErasures walks every
  // page first if one is missing).
  eo.checked_at_open = {"meta", "key_claims"};
  eo.checked_at_writable_open = {"erased"};
  eo.create = create;
  eo.initial_map_size = options.initial_map_size;
  eo.max_map_size = options.max_map_size;
  eo.durability = options.durability;
  eo.read_only = options.read_only;
  eo.beside_writer = beside_writer;
  auto env = storage::Environment::Open(eo);
  if (!env.ok()) return env.status();
  data = std::move(env).value();
  tables = DataTables{data->table("meta"),     data->table("people"),
                       data->table("ident"),    data->table("ident_by_person"),
                       data->table("profiles"), data->table("events"),
                       data->table("records"),  data->table("analytics"),
                       data->table("erased"),   data->table("audit"),
                       data->table("audit_by_request"), data->table("versions"),
                       data->table("outbox"),   data->table("restrictions"),
                       data->table("consent"),  data->table("consent_history"),
                       data->table("expiry"),   data->table("expiry_refs"),
                       data->table("analytics_staged"), data->table("record_index"),
                       data->table("record_index_refs"), data->table("consent_by_purpose"),
                       data->table("key_claims")};
  // A compaction reopens the environment: the rules in force carry over.
  const std::shared_ptr<const CompiledRetention> rules_in_force = retention ? retention->rules() : nullptr;
  record_index.emplace(tables.record_index, tables.record_index_refs, &keys->index_key());
  retention.emplace(RetentionTables{tables.expiry, tables.expiry_refs, tables.events, tables.records,
                                     tables.analytics, tables.meta},
                     &keys->index_key(), &*record_index);
  if (rules_in_force) retention->SetRules(rules_in_force->rules);
  audit.emplace(tables.audit, tables.audit_by_request, &keys->index_key());
  outbox.emplace(tables.outbox);
  staging.emplace(tables.analytics_staged, tables.analytics, keys->index_key(), cipher);
  consent_index.emplace(tables.consent_by_purpose, tables.consent, tables.meta);

  bool fresh = false;
  Status s = data->View([&](storage::ReadTxn& txn) { return ReadDataMeta(txn, &fresh); });
  if (!s.ok() || !fresh) return s;
  s = data->Update([&](storage::WriteTxn& txn) { return InitDataMeta(txn); });
  data_format = kDataFormatVersion;
  analytics_granularity_ms = options.analytics_time_granularity_ms;
  return s;
}

namespace {

Result<std::uint64_t> DecodeClaim(std::string_view person, std::string_view row) {
  std::string_view payload;
  if (Status o = codec::OpenPlain(TableId::kKeyClaims, person, row, &payload); !o.ok()) return o;
  if (payload.size() != 8) return Status::Corruption("a key claim has the wrong length");
  return util::DecodeFixed64BE(payload.data());
}

}  // namespace

Status EngineContext::CheckAllPages(std::string_view not_done) {
  for (storage::Environment* env : {&keys->environment(), data.get()}) {
    auto pages = env->CheckPages();
    if (!pages.ok()) return pages.status();
    if (!pages->ok()) {
      return Status::Corruption(std::to_string(pages->problems.size()) + " problem(s) in the pages of '" +
                                env->path() + "', first: " + pages->problems.front() + "; nothing was " +
                                std::string(not_done) + " (restore from a backup)");
    }
  }
  return Status::OK();
}

Status EngineContext::LoadKeyPool() {
  std::vector<keys::KeyClaim> claims;
  Status s = data->View([&](storage::ReadTxn& txn) -> Status {
    claims.clear();
    auto cursor = txn.OpenCursor(tables.key_claims);
    if (!cursor.ok()) return cursor.status();
    auto& c = **cursor;
    for (Status m = c.SeekToFirst(); c.Valid() || !m.ok(); m = c.Next()) {
      if (!m.ok()) return m;
      if (c.key().size() != PersonId::kSize) return Status::Corruption("a key claim's key has the wrong length");
      auto index = DecodeClaim(c.key(), c.value());
      if (!index.ok()) return index.status();
      PersonId::Bytes b;
      std::memcpy(b.data(), c.key().data(), b.size());
      claims.push_back(keys::KeyClaim{PersonId(b), *index});
    }
    return Status::OK();
  });
  if (!s.ok()) return s.WithContext("reading the key claims");
  std::vector<PersonId> stale;
  if (Status l = keys->LoadPool(claims, &stale); !l.ok()) return l;
  if (!options.read_only) {
    // What `keys` holds may not be on disk yet: a process (of any
    // durability) killed between a pool refill's commit and its sync, or a
    // kNoSync process's adoptions (`keys` is MDB_NOMETASYNC). This process
    // hands out pool rows without a sync of its own and deletes stale
    // claims, both on the promise that the key rows behind them are durable
    // (review F5): one sync at a writable open keeps it.
    if (Status f = keys->Sync(); !f.ok()) return f.WithContext("syncing the key store");
  }
  if (!stale.empty() && !options.read_only) {
    util::TestPoint("pool.before_stale_claims_delete");
    s = data->Update([&](storage::WriteTxn& txn) -> Status {
      for (const PersonId& p : stale) {
        if (Status d = txn.Delete(tables.key_claims, p.view()); !d.ok() && !d.IsNotFound()) return d;
      }
      return Status::OK();
    });
    if (!s.ok()) return s.WithContext("deleting adopted key claims");
  }
  if (beside_writer) {
    keys->SetClaimLookup([this](const PersonId& person) -> Result<std::optional<std::uint64_t>> {
      std::optional<std::uint64_t> index;
      Status v = data->View([&](storage::ReadTxn& txn) -> Status {
        std::string_view row;
        Status g = txn.Get(tables.key_claims, person.view(), &row);
        if (g.IsNotFound()) return Status::OK();
        if (!g.ok()) return g;
        auto i = DecodeClaim(person.view(), row);
        if (!i.ok()) return i.status();
        index = *i;
        return Status::OK();
      });
      if (!v.ok()) return v;
      return index;
    });
  }
  return Status::OK();
}

Status EngineContext::AdoptKeyClaims() {
  if (Status a = keys->AdoptClaims(); !a.ok()) return a.WithContext("adopting claimed keys");
  const std::vector<PersonId> adopted = keys->AdoptedClaims();
  if (adopted.empty()) return Status::OK();
  Status s = data->Update([&](storage::WriteTxn& txn) -> Status {
    for (const PersonId& p : adopted) {
      if (Status d = txn.Delete(tables.key_claims, p.view()); !d.ok() && !d.IsNotFound()) return d;
    }
    return Status::OK();
  });
  if (!s.ok()) return s.WithContext("deleting adopted key claims");
  keys->ClaimsDeleted(adopted);
  return Status::OK();
}

Result<std::vector<PersonId>> EngineContext::PeopleWithoutRows(const std::vector<PersonId>& with_keys) {
  std::vector<PersonId> out;
  Status s = data->View([&](storage::ReadTxn& txn) -> Status {
    out.clear();
    for (const PersonId& p : with_keys) {
      std::string_view row;
      Status g = txn.Get(tables.people, p.view(), &row);
      if (g.IsNotFound()) {
        out.push_back(p);
      } else if (!g.ok()) {
        return g;
      }
    }
    return Status::OK();
  });
  if (!s.ok()) return s;
  return out;
}

Status EngineContext::ReadDataMeta(storage::ReadTxn& txn, bool* fresh) {
  std::string format, store_id, seq;
  Status f = ReadPlain(txn, tables.meta, TableId::kDataMeta, kDataFormatKey, &format);
  if (f.IsNotFound()) {
    *fresh = true;
    return Status::OK();
  }
  if (!f.ok()) return f.WithContext("data environment format");
  if (format.size() != 4) return Status::Corruption("data environment format version has the wrong length");
  data_format = util::DecodeFixed32BE(format.data());
  if (data_format > kDataFormatVersion) {
    return Status::UnsupportedVersion("data environment has format version " + std::to_string(data_format) +
                                      ", newer than this shredkv reads (" + std::to_string(kDataFormatVersion) +
                                      "): open it with a newer shredkv");
  }
  if (data_format < kOldestDataFormatVersion) {
    return Status::UnsupportedVersion("data environment has format version " + std::to_string(data_format) +
                                      ", older than this shredkv migrates (" +
                                      std::to_string(kOldestDataFormatVersion) + ")");
  }
  std::string granularity;
  Status gr = ReadPlain(txn, tables.meta, TableId::kDataMeta, kAnalyticsGranularityKey, &granularity);
  if (gr.ok()) {
    if (granularity.size() != 8) return Status::Corruption("analytics granularity has the wrong length");
    analytics_granularity_ms = static_cast<std::int64_t>(util::DecodeFixed64BE(granularity.data()));
    if (analytics_granularity_ms < 1) return Status::Corruption("analytics granularity is not positive");
  } else if (gr.IsNotFound()) {
    if (data_format >= 3) return Status::Corruption("data environment lacks its analytics granularity");
    analytics_granularity_ms = options.analytics_time_granularity_ms;  // stored by the migration
  } else {
    return gr;
  }
  if (Status r = ReadPlain(txn, tables.meta, TableId::kDataMeta, kDataStoreIdKey, &store_id); !r.ok()) {
    return r.IsNotFound() ? Status::Corruption("data environment lacks its store id") : r;
  }
  if (store_id != keys->store_id()) {
    return Status::Corruption("the keys and data environments belong to different stores");
  }
  std::string layout;
  Status l = ReadPlain(txn, tables.meta, TableId::kDataMeta, kAnalyticsLayoutKey, &layout);
  if (l.ok()) {
    if (layout.size() != 4) return Status::Corruption("analytics layout has the wrong length");
    const std::uint32_t v = util::DecodeFixed32BE(layout.data());
    if (v != static_cast<std::uint32_t>(AnalyticsLayout::kUngrouped) &&
        v != static_cast<std::uint32_t>(AnalyticsLayout::kGrouped)) {
      return Status::UnsupportedVersion("data environment has analytics layout " + std::to_string(v) +
                                        ", unknown to this shredkv: open it with a newer shredkv");
    }
    analytics_layout = static_cast<AnalyticsLayout>(v);
  } else if (l.IsNotFound()) {
    // A format-3 store from before the layout was recorded, or a format-2
    // migration such a build started: ungrouped. A format-2 store whose
    // migration has not started gets the grouped layout (the migration
    // records it in its first transaction).
    std::string migration;
    Status m = ReadPlain(txn, tables.meta, TableId::kDataMeta, kMigrationKey, &migration);
    if (!m.ok() && !m.IsNotFound()) return m;
    analytics_layout = data_format >= 3 || m.ok() ? AnalyticsLayout::kUngrouped : AnalyticsLayout::kGrouped;
  } else {
    return l;
  }
  Status q = ReadPlain(txn, tables.meta, TableId::kDataMeta, kEventSeqKey, &seq);
  if (q.ok()) {
    if (seq.size() != 8) return Status::Corruption("event sequence has the wrong length");
    next_event_seq = util::DecodeFixed64BE(seq.data());
  } else if (!q.IsNotFound()) {
    return q;
  }
  return Status::OK();
}

Status EngineContext::InitDataMeta(storage::WriteTxn& txn) {
  if (Status r = consent_index->MarkReady(txn); !r.ok()) return r;  // no consent row yet
  if (Status p = PutDataFormat(txn); !p.ok()) return p;
  std::string granularity;
  util::PutFixed64BE(&granularity, static_cast<std::uint64_t>(options.analytics_time_granularity_ms));
  if (Status p = txn.Put(tables.meta, kAnalyticsGranularityKey,
                         PlainRow(TableId::kDataMeta, kAnalyticsGranularityKey, granularity));
      !p.ok()) {
    return p;
  }
  if (Status p = PutAnalyticsLayout(txn); !p.ok()) return p;
  return txn.Put(tables.meta, kDataStoreIdKey,
                 PlainRow(TableId::kDataMeta, kDataStoreIdKey, keys->store_id()));
}

bool EngineContext::InPlace(const PersonId& id) const {
  return !placement || util::Checksum64(id.view()) % placement->count == placement->index;
}

Status EngineContext::LoadPlacement() {
  std::string row;
  Status r = data->View([&](storage::ReadTxn& txn) {
    return ReadPlain(txn, tables.meta, TableId::kDataMeta, kPlacementKey, &row);
  });
  if (!r.ok() && !r.IsNotFound()) return r.WithContext("the store's shard placement");
  std::optional<ShardPlacement> recorded;
  if (r.ok()) {
    if (row.size() != 8) return Status::Corruption("the store's shard placement has the wrong length");
    recorded = ShardPlacement{util::DecodeFixed32BE(row.data()), util::DecodeFixed32BE(row.data() + 4)};
    if (recorded->count == 0 || recorded->count > kMaxShards || recorded->index >= recorded->count) {
      return Status::Corruption("the store's shard placement is out of range");
    }
  }
  const std::optional<ShardPlacement>& given = options.shard_placement;
  const auto describe = [](const ShardPlacement& p) {
    return "shard " + std::to_string(p.index) + " of " + std::to_string(p.count);
  };
  if (given && recorded && *given != *recorded) {
    return Status::Corruption("the store is " + describe(*recorded) + " of a sharded store, opened as " +
                              describe(*given) + " (shard files swapped or moved?)");
  }
  if (given && !recorded && !options.read_only) {
    std::string value;
    util::PutFixed32BE(&value, given->index);
    util::PutFixed32BE(&value, given->count);
    Status w = data->Update([&](storage::WriteTxn& txn) {
      return txn.Put(tables.meta, kPlacementKey, PlainRow(TableId::kDataMeta, kPlacementKey, value));
    });
    if (!w.ok()) return w.WithContext("recording the store's shard placement");
  }
  placement = given ? given : recorded;
  shard_opened_alone = !given && recorded.has_value();
  return Status::OK();
}

Status EngineContext::PutDataFormat(storage::WriteTxn& txn) const {
  std::string format;
  util::PutFixed32BE(&format, kDataFormatVersion);
  return txn.Put(tables.meta, kDataFormatKey, PlainRow(TableId::kDataMeta, kDataFormatKey, format));
}

Status EngineContext::PutAnalyticsLayout(storage::WriteTxn& txn) const {
  std::string layout;
  util::PutFixed32BE(&layout, static_cast<std::uint32_t>(analytics_layout));
  return txn.Put(tables.meta, kAnalyticsLayoutKey, PlainRow(TableId::kDataMeta, kAnalyticsLayoutKey, layout));
}

Status EngineContext::CheckUsable() const {
  if (closed.load()) return Status::FailedPrecondition("store is closed");
  return CheckHealthy();
}

Status EngineContext::CheckHealthy() const {
  {
    std::lock_guard lock(fatal_mu_);
    if (!fatal_.ok()) return Status::IOError("store must be reopened: " + fatal_.message());
  }
  if (util::ForkGeneration() != fork_generation) {
    return Status::FailedPrecondition("store was opened by the parent process: not usable after fork()");
  }
  return Status::OK();
}

std::uint64_t EngineContext::ErasureEpoch() {
  if (!options.read_only) return erasure_epoch.load(std::memory_order_acquire);
  // Every `keys` commit of the writer may be an erasure. Under the close
  // lock: `keys` is not closed under the read. A closed store reads as
  // unchanged (its iterators' next batch fails anyway).
  CallGuard guard(*this);
  if (!guard.ok()) return erasure_epoch.load(std::memory_order_acquire);
  const std::uint64_t txn = keys->environment().LastCommittedTxn();
  erasure_epoch.store(txn, std::memory_order_relaxed);
  return txn;
}

std::int64_t EngineContext::Now() const {
  if (options.clock) return options.clock();
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Result<keys::DekHandle> EngineContext::PersonKey(const PersonId& id, LostKey lost) {
  auto dek = keys->GetDek(id);
  if (dek.ok() || !dek.status().IsNotFound()) return dek;
  auto erased = keys->IsErased(id);
  if (!erased.ok()) return erased.status();
  if (*erased) return Status::Erased("person " + id.ToHex() + " was erased");
  if (lost == LostKey::kNotFound) return Status::NotFound("no key for person " + id.ToHex());
  // No key and no fence. If the person has rows in `data`, the key was not
  // erased but lost: a damaged `deks` page, or a keys file from another
  // copy of the store. That is damage, not "no person": NotFound would tell
  // an erasure request there is nothing to erase while the rows are there.
  // A person created meanwhile (its ID can be known before its commit:
  // WriteBatch::CreatePerson) also has a row now, and a key that is found
  // from then on (its claim commits with the row): so a row seen here is
  // checked against the key once more before it is called damage.
  util::TestPoint("person_key.no_key");
  bool has_row = false;
  Status v = data->View([&](storage::ReadTxn& txn) -> Status {
    std::string_view row;
    Status g = txn.Get(tables.people, id.view(), &row);
    has_row = g.ok();
    return g.IsNotFound() ? Status::OK() : g;
  });
  if (!v.ok()) return v;
  if (has_row) {
    auto again = keys->GetDek(id);
    if (again.ok() || !again.status().IsNotFound()) return again;
    return Status::Corruption("person " + id.ToHex() +
                              " has rows but no key and no erasure record: the keys file is damaged or is not "
                              "this store's (run verify; restore from a backup)");
  }
  return Status::NotFound("no person " + id.ToHex());
}

Status EngineContext::ReadAnalyticsRow(const storage::ReadTxn& txn, std::uint64_t seq, std::string_view akey,
                                       std::string* payload, bool* staged, bool look_in_staging) const {
  StagedRow row;
  Status f = look_in_staging ? staging->Find(txn, seq, &row) : Status::NotFound("staging is empty");
  *staged = f.ok();
  if (f.ok()) {
    if (row.key != akey) return Status::Corruption("the staged analytics row of event " + std::to_string(seq) +
                                                   " has another key");
    *payload = std::move(row.payload);
    return Status::OK();
  }
  if (!f.IsNotFound()) return f;
  return ReadPlain(txn, tables.analytics, TableId::kAnalytics, akey, payload);
}

Result<std::uint64_t> EngineContext::MaterialiseAnalytics(std::optional<std::int64_t> last_bucket_ms) {
  std::uint64_t staged = 0;
  Status v = data->View([&](storage::ReadTxn& txn) -> Status {
    auto n = staging->Count(txn);
    if (!n.ok()) return n.status();
    staged = *n;
    return Status::OK();
  });
  if (!v.ok() || staged == 0) return v.ok() ? Result<std::uint64_t>(std::uint64_t{0}) : Result<std::uint64_t>(v);
  std::uint64_t moved = 0;
  Status s = data->Update([&](storage::WriteTxn& txn) -> Status {
    auto n = staging->Materialise(txn, last_bucket_ms);
    if (!n.ok()) return n.status();
    moved = *n;
    // Nothing moved, nothing written: abort rather than commit an empty
    // transaction.
    return moved == 0 ? Status::NotFound("no staged row in range") : Status::OK();
  });
  if (s.IsNotFound() && moved == 0) return std::uint64_t{0};
  if (!s.ok()) return s;
  return moved;
}

std::int64_t EngineContext::LastClosedAnalyticsBucket() const {
  const std::int64_t now = Now();
  // The bucket [b, b + g) has ended when b + g <= now.
  return now < INT64_MIN + analytics_granularity_ms ? INT64_MIN : now - analytics_granularity_ms;
}

std::string EngineContext::AnalyticsKeyFor(std::string_view link, std::int64_t ts_ms, std::uint64_t seq) const {
  return LinkedAnalyticsKey(analytics_layout, link, analytics_granularity_ms, ts_ms, seq);
}

std::string EngineContext::CollectionHash(std::string_view collection) const {
  {
    std::shared_lock lock(collection_hashes_mu_);
    auto it = collection_hashes_.find(std::string(collection));
    if (it != collection_hashes_.end()) return it->second;
  }
  std::string hash = crypto::KeyedHash(keys->index_key(), codec::kNameHashSize, {"collection", collection});
  std::unique_lock lock(collection_hashes_mu_);
  if (collection_hashes_.size() < kCollectionHashesKept) collection_hashes_.emplace(collection, hash);
  return hash;
}

std::string EngineContext::AuditSubject(const crypto::SecretKey& person_key) {
  return crypto::KeyedHash(person_key, 16, {"audit-subject"});
}

std::string EngineContext::RecordKeyHash(const crypto::SecretKey& dek, std::string_view collection,
                                     std::string_view key) {
  return crypto::KeyedHash(dek, codec::kNameHashSize, {"record-key", collection, key});
}

Result<std::uint64_t> EngineContext::PersonVersion(storage::ReadTxn& txn, const PersonId& id) const {
  std::string v;
  Status g = ReadPlain(txn, tables.versions, TableId::kVersions, id.view(), &v);
  if (g.IsNotFound()) return std::uint64_t{0};
  if (!g.ok()) return g;
  if (v.size() != 8) return Status::Corruption("person version has the wrong length");
  return util::DecodeFixed64BE(v.data());
}

Result<std::uint64_t> EngineContext::ExpiredPending(const storage::ReadTxn& txn, const CompiledRetention& rules,
                                                   std::int64_t now_ms, bool count_staged) const {
  auto by_rule = retention->CountPending(txn, rules, now_ms);
  if (!by_rule.ok()) return by_rule.status();
  auto past_own_expiry = record_index->CountExpired(txn, now_ms);
  if (!past_own_expiry.ok()) return past_own_expiry.status();
  auto notices = outbox->ExpiredPrefix(txn, NoticeExpiryCutoff(rules.rules, now_ms));
  if (!notices.ok()) return notices.status();
  // Analytics rows still staged are expired as their rows in `analytics`
  // would be, and a sweep materialises and deletes them (outside audit
  // 35a, F3: they were left out, and 0 was reported while the sweep then
  // deleted 139).
  std::uint64_t staged = 0;
  const auto analytics_cutoff = count_staged && rules.rules.analytics > 0
                                    ? RetentionCutoff(now_ms, rules.rules.analytics)
                                    : std::nullopt;
  if (analytics_cutoff) {
    auto n = staging->CountUpTo(txn, *analytics_cutoff);
    if (!n.ok()) return n.status().WithContext("counting the expired staged analytics rows");
    staged = *n;
  }
  return *by_rule + *past_own_expiry + notices->count + staged;
}

Result<RestrictionState> EngineContext::ReadRestriction(storage::ReadTxn& txn, const PersonId& id) const {
  std::string payload;
  Status g = ReadPlain(txn, tables.restrictions, TableId::kRestrictions, id.view(), &payload);
  if (g.IsNotFound()) return RestrictionState{};
  if (!g.ok()) return g.WithContext("restriction of " + id.ToHex());
  RestrictionState r;
  if (Status d = codec::DecodeRestriction(payload, &r); !d.ok()) return d;
  return r;
}

Result<std::map<std::string, bool>> EngineContext::ReadConsent(storage::ReadTxn& txn, const PersonId& id) const {
  std::map<std::string, bool> out;
  auto cursor = txn.OpenCursor(tables.consent);
  if (!cursor.ok()) return cursor.status();
  auto& c = **cursor;
  Status m = c.Seek(id.view());
  for (; m.ok() && c.Valid() && c.key().substr(0, PersonId::kSize) == id.view(); m = c.Next()) {
    std::string_view payload;
    if (Status o = codec::OpenPlain(TableId::kConsent, c.key(), c.value(), &payload); !o.ok()) return o;
    if (payload.size() != 9) return Status::Corruption("consent row malformed");
    out[std::string(c.key().substr(PersonId::kSize))] = payload[0] == 1;
  }
  if (!m.ok()) return m;
  return out;
}

Result<codec::PersonPayload> EngineContext::ReadPersonPayload(const PersonId& id, const crypto::SecretKey& person_key) {
  codec::PersonPayload payload;
  Status r = data->View([&](storage::ReadTxn& txn) -> Status {
    std::string_view row;
    if (Status g = txn.Get(tables.people, id.view(), &row); !g.ok()) return g;
    std::string plain;
    if (Status o = codec::OpenPersonRow(person_key, TableId::kPeople, id.view(), row, &plain); !o.ok()) return o;
    Status d = codec::DecodePerson(plain, &payload);
    crypto::Wipe(&plain);
    return d;
  });
  if (r.IsNotFound()) return Status::NotFound("no person " + id.ToHex());
  if (!r.ok()) return r.WithContext("person " + id.ToHex());
  return payload;
}

Status EngineContext::Suppressed(std::string_view hash, bool* suppressed) {
  auto r = keys->IsSuppressed(hash);
  if (!r.ok()) return r.status();
  *suppressed = *r;
  return Status::OK();
}

}  // namespace shredkv::engine
