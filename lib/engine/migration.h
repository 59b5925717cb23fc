// The migration of a format-2 `data` environment to format 3 (docs/format.md
// §11), in bounded, resumable transactions.
#ifndef SHREDKV_ENGINE_MIGRATION_H_
#define SHREDKV_ENGINE_MIGRATION_H_

#include "engine/context.h"

namespace shredkv::engine {

// At open, after the erasures a crash cut short were recovered: migrates
// `data` to format 3 if it is at format 2 (no-op otherwise). Reports
// progress as Options::progress("migrate", done, total).
// REQUIRES: no call is served yet.
Status MigrateDataToV3(EngineContext& ctx);

}  // namespace shredkv::engine

#endif  // SHREDKV_ENGINE_MIGRATION_H_
