#include "args.h"

#include <algorithm>
#include <charconv>
#include <sstream>
#include <string>

#include "cli.h"

namespace shredkv::cli {
namespace {

FlagSpec Value(std::string name, std::string value_name, std::string help, bool required = false) {
  return FlagSpec{std::move(name), true, false, required, std::move(value_name), std::move(help)};
}
FlagSpec Repeat(std::string name, std::string value_name, std::string help) {
  return FlagSpec{std::move(name), true, true, false, std::move(value_name), std::move(help)};
}
FlagSpec Switch(std::string name, std::string help) {
  return FlagSpec{std::move(name), false, false, false, "", std::move(help)};
}

const char* const kIdHelp =
    "the person, by an identifier (email, phone, customer_id, device_id) or person_id:HEX";
const FlagSpec kId = Value("id", "TYPE:VALUE", kIdHelp, true);
// --id, or --ids FILE|- (one TYPE:VALUE a line) for the commands that act on
// many people in one commit: exactly one of the two (checked by the command).
const FlagSpec kOneId = Value("id", "TYPE:VALUE", std::string(kIdHelp) + " (or --ids)");
const FlagSpec kIds = Value("ids", "FILE|-", "many people in one commit: one TYPE:VALUE a line, from FILE or stdin (-)");
const FlagSpec kMax = Value("max", "N", "print at most N lines");
const FlagSpec kBudget = Value("budget", "N", "stop after N rows (default: all)");
const FlagSpec kFormat = Value("format", "json|ndjson", "one JSON document, or NDJSON (a line an item)");

}  // namespace

const std::vector<CommandSpec>& Commands() {
  static const std::vector<CommandSpec> kCommands = {
      {"keygen", "--out FILE", "create a new root key file (mode 0600); never overwrites",
       {Value("out", "FILE", "where to write the new key (must not exist)", true)}, 0, 0, false},
      {"init", "[--retention RULES]... [--shards N]",
       "create the store in --db (with retention rules, stored in the store; a sharded store with --shards)",
       {Repeat("retention", "RULES",
               "comma-separated event:NAME=AGE, collection:NAME=AGE, analytics=AGE, feed=AGE (AGE: integer + "
               "ms|s|m|h|d|y); "
               "repeatable"),
        Value("shards", "N",
              "create a sharded store of N shards (1 to 256): one store directory a shard, a writer each; "
              "later commands open it as a whole (docs/cli.md, \"Sharded stores\")")},
       0, 0},
      {"ingest", "[FILE|-] [--resume NAME]", "ingest NDJSON operations (profile, event, put), one a line",
       {Value("resume", "NAME",
              "commit the input offset under NAME with every batch; after an interruption or a crash, the same "
              "command with the same NAME and input skips what was ingested (NAME: 1 to 57 of A-Z a-z 0-9 . _ : -)")},
       0, 1, true, false,
       "FILE|-  the NDJSON input (stdin if absent or -); docs/cli.md lists the operations"},
      {"export", "--id TYPE:VALUE [--format json|ndjson]", "export everything held on a person", {kId, kFormat}, 0, 0},
      {"import", "[FILE|-] [--format json|ndjson] [--analytics anonymous|as-exported]",
       "import a person's export (format autodetected)",
       {Value("format", "json|ndjson", "the input's form (default: detected from its first line)"),
        Value("analytics", "anonymous|as-exported",
              "what the imported events' analytics rows (in the clear, kept after erasure) hold: anonymous (the "
              "name 'imported', no field; the default) or as-exported (the file's event names and analytics "
              "fields: only for exports of your own stores)")},
       0, 1, true,
       false, "FILE|-  an export of one person (stdin if absent or -)"},
      {"get", "--id TYPE:VALUE --purpose P", "read a profile for a purpose (a processing read)",
       {kId, Value("purpose", "P", "the registered purpose the read is for (restriction and consent apply)", true)},
       0, 0},
      {"erase",
       "--id TYPE:VALUE|--ids FILE|- [--suppress] [--analytics keep|unlink|delete] [--request-id R] [--category C]",
       "erase a person by crypto-shredding (or, with --category, only that category of their data); prints the "
       "receipt (--ids: everyone listed, in one commit, NDJSON a person)",
       {kOneId, kIds, Switch("suppress", "also refuse the person's identifiers from now on (suppression list)"),
        Value("analytics", "keep|unlink|delete",
              "their analytics rows: keep (under the person's one anonymous ID, which their exports show), unlink (fresh IDs, coarser time) or delete; default keep"),
        Value("request-id", "R", "the erasure's id (1..64 printable ASCII, no spaces), to look it up; default random"),
        Value("category", "C", "erase only the person's data of this category (not with --suppress)")},
       0, 0},
      {"erasure-status", "--request-id R", "the current state of an erasure request",
       {Value("request-id", "R", "the id an erase printed in its receipt", true)}, 0, 0},
      {"unsuppress", "--id TYPE:VALUE", "lift the suppression of an identifier",
       {Value("id", "TYPE:VALUE", "the suppressed identifier", true)}, 0, 0},
      {"restrict", "--id TYPE:VALUE|--ids FILE|- [--purpose P]... [--category C]... [--reason TEXT]",
       "restrict processing (everything if no purpose or category is named; --ids: everyone listed, one commit)",
       {kOneId, kIds, Repeat("purpose", "P", "restrict processing for this purpose; repeatable"),
        Repeat("category", "C", "restrict processing of this data category; repeatable"),
        Value("reason", "TEXT", "why (kept, sealed, in the person's history; up to 4,096 bytes)")},
       0, 0},
      {"unrestrict", "--id TYPE:VALUE|--ids FILE|- [--purpose P]... [--category C]...",
       "lift a restriction (everything if no purpose or category is named; --ids: everyone listed, one commit)",
       {kOneId, kIds, Repeat("purpose", "P", "lift the restriction of this purpose; repeatable"),
        Repeat("category", "C", "lift the restriction of this category; repeatable")},
       0, 0},
      {"consent", "--id TYPE:VALUE|--ids FILE|- --purpose P [--source S] grant|withdraw",
       "record a consent decision (withdraw: an objection) for a purpose (--ids: everyone listed, one commit)",
       {kOneId, kIds, Value("purpose", "P", "the registered purpose the decision is about", true),
        Value("source", "S", "where the decision came from (e.g. a form; up to 1,024 bytes)")},
       1, 1, true, false, "grant|withdraw  the decision"},
      {"rectify",
       "--id TYPE:VALUE [--set JSON] [--unset NAME]... [--old-identifier TYPE:VALUE --new-identifier TYPE:VALUE]",
       "correct a person's profile and one identifier in one commit, with one rectification notice in the feed",
       {Value("id", "TYPE:VALUE", kIdHelp, true),
        Value("set", "JSON", "profile attributes to set: a JSON object, values as in ingest's attrs"),
        Repeat("unset", "NAME", "a profile attribute to remove; repeatable"),
        Value("old-identifier", "TYPE:VALUE", "an identifier of the person to replace (with --new-identifier)"),
        Value("new-identifier", "TYPE:VALUE", "the identifier that replaces it (with --old-identifier)")},
       0, 0},
      {"audit", "[--after SEQ] [--max N]", "the audit log as NDJSON (no personal data): erasures, purges, rotations...",
       {Value("after", "SEQ", "start after entry SEQ (default: from the first)"), kMax}, 0, 0},
      {"analytics", "[--name EVENT] [--from TIME] [--to TIME]",
       "analytics rows as NDJSON (TIME: epoch ms, or RFC 3339: 2024-01-01, 2024-01-01T12:00:00Z)",
       {Value("name", "EVENT", "only rows of this event name"),
        Value("from", "TIME", "only rows whose time is at or after TIME (epoch ms or RFC 3339)"),
        Value("to", "TIME", "only rows whose time is before TIME (epoch ms or RFC 3339)")},
       0, 0},
      {"feed", "[--ack CURSOR] [--max N]", "acknowledge up to CURSOR, then print the remaining notices as NDJSON",
       {Value("ack", "CURSOR", "first acknowledge every notice up to this cursor (a write)"), kMax}, 0, 0},
      {"rotate-keys", "", "start a new key epoch: earlier erasures become cryptographic", {}, 0, 0},
      {"rotate-root", "--new-key-file FILE",
       "re-seal the store's keys under a new root key and rebuild the keys file; the old key opens nothing after",
       {Value("new-key-file", "FILE", "the new root key file (make one with keygen); use it from then on", true)}, 0,
       0},
      {"backup", "DIR", "write a consistent copy of the store into DIR (new or empty) while it stays usable",
       {}, 1, 1, true, false, "DIR  where the backup goes (created; must be new or empty)"},
      {"restore",
       "BACKUP (--erasure-log FILE|--no-erasure-log) [--custody-keys take-over|new] [--accept-untagged-backup] "
       "[--accept-untagged-log]",
       "restore a backup into --db (new or empty), re-applying the erasures made since (KeyDestroyed: exit 12)",
       {Value("erasure-log", "FILE", "the live store's erasure log (shredkv erasure-log), '-' for stdin"),
        Switch("no-erasure-log", "restore without one: only for a backup newer than every erasure"),
        Value("custody-keys", "take-over|new",
              "a backup whose epoch keys are in a PKCS#11 token: take-over (the restored store replaces the "
              "original) or new (a copy beside it gets token keys of its own)"),
        Switch("accept-untagged-backup",
               "accept a backup whose MANIFEST has no authentication tag (made before stop 37): only if nobody "
               "else can write where it is kept"),
        Switch("accept-untagged-log",
               "accept an erasure log without an authentication tag (read before stop 37): only if nobody else "
               "can write where it is kept")},
       1, 1, true, false, "BACKUP  the backup directory (shredkv backup)"},
      {"reapply-erasure-log", "--erasure-log FILE [--custody-keys take-over|new] [--accept-untagged-log]",
       "re-apply the live store's erasure log to --db, a store put back from a file copy or volume snapshot "
       "(closed; purges, rotates and compacts as restore does)",
       {Value("erasure-log", "FILE", "the live store's erasure log (shredkv erasure-log), '-' for stdin", true),
        Value("custody-keys", "take-over|new",
              "a store whose epoch keys are in a PKCS#11 token, which it shares with the store it was copied "
              "from: take-over (it replaces that store, which must never open again) or new (a copy beside it "
              "gets token keys of its own)"),
        Switch("accept-untagged-log",
               "accept an erasure log without an authentication tag (read before stop 37): only if nobody else "
               "can write where it is kept")},
       0, 0},
      {"erasure-log", "[--out FILE]", "every erasure and suppression the store remembers, as NDJSON (for restore)",
       {Value("out", "FILE", "write to FILE (created or replaced) instead of stdout")}, 0, 0},
      {"compact", "", "rewrite the data file without free pages", {}, 0, 0},
      {"purge", "[--budget N]", "delete the rows of erased people (all, or up to N rows)", {kBudget}, 0, 0},
      {"sweep", "[--budget N]", "delete rows past their retention (all, or up to N rows)", {kBudget}, 0, 0},
      {"retention", "[--set RULES]", "print the retention rules, or replace them with RULES",
       {Value("set", "RULES", "replace every stored rule with RULES (the form of init's --retention)")}, 0, 0},
      {"verify", "", "check every record, index, checksum and the audit chain; exit 7 on a problem", {}, 0, 0},
      {"stats", "[--format json|prometheus]", "counts, sizes, key epoch and pending work as JSON (or Prometheus text)",
       {Value("format", "json|prometheus", "JSON (default) or the Prometheus text exposition format, a gauge a field")},
       0, 0},
      {"doctor", "", "a health report that writes nothing: format, epochs, pending work, lock holders, free space",
       {}, 0, 0},
      {"report", "[--out FILE]",
       "write a self-contained HTML page of the store: people, erasures by level over time, pending work, "
       "retention, audit chain",
       {Value("out", "FILE", "where to write the page (default: stdout)")}, 0, 0},
      {"completion", "bash|zsh", "print a shell completion script (bash, or zsh through bashcompinit)", {}, 1, 1,
       false, false, "bash|zsh: the shell; e.g. `source <(shredkv completion bash)`"},
      {"man", "", "print the manual page (roff; e.g. `shredkv man | man -l -`)", {}, 0, 0, false},
      {"sample", "[--people N] [--seed S]", "print a generated NDJSON sample for ingest (demo data)",
       {Value("people", "N", "how many people (default 3000)"), Value("seed", "S", "the generator's seed (default 42)")}, 0, 0,
       false},
  };
  return kCommands;
}

const CommandSpec* FindCommand(std::string_view name) {
  for (const CommandSpec& c : Commands()) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

std::optional<std::string> ParsedArgs::Get(const std::string& flag) const {
  auto it = values.find(flag);
  if (it == values.end() || it->second.empty()) return std::nullopt;
  return it->second.back();
}

std::vector<std::string> ParsedArgs::GetAll(const std::string& flag) const {
  auto it = values.find(flag);
  return it == values.end() ? std::vector<std::string>{} : it->second;
}

std::optional<std::int64_t> ParsedArgs::GetInt(const std::string& flag) const {
  auto v = Get(flag);
  if (!v) return std::nullopt;
  std::int64_t out = 0;
  auto [end, ec] = std::from_chars(v->data(), v->data() + v->size(), out);
  if (ec != std::errc() || end != v->data() + v->size() || v->empty()) {
    UsageError("--" + flag + " needs an integer, not '" + *v + "'");
  }
  return out;
}

std::optional<std::uint64_t> ParsedArgs::GetUint(const std::string& flag) const {
  auto v = Get(flag);
  if (!v) return std::nullopt;
  std::uint64_t out = 0;
  auto [end, ec] = std::from_chars(v->data(), v->data() + v->size(), out);
  if (ec != std::errc() || end != v->data() + v->size() || v->empty()) {
    UsageError("--" + flag + " needs a non-negative integer, not '" + *v + "'");
  }
  return out;
}

std::optional<std::int64_t> ParsedArgs::GetTime(const std::string& flag) const {
  auto v = Get(flag);
  if (!v) return std::nullopt;
  std::int64_t out = 0;
  if (!ParseTimeMs(*v, &out)) {
    UsageError("--" + flag + " needs a time: epoch milliseconds or an RFC 3339 date or date-time "
               "(2024-01-01, 2024-01-01T12:00:00Z), not '" + *v + "'");
  }
  return out;
}

namespace {

// Reads exactly `n` decimal digits at `*pos`.
bool Digits(std::string_view s, std::size_t* pos, std::size_t n, int* out) {
  if (*pos + n > s.size()) return false;
  int v = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const char c = s[*pos + i];
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  *pos += n;
  *out = v;
  return true;
}

bool Expect(std::string_view s, std::size_t* pos, char c) {
  if (*pos >= s.size() || s[*pos] != c) return false;
  ++*pos;
  return true;
}

// Days from 1970-01-01 to the proleptic Gregorian date y-m-d (H. Hinnant's
// days_from_civil).
std::int64_t DaysFromCivil(std::int64_t y, int m, int d) {
  y -= m <= 2 ? 1 : 0;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const std::int64_t yoe = y - era * 400;
  const std::int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const std::int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

int DaysInMonth(int y, int m) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  return m == 2 && leap ? 29 : kDays[m - 1];
}

}  // namespace

bool ParseTimeMs(std::string_view text, std::int64_t* out_ms) {
  if (text.empty()) return false;
  // Epoch milliseconds.
  std::int64_t ms = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), ms);
  if (ec == std::errc() && end == text.data() + text.size()) {
    *out_ms = ms;
    return true;
  }
  std::size_t pos = 0;
  int year = 0, month = 0, day = 0;
  if (!Digits(text, &pos, 4, &year) || !Expect(text, &pos, '-') || !Digits(text, &pos, 2, &month) ||
      !Expect(text, &pos, '-') || !Digits(text, &pos, 2, &day)) {
    return false;
  }
  if (month < 1 || month > 12 || day < 1 || day > DaysInMonth(year, month)) return false;
  std::int64_t total = DaysFromCivil(year, month, day) * 86'400'000;
  if (pos == text.size()) {  // a date: its midnight, UTC
    *out_ms = total;
    return true;
  }
  if (text[pos] != 'T' && text[pos] != 't' && text[pos] != ' ') return false;
  ++pos;
  int hour = 0, minute = 0, second = 0;
  if (!Digits(text, &pos, 2, &hour) || !Expect(text, &pos, ':') || !Digits(text, &pos, 2, &minute) ||
      !Expect(text, &pos, ':') || !Digits(text, &pos, 2, &second)) {
    return false;
  }
  if (hour > 23 || minute > 59 || second > 59) return false;
  total += ((hour * 60 + minute) * 60 + second) * std::int64_t{1000};
  if (pos < text.size() && text[pos] == '.') {
    ++pos;
    std::size_t digits = 0;
    int millis = 0;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
      if (digits < 3) millis = millis * 10 + (text[pos] - '0');
      ++digits;
      ++pos;
    }
    if (digits == 0 || digits > 9) return false;
    for (std::size_t i = digits; i < 3; ++i) millis *= 10;
    total += millis;
  }
  if (pos >= text.size()) return false;  // RFC 3339 date-times name their zone
  if (text[pos] == 'Z' || text[pos] == 'z') {
    ++pos;
  } else if (text[pos] == '+' || text[pos] == '-') {
    const bool ahead = text[pos] == '+';
    ++pos;
    int oh = 0, om = 0;
    if (!Digits(text, &pos, 2, &oh) || !Expect(text, &pos, ':') || !Digits(text, &pos, 2, &om)) return false;
    if (oh > 23 || om > 59) return false;
    const std::int64_t offset = (oh * 60 + om) * std::int64_t{60'000};
    total += ahead ? -offset : offset;  // local time minus its offset is UTC
  } else {
    return false;
  }
  if (pos != text.size()) return false;
  *out_ms = total;
  return true;
}

