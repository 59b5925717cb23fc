// Test helper for tests/cli/cli_test.cc: makes a store (at argv[1], root key
// file argv[2]) whose retention rule for page_view was given after 1,500
// page_view events from 2020 were written, at an Open (which records the
// time index back-fill and leaves it to the next Sweep) — the state a
// `retention --set` killed mid back-fill leaves.
#include <cstdio>
#include <string>

#include "shredkv/shredkv.h"

int main(int argc, char** argv) {
  using namespace shredkv;
  if (argc != 3) return 2;
  if (Status k = CreateKeyFile(argv[2]); !k.ok()) return 1;
  Options o;
  o.directory = argv[1];
  o.create_if_missing = true;
  o.key_provider = NewFileKeyProvider(argv[2]);
  o.durability = Durability::kNoSync;
  {
    auto store = Store::Open(o);
    if (!store.ok()) return 1;
    auto id = (*store)->CreatePerson({{"email", "ann@example.org"}}, {});
    if (!id.ok()) return 1;
    WriteBatch batch;
    for (int i = 0; i < 1500; ++i) batch.AppendEvent(*id, Event{"page_view", 1'577'836'800'000 + i, {}, {}});
    if (!(*store)->Write(batch).ok()) return 1;
  }
  o.create_if_missing = false;
  o.retention = RetentionRules{};
  o.retention->events["page_view"] = 30ll * 24 * 3600 * 1000;
  auto store = Store::Open(o);
  if (!store.ok()) return 1;
  auto stats = (*store)->Stats();
  if (!stats.ok() || !stats->retention_backfill_pending) return 1;
  std::puts("ok");
  return 0;
}
