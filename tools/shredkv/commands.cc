// shredkv command-line tool: the commands (ingest and sample have files of
// their own).
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <streambuf>
#include <thread>
#include <vector>

#include "cli.h"
#include "portability/bounded_line.h"
#include "portability/strict_json.h"
#include "json_output.h"
#include "output_file.h"
#include "progress.h"

namespace shredkv::cli {

int ExitCodeFor(const Status& status) {
  switch (status.code()) {
    case StatusCode::kOk: return kExitOk;
    case StatusCode::kNotFound: return kExitNotFound;
    case StatusCode::kErased: return kExitErased;
    case StatusCode::kRestricted: return kExitRestricted;
    case StatusCode::kSuppressed: return kExitSuppressed;
    case StatusCode::kCorruption:
    case StatusCode::kAuthenticationFailed: return kExitCorruption;
    case StatusCode::kWrongKey: return kExitWrongKey;
    case StatusCode::kUnsupportedVersion: return kExitUnsupportedVersion;
    case StatusCode::kReadOnly: return kExitReadOnly;
    case StatusCode::kKeyDestroyed: return kExitKeyDestroyed;
    default: return kExitError;
  }
}

void Fail(const Status& status, std::string_view context) {
  std::string msg = status.ToString();
  if (!context.empty()) msg = std::string(context) + ": " + msg;
  throw CliError(ExitCodeFor(status), msg);
}

std::int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

namespace {
// The reader went away (`shredkv analytics | head`): stop quietly.
[[noreturn]] void StdoutFailed() {
  if (errno == EPIPE) throw CliError(kExitError, "");
  throw CliError(kExitError, std::string("cannot write to stdout: ") + std::strerror(errno));
}
}  // namespace

void PrintLine(std::string_view text) {
  std::cout.write(text.data(), static_cast<std::streamsize>(text.size()));
  std::cout.put('\n');
  if (!std::cout) StdoutFailed();
}

void FlushStdout() {
  std::cout.flush();
  if (!std::cout) StdoutFailed();
}

namespace {

void PrintJson(const GlobalOptions& global, const Json& j) { PrintLine(Dump(j, global.pretty)); }

// True if `dir` holds a restore's marker (RESTORE-IN-PROGRESS, the name
// the engine's restore writes: docs/backup.md): a restore cut short.
bool HoldsRestoreMarker(const std::string& dir) {
  struct stat st {};
  return ::stat((dir + "/RESTORE-IN-PROGRESS").c_str(), &st) == 0;
}

// The Options the global options name (defined with OpenStore below).
Options StoreOptionsFor(const GlobalOptions& global, bool create, std::optional<RetentionRules> retention,
                        StoreAccess access);

std::int64_t ElapsedMs(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start).count();
}

// The checks the file key provider makes, done first so that a key file
// that cannot be a root key reports "wrong root key" (8) with a clear
// message, and a missing one "other error" (1).
void CheckKeyFile(const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) throw CliError(kExitError, "root key file '" + path + "' does not exist");
    throw CliError(kExitError, "cannot access root key file '" + path + "': " + std::strerror(errno));
  }
  if (!S_ISREG(st.st_mode)) throw CliError(kExitWrongKey, "root key file '" + path + "' is not a regular file");
  if (st.st_size != static_cast<off_t>(RootKey::kSize)) {
    throw CliError(kExitWrongKey, "'" + path + "' is not a root key file: it must hold exactly 32 bytes, it has " +
                                      std::to_string(st.st_size));
  }
  if ((st.st_mode & 077) != 0) {
    throw CliError(kExitWrongKey,
                   "root key file '" + path + "' is readable by group or others; refused (chmod 600 it)");
  }
}

ExportFormat ParseFormat(const std::string& text) {
  if (text == "json") return ExportFormat::kJson;
  if (text == "ndjson") return ExportFormat::kNdjson;
  UsageError("--format must be json or ndjson, not '" + text + "'");
}

std::string IdentifierText(const Identifier& id) { return id.type + ":" + id.value; }

// Reads `prefix` and then `source`, counting bytes for a progress bar.
class ChainedInputBuf : public std::streambuf {
 public:
  ChainedInputBuf(std::string prefix, std::streambuf* source, ProgressBar* progress)
      : prefix_(std::move(prefix)), source_(source), progress_(progress), buffer_(64 * 1024) {}

  std::uint64_t consumed() const { return consumed_; }

 protected:
  int_type underflow() override {
    if (gptr() < egptr()) return traits_type::to_int_type(*gptr());
    std::size_t n = 0;
    if (prefix_pos_ < prefix_.size()) {
      n = std::min(buffer_.size(), prefix_.size() - prefix_pos_);
      std::memcpy(buffer_.data(), prefix_.data() + prefix_pos_, n);
      prefix_pos_ += n;
    } else if (source_ != nullptr) {
      const std::streamsize got = source_->sgetn(buffer_.data(), static_cast<std::streamsize>(buffer_.size()));
      n = got > 0 ? static_cast<std::size_t>(got) : 0;
    }
    if (n == 0) return traits_type::eof();
    consumed_ += n;
    if (progress_ != nullptr) progress_->Update(consumed_);
    setg(buffer_.data(), buffer_.data(), buffer_.data() + n);
    return traits_type::to_int_type(*gptr());
  }

 private:
  std::string prefix_;
  std::size_t prefix_pos_ = 0;
  std::streambuf* source_;
  ProgressBar* progress_;
  std::vector<char> buffer_;
  std::uint64_t consumed_ = 0;
};

// ---- commands ---------------------------------------------------------------

int CmdKeygen(const GlobalOptions& global, const ParsedArgs& args) {
  const std::string out = *args.Get("out");
  if (out.empty()) UsageError("keygen: --out needs a file name");
  Check(CreateKeyFile(out), "keygen");
  PrintJson(global, Json{{"key_file", out}});
  return 0;
}

Json RetentionJson(const RetentionRules& r) {
  Json events = Json::object(), collections = Json::object();
  for (const auto& [name, age] : r.events) events[name] = age;
  for (const auto& [name, age] : r.collections) collections[name] = age;
  Json out{{"events", events}, {"collections", collections}, {"analytics", r.analytics}};
  // Only when set, so the output of stores without a feed rule is as before it existed.
  if (r.feed > 0) out["feed"] = r.feed;
  return out;
}

int CmdInit(const GlobalOptions& global, const ParsedArgs& args) {
  std::optional<RetentionRules> retention;
  if (args.Has("retention")) retention = ParseRetention(args.GetAll("retention"));
  std::uint32_t shards = 0;
  if (args.Has("shards")) {
    const std::uint64_t n = *args.GetUint("shards");
    if (n < 1 || n > kMaxShards) UsageError("init: --shards must be 1 to " + std::to_string(kMaxShards));
    shards = static_cast<std::uint32_t>(n);
    // A plain store's directory is never made a sharded store as well.
    struct stat st {};
    if (!global.db.empty() && (::stat((global.db + "/keys").c_str(), &st) == 0 ||
                               ::stat((global.db + "/data").c_str(), &st) == 0)) {
      throw CliError(kExitError, "cannot create the store at '" + global.db + "': a store exists there");
    }
  }
  if (shards == 0 && IsShardedStoreDir(global.db)) {
    throw CliError(kExitError, "cannot create the store at '" + global.db + "': a sharded store is there");
  }
  OpenedStore store = OpenAnyStore(global, StoreAccess::kWrite, /*create=*/true, retention, shards);
  Check(store.Close(), "closing the store");
  Json out{{"db", global.db}, {"created", true}};
  if (shards != 0) out["shards"] = shards;
  if (retention) out["retention"] = RetentionJson(*retention);
  PrintJson(global, out);
  return 0;
}

int CmdExport(const GlobalOptions& global, const ParsedArgs& args) {
  const ExportFormat format = args.Get("format") ? ParseFormat(*args.Get("format")) : ExportFormat::kJson;
  const Identifier id = ParseIdentifierArg(*args.Get("id"));
  return OpenAnyStore(global, StoreAccess::kRead).Visit([&](auto& store) {
    const PersonId person = ResolvePerson(store, id);
    if (global.pretty && format == ExportFormat::kJson) {
      std::ostringstream buffer;
      Check(ExportPerson(store, person, format, buffer), "export");
      PrintJson(global, Json::parse(buffer.str()));
    } else {
      Check(ExportPerson(store, person, format, std::cout), "export");
      FlushStdout();
    }
    return 0;
  });
}

