// The CLI's parsers of option values that need no store: retention rules
// and their durations. In the shredkv_cli_parsers library with args.cc, so
// the fuzz_cli_args harness (fuzz/) runs the same code as the tool.
#include <charconv>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "cli.h"
#include "util/base64.h"

namespace shredkv::cli {

void UsageError(const std::string& message) { throw CliError(kExitUsage, message); }

RetentionRules ParseRetention(const std::vector<std::string>& specs) {
  RetentionRules rules;
  auto parse_age = [](std::string_view text, std::string_view item) -> std::int64_t {
    std::size_t digits = 0;
    while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
    const std::string_view unit = text.substr(digits);
    static const std::map<std::string_view, std::int64_t> kUnits = {
        {"ms", 1}, {"s", 1000}, {"m", 60'000}, {"h", 3'600'000}, {"d", 86'400'000}, {"y", 365ll * 86'400'000}};
    auto u = kUnits.find(unit);
    if (digits == 0 || u == kUnits.end()) {
      UsageError("--retention: '" + std::string(item) + "': the age must be a number with a unit ms, s, m, h, d or y");
    }
    // Any number of digits (outside audit 38b, F7: more than 12 were refused
    // as "not a number", so an age `retention` printed in ms, from about 32
    // years up, could not be given back); too large for int64 milliseconds,
    // in its unit or as a number at all, is refused, never wrapped.
    std::int64_t n = 0;
    const bool overflow =
        std::from_chars(text.data(), text.data() + digits, n).ec == std::errc::result_out_of_range;
    if (!overflow && n <= 0) UsageError("--retention: '" + std::string(item) + "': the age must be > 0");
    if (overflow || n > std::numeric_limits<std::int64_t>::max() / u->second) {
      UsageError("--retention: '" + std::string(item) + "': the age is too large (at most about 292 million years)");
    }
    return n * u->second;
  };
  std::set<std::string_view> targets;  // a second rule for one target: which one was meant?
  // `none`, alone: no rule at all, said explicitly (outside audit 38a, F7:
  // a last rule, a feed rule say, could not be removed).
  if (specs.size() == 1 && specs[0] == "none") return rules;
  for (const std::string& spec : specs) {
    // An empty list would silently replace every rule with none.
    if (spec.empty()) UsageError("--retention: no rule given (RULES is a comma-separated list of rules)");
    std::string_view rest(spec);
    for (bool last = false; !last;) {
      const std::size_t comma = rest.find(',');
      last = comma == std::string_view::npos;
      const std::string_view item = rest.substr(0, comma);
      if (!last) rest = rest.substr(comma + 1);
      if (item.empty()) UsageError("--retention: '" + spec + "' has an empty rule");
      const std::size_t eq = item.rfind('=');
      if (eq == std::string_view::npos) {
        UsageError("--retention: '" + std::string(item) + "' is not event:NAME=AGE, collection:NAME=AGE, analytics=AGE or feed=AGE");
      }
      const std::string_view target = item.substr(0, eq);
      // Names are text: `retention` prints them as JSON, and a name that is
      // not UTF-8 came back altered (outside audit 39a, F9), so giving the
      // printed rules back named another event.
      if (!util::IsValidUtf8(target)) {
        UsageError("--retention: a rule's name is not valid UTF-8");
      }
      if (!targets.insert(target).second) {
        UsageError("--retention: '" + std::string(target) + "' is given two rules");
      }
      const std::int64_t age = parse_age(item.substr(eq + 1), item);
      if (target == "analytics") {
        rules.analytics = age;
      } else if (target == "feed") {
        rules.feed = age;
      } else if (target.starts_with("event:") && target.size() > 6) {
        rules.events[std::string(target.substr(6))] = age;
      } else if (target.starts_with("collection:") && target.size() > 11) {
        rules.collections[std::string(target.substr(11))] = age;
      } else {
        UsageError("--retention: '" + std::string(item) + "' is not event:NAME=AGE, collection:NAME=AGE, analytics=AGE or feed=AGE");
      }
    }
  }
  return rules;
}

}  // namespace shredkv::cli
