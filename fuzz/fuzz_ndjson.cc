// libFuzzer harness: the NDJSON parsers.
//
// The first input byte picks a target, the rest is the text:
//  - the `shredkv ingest` line parser (tools/shredkv/ingest_line.cc), line by
//    line: never a crash or exception; a line it accepts names at least one
//    identifier, each already normalised, and its analytics fields are
//    properties of its event;
//  - the export importer (ImportPerson, NDJSON or JSON) into a real store: an
//    import that fails writes nothing (people, identifiers, events and records
//    counts unchanged); one that succeeds exports again, and after the
//    imported person is erased that export imports again with the same
//    counts.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <sstream>
#include <string>
#include <string_view>

#include "ingest_line.h"
#include "shredkv/shredkv.h"

namespace {

using namespace shredkv;

[[noreturn]] void Fail(const std::string& what) {
  std::fprintf(stderr, "fuzz_ndjson: %s\n", what.c_str());
  std::abort();
}

std::int64_t FixedNow() { return 1'700'000'000'000; }

void FuzzIngestLines(std::string_view text) {
  std::size_t number = 0;
  while (!text.empty()) {
    const std::size_t end = text.find('\n');
    const std::string line(text.substr(0, end));
    text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);
    ++number;
    auto parsed = cli::ParseIngestLine(line, number, &FixedNow);
    if (!parsed.ok()) {
      if (!parsed.status().IsInvalidArgument()) Fail("ParseIngestLine gave " + parsed.status().ToString());
      continue;
    }
    if (parsed->number != number) Fail("ParseIngestLine lost the line number");
    if (parsed->ids.empty()) Fail("an accepted line names no identifier");
    for (const Identifier& id : parsed->ids) {
      auto n = NormalizeIdentifier(id);
      if (!n.ok() || *n != id) Fail("an accepted identifier is not normalised: " + id.type);
    }
    for (const std::string& f : parsed->event.analytics_fields) {
      if (parsed->event.properties.count(f) == 0) Fail("an analytics field is not a property");
    }
  }
}

// One store for the process, recreated every kInputsPerStore inputs so it
// stays small.
class ImportTarget {
 public:
  static constexpr int kInputsPerStore = 256;

  ImportTarget() {
    const std::string root =
        std::filesystem::exists("/dev/shm") ? "/dev/shm" : std::filesystem::temp_directory_path().string();
    std::string templ = root + "/shredkv-fuzz-ndjson-XXXXXX";
    if (mkdtemp(templ.data()) == nullptr) Fail("mkdtemp failed");
    base_ = templ;
  }
  ~ImportTarget() {
    store_.reset();
    std::error_code ec;
    std::filesystem::remove_all(base_, ec);
  }

  Store& store() {
    if (!store_ || uses_ >= kInputsPerStore) {
      if (store_) (void)store_->Close();
      store_.reset();
      std::error_code ec;
      std::filesystem::remove_all(base_ + "/store", ec);
      Options o;
      o.directory = base_ + "/store";
      o.create_if_missing = true;
      o.durability = Durability::kNoSync;
      o.initial_map_size = 1u << 20;
      o.key_provider = NewRawKeyProvider(std::string(32, 'n'));
      o.clock = &FixedNow;
      auto s = Store::Open(o);
      if (!s.ok()) Fail("Open: " + s.status().ToString());
      store_ = std::move(s).value();
      uses_ = 0;
    }
    ++uses_;
    return *store_;
  }

 private:
  std::string base_;
  std::unique_ptr<Store> store_;
  int uses_ = 0;
};

struct Counts {
  std::uint64_t people, identifiers, events, records;
  bool operator==(const Counts&) const = default;
};

Counts CountsOf(Store& store) {
  auto st = store.Stats();
  if (!st.ok()) Fail("Stats: " + st.status().ToString());
  return Counts{st->people, st->identifiers, st->events, st->records};
}

void EraseImported(Store& store, const PersonId& id) {
  EraseOptions options;
  options.analytics = AnalyticsOnErase::kDelete;
  auto r = store.Erase(id, options);
  if (!r.ok()) Fail("Erase of an imported person: " + r.status().ToString());
}

void FuzzImport(std::string_view text, ExportFormat format) {
  static ImportTarget target;
  Store& store = target.store();
  const Counts before = CountsOf(store);
  std::istringstream in{std::string(text)};
  auto imported = ImportPerson(store, in, format);
  if (!imported.ok()) {
    const Status& s = imported.status();
    if (!s.IsInvalidArgument() && !s.IsAlreadyExists() && !s.IsSuppressed()) {
      Fail("ImportPerson gave " + s.ToString());
    }
    if (CountsOf(store) != before) Fail("a failed import wrote to the store: " + s.ToString());
    return;
  }
  // Round trip: export the new person, erase it (freeing its identifiers),
  // import the export again.
  std::ostringstream exported;
  if (Status e = ExportPerson(store, imported->person, format, exported); !e.ok()) {
    Fail("ExportPerson of an imported person: " + e.ToString());
  }
  EraseImported(store, imported->person);
  std::istringstream again_in(exported.str());
  auto again = ImportPerson(store, again_in, format);
  if (!again.ok()) Fail("re-import of an export failed: " + again.status().ToString());
  if (again->identifiers != imported->identifiers || again->events != imported->events ||
      again->records != imported->records) {
    Fail("re-import counts differ from the first import");
  }
  EraseImported(store, again->person);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 3) {
    case 0: FuzzIngestLines(text); break;
    case 1: FuzzImport(text, ExportFormat::kNdjson); break;
    default: FuzzImport(text, ExportFormat::kJson); break;
  }
  return 0;
}
