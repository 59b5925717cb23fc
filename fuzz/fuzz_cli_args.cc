// libFuzzer harness: the CLI's argument parser (tools/shredkv/args.cc,
// ParseCommandArgs for every command's table, and the integer option
// readers) and its retention-rule and duration parser (tools/shredkv/
// parse.cc, ParseRetention), on arbitrary argument vectors.
//
// Input: byte 0 picks the mode, byte 1 a command; the rest, split at NUL
// bytes, is the argument vector (or, for retention, the --retention values).
// Every input either parses or throws CliError with the usage exit code (2)
// and a message; nothing else is thrown, nothing crashes (an overflow in a
// duration, issue 16 item 5, is a usage error under UBSan here). What parses
// obeys the command table: only declared flags, values only for flags that
// take one, no unrepeatable flag twice, every required flag present, the
// positional count in range; and every retention age is positive.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "args.h"
#include "cli.h"

namespace {

using namespace shredkv::cli;

[[noreturn]] void Fail(const std::string& what) {
  std::fprintf(stderr, "fuzz_cli_args: %s\n", what.c_str());
  std::abort();
}

std::vector<std::string> SplitAtNul(std::string_view in) {
  std::vector<std::string> out;
  while (!in.empty() && out.size() < 64) {
    const std::size_t nul = in.find('\0');
    out.emplace_back(in.substr(0, nul));
    if (nul == std::string_view::npos) break;
    in.remove_prefix(nul + 1);
  }
  return out;
}

void CheckParsed(const CommandSpec& spec, const ParsedArgs& p) {
  if (p.help) return;
  for (const FlagSpec& f : spec.flags) {
    const bool given = p.Has(f.name);
    if (f.required && !given) Fail(spec.name + ": required --" + f.name + " missing but parsed");
    const auto v = p.values.find(f.name);
    if (v != p.values.end() && !f.takes_value) Fail(spec.name + ": switch --" + f.name + " got a value");
    if (p.switches.count(f.name) != 0 && f.takes_value) Fail(spec.name + ": --" + f.name + " parsed without value");
    if (v != p.values.end() && v->second.size() > 1 && !f.repeatable) Fail(spec.name + ": --" + f.name + " twice");
  }
  for (const auto& [name, values] : p.values) {
    bool declared = false;
    for (const FlagSpec& f : spec.flags) declared = declared || f.name == name;
    if (!declared) Fail(spec.name + ": undeclared --" + name + " parsed");
  }
  if (p.positionals.size() < spec.min_positionals || p.positionals.size() > spec.max_positionals) {
    Fail(spec.name + ": positional count out of range parsed");
  }
  // The integer readers: a number or a usage error.
  for (const FlagSpec& f : spec.flags) {
    if (!f.takes_value) continue;
    try {
      (void)p.GetInt(f.name);
    } catch (const CliError& e) {
      if (e.code() != kExitUsage) Fail("GetInt threw a non-usage error");
    }
    try {
      (void)p.GetUint(f.name);
    } catch (const CliError& e) {
      if (e.code() != kExitUsage) Fail("GetUint threw a non-usage error");
    }
    try {
      (void)p.GetTime(f.name);
    } catch (const CliError& e) {
      if (e.code() != kExitUsage) Fail("GetTime threw a non-usage error");
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  const std::vector<std::string> args =
      SplitAtNul(std::string_view(reinterpret_cast<const char*>(data + 2), size - 2));
  try {
    if (data[0] % 2 == 0) {
      const std::vector<CommandSpec>& commands = Commands();
      const CommandSpec& spec = commands[data[1] % commands.size()];
      CheckParsed(spec, ParseCommandArgs(spec, args));
    } else {
      const shredkv::RetentionRules rules = ParseRetention(args);
      auto check = [](std::int64_t age) {
        if (age <= 0) Fail("a retention age that is not positive parsed");
      };
      for (const auto& [name, age] : rules.events) check(age);
      for (const auto& [name, age] : rules.collections) check(age);
      if (rules.analytics < 0) Fail("a negative analytics retention parsed");
      if (rules.feed < 0) Fail("a negative feed retention parsed");
    }
  } catch (const CliError& e) {
    if (e.code() != kExitUsage) Fail("a parser threw exit code " + std::to_string(e.code()));
    if (std::string_view(e.what()).empty()) Fail("a usage error without a message");
  }
  return 0;
}