ParsedArgs ParseCommandArgs(const CommandSpec& spec, const std::vector<std::string>& args) {
  ParsedArgs out;
  out.spec = &spec;
  bool flags_done = false;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (flags_done || a == "-" || a.size() < 2 || a[0] != '-') {
      out.positionals.push_back(a);
      continue;
    }
    if (a == "--") {
      flags_done = true;
      continue;
    }
    if (a == "--help" || a == "-h") {
      out.help = true;
      return out;
    }
    if (a.rfind("--", 0) != 0) UsageError(spec.name + ": unknown option '" + a + "'");
    std::string name = a.substr(2);
    std::optional<std::string> inline_value;
    if (auto eq = name.find('='); eq != std::string::npos) {
      inline_value = name.substr(eq + 1);
      name.resize(eq);
    }
    const FlagSpec* flag = nullptr;
    for (const FlagSpec& f : spec.flags) {
      if (f.name == name) flag = &f;
    }
    if (flag == nullptr) {
      if (name == "db" || name == "key-file" || name == "pretty" || name == "read-only" ||
          name.rfind("pkcs11-", 0) == 0) {
        UsageError(spec.name + ": --" + name + " is a global option: give it before the command");
      }
      UsageError(spec.name + ": unknown option '--" + name + "'");
    }
    if (!flag->takes_value) {
      if (inline_value) UsageError(spec.name + ": --" + name + " takes no value");
      out.switches.insert(name);
      continue;
    }
    std::string value;
    if (inline_value) {
      value = *inline_value;
    } else {
      if (i + 1 >= args.size()) UsageError(spec.name + ": --" + name + " needs a value (" + flag->value_name + ")");
      value = args[++i];
    }
    auto& slot = out.values[name];
    if (!slot.empty() && !flag->repeatable) UsageError(spec.name + ": --" + name + " given twice");
    slot.push_back(std::move(value));
  }
  for (const FlagSpec& f : spec.flags) {
    if (f.required && !out.Has(f.name)) {
      UsageError(spec.name + ": missing --" + f.name + " " + f.value_name);
    }
  }
  if (out.positionals.size() < spec.min_positionals || out.positionals.size() > spec.max_positionals) {
    if (spec.max_positionals == 0) {
      UsageError(spec.name + ": unexpected argument '" + out.positionals.front() + "'");
    }
    UsageError(spec.name + ": usage: shredkv [global options] " + spec.name + " " + spec.synopsis);
  }
  return out;
}