int CmdImport(const GlobalOptions& global, const ParsedArgs& args) {
  std::optional<ExportFormat> format;
  if (auto f = args.Get("format")) format = ParseFormat(*f);
  ImportOptions options;  // anonymous analytics unless asked
  if (auto a = args.Get("analytics")) {
    if (*a == "as-exported") {
      options.analytics = ImportedAnalytics::kAsExported;
    } else if (*a != "anonymous") {
      UsageError("import: --analytics must be anonymous or as-exported, not '" + *a + "'");
    }
  }
  InputFile source = OpenInput(args, "import");
  std::istream* in = source.stream;
  const std::uint64_t total = source.size;
  OpenedStore store = OpenAnyStore(global);
  // Autodetect from at most the input's first 64 KiB (outside audit 36a F1,
  // 35b F4: the whole first line was read, with no bound, and parsed with no
  // depth limit — 30 MB of '[' took 2.4 GB): NDJSON if the first non-blank
  // line ends within them and is a JSON object with "type":"header"
  // (parsed strictly: depth and duplicate keys as everywhere), else one JSON
  // document, whose own parser bounds depth. The bytes read are replayed.
  constexpr std::size_t kDetectBytes = 64 * 1024;
  std::string prefix;
  if (!format) {
    const auto is_header = [](std::string_view line) {
      Json first;
      std::string error;
      return portability::StrictParse(line, &first, &error) && first.is_object() && first.contains("type") &&
             first["type"] == "header";
    };
    const auto blank = [](std::string_view line) { return line.find_first_not_of(" \t\r") == std::string::npos; };
    std::size_t line_start = 0;
    char c = 0;
    while (!format && prefix.size() < kDetectBytes && in->get(c)) {
      prefix += c;
      if (c != '\n') continue;
      const std::string_view line(prefix.data() + line_start, prefix.size() - 1 - line_start);
      if (blank(line)) {
        line_start = prefix.size();
        continue;
      }
      format = is_header(line) ? ExportFormat::kNdjson : ExportFormat::kJson;
    }
    if (!format) {
      // 64 KiB without a whole non-blank line (a one-line document), or the
      // input's end after an unterminated line, or nothing but blanks.
      const std::string_view last(prefix.data() + line_start, prefix.size() - line_start);
      if (in->eof() && blank(last)) throw CliError(kExitError, "import: the input is empty");
      format = in->eof() && is_header(last) ? ExportFormat::kNdjson : ExportFormat::kJson;
    }
  }
  if (in->bad()) throw CliError(kExitError, "import: cannot read '" + source.name + "'");
  in->clear();
  ProgressBar progress("import", total, "bytes");
  ChainedInputBuf chained(std::move(prefix), in->rdbuf(), &progress);
  std::istream input(&chained);
  ImportResult result =
      Check(store.Visit([&](auto& s) { return ImportPerson(s, input, *format, options); }), "import");
  progress.Finish();
  PrintJson(global, Json{{"person_id", result.person.ToHex()},
                         {"identifiers", result.identifiers},
                         {"events", result.events},
                         {"records", result.records}});
  return 0;
}

int CmdGet(const GlobalOptions& global, const ParsedArgs& args) {
  const Identifier id = ParseIdentifierArg(*args.Get("id"));
  const std::string purpose = *args.Get("purpose");
  OpenedStore store = OpenAnyStore(global, StoreAccess::kRead);
  Json out = store.Visit([&](auto& s) {
    const PersonId person = ResolvePerson(s, id);
    std::unique_ptr<Lease> lease = Check(s.AcquireLease(person, purpose), "get");
    Attributes profile = Check(lease->GetProfile(), "get");
    return Json{{"person_id", person.ToHex()}, {"purpose", purpose}, {"profile", PlainAttributes(profile)}};
  });
  PrintJson(global, out);
  return 0;
}

// The people of a command that takes --id or --ids.
struct NamedPeople {
  std::vector<std::string> names;  // each as given (TYPE:VALUE)
  std::vector<PersonId> people;    // resolved, in the same order
  int first_failure = kExitOk;     // exit code of the first name that failed
  std::size_t failures = 0;
};

// Exactly one of --id and --ids (usage error otherwise).
bool ManyIds(const ParsedArgs& args, const char* command) {
  if (args.Has("id") == args.Has("ids")) {
    UsageError(std::string(command) + ": give --id TYPE:VALUE or --ids FILE|- (one TYPE:VALUE a line)");
  }
  return args.Has("ids");
}

// A line of --ids that names someone: its number in the input (1-based,
// every line counted) and its text, nullopt if longer than 4096 bytes.
struct IdLine {
  std::size_t number = 0;
  std::optional<std::string> text;
};

// The lines of --ids FILE|- (a file, or - for stdin: one TYPE:VALUE a
// line) that name someone, in order (blank lines and `#` comments
// skipped; a line longer than 4096 bytes without its text, reported when
// resolving). Read before the store is opened: a list that names no one is
// a usage error then, with nothing opened or written (outside audit 30,
// F4: it exited 0 with nothing done).
std::vector<IdLine> ReadIdsArg(const std::string& source, const char* command) {
  constexpr std::size_t kMaxIdLine = 4096;  // an identifier is at most 1024 bytes normalised
  std::vector<IdLine> lines;
  std::unique_ptr<std::ifstream> file;
  std::istream* in = &std::cin;
  if (source != "-") {
    file = std::make_unique<std::ifstream>(source, std::ios::binary);
    if (!*file) throw CliError(kExitError, "--ids: cannot open '" + source + "': " + std::strerror(errno));
    in = file.get();
  }
  std::string line;
  bool too_long = false;
  std::size_t number = 0;
  while (portability::ReadBoundedLine(*in, &line, kMaxIdLine, &too_long)) {
    ++number;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (too_long) {
      lines.push_back(IdLine{number, std::nullopt});
      continue;
    }
    if (line.empty() || line.front() == '#') continue;
    lines.push_back(IdLine{number, line});
  }
  if (in->bad()) throw CliError(kExitError, "--ids: cannot read '" + source + "'");
  if (lines.empty()) UsageError(std::string(command) + ": --ids names no one (no TYPE:VALUE line): nothing was done");
  return lines;
}

// Resolves the lines ReadIdsArg read; each that fails gets its
// {"id","line","error","exit"} line on stdout and is left out ("id" is
// empty for a line too long to repeat; "line" since stop 36, outside audit
// 35b F10: such a line was named by nothing).
template <typename S>
NamedPeople ResolveIdsArg(S& store, const std::vector<IdLine>& lines) {
  NamedPeople out;
  auto failed = [&](const IdLine& line, const std::string& error, int code) {
    PrintLine(Dump(Json{{"id", line.text.value_or("")}, {"line", line.number}, {"error", error}, {"exit", code}}));
    if (out.first_failure == kExitOk) out.first_failure = code;
    ++out.failures;
  };
  for (const IdLine& line : lines) {
    if (!line.text) {
      failed(line, "line " + std::to_string(line.number) + " of --ids is longer than 4096 bytes", kExitUsage);
      continue;
    }
    try {
      out.people.push_back(ResolvePerson(store, ParseIdentifierArg(*line.text)));
      out.names.push_back(*line.text);
    } catch (const CliError& e) {
      failed(line, e.what(), e.code());
    }
  }
  return out;
}

// The exit code of a command over --ids: that of the first name that
// failed (with one line on stderr saying how many did), 0 if none did.
int ManyExit(const NamedPeople& named, const char* command) {
  if (named.failures != 0) {
    std::cerr << "shredkv: " << command << ": " << named.failures << " of the names given by --ids failed (their "
              << "{\"id\",\"error\",\"exit\"} lines are on stdout); " << named.people.size() << " done\n";
  }
  return named.first_failure;
}

// Prints an erasure's receipt with `print`. The erasure is committed by
// then and cannot be undone: a receipt that cannot be written (stdout
// closed, a full disk) says so and names the request id, whose receipt
// `erasure-status` shows (outside audit 35b, F9: the message said only
// "cannot write to stdout", exit 1, and a retry was exit 4). The exit code
// stays 1.
template <typename Print>
void ReportCommittedErasure(const std::string& request_id, Print&& print) {
  try {
    print();
    FlushStdout();
  } catch (const CliError& e) {
    std::string why = e.what();
    if (why.empty()) why = "the reader of stdout went away";
    throw CliError(e.code(), "the erasure was committed (request id '" + request_id +
                                 "': erasure-status --request-id shows its receipt), but its receipt was not "
                                 "written: " + why);
  }
}

