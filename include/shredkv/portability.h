// shredkv — the portability export format (GDPR Art. 15 and 20): writing a
// person's export as JSON or NDJSON, and importing such an export into a
// store. The format is documented in docs/export-format.md and described by
// docs/export-schema.json (schema version 1).
// Thread safety: the functions use the Store's own thread safety; streams
// are used by one thread.
#ifndef SHREDKV_PORTABILITY_H_
#define SHREDKV_PORTABILITY_H_

#include <cstdint>
#include <istream>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>

#include "shredkv/store.h"
#include "shredkv/visibility.h"

namespace shredkv {

class ShardedStore;  // shredkv/sharded_store.h

inline constexpr int kExportFormatVersion = 1;

enum class ExportFormat : std::uint8_t {
  kJson,    // one JSON document
  kNdjson,  // one JSON object a line: header, then one line per item
};

// Streams the export of `items` to `out` with memory bounded by one item
// plus the iterator's batch.
// Returns the iterator's error (then the output is incomplete and must be
// discarded) or IOError if the stream fails.
SHREDKV_EXPORT Status WriteExport(Iterator<ExportItem>& items, ExportFormat format, std::ostream& out,
                   std::int64_t exported_at_ms);

// Convenience: Export(id) written to `out`.
SHREDKV_EXPORT Status ExportPerson(Store& store, const PersonId& id, ExportFormat format, std::ostream& out);
// The same for a person of a sharded store (ShardedStore::Export).
SHREDKV_EXPORT Status ExportPerson(ShardedStore& store, const PersonId& id, ExportFormat format, std::ostream& out);

// What the imported person holds: distinct identifiers after
// normalisation, events, and distinct records (an identifier or a record
// (collection, key) listed twice is stored once, the later record wins).
struct ImportResult {
  PersonId person;  // the new person: new ID, new key, new anonymous ID
  std::uint64_t identifiers = 0;
  std::uint64_t events = 0;
  std::uint64_t records = 0;
};

// How ImportPerson treats what the file says beyond the person's own data.
struct ImportOptions {
  // What each imported event writes into its analytics row, in the clear
  // and kept after the person's erasure (write_batch.h). The default,
  // kAnonymous, writes the name "imported" and no field: the file's event
  // names and declared analytics fields are someone else's choice (outside
  // audit 36a, F3). kAsExported keeps them: for exports of your own stores.
  ImportedAnalytics analytics = ImportedAnalytics::kAnonymous;
};

// Imports one export as a new person, in one atomic batch: on any error
// nothing is written. Errors: InvalidArgument naming the line (NDJSON) or
// JSON path of a malformed item, or for an NDJSON stream without its end
// line (truncated); AlreadyExists / Suppressed if an identifier is taken or
// suppressed in this store (these name the batch operation, not the line).
// Memory grows with the export: it is read whole and written in one
// transaction.
// The file's identifiers become the new person's as they are: an import
// proves no one owns them (verify them before relying on them, as for any
// identifier a person gives); its consent decisions are replayed, grants
// included (docs/export-format.md, "Importing someone's file"). ImportOptions{}
// unless given.
SHREDKV_EXPORT Result<ImportResult> ImportPerson(Store& store, std::istream& in, ExportFormat format);
SHREDKV_EXPORT Result<ImportResult> ImportPerson(Store& store, std::istream& in, ExportFormat format,
                                                 const ImportOptions& options);
// The same into a sharded store: one ShardedStore::Write, so the person
// goes to the shard their new ID routes to and the identifiers are checked
// against every shard (since stop 40).
SHREDKV_EXPORT Result<ImportResult> ImportPerson(ShardedStore& store, std::istream& in, ExportFormat format,
                                                 const ImportOptions& options = {});

// The byte encodings the export format uses, for tools that read or write it:
// standard base64 with padding (RFC 4648), and UTF-8 validity (no overlongs,
// no surrogates).
// The erasure log (include/shredkv/backup.h) as NDJSON, documented in
// docs/backup.md: a header line {"shredkv_erasure_log":1,"store_id":...},
// one line an entry: {"kind":"person",...}, {"kind":"category",...},
// {"kind":"suppressed",...}, and an end line counting them
// {"end":true,"people":N,"categories":N,"suppressed":N}. IOError if the
// stream fails.
SHREDKV_EXPORT Status WriteErasureLog(const ErasureLog& log, std::ostream& out);
// InvalidArgument naming the line for anything malformed (an unknown kind,
// a bad person ID or hash, a missing field, no header) and for a log cut
// short (no end line, or counts that do not match).
SHREDKV_EXPORT Result<ErasureLog> ReadErasureLog(std::istream& in);

SHREDKV_EXPORT std::string Base64Encode(std::string_view bytes);
SHREDKV_EXPORT std::optional<std::string> Base64Decode(std::string_view text);  // nullopt if malformed
SHREDKV_EXPORT bool IsValidUtf8(std::string_view text);

}  // namespace shredkv

#endif  // SHREDKV_PORTABILITY_H_
