// The CLI's parsers of option values that need no store: retention rules
// and their durations. In the shredkv_cli_parsers library with args.cc, so
// the fuzz_cli_args harness (fuzz/) runs the same code as the tool.
#include <limits>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "cli.h"

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
    if (digits == 0 || digits > 12 || u == kUnits.end()) {
      UsageError("--retention: '" + std::string(item) + "': the age must be a number with a unit ms, s, m, h, d or y");
    }
    const std::int64_t n = std::stoll(std::string(text.substr(0, digits)));
    if (n <= 0) UsageError("--retention: '" + std::string(item) + "': the age must be > 0");
    // 12 digits of years overflow int64 milliseconds: refuse, never wrap.
    if (n > std::numeric_limits<std::int64_t>::max() / u->second) {
      UsageError("--retention: '" + std::string(item) + "': the age is too large (at most about 292 million years)");
    }
    return n * u->second;
  };
  std::set<std::string_view> targets;  // a second rule for one target: which one was meant?
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
