// The migration of a format-2 `data` environment to format 3's layout
// (docs/format.md §11), in bounded, resumable transactions, and the step
// from format 3 to 4 (a version mark).
#ifndef SHREDKV_ENGINE_MIGRATION_H_
#define SHREDKV_ENGINE_MIGRATION_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "engine/context.h"

namespace shredkv::engine {

// The resume state in data meta `migration_v3`: u8(phase) ‖ lp(resume key).
struct MigrationState {
  static constexpr std::uint8_t kPhaseEvents = 1;     // walking `events`
  static constexpr std::uint8_t kPhaseLeftovers = 2;  // walking `analytics` for format-2 keys
  std::uint8_t phase = kPhaseEvents;
  std::string resume;  // the first key not yet handled in the phase's table
};
std::string EncodeMigrationState(const MigrationState& s);
// Corruption unless `in` is exactly what EncodeMigrationState writes for a
// known phase.
Status DecodeMigrationState(std::string_view in, MigrationState* s);

// At open, after the erasures a crash cut short were recovered: brings
// `data` to kDataFormatVersion. Format 2 is migrated (the format-3 layout;
// progress as Options::progress("migrate", done, total)); format 3 only has
// its version marked 4, in one transaction (its records carry no write time
// and keep their time index entries, which format 4 reads). No-op at 4.
// REQUIRES: no call is served yet; a writable open.
Status MigrateData(EngineContext& ctx);

}  // namespace shredkv::engine

#endif  // SHREDKV_ENGINE_MIGRATION_H_
