// Test helper for tests/cli/cli_test.cc: makes a sharded store of two
// shards (at argv[1], root key file argv[2], which it creates) holding one
// person, ann@example.org, created through the ShardedStore. The CLI opens
// its shard directories (argv[1]/shard-000, -001) one at a time.
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
  auto store = ShardedStore::Open(o, 2);
  if (!store.ok()) return 1;
  if (!(*store)->CreatePerson({{"email", "ann@example.org"}}, {{"name", std::string("Ann")}}).ok()) return 1;
  return (*store)->Close().ok() ? 0 : 1;
}
