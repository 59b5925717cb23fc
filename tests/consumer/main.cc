// Uses an installed shredkv: opens a store in a temporary directory, creates a
// person, resolves them by email and prints OK. Exit status 0 on success.
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string>

#include "shredkv/shredkv.h"

namespace {

int Fail(const char* what, const shredkv::Status& s) {
  std::fprintf(stderr, "consumer: %s: %s\n", what, s.ToString().c_str());
  return 1;
}

int Run(const std::string& dir) {
  shredkv::Options options;
  options.directory = dir + "/store";
  options.create_if_missing = true;
  options.durability = shredkv::Durability::kNoSync;
  options.key_provider = shredkv::NewRawKeyProvider(std::string(32, '\x5a'));

  auto store = shredkv::Store::Open(std::move(options));
  if (!store.ok()) return Fail("Open", store.status());

  auto id = (*store)->CreatePerson({{"email", "consumer@example.org"}}, {{"name", "Consumer"}});
  if (!id.ok()) return Fail("CreatePerson", id.status());

  auto found = (*store)->Resolve({"email", " Consumer@Example.ORG "});
  if (!found.ok()) return Fail("Resolve", found.status());
  if (*found != *id) {
    std::fprintf(stderr, "consumer: Resolve returned %s, expected %s\n", found->ToHex().c_str(),
                 id->ToHex().c_str());
    return 1;
  }
  if (auto s = (*store)->Close(); !s.ok()) return Fail("Close", s);

  std::printf("OK shredkv %s person %s\n", SHREDKV_VERSION_STRING, id->ToHex().c_str());
  return 0;
}

}  // namespace

int main() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "shredkv-consumer-XXXXXX").string();
  if (::mkdtemp(tmpl.data()) == nullptr) {
    std::perror("consumer: mkdtemp");
    return 1;
  }
  const int rc = Run(tmpl);
  std::error_code ec;
  std::filesystem::remove_all(tmpl, ec);
  return rc;
}
