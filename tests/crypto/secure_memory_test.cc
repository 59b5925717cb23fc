// Memory hygiene of key material: every key lives in memory the kernel
// leaves out of core dumps (VmFlags "dd" in /proc/self/smaps, set by
// MADV_DONTDUMP through sodium_malloc), so a core dump of a crashed process
// holds no key bytes.
#include <gtest/gtest.h>

#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "crypto/secure_memory.h"

namespace shredkv::crypto {
namespace {

struct Mapping {
  std::uintptr_t start = 0;
  std::uintptr_t end = 0;
  std::string vm_flags;  // the VmFlags line
};

// Every mapping of this process with its VmFlags, read once.
std::vector<Mapping> ReadMappings() {
  std::vector<Mapping> out;
  std::ifstream smaps("/proc/self/smaps");
  std::string line;
  while (std::getline(smaps, line)) {
    if (line.rfind("VmFlags:", 0) == 0) {
      if (!out.empty()) out.back().vm_flags = line;
      continue;
    }
    // A mapping's header line starts "start-end perms ..." in hex.
    const std::size_t dash = line.find('-');
    const std::size_t space = line.find(' ');
    if (dash == std::string::npos || space == std::string::npos || dash > space) continue;
    if (line.find_first_not_of("0123456789abcdef") != dash) continue;
    Mapping m;
    m.start = std::stoull(line.substr(0, dash), nullptr, 16);
    m.end = std::stoull(line.substr(dash + 1, space - dash - 1), nullptr, 16);
    out.push_back(m);
  }
  return out;
}

// The VmFlags line of the mapping containing `address`, or "" if none.
std::string VmFlagsOf(const std::vector<Mapping>& mappings, const void* address) {
  const auto target = reinterpret_cast<std::uintptr_t>(address);
  for (const Mapping& m : mappings) {
    if (target >= m.start && target < m.end) return m.vm_flags;
  }
  return "";
}

bool ExcludedFromDumps(const std::string& vm_flags) {
  std::istringstream flags(vm_flags);
  std::string flag;
  while (flags >> flag) {
    if (flag == "dd") return true;
  }
  return false;
}

TEST(SecureMemoryTest, EveryKeyIsInMemoryExcludedFromCoreDumps) {
  ASSERT_TRUE(Init().ok());
  // Enough keys to fill several arena chunks.
  std::vector<SecretKey> keys;
  for (int i = 0; i < 3000; ++i) {
    auto key = SecretKey::Random();
    ASSERT_TRUE(key.ok()) << key.status().ToString();
    keys.push_back(std::move(key).value());
  }
  auto copy = SecretKey::FromBytes(std::string(SecretKey::kSize, 'x'));
  ASSERT_TRUE(copy.ok());
  keys.push_back(std::move(copy).value());
  std::vector<std::uint8_t> heap(1 << 20, 1);
  const std::vector<Mapping> mappings = ReadMappings();
  for (const SecretKey& key : keys) {
    const std::string flags = VmFlagsOf(mappings, key.data());
    ASSERT_NE(flags, "") << "no mapping found for a key";
    ASSERT_TRUE(ExcludedFromDumps(flags)) << flags;
  }
  // The check can fail: ordinary heap memory is dumped.
  const std::string heap_flags = VmFlagsOf(mappings, heap.data());
  ASSERT_NE(heap_flags, "");
  EXPECT_FALSE(ExcludedFromDumps(heap_flags)) << heap_flags;
}

// Review of stop 29 (L4): purge tickets' analytics links, opened from
// their sealed form, were left in freed heap memory. WipedString holds them:
// what it lets go is wiped, and it keeps std::string's value semantics.
TEST(WipedStringTest, BehavesAsAStringAndHandsACalleeAnEmptyOne) {
  const std::string links(48, 'L');  // longer than any small-string buffer
  WipedString a(links);
  WipedString copy = a;
  EXPECT_EQ(copy.str(), links);
  WipedString moved = std::move(a);
  EXPECT_EQ(moved.str(), links);
  EXPECT_TRUE(a.empty());  // NOLINT(bugprone-use-after-move): the moved-from state is the contract
  moved = WipedString(std::string("other"));
  EXPECT_EQ(std::string_view(moved), "other");
  std::string* filled = copy.mutable_str();
  EXPECT_TRUE(filled->empty());  // what was there is wiped before a callee fills it
  filled->assign("x");
  EXPECT_EQ(copy.str(), "x");
}

}  // namespace
}  // namespace shredkv::crypto
