// shredkv command-line tool: the command table and argument parsing.
#ifndef SHREDKV_TOOLS_ARGS_H_
#define SHREDKV_TOOLS_ARGS_H_

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace shredkv::cli {

struct FlagSpec {
  std::string name;        // without the leading "--"
  bool takes_value = true;
  bool repeatable = false;
  bool required = false;
  std::string value_name;  // for the help text ("TYPE:VALUE")
  std::string help{};      // one line for `COMMAND --help`
};

struct CommandSpec {
  std::string name;
  std::string synopsis;     // one line: arguments after the name
  std::string summary;      // one line: what it does
  std::vector<FlagSpec> flags;
  std::size_t min_positionals = 0;
  std::size_t max_positionals = 0;
  bool needs_store = true;  // needs --db and a root key
  bool hidden = false;      // not listed by --help
  std::string positional_help{};  // `COMMAND --help`: what the positional arguments are
};

// The parsed arguments of one command.
struct ParsedArgs {
  const CommandSpec* spec = nullptr;
  std::map<std::string, std::vector<std::string>> values;  // flag → values
  std::set<std::string> switches;                          // flags without value
  std::vector<std::string> positionals;
  bool help = false;  // --help or -h was given

  bool Has(const std::string& flag) const { return values.count(flag) != 0 || switches.count(flag) != 0; }
  // The last value of a flag, if given.
  std::optional<std::string> Get(const std::string& flag) const;
  std::vector<std::string> GetAll(const std::string& flag) const;
  // Integer flag values; usage error if not a number.
  std::optional<std::int64_t> GetInt(const std::string& flag) const;
  std::optional<std::uint64_t> GetUint(const std::string& flag) const;
  // A time flag (ParseTimeMs); usage error if it is neither form.
  std::optional<std::int64_t> GetTime(const std::string& flag) const;
};

// A time given on the command line, as milliseconds since the epoch (UTC):
// either an integer (epoch ms, may be negative) or an RFC 3339 date or
// date-time — `2024-01-01` (midnight UTC), `2024-01-01T12:30:00Z`,
// `2024-01-01T12:30:00.250+02:00` (separator T, t or a space; zone Z, z or
// ±HH:MM; 1 to 9 fraction digits, kept to the millisecond). Years 0000–9999.
// False if `text` is neither.
bool ParseTimeMs(std::string_view text, std::int64_t* out_ms);

const std::vector<CommandSpec>& Commands();
const CommandSpec* FindCommand(std::string_view name);

// Parses the arguments after the command name. Throws CliError (usage) on an
// unknown flag, a missing value or required flag, or the wrong number of
// positional arguments.
ParsedArgs ParseCommandArgs(const CommandSpec& spec, const std::vector<std::string>& args);

// A global option (before the command), as --help, the man page and the
// completions show it.
struct GlobalOptionSpec {
  std::string name;        // "--db"
  std::string alias;       // "-q", or empty
  std::string value_name;  // "DIR", or empty for a switch
  std::string help;
};
const std::vector<GlobalOptionSpec>& GlobalOptionSpecs();

// An exit code and what it means (--help, the man page).
struct ExitCodeSpec {
  int code;
  std::string meaning;
};
const std::vector<ExitCodeSpec>& ExitCodes();

// The --help text: global options and every command.
std::string UsageText();
// `shredkv completion bash|zsh`: a completion script for the shell, from
// the command table (zsh: through bashcompinit). Empty for another shell.
std::string CompletionScript(std::string_view shell);
// `shredkv man`: the manual page (roff, section 1), from the command table.
std::string ManPage(std::string_view version);
// Help of one command.
std::string CommandHelp(const CommandSpec& spec);

}  // namespace shredkv::cli

#endif  // SHREDKV_TOOLS_ARGS_H_
