// shredkv — the command-line tool of the shredkv storage engine.
//
//   shredkv [--db DIR] [--key-file FILE] [--pkcs11-...] [--pretty] [--read-only] COMMAND [ARGS]
//
// Output a program reads is JSON on stdout; messages and progress go to
// stderr. Exit codes: 0 ok, 1 other error, 2 usage, 3 not found, 4 erased,
// 5 restricted, 6 suppressed, 7 corruption or authentication failure,
// 8 wrong root key, 9 unsupported format version, 10 store in use by another
// process, 11 read-only store. See `shredkv --help` and tools/shredkv/args.cc.
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <iostream>
#include <new>
#include <set>
#include <string>
#include <vector>

#include "args.h"
#include "progress.h"
#include "cli.h"

namespace {

using shredkv::cli::CliError;
using shredkv::cli::GlobalOptions;

// The store is memory-mapped: a store damaged in a way LMDB does not detect
// may make a read fault, LMDB's own assertions abort on some damaged pages
// (a branch page where a leaf must be, say), and a write to a damaged LMDB
// file may corrupt the heap (glibc then aborts). Report it as corruption (exit 7) rather than
// dying of the signal. Only async-signal-safe calls here.
void OnFault(int sig) {
  const char* msg =
      sig == SIGBUS ? "shredkv: bus error reading the store's memory map: the store files are damaged or truncated "
                      "(run --read-only verify to list the damaged pages; restore from a backup)\n"
      : sig == SIGABRT ? "shredkv: aborted by a consistency check (LMDB's page checks or the allocator's) while "
                         "reading the store: its files are probably damaged (run --read-only verify to list the "
                         "damaged pages; restore from a backup)\n"
                       : "shredkv: memory fault reading the store: the store files are probably corrupt (run "
                         "--read-only verify to list the damaged pages; restore from a backup)\n";
  ssize_t ignored = write(STDERR_FILENO, msg, std::strlen(msg));
  (void)ignored;
  _exit(shredkv::cli::kExitCorruption);
}

void InstallSignalHandlers() {
  // Broken pipes become write errors instead of killing the process.
  signal(SIGPIPE, SIG_IGN);
  // An alternate stack, so a fault from stack exhaustion is reported too.
  static std::vector<char> alt_stack(static_cast<std::size_t>(64 * 1024));
  stack_t ss{};
  ss.ss_sp = alt_stack.data();
  ss.ss_size = alt_stack.size();
  sigaltstack(&ss, nullptr);
  struct sigaction sa {};
  sa.sa_handler = OnFault;
  sa.sa_flags = SA_ONSTACK;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGSEGV, &sa, nullptr);
  sigaction(SIGBUS, &sa, nullptr);
  sigaction(SIGABRT, &sa, nullptr);
}

// One line: no newlines inside messages.
std::string OneLine(std::string s) {
  for (char& c : s) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return s;
}

