// Personal data never reaches the store's files in the clear: canary
// identifiers and attribute values are searched byte for byte in every file
// of the store directory, also lower-cased, upper-cased and as UTF-16.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>

#include "test_util.h"

namespace shredkv {
namespace {

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}
std::string Upper(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  return s;
}
std::string Utf16(const std::string& s, bool big_endian) {
  std::string out;
  for (char c : s) {
    if (big_endian) out.push_back('\0');
    out.push_back(c);
    if (!big_endian) out.push_back('\0');
  }
  return out;
}

class PlaintextScanTest : public test::StoreTest {};

TEST_F(PlaintextScanTest, NoCanaryAppearsInAnyFile) {
  const std::vector<std::string> canaries = {
      "CanaryEmail7731@Example.org", "+4917099887766", "CANARY-CUST-5511", "canary-device-e1f0",
      "Zebulon Canaryname", "Canarystrasse 12, Berlin", "canary-order-key-991", "canary-record-value-xq",
      "canary-event-property-yy"};
  // Event names are not personal: they are copied to analytics rows in the
  // clear by design (with the time and the declared fields).
  options_.durability = Durability::kFullSync;
  Reopen();
  auto id = store_->CreatePerson({{"email", canaries[0]},
                                  {"phone", canaries[1]},
                                  {"customer_id", canaries[2]},
                                  {"device_id", canaries[3]}},
                                 {{"name", canaries[4]}, {"address", canaries[5]}});
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  SKV_ASSERT_OK(store_->Put(*id, "orders", canaries[6], canaries[7]));
  SKV_ASSERT_OK(store_->AppendEvent(*id, Event{"purchase", 1, {{"note", canaries[8]}}, {}}));
  SKV_ASSERT_OK(store_->PatchProfile(*id, ProfilePatch{{{"nickname", canaries[4] + " Jr"}}, {}}));
  SKV_ASSERT_OK(store_->Close());
  store_.reset();

  std::vector<std::string> needles;
  for (const std::string& c : canaries) {
    for (const std::string& v : {c, Lower(c), Upper(c)}) {
      needles.push_back(v);
      needles.push_back(Utf16(v, false));
      needles.push_back(Utf16(v, true));
    }
  }
  needles.push_back("4917099887766");  // the phone digits alone
  const auto files = test::FilesUnder(dir_.path());
  ASSERT_GE(files.size(), 2u);
  for (const std::string& file : files) {
    const std::string bytes = test::ReadFile(file);
    for (const std::string& needle : needles) {
      EXPECT_EQ(bytes.find(needle), std::string::npos) << "found canary \"" << needle << "\" in " << file;
    }
  }
}

}  // namespace
}  // namespace shredkv
