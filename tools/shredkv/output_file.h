// shredkv command-line tool: the files commands write where --out says
// (report, erasure-log). A command replaces only a file it wrote itself, and
// never writes into the store directory.
#ifndef SHREDKV_TOOLS_OUTPUT_FILE_H_
#define SHREDKV_TOOLS_OUTPUT_FILE_H_

#include <sys/types.h>

#include <functional>
#include <ostream>
#include <string>
#include <string_view>

#include "cli.h"

namespace shredkv::cli {

// Whether `path` is the store directory of --db or inside it (symlinks
// resolved, the path need not exist yet).
bool InsideStoreDirectory(const GlobalOptions& global, const std::string& path);

// Refuses `path` as `command`'s --out: inside the store directory (symlinks
// resolved; a usage error, exit 2: it would replace one of the store's files
// or travel with the store), or an existing file that does not begin with
// `own_head`, the first bytes of what `command` writes (exit 1: a key file,
// a copy of a store file, anything else is never replaced). `what` names the
// command's output in the message ("report", "erasure log").
void CheckOutputTarget(const GlobalOptions& global, const std::string& path, std::string_view command,
                       std::string_view own_head, std::string_view what);

// Writes `path` whole or not at all: `write` fills a new file created beside
// it under a name no other file has, with permissions `mode` (less the
// umask), written and fsynced through its descriptor; it is renamed over
// `path` if its name still names it, and the directory fsynced. On any
// failure (CliError, exit 1, naming `command`) the new file is removed and
// `path` is left as it was.
void ReplaceFile(const std::string& path, std::string_view command, mode_t mode,
                 const std::function<void(std::ostream&)>& write);

}  // namespace shredkv::cli

#endif  // SHREDKV_TOOLS_OUTPUT_FILE_H_