const std::vector<GlobalOptionSpec>& GlobalOptionSpecs() {
  static const std::vector<GlobalOptionSpec> kGlobal = {
      {"--db", "", "DIR", "the store directory (required except for keygen, sample, completion and man)"},
      {"--key-file", "", "FILE", "the root key file (else $SHREDKV_KEY_FILE)"},
      {"--pkcs11-module", "", "FILE",
       "hold epoch keys in a PKCS#11 token through this module (e.g. /usr/lib/softhsm/libsofthsm2.so); with "
       "--pkcs11-token and a PIN"},
      {"--pkcs11-token", "", "LABEL", "the label of the token that holds the epoch keys' custody keys"},
      {"--pkcs11-pin-file", "", "FILE", "a file holding the token's user PIN (else $SHREDKV_PKCS11_PIN)"},
      {"--pretty", "", "", "indent JSON documents (not NDJSON streams)"},
      {"--read-only", "", "",
       "open the store without writing anything (read commands only; they do so by themselves on a store they "
       "cannot write)"},
      {"--quiet", "-q", "", "no progress bar (errors are still reported)"},
      {"--help", "-h", "", "this text; `help` does the same"},
      {"--version", "-V", "", "the version; `version` does the same"},
  };
  return kGlobal;
}

const std::vector<ExitCodeSpec>& ExitCodes() {
  static const std::vector<ExitCodeSpec> kCodes = {
      {0, "ok"}, {1, "other error"}, {2, "usage"}, {3, "not found"}, {4, "erased"}, {5, "restricted"},
      {6, "suppressed"}, {7, "corruption or authentication failure"}, {8, "wrong root key"},
      {9, "unsupported format version"}, {10, "store in use by another process"}, {11, "read-only store"},
      {12, "key destroyed in its custody"}, {130, "interrupted by SIGINT"}, {143, "interrupted by SIGTERM"},
  };
  return kCodes;
}

