// Test helper for tests/cli/cli_test.cc: makes a store (at argv[1], root key
// file argv[2]) holding two erasures made under clocks far off — one in the
// year 10000 and one before the year 0, times ISO 8601 cannot print — and
// one at an ordinary time (outside audit 38b, F5: `report` failed on them).
#include <cstdint>
#include <cstdio>
#include <limits>
#include <string>

#include "shredkv/shredkv.h"

int main(int argc, char** argv) {
  using namespace shredkv;
  if (argc != 3) return 2;
  if (Status k = CreateKeyFile(argv[2]); !k.ok()) return 1;
  static std::int64_t now = 1'700'000'000'000;
  Options o;
  o.directory = argv[1];
  o.create_if_missing = true;
  o.key_provider = NewFileKeyProvider(argv[2]);
  o.durability = Durability::kNoSync;
  o.clock = [] { return now; };
  auto store = Store::Open(o);
  if (!store.ok()) return 1;
  const std::int64_t times[] = {253'402'300'800'000 + 1, std::numeric_limits<std::int64_t>::min(),
                                1'700'000'000'000};
  int i = 0;
  for (const std::int64_t at : times) {
    auto id = (*store)->CreatePerson({{"email", "p" + std::to_string(i++) + "@example.org"}}, {});
    if (!id.ok()) return 1;
    now = at;
    if (!(*store)->Erase({*id}).ok()) return 1;
    now = 1'700'000'000'000;
  }
  std::puts("ok");
  return 0;
}
