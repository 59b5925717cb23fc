#include "engine/data_rows.h"

#include <algorithm>

#include "codec/sealed.h"

namespace shredkv::engine {

Status CheckProgressName(std::string_view name) {
  constexpr std::size_t kMaxProgressName = 64;
  const auto allowed = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
           c == ':' || c == '-';
  };
  if (name.empty() || name.size() > kMaxProgressName || !std::all_of(name.begin(), name.end(), allowed)) {
    return Status::InvalidArgument("a progress name is 1 to 64 characters of A-Z a-z 0-9 . _ : - (names are kept "
                                   "in the clear: never an identifier)");
  }
  return Status::OK();
}

std::string ProgressKey(std::string_view name) {
  std::string key(kProgressKeyPrefix);
  key.append(name);
  return key;
}

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
