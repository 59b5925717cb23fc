// export_sample: writes the portability export of one sample person, as a
// JSON document (argv[1]) and as NDJSON (argv[2]), for the schema check
// (CTest export_schema_valid, tests/portability/validate_export.py).
//
// The person carries every value type (including non-UTF-8 strings, NaN and
// ±Infinity, a timestamp outside years 0000..9999, empty bytes), events with
// analytics fields and categories, UTF-8 and binary records, consent
// decisions and a restriction (of a category no event uses, so the import
// below is not refused by the tracking policy) and rectification and
// restriction notices; a second person makes sure nothing of anyone else
// leaks into the export.
// As a cheap extra, both files are imported into a fresh store, which must
// accept them.
//
// Exit status: 0 on success, 1 on any failure (the message names it).
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <unistd.h>

#include "shredkv/portability.h"
#include "shredkv/shredkv.h"

namespace {

using namespace shredkv;

[[noreturn]] void Die(const std::string& what, const Status& s) {
  std::fprintf(stderr, "export_sample: %s: %s\n", what.c_str(), s.ToString().c_str());
  std::exit(1);
}

void Check(const Status& s, const std::string& what) {
  if (!s.ok()) Die(what, s);
}

// A temporary directory removed on destruction.
class TempDir {
 public:
  TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string tmpl = std::string(base != nullptr ? base : "/tmp") + "/shredkv-export-sample-XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) {
      std::perror("export_sample: mkdtemp");
      std::exit(1);
    }
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string Sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

std::unique_ptr<Store> OpenStore(const std::string& dir, char key_fill) {
  Options o;
  o.directory = dir;
  o.create_if_missing = true;
  o.durability = Durability::kNoSync;
  o.initial_map_size = 8u << 20;
  o.key_provider = NewRawKeyProvider(std::string(32, key_fill));
  o.event_categories = {{"login", "behaviour"}};
  o.collection_categories = {{"orders", "payment"}};
  auto store = Store::Open(std::move(o));
  if (!store.ok()) Die("opening a store in " + dir, store.status());
  return std::move(store).value();
}

// Members are assigned one by one (no aggregate init) so this compiles
// whatever fields Event gains.
Event MakeEvent(std::string name, std::int64_t ts, Attributes properties, std::vector<std::string> fields,
                std::string category = {}) {
  Event e;
  e.name = std::move(name);
  e.ts_ms = ts;
  e.properties = std::move(properties);
  e.analytics_fields = std::move(fields);
  e.category = std::move(category);
  return e;
}

PersonId MakeSamplePerson(Store& store) {
  constexpr double kInf = std::numeric_limits<double>::infinity();
  Attributes profile = {
      {"name", Value("Ann")},
      {"name_unicode", Value("Zo\xc3\xab \xf0\x9f\x99\x82")},  // "Zoë 🙂"
      {"empty", Value("")},
      {"latin1", Value(std::string("caf\xe9"))},  // not UTF-8: string_base64
      {"nul_inside", Value(std::string("a\0b", 3))},
      {"age", Value(std::int64_t{41})},
      {"int_min", Value(std::numeric_limits<std::int64_t>::min())},
      {"int_max", Value(std::numeric_limits<std::int64_t>::max())},
      {"score", Value(0.1)},
      {"neg_zero", Value(-0.0)},
      {"whole", Value(3.0)},
      {"huge", Value(1e300)},
      {"nan", Value(std::numeric_limits<double>::quiet_NaN())},
      {"inf", Value(kInf)},
      {"neg_inf", Value(-kInf)},
      {"vip", Value(true)},
      {"opted_out", Value(false)},
      {"born", Value(Timestamp{-2208988800000})},                            // 1900-01-01
      {"far_future", Value(Timestamp{std::numeric_limits<std::int64_t>::max()})},  // iso ""
      {"blob", Value::Bytes(std::string("\0\xff\x10", 3))},
      {"no_bytes", Value::Bytes("")},
  };
  auto id = store.CreatePerson({{"email", "Ann@Example.org"}, {"phone", "+49 170 1234567"}, {"customer_id", "C-1"},
                                {"device_id", "dev-\xc3\xa9"}},
                               profile);
  if (!id.ok()) Die("creating the sample person", id.status());

  const std::int64_t t0 = 1700000000000;
  for (int i = 0; i < 5; ++i) {
    Check(store.AppendEvent(*id, MakeEvent("purchase", t0 + i,
                                           {{"amount", Value(i * 1.5)},
                                            {"sku", Value("S" + std::to_string(i))},
                                            {"qty", Value(std::int64_t{i})},
                                            {"gift", Value(i % 2 == 0)},
                                            {"at", Value(Timestamp{t0 + i})},
                                            {"note", Value(std::string("\xff\xfe", 2))},
                                            {"raw", Value::Bytes("xyz")}},
                                           {"amount", "qty", "gift"})),
          "appending a purchase");
  }
  // Same timestamp as the first purchase: ordered by seq.
  Check(store.AppendEvent(*id, MakeEvent("login", t0, {}, {})), "appending a login");
  // Before 1970, with an explicit category.
  Check(store.AppendEvent(*id, MakeEvent("legacy", -86400000, {{"source", Value("import")}}, {"source"}, "payment")),
        "appending a legacy event");

  Check(store.Put(*id, "orders", "42", "two books"), "putting a text record");
  Check(store.Put(*id, "blobs", std::string("\x01\x02", 2), std::string("\xff\xfe", 2)), "putting a binary record");
  Check(store.Put(*id, "notes", "empty", ""), "putting an empty record");
  WriteBatch batch;
  batch.Put(*id, "mixed", "k\xc3\xa9y", std::string("\x00\x80", 2), "contact");
  batch.Put(*id, Record{"contracts", "c-1", "signed", {}, RecordMetadata{{"billing", "support"}, "checkout", {"psp"}, true, 4102444800000}});
  Check(store.Write(batch), "putting a mixed record with a category");

  // Consent decisions and a restriction (history and state are exported).
  Check(store.SetConsent(*id, "marketing", true, "web-banner"), "granting consent");
  Check(store.SetConsent(*id, "personalization", false, "support-ticket-17"), "withdrawing consent");
  RestrictionSpec restrict;
  restrict.purposes = {"marketing", "support"};
  restrict.categories = {"location"};
  restrict.reason = "disputes accuracy (Art. 18(1)(a))";
  Check(store.Restrict(*id, restrict), "restricting");
  RestrictionSpec lift;
  lift.purposes = {"support"};
  Check(store.Unrestrict(*id, lift), "lifting part of the restriction");

  // A rectification: profile, identifier and one event's analytics field.
  Rectification r;
  r.profile.set = {{"name", Value("Anne")}};
  r.profile.unset = {"empty"};
  r.identifiers.push_back({Identifier{"customer_id", "C-1"}, Identifier{"customer_id", "C-2"}});
  EventCorrection c;
  c.ts_ms = t0;
  c.seq = 0;
  // Find the first purchase's seq through the export itself (seq is store-specific).
  for (auto it = store.Export(*id); it->Valid(); it->Next()) {
    if (it->value().kind == ExportItem::Kind::kEvent && it->value().event.name == "purchase") {
      c.seq = it->value().event.seq;
      break;
    }
  }
  c.properties.set = {{"amount", Value(99.5)}};
  r.events.push_back(std::move(c));
  Check(store.Rectify(*id, r), "rectifying the sample person");
  return *id;
}

void WriteFile(Store& store, const PersonId& id, ExportFormat format, const std::string& path) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) Die("opening " + path, Status::IOError("cannot open for writing"));
  Check(ExportPerson(store, id, format, out), "exporting to " + path);
  out.close();
  if (!out) Die("closing " + path, Status::IOError("write failed"));
}