int CmdErase(const GlobalOptions& global, const ParsedArgs& args) {
  const bool many = ManyIds(args, "erase");
  EraseOptions options;
  options.suppress = args.Has("suppress");
  if (auto r = args.Get("request-id")) {
    if (r->empty()) UsageError("erase: --request-id needs a value");
    options.request_id = *r;
  }
  if (auto a = args.Get("analytics")) {
    if (*a == "keep") {
      options.analytics = AnalyticsOnErase::kKeep;
    } else if (*a == "unlink") {
      options.analytics = AnalyticsOnErase::kUnlink;
    } else if (*a == "delete") {
      options.analytics = AnalyticsOnErase::kDelete;
    } else {
      UsageError("erase: --analytics must be keep, unlink or delete, not '" + *a + "'");
    }
  }
  std::optional<std::string> category = args.Get("category");
  if (category && category->empty()) UsageError("erase: --category needs a value");
  if (category && options.suppress) UsageError("erase: --suppress does not go with --category");
  // Before the store is opened (stop 28's audit, F5: after it, a usage
  // error came out as the open's exit code, 3 with no store).
  if (category && many) UsageError("erase: --category does not go with --ids");
  std::vector<IdLine> id_lines;
  if (many) id_lines = ReadIdsArg(*args.Get("ids"), "erase");
  return OpenAnyStore(global).Visit([&](auto& store) {
    using S = std::remove_cvref_t<decltype(store)>;
    if (many) {
      NamedPeople named = ResolveIdsArg(store, id_lines);
      if (named.people.empty()) return ManyExit(named, "erase");
      auto erased = store.Erase(named.people, options);
      if constexpr (kIsSharded<S>) {
        // A sharded erasure cut short between its shards' commits leaves
        // the named people of the parts made erased: a run again resolves
        // them as erased (exit 4 lines) and calls with fewer people, which
        // the request id refuses (outside audit 41b, F1). Say what to do.
        if (erased.status().IsAlreadyExists() && !options.request_id.empty()) {
          throw CliError(kExitError,
                         "erase: " + erased.status().message() +
                             " — if an erase with this request id was cut short between shards, erasure-status "
                             "--request-id " + options.request_id +
                             " shows the parts made (people erased so far); run erase --ids again with a new "
                             "request id to erase the people it did not reach (those already erased are "
                             "reported erased and left out)");
        }
      }
      auto receipt = Check(std::move(erased), "erase");
      ReportCommittedErasure(receipt.request_id, [&] {
        for (std::size_t i = 0; i < named.people.size(); ++i) {
          // On a sharded store, the audit hash of the person's own shard's part.
          std::string audit_hash;
          if constexpr (kIsSharded<S>) {
            for (const auto& [shard, part] : receipt.parts) {
              if (shard == store.ShardOf(named.people[i])) audit_hash = part.audit_hash;
            }
          } else {
            audit_hash = receipt.audit_hash;
          }
          PrintLine(Dump(Json{{"id", named.names[i]}, {"person_id", named.people[i].ToHex()},
                              {"request_id", receipt.request_id}, {"audit_hash", audit_hash}}));
        }
      });
      return ManyExit(named, "erase");
    }
    const PersonId person = ResolvePerson(store, ParseIdentifierArg(*args.Get("id")));
    if (category) {
      ErasureReceipt receipt = Check(store.EraseCategory(person, *category, options), "erase");
      ReportCommittedErasure(receipt.request_id, [&] {
        if constexpr (kIsSharded<S>) {
          // One part, the person's shard's: as erasure-status prints it
          // (outside audit 41b, F6: no "parts").
          ShardedErasureReceipt whole{receipt.request_id, receipt.people, receipt.level, {}};
          whole.parts.emplace_back(store.ShardOf(person), receipt);
          PrintJson(global, ShardedReceiptJson(whole));
        } else {
          PrintJson(global, ReceiptJson(receipt));
        }
      });
    } else if constexpr (kIsSharded<S>) {
      ShardedErasureReceipt receipt = Check(store.Erase({person}, options), "erase");
      ReportCommittedErasure(receipt.request_id, [&] { PrintJson(global, ShardedReceiptJson(receipt)); });
    } else {
      ErasureReceipt receipt = Check(store.Erase(person, options), "erase");
      ReportCommittedErasure(receipt.request_id, [&] { PrintJson(global, ReceiptJson(receipt)); });
    }
    return 0;
  });
}

int CmdErasureStatus(const GlobalOptions& global, const ParsedArgs& args) {
  const std::string request_id = *args.Get("request-id");
  // As erase's (outside audit 39a, F9: exit 1 from the store, not 2).
  if (request_id.empty()) UsageError("erasure-status: --request-id needs a value");
  OpenedStore store = OpenAnyStore(global, StoreAccess::kRead);
  PrintJson(global, store.Visit([&](auto& s) {
    auto receipt = Check(s.GetErasure(request_id), "erasure-status");
    if constexpr (kIsSharded<decltype(s)>) {
      return ShardedReceiptJson(receipt);
    } else {
      return ReceiptJson(receipt);
    }
  }));
  return 0;
}

int CmdUnsuppress(const GlobalOptions& global, const ParsedArgs& args) {
  const Identifier id = ParseIdentifierArg(*args.Get("id"));
  if (id.type == "person_id" || id.type == "person") {
    UsageError("unsuppress: --id takes an identifier (TYPE:VALUE), not a person ID");
  }
  OpenedStore store = OpenAnyStore(global);
  Check(store.Visit([&](auto& s) { return s.Unsuppress(id); }), "unsuppress");
  auto normalized = NormalizeIdentifier(id);
  PrintJson(global, Json{{"identifier", IdentifierText(normalized.ok() ? *normalized : id)}, {"suppressed", false}});
  return 0;
}

RestrictionSpec SpecFromArgs(const ParsedArgs& args) {
  RestrictionSpec spec;
  spec.purposes = args.GetAll("purpose");
  spec.categories = args.GetAll("category");
  spec.all = spec.purposes.empty() && spec.categories.empty();
  if (auto r = args.Get("reason")) spec.reason = *r;
  return spec;
}

int CmdRestrict(const GlobalOptions& global, const ParsedArgs& args, bool restrict) {
  const char* what = restrict ? "restrict" : "unrestrict";
  const bool many = ManyIds(args, what);
  const RestrictionSpec spec = SpecFromArgs(args);
  std::vector<IdLine> id_lines;
  if (many) id_lines = ReadIdsArg(*args.Get("ids"), what);
  return OpenAnyStore(global).Visit([&](auto& store) {
    if (many) {
      NamedPeople named = ResolveIdsArg(store, id_lines);
      if (named.people.empty()) return ManyExit(named, what);
      Check(restrict ? store.Restrict(named.people, spec) : store.Unrestrict(named.people, spec), what);
      for (std::size_t i = 0; i < named.people.size(); ++i) {
        RestrictionState state = Check(store.GetRestriction(named.people[i]), what);
        Json line = RestrictionJson(named.people[i], state);
        line["id"] = named.names[i];
        PrintLine(Dump(line));
      }
      return ManyExit(named, what);
    }
    const PersonId person = ResolvePerson(store, ParseIdentifierArg(*args.Get("id")));
    if constexpr (kIsSharded<decltype(store)>) {
      Check(restrict ? store.Restrict({person}, spec) : store.Unrestrict({person}, spec), what);
    } else {
      Check(restrict ? store.Restrict(person, spec) : store.Unrestrict(person, spec), what);
    }
    RestrictionState state = Check(store.GetRestriction(person), what);
    PrintJson(global, RestrictionJson(person, state));
    return 0;
  });
}

int CmdConsent(const GlobalOptions& global, const ParsedArgs& args) {
  const bool many = ManyIds(args, "consent");
  const std::string purpose = *args.Get("purpose");
  const std::string& action = args.positionals.front();
  bool granted = false;
  if (action == "grant") {
    granted = true;
  } else if (action != "withdraw") {
    UsageError("consent: the action must be grant or withdraw, not '" + action + "'");
  }
  const std::string source = args.Get("source").value_or("shredkv-cli");
  std::vector<IdLine> id_lines;
  if (many) id_lines = ReadIdsArg(*args.Get("ids"), "consent");
  return OpenAnyStore(global).Visit([&](auto& store) {
    if (many) {
      NamedPeople named = ResolveIdsArg(store, id_lines);
      if (named.people.empty()) return ManyExit(named, "consent");
      Check(store.SetConsent(named.people, purpose, granted, source), "consent");
      for (std::size_t i = 0; i < named.people.size(); ++i) {
        PrintLine(Dump(Json{{"id", named.names[i]},
                            {"person_id", named.people[i].ToHex()},
                            {"purpose", purpose},
                            {"granted", granted}}));
      }
      return ManyExit(named, "consent");
    }
    const PersonId person = ResolvePerson(store, ParseIdentifierArg(*args.Get("id")));
    if constexpr (kIsSharded<decltype(store)>) {
      Check(store.SetConsent({person}, purpose, granted, source), "consent");
    } else {
      Check(store.SetConsent(person, purpose, granted, source), "consent");
    }
    PrintJson(global, Json{{"person_id", person.ToHex()}, {"purpose", purpose}, {"granted", granted}});
    return 0;
  });
}

