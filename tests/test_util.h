// Helpers shared by the tests: temporary directories and test stores.
#ifndef SHREDKV_TESTS_TEST_UTIL_H_
#define SHREDKV_TESTS_TEST_UTIL_H_

#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "shredkv/shredkv.h"

namespace shredkv::test {

// A fresh directory under $TMPDIR, removed with everything in it on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string Sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// A fixed 32-byte test key ("k" repeated, or a different fill byte).
std::string TestKeyBytes(char fill = 'k');

// Options for a store in `dir` with the test key; no fsync (tests only).
Options TestOptions(const std::string& dir, char key_fill = 'k');

// Every regular file under `dir`, recursively.
std::vector<std::string> FilesUnder(const std::string& dir);
std::string ReadFile(const std::string& path);
void WriteFile(const std::string& path, const std::string& data);

// The byte offset, in `file_bytes` (an LMDB 0.9 data file of a 64-bit
// build), of the root page of table `table` as the file's current meta page
// records it; 0 if the table is absent or empty, or the file too short. For
// tests that damage a chosen tree.
std::size_t LmdbTableRootOffset(const std::string& file_bytes, std::string_view table);
// The byte offset of table `table`'s MDB_db record (flags at +4, depth at +6,
// counts from +8, root at +40) in the table directory; 0 if absent.
std::size_t LmdbTableRecordOffset(const std::string& file_bytes, std::string_view table);

// Runs `body` in a forked child that is killed with SIGKILL at engine test
// point `point` (lib/util/test_point.h) after `hits` passes. Returns true if
// the child died by SIGKILL (false: it never reached the point).
bool RunChildKilledAt(const std::string& point, int hits, const std::function<void()>& body);

// Creates a store of `options` holding 50 people (customer_id "0".."49",
// profile {"i": i}) written in one batch, and erases the first; returns
// them, or an empty vector if a step failed. For rotation crash tests.
std::vector<PersonId> FiftyPeopleFirstErased(const Options& options);
// Success if every person of FiftyPeopleFirstErased but the first reads
// back its profile and the first is Erased.
::testing::AssertionResult FiftyPeopleRead(Store& store, const std::vector<PersonId>& people);

// Milliseconds since the epoch, now.
std::int64_t NowMs();

// How much harder concurrency tests push: 1 by default (CI), 10 when the
// environment variable SHREDKV_STRESS is 1 (more threads and rounds, for
// runs outside CI, under TSan or under load).
int StressFactor();

// Success if Store::Verify runs and finds nothing; else the first problem.
// Use as EXPECT_TRUE(test::VerifiesClean(store)).
::testing::AssertionResult VerifiesClean(Store& store);

// ASSERT-style helpers.
#define SKV_ASSERT_OK(expr)                                   \
  do {                                                        \
    const ::shredkv::Status _s = (expr);                      \
    ASSERT_TRUE(_s.ok()) << #expr << ": " << _s.ToString();  \
  } while (0)
#define SKV_EXPECT_OK(expr)                                   \
  do {                                                        \
    const ::shredkv::Status _s = (expr);                      \
    EXPECT_TRUE(_s.ok()) << #expr << ": " << _s.ToString();  \
  } while (0)

// Fixture with one open store in a temp directory.
class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override { Reopen(); }
  void TearDown() override { store_.reset(); }
  // Closes (if open) and opens the store again with options_.
  void Reopen();
  Options options_;
  TempDir dir_;
  std::unique_ptr<Store> store_;

  // Creates a person with one email identifier.
  PersonId MakePerson(const std::string& email, Attributes profile = {});
};

}  // namespace shredkv::test

#endif  // SHREDKV_TESTS_TEST_UTIL_H_
