// Store::Verify: a full consistency check of both environments.
#include <map>

#include "codec/row_codec.h"
#include "codec/sealed.h"
#include "crypto/secure_memory.h"
#include "engine/data_rows.h"
#include "engine/keyring.h"
#include "engine/verify.h"
#include "util/coding.h"

namespace shredkv::engine {
namespace {

using codec::TableId;
constexpr std::size_t kMaxListedProblems = 1000;

}  // namespace

Result<VerifyReport> Verifier::Verify() {
  CallGuard guard(ctx_);
  if (!guard.ok()) return guard.status();
  VerifyReport report;
  auto problem = [&](std::string what) {
    ++report.problem_count;
    if (report.problems.size() < kMaxListedProblems) report.problems.push_back(std::move(what));
  };
  // Keys of the people whose rows we meet, looked up once. A person with no
  // key but a fence is erased and awaiting purge: their rows are expected.
  // Rows under an erased category key are expected too (awaiting purge).
  std::map<PersonId, std::optional<Keyring>> keys_of;
  auto keyring_of = [&](const PersonId& id) -> Keyring* {
    auto it = keys_of.find(id);
    if (it == keys_of.end()) {
      std::optional<Keyring> k;
      auto dek = ctx_.PersonKey(id);
      if (dek.ok()) {
        k.emplace(ctx_.keys.get(), id, *dek);
      } else if (!dek.status().IsErased()) {
        problem("rows of person " + id.ToHex() + " without a key: " + dek.status().ToString());
      }
      it = keys_of.emplace(id, std::move(k)).first;
    }
    return it->second ? &*it->second : nullptr;
  };
  std::uint64_t checked = 0, total_rows = 0;
  auto tick = [&] {
    if (ctx_.options.progress && (++checked % 4096) == 0) ctx_.options.progress("verify", checked, total_rows);
  };
  Status s = ctx_.data->View([&](storage::ReadTxn& txn) -> Status {
    if (ctx_.options.progress) {
      for (storage::Table t : {ctx_.tables.people, ctx_.tables.profiles, ctx_.tables.events, ctx_.tables.records, ctx_.tables.consent_history,
                               ctx_.tables.ident, ctx_.tables.ident_by_person, ctx_.tables.analytics}) {
        auto n = txn.Count(t);
        if (n.ok()) total_rows += *n;
      }
      ctx_.options.progress("verify", 0, total_rows);
    }
    struct Sealed {
      storage::Table table;
      TableId id;
      const char* name;
      std::uint64_t* count;
    };
    std::uint64_t consent_history = 0;
    const Sealed sealed[] = {{ctx_.tables.people, TableId::kPeople, "people", &report.people},
                             {ctx_.tables.profiles, TableId::kProfiles, "profiles", nullptr},
                             {ctx_.tables.events, TableId::kEvents, "events", &report.events},
                             {ctx_.tables.records, TableId::kRecords, "records", &report.records},
                             {ctx_.tables.consent_history, TableId::kConsentHistory, "consent_history", &consent_history}};
    for (const Sealed& t : sealed) {
      auto cursor = txn.OpenCursor(t.table);
      if (!cursor.ok()) return cursor.status();
      auto& c = **cursor;
      for (Status m = c.SeekToFirst(); c.Valid() || !m.ok(); m = c.Next()) {
        if (!m.ok()) return m;
        tick();
        if (t.count != nullptr) ++*t.count;
        // The row must also be reachable by its key: a damaged branch page
        // can send point lookups astray while a scan still sees every row.
        {
          std::string_view found;
          Status g = txn.Get(t.table, c.key(), &found);
          if (!g.ok() || found.data() != c.value().data()) {
            problem(std::string(t.name) + ": a row is not reachable by its key (damaged index page)");
          }
        }
        auto id = PersonIdFromBytes(c.key().substr(0, PersonId::kSize));
        if (!id.ok() || c.key().size() < PersonId::kSize) {
          problem(std::string(t.name) + ": malformed key");
          continue;
        }
        Keyring* keyring = keyring_of(*id);
        if (keyring == nullptr) continue;
        std::string plain;
        bool shredded = false;
        Status o = keyring->Open(t.id, c.key(), c.value(), &plain, &shredded);
        crypto::Wipe(&plain);
        if (!o.ok()) problem(std::string(t.name) + " row of person " + id->ToHex() + ": " + o.ToString());
      }
    }
    // Identifier index and its back-references agree.
    {
      auto cursor = txn.OpenCursor(ctx_.tables.ident);
      if (!cursor.ok()) return cursor.status();
      auto& c = **cursor;
      for (Status m = c.SeekToFirst(); c.Valid() || !m.ok(); m = c.Next()) {
        if (!m.ok()) return m;
        tick();
        ++report.identifiers;
        std::string_view payload;
        if (Status o = codec::OpenPlain(TableId::kIdentIndex, c.key(), c.value(), &payload); !o.ok()) {
          problem("identifier index: " + o.ToString());
          continue;
        }
        std::string_view back, found;
        if (Status g = txn.Get(ctx_.tables.ident, c.key(), &found); !g.ok() || found.data() != c.value().data()) {
          problem("identifier index: an entry is not reachable by its key (damaged index page)");
        }
        if (!txn.Get(ctx_.tables.ident_by_person, std::string(payload) + std::string(c.key()), &back).ok()) {
          problem("identifier index entry without its back-reference");
        }
      }
    }
    {
      auto cursor = txn.OpenCursor(ctx_.tables.ident_by_person);
      if (!cursor.ok()) return cursor.status();
      auto& c = **cursor;
      for (Status m = c.SeekToFirst(); c.Valid() || !m.ok(); m = c.Next()) {
        if (!m.ok()) return m;
        std::string_view payload;
        if (Status o = codec::OpenPlain(TableId::kIdentByPerson, c.key(), c.value(), &payload); !o.ok()) {
          problem("identifier back-reference: " + o.ToString());
        }
      }
    }
    // Plaintext tables: checksums and decoding.
    {
      auto cursor = txn.OpenCursor(ctx_.tables.analytics);
      if (!cursor.ok()) return cursor.status();
      auto& c = **cursor;
      for (Status m = c.SeekToFirst(); c.Valid() || !m.ok(); m = c.Next()) {
        if (!m.ok()) return m;
        tick();
        ++report.analytics_rows;
        std::string_view payload;
        AnalyticsRow row;
        Status o = codec::OpenPlain(TableId::kAnalytics, c.key(), c.value(), &payload);
        if (o.ok()) o = codec::DecodeAnalytics(payload, &row);
        if (o.ok()) o = codec::DecodeAnalyticsKey(c.key(), &row.ts_ms);
        if (!o.ok()) problem("analytics row: " + o.ToString());
      }
    }
    struct Plain {
      storage::Table table;
      TableId id;
      const char* name;
    };
    const Plain plain_tables[] = {{ctx_.tables.restrictions, TableId::kRestrictions, "restrictions"},
                                  {ctx_.tables.consent, TableId::kConsent, "consent"},
                                  {ctx_.tables.versions, TableId::kVersions, "versions"},
                                  {ctx_.tables.erased, TableId::kErased, "erased"},
                                  {ctx_.tables.audit_by_request, TableId::kAuditByRequest, "audit_by_request"},
                                  {ctx_.tables.expiry, TableId::kExpiry, "expiry"},
                                  {ctx_.tables.expiry_refs, TableId::kExpiryRefs, "expiry_refs"}};
    for (const Plain& t : plain_tables) {
      auto cursor = txn.OpenCursor(t.table);
      if (!cursor.ok()) return cursor.status();
      auto& c = **cursor;
      for (Status m = c.SeekToFirst(); c.Valid() || !m.ok(); m = c.Next()) {
        if (!m.ok()) return m;
        std::string_view payload, found;
        if (Status o = codec::OpenPlain(t.id, c.key(), c.value(), &payload); !o.ok()) {
          problem(std::string(t.name) + ": " + o.ToString());
        } else if (Status g = txn.Get(t.table, c.key(), &found); !g.ok() || found.data() != c.value().data()) {
          problem(std::string(t.name) + ": a row is not reachable by its key (damaged index page)");
        }
      }
    }
    if (ctx_.options.progress) ctx_.options.progress("verify", total_rows, total_rows);
    auto feed = ctx_.outbox->Read(txn, 0, ~std::size_t{0});
    if (!feed.ok()) problem("change feed: " + feed.status().ToString());
    auto audit = ctx_.audit->Verify(txn);
    if (!audit.ok()) return audit.status();
    report.audit_entries = audit->entries;
    if (!audit->intact) problem("audit log: " + audit->problem);
    return Status::OK();
  });
  if (!s.ok()) {
    if (s.IsCorruption() || s.IsAuthenticationFailed()) {
      problem("reading the store failed: " + s.ToString());
      return report;
    }
    return s;
  }
  return report;
}

Result<AuditVerification> Verifier::VerifyAuditLog() {
  CallGuard guard(ctx_);
  if (!guard.ok()) return guard.status();
  AuditVerification v;
  Status s = ctx_.data->View([&](storage::ReadTxn& txn) -> Status {
    auto r = ctx_.audit->Verify(txn);
    if (!r.ok()) return r.status();
    v = *r;
    return Status::OK();
  });
  if (!s.ok()) return s;
  return v;
}

}  // namespace shredkv::engine
