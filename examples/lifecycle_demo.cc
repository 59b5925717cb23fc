// shredkv lifecycle demo: a walk through the public API on a throwaway store.
//
//   build/bin/shredkv_demo
//
// Creates a store in a fresh temporary directory with a new root key file,
// adds four people with several identifiers each, gives them profiles,
// events and order records, resolves them by every identifier type (showing
// normalisation), scans events and records, prints the analytics rows (which
// carry only anonymous IDs), erases one person by crypto-shredding (purge,
// epoch rotation, audit log), prints the store's statistics, closes and
// reopens the store to show that everything persisted, and removes the
// directory.
//
// Uses only the public API (shredkv/shredkv.h). Every Status is checked; on
// the first failure the demo prints it, removes the directory and exits 1.
#include <stdlib.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "shredkv/shredkv.h"

namespace {

namespace fs = std::filesystem;
using shredkv::AnalyticsQuery;
using shredkv::Attributes;
using shredkv::Event;
using shredkv::Identifier;
using shredkv::PersonId;
using shredkv::Result;
using shredkv::Status;
using shredkv::Store;
using shredkv::TimeRange;
using shredkv::Timestamp;
using shredkv::Value;

// The temporary directory, removed on success and on failure.
std::string g_workdir;

void RemoveWorkdir() {
  if (g_workdir.empty()) return;
  std::error_code ec;
  fs::remove_all(g_workdir, ec);
  if (ec) std::fprintf(stderr, "warning: cannot remove %s: %s\n", g_workdir.c_str(), ec.message().c_str());
  g_workdir.clear();
}

[[noreturn]] void Die(std::string_view what, const Status& status) {
  std::fprintf(stderr, "\nFAILED: %.*s: %s\n", static_cast<int>(what.size()), what.data(),
               status.ToString().c_str());
  RemoveWorkdir();
  std::exit(1);
}

void Check(const Status& status, std::string_view what) {
  if (!status.ok()) Die(what, status);
}

template <typename T>
T Check(Result<T> result, std::string_view what) {
  if (!result.ok()) Die(what, result.status());
  return std::move(result).value();
}

// Fails the demo when an expectation about the data does not hold.
void Expect(bool condition, const std::string& what) {
  if (!condition) Die(what, Status::Internal("unexpected result"));
}

// ---- formatting -------------------------------------------------------------

constexpr std::int64_t kMinute = 60 * 1000;
constexpr std::int64_t kHour = 60 * kMinute;
constexpr std::int64_t kDay = 24 * kHour;
// 2024-03-01 00:00:00 UTC: all demo times are fixed so the output is stable.
constexpr std::int64_t kBase = 1709251200000;

std::string FormatTime(std::int64_t ms) {
  const std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M", &tm);
  return buf;
}

std::string Hex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (char c : bytes) {
    const auto b = static_cast<unsigned char>(c);
    out.push_back(kDigits[b >> 4]);
    out.push_back(kDigits[b & 0xf]);
  }
  return out;
}

// A string in double quotes with tabs and newlines made visible.
std::string Quote(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '\t') {
      out += "\\t";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out.push_back(c);
    }
  }
  return out + "\"";
}

std::string FormatValue(const Value& v) {
  switch (v.type()) {
    case Value::Type::kString: return Quote(v.as_string());
    case Value::Type::kInt64: return std::to_string(v.as_int64());
    case Value::Type::kDouble: {
      char buf[32];
      std::snprintf(buf, sizeof buf, "%.2f", v.as_double());
      return buf;
    }
    case Value::Type::kBool: return v.as_bool() ? "true" : "false";
    case Value::Type::kTimestamp: return FormatTime(v.as_timestamp().ms) + "Z";
    case Value::Type::kBytes: return "bytes:" + Hex(v.as_bytes());
  }
  return "?";
}

std::string FormatAttributes(const Attributes& attrs) {
  std::string out = "{";
  for (const auto& [name, value] : attrs) {
    if (out.size() > 1) out += ", ";
    out += name + "=" + FormatValue(value);
  }
  return out + "}";
}

// First 12 hex digits of an ID: enough to tell the demo's IDs apart.
template <typename Id>
std::string Short(const Id& id) {
  return id.ToHex().substr(0, 12);
}