namespace {

// `words` joined with spaces and wrapped before `width` columns; later lines
// start with `indent`.
std::string Wrap(const std::string& text, std::size_t first_column, std::size_t width, const std::string& indent) {
  std::string out, word;
  std::size_t column = first_column;
  std::istringstream words(text);
  bool first = true;
  while (words >> word) {
    if (!first && column + 1 + word.size() > width) {
      out += "\n" + indent;
      column = indent.size();
    } else if (!first) {
      out += ' ';
      ++column;
    }
    out += word;
    column += word.size();
    first = false;
  }
  return out;
}

}  // namespace

std::string UsageText() {
  std::string s =
      "usage: shredkv [--db DIR] [--key-file FILE] [--pkcs11-module FILE] [--pkcs11-token LABEL] "
      "[--pkcs11-pin-file FILE] [--pretty] [--read-only] [--quiet] COMMAND [ARGS]\n"
      "\n"
      "Embedded store for personal data with per-person keys and crypto-shredding.\n"
      "\n"
      "Global options (before the command):\n";
  for (const GlobalOptionSpec& g : GlobalOptionSpecs()) {
    std::string head = "  " + g.name + (g.value_name.empty() ? "" : " " + g.value_name) +
                       (g.alias.empty() ? "" : ", " + g.alias);
    head.resize(std::max<std::size_t>(head.size() + 2, 19), ' ');
    s += head + Wrap(g.help, head.size(), 80, std::string(19, ' ')) + "\n";
  }
  s += "\nCommands:\n";
  for (const CommandSpec& c : Commands()) {
    if (c.hidden) continue;
    std::string head = "  " + c.name;
    head.resize(std::max<std::size_t>(head.size() + 2, 17), ' ');  // a long name keeps a gap
    s += head + c.summary + "\n";
  }
  s +=
      "\n"
      "--id takes TYPE:VALUE (email, phone, customer_id, device_id) or person_id:HEX.\n"
      "Output a program reads is JSON on stdout; messages and progress go to stderr.\n"
      "\n";
  // "N meaning," stays on one line (the wrap breaks only between codes).
  std::string line = "Exit codes:";
  for (std::size_t i = 0; i < ExitCodes().size(); ++i) {
    const std::string unit = std::to_string(ExitCodes()[i].code) + " " + ExitCodes()[i].meaning +
                             (i + 1 < ExitCodes().size() ? "," : ".");
    if (line.size() + 1 + unit.size() > 79) {
      s += line + "\n";
      line = unit;
    } else {
      line += " " + unit;
    }
  }
  s += line + "\n`shredkv COMMAND --help` shows a command's arguments.\n";
  return s;
}