int CmdAudit(const GlobalOptions& global, const ParsedArgs& args) {
  std::uint64_t after = args.GetUint("after").value_or(0);
  std::uint64_t left = args.Has("max") ? *args.GetUint("max") : std::numeric_limits<std::uint64_t>::max();
  auto store = OpenStoreToRead(global);
  constexpr std::uint64_t kPage = 1000;
  while (left > 0) {
    std::vector<AuditRecord> page =
        Check(store->ReadAudit(after, static_cast<std::size_t>(std::min(left, kPage))), "audit");
    for (const AuditRecord& r : page) PrintLine(Dump(AuditJson(r)));
    if (page.empty()) break;
    after = page.back().seq;
    left -= page.size();
  }
  return 0;
}

int CmdAnalytics(const GlobalOptions& global, const ParsedArgs& args) {
  AnalyticsQuery query;
  if (auto n = args.Get("name")) query.name = *n;
  if (auto f = args.GetTime("from")) query.range.from_ms = *f;
  if (auto t = args.GetTime("to")) query.range.to_ms = *t;
  auto store = OpenStoreToRead(global);
  auto it = store->ScanAnalytics(query);
  for (; it->Valid(); it->Next()) PrintLine(Dump(AnalyticsRowJson(it->value())));
  Check(it->status(), "analytics");
  return 0;
}

int CmdFeed(const GlobalOptions& global, const ParsedArgs& args) {
  const auto ack = args.GetUint("ack");
  const std::size_t max =
      args.Has("max") ? static_cast<std::size_t>(*args.GetUint("max")) : std::numeric_limits<std::size_t>::max();
  auto store = ack ? OpenStore(global, false) : OpenStoreToRead(global);
  if (ack) Check(store->AckFeed(*ack), "feed: acknowledging");
  std::vector<Notice> notices = Check(store->ReadFeed(max), "feed");
  for (const Notice& n : notices) PrintLine(Dump(NoticeJson(n)));
  return 0;
}

int CmdRotateKeys(const GlobalOptions& global, const ParsedArgs&) {
  OpenedStore store = OpenAnyStore(global);
  const auto start = std::chrono::steady_clock::now();
  Result<RotationResult> r = [&] {
    ProgressBar bar("rotate-keys", 0, "keys");
    g_engine_progress = &bar;
    auto result = store.Visit([](auto& s) { return s.RotateEpoch(); });
    g_engine_progress = nullptr;
    bar.Finish();
    return result;
  }();
  RotationResult result = Check(std::move(r), "rotate-keys");
  PrintJson(global, Json{{"new_epoch", result.new_epoch},
                         {"destroyed_epochs", result.destroyed_epochs},
                         {"rewrapped_keys", result.rewrapped_keys},
                         {"batches", result.batches},
                         {"keys_file_bytes_before", result.keys_file_bytes_before},
                         {"keys_file_bytes_after", result.keys_file_bytes_after},
                         {"elapsed_ms", ElapsedMs(start)}});
  return 0;
}

