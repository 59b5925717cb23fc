// Generator of tests/data/v2_store/store: a format-2 store written by the
// format-2 engine (commit 4145dff), kept as the fixture of the v2 → v3
// migration tests (tests/engine/migration_test.cc). It does not build against
// later versions of the engine; it is kept to document how the fixture was
// made:
//   g++ -std=c++20 -Iinclude -Ilib make_v2_store.cc build/lib/libshredkv.a \
//       -llmdb -lsodium -lxxhash -o make_v2_store && ./make_v2_store OUT_DIR
// The root key is 32 bytes of 'k' (tests/test_util.cc TestKeyBytes).
// Contents (see the migration test for what is checked):
//   ann  email+phone, profile, 6 events (2 in category location), 2 records: live
//   fay  email, 4 page_view events (retention rule page_view=3650d): live
//   bob  2 events, erased (analytics keep), purged
//   cat  3 events, erased (analytics unlink), not purged
//   eve  4 events (2 location), category location erased (analytics delete)
//   dan  3 events, erased (analytics delete) with the process killed right
//        after the keys commit: the data side is not applied (a v2 ticket
//        that the migrating open must finish first)
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "shredkv/shredkv.h"
#include "util/test_point.h"

using namespace shredkv;

static void Check(const Status& s, const char* what) {
  if (!s.ok()) {
    std::fprintf(stderr, "%s: %s\n", what, s.ToString().c_str());
    std::exit(1);
  }
}

static void KillAtAfterKeys(std::string_view name) {
  if (name == "erase.after_keys_commit") ::kill(::getpid(), SIGKILL);
}

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  Options o;
  o.directory = argv[1];
  o.create_if_missing = true;
  o.initial_map_size = 1u << 20;
  o.key_provider = NewRawKeyProvider(std::string(32, 'k'));
  o.background_maintenance_ms = 0;
  std::int64_t now = 1760000000000;
  o.clock = [&now] { return now; };
  o.retention = RetentionRules{};
  o.retention->events["page_view"] = 3650ll * 24 * 3600 * 1000;
  auto store = Store::Open(o);
  Check(store.status(), "open");
  Store& s = **store;
  auto make = [&](const std::string& email) {
    auto id = s.CreatePerson({{"email", email}}, {{"name", Value(email.substr(0, 3))}});
    Check(id.status(), "create");
    return *id;
  };
  auto event = [&](const PersonId& p, const std::string& name, std::int64_t ts, const std::string& category) {
    Event e;
    e.name = name;
    e.ts_ms = ts;
    e.category = category;
    e.properties = {{"amount", Value(static_cast<std::int64_t>(ts % 1000))}, {"sku", Value("S-" + std::to_string(ts % 97))}};
    e.analytics_fields = {"amount"};
    Check(s.AppendEvent(p, e), "append");
  };
  const std::int64_t t0 = 1759990000000;
  PersonId ann = make("ann@example.org");
  Check(s.LinkIdentifier(ann, {"phone", "+49 170 1234567"}), "link");
  for (int i = 0; i < 6; ++i) event(ann, i % 2 ? "purchase" : "visit", t0 + i * 60000, i < 2 ? "location" : "");
  Check(s.Put(ann, "prefs", "theme", "dark"), "put");
  Check(s.Put(ann, "prefs", "lang", "de"), "put");
  PersonId fay = make("fay@example.org");
  for (int i = 0; i < 4; ++i) event(fay, "page_view", t0 + i * 1000, "");
  PersonId bob = make("bob@example.org");
  for (int i = 0; i < 2; ++i) event(bob, "visit", t0 + i * 5000, "");
  PersonId cat = make("cat@example.org");
  for (int i = 0; i < 3; ++i) event(cat, "purchase", t0 + i * 7000, "");
  PersonId eve = make("eve@example.org");
  for (int i = 0; i < 4; ++i) event(eve, "visit", t0 + i * 3000, i < 2 ? "location" : "");
  PersonId dan = make("dan@example.org");
  for (int i = 0; i < 3; ++i) event(dan, "purchase", t0 + i * 11000, "");

  EraseOptions keep;
  keep.request_id = "er-bob";
  Check(s.Erase({bob}, keep).status(), "erase bob");
  Check(s.Purge(100000).status(), "purge");
  EraseOptions unlink;
  unlink.request_id = "er-cat";
  unlink.analytics = AnalyticsOnErase::kUnlink;
  Check(s.Erase({cat}, unlink).status(), "erase cat");
  EraseOptions del;
  del.request_id = "er-eve-location";
  del.analytics = AnalyticsOnErase::kDelete;
  Check(s.EraseCategory(eve, "location", del).status(), "erase eve location");
  std::printf("ann %s\nfay %s\nbob %s\ncat %s\neve %s\ndan %s\n", ann.ToHex().c_str(), fay.ToHex().c_str(),
              bob.ToHex().c_str(), cat.ToHex().c_str(), eve.ToHex().c_str(), dan.ToHex().c_str());
  std::fflush(stdout);
  // dan: killed after the keys commit of his erasure.
  util::SetTestPointHook(&KillAtAfterKeys);
  del.request_id = "er-dan";
  (void)s.Erase({dan}, del);
  return 3;  // not reached
}
