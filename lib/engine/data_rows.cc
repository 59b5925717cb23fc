#include "engine/data_rows.h"

#include "codec/sealed.h"

namespace shredkv::engine {

Result<std::vector<std::string>> KeysWithPrefix(storage::ReadTxn& txn, storage::Table table,
                                                std::string_view prefix, std::uint64_t limit) {
  std::vector<std::string> out;
  auto cursor = txn.OpenCursor(table);
  if (!cursor.ok()) return cursor.status();
  auto& c = **cursor;
  Status m = c.Seek(prefix);
  for (; m.ok() && c.Valid() && out.size() < limit; m = c.Next()) {
    if (c.key().substr(0, prefix.size()) != prefix) break;
    out.emplace_back(c.key());
  }
  if (!m.ok()) return m;
  return out;
}

}  // namespace shredkv::engine