void ImportFile(const std::string& path, ExportFormat format, char key_fill) {
  TempDir dir;
  auto store = OpenStore(dir.Sub("s"), key_fill);
  std::ifstream in(path, std::ios::binary);
  auto r = ImportPerson(*store, in, format);
  if (!r.ok()) Die("importing " + path + " into a fresh store", r.status());
  Check(store->Close(), "closing the import store");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s OUT.json OUT.ndjson\n", argv[0]);
    return 2;
  }
  TempDir dir;
  auto store = OpenStore(dir.Sub("s"), 'k');
  const PersonId ann = MakeSamplePerson(*store);
  // Someone else, with a notice of their own: none of it may appear.
  auto bob = store->CreatePerson({{"email", "bob@example.org"}}, {{"name", Value("Bob")}});
  if (!bob.ok()) Die("creating a second person", bob.status());
  Check(store->AppendEvent(*bob, MakeEvent("purchase", 1700000000000, {{"amount", Value(1.0)}}, {"amount"})),
        "appending bob's event");
  Rectification rb;
  rb.profile.set = {{"name", Value("Robert")}};
  Check(store->Rectify(*bob, rb), "rectifying the second person");

  WriteFile(*store, ann, ExportFormat::kJson, argv[1]);
  WriteFile(*store, ann, ExportFormat::kNdjson, argv[2]);
  Check(store->Close(), "closing the store");

  ImportFile(argv[1], ExportFormat::kJson, 'j');
  ImportFile(argv[2], ExportFormat::kNdjson, 'n');
  std::printf("export_sample: wrote %s and %s\n", argv[1], argv[2]);
  return 0;
}