void Section(const char* title) { std::printf("\n== %s\n", title); }

// ---- the demo's data --------------------------------------------------------

struct Person {
  std::string label;                   // for the demo's output only
  std::vector<Identifier> identifiers;  // as given when the person is created
  Attributes profile;
  // The same identifiers written the way a user might type them again.
  std::vector<Identifier> lookups;
  PersonId id;
};

std::vector<Person> DemoPeople() {
  const std::string avatar_a("\x3a\x9f\x01\xc4", 4);
  const std::string avatar_b("\x77\x10\xe2\x5b", 4);
  return {
      {"Ann",
       {{"email", "ann@example.org"}, {"phone", "+49 170 1234567"},
        {"customer_id", "C-1001"}, {"device_id", "ios-7f3a9c"}},
       {{"name", "Ann Example"}, {"birth_year", 1988}, {"newsletter", true},
        {"signed_up", Timestamp{kBase - 90 * kDay}}, {"avatar_sha", Value::Bytes(avatar_a)}},
       {{"email", " Ann@Example.ORG "}, {"phone", "+49 (170) 123-4567"},
        {"customer_id", "  C-1001\t"}, {"device_id", "ios-7f3a9c"}},
       {}},
      {"Bob",
       {{"email", "bob.builder@example.com"}, {"phone", "+44 20 7946 0958"},
        {"customer_id", "C-1002"}, {"device_id", "android-41d2"}},
       {{"name", "Bob Builder"}, {"birth_year", 1975}, {"newsletter", false},
        {"signed_up", Timestamp{kBase - 30 * kDay}}, {"avatar_sha", Value::Bytes(avatar_b)}},
       {{"email", "BOB.Builder@EXAMPLE.com"}, {"phone", "+44 (20) 7946-0958"},
        {"customer_id", "C-1002 "}, {"device_id", " android-41d2"}},
       {}},
      {"Chloe",
       {{"email", "chloe@example.fr"}, {"phone", "+33 6 12 34 56 78"},
        {"customer_id", "C-1003"}, {"device_id", "web-9b77"}},
       {{"name", "Chloe Exemple"}, {"birth_year", 1999}, {"newsletter", true},
        {"signed_up", Timestamp{kBase - 7 * kDay}}},
       {{"email", "Chloe@Example.FR"}, {"phone", "+33.6.12.34.56.78"},
        {"customer_id", "C-1003"}, {"device_id", "web-9b77 "}},
       {}},
      {"Dmitri",
       {{"email", "d.ivanov@example.net"}, {"phone", "+7 912 345-67-89"},
        {"customer_id", "C-1004"}, {"device_id", "ios-2c11"}},
       {{"name", "Dmitri Ivanov"}, {"birth_year", 1961}, {"newsletter", false},
        {"signed_up", Timestamp{kBase - 400 * kDay}}},
       {{"email", "\tD.Ivanov@example.net"}, {"phone", "+7 (912) 345 67 89"},
        {"customer_id", "C-1004"}, {"device_id", "ios-2c11"}},
       {}},
  };
}

// A few events per person, spread over the first days of March 2024. The
// purchase's "address" is personal and stays in the encrypted event; only
// "amount" and "currency" are declared non-personal (analytics_fields).
std::vector<Event> DemoEvents(std::size_t person_index) {
  const std::int64_t offset = static_cast<std::int64_t>(person_index) * 3 * kHour;
  const double amount = 19.90 + 10.0 * static_cast<double>(person_index);
  const char* currency = person_index % 2 == 0 ? "EUR" : "GBP";
  const char* platform = person_index % 2 == 0 ? "ios" : "android";
  return {
      {"app_open", kBase + offset + 9 * kHour, {{"platform", platform}, {"build", 412}}, {"platform"}},
      {"page_view", kBase + offset + 1 * kDay + 10 * kHour,
       {{"path", "/products/kettle"}, {"referrer", "newsletter"}}, {"path"}},
      {"purchase", kBase + offset + 2 * kDay + 18 * kHour,
       {{"amount", amount}, {"currency", currency}, {"items", 2},
        {"address", "Examplestr. " + std::to_string(10 + person_index) + ", 10115 Berlin"}},
       {"amount", "currency"}},
      {"purchase", kBase + offset + 5 * kDay + 12 * kHour,
       {{"amount", amount / 2}, {"currency", currency}, {"items", 1},
        {"address", "Examplestr. " + std::to_string(10 + person_index) + ", 10115 Berlin"}},
       {"amount", "currency"}},
  };
}