namespace {

// "a|b|c" as "a b c" if every alternative is a lowercase word (a choice
// list such as json|prometheus), else empty (FILE|-, TYPE:VALUE, [N]).
std::string Choices(std::string_view spec) {
  if (spec.find('|') == std::string_view::npos) return "";
  std::string words;
  std::size_t start = 0;
  for (;;) {
    const std::size_t bar = spec.find('|', start);
    const std::string_view w = spec.substr(start, bar == std::string_view::npos ? spec.npos : bar - start);
    if (w.empty()) return "";
    for (char c : w) {
      if (!((c >= 'a' && c <= 'z') || c == '-' || c == '_')) return "";
    }
    words += (words.empty() ? "" : " ") + std::string(w);
    if (bar == std::string_view::npos) return words;
    start = bar + 1;
  }
}

}  // namespace

std::string CompletionScript(std::string_view shell) {
  if (shell != "bash" && shell != "zsh") return "";
  std::string global, commands, per_command, values;
  for (const GlobalOptionSpec& g : GlobalOptionSpecs()) global += " " + g.name + (g.alias.empty() ? "" : " " + g.alias);
  for (const CommandSpec& c : Commands()) {
    if (c.hidden) continue;
    commands += " " + c.name;
    std::string words = "--help";
    for (const FlagSpec& f : c.flags) {
      words += " --" + f.name;
      if (!f.takes_value) continue;
      // After a flag that takes a value: its choices, a file name, or nothing.
      const std::string choices = Choices(f.value_name);
      const bool file = f.value_name.find("FILE") != std::string::npos;
      values += "    " + c.name + ":--" + f.name + ") " +
                (!choices.empty() ? "_shredkv_words \"" + choices + "\"" : file ? "_shredkv_files -f" : "true") +
                "; return;;\n";
    }
    // A positional argument that is one of a few words (`consent ...
    // grant|withdraw`, `completion bash|zsh`).
    std::istringstream tokens(c.synopsis);
    for (std::string t; tokens >> t;) {
      const std::string choices = Choices(t);
      if (!choices.empty()) words = choices + " " + words;
    }
    per_command += "    " + c.name + ") _shredkv_words \"" + words + "\";;\n";
  }
  std::string s;
  if (shell == "zsh") {
    s += "#compdef shredkv\n# zsh completion for shredkv, generated by `shredkv completion zsh`: the bash\n"
         "# completion through zsh's bashcompinit. Load it with `source <(shredkv completion zsh)`.\n"
         "autoload -U +X bashcompinit && bashcompinit\n";
  } else {
    s += "# bash completion for shredkv, generated by `shredkv completion bash` from the\n"
         "# command table (the one docs/cli.md is checked against).\n";
  }
  s += "_shredkv_words() { mapfile -t COMPREPLY < <(compgen -W \"$1\" -- \"$cur\"); }\n"
       "_shredkv_files() {\n"
       "  mapfile -t COMPREPLY < <(compgen \"$1\" -- \"$cur\")\n"
       "  compopt -o filenames 2>/dev/null || true\n"
       "}\n"
       "_shredkv() {\n"
       "  local cur=\"${COMP_WORDS[COMP_CWORD]}\" prev=\"${COMP_WORDS[COMP_CWORD-1]}\" cmd=\"\" i\n"
       "  # --opt=value reaches us as three words: --opt, =, value.\n"
       "  if [[ \"$cur\" == \"=\" ]]; then\n"
       "    cur=\"\"\n"
       "  elif [[ \"$prev\" == \"=\" ]]; then\n"
       "    prev=\"${COMP_WORDS[COMP_CWORD-2]}\"\n"
       "  fi\n"
       "  for ((i = 1; i < COMP_CWORD; i++)); do\n"
       "    case \"${COMP_WORDS[i]}\" in\n"
       "      --db|--key-file|--pkcs11-module|--pkcs11-token|--pkcs11-pin-file)\n"
       "        if [[ \"${COMP_WORDS[i+1]}\" == \"=\" ]]; then ((i += 2)); else ((i++)); fi;;\n"
       "      -*|=) ;;\n"
       "      *) cmd=\"${COMP_WORDS[i]}\"; break;;\n"
       "    esac\n"
       "  done\n"
       "  case \"$prev\" in\n"
       "    --db) _shredkv_files -d; return;;\n"
       "    --key-file|--pkcs11-module|--pkcs11-pin-file) _shredkv_files -f; return;;\n"
       "    --pkcs11-token) return;;\n"
       "  esac\n"
       "  if [[ -z \"$cmd\" ]]; then\n"
       "    _shredkv_words \"" + global.substr(1) + " help version" + commands + "\"\n"
       "    return\n"
       "  fi\n"
       "  case \"$cmd:$prev\" in\n" + values +
       "  esac\n"
       "  case \"$cmd\" in\n" + per_command +
       "  esac\n"
       "}\n"
       "complete -o default -F _shredkv shredkv\n";
  return s;
}

