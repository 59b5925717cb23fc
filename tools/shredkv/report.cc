// shredkv report: a self-contained HTML page of a store's state — people,
// erasures by level over time, pending work, retention, audit chain — for
// people who would rather look than read JSON (issue 22). Aggregates only:
// the page names no person (the audit log it reads holds none).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "cli.h"
#include "json_output.h"
#include "output_file.h"
#include "progress.h"
#include "portability/json_values.h"

namespace shredkv::cli {
namespace {

// `text` as HTML text: markup characters escaped, and control and
// direction-changing characters shown as \uXXXX (outside audit 36c, F6: a
// rule name holding U+202E displayed "gnp.exe" as "exe.png").
std::string Html(std::string_view text) {
  std::string out;
  const auto shown = [&out](unsigned code) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "\\u%04X", code);
    out += buf;
  };
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    // U+0080..U+009F (C2 80..9F), U+200E/F, U+202A..E, U+2066..9 (E2 80/81 ..), U+FEFF (EF BB BF).
    if (c == 0xC2 && i + 1 < text.size() && static_cast<unsigned char>(text[i + 1]) <= 0x9F &&
        static_cast<unsigned char>(text[i + 1]) >= 0x80) {
      shown(static_cast<unsigned char>(text[i + 1]));
      ++i;
      continue;
    }
    if (c == 0xE2 && i + 2 < text.size()) {
      const unsigned code = 0x2000u | ((static_cast<unsigned char>(text[i + 1]) & 0x3Fu) << 6) |
                            (static_cast<unsigned char>(text[i + 2]) & 0x3Fu);
      if (code == 0x200E || code == 0x200F || (code >= 0x202A && code <= 0x202E) || (code >= 0x2066 && code <= 0x2069)) {
        shown(code);
        i += 2;
        continue;
      }
    }
    if (c == 0xEF && i + 2 < text.size() && static_cast<unsigned char>(text[i + 1]) == 0xBB &&
        static_cast<unsigned char>(text[i + 2]) == 0xBF) {
      shown(0xFEFF);
      i += 2;
      continue;
    }
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default:
        if (c < 0x20 || c == 0x7F) {
          shown(c);
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out;
}

// The UTC date of a time (the export's time format, cut to the day).
// The UTC day of `ms`, YYYY-MM-DD; for a time outside the years 0..9999
// (an erasure made under a clock far off), kOutOfRangeDay: IsoTime prints
// nothing there, and the page failed on it (outside audit 38b, F5).
constexpr std::string_view kOutOfRangeDay = "out of range";
std::string Day(std::int64_t ms) {
  const std::string iso = portability::IsoTime(ms);
  return iso.size() >= 10 ? iso.substr(0, 10) : std::string(kOutOfRangeDay);
}

// The axis label of a day: MM-DD, or the day as is when it is not a date.
std::string DayLabel(const std::string& day) { return day.size() == 10 ? day.substr(5) : day; }

std::string Age(std::int64_t ms) {
  if (ms % (24ll * 3600 * 1000) == 0) return std::to_string(ms / (24ll * 3600 * 1000)) + " d";
  if (ms % (3600ll * 1000) == 0) return std::to_string(ms / (3600ll * 1000)) + " h";
  return std::to_string(ms) + " ms";
}

// Erasure requests per day and the level each has reached now.
struct DayCounts {
  std::uint64_t logical = 0, cryptographic = 0, purged = 0;
  std::uint64_t unknown = 0;  // receipts that could not be read
  std::uint64_t total() const { return logical + cryptographic + purged + unknown; }
};

// An inline SVG of stacked bars, one a day (the last 60 days with erasures).
std::string ErasureChart(const std::map<std::string, DayCounts>& days) {
  if (days.empty()) return "<p class=\"muted\">No erasures yet.</p>";
  std::vector<std::pair<std::string, DayCounts>> shown(days.begin(), days.end());
  if (shown.size() > 60) shown.erase(shown.begin(), shown.end() - 60);
  std::uint64_t peak = 1;
  for (const auto& [day, c] : shown) peak = std::max(peak, c.total());
  const int bar = 14, gap = 4, height = 160, left = 40, bottom = 56;
  const int width = left + static_cast<int>(shown.size()) * (bar + gap) + 10;
  std::string svg = "<svg role=\"img\" aria-label=\"erasures per day by level\" width=\"" + std::to_string(width) +
                    "\" height=\"" + std::to_string(height + bottom) + "\" viewBox=\"0 0 " + std::to_string(width) +
                    " " + std::to_string(height + bottom) + "\">";
  svg += "<text x=\"0\" y=\"12\" class=\"axis\">" + std::to_string(peak) + "</text>";
  svg += "<text x=\"0\" y=\"" + std::to_string(height) + "\" class=\"axis\">0</text>";
  int x = left;
  for (const auto& [day, c] : shown) {
    int y = height;
    const std::pair<std::uint64_t, const char*> parts[] = {
        {c.purged, "purged"}, {c.cryptographic, "cryptographic"}, {c.logical, "logical"}};
    for (const auto& [n, cls] : parts) {
      if (n == 0) continue;
      const int h = std::max(1, static_cast<int>(static_cast<double>(n) * (height - 16) / static_cast<double>(peak)));
      y -= h;
      svg += "<rect class=\"" + std::string(cls) + "\" x=\"" + std::to_string(x) + "\" y=\"" + std::to_string(y) +
             "\" width=\"" + std::to_string(bar) + "\" height=\"" + std::to_string(h) + "\"><title>" + Html(day) + ": " +
             std::to_string(n) + " " + cls + "</title></rect>";
    }
    svg += "<text class=\"axis\" transform=\"translate(" + std::to_string(x + bar - 2) + "," +
           std::to_string(height + 6) + ") rotate(60)\">" + Html(DayLabel(day)) + "</text>";
    x += bar + gap;
  }
  return svg + "</svg>";
}

std::string Row(std::string_view name, const std::string& value, std::string_view note = {}) {
  return "<tr><th>" + Html(name) + "</th><td>" + value + "</td><td class=\"muted\">" + Html(note) + "</td></tr>\n";
}

// The first lines of every page `report` writes, and how it knows a file it
// may replace: the generator line is what tells it from any other page
// (outside audit 36c, F5: the four standard lines alone matched most HTML5
// pages, and `--out index.html` replaced a wiki's page).
constexpr std::string_view kReportHead =
    "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"generator\" content=\"shredkv report\">\n";

}  // namespace

