// shredkv command-line tool: what the commands share — exit codes, the error
// type that carries one, global options and opening the store.
#ifndef SHREDKV_TOOLS_CLI_H_
#define SHREDKV_TOOLS_CLI_H_

#include <atomic>
#include <iostream>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>

#include "args.h"
#include "shredkv/shredkv.h"

namespace shredkv::cli {

// Exit codes (the tool's contract).
enum ExitCode : int {
  kExitOk = 0,
  kExitError = 1,         // any other error
  kExitUsage = 2,         // bad command line
  kExitNotFound = 3,
  kExitErased = 4,
  kExitRestricted = 5,
  kExitSuppressed = 6,
  kExitCorruption = 7,    // corruption or authentication failure
  kExitWrongKey = 8,      // the root key does not open the store
  kExitUnsupportedVersion = 9,  // the store's format is newer than this tool
  kExitInUse = 10,        // another process has the store open
  kExitReadOnly = 11,     // the store's directory or files cannot be written
  kExitKeyDestroyed = 12, // a key the store or backup needs was destroyed in its custody
};

// The exit code of a failed store call.
int ExitCodeFor(const Status& status);

// Thrown by commands; main() prints the message on one line of stderr and
// exits with the code.
class CliError : public std::runtime_error {
 public:
  CliError(int code, const std::string& message) : std::runtime_error(message), code_(code) {}
  int code() const { return code_; }

 private:
  int code_;
};

[[noreturn]] void UsageError(const std::string& message);
[[noreturn]] void Fail(const Status& status, std::string_view context = {});
inline void Check(const Status& status, std::string_view context = {}) {
  if (!status.ok()) Fail(status, context);
}
template <typename T>
T Check(Result<T> result, std::string_view context = {}) {
  if (!result.ok()) Fail(result.status(), context);
  return std::move(result).value();
}

// Options given before the command.
struct GlobalOptions {
  std::string db;        // --db
  std::string key_file;  // --key-file or $SHREDKV_KEY_FILE
  bool pretty = false;   // --pretty: indent single JSON documents
  bool read_only = false;  // --read-only: open the store without writing anything
  // PKCS#11 custody of epoch keys: --pkcs11-module, --pkcs11-token and the
  // PIN from --pkcs11-pin-file or $SHREDKV_PKCS11_PIN. Empty module: none.
  std::string pkcs11_module;
  std::string pkcs11_token;
  std::string pkcs11_pin_file;
};

// The custody the global options name, or null (usage error if only part
// of it is given; exit 8 if the token refuses the PIN).
std::shared_ptr<EpochKeyCustody> OpenCustody(const GlobalOptions& global);

// What a command does with the store it opens.
enum class StoreAccess {
  kWrite,  // may write: a writable open (usage error with --read-only)
  kRead,   // reads only: with --read-only, or when the store cannot be
           // written (ReadOnly), a read-only open (Options::read_only)
  kReadBesideWriter,  // as kRead, and also read-only when another process
                      // has the store open to write (backup, erasure-log)
};

// True if `dir` holds a sharded store (its SHARDS file).
bool IsShardedStoreDir(const std::string& dir);

// The store a command opened: a Store, or — for the commands that work on a
// sharded store as a whole (docs/cli.md, "Sharded stores") when --db holds
// one — the ShardedStore over its shards.
class OpenedStore {
 public:
  explicit OpenedStore(std::unique_ptr<Store> store) : plain_(std::move(store)) {}
  explicit OpenedStore(std::unique_ptr<ShardedStore> store) : sharded_(std::move(store)) {}

  bool sharded() const { return sharded_ != nullptr; }
  // Calls `f` with the Store& or the ShardedStore&: `f` is generic, and both
  // of its instantiations must return the same type.
  template <typename F>
  decltype(auto) Visit(F&& f) {
    if (sharded_) return f(*sharded_);
    return f(*plain_);
  }
  Status Close() {
    return Visit([](auto& store) { return store.Close(); });
  }

 private:
  std::unique_ptr<Store> plain_;
  std::unique_ptr<ShardedStore> sharded_;
};

// True while `S` is the ShardedStore (for `if constexpr` in Visit's callers).
template <typename S>
inline constexpr bool kIsSharded = std::is_same_v<std::remove_cvref_t<S>, ShardedStore>;

// Opens the store named by the global options (usage error without --db or
// a key). `init` creates it. A sharded store's directory is exit 1 here
// (RunCommand names the per-shard alternative first).
std::unique_ptr<Store> OpenStore(const GlobalOptions& global, bool create,
                                 std::optional<RetentionRules> retention = std::nullopt,
                                 StoreAccess access = StoreAccess::kWrite);
// OpenStore for a command that only reads.
inline std::unique_ptr<Store> OpenStoreToRead(const GlobalOptions& global) {
  return OpenStore(global, false, std::nullopt, StoreAccess::kRead);
}
// OpenStore, or when --db holds a sharded store, ShardedStore::Open of it
// (with the stored shard count; `shard_count` to create one with `init`).
OpenedStore OpenAnyStore(const GlobalOptions& global, StoreAccess access = StoreAccess::kWrite, bool create = false,
                         std::optional<RetentionRules> retention = std::nullopt, std::uint32_t shard_count = 0);
// Parses retention rules: comma-separated `event:NAME=AGE`,
// `collection:NAME=AGE`, `analytics=AGE`, `feed=AGE` (change-feed
// notices, RetentionRules::feed); AGE is an integer with a unit
// ms, s, m, h, d or y (365 d). Usage error if malformed.
RetentionRules ParseRetention(const std::vector<std::string>& specs);
// The input of ingest/import: a file named by the first positional argument,
// or stdin for none or "-". `size` is the file's size when known, else 0.
struct InputFile {
  std::unique_ptr<std::ifstream> file;
  std::istream* stream = &std::cin;
  std::uint64_t size = 0;
  std::string name = "-";
};
InputFile OpenInput(const ParsedArgs& args, const char* command);

class ProgressBar;
extern std::atomic<ProgressBar*> g_engine_progress;

// "TYPE:VALUE", split at the first ':'. Usage error if malformed.
Identifier ParseIdentifierArg(std::string_view text);

// The person named by --id: TYPE:VALUE is resolved; the pseudo type
// person_id (or person) takes a 32-hex-digit person ID as is. `S`: Store
// or ShardedStore.
template <typename S>
PersonId ResolvePerson(S& store, const Identifier& id) {
  if (id.type == "person_id" || id.type == "person") {
    auto pid = PersonId::FromHex(id.value);
    if (!pid.ok()) UsageError("--id person_id:HEX needs 32 hex digits");
    Check(store.GetPerson(*pid).status(), "person " + id.value);
    return *pid;
  }
  return Check(store.Resolve(id), "--id " + id.type);
}

// Milliseconds since the epoch, now.
std::int64_t NowMs();

// Runs one command (everything after the global options). Returns the exit code.
int RunCommand(const GlobalOptions& global, const ParsedArgs& args);

// Writes `text` and a newline to stdout; CliError if stdout fails.
void PrintLine(std::string_view text);
void FlushStdout();

// Commands implemented in their own files.
int CmdIngest(const GlobalOptions& global, const ParsedArgs& args);
int CmdSample(const GlobalOptions& global, const ParsedArgs& args);
int CmdReport(const GlobalOptions& global, const ParsedArgs& args);

}  // namespace shredkv::cli

#endif  // SHREDKV_TOOLS_CLI_H_