int CmdCompact(const GlobalOptions& global, const ParsedArgs&) {
  OpenedStore store = OpenAnyStore(global);
  const auto start = std::chrono::steady_clock::now();
  Result<CompactionResult> r = [&] {
    // The copy reports nothing itself: watch the compacted file grow toward
    // the size of the live one (an upper bound).
    struct stat st {};
    const std::string live = global.db + "/data/data.mdb";
    const std::string copy = global.db + "/data/compact.mdb";
    ProgressBar bar("compact", stat(live.c_str(), &st) == 0 ? static_cast<std::uint64_t>(st.st_size) : 0, "bytes");
    std::atomic<bool> done{false};
    std::thread watcher([&] {
      while (!done.load()) {
        struct stat cs {};
        if (stat(copy.c_str(), &cs) == 0) bar.Update(static_cast<std::uint64_t>(cs.st_size));
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
    });
    auto result = store.Visit([](auto& s) { return s.CompactData(); });
    done.store(true);
    watcher.join();
    bar.Finish();
    return result;
  }();
  CompactionResult result = Check(std::move(r), "compact");
  PrintJson(global, Json{{"file_bytes_before", result.file_bytes_before},
                         {"file_bytes_after", result.file_bytes_after},
                         {"elapsed_ms", ElapsedMs(start)}});
  return 0;
}

int CmdRotateRoot(const GlobalOptions& global, const ParsedArgs& args) {
  const std::string new_key = *args.Get("new-key-file");
  CheckKeyFile(new_key);
  const auto start = std::chrono::steady_clock::now();
  if (IsShardedStoreDir(global.db)) {
    // Every shard and SHARDS, with the store closed (ShardedStore::RotateRootKey).
    const Options options = StoreOptionsFor(global, false, std::nullopt, StoreAccess::kWrite);
    Status s = ShardedStore::RotateRootKey(options, NewFileKeyProvider(new_key));
    if (s.IsBusy()) {
      throw CliError(kExitInUse, "the store at '" + global.db +
                                     "' is in use by another process (close it and try again): " + s.ToString());
    }
    if (s.IsWrongKey()) {
      Fail(s, "the root key in '" + global.key_file + "' does not open the store at '" + global.db + "'");
    }
    Check(s, "rotate-root");
  } else {
    auto store = OpenStore(global, false);
    Check(store->RotateRootKey(NewFileKeyProvider(new_key)), "rotate-root");
    Check(store->Close(), "rotate-root");
  }
  PrintJson(global, Json{{"rotated", true}, {"new_key_file", new_key}, {"elapsed_ms", ElapsedMs(start)}});
  return 0;
}

Json BackupJson(const BackupInfo& info) {
  return Json{{"directory", info.directory},         {"store_id", info.store_id},
              {"created_ms", info.created_ms},       {"current_epoch", info.current_epoch},
              {"oldest_epoch", info.oldest_epoch},   {"custody_labels", info.custody_labels},
              {"people", info.people},               {"keys_bytes", info.keys_bytes},
              {"data_bytes", info.data_bytes}};
}

int CmdBackup(const GlobalOptions& global, const ParsedArgs& args) {
  const std::string dir = args.positionals.front();
  // A backup inside the store directory would be copied into the next one.
  if (InsideStoreDirectory(global, dir)) UsageError("backup: DIR must not be inside the store directory");
  auto store = OpenStore(global, false, std::nullopt, StoreAccess::kReadBesideWriter);
  const auto start = std::chrono::steady_clock::now();
  BackupInfo info = Check(store->Backup(dir), "backup");
  Json out = BackupJson(info);
  out["elapsed_ms"] = ElapsedMs(start);
  PrintJson(global, out);
  return 0;
}

int CmdErasureLog(const GlobalOptions& global, const ParsedArgs& args) {
  // The first bytes of every log WriteErasureLog writes: the header's key.
  static constexpr std::string_view kOwnHead = "{\"shredkv_erasure_log\":";
  const std::optional<std::string> out = args.Get("out");
  if (out) CheckOutputTarget(global, *out, "erasure-log", kOwnHead, "erasure log");
  auto store = OpenStore(global, false, std::nullopt, StoreAccess::kReadBesideWriter);
  ErasureLog log = Check(store->ReadErasureLog(), "erasure-log");
  if (out) {
    // The owner's only: it names every erased person's ID.
    ReplaceFile(*out, "erasure-log", 0600, [&](std::ostream& f) { Check(WriteErasureLog(log, f), "erasure-log"); });
    PrintJson(global, Json{{"out", *out},
                           {"people", log.people.size()},
                           {"categories", log.categories.size()},
                           {"suppressed", log.suppressed.size()}});
    return 0;
  }
  Check(WriteErasureLog(log, std::cout), "erasure-log");
  FlushStdout();
  return 0;
}

// The erasure log named by --erasure-log ('-': stdin); exit 1 if it cannot
// be read or does not parse.
ErasureLog ReadErasureLogArg(const std::string& path, const std::string& command) {
  std::ifstream file;
  std::istream* in = &std::cin;
  if (path != "-") {
    file.open(path, std::ios::binary);
    if (!file) throw CliError(kExitError, command + ": cannot open '" + path + "': " + std::strerror(errno));
    in = &file;
  }
  auto read = ReadErasureLog(*in);
  if (!read.ok()) throw CliError(kExitError, command + ": " + read.status().ToString());
  return std::move(read).value();
}

// Adds to `out` what applying an erasure log did.
void AddAppliedJson(const ErasureLogApplied& a, Json* out) {
  (*out)["people_erased"] = a.people_erased;
  (*out)["categories_erased"] = a.categories_erased;
  (*out)["suppressions_added"] = a.suppressions_added;
  (*out)["already_erased"] = a.already_erased;
  (*out)["not_present"] = a.not_present;
}

// --custody-keys take-over|new; kUnspecified when not given.
RestoredCustodyKeys ParseCustodyKeys(const ParsedArgs& args, const char* command) {
  auto c = args.Get("custody-keys");
  if (!c) return RestoredCustodyKeys::kUnspecified;
  if (*c == "take-over") return RestoredCustodyKeys::kTakeOver;
  if (*c == "new") return RestoredCustodyKeys::kNewKeys;
  UsageError(std::string(command) + ": --custody-keys must be take-over or new, not '" + *c + "'");
}

// A store put back by other means than restore (a file-level copy, a
// volume snapshot): the live store's erasure log re-applied to it, closed
// (ReapplyErasureLog; outside audit 39b, F5: only C++ could).
int CmdReapplyErasureLog(const GlobalOptions& global, const ParsedArgs& args) {
  if (global.db.empty()) UsageError("--db DIR is required (a global option: give it before the command)");
  if (global.key_file.empty()) {
    UsageError("a root key is required: --key-file FILE (before the command) or $SHREDKV_KEY_FILE");
  }
  if (global.read_only) UsageError("reapply-erasure-log writes to the store: not with --read-only");
  CheckKeyFile(global.key_file);
  const ErasureLog log = ReadErasureLogArg(*args.Get("erasure-log"), "reapply-erasure-log");
  Options options;
  options.directory = global.db;
  options.key_provider = NewFileKeyProvider(global.key_file);
  options.epoch_key_custody = OpenCustody(global);
  const auto start = std::chrono::steady_clock::now();
  ReapplyOptions reapply;
  reapply.accept_untagged_log = args.Has("accept-untagged-log");
  reapply.custody_keys = ParseCustodyKeys(args, "reapply-erasure-log");
  auto result = ReapplyErasureLog(options, log, reapply);
  if (!result.ok() && result.status().IsWrongKey()) {
    Fail(result.status(), "the root key in '" + global.key_file + "' does not open the store at '" + global.db + "'");
  }
  ErasureLogApplied applied = Check(std::move(result), "reapply-erasure-log");
  Json out{{"db", global.db}};
  AddAppliedJson(applied, &out);
  out["elapsed_ms"] = ElapsedMs(start);
  PrintJson(global, out);
  return 0;
}

int CmdRestore(const GlobalOptions& global, const ParsedArgs& args) {
  if (global.db.empty()) UsageError("--db DIR is required: where to restore (new or empty)");
  if (global.key_file.empty()) {
    UsageError("a root key is required: --key-file FILE (before the command) or $SHREDKV_KEY_FILE");
  }
  if (global.read_only) UsageError("restore writes a new store: not with --read-only");
  const bool no_log = args.Has("no-erasure-log");
  if (no_log == args.Has("erasure-log")) UsageError("restore: give exactly one of --erasure-log FILE and --no-erasure-log");
  CheckKeyFile(global.key_file);
  std::optional<ErasureLog> log;
  if (!no_log) log = ReadErasureLogArg(*args.Get("erasure-log"), "restore");
  Options options;
  options.directory = global.db;
  options.key_provider = NewFileKeyProvider(global.key_file);
  options.epoch_key_custody = OpenCustody(global);
  RestoreOptions restore;
  restore.erasure_log = log ? &*log : nullptr;
  restore.without_erasure_log = no_log;
  restore.accept_untagged_backup = args.Has("accept-untagged-backup");
  restore.accept_untagged_log = args.Has("accept-untagged-log");
  restore.custody_keys = ParseCustodyKeys(args, "restore");
  const auto start = std::chrono::steady_clock::now();
  auto result = RestoreBackup(args.positionals.front(), options, restore);
  if (!result.ok() && result.status().IsWrongKey()) {
    Fail(result.status(), "the root key in '" + global.key_file + "' does not open the backup");
  }
  RestoreResult r = Check(std::move(result), "restore");
  Json out{{"restored", global.db}, {"backup", BackupJson(r.backup)}};
  AddAppliedJson(r.applied, &out);
  out["elapsed_ms"] = ElapsedMs(start);
  PrintJson(global, out);
  return 0;
}

int CmdPurge(const GlobalOptions& global, const ParsedArgs& args) {
  const std::optional<std::uint64_t> budget = args.GetUint("budget");
  OpenedStore store = OpenAnyStore(global);
  const auto start = std::chrono::steady_clock::now();
  const StoreStats before = Check(store.Visit([](auto& s) { return s.Stats(); }), "purge");
  ProgressBar progress("purge", before.pending_purge, "people", "rows");
  constexpr std::uint64_t kStep = 1000;  // rows per call, so the bar moves
  std::uint64_t remaining = budget.value_or(std::numeric_limits<std::uint64_t>::max());
  PurgeResult total;
  total.people_pending = before.pending_purge;
  while (remaining > 0 && total.people_pending > 0) {
    const std::uint64_t step = std::min(remaining, kStep);
    // On a sharded store up to `step` rows a shard (ShardedStore::Purge).
    PurgeResult r =
        Check(store.Visit([&](auto& s) { return s.Purge(static_cast<std::size_t>(step)); }), "purge");
    total.rows_deleted += r.rows_deleted;
    total.people_purged += r.people_purged;
    total.people_pending = r.people_pending;
    remaining -= std::min(remaining, std::max<std::uint64_t>(r.rows_deleted, 1));
    progress.Update(total.people_purged, total.rows_deleted);
    if (r.rows_deleted == 0 && r.people_purged == 0) break;  // nothing more to do now
  }
  progress.Finish();
  PrintJson(global, Json{{"rows_deleted", total.rows_deleted},
                         {"people_purged", total.people_purged},
                         {"people_pending", total.people_pending},
                         {"elapsed_ms", ElapsedMs(start)}});
  return 0;
}

int CmdSweep(const GlobalOptions& global, const ParsedArgs& args) {
  const std::optional<std::uint64_t> budget = args.GetUint("budget");
  auto store = OpenStore(global, false);
  const auto start = std::chrono::steady_clock::now();
  const StoreStats before = Check(store->Stats(), "sweep");
  ProgressBar progress("sweep", before.expired_pending, "rows");
  // Rows per call, doubling, so the bar moves while the calls that run out
  // of budget (and count what is left) stay few.
  std::uint64_t step = 10000;
  std::uint64_t remaining = budget.value_or(std::numeric_limits<std::uint64_t>::max());
  SweepResult total;
  total.pending = before.expired_pending;
  // The first call runs even when nothing is counted as pending, and with
  // --budget 0 (outside audit 38b, F6: it ran no call at all then): a
  // pending time index back-fill hides expired events from the count, and
  // Sweep finishes it first, whatever the budget.
  for (bool first = true; first || (remaining > 0 && total.pending > 0); first = false) {
    const SweepResult r = Check(store->Sweep(static_cast<std::size_t>(std::min(remaining, step))), "sweep");
    step *= 2;
    const std::uint64_t removed = r.deleted();
    total.events_deleted += r.events_deleted;
    total.records_deleted += r.records_deleted;
    total.analytics_deleted += r.analytics_deleted;
    total.notices_deleted += r.notices_deleted;
    total.batches += r.batches;
    total.pending = r.pending;
    remaining -= std::min(remaining, std::max<std::uint64_t>(removed, 1));
    progress.Update(total.deleted());
    if (removed == 0 && total.pending == 0) break;  // nothing more to do now
    if (removed == 0 && !first) break;
  }
  progress.Finish();
  PrintJson(global, Json{{"events_deleted", total.events_deleted},
                         {"records_deleted", total.records_deleted},
                         {"analytics_deleted", total.analytics_deleted},
                         {"notices_deleted", total.notices_deleted},
                         {"batches", total.batches},
                         {"pending", total.pending},
                         {"elapsed_ms", ElapsedMs(start)}});
  return 0;
}

// Art. 16 from the shell: corrects the person's profile and (at most) one
// identifier in one commit, which writes one rectification notice to the
// change feed for the recipients (Art. 19). What changed is printed by
// name, never by value.
int CmdRectify(const GlobalOptions& global, const ParsedArgs& args) {
  const Identifier id = ParseIdentifierArg(*args.Get("id"));
  Rectification r;
  if (auto set = args.Get("set")) {
    // Parsed as ingest parses `attrs` (outside audit 35b, F5: a repeated
    // key was taken, an integer past 64 bits stored as a float, and a float
    // overflow ended in the JSON library's exception, exit 1).
    Json j;
    std::string error;
    if (!portability::StrictParse(*set, &j, &error)) {
      UsageError("rectify: --set needs a JSON object of attributes, e.g. '{\"city\":\"Berlin\"}': " + error);
    }
    if (!j.is_object() || j.empty()) {
      UsageError("rectify: --set needs a non-empty JSON object of attributes, e.g. '{\"city\":\"Berlin\"}'");
    }
    for (const auto& [name, value] : j.items()) {
      if (value.is_null()) UsageError("rectify: --set: '" + name + "' is null (use --unset " + name + ")");
      auto v = ValueFromJson(value, "--set." + name);
      if (!v.ok()) UsageError("rectify: " + v.status().message());
      r.profile.set.insert_or_assign(name, std::move(v).value());
    }
  }
  r.profile.unset = args.GetAll("unset");
  std::set<std::string> unset;
  for (const std::string& name : r.profile.unset) {
    if (name.empty()) UsageError("rectify: --unset needs an attribute name");
    if (!unset.insert(name).second) UsageError("rectify: --unset " + name + " given twice");
    if (r.profile.set.count(name) != 0) UsageError("rectify: '" + name + "' is both in --set and --unset");
  }
  const std::optional<std::string> old_id = args.Get("old-identifier");
  const std::optional<std::string> new_id = args.Get("new-identifier");
  if (old_id.has_value() != new_id.has_value()) {
    UsageError("rectify: --old-identifier and --new-identifier go together");
  }
  if (old_id) r.identifiers.emplace_back(ParseIdentifierArg(*old_id), ParseIdentifierArg(*new_id));
  if (r.profile.set.empty() && r.profile.unset.empty() && r.identifiers.empty()) {
    UsageError("rectify: nothing to correct (give --set, --unset or --old-identifier with --new-identifier)");
  }
  OpenedStore store = OpenAnyStore(global);
  const PersonId person = store.Visit([&](auto& s) {
    const PersonId p = ResolvePerson(s, id);
    Check(s.Rectify(p, r), "rectify");
    return p;
  });
  Json set = Json::array();
  for (const auto& [name, value] : r.profile.set) set.push_back(name);
  PrintJson(global, Json{{"person_id", person.ToHex()},
                         {"set", set},
                         {"unset", r.profile.unset},
                         {"identifier_replaced", !r.identifiers.empty()}});
  return 0;
}

int CmdRetention(const GlobalOptions& global, const ParsedArgs& args) {
  const std::optional<std::string> spec = args.Get("set");
  // Printing the rules only reads: also with --read-only, and on a store
  // this process cannot write.
  OpenedStore store = OpenAnyStore(global, spec ? StoreAccess::kWrite : StoreAccess::kRead);
  if (spec) Check(store.Visit([&](auto& s) { return s.SetRetention(ParseRetention({*spec})); }), "retention");
  // A sharded store's shards hold the same rules (SetRetention sets every
  // shard's): shard 0's are printed.
  PrintJson(global, RetentionJson(Check(store.Visit([](auto& s) {
                                          if constexpr (kIsSharded<decltype(s)>) {
                                            return s.shard(0).GetRetention();
                                          } else {
                                            return s.GetRetention();
                                          }
                                        }),
                                        "retention")));
  return 0;
}

int CmdVerify(const GlobalOptions& global, const ParsedArgs&) {
  OpenedStore store = OpenAnyStore(global, StoreAccess::kRead);
  const auto start = std::chrono::steady_clock::now();
  Result<VerifyReport> r = [&] {
    ProgressBar bar("verify", 0, "rows");
    g_engine_progress = &bar;
    auto result = store.Visit([](auto& s) { return s.Verify(); });
    g_engine_progress = nullptr;
    bar.Finish();
    return result;
  }();
  VerifyReport report = Check(std::move(r), "verify");
  Json j = VerifyJson(report);
  j["elapsed_ms"] = ElapsedMs(start);
  PrintJson(global, j);
  if (!report.ok()) {
    FlushStdout();
    throw CliError(kExitCorruption, "verify: " + std::to_string(report.problem_count) + " problem(s) found" +
                                        (report.problems.empty() ? "" : ", first: " + report.problems.front()));
  }
  return 0;
}

// The processes holding an flock on `lock_path` (the store's LOCK file), from
// /proc/locks, other than this one: [{"pid","mode"}]. Empty where
// /proc/locks is not readable.
Json LockHolders(const std::string& lock_path) {
  Json out = Json::array();
  struct stat st {};
  if (::stat(lock_path.c_str(), &st) != 0) return out;
  char want[64];
  std::snprintf(want, sizeof want, "%02x:%02x:%llu", major(st.st_dev), minor(st.st_dev),
                static_cast<unsigned long long>(st.st_ino));
  // /proc/locks is read in pieces, not as one snapshot: while other
  // processes take and drop locks the kernel may hand out a line twice
  // (seen under a parallel test run), so holders are listed once each.
  std::set<std::pair<long long, std::string>> seen;
  std::ifstream locks("/proc/locks");
  for (std::string line; std::getline(locks, line);) {
    if (line.find("->") != std::string::npos) continue;  // a waiter, not a holder
    std::istringstream fields(line);
    std::string id, type, advisory, access, pid, where;
    if (!(fields >> id >> type >> advisory >> access >> pid >> where)) continue;
    if (type != "FLOCK" || where != want) continue;
    const long long holder = std::atoll(pid.c_str());
    if (holder == static_cast<long long>(::getpid())) continue;
    if (!seen.emplace(holder, access).second) continue;
    out.push_back(Json{{"pid", holder}, {"mode", access == "WRITE" ? "exclusive" : "shared"}});
  }
  return out;
}

// A health report that writes nothing: the store opened read-only (no
// recovery, no migration), or only the lock holders and free space when
// another process has it open exclusively.
int CmdDoctor(const GlobalOptions& global, const ParsedArgs&) {
  if (global.db.empty()) UsageError("--db DIR is required (a global option: give it before the command)");
  Json j = Json::object();
  j["db"] = global.db;
  j["lock_holders"] = LockHolders(global.db + "/LOCK");  // before this process takes its own
  struct statvfs fs {};
  if (::statvfs(global.db.c_str(), &fs) == 0) {
    j["free_bytes"] = static_cast<std::uint64_t>(fs.f_bavail) * static_cast<std::uint64_t>(fs.f_frsize);
  }
  // A store a restore cut short left marked refuses every writable command
  // (outside audit 41a, F5: doctor called it healthy, without a word).
  if (HoldsRestoreMarker(global.db)) j["restore_in_progress"] = true;
  GlobalOptions reading = global;
  reading.read_only = true;
  try {
    auto store = OpenStore(reading, false, std::nullopt, StoreAccess::kRead);
    const StoreStats st = Check(store->Stats(), "stats");
    // Another process holding LOCK exclusively is a writer: the store was
    // read beside it (issue 18).
    bool writer = false;
    for (const Json& h : j["lock_holders"]) writer |= h["mode"] == "exclusive";
    j["in_use"] = writer;
    // Any holder keeps a writer out, a read-only one too (outside audit 31,
    // F6: in_use said false while every write was exit 10).
    j["writers_locked_out"] = !j["lock_holders"].empty();
    j["format_version"] = st.format_version;
    j["key_epoch"] = st.key_epoch;
    j["oldest_key_epoch"] = st.oldest_key_epoch;
    j["people"] = st.people;
    j["erased"] = st.erased;
    j["files"] = Json{{"keys_bytes", st.keys_file_bytes}, {"data_bytes", st.data_file_bytes}};
    j["pending"] = Json{{"purge", st.pending_purge},
                        {"not_yet_cryptographic", st.erasures_since_rotation + st.erasures_awaiting_rebuild},
                        {"keys_rebuild", st.keys_rebuild_pending},
                        {"expired", st.expired_pending},
                        {"retention_backfill", st.retention_backfill_pending},
                        {"analytics_staged", st.analytics_staged}};
  } catch (const CliError& e) {
    if (e.code() != kExitInUse) throw;
    j["in_use"] = true;  // its reader table cannot be joined (no write access to the lock file)
    j["writers_locked_out"] = true;
  }
  PrintJson(global, j);
  return 0;
}

int CmdStats(const GlobalOptions& global, const ParsedArgs& args) {
  const std::string format = args.Get("format").value_or("json");
  if (format != "json" && format != "prometheus") UsageError("stats: --format must be json or prometheus");
  OpenedStore store = OpenAnyStore(global, StoreAccess::kRead);
  // A sharded store's: summed over the shards (ShardedStore::Stats), and
  // "shards", its shard count, in the JSON.
  StoreStats stats = Check(store.Visit([](auto& s) { return s.Stats(); }), "stats");
  Json j = StatsJson(stats);
  if (store.sharded()) {
    // The sum has no store ID of its own: shard 0's names the sharded store,
    // in the JSON and as every Prometheus series' label (outside audit 41b,
    // F2: "" made two sharded stores' series collide).
    stats.store_id = Check(store.Visit([](auto& s) -> Result<std::string> {
                             if constexpr (kIsSharded<decltype(s)>) {
                               return s.shard(0).StoreId();
                             } else {
                               return s.StoreId();
                             }
                           }),
                           "stats");
    j["store_id"] = stats.store_id;
    j["shards"] = store.Visit([](auto& s) -> std::uint32_t {
      if constexpr (kIsSharded<decltype(s)>) {
        return s.shard_count();
      } else {
        return 1;
      }
    });
  }
  if (format == "json") {
    PrintJson(global, j);
    return 0;
  }
  // The Prometheus text exposition format: one gauge a numeric field, named
  // shredkv_<field> (booleans 0 or 1); the store ID as the label of an info
  // gauge (always 1) and, since stop 36, of every series (outside audit 36c,
  // F2: two stores' files in one textfile directory collided, and
  // node_exporter kept one store's values); the operations as one histogram
  // (seconds) and one error counter, labelled by operation. Every family
  // has a HELP line (since stop 36: promtool's lint wanted one).
  const std::string store_label = "store_id=\"" + stats.store_id + "\"";
  std::string out = "# HELP shredkv_store_info The store's ID (StoreStats::store_id), always 1.\n"
                    "# TYPE shredkv_store_info gauge\nshredkv_store_info{" + store_label + "} 1\n";
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (it.value().is_object() || it.value().is_string()) continue;  // operations below; store_id above
    const std::string name = "shredkv_" + it.key();
    const std::string value = it.value().is_boolean() ? (it.value().get<bool>() ? "1" : "0") : it.value().dump();
    out += "# HELP " + name + " StoreStats::" + it.key() + " (docs/cli.md, stats).\n# TYPE " + name + " gauge\n" +
           name + "{" + store_label + "} " + value + "\n";
  }
  auto seconds = [](std::uint64_t us) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.6f", static_cast<double>(us) / 1e6);
    return std::string(buf);
  };
  out += "# HELP shredkv_operation_latency_seconds Latency of this process's calls, by operation.\n"
         "# TYPE shredkv_operation_latency_seconds histogram\n";
  for (const OperationStats& o : stats.operations) {
    const std::string label = store_label + ",operation=\"" + o.name + "\"";
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i + 1 < o.latency_buckets.size(); ++i) {
      cumulative += o.latency_buckets[i];
      out += "shredkv_operation_latency_seconds_bucket{" + label + ",le=\"" + seconds(std::uint64_t{1} << i) + "\"} " +
             std::to_string(cumulative) + "\n";
    }
    // +Inf and the count from the buckets themselves (read one by one while
    // calls went on, they may differ from `calls` by the calls in flight).
    const std::uint64_t count = cumulative + o.latency_buckets.back();
    out += "shredkv_operation_latency_seconds_bucket{" + label + ",le=\"+Inf\"} " + std::to_string(count) + "\n";
    out += "shredkv_operation_latency_seconds_sum{" + label + "} " + seconds(o.total_us) + "\n";
    out += "shredkv_operation_latency_seconds_count{" + label + "} " + std::to_string(count) + "\n";
  }
  out += "# HELP shredkv_operation_errors_total Failed calls of this process, by operation.\n"
         "# TYPE shredkv_operation_errors_total counter\n";
  for (const OperationStats& o : stats.operations) {
    out += "shredkv_operation_errors_total{" + store_label + ",operation=\"" + o.name + "\"} " +
           std::to_string(o.errors) + "\n";
  }
  std::cout << out;
  return 0;
}

}  // namespace