int CmdReport(const GlobalOptions& global, const ParsedArgs& args) {
  const std::string out_path = args.Get("out").value_or("-");
  if (out_path.empty()) UsageError("report: --out needs a value");  // outside audit 39a, F9: exit 1 before
  if (out_path != "-") CheckOutputTarget(global, out_path, "report", kReportHead, "report");
  auto store = OpenStoreToRead(global);
  const StoreStats st = Check(store->Stats(), "stats");
  AuditVerification audit;
  if (auto v = store->VerifyAuditLog(); v.ok()) {
    audit = std::move(v).value();
  } else {
    audit.intact = false;  // the page is still written: the damage is what it must show
    audit.problem = "the audit log cannot be read: " + v.status().ToString();
  }
  const RetentionRules retention = Check(store->GetRetention(), "retention");

  // The audit log, page by page: erasures (by day, at the level each has
  // reached now) and the maintenance that ran.
  std::map<std::string, DayCounts> erasures_by_day;
  std::map<std::string, std::uint64_t> actions;
  std::int64_t last_rotation_ms = 0, last_purge_ms = 0, last_sweep_ms = 0, last_compaction_ms = 0;
  // A page that cannot be read is read again entry by entry, and an entry
  // that cannot be read is counted and passed (outside audit 36c, F1: one
  // damaged entry ended the reading, and the page showed "no erasures yet"
  // as if complete). 1,000 unreadable entries in a row end it.
  std::uint64_t unreadable = 0, unreadable_in_a_row = 0;
  std::string read_problem;
  bool read_to_the_end = true;
  for (std::uint64_t after = 0, step = 10000;;) {
    auto read = store->ReadAudit(after, step);
    if (!read.ok()) {
      if (step > 1) {
        step = 1;
        continue;
      }
      if (read_problem.empty()) read_problem = "entry " + std::to_string(after + 1) + ": " + read.status().ToString();
      ++unreadable;
      if (++unreadable_in_a_row >= 1000) {
        read_to_the_end = false;
        break;
      }
      ++after;
      step = 10000;  // past the damaged entry: pages again (review of stop 36, R6: not after every good one)
      continue;
    }
    unreadable_in_a_row = 0;
    const std::vector<AuditRecord> page = std::move(read).value();
    if (page.empty()) break;
    for (const AuditRecord& r : page) {
      after = r.seq;
      ++actions[std::string(AuditActionName(r.action))];
      switch (r.action) {
        case AuditAction::kErase:
        case AuditAction::kEraseCategory: {
          auto receipt = store->GetErasure(r.request_id);
          DayCounts& d = erasures_by_day[Day(r.time_ms)];
          if (!receipt.ok()) {
            ++d.unknown;
          } else if (receipt->level == ErasureLevel::kPurged) {
            ++d.purged;
          } else if (receipt->level == ErasureLevel::kCryptographic) {
            ++d.cryptographic;
          } else {
            ++d.logical;
          }
          break;
        }
        case AuditAction::kRotation: last_rotation_ms = r.time_ms; break;
        case AuditAction::kPurge: last_purge_ms = r.time_ms; break;
        case AuditAction::kSweep: last_sweep_ms = r.time_ms; break;
        case AuditAction::kCompaction: last_compaction_ms = r.time_ms; break;
        default: break;
      }
    }
  }
  if (unreadable > 0) {
    audit.intact = false;
    if (!audit.problem.empty()) audit.problem += "; ";
    audit.problem += std::to_string(unreadable) + " audit entr" + (unreadable == 1 ? "y" : "ies") +
                     " could not be read (first: " + read_problem + ")" +
                     (read_to_the_end ? "" : ", and the rest of the log was not read") +
                     ": the erasure and maintenance figures of this page count only the entries read";
  }
  DayCounts all;
  for (const auto& [day, c] : erasures_by_day) {
    all.logical += c.logical;
    all.cryptographic += c.cryptographic;
    all.purged += c.purged;
    all.unknown += c.unknown;
  }
  auto when = [](std::int64_t ms) { return ms == 0 ? std::string("never") : Day(ms); };
  const std::int64_t now_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();

  std::string h;
  h += kReportHead;
  // Self-contained: nothing is loaded from anywhere (the policy says so to the browser too).
  h += "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; "
       "script-src 'unsafe-inline'\">\n";
  h += "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n";
  // The store's directory name only: a path may name a person (/home/ann/...).
  std::filesystem::path db_path = std::filesystem::path(global.db).lexically_normal();
  if (!db_path.has_filename()) db_path = db_path.parent_path();  // "db/": the name is that of "db"
  const std::string store_name = db_path.filename().string();
  h += "<title>shredkv report: " + Html(store_name) + "</title>\n";
  h += "<style>\n"
       "body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:60em;padding:0 1em;color:#1d2330}\n"
       "h1{font-size:1.5em;margin-bottom:.2em}h2{font-size:1.15em;margin-top:2em;border-bottom:1px solid #dde}\n"
       ".muted{color:#6b7280}.cards{display:flex;flex-wrap:wrap;gap:1em}\n"
       ".card{border:1px solid #dde;border-radius:8px;padding:.8em 1.2em;min-width:9em}\n"
       ".card b{display:block;font-size:1.6em}table{border-collapse:collapse}th,td{text-align:left;padding:.25em 1em .25em 0}\n"
       ".ok{color:#047857;font-weight:600}.bad{color:#b91c1c;font-weight:600}\n"
       "rect.logical{fill:#f59e0b}rect.cryptographic{fill:#3b82f6}rect.purged{fill:#10b981}.axis{font-size:10px;fill:#6b7280}\n"
       ".legend span{display:inline-block;width:.9em;height:.9em;margin:0 .3em 0 1em;vertical-align:-.1em}\n"
       "</style>\n</head>\n<body data-ready=\"0\">\n";
  h += "<h1>shredkv report</h1>\n<p class=\"muted\">Store <code>" + Html(store_name) + "</code>, format " +
       std::to_string(st.format_version) + ", generated <time id=\"generated\" datetime=\"" + std::to_string(now_ms) +
       "\">" + Day(now_ms) + " (UTC)</time>. Aggregates only: no person is named on this page.</p>\n";

  h += "<h2>People</h2>\n<div class=\"cards\">\n";
  const std::pair<const char*, std::uint64_t> cards[] = {
      {"people", st.people},         {"erased", st.erased},       {"restricted", st.restricted},
      {"identifiers", st.identifiers}, {"events", st.events},     {"records", st.records},
      {"analytics rows", st.analytics_rows}, {"suppressed identifiers", st.suppressed}};
  for (const auto& [name, n] : cards) {
    h += "<div class=\"card\"><b>" + std::to_string(n) + "</b>" + Html(name) + "</div>\n";
  }
  h += "</div>\n";

  h += "<h2>Erasures by level</h2>\n";
  if (unreadable > 0) {
    h += "<p id=\"audit-incomplete\" class=\"bad\">" + std::to_string(unreadable) + " audit entr" +
         (unreadable == 1 ? "y" : "ies") +
         " could not be read: these figures count only the others (see the audit chain below).</p>\n";
  }
  h += "<p>" + std::to_string(all.total()) + " erasure requests: " +
       std::to_string(all.purged) + " purged, " + std::to_string(all.cryptographic) + " cryptographic, " +
       std::to_string(all.logical) +
       " logical (awaiting the key rotation that makes them cryptographic)" +
       (all.unknown > 0 ? ", " + std::to_string(all.unknown) + " whose receipt could not be read" : std::string()) +
       ". Each bar is a day (UTC) of requests, "
       "coloured by the level each has reached now.</p>\n";
  h += "<p class=\"legend\"><span style=\"background:#10b981\"></span>purged<span style=\"background:#3b82f6\"></span>"
       "cryptographic<span style=\"background:#f59e0b\"></span>logical</p>\n";
  h += ErasureChart(erasures_by_day) + "\n";

  h += "<h2>Pending work</h2>\n<table>\n";
  h += Row("purge", std::to_string(st.pending_purge), "erased people (and category keys) whose rows remain: purge");
  h += Row("not yet cryptographic", std::to_string(st.erasures_since_rotation + st.erasures_awaiting_rebuild),
           "erasures since the last rotate-keys, and those awaiting its keys-file rebuild");
  h += Row("keys-file rebuild", st.keys_rebuild_pending ? "pending" : "none",
           st.keys_rebuild_pending ? "finished by the next writable open or maintenance round" : "");
  h += Row("expired, awaiting a sweep", std::to_string(st.expired_pending), "items past their retention");
  h += Row("retention back-fill", st.retention_backfill_pending ? "pending" : "none", "");
  h += Row("analytics rows staged", std::to_string(st.analytics_staged), "moved into place by maintenance");
  h += Row("key epochs", std::to_string(st.oldest_key_epoch) + " … " + std::to_string(st.key_epoch),
           "oldest live epoch … current");
  h += Row("last rotation", when(last_rotation_ms), "");
  h += Row("last purge", when(last_purge_ms), "");
  h += Row("last sweep", when(last_sweep_ms), "");
  h += Row("last compaction", when(last_compaction_ms), "");
  h += Row("files", FormatBytes(static_cast<double>(st.keys_file_bytes)) + " keys, " +
                       FormatBytes(static_cast<double>(st.data_file_bytes)) + " data", "");
  h += "</table>\n";

  h += "<h2>Retention</h2>\n";
  if (retention == RetentionRules{}) {
    h += "<p class=\"muted\">No retention rules: nothing expires.</p>\n";
  } else {
    h += "<table>\n<tr><th>rule</th><th>maximum age</th></tr>\n";
    for (const auto& [name, age] : retention.events) h += "<tr><td>event " + Html(name) + "</td><td>" + Age(age) + "</td></tr>\n";
    for (const auto& [name, age] : retention.collections) {
      h += "<tr><td>collection " + Html(name) + "</td><td>" + Age(age) + "</td></tr>\n";
    }
    if (retention.analytics > 0) h += "<tr><td>analytics rows</td><td>" + Age(retention.analytics) + "</td></tr>\n";
    if (retention.feed > 0) h += "<tr><td>change-feed notices</td><td>" + Age(retention.feed) + "</td></tr>\n";
    h += "</table>\n";
  }
  h += "<p>" + std::to_string(st.expired_removed) + " rows removed by sweeps so far.</p>\n";

  h += "<h2>Audit chain</h2>\n<p id=\"audit\" class=\"" + std::string(audit.intact ? "ok" : "bad") + "\">" +
       (audit.intact ? "intact" : "BROKEN: " + Html(audit.problem)) + "</p>\n";
  h += "<p>" + std::to_string(audit.entries) + " entries; head <code>" + Html(audit.head_hash) + "</code>.</p>\n<table>\n";
  for (const auto& [name, n] : actions) h += "<tr><td>" + Html(name) + "</td><td>" + std::to_string(n) + "</td></tr>\n";
  h += "</table>\n";
  // The one script: the generation time in the reader's own time zone, and
  // a marker the render test looks for (it is set only if the script ran).
  h += "<script>\n(function () {\n"
       "  var t = document.getElementById('generated');\n"
       "  var d = new Date(Number(t.getAttribute('datetime')));\n"
       "  t.textContent = d.toLocaleString();\n"
       "  document.body.setAttribute('data-ready', '1');\n"
       "})();\n</script>\n</body>\n</html>\n";

  if (out_path == "-") {
    std::cout << h;
    return 0;
  }
  // Written beside the target and renamed over it: a reader never sees half
  // a page, and a failed write leaves the old one.
  ReplaceFile(out_path, "report", 0644, [&](std::ostream& f) { f << h; });
  PrintLine(Dump(Json{{"report", out_path}, {"bytes", h.size()}}, global.pretty));
  return 0;
}

}  // namespace shredkv::cli