int Run(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  GlobalOptions global;
  std::size_t i = 0;
  bool have_key = false;
  std::set<std::string> given;  // the global options seen so far
  for (; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a.empty() || a[0] != '-') break;
    if (a == "--help" || a == "-h") {
      std::cout << shredkv::cli::UsageText();
      return 0;
    }
    if (a == "--version" || a == "-V") {
      std::cout << "shredkv " << SHREDKV_VERSION_STRING << "\n";
      return 0;
    }
    // Each at most once, switches too, as cli.md says (outside audit 39a,
    // F9: a repeated switch was taken).
    if (a == "--quiet" || a == "-q" || a == "--pretty" || a == "--read-only") {
      const std::string name = a == "-q" ? "--quiet" : a;
      if (!given.insert(name).second) shredkv::cli::UsageError(name + " given twice");
      if (name == "--quiet") shredkv::cli::SuppressProgress();
      if (name == "--pretty") global.pretty = true;
      if (name == "--read-only") global.read_only = true;
      continue;
    }
    std::string name = a;
    std::string value;
    bool has_value = false;
    if (auto eq = a.find('='); eq != std::string::npos && a.rfind("--", 0) == 0) {
      name = a.substr(0, eq);
      value = a.substr(eq + 1);
      has_value = true;
    }
    if (name != "--db" && name != "--key-file" && name != "--pkcs11-module" && name != "--pkcs11-token" &&
        name != "--pkcs11-pin-file") {
      shredkv::cli::UsageError("unknown global option '" + a + "'");
    }
    if (!has_value) {
      if (i + 1 >= args.size()) shredkv::cli::UsageError(name + " needs a value");
      value = args[++i];
    }
    if (value.empty()) shredkv::cli::UsageError(name + " needs a non-empty value");
    // A second --db (or key, or token) is a mistake to report, not to
    // resolve by order: which store was meant?
    if (!given.insert(name).second) shredkv::cli::UsageError(name + " given twice");
    if (name == "--db") {
      global.db = value;
    } else if (name == "--pkcs11-module") {
      global.pkcs11_module = value;
    } else if (name == "--pkcs11-token") {
      global.pkcs11_token = value;
    } else if (name == "--pkcs11-pin-file") {
      global.pkcs11_pin_file = value;
    } else {
      global.key_file = value;
      have_key = true;
    }
  }
  if (!have_key) {
    if (const char* env = std::getenv("SHREDKV_KEY_FILE"); env != nullptr && *env != '\0') global.key_file = env;
  }
  if (i >= args.size()) {
    std::cerr << shredkv::cli::UsageText();
    return shredkv::cli::kExitUsage;
  }
  const std::string& command = args[i];
  if (command == "help") {
    // `help COMMAND` is `COMMAND --help`; an unknown COMMAND is a usage error.
    if (i + 1 == args.size()) {
      std::cout << shredkv::cli::UsageText();
      return 0;
    }
    if (i + 2 != args.size()) shredkv::cli::UsageError("help takes at most one command");
    if (args[i + 1] == "help" || args[i + 1] == "version") {  // commands of this file, not of the table
      std::cout << shredkv::cli::UsageText();
      return 0;
    }
    const shredkv::cli::CommandSpec* about = shredkv::cli::FindCommand(args[i + 1]);
    if (about == nullptr) shredkv::cli::UsageError("unknown command '" + args[i + 1] + "' (see shredkv --help)");
    std::cout << shredkv::cli::CommandHelp(*about);
    return 0;
  }
  if (command == "version") {
    if (i + 1 != args.size()) shredkv::cli::UsageError("version takes no arguments");
    std::cout << "shredkv " << SHREDKV_VERSION_STRING << "\n";
    return 0;
  }
  const shredkv::cli::CommandSpec* spec = shredkv::cli::FindCommand(command);
  if (spec == nullptr) shredkv::cli::UsageError("unknown command '" + command + "' (see shredkv --help)");
  std::vector<std::string> rest(args.begin() + static_cast<std::ptrdiff_t>(i + 1), args.end());
  shredkv::cli::ParsedArgs parsed = shredkv::cli::ParseCommandArgs(*spec, rest);
  if (parsed.help) {
    std::cout << shredkv::cli::CommandHelp(*spec);
    return 0;
  }
  return shredkv::cli::RunCommand(global, parsed);
}

}  // namespace

int main(int argc, char** argv) {
  InstallSignalHandlers();
  int code = shredkv::cli::kExitError;
  try {
    code = Run(argc, argv);
    shredkv::cli::FlushStdout();
  } catch (const CliError& e) {
    std::cout.flush();
    if (*e.what() != '\0') std::cerr << "shredkv: " << OneLine(e.what()) << std::endl;
    code = e.code();
  } catch (const std::bad_alloc&) {
    std::cerr << "shredkv: out of memory" << std::endl;
    code = shredkv::cli::kExitError;
  } catch (const std::exception& e) {
    std::cerr << "shredkv: " << OneLine(e.what()) << std::endl;
    code = shredkv::cli::kExitError;
  } catch (...) {
    std::cerr << "shredkv: unexpected error" << std::endl;
    code = shredkv::cli::kExitError;
  }
  return code;
}