InputFile OpenInput(const ParsedArgs& args, const char* command) {
  InputFile input;
  const std::string path = args.positionals.empty() ? "-" : args.positionals.front();
  input.name = path;
  if (path == "-") return input;
  // A directory opens as a stream that reads nothing: say what it is rather
  // than "the input is empty".
  if (struct stat dir {}; stat(path.c_str(), &dir) == 0 && S_ISDIR(dir.st_mode)) {
    throw CliError(kExitError, std::string(command) + ": '" + path + "' is a directory, not a file");
  }
  input.file = std::make_unique<std::ifstream>(path, std::ios::binary);
  if (!*input.file) throw CliError(kExitError, std::string(command) + ": cannot open '" + path + "': " + std::strerror(errno));
  input.stream = input.file.get();
  struct stat st {};
  if (stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode)) input.size = static_cast<std::uint64_t>(st.st_size);
  return input;
}

// The bar the engine's progress callback drives (rotate-keys, verify).
std::atomic<ProgressBar*> g_engine_progress{nullptr};


std::shared_ptr<EpochKeyCustody> OpenCustody(const GlobalOptions& global) {
  if (global.pkcs11_module.empty() && global.pkcs11_token.empty() && global.pkcs11_pin_file.empty()) return nullptr;
  if (global.pkcs11_module.empty() || global.pkcs11_token.empty()) {
    UsageError("PKCS#11 custody needs both --pkcs11-module FILE and --pkcs11-token LABEL");
  }
  std::string pin;
  if (!global.pkcs11_pin_file.empty()) {
    // A PIN file is a credential like the root key file: the owner's only.
    struct stat st {};
    if (::stat(global.pkcs11_pin_file.c_str(), &st) == 0 && (st.st_mode & 077) != 0) {
      throw CliError(kExitWrongKey, "PIN file '" + global.pkcs11_pin_file +
                                        "' is readable by group or others; refused (chmod 600 it)");
    }
    std::ifstream f(global.pkcs11_pin_file, std::ios::binary);
    if (!f) throw CliError(kExitError, "cannot read PIN file '" + global.pkcs11_pin_file + "': " + std::strerror(errno));
    std::getline(f, pin);  // the first line; a trailing newline (or CR LF) is not part of it
    if (!pin.empty() && pin.back() == '\r') pin.pop_back();
  } else if (const char* env = std::getenv("SHREDKV_PKCS11_PIN"); env != nullptr) {
    pin = env;
  }
  if (pin.empty()) UsageError("PKCS#11 custody needs the token's PIN: --pkcs11-pin-file FILE or $SHREDKV_PKCS11_PIN");
  Pkcs11Options o{global.pkcs11_module, global.pkcs11_token, pin};
  std::fill(pin.begin(), pin.end(), '\0');
  auto custody = NewPkcs11Custody(o);
  std::fill(o.pin.begin(), o.pin.end(), '\0');
  // No such module or token: exit 1, not 3 (which names a person, an
  // identifier, a request or the store).
  if (!custody.ok() && custody.status().IsNotFound()) {
    throw CliError(kExitError, "PKCS#11 custody: " + custody.status().message());
  }
  return Check(std::move(custody), "PKCS#11 custody");
}