namespace {

// Text for roff: backslashes and hyphens escaped, no line starting with a
// control character.
std::string Roff(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == '\\') {
      out += "\\e";
    } else if (c == '-') {
      out += "\\-";
    } else {
      out += c;
    }
  }
  if (!out.empty() && (out[0] == '.' || out[0] == '\'')) out.insert(0, "\\&");
  return out;
}

}  // namespace

std::string ManPage(std::string_view version) {
  std::string s = ".TH SHREDKV 1 \"\" \"shredkv " + Roff(version) + "\" \"User Commands\"\n";
  s += ".\\\" Generated by `shredkv man` from the command table; do not edit.\n";
  s += ".nh\n";  // no hyphenation: command and option names stay whole
  s += ".SH NAME\nshredkv \\- embedded store for personal data with per\\-person keys and crypto\\-shredding\n";
  s += ".SH SYNOPSIS\n.B shredkv\n[\\fIGLOBAL OPTIONS\\fR] \\fICOMMAND\\fR [\\fIARGS\\fR]\n";
  s += ".SH DESCRIPTION\nThe command\\-line tool of shredkv: create a store, ingest and export people's data, "
       "erase, restrict, purge, rotate keys, compact, verify. Output a program reads is JSON on stdout; messages "
       "and progress go to stderr. \\fB\\-\\-id\\fR takes TYPE:VALUE (email, phone, customer_id, device_id) or "
       "person_id:HEX.\n";
  s += ".SH GLOBAL OPTIONS\n";
  for (const GlobalOptionSpec& g : GlobalOptionSpecs()) {
    s += ".TP\n\\fB" + Roff(g.name) + "\\fR" + (g.value_name.empty() ? "" : " \\fI" + Roff(g.value_name) + "\\fR") +
         (g.alias.empty() ? "" : ", \\fB" + Roff(g.alias) + "\\fR") + "\n" + Roff(g.help) + "\n";
  }
  s += ".SH COMMANDS\n";
  for (const CommandSpec& c : Commands()) {
    if (c.hidden) continue;
    std::string heading = Roff(c.name + (c.synopsis.empty() ? "" : " " + c.synopsis));
    for (std::size_t q = heading.find('"'); q != std::string::npos; q = heading.find('"', q + 4)) {
      heading.replace(q, 1, "\\(dq");
    }
    const bool stop = !c.summary.empty() && c.summary.back() == '.';
    s += ".SS \"" + heading + "\"\n" + Roff(c.summary) + (stop ? "" : ".") + "\n";
    if (!c.positional_help.empty()) s += ".PP\n" + Roff(c.positional_help) + "\n";
    for (const FlagSpec& f : c.flags) {
      s += ".TP\n\\fB\\-\\-" + Roff(f.name) + "\\fR" + (f.takes_value ? " \\fI" + Roff(f.value_name) + "\\fR" : "") +
           "\n" + Roff(f.help) + (f.required ? " (required)" : "") + "\n";
    }
  }
  s += ".SH EXIT STATUS\n";
  for (const ExitCodeSpec& e : ExitCodes()) s += ".TP\n.B " + std::to_string(e.code) + "\n" + Roff(e.meaning) + "\n";
  s += ".SH ENVIRONMENT\n.TP\n.B SHREDKV_KEY_FILE\nthe root key file when \\fB\\-\\-key\\-file\\fR is not given\n";
  s += ".SH SEE ALSO\ndocs/cli.md in the shredkv sources (commands, JSON output and exit codes in full).\n";
  return s;
}

std::string CommandHelp(const CommandSpec& spec) {
  std::string s = "usage: shredkv";
  if (spec.needs_store) s += " --db DIR [--key-file FILE]";
  s += " " + spec.name;
  if (!spec.synopsis.empty()) s += " " + spec.synopsis;
  s += "\n\n" + spec.summary + "\n";
  if (!spec.flags.empty()) {
    s += "\nOptions:\n";
    for (const FlagSpec& f : spec.flags) {
      std::string head = "  --" + f.name + (f.takes_value ? " " + f.value_name : "");
      head.resize(std::max<std::size_t>(head.size() + 2, 30), ' ');
      s += head + f.help + (f.required ? " (required)" : "") + "\n";
    }
  }
  if (!spec.positional_help.empty()) s += "\nArguments:\n  " + spec.positional_help + "\n";
  s += "\nGlobal options (--db, --key-file, --pretty, --read-only, --quiet): shredkv --help\n";
  return s;
}

}  // namespace shredkv::cli