shredkv::Options StoreOptions(const std::string& store_dir, const std::string& key_file) {
  shredkv::Options options;
  options.directory = store_dir;
  options.key_provider = shredkv::NewFileKeyProvider(key_file);
  return options;
}

void PrintStats(Store& store) {
  const shredkv::StoreStats st = Check(store.Stats(), "Stats");
  std::printf("  people=%" PRIu64 " identifiers=%" PRIu64 " events=%" PRIu64 " records=%" PRIu64
              " analytics_rows=%" PRIu64 "\n",
              st.people, st.identifiers, st.events, st.records, st.analytics_rows);
  std::printf("  erased=%" PRIu64 " suppressed=%" PRIu64 " pending_purge=%" PRIu64
              " key_epoch=%" PRIu64 " oldest_key_epoch=%" PRIu64 "\n",
              st.erased, st.suppressed, st.pending_purge, st.key_epoch, st.oldest_key_epoch);
  std::printf("  keys file %" PRIu64 " bytes, data file %" PRIu64 " bytes, data map %" PRIu64
              " MiB\n",
              st.keys_file_bytes, st.data_file_bytes, st.data_map_bytes >> 20);
}

void Run() {
  std::printf("shredkv %s lifecycle demo\n", SHREDKV_VERSION_STRING);

  // ---- 1. a store in a fresh temporary directory ----------------------------
  std::string tmpl = (fs::temp_directory_path() / "shredkv-demo-XXXXXX").string();
  if (::mkdtemp(tmpl.data()) == nullptr) {
    Die("mkdtemp", Status::IOError(std::string("cannot create a temporary directory in ") +
                                   fs::temp_directory_path().string()));
  }
  g_workdir = tmpl;
  const std::string key_file = g_workdir + "/root.key";
  const std::string store_dir = g_workdir + "/store";

  Section("1. Open a new store");
  Check(shredkv::CreateKeyFile(key_file), "CreateKeyFile");
  std::printf("  root key: %s (32 random bytes, mode 0600, outside the store)\n", key_file.c_str());
  shredkv::Options options = StoreOptions(store_dir, key_file);
  options.create_if_missing = true;
  options.error_if_exists = true;
  std::unique_ptr<Store> store = Check(Store::Open(std::move(options)), "Store::Open (create)");
  std::printf("  store:    %s\n", store_dir.c_str());
  std::vector<std::string> entries;
  for (const auto& entry : fs::directory_iterator(store_dir)) {
    entries.push_back(entry.path().filename().string() + (entry.is_directory() ? "/" : ""));
  }
  std::sort(entries.begin(), entries.end());
  std::printf("  contents:");
  for (const auto& e : entries) std::printf(" %s", e.c_str());
  std::printf("   (LMDB environments: 'keys' holds wrapped per-person keys, 'data' the rest)\n");

  // ---- 2. people ------------------------------------------------------------
  Section("2. Create people (each gets its own data key and a random anonymous ID)");
  std::vector<Person> people = DemoPeople();
  for (Person& p : people) {
    p.id = Check(store->CreatePerson(p.identifiers, p.profile), "CreatePerson " + p.label);
    const shredkv::PersonInfo info = Check(store->GetPerson(p.id), "GetPerson " + p.label);
    std::printf("  %-6s person %s  anon %s  %zu identifiers\n", p.label.c_str(),
                Short(p.id).c_str(), Short(info.anon_id).c_str(), info.identifiers.size());
  }
  {
    // An identifier belongs to one person only.
    auto dup = store->CreatePerson({{"email", "ANN@example.org"}});
    Expect(!dup.ok() && dup.status().IsAlreadyExists(), "a second person with Ann's email");
    std::printf("  a second person with email ANN@example.org -> %s\n",
                dup.status().ToString().c_str());
  }

  // ---- 3. resolve by every identifier type ----------------------------------
  Section("3. Resolve people by identifier (values are normalised, then hashed)");
  for (const Person& p : people) {
    for (const Identifier& typed : p.lookups) {
      const Identifier normal = Check(shredkv::NormalizeIdentifier(typed), "NormalizeIdentifier");
      const PersonId found = Check(store->Resolve(typed), "Resolve " + typed.type + " of " + p.label);
      Expect(found == p.id, "Resolve " + typed.type + " of " + p.label + " found someone else");
      const std::string shown = Quote(typed.value);
      std::printf("  %-11s %-27s -> %-25s -> %s\n", typed.type.c_str(), shown.c_str(),
                  normal.value.c_str(), p.label.c_str());
    }
  }
  {
    auto missing = store->Resolve({"email", "nobody@example.org"});
    Expect(!missing.ok() && missing.status().IsNotFound(), "Resolve of an unknown email");
    std::printf("  email       \"nobody@example.org\"        -> %s\n",
                missing.status().ToString().c_str());
  }

  // ---- 4. profiles ----------------------------------------------------------
  Section("4. Profiles (encrypted under each person's key)");
  Person& ann = people[0];
  std::printf("  Ann before: %s\n",
              FormatAttributes(Check(store->GetProfile(ann.id), "GetProfile Ann")).c_str());
  shredkv::ProfilePatch patch;
  patch.set = {{"tier", "gold"}, {"lifetime_value", 129.5}, {"newsletter", false}};
  patch.unset = {"avatar_sha"};
  Check(store->PatchProfile(ann.id, patch), "PatchProfile Ann");
  std::printf("  patch:      set tier, lifetime_value, newsletter; unset avatar_sha\n");
  const Attributes ann_profile = Check(store->GetProfile(ann.id), "GetProfile Ann");
  std::printf("  Ann after:  %s\n", FormatAttributes(ann_profile).c_str());
  Expect(ann_profile.count("avatar_sha") == 0 && ann_profile.at("tier") == Value("gold"),
         "Ann's patched profile");

  // ---- 5. events ------------------------------------------------------------
  Section("5. Events (each append also writes an anonymous analytics row)");
  std::size_t appended = 0;
  for (std::size_t i = 0; i < people.size(); ++i) {
    for (const Event& e : DemoEvents(i)) {
      Check(store->AppendEvent(people[i].id, e), "AppendEvent " + e.name + " for " + people[i].label);
      ++appended;
    }
  }
  std::printf("  appended %zu events for %zu people\n", appended, people.size());
  const TimeRange march_2_to_4{kBase + 1 * kDay, kBase + 4 * kDay};
  std::printf("  Ann's events in [%s, %s):\n", FormatTime(march_2_to_4.from_ms).c_str(),
              FormatTime(march_2_to_4.to_ms).c_str());
  std::size_t in_range = 0;
  for (auto it = store->ScanEvents(ann.id, march_2_to_4);; it->Next()) {
    if (!it->Valid()) {
      Check(it->status(), "ScanEvents Ann");
      break;
    }
    const shredkv::StoredEvent& e = it->value();
    std::printf("    %s  seq %-3" PRIu64 " %-10s %s\n", FormatTime(e.ts_ms).c_str(), e.seq,
                e.name.c_str(), FormatAttributes(e.properties).c_str());
    ++in_range;
  }
  Expect(in_range == 2, "Ann has two events in the range");

  // ---- 6. per-person records ------------------------------------------------
  Section("6. Records: collection \"orders\", keys <month>/<order id>");
  for (std::size_t i = 0; i < people.size(); ++i) {
    const std::string n = std::to_string(1000 + i);
    const PersonId& id = people[i].id;
    Check(store->Put(id, "orders", "2024-02/A-" + n + "-1", "kettle x1, 39.90"), "Put order");
    Check(store->Put(id, "orders", "2024-03/A-" + n + "-2", "tea x2, 12.00"), "Put order");
    Check(store->Put(id, "orders", "2024-03/A-" + n + "-3", "mug x4, 24.00"), "Put order");
  }
  Check(store->Delete(people[1].id, "orders", "2024-03/A-1001-3"), "Delete order");
  const std::string got = Check(store->Get(ann.id, "orders", "2024-02/A-1000-1"), "Get order");
  std::printf("  Get(Ann, orders, 2024-02/A-1000-1) = \"%s\"\n", got.c_str());
  for (std::size_t i : {std::size_t{0}, std::size_t{1}}) {
    std::printf("  %s's orders with prefix \"2024-03/\":\n", people[i].label.c_str());
    for (auto it = store->ScanRecords(people[i].id, "orders", "2024-03/");; it->Next()) {
      if (!it->Valid()) {
        Check(it->status(), "ScanRecords");
        break;
      }
      std::printf("    %-18s %s\n", it->value().key.c_str(), it->value().value.c_str());
    }
  }

  // ---- 7. analytics ---------------------------------------------------------
  const std::string bob_anon = Short(Check(store->GetPerson(people[1].id), "GetPerson Bob").anon_id);
  Section("7. Analytics rows for \"purchase\" (anonymous ID, time, declared fields only)");
  AnalyticsQuery query;
  query.name = "purchase";
  std::size_t rows = 0;
  for (auto it = store->ScanAnalytics(query);; it->Next()) {
    if (!it->Valid()) {
      Check(it->status(), "ScanAnalytics");
      break;
    }
    const shredkv::AnalyticsRow& row = it->value();
    Expect(row.fields.count("address") == 0, "an analytics row carries the address");
    std::printf("  anon %s  %s  %-8s %s\n", Short(row.anon_id).c_str(),
                FormatTime(row.ts_ms).c_str(), row.name.c_str(),
                FormatAttributes(row.fields).c_str());
    ++rows;
  }
  Expect(rows == 2 * people.size(), "two purchases per person in analytics");
  std::printf("  (no person ID, identifier or address; the anonymous ID's link to a person\n"
              "   is kept only inside that person's encrypted record)\n");

  // ---- 8. erasure ------------------------------------------------------------
  Section("8. Erase Bob (crypto-shredding)");
  const Person& bob = people[1];
  shredkv::EraseOptions erase_options;
  erase_options.request_id = "dsr-2024-0042";
  erase_options.suppress = true;
  erase_options.analytics = shredkv::AnalyticsOnErase::kKeep;
  const shredkv::ErasureReceipt receipt = Check(
      store->EraseByIdentifier({"email", " bob.builder@EXAMPLE.com"}, erase_options), "EraseByIdentifier Bob");
  std::printf("  EraseByIdentifier(email bob.builder@example.com): request %s, %" PRIu64
              " person, level %s, analytics %s\n",
              receipt.request_id.c_str(), receipt.people,
              std::string(shredkv::ErasureLevelName(receipt.level)).c_str(),
              std::string(shredkv::AnalyticsOnEraseName(receipt.analytics)).c_str());
  {
    auto profile = store->GetProfile(bob.id);
    Expect(!profile.ok() && profile.status().IsErased(), "Bob's profile after erasure");
    std::printf("  GetProfile(Bob)            -> %s\n", profile.status().ToString().c_str());
    auto order = store->Get(bob.id, "orders", "2024-02/A-1001-1");
    Expect(!order.ok() && order.status().IsErased(), "Bob's order after erasure");
    std::printf("  Get(Bob, orders, ...)      -> %s\n", order.status().ToString().c_str());
    auto resolved = store->Resolve({"phone", "+44 20 7946 0958"});
    // Released identifiers resolve to NotFound; suppressed ones say so.
    Expect(!resolved.ok() && (resolved.status().IsSuppressed() || resolved.status().IsNotFound()),
           "Resolve of Bob's phone after erasure");
    std::printf("  Resolve(Bob's phone)       -> %s\n", resolved.status().ToString().c_str());
    auto again_bob = store->CreatePerson({{"email", "bob.builder@example.com"}});
    Expect(!again_bob.ok() && again_bob.status().IsSuppressed(), "re-creating Bob's email");
    std::printf("  CreatePerson(Bob's email)  -> %s\n", again_bob.status().ToString().c_str());
  }
  const shredkv::PurgeResult purged = Check(store->Purge(10000), "Purge");
  std::printf("  Purge: %" PRIu64 " rows deleted, %" PRIu64 " people purged, %" PRIu64
              " pending\n",
              purged.rows_deleted, purged.people_purged, purged.people_pending);
  const shredkv::RotationResult rotated = Check(store->RotateEpoch(), "RotateEpoch");
  std::printf("  RotateEpoch: epoch %" PRIu64 ", %" PRIu64 " old epoch key(s) destroyed, %" PRIu64
              " keys re-wrapped\n",
              rotated.new_epoch, rotated.destroyed_epochs, rotated.rewrapped_keys);
  const shredkv::ErasureReceipt final_receipt =
      Check(store->GetErasure(receipt.request_id), "GetErasure");
  std::printf("  GetErasure(%s): level %s (cryptographic=%s, purged=%s)\n",
              final_receipt.request_id.c_str(),
              std::string(shredkv::ErasureLevelName(final_receipt.level)).c_str(),
              final_receipt.cryptographic ? "yes" : "no", final_receipt.purged ? "yes" : "no");
  Expect(final_receipt.cryptographic && final_receipt.purged, "Bob's erasure after purge and rotation");
  const shredkv::AuditVerification audit = Check(store->VerifyAuditLog(), "VerifyAuditLog");
  Expect(audit.intact, "audit log: " + audit.problem);
  std::printf("  audit log: %" PRIu64 " entries, intact, head %s...\n", audit.entries,
              audit.head_hash.substr(0, 16).c_str());
  std::size_t bob_rows = 0;
  for (auto it = store->ScanAnalytics({});; it->Next()) {
    if (!it->Valid()) {
      Check(it->status(), "ScanAnalytics after erasure");
      break;
    }
    // The analytics rows were kept (AnalyticsOnErase::kKeep) under Bob's old
    // anonymous ID, whose link to Bob was destroyed with his key.
    if (Short(it->value().anon_id) == bob_anon) ++bob_rows;
  }
  std::printf("  analytics rows still under anon %s: %zu (kept, no longer linkable to Bob)\n",
              bob_anon.c_str(), bob_rows);

  // ---- 9. stats -------------------------------------------------------------
  Section("9. Stats");
  PrintStats(*store);

  // ---- 10. close and reopen -------------------------------------------------
  Section("10. Close and reopen");
  Check(store->Close(), "Close");
  store.reset();
  {
    shredkv::Options wrong = StoreOptions(store_dir, key_file);
    wrong.key_provider = shredkv::NewRawKeyProvider(std::string(shredkv::RootKey::kSize, '\0'));
    auto refused = Store::Open(std::move(wrong));
    Expect(!refused.ok() && refused.status().IsWrongKey(), "opening with another root key");
    std::printf("  with another root key: %s\n", refused.status().ToString().c_str());
  }
  store = Check(Store::Open(StoreOptions(store_dir, key_file)), "Store::Open (reopen)");
  std::printf("  reopened with %s\n", key_file.c_str());
  const PersonId again = Check(store->Resolve({"phone", "+49-170-1234567"}), "Resolve after reopen");
  Expect(again == ann.id, "Ann's phone after reopen");
  const Attributes reread = Check(store->GetProfile(ann.id), "GetProfile after reopen");
  Expect(reread == ann_profile, "Ann's profile after reopen");
  std::printf("  phone +49-170-1234567 -> Ann, profile %s\n", FormatAttributes(reread).c_str());
  std::size_t ann_events = 0;
  for (auto it = store->ScanEvents(ann.id);; it->Next()) {
    if (!it->Valid()) {
      Check(it->status(), "ScanEvents after reopen");
      break;
    }
    ++ann_events;
  }
  Expect(ann_events == DemoEvents(0).size(), "Ann's events after reopen");
  std::printf("  Ann has %zu events\n", ann_events);
  {
    auto erased = store->GetProfile(bob.id);
    Expect(!erased.ok() && erased.status().IsErased(), "Bob after reopen");
    std::printf("  GetProfile(Bob) -> %s\n", erased.status().ToString().c_str());
  }
  PrintStats(*store);
  Check(store->Close(), "Close");
  store.reset();

  RemoveWorkdir();
  std::printf("\nremoved %s\ndone\n", tmpl.c_str());
}

}  // namespace

int main() {
  Run();
  return 0;
}