namespace {

// The Options the global options name (usage error without --db or a key,
// or with --read-only for a command that writes).
Options StoreOptionsFor(const GlobalOptions& global, bool create, std::optional<RetentionRules> retention,
                        StoreAccess access) {
  if (global.db.empty()) UsageError("--db DIR is required (a global option: give it before the command)");
  if (global.key_file.empty()) {
    UsageError("a root key is required: --key-file FILE (before the command) or $SHREDKV_KEY_FILE");
  }
  if (global.read_only && access == StoreAccess::kWrite) {
    UsageError("this command writes to the store: --read-only is for export, get, erasure-status, audit, analytics, "
               "feed without --ack, retention without --set, verify, stats, doctor, report, "
               "backup and erasure-log");
  }
  CheckKeyFile(global.key_file);
  Options options;
  options.directory = global.db;
  options.create_if_missing = create;
  options.error_if_exists = create;
  options.read_only = global.read_only;
  options.key_provider = NewFileKeyProvider(global.key_file);
  options.epoch_key_custody = OpenCustody(global);
  options.retention = std::move(retention);
  options.progress = [](std::string_view, std::uint64_t done, std::uint64_t total) {
    if (ProgressBar* bar = g_engine_progress) {
      bar->SetTotal(total);
      bar->Update(done);
    }
  };
  return options;
}

// Opens with `open`; a reading command on a store it cannot write (a
// read-only mount, no permission) reads it without writing, and backup /
// erasure-log read beside a writer. Failures become the CLI's exit codes.
template <typename Open>
auto OpenWithFallback(const GlobalOptions& global, Options options, StoreAccess access, Open&& open) {
  const bool create = options.create_if_missing;
  auto store = open(options);
  // A store a restore cut short left marked (its RESTORE-IN-PROGRESS file,
  // docs/backup.md) refuses writable opens; a reading command looks at it
  // read-only, as with --read-only (outside audit 41a, F5: every reading
  // command without --read-only was exit 1 there).
  // Not a restore's own work directory (DB.restoring), which a restore may
  // still be filling: it opens only with --read-only, as before (review
  // 41, #8: a fallback there read the copy before the erasure log was
  // re-applied, and its shared claim could make the restore fail Busy).
  const std::string_view work_suffix = ".restoring";
  const bool work_dir = std::string_view(global.db).ends_with(work_suffix) ||
                        std::string_view(global.db).ends_with(std::string(work_suffix) + "/");
  const bool marked = !work_dir && HoldsRestoreMarker(global.db);
  if (!store.ok() && !options.read_only &&
      ((store.status().IsReadOnly() && access != StoreAccess::kWrite) ||
       (store.status().IsBusy() && access == StoreAccess::kReadBesideWriter) ||
       (store.status().IsInvalidArgument() && marked && access != StoreAccess::kWrite))) {
    options.read_only = true;
    store = open(options);
  }
  if (!store.ok()) {
    const Status& s = store.status();
    if (s.IsWrongKey()) {
      Fail(s, "the root key in '" + global.key_file + "' does not open the store at '" + global.db + "'");
    }
    // Busy at open is the store's lock held by another process (a Busy
    // later, such as a lease drain timing out, stays exit 1).
    if (s.IsBusy()) {
      throw CliError(kExitInUse, "the store at '" + global.db +
                                     "' is in use by another process (close it and try again): " + s.ToString());
    }
    // Store files that the engine finds no store in are damaged, not absent.
    struct stat st {};
    if (s.IsNotFound() && !create && stat((global.db + "/data/data.mdb").c_str(), &st) == 0 && st.st_size > 0) {
      throw CliError(kExitCorruption, "the store at '" + global.db +
                                          "' has a data file but no readable store (damaged?): " + s.ToString());
    }
    Fail(s, (create ? "cannot create the store at '" : "cannot open the store at '") + global.db + "'");
  }
  return std::move(store).value();
}

}  // namespace

