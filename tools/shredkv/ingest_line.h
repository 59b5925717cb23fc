// shredkv ingest: parsing one NDJSON operation line (see ingest.cc for the
// format). Kept apart from the ingester so the parser can be linked on its own
// (fuzz/fuzz_ndjson.cc) without the rest of the command-line tool.
// Thread safety: stateless.
#ifndef SHREDKV_TOOLS_INGEST_LINE_H_
#define SHREDKV_TOOLS_INGEST_LINE_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "shredkv/shredkv.h"

namespace shredkv::cli {

enum class IngestOp { kProfile, kEvent, kPut };

// One parsed operation line.
struct IngestLine {
  std::size_t number = 0;
  IngestOp kind = IngestOp::kProfile;
  std::vector<Identifier> ids;  // normalised, without duplicates
  ProfilePatch patch;           // profile: set and unset (null) attributes
  Event event;
  std::string collection, key, value;
  RecordMetadata metadata;  // put: the optional "metadata" object
  // The input's byte offset just past this line (its newline included): set
  // by the reader, not by ParseIngestLine; `ingest --resume` commits it.
  std::uint64_t end_offset = 0;
};

// Parses line `number` (1-based, kept in the result) of an ingest stream.
// `now_ms` gives the time of an event line without "ts". InvalidArgument
// naming the problem for anything malformed: not JSON, not an object, an
// unknown op, bad identifiers (NormalizeIdentifier's rules), bad attribute
// values, missing or mistyped fields. Never throws.
Result<IngestLine> ParseIngestLine(const std::string& text, std::size_t number,
                                   std::int64_t (*now_ms)());

}  // namespace shredkv::cli

#endif  // SHREDKV_TOOLS_INGEST_LINE_H_