bool IsShardedStoreDir(const std::string& dir) {
  // SHARDS (sharding::kManifestName), or a first shard directory without it:
  // a sharded store whose manifest was lost, never a place for a plain
  // store (outside audit 41b, F3: `init` made one beside the shards).
  struct stat st {};
  return !dir.empty() &&
         (::stat((dir + "/SHARDS").c_str(), &st) == 0 || ::stat((dir + "/shard-000").c_str(), &st) == 0);
}

std::unique_ptr<Store> OpenStore(const GlobalOptions& global, bool create, std::optional<RetentionRules> retention,
                                 StoreAccess access) {
  Options options = StoreOptionsFor(global, create, std::move(retention), access);
  return OpenWithFallback(global, std::move(options), access, [](const Options& o) { return Store::Open(o); });
}

OpenedStore OpenAnyStore(const GlobalOptions& global, StoreAccess access, bool create,
                         std::optional<RetentionRules> retention, std::uint32_t shard_count) {
  if (shard_count == 0 && !IsShardedStoreDir(global.db)) {
    return OpenedStore(OpenStore(global, create, std::move(retention), access));
  }
  struct stat st {};
  if (!global.db.empty() && ::stat((global.db + "/SHARDS").c_str(), &st) != 0 && shard_count == 0) {
    throw CliError(kExitCorruption, "'" + global.db +
                                        "' holds shard directories but no SHARDS: a sharded store whose manifest "
                                        "was lost (put SHARDS back, or restore the store from its backup); "
                                        "nothing was opened");
  }
  Options options = StoreOptionsFor(global, create, std::move(retention), access);
  return OpenedStore(OpenWithFallback(global, std::move(options), access, [&](const Options& o) {
    return ShardedStore::Open(o, shard_count);
  }));
}

Identifier ParseIdentifierArg(std::string_view text) {
  const auto colon = text.find(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == text.size()) {
    UsageError("--id needs TYPE:VALUE (e.g. email:ann@example.org), not '" + std::string(text) + "'");
  }
  return Identifier{std::string(text.substr(0, colon)), std::string(text.substr(colon + 1))};
}

int RunCommand(const GlobalOptions& global, const ParsedArgs& args) {
  const std::string& name = args.spec->name;
  if (name == "keygen") return CmdKeygen(global, args);
  if (name == "sample") return CmdSample(global, args);
  if (name == "completion") {
    const std::string script = CompletionScript(args.positionals.front());
    if (script.empty()) UsageError("completion: the shell must be bash or zsh");
    std::cout << script;
    return 0;
  }
  if (name == "man") {
    std::cout << ManPage(SHREDKV_VERSION_STRING);
    return 0;
  }
  // On a sharded store as a whole, the commands of one shard's own state
  // (its audit chain, feed, analytics rows, files) name the way to each
  // shard instead (docs/cli.md, "Sharded stores").
  static const std::set<std::string> kPerShard = {"audit", "analytics", "feed", "backup", "restore",
                                                  "reapply-erasure-log", "erasure-log", "sweep", "doctor",
                                                  "report"};
  if (kPerShard.count(name) != 0 && IsShardedStoreDir(global.db)) {
    std::size_t shards = 0;
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(global.db, ec)) {
      if (e.path().filename().string().rfind("shard-", 0) == 0) ++shards;
    }
    if (name == "restore") {
      // Not into a shard either: restore makes a plain store (outside audit
      // 41b, F7: the message sent it to a shard directory it then refused).
      throw CliError(kExitError, "'" + global.db + "' is a sharded store (" + std::to_string(shards) +
                                     " shard directories); `restore` makes plain stores: restore a sharded "
                                     "store's backup with ShardedStore::Restore or RestoreShard (C++), "
                                     "shredkv_restore_sharded (C) or shredkv.restore_sharded (Python)");
    }
    throw CliError(kExitError, "'" + global.db + "' is a sharded store (" + std::to_string(shards) +
                                   " shard directories); `" + name +
                                   "` works on one shard at a time: run it with --db " + global.db +
                                   "/shard-000, /shard-001, ...");
  }
  if (name == "init") return CmdInit(global, args);
  if (name == "ingest") return CmdIngest(global, args);
  if (name == "export") return CmdExport(global, args);
  if (name == "import") return CmdImport(global, args);
  if (name == "get") return CmdGet(global, args);
  if (name == "erase") return CmdErase(global, args);
  if (name == "erasure-status") return CmdErasureStatus(global, args);
  if (name == "unsuppress") return CmdUnsuppress(global, args);
  if (name == "restrict") return CmdRestrict(global, args, true);
  if (name == "unrestrict") return CmdRestrict(global, args, false);
  if (name == "consent") return CmdConsent(global, args);
  if (name == "rectify") return CmdRectify(global, args);
  if (name == "audit") return CmdAudit(global, args);
  if (name == "analytics") return CmdAnalytics(global, args);
  if (name == "feed") return CmdFeed(global, args);
  if (name == "rotate-keys") return CmdRotateKeys(global, args);
  if (name == "compact") return CmdCompact(global, args);
  if (name == "rotate-root") return CmdRotateRoot(global, args);
  if (name == "backup") return CmdBackup(global, args);
  if (name == "restore") return CmdRestore(global, args);
  if (name == "reapply-erasure-log") return CmdReapplyErasureLog(global, args);
  if (name == "erasure-log") return CmdErasureLog(global, args);
  if (name == "purge") return CmdPurge(global, args);
  if (name == "sweep") return CmdSweep(global, args);
  if (name == "retention") return CmdRetention(global, args);
  if (name == "verify") return CmdVerify(global, args);
  if (name == "stats") return CmdStats(global, args);
  if (name == "doctor") return CmdDoctor(global, args);
  if (name == "report") return CmdReport(global, args);
  UsageError("unknown command '" + name + "'");
}

}  // namespace shredkv::cli
