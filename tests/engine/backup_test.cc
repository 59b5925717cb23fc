// Online backup and restore, the erasure log, and root-key rotation
// (include/shredkv/backup.h, docs/backup.md). Custody (PKCS#11) cases are in
// custody_test.cc.
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <optional>
#include <set>
#include <sstream>
#include <thread>

#include "codec/row_codec.h"
#include "engine/store_impl.h"
#include "storage/environment.h"
#include "test_util.h"
#include "util/checksum.h"
#include "util/coding.h"
#include "util/test_point.h"

namespace shredkv {
namespace {

namespace fs = std::filesystem;

RestoreOptions WithLog(const ErasureLog& log) {
  RestoreOptions r;
  r.erasure_log = &log;
  return r;
}

class BackupTest : public test::StoreTest {
 protected:
  Options RestoreTo(const std::string& dir) {
    Options o = options_;
    o.directory = dir;
    o.create_if_missing = false;
    return o;
  }
  // Restores the backup `backup` into `dir` with `log`, which must erase
  // one person again: `person`, whose record notes/n is then Erased there.
  void ExpectRestoredErasingAgain(const std::string& backup, const std::string& dir, const ErasureLog& log,
                                  const PersonId& person) {
    auto restored = RestoreBackup(backup, RestoreTo(dir), WithLog(log));
    ASSERT_TRUE(restored.ok()) << restored.status().ToString();
    EXPECT_EQ(restored->applied.people_erased, 1u);
    auto r = Store::Open(RestoreTo(dir));
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_TRUE((*r)->Get(person, "notes", "n").status().IsErased());
  }
  test::TempDir out_;  // backups and restored copies, outside the store
};

// Issue 18 review item 5: a rotation whose keys-file swap a reader process
// held off (Busy after 30 s) left the rebuild pending, and its erasures only
// logical, until the next rotation or open. Maintenance now finishes it.
TEST_F(BackupTest, MaintenanceFinishesARebuildAReaderHeldOff) {
  const PersonId gone = MakePerson("held@x.org", {{"name", "H"}});
  const PersonId kept = MakePerson("kept-held@x.org", {{"name", "K"}});
  EraseOptions eo;
  eo.request_id = "held-off";
  SKV_ASSERT_OK(store_->Erase(gone, eo).status());
  // A live reader beside the writer: a shared lock on READERS, as a
  // read-only open in another process takes (flock: another open file
  // description conflicts also within this process).
  const std::string readers = dir_.path() + "/READERS";
  int fd = ::open(readers.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::flock(fd, LOCK_SH), 0);
  auto rotated = store_->RotateEpoch();  // waits 30 s for the reader
  ::close(fd);                           // the reader leaves
  ASSERT_EQ(rotated.status().code(), StatusCode::kBusy) << rotated.status().ToString();
  auto before = store_->GetErasure("held-off");
  ASSERT_TRUE(before.ok());
  EXPECT_FALSE(before->cryptographic);  // the old epoch's key may sit in a free page

  SKV_ASSERT_OK(store_->RunMaintenance());
  auto after = store_->GetErasure("held-off");
  ASSERT_TRUE(after.ok());
  EXPECT_TRUE(after->cryptographic);
  EXPECT_GE(static_cast<int>(after->level), static_cast<int>(ErasureLevel::kCryptographic));
  EXPECT_EQ(store_->GetProfile(kept)->at("name").as_string(), "K");
  EXPECT_TRUE(test::VerifiesClean(*store_));
}

// The key pool (architecture.md §4a): a backup holds the pool keys its
// people claimed and none of the free ones, which the store hands to people
// created later — a backup must not hold their keys, nor a copy restored
// from it share them with the store.
TEST_F(BackupTest, ABackupHoldsNoKeyOfAPersonCreatedAfterIt) {
  const PersonId before = MakePerson("before@x.org", {{"name", "B"}});  // its key: a claimed pool row
  auto* impl = dynamic_cast<engine::StoreImpl*>(store_.get());
  ASSERT_NE(impl, nullptr);
  ASSERT_GT(impl->key_store().free_pooled_keys(), 0u);
  auto info = store_->Backup(out_.Sub("b"));
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  const PersonId after = MakePerson("after@x.org", {{"name", "A"}});  // a pool key free at the backup
  const std::optional<std::uint64_t> index = impl->key_store().ClaimForTesting(after);
  ASSERT_TRUE(index.has_value());
  std::string pool_key;
  util::PutFixed64BE(&pool_key, *index);
  auto wrapped = impl->key_store().RawRowForTesting("pool", pool_key);
  ASSERT_TRUE(wrapped.ok()) << wrapped.status().ToString();
  auto dek = impl->key_store().GetDek(after);
  ASSERT_TRUE(dek.ok());
  const std::string raw((*dek)->view());
  ASSERT_NE(test::ReadFile(dir_.path() + "/keys/data.mdb").find(*wrapped), std::string::npos) << "the scan works";
  for (const std::string& f : test::FilesUnder(out_.Sub("b"))) {
    const std::string bytes = test::ReadFile(f);
    EXPECT_EQ(bytes.find(*wrapped), std::string::npos) << f << " holds the later person's wrapped key";
    EXPECT_EQ(bytes.find(raw), std::string::npos) << f << " holds the later person's key";
  }
  auto log = store_->ReadErasureLog();
  ASSERT_TRUE(log.ok());
  auto restored = RestoreBackup(out_.Sub("b"), RestoreTo(out_.Sub("r")), WithLog(*log));
  ASSERT_TRUE(restored.ok()) << restored.status().ToString();
  auto r = Store::Open(RestoreTo(out_.Sub("r")));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ((*r)->GetProfile(before)->at("name").as_string(), "B");
  EXPECT_TRUE((*r)->Resolve({"email", "after@x.org"}).status().IsNotFound());
  EXPECT_EQ(dynamic_cast<engine::StoreImpl*>(r->get())->key_store().free_pooled_keys(), 0u);
  EXPECT_TRUE(test::VerifiesClean(**r));
}

TEST_F(BackupTest, ABackupRestoresEveryoneAndTheirData) {
  const PersonId a = MakePerson("a@x.org", {{"name", "A"}});
  const PersonId b = MakePerson("b@x.org", {{"name", "B"}});
  for (int i = 0; i < 20; ++i) SKV_ASSERT_OK(store_->AppendEvent(a, Event{"view", 1000 + i, {}, {}}));
  SKV_ASSERT_OK(store_->Put(b, "settings", "theme", "dark"));
  auto info = store_->Backup(out_.Sub("b1"));
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->people, 2u);
  EXPECT_EQ(info->current_epoch, 1u);
  EXPECT_TRUE(info->custody_labels.empty());
  EXPECT_EQ(info->store_id.size(), 32u);
  EXPECT_TRUE(fs::exists(out_.Sub("b1") + "/MANIFEST"));
  auto read = ReadBackupInfo(out_.Sub("b1"));
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  EXPECT_EQ(read->store_id, info->store_id);
  EXPECT_EQ(read->data_bytes, info->data_bytes);

  auto log = store_->ReadErasureLog();
  ASSERT_TRUE(log.ok());
  auto restored = RestoreBackup(out_.Sub("b1"), RestoreTo(out_.Sub("r1")), WithLog(*log));
  ASSERT_TRUE(restored.ok()) << restored.status().ToString();
  EXPECT_EQ(restored->applied.people_erased, 0u);
  EXPECT_FALSE(fs::exists(out_.Sub("r1") + ".restoring"));
  auto r = Store::Open(RestoreTo(out_.Sub("r1")));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ((*r)->GetProfile(a)->at("name").as_string(), "A");
  EXPECT_EQ(*(*r)->Resolve({"email", "b@x.org"}), b);
  EXPECT_EQ(*(*r)->Get(b, "settings", "theme"), "dark");
  std::size_t events = 0;
  for (auto it = (*r)->ScanEvents(a); it->Valid(); it->Next()) ++events;
  EXPECT_EQ(events, 20u);
  EXPECT_TRUE(test::VerifiesClean(**r));
}

// A backup and a restored store are the owner's only, as a store is
// (format.md §1: directories 0700, files 0600). An outside audit found the
// backup's and the restored store's directories 0755 and MANIFEST 0644.
TEST_F(BackupTest, ABackupAndARestoredStoreAreTheOwnersOnly) {
  MakePerson("a@x.org", {{"name", "A"}});
  const std::string backup = out_.Sub("nested") + "/b";
  ASSERT_TRUE(store_->Backup(backup).ok());
  auto mode = [](const std::string& p) { return fs::status(p).permissions() & fs::perms::all; };
  const fs::perms dir = fs::perms::owner_all;
  const fs::perms file = fs::perms::owner_read | fs::perms::owner_write;
  EXPECT_EQ(mode(out_.Sub("nested")), dir);  // a directory it had to create on the way
  for (const char* d : {"", "/keys", "/data"}) EXPECT_EQ(mode(backup + d), dir) << d;
  for (const char* f : {"/MANIFEST", "/keys/data.mdb", "/data/data.mdb"}) EXPECT_EQ(mode(backup + f), file) << f;
  auto log = store_->ReadErasureLog();
  ASSERT_TRUE(log.ok());
  const std::string restored = out_.Sub("r");
  ASSERT_TRUE(RestoreBackup(backup, RestoreTo(restored), WithLog(*log)).ok());
  for (const char* d : {"", "/keys", "/data"}) EXPECT_EQ(mode(restored + d), dir) << d;
  for (const char* f : {"/keys/data.mdb", "/data/data.mdb"}) EXPECT_EQ(mode(restored + f), file) << f;
}

TEST_F(BackupTest, RestoringReappliesErasuresMadeAfterTheBackup) {
  const PersonId kept = MakePerson("kept@x.org", {{"name", "K"}});
  const PersonId gone = MakePerson("gone@x.org", {{"name", "G"}});
  const PersonId later = MakePerson("later@x.org", {{"name", "L"}});
  SKV_ASSERT_OK(store_->AppendEvent(gone, Event{"view", 5, {}, {}}));
  ASSERT_TRUE(store_->Backup(out_.Sub("b")).ok());
  // After the backup: one person erased with suppression, one person who
  // is in the backup erased without.
  ASSERT_TRUE(store_->Erase(gone, EraseOptions{"req-gone", true, AnalyticsOnErase::kUnlink}).ok());
  ASSERT_TRUE(store_->Erase(later, EraseOptions{"req-later", false, AnalyticsOnErase::kKeep}).ok());
  auto log = store_->ReadErasureLog();
  ASSERT_TRUE(log.ok());
  ASSERT_EQ(log->people.size(), 2u);
  ASSERT_EQ(log->suppressed.size(), 1u);

  auto restored = RestoreBackup(out_.Sub("b"), RestoreTo(out_.Sub("r")), WithLog(*log));
  ASSERT_TRUE(restored.ok()) << restored.status().ToString();
  EXPECT_EQ(restored->applied.people_erased, 2u);
  EXPECT_EQ(restored->applied.suppressions_added, 1u);
  auto r = Store::Open(RestoreTo(out_.Sub("r")));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE((*r)->GetProfile(gone).status().IsErased());
  EXPECT_TRUE((*r)->GetProfile(later).status().IsErased());
  EXPECT_EQ((*r)->GetProfile(kept)->at("name").as_string(), "K");
  // The request ids are the live store's; the restore purged what it erased.
  auto receipt = (*r)->GetErasure("req-gone");
  ASSERT_TRUE(receipt.ok()) << receipt.status().ToString();
  EXPECT_TRUE(receipt->purged);
  // The restore rotated the epoch: the re-applied erasures are
  // cryptographic in the copy too, not only logical.
  EXPECT_EQ(receipt->level, ErasureLevel::kPurged);
  EXPECT_TRUE(receipt->cryptographic);
  // The suppression came back too: the identifier cannot be re-ingested.
  EXPECT_TRUE((*r)->CreatePerson({{"email", "gone@x.org"}}, {}).status().IsSuppressed());
  // Applying the same log again changes nothing.
  auto again = (*r)->ApplyErasureLog(*log);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->people_erased, 0u);
  EXPECT_EQ(again->already_erased, 2u);
  EXPECT_EQ(again->suppressions_added, 0u);
}

// Outside audit 29a F3: the erasure log names a category erasure by person
// and category, and restore erased whatever key the category had in the
// backup — for an erasure made *before* the backup, the fresh key of the
// data written since, lost from the copy under a request id nobody made.
// A category erasure whose request the backup already holds is skipped.
TEST_F(BackupTest, ACategoryErasedBeforeTheBackupIsNotErasedAgainByTheRestore) {
  options_.categories = {"location"};
  options_.event_categories = {{"gps_ping", "location"}};
  Reopen();
  const PersonId ann = MakePerson("ann@x.org", {{"name", "Ann"}});
  SKV_ASSERT_OK(store_->AppendEvent(ann, Event{"gps_ping", 1000, {{"place", "old"}}, {}, {}}));
  ASSERT_TRUE(store_->EraseCategory(ann, "location", EraseOptions{"loc-before", false, AnalyticsOnErase::kKeep}).ok());
  // The category gets a fresh key for what is written after its erasure.
  SKV_ASSERT_OK(store_->AppendEvent(ann, Event{"gps_ping", 2000, {{"place", "new"}}, {}, {}}));
  // And one category erasure after the backup, of another person: that one
  // the restore must make.
  const PersonId bob = MakePerson("bob@x.org");
  SKV_ASSERT_OK(store_->AppendEvent(bob, Event{"gps_ping", 3000, {{"place", "b"}}, {}, {}}));
  ASSERT_TRUE(store_->Backup(out_.Sub("b")).ok());
  ASSERT_TRUE(store_->EraseCategory(bob, "location", EraseOptions{"loc-after", false, AnalyticsOnErase::kKeep}).ok());
  auto log = store_->ReadErasureLog();
  ASSERT_TRUE(log.ok());
  ASSERT_EQ(log->categories.size(), 2u);

  auto restored = RestoreBackup(out_.Sub("b"), RestoreTo(out_.Sub("r")), WithLog(*log));
  ASSERT_TRUE(restored.ok()) << restored.status().ToString();
  EXPECT_EQ(restored->applied.categories_erased, 1u);
  EXPECT_EQ(restored->applied.already_erased, 1u);
  auto r = Store::Open(RestoreTo(out_.Sub("r")));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  std::vector<std::int64_t> ann_pings;
  auto it = (*r)->ScanEvents(ann, {});
  for (; it->Valid(); it->Next()) ann_pings.push_back(it->value().ts_ms);
  SKV_ASSERT_OK(it->status());
  EXPECT_EQ(ann_pings, (std::vector<std::int64_t>{2000}));  // written after the erasure: kept
  std::size_t bob_events = 0;
  auto bit = (*r)->ScanEvents(bob, {});
  for (; bit->Valid(); bit->Next()) ++bob_events;
  SKV_ASSERT_OK(bit->status());
  EXPECT_EQ(bob_events, 0u);  // erased after the backup: erased in the copy
  // No erasure request under a made-up id: the two the store made, no more.
  auto audit = (*r)->ReadAudit(0, 100);
  ASSERT_TRUE(audit.ok());
  std::vector<std::string> category_requests;
  for (const AuditRecord& a : *audit) {
    if (a.action == AuditAction::kEraseCategory) category_requests.push_back(a.request_id);
  }
  EXPECT_EQ(category_requests, (std::vector<std::string>{"loc-before", "loc-after"}));
}

// Outside audit 29a F5: the restore purged and rotated after re-applying
// the log but left the erased people's rows in free pages of the copy's
// data file, which the original had compacted away. It compacts now.
TEST_F(BackupTest, ARestoredCopyHoldsNoByteOfThePeopleItErasedAgain) {
  const PersonId kept = MakePerson("kept@x.org", {{"name", "K"}});
  const PersonId gone = MakePerson("gone@x.org", {{"name", "G"}});
  for (int i = 0; i < 50; ++i) SKV_ASSERT_OK(store_->AppendEvent(gone, Event{"view", 100 + i, {{"n", i}}, {}, {}}));
  ASSERT_TRUE(store_->Backup(out_.Sub("b")).ok());
  ASSERT_TRUE(store_->Erase(gone, EraseOptions{"req-gone", false, AnalyticsOnErase::kDelete}).ok());
  auto log = store_->ReadErasureLog();
  ASSERT_TRUE(log.ok());
  const std::string backup_data = test::ReadFile(out_.Sub("b/data/data.mdb"));
  ASSERT_NE(backup_data.find(gone.view()), std::string::npos);  // the backup holds the person

  auto restored = RestoreBackup(out_.Sub("b"), RestoreTo(out_.Sub("r")), WithLog(*log));
  ASSERT_TRUE(restored.ok()) << restored.status().ToString();
  ASSERT_EQ(restored->applied.people_erased, 1u);
  const std::string data = test::ReadFile(out_.Sub("r/data/data.mdb"));
  std::size_t hits = 0;
  for (std::size_t at = data.find(gone.view()); at != std::string::npos; at = data.find(gone.view(), at + 1)) ++hits;
  EXPECT_EQ(hits, 1u) << "the re-erased person's ID is in the restored data file beyond its erasure notice";
  EXPECT_NE(data.find(kept.view()), std::string::npos);
  auto r = Store::Open(RestoreTo(out_.Sub("r")));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ((*r)->GetProfile(kept)->at("name").as_string(), "K");
  // That one is the notice recipients must get (Art. 19); once it is
  // acknowledged and the file compacted, nothing of the person is left.
  auto feed = (*r)->ReadFeed(10);
  ASSERT_TRUE(feed.ok());
  ASSERT_EQ(feed->size(), 1u);
  EXPECT_EQ(feed->front().kind, NoticeKind::kErasure);
  EXPECT_EQ(feed->front().person, gone);
  SKV_ASSERT_OK((*r)->AckFeed(feed->front().cursor));
  ASSERT_TRUE((*r)->CompactData().ok());
  SKV_ASSERT_OK((*r)->Close());
  EXPECT_EQ(test::ReadFile(out_.Sub("r/data/data.mdb")).find(gone.view()), std::string::npos);
}

// Outside audit 38b, F2 (the rest): the check that a log was read after
// its backup compared clock readings, and a clock stepped back between the
// two let a stale log pass — a person erased after the backup came back.
// The store's own position orders them now: a backup commits before its
// snapshots, so a log read before it is below its position whatever the
// clock says; one read after is above it, also across a compaction (whose
// new file counts its commits from 1 again, in a new generation) and
// through the log's NDJSON form.
TEST_F(BackupTest, AnErasureLogReadBeforeTheBackupIsRefusedByPositionWhenTheClockSteppedBack) {
  std::int64_t now = 1'700'003'600'000;
  options_.clock = [&now] { return now; };
  Reopen();
  const PersonId gone = MakePerson("gone@x.org", {{"name", "G"}});
  auto stale = store_->ReadErasureLog();
  ASSERT_TRUE(stale.ok());
  ASSERT_TRUE(stale->position.known());
  now = 1'700'000'000'000;  // an NTP step back of an hour
  auto backup = store_->Backup(out_.Sub("b"));
  ASSERT_TRUE(backup.ok()) << backup.status().ToString();
  EXPECT_GT(backup->position, stale->position);
  ASSERT_TRUE(store_->Erase(gone).ok());
  std::stringstream file;
  SKV_ASSERT_OK(WriteErasureLog(*stale, file));
  auto from_file = ReadErasureLog(file);
  ASSERT_TRUE(from_file.ok()) << from_file.status().ToString();
  EXPECT_EQ(from_file->position, stale->position);
  auto refused = RestoreBackup(out_.Sub("b"), RestoreTo(out_.Sub("r")), WithLog(*from_file));
  EXPECT_TRUE(refused.status().IsInvalidArgument()) << refused.status().ToString();
  EXPECT_NE(refused.status().message().find("position"), std::string::npos) << refused.status().ToString();
  EXPECT_FALSE(fs::exists(out_.Sub("r")));
  // The position is under the tag: moved up, the log is refused for that.
  ErasureLog moved = *from_file;
  moved.position.commit += 1000;
  refused = RestoreBackup(out_.Sub("b"), RestoreTo(out_.Sub("r")), WithLog(moved));
  EXPECT_TRUE(refused.status().IsInvalidArgument());
  EXPECT_NE(refused.status().message().find("tag"), std::string::npos) << refused.status().ToString();

  // A compaction between the backup and the log: the log, read after it,
  // is in a newer generation, though its file counts commits from 1 again.
  auto compacted = store_->CompactData();
  ASSERT_TRUE(compacted.ok()) << compacted.status().ToString();
  now -= 60'000;  // and the clock back again
  auto fresh = store_->ReadErasureLog();
  ASSERT_TRUE(fresh.ok());
  EXPECT_GT(fresh->position.generation, backup->position.generation);
  EXPECT_LT(fresh->read_at_ms, backup->created_ms);
  ExpectRestoredErasingAgain(out_.Sub("b"), out_.Sub("r"), *fresh, gone);

  // A backup after the compaction refuses a log read before it.
  auto later = store_->Backup(out_.Sub("b2"));
  ASSERT_TRUE(later.ok()) << later.status().ToString();
  EXPECT_TRUE(CheckErasureLogReadAfter(*stale, *later).IsInvalidArgument());
  EXPECT_TRUE(CheckErasureLogReadAfter(*fresh, *later).IsInvalidArgument());
  auto newest = store_->ReadErasureLog();
  ASSERT_TRUE(newest.ok());
  SKV_EXPECT_OK(CheckErasureLogReadAfter(*newest, *later));
  // The backup's position is in its MANIFEST, under its tag.
  auto info = ReadBackupInfo(out_.Sub("b2"));
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->position, later->position);
}

// A log read before the store was closed and opened again is older than a
// backup taken after (the backup's own commit orders them, whatever the
// clocks did); one read after the backup is not.
TEST_F(BackupTest, ALogReadBeforeAReopenIsOlderThanABackupAfter) {
  const PersonId gone = MakePerson("gone@x.org");
  auto before = store_->ReadErasureLog();
  ASSERT_TRUE(before.ok());
  Reopen();
  auto backup = store_->Backup(out_.Sub("b"));
  ASSERT_TRUE(backup.ok()) << backup.status().ToString();
  EXPECT_GT(backup->position, before->position);
  EXPECT_TRUE(CheckErasureLogReadAfter(*before, *backup).IsInvalidArgument());
  ASSERT_TRUE(store_->Erase(gone).ok());
  auto after = store_->ReadErasureLog();
  ASSERT_TRUE(after.ok());
  SKV_EXPECT_OK(CheckErasureLogReadAfter(*after, *backup));
}

// Outside audit 38b, F2: a tagged log read while the clock read 0 skipped
// the check that it was read after the backup (0 stood for "not recorded").
TEST_F(BackupTest, ATaggedLogReadAtClockZeroIsCheckedAgainstTheBackupsTime) {
  std::int64_t now = 0;
  options_.clock = [&now] { return now; };
  Reopen();
  const PersonId gone = MakePerson("gone@x.org", {{"name", "G"}});
  auto stale = store_->ReadErasureLog();
  ASSERT_TRUE(stale.ok());
  ASSERT_EQ(stale->read_at_ms, 0);
  ASSERT_FALSE(stale->tag.empty());
  now = 1'700'000'000'000;
  ASSERT_TRUE(store_->Backup(out_.Sub("b")).ok());
  ASSERT_TRUE(store_->Erase(gone).ok());
  auto refused = RestoreBackup(out_.Sub("b"), RestoreTo(out_.Sub("r")), WithLog(*stale));
  EXPECT_TRUE(refused.status().IsInvalidArgument()) << refused.status().ToString();
  EXPECT_FALSE(fs::exists(out_.Sub("r")));
}

// Outside audit 38a, F1: the people and categories a restore only fences
// (the copy never held them, or held nothing in the category) got no
// erasure notice, so a recipient that had not read the original's feed —
// which the restored store's replaces — was never told. They get one, and
// a second application of the log adds none.
TEST_F(BackupTest, WhatARestoreOnlyFencesGetsAnErasureNoticeOnce) {
  options_.categories = {"location"};
  options_.event_categories = {{"gps_ping", "location"}};
  Reopen();
  const PersonId held = MakePerson("held@x.org", {{"name", "H"}});
  ASSERT_TRUE(store_->Backup(out_.Sub("b")).ok());
  const PersonId later = MakePerson("later@x.org", {{"name", "L"}});
  SKV_ASSERT_OK(store_->AppendEvent(held, Event{"gps_ping", 1000, {{"place", "x"}}, {}, {}}));
  ASSERT_TRUE(store_->EraseCategory(held, "location", EraseOptions{"loc", false, AnalyticsOnErase::kKeep}).ok());
  ASSERT_TRUE(store_->Erase(later, EraseOptions{"req-later", false, AnalyticsOnErase::kKeep}).ok());
  auto log = store_->ReadErasureLog();
  ASSERT_TRUE(log.ok());

  auto restored = RestoreBackup(out_.Sub("b"), RestoreTo(out_.Sub("r")), WithLog(*log));
  ASSERT_TRUE(restored.ok()) << restored.status().ToString();
  EXPECT_EQ(restored->applied.not_present, 2u);  // `later` never held; `held` had nothing in the category
  auto r = Store::Open(RestoreTo(out_.Sub("r")));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  auto feed = (*r)->ReadFeed(10);
  ASSERT_TRUE(feed.ok());
  std::vector<std::pair<PersonId, std::vector<std::string>>> erasures;
  for (const Notice& n : *feed) {
    if (n.kind == NoticeKind::kErasure) erasures.emplace_back(n.person, n.names);
  }
  // One each, whatever their order (review 38, R11: a map hid a second).
  ASSERT_EQ(erasures.size(), 2u) << "an erasure fenced by the restore was not told, or told twice";
  std::sort(erasures.begin(), erasures.end(), [&](const auto& a, const auto& b) { return (a.first == later) > (b.first == later); });
  EXPECT_EQ(erasures[0].first, later);
  EXPECT_TRUE(erasures[0].second.empty());
  EXPECT_EQ(erasures[1].first, held);
  EXPECT_EQ(erasures[1].second, std::vector<std::string>{"category.location"});
  const std::size_t notices = feed->size();
  auto again = (*r)->ApplyErasureLog(*log);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ((*r)->ReadFeed(10)->size(), notices) << "the log applied again told an erasure twice";
}

// Review of stop 29: a backup taken between an erasure and its purge holds
// the person's rows; the restore purges them, and compacts the copy for
// them too, not only for the erasures it makes itself.
TEST_F(BackupTest, ARestoreCompactsAwayTheRowsOfAnErasureTheBackupHeldUnpurged) {
  const PersonId gone = MakePerson("gone@x.org", {{"name", "G"}});
  for (int i = 0; i < 50; ++i) SKV_ASSERT_OK(store_->AppendEvent(gone, Event{"view", 100 + i, {{"n", i}}, {}, {}}));
  ASSERT_TRUE(store_->Erase(gone, EraseOptions{"req-gone", false, AnalyticsOnErase::kDelete}).ok());
  auto feed = store_->ReadFeed(10);
  ASSERT_TRUE(feed.ok());
  ASSERT_FALSE(feed->empty());
  SKV_ASSERT_OK(store_->AckFeed(feed->back().cursor));
  ASSERT_TRUE(store_->Backup(out_.Sub("b")).ok());  // erased, not purged
  ASSERT_NE(test::ReadFile(out_.Sub("b/data/data.mdb")).find(gone.view()), std::string::npos);
  RestoreOptions no_log;
  no_log.without_erasure_log = true;
  auto restored = RestoreBackup(out_.Sub("b"), RestoreTo(out_.Sub("r")), no_log);
  ASSERT_TRUE(restored.ok()) << restored.status().ToString();
  EXPECT_EQ(test::ReadFile(out_.Sub("r/data/data.mdb")).find(gone.view()), std::string::npos)
      << "the purged person's rows are in free pages of the restored copy";
}

TEST_F(BackupTest, PeopleCreatedAfterTheBackupAreCountedNotPresent) {
  MakePerson("a@x.org");
  ASSERT_TRUE(store_->Backup(out_.Sub("b")).ok());
  const PersonId newer = MakePerson("n@x.org");
  ASSERT_TRUE(store_->Erase(newer).ok());
  auto log = store_->ReadErasureLog();
  ASSERT_TRUE(log.ok());
  auto restored = RestoreBackup(out_.Sub("b"), RestoreTo(out_.Sub("r")), WithLog(*log));
  ASSERT_TRUE(restored.ok()) << restored.status().ToString();
  EXPECT_EQ(restored->applied.not_present, 1u);
  EXPECT_EQ(restored->applied.people_erased, 0u);
}

// Stop 25's review made restore's replay of the erasure log ask
// EngineContext::PersonKey, so that a person whose key is gone from the
// backup without an erasure (a damaged `deks`) is Corruption instead of
// "never present" (counted, and the person's rows left in the copy with no
// erasure applied and no fence). Tested here since stop 26.
TEST_F(BackupTest, ARestoreWhoseLogNamesAPersonWithALostKeyIsCorruption) {
  const PersonId kept = MakePerson("kept@x.org");
  const PersonId lost = MakePerson("lost@x.org");
  SKV_ASSERT_OK(store_->Close());  // adopts both pooled keys: `deks` rows now
  store_.reset();
  {
    storage::EnvOptions o;
    o.path = options_.directory + "/keys";
    o.tables = {"meta", "epochs", "deks", "fences"};
    auto env = storage::Environment::Open(o);
    ASSERT_TRUE(env.ok()) << env.status().ToString();
    SKV_ASSERT_OK((*env)->Update(
        [&](storage::WriteTxn& txn) { return txn.Delete((*env)->table("deks"), codec::DekKey(lost, 0)); }));
  }
  Reopen();
  ASSERT_TRUE(store_->Backup(out_.Sub("b")).ok());
  auto log = store_->ReadErasureLog();
  ASSERT_TRUE(log.ok()) << log.status().ToString();
  // The live store's log after the person's erasure there (which the lost
  // key refuses in this store, so the entry is written by hand).
  // Written by hand, it has no tag (since stop 37): taken as untagged.
  ErasureLog edited = *log;
  edited.people.push_back(ErasedPersonEntry{lost, "req-lost", test::NowMs(), AnalyticsOnErase::kKeep});
  edited.tag.clear();
  RestoreOptions untagged = WithLog(edited);
  untagged.accept_untagged_log = true;
  auto restored = RestoreBackup(out_.Sub("b"), RestoreTo(out_.Sub("r")), untagged);
  EXPECT_TRUE(restored.status().IsCorruption()) << restored.status().ToString();
  EXPECT_FALSE(fs::exists(out_.Sub("r")));
  // Without that entry the same backup restores.
  auto clean = RestoreBackup(out_.Sub("b"), RestoreTo(out_.Sub("r2")), WithLog(*log));
  ASSERT_TRUE(clean.ok()) << clean.status().ToString();
  auto r = Store::Open(RestoreTo(out_.Sub("r2")));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE((*r)->GetPerson(kept).ok());
}

TEST_F(BackupTest, RestoreRefusesWithoutALogAnotherStoresLogAndADamagedBackup) {
  MakePerson("a@x.org");
  ASSERT_TRUE(store_->Backup(out_.Sub("b")).ok());
  EXPECT_TRUE(RestoreBackup(out_.Sub("b"), RestoreTo(out_.Sub("r")), RestoreOptions{}).status().IsInvalidArgument());
  EXPECT_FALSE(fs::exists(out_.Sub("r")));
  ErasureLog other;
  other.store_id = std::string(32, '0');
  EXPECT_TRUE(RestoreBackup(out_.Sub("b"), RestoreTo(out_.Sub("r")), WithLog(other)).status().IsInvalidArgument());
  // One byte of the data file flipped: the manifest's checksum catches it.
  const std::string data = out_.Sub("b") + "/data/data.mdb";
  std::string bytes = test::ReadFile(data);
  bytes[bytes.size() / 2] ^= 0x01;
  test::WriteFile(data, bytes);
  auto log = store_->ReadErasureLog();
  ASSERT_TRUE(log.ok());
  auto damaged = RestoreBackup(out_.Sub("b"), RestoreTo(out_.Sub("r")), WithLog(*log));
  EXPECT_TRUE(damaged.status().IsCorruption()) << damaged.status().ToString();
  EXPECT_FALSE(fs::exists(out_.Sub("r")));
  // Not a backup at all.
  EXPECT_TRUE(ReadBackupInfo(out_.Sub("nothing")).status().IsNotFound());
}

// Outside audit 34, F2: a log read before the backup was taken (yesterday's
// file) was applied to tonight's backup, and a person erased after the
// backup came back. Fences are kept forever, so the log of the live store
// read after the backup names every erasure the backup holds; one that
// lacks one is refused, with nothing restored.
TEST_F(BackupTest, AnErasureLogOlderThanTheBackupIsRefused) {
  options_.categories = {"location"};
  options_.event_categories = {{"gps_ping", "location"}};
  Reopen();
  const PersonId a = MakePerson("a@x.org");
  const PersonId b = MakePerson("b@x.org");
  const PersonId c = MakePerson("c@x.org");
  SKV_ASSERT_OK(store_->Put(b, "notes", "n", "B's diary"));
  SKV_ASSERT_OK(store_->AppendEvent(c, Event{"gps_ping", 1000, {{"place", "p"}}, {}, {}}));
  auto yesterday = store_->ReadErasureLog();
  ASSERT_TRUE(yesterday.ok());
  ASSERT_TRUE(store_->Erase(a, EraseOptions{"req-a", false, AnalyticsOnErase::kKeep}).ok());
  auto before_category = store_->ReadErasureLog();
  ASSERT_TRUE(before_category.ok());
  ASSERT_TRUE(store_->EraseCategory(c, "location", EraseOptions{"loc-c", false, AnalyticsOnErase::kKeep}).ok());
  ASSERT_TRUE(store_->Backup(out_.Sub("b")).ok());
  ASSERT_TRUE(store_->Erase(b, EraseOptions{"req-b", false, AnalyticsOnErase::kKeep}).ok());
  auto tonight = store_->ReadErasureLog();
  ASSERT_TRUE(tonight.ok());

  // Lacking a person's erasure the backup holds, and lacking only a
  // category's: both older than the backup.
  auto stale = RestoreBackup(out_.Sub("b"), RestoreTo(out_.Sub("r")), WithLog(*yesterday));
  EXPECT_TRUE(stale.status().IsInvalidArgument()) << stale.status().ToString();
  EXPECT_NE(stale.status().message().find("older than the backup"), std::string::npos) << stale.status().ToString();
  EXPECT_NE(stale.status().message().find("req-a"), std::string::npos) << stale.status().ToString();
  EXPECT_FALSE(fs::exists(out_.Sub("r")));
  EXPECT_FALSE(fs::exists(out_.Sub("r") + ".restoring"));
  auto no_category = RestoreBackup(out_.Sub("b"), RestoreTo(out_.Sub("r")), WithLog(*before_category));
  EXPECT_TRUE(no_category.status().IsInvalidArgument()) << no_category.status().ToString();
  EXPECT_NE(no_category.status().message().find("loc-c"), std::string::npos) << no_category.status().ToString();
  EXPECT_FALSE(fs::exists(out_.Sub("r")));

  // The log read after the backup restores it, with b erased again.
  ExpectRestoredErasingAgain(out_.Sub("b"), out_.Sub("r"), *tonight, b);
}

// Outside audit 35b, F1: a log read before the backup was taken passed the
// check above whenever no erasure happened between the two (it names every
// erasure the backup holds), and a person erased after the backup came
// back. The log carries its read time now (read_at_ms, through its NDJSON
// form too) and a restore refuses one read before the backup; one without
// it (a file written before stop 35) is only checked as above.
TEST_F(BackupTest, AnErasureLogReadBeforeTheBackupIsRefusedByItsTime) {
  std::atomic<std::int64_t> now{1'000'000};
  options_.clock = [&now] { return now.load(); };
  Reopen();
  const PersonId ann = MakePerson("ann@x.org");
  SKV_ASSERT_OK(store_->Put(ann, "notes", "n", "Ann's diary"));
  auto early = store_->ReadErasureLog();
  ASSERT_TRUE(early.ok());
  EXPECT_EQ(early->read_at_ms, 1'000'000);
  now = 2'000'000;
  auto backup = store_->Backup(out_.Sub("b"));
  ASSERT_TRUE(backup.ok()) << backup.status().ToString();
  now = 3'000'000;
  ASSERT_TRUE(store_->Erase(ann).ok());

  // Written and read back as a file, as the CLI and the C API pass it.
  std::stringstream file;
  SKV_ASSERT_OK(WriteErasureLog(*early, file));
  auto from_file = ReadErasureLog(file);
  ASSERT_TRUE(from_file.ok()) << from_file.status().ToString();
  EXPECT_EQ(from_file->read_at_ms, 1'000'000);
  auto stale = RestoreBackup(out_.Sub("b"), RestoreTo(out_.Sub("r")), WithLog(*from_file));
  EXPECT_TRUE(stale.status().IsInvalidArgument()) << stale.status().ToString();
  EXPECT_NE(stale.status().message().find("before the backup was taken"), std::string::npos)
      << stale.status().ToString();
  EXPECT_FALSE(fs::exists(out_.Sub("r")));
  EXPECT_FALSE(fs::exists(out_.Sub("r") + ".restoring"));

  // Without its read time the log fails its tag; as a file of a build
  // before stop 35 (no time, no tag) it is taken only when told to.
  ErasureLog undated = *early;
  undated.read_at_ms = 0;
  undated.position = {};  // nor a position (stop 39)
  EXPECT_TRUE(RestoreBackup(out_.Sub("b"), RestoreTo(out_.Sub("r0")), WithLog(undated)).status().IsInvalidArgument());
  undated.tag.clear();
  EXPECT_TRUE(RestoreBackup(out_.Sub("b"), RestoreTo(out_.Sub("r0")), WithLog(undated)).status().IsInvalidArgument());
  RestoreOptions untagged = WithLog(undated);
  untagged.accept_untagged_log = true;
  auto taken = RestoreBackup(out_.Sub("b"), RestoreTo(out_.Sub("r0")), untagged);
  ASSERT_TRUE(taken.ok()) << taken.status().ToString();

  // The log read now restores the backup with Ann erased again.
  auto fresh = store_->ReadErasureLog();
  ASSERT_TRUE(fresh.ok());
  ExpectRestoredErasingAgain(out_.Sub("b"), out_.Sub("r"), *fresh, ann);
}

// Outside audit 37c, F1: the MANIFEST's created_ms was all that told a
// log read before the backup was taken; lowered or deleted, a stale log was
// taken and a person erased after the backup came back. The MANIFEST now
// carries the store's tag, which no one who can only write the backup
// directory can make.
TEST_F(BackupTest, AManifestWhoseTimeWasMovedOrWhoseTagWasRemovedIsRefused) {
  std::atomic<std::int64_t> now{1'000'000};
  options_.clock = [&now] { return now.load(); };
  Reopen();
  const PersonId bob = MakePerson("bob@x.org");
  SKV_ASSERT_OK(store_->Put(bob, "notes", "n", "Bob's diary"));
  auto stale = store_->ReadErasureLog();
  ASSERT_TRUE(stale.ok());
  now = 2'000'000;
  ASSERT_TRUE(store_->Backup(out_.Sub("b")).ok());
  now = 3'000'000;
  ASSERT_TRUE(store_->Erase(bob).ok());
  const std::string manifest = out_.Sub("b") + "/MANIFEST";
  const std::string good = test::ReadFile(manifest);
  ASSERT_NE(good.find("\ntag "), std::string::npos);

  std::string moved = good;
  const std::size_t at = moved.find("created_ms 2000000");
  ASSERT_NE(at, std::string::npos);
  moved.replace(at, 18, "created_ms 1");
  test::WriteFile(manifest, moved);
  auto refused = RestoreBackup(out_.Sub("b"), RestoreTo(out_.Sub("r")), WithLog(*stale));
  EXPECT_TRUE(refused.status().IsCorruption()) << refused.status().ToString();
  EXPECT_FALSE(fs::exists(out_.Sub("r")));

  // Without its tag line: refused unless accepted as a backup of an older build.
  const std::string untagged = moved.substr(0, moved.find("tag "));
  test::WriteFile(manifest, untagged);
  refused = RestoreBackup(out_.Sub("b"), RestoreTo(out_.Sub("r")), WithLog(*stale));
  EXPECT_TRUE(refused.status().IsCorruption()) << refused.status().ToString();
  EXPECT_NE(refused.status().message().find("accept_untagged_backup"), std::string::npos);
  EXPECT_FALSE(fs::exists(out_.Sub("r")));

  // A line added after the tag is refused as the MANIFEST is read.
  test::WriteFile(manifest, good + "created_ms 1\n");
  EXPECT_TRUE(ReadBackupInfo(out_.Sub("b")).status().IsCorruption());

  test::WriteFile(manifest, good);
  refused = RestoreBackup(out_.Sub("b"), RestoreTo(out_.Sub("r")), WithLog(*stale));
  EXPECT_TRUE(refused.status().IsInvalidArgument()) << refused.status().ToString();  // read before the backup
  auto fresh = store_->ReadErasureLog();
  ASSERT_TRUE(fresh.ok());
  ExpectRestoredErasingAgain(out_.Sub("b"), out_.Sub("r"), *fresh, bob);
}

// Outside audit 37c, F5: the erasure log was not bound to the store: with
// a person's line deleted (and the end line's count fixed), or an old
// log's read time moved past the backup, a restore brought them back.
TEST_F(BackupTest, AnErasureLogWithAnEntryDeletedOrItsTimeMovedIsRefused) {
  std::atomic<std::int64_t> now{1'000'000};
  options_.clock = [&now] { return now.load(); };
  Reopen();
  const PersonId bob = MakePerson("bob@x.org");
  const PersonId cat = MakePerson("cat@x.org");
  SKV_ASSERT_OK(store_->Put(bob, "notes", "n", "Bob's diary"));
  auto stale = store_->ReadErasureLog();
  ASSERT_TRUE(stale.ok());
  now = 2'000'000;
  ASSERT_TRUE(store_->Backup(out_.Sub("b")).ok());
  now = 3'000'000;
  ASSERT_TRUE(store_->Erase(bob).ok());
  ASSERT_TRUE(store_->Erase(cat).ok());
  auto live = store_->ReadErasureLog();
  ASSERT_TRUE(live.ok());
  ASSERT_EQ(live->people.size(), 2u);
  ASSERT_FALSE(live->tag.empty());

  // Through the NDJSON form, as the CLI and the C API pass it.
  auto through_file = [](const ErasureLog& log) {
    std::stringstream file;
    EXPECT_TRUE(WriteErasureLog(log, file).ok());
    auto read = ReadErasureLog(file);
    EXPECT_TRUE(read.ok()) << read.status().ToString();
    return read.ok() ? *read : ErasureLog{};
  };
  ErasureLog without_bob = through_file(*live);
  EXPECT_EQ(without_bob.tag, live->tag);
  without_bob.people.erase(std::remove_if(without_bob.people.begin(), without_bob.people.end(),
                                          [&](const ErasedPersonEntry& e) { return e.person == bob; }),
                           without_bob.people.end());
  ASSERT_EQ(without_bob.people.size(), 1u);
  auto refused = RestoreBackup(out_.Sub("b"), RestoreTo(out_.Sub("r")), WithLog(through_file(without_bob)));
  EXPECT_TRUE(refused.status().IsInvalidArgument()) << refused.status().ToString();
  EXPECT_NE(refused.status().message().find("tag"), std::string::npos);
  EXPECT_FALSE(fs::exists(out_.Sub("r")));

  ErasureLog rolled = through_file(*stale);
  rolled.read_at_ms = 4'000'000;
  refused = RestoreBackup(out_.Sub("b"), RestoreTo(out_.Sub("r")), WithLog(through_file(rolled)));
  EXPECT_TRUE(refused.status().IsInvalidArgument()) << refused.status().ToString();
  EXPECT_FALSE(fs::exists(out_.Sub("r")));

  // ReapplyErasureLog and Store::ApplyErasureLog check the same (review
  // of stop 37, R3 and R10): a time moved, which no older-log check sees.
  ErasureLog shifted = *live;
  shifted.people[0].erased_at_ms += 1;
  auto applied = store_->ApplyErasureLog(shifted);
  EXPECT_TRUE(applied.status().IsInvalidArgument()) << applied.status().ToString();
  EXPECT_NE(applied.status().message().find("tag"), std::string::npos) << applied.status().ToString();
  ErasureLog untagged_live = *live;
  untagged_live.tag.clear();
  EXPECT_TRUE(store_->ApplyErasureLog(untagged_live).status().IsInvalidArgument());
  EXPECT_TRUE(store_->ApplyErasureLog(*live).ok());  // the store's own, as read: applied (nothing new)
  store_.reset();
  auto reapplied = ReapplyErasureLog(options_, shifted);
  EXPECT_TRUE(reapplied.status().IsInvalidArgument()) << reapplied.status().ToString();
  EXPECT_NE(reapplied.status().message().find("tag"), std::string::npos) << reapplied.status().ToString();
  EXPECT_TRUE(ReapplyErasureLog(options_, untagged_live, /*accept_untagged_log=*/true).ok());
  Reopen();

  auto restored = RestoreBackup(out_.Sub("b"), RestoreTo(out_.Sub("r")), WithLog(through_file(*live)));
  ASSERT_TRUE(restored.ok()) << restored.status().ToString();
  EXPECT_EQ(restored->applied.people_erased, 2u);
  auto r = Store::Open(RestoreTo(out_.Sub("r")));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE((*r)->Get(bob, "notes", "n").status().IsErased());
}

// Outside audit 34, F4: without_erasure_log and a log together were
// accepted (RestoreBackup applied the log; ShardedStore::Restore dropped
// it). The two contradict each other: refused.
TEST_F(BackupTest, AnErasureLogAndWithoutErasureLogTogetherAreRefused) {
  MakePerson("a@x.org");
  ASSERT_TRUE(store_->Backup(out_.Sub("b")).ok());
  auto log = store_->ReadErasureLog();
  ASSERT_TRUE(log.ok());
  RestoreOptions both = WithLog(*log);
  both.without_erasure_log = true;
  auto r = RestoreBackup(out_.Sub("b"), RestoreTo(out_.Sub("r")), both);
  EXPECT_TRUE(r.status().IsInvalidArgument()) << r.status().ToString();
  EXPECT_FALSE(fs::exists(out_.Sub("r")));
  RestoreOptions flag_only;
  flag_only.without_erasure_log = true;
  EXPECT_TRUE(RestoreBackup(out_.Sub("b"), RestoreTo(out_.Sub("r")), flag_only).ok());
}

// ReapplyErasureLog: a store put back by a file-level copy of an older
// state gets the erasures made since, as a restore would give them — and
// they are cryptographic there too (purged, epoch rotated). A second run
// changes nothing; a log older than the copy is refused.
TEST_F(BackupTest, ReapplyErasureLogErasesAgainInAStorePutBackByHand) {
  const PersonId kept = MakePerson("kept@x.org", {{"name", "K"}});
  const PersonId gone = MakePerson("gone@x.org", {{"name", "G"}});
  SKV_ASSERT_OK(store_->Put(gone, "notes", "n", "G's diary"));
  const PersonId early = MakePerson("early@x.org");
  auto before = store_->ReadErasureLog();  // lacks early's erasure, which the copy holds
  ASSERT_TRUE(before.ok());
  ASSERT_TRUE(store_->Erase(early).ok());
  ASSERT_TRUE(store_->Backup(out_.Sub("b")).ok());
  // The operator's copy: the files alone, put in place by hand.
  for (const char* sub : {"keys", "data"}) {
    fs::create_directories(out_.Sub("copy") + "/" + sub);
    fs::copy_file(out_.Sub("b") + "/" + sub + "/data.mdb", out_.Sub("copy") + "/" + sub + "/data.mdb");
  }
  ASSERT_TRUE(store_->Erase(gone, EraseOptions{"req-gone", true, AnalyticsOnErase::kUnlink}).ok());
  auto log = store_->ReadErasureLog();
  ASSERT_TRUE(log.ok());

  EXPECT_TRUE(ReapplyErasureLog(RestoreTo(out_.Sub("copy")), *before).status().IsInvalidArgument());
  auto applied = ReapplyErasureLog(RestoreTo(out_.Sub("copy")), *log);
  ASSERT_TRUE(applied.ok()) << applied.status().ToString();
  EXPECT_EQ(applied->people_erased, 1u);
  EXPECT_EQ(applied->already_erased, 1u);
  EXPECT_EQ(applied->suppressions_added, 1u);
  auto again = ReapplyErasureLog(RestoreTo(out_.Sub("copy")), *log);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->people_erased, 0u);
  EXPECT_EQ(again->already_erased, 2u);
  auto r = Store::Open(RestoreTo(out_.Sub("copy")));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE((*r)->Get(gone, "notes", "n").status().IsErased());
  EXPECT_EQ((*r)->GetProfile(kept)->at("name").as_string(), "K");
  EXPECT_TRUE((*r)->CreatePerson({{"email", "gone@x.org"}}, {}).status().IsSuppressed());
  auto receipt = (*r)->GetErasure("req-gone");
  ASSERT_TRUE(receipt.ok()) << receipt.status().ToString();
  EXPECT_TRUE(receipt->cryptographic);
  EXPECT_EQ(receipt->level, ErasureLevel::kPurged);
  SKV_ASSERT_OK((*r)->Close());
  // Another store's log.
  ErasureLog other = *log;
  other.store_id = std::string(32, '0');
  EXPECT_TRUE(ReapplyErasureLog(RestoreTo(out_.Sub("copy")), other).status().IsInvalidArgument());
}

// Outside audit 39b, F1: a volume snapshot taken while a creation was
// between its `keys` commit (the person's category keys) and its `data`
// commit (the person key's claim) holds category keys of a person it never
// held. The person, erased later, could not be fenced: ReapplyErasureLog
// failed Internal on every run, after its erasures and before the
// suppressions, purge and rotation. The stray keys go with the fence now,
// and the suppressions come first. The snapshot's free key pool (which
// held the key the live store gave that person) is dropped, and the epoch
// rotated.
std::string g_snapshot_from;
std::string g_snapshot_to;
void SnapshotBetweenTheCommitsOfACreation(std::string_view name) {
  if (name != "create.after_keys_commit" || g_snapshot_to.empty()) return;
  for (const char* sub : {"keys", "data"}) {
    fs::create_directories(g_snapshot_to + "/" + sub);
    fs::copy_file(g_snapshot_from + "/" + sub + "/data.mdb", g_snapshot_to + "/" + sub + "/data.mdb");
  }
  g_snapshot_to.clear();
}

TEST_F(BackupTest, ReapplyErasureLogOnASnapshotTakenMidCreationFencesThatPersonAndDropsThePool) {
  const PersonId a = MakePerson("a@x.org", {{"name", "A"}});
  const PersonId kept = MakePerson("kept@x.org", {{"name", "K"}});
  g_snapshot_from = dir_.path();
  g_snapshot_to = out_.Sub("snap");
  util::SetTestPointHook(&SnapshotBetweenTheCommitsOfACreation);
  WriteBatch batch;
  const PersonId x = batch.CreatePerson({{"email", "x@x.org"}}, {{"name", "X"}});
  batch.Put(x, "addr", "home", "X's address", "contact");
  Status wrote = store_->Write(batch);
  util::SetTestPointHook(nullptr);
  SKV_ASSERT_OK(wrote);
  ASSERT_TRUE(fs::exists(out_.Sub("snap") + "/keys/data.mdb"));
  ASSERT_TRUE(store_->Erase(a, EraseOptions{"req-a", true, AnalyticsOnErase::kKeep}).ok());
  ASSERT_TRUE(store_->Erase(x, EraseOptions{"req-x", true, AnalyticsOnErase::kKeep}).ok());
  auto log = store_->ReadErasureLog();
  ASSERT_TRUE(log.ok()) << log.status().ToString();

  const Options snap = RestoreTo(out_.Sub("snap"));
  std::uint64_t epoch_before = 0;
  {
    auto s = Store::Open(snap);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    auto& keys = static_cast<engine::StoreImpl&>(**s).key_store();
    ASSERT_GT(keys.free_pooled_keys(), 0u);  // the live store's pool as it was: x's key among them
    epoch_before = keys.Epochs().back().epoch;
    SKV_ASSERT_OK((*s)->Close());
  }
  auto applied = ReapplyErasureLog(snap, *log);
  ASSERT_TRUE(applied.ok()) << applied.status().ToString();
  EXPECT_EQ(applied->people_erased, 1u);
  EXPECT_EQ(applied->not_present, 1u);
  EXPECT_EQ(applied->suppressions_added, 2u);
  auto again = ReapplyErasureLog(snap, *log);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->people_erased, 0u);

  auto r = Store::Open(snap);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  auto& keys = static_cast<engine::StoreImpl&>(**r).key_store();
  EXPECT_EQ(keys.free_pooled_keys(), 0u);
  EXPECT_GT(keys.Epochs().back().epoch, epoch_before);
  EXPECT_TRUE((*r)->GetPerson(x).status().IsErased()) << (*r)->GetPerson(x).status().ToString();
  EXPECT_TRUE((*r)->GetProfile(a).status().IsErased());
  EXPECT_EQ((*r)->GetProfile(kept)->at("name").as_string(), "K");
  EXPECT_TRUE((*r)->CreatePerson({{"email", "a@x.org"}}, {}).status().IsSuppressed());
  EXPECT_TRUE((*r)->CreatePerson({{"email", "x@x.org"}}, {}).status().IsSuppressed());
  auto receipt = (*r)->GetErasure("req-a");
  ASSERT_TRUE(receipt.ok()) << receipt.status().ToString();
  EXPECT_TRUE(receipt->cryptographic);
  EXPECT_EQ(receipt->level, ErasureLevel::kPurged);
  // Outside audit 39b, F3: the request of a person the store only fences
  // (it never held them) was "no erasure request" for erasure-status,
  // though the store enforces it and its own log names it.
  auto fenced = (*r)->GetErasure("req-x");
  ASSERT_TRUE(fenced.ok()) << fenced.status().ToString();
  EXPECT_EQ(fenced->people, 1u);
  EXPECT_TRUE(fenced->cryptographic);
  EXPECT_EQ(fenced->level, ErasureLevel::kPurged);
  auto verified = (*r)->Verify();
  ASSERT_TRUE(verified.ok()) << verified.status().ToString();
  EXPECT_TRUE(verified->ok()) << (verified->problems.empty() ? "" : verified->problems.front());
  SKV_ASSERT_OK((*r)->Close());
}

// Outside audit 40a, F5: a suppressing erasure re-applied by a restore
// was recorded as not suppressing (its identifiers are suppressed from the
// log, apart from the erasure), and at the time of the restore.
TEST_F(BackupTest, ARestoredSuppressingErasureKeepsItsFlagAndItsTime) {
  const PersonId p = MakePerson("p@x.org", {{"name", "P"}});
  ASSERT_TRUE(store_->Backup(out_.Sub("b")).ok());
  auto original = store_->Erase(p, EraseOptions{"req-sup", true, AnalyticsOnErase::kKeep});
  ASSERT_TRUE(original.ok()) << original.status().ToString();
  ASSERT_TRUE(original->suppressed);
  auto log = store_->ReadErasureLog();
  ASSERT_TRUE(log.ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(5));  // a restore later than the erasure
  auto restored = RestoreBackup(out_.Sub("b"), RestoreTo(out_.Sub("r")), WithLog(*log));
  ASSERT_TRUE(restored.ok()) << restored.status().ToString();
  auto r = Store::Open(RestoreTo(out_.Sub("r")));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  auto receipt = (*r)->GetErasure("req-sup");
  ASSERT_TRUE(receipt.ok()) << receipt.status().ToString();
  EXPECT_TRUE(receipt->suppressed);
  EXPECT_EQ(receipt->erased_at_ms, original->erased_at_ms);
  EXPECT_TRUE((*r)->CreatePerson({{"email", "p@x.org"}}, {}).status().IsSuppressed());
  auto audit = (*r)->ReadAudit(0, 100000);
  ASSERT_TRUE(audit.ok());
  bool seen = false;
  for (const AuditRecord& e : *audit) {
    if (e.request_id != "req-sup") continue;
    seen = true;
    EXPECT_EQ(e.count2, 1u) << "the audit entry's suppressed flag";
    EXPECT_EQ(e.time_ms, original->erased_at_ms);
  }
  EXPECT_TRUE(seen);
}

// Outside audit 40a, F6: a restore killed while it wrote its own marker
// left the work directory holding only the marker's temporary file, and
// every retry was refused (the directory was not marked as a restore's).
TEST_F(BackupTest, ARestoreKilledWhileWritingItsMarkerDoesNotBlockTheRetry) {
  const PersonId a = MakePerson("a@x.org", {{"name", "A"}});
  ASSERT_TRUE(store_->Backup(out_.Sub("b")).ok());
  auto log = store_->ReadErasureLog();
  ASSERT_TRUE(log.ok());
  const std::string target = out_.Sub("r");
  fs::create_directories(target + ".restoring");
  test::WriteFile(target + ".restoring/" + std::string(engine::kRestoreMarker) + ".tmp", "a restore");
  auto restored = RestoreBackup(out_.Sub("b"), RestoreTo(target), WithLog(*log));
  ASSERT_TRUE(restored.ok()) << restored.status().ToString();
  auto r = Store::Open(RestoreTo(target));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ((*r)->GetProfile(a)->at("name").as_string(), "A");
  // Anything else there is still the caller's.
  fs::create_directories(out_.Sub("r2") + ".restoring");
  test::WriteFile(out_.Sub("r2") + ".restoring/mine", "x");
  EXPECT_TRUE(RestoreBackup(out_.Sub("b"), RestoreTo(out_.Sub("r2")), WithLog(*log)).status().IsAlreadyExists());
  EXPECT_TRUE(fs::exists(out_.Sub("r2") + ".restoring/mine"));
}

// Outside audit 40a, F7: a log read at the backup's own position (nothing
// committed between the two: a backup of a store that could not write) was
// judged by the clocks, and a clock stepped back between the two refused
// it. Equal positions accept it.
TEST_F(BackupTest, ALogAtTheBackupsOwnPositionIsAcceptedWhateverTheClocks) {
  auto log = store_->ReadErasureLog();
  ASSERT_TRUE(log.ok());
  BackupInfo backup;
  backup.position = log->position;
  ASSERT_TRUE(backup.position.known());
  backup.created_ms = log->read_at_ms + 3600 * 1000;  // the clock stepped back an hour before the log
  SKV_EXPECT_OK(CheckErasureLogReadAfter(*log, backup));
  backup.position.commit += 1;  // a backup after the log: still refused
  EXPECT_TRUE(CheckErasureLogReadAfter(*log, backup).IsInvalidArgument());
}

// Review 39, #12: one request erasing a person the backup holds and one it
// never held (created after it). The restore erases the first again under
// the request's id and fences the second; the request's row counted only
// the first, so GetErasure (and erasure-status) said one person.
TEST_F(BackupTest, ARestoredRequestCountsItsFencedPeopleBesideTheOnesErasedAgain) {
  const PersonId held = MakePerson("held@x.org", {{"name", "H"}});
  ASSERT_TRUE(store_->Backup(out_.Sub("b")).ok());
  const PersonId later = MakePerson("later@x.org", {{"name", "L"}});
  ASSERT_TRUE(store_->Erase({held, later}, EraseOptions{"req-both", false, AnalyticsOnErase::kKeep}).ok());
  auto log = store_->ReadErasureLog();
  ASSERT_TRUE(log.ok()) << log.status().ToString();

  auto restored = RestoreBackup(out_.Sub("b"), RestoreTo(out_.Sub("r")), WithLog(*log));
  ASSERT_TRUE(restored.ok()) << restored.status().ToString();
  EXPECT_EQ(restored->applied.people_erased, 1u);
  EXPECT_EQ(restored->applied.not_present, 1u);
  auto r = Store::Open(RestoreTo(out_.Sub("r")));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  auto receipt = (*r)->GetErasure("req-both");
  ASSERT_TRUE(receipt.ok()) << receipt.status().ToString();
  EXPECT_EQ(receipt->people, 2u);
  EXPECT_TRUE((*r)->GetPerson(held).status().IsErased());
  EXPECT_TRUE((*r)->GetPerson(later).status().IsErased());
  SKV_ASSERT_OK((*r)->Close());
}

// Review 39, #6: the rotation audit's meta row (in `data`) holds an epoch
// number, and the epochs live in `keys`. A snapshot that copied `keys`
// before a rotation and `data` after it has the row at the number its own
// next rotation gets, and that rotation — the one that makes re-applied
// erasures cryptographic — went unaudited. A rotation is audited by the
// call that makes it now, whatever the row says.
std::size_t RotationEntries(Store& store) {
  auto entries = store.ReadAudit(0, 100000);
  if (!entries.ok()) return 0;
  return static_cast<std::size_t>(std::count_if(entries->begin(), entries->end(), [](const AuditRecord& e) {
    return e.action == AuditAction::kRotation;
  }));
}

TEST_F(BackupTest, TheFirstRotationOfASnapshotWithKeysCopiedBeforeARotationAndDataAfterIsAudited) {
  const PersonId a = MakePerson("a@x.org", {{"name", "A"}});
  // A's key is claimed from the pool in `data` until a rotation adopts it
  // into `keys`: adopted before the copy begins (a copy torn across that
  // adoption holds neither the claim nor the key).
  ASSERT_TRUE(store_->RotateEpoch().ok());
  const std::string snap_dir = out_.Sub("snap");
  fs::create_directories(snap_dir + "/keys");
  fs::create_directories(snap_dir + "/data");
  fs::copy_file(dir_.path() + "/keys/data.mdb", snap_dir + "/keys/data.mdb");
  ASSERT_TRUE(store_->RotateEpoch().ok());
  fs::copy_file(dir_.path() + "/data/data.mdb", snap_dir + "/data/data.mdb");

  auto s = Store::Open(RestoreTo(snap_dir));
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  const std::size_t before = RotationEntries(**s);
  auto rotated = (*s)->RotateEpoch();
  ASSERT_TRUE(rotated.ok()) << rotated.status().ToString();
  EXPECT_EQ(RotationEntries(**s), before + 1);
  auto profile = (*s)->GetProfile(a);
  ASSERT_TRUE(profile.ok()) << profile.status().ToString();
  EXPECT_EQ(profile->at("name").as_string(), "A");
  SKV_ASSERT_OK((*s)->Close());
}

// Review of stop 34, R2: a restore counted the people of its log that the
// backup never held (created after it) as not present and fenced nothing,
// so the restored store's own log no longer named them. Restored with that
// log, a newer backup of the original, taken while such a person lived,
// brought them back. They are fenced now.
TEST_F(BackupTest, ARestoredStoresLogKeepsTheErasuresOfPeopleItsBackupNeverHeld) {
  const PersonId early = MakePerson("early@x.org");
  ASSERT_TRUE(store_->Backup(out_.Sub("b1")).ok());  // before p existed
  const PersonId p = MakePerson("p@x.org");
  SKV_ASSERT_OK(store_->Put(p, "notes", "n", "P's diary"));
  ASSERT_TRUE(store_->Backup(out_.Sub("b2")).ok());  // while p lived
  ASSERT_TRUE(store_->Erase(p, EraseOptions{"req-p", true, AnalyticsOnErase::kKeep}).ok());
  auto log = store_->ReadErasureLog();
  ASSERT_TRUE(log.ok());

  // The original lost: b1 restored, and it becomes the live store.
  auto first = RestoreBackup(out_.Sub("b1"), RestoreTo(out_.Sub("r1")), WithLog(*log));
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(first->applied.not_present, 1u);
  std::optional<ErasureLog> live_log;
  {
    auto r1 = Store::Open(RestoreTo(out_.Sub("r1")));
    ASSERT_TRUE(r1.ok()) << r1.status().ToString();
    EXPECT_TRUE((*r1)->GetPerson(p).status().IsErased()) << (*r1)->GetPerson(p).status().ToString();
    auto read = (*r1)->ReadErasureLog();
    ASSERT_TRUE(read.ok());
    live_log = *read;
  }
  ASSERT_EQ(live_log->people.size(), 1u);
  EXPECT_EQ(live_log->people[0].person, p);
  EXPECT_EQ(live_log->people[0].request_id, "req-p");
  // Then b2, newer, is restored with the live store's log: p stays erased.
  auto second = RestoreBackup(out_.Sub("b2"), RestoreTo(out_.Sub("r2")), WithLog(*live_log));
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_EQ(second->applied.people_erased, 1u);
  auto r2 = Store::Open(RestoreTo(out_.Sub("r2")));
  ASSERT_TRUE(r2.ok()) << r2.status().ToString();
  EXPECT_TRUE((*r2)->Get(p, "notes", "n").status().IsErased());
  EXPECT_TRUE((*r2)->GetPerson(early).ok());
}

// The same for a category (review of stop 34, R2's category half, left
// until stop 37): a backup taken before the person had any data in the
// category was restored with a log naming the category's erasure; the
// copy held nothing to erase, fenced nothing, and its own log no longer
// named the erasure, so a newer backup restored with that log brought the
// category back. It is fenced at a slot no key takes now, and the data
// written in the category after the restore is not erased again by the log.
TEST_F(BackupTest, ARestoredStoresLogKeepsACategoryErasureItsBackupHeldNothingIn) {
  options_.categories = {"location"};
  options_.event_categories = {{"gps_ping", "location"}};
  Reopen();
  const PersonId p = MakePerson("p@x.org");
  ASSERT_TRUE(store_->Backup(out_.Sub("b1")).ok());  // p has no location data yet
  SKV_ASSERT_OK(store_->AppendEvent(p, Event{"gps_ping", 1000, {{"lat", 52.5}}, {}, {}}));
  ASSERT_TRUE(store_->Backup(out_.Sub("b2")).ok());  // p's location data in it
  SKV_ASSERT_OK(store_->EraseCategory(p, "location", EraseOptions{"req-loc", false, AnalyticsOnErase::kKeep}).status());
  auto log = store_->ReadErasureLog();
  ASSERT_TRUE(log.ok());

  auto first = RestoreBackup(out_.Sub("b1"), RestoreTo(out_.Sub("r1")), WithLog(*log));
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(first->applied.not_present, 1u);
  std::optional<ErasureLog> live_log;
  {
    auto r1 = Store::Open(RestoreTo(out_.Sub("r1")));
    ASSERT_TRUE(r1.ok()) << r1.status().ToString();
    auto read = (*r1)->ReadErasureLog();
    ASSERT_TRUE(read.ok());
    live_log = *read;
    ASSERT_EQ(live_log->categories.size(), 1u) << "the restored store's log lost the category erasure";
    EXPECT_EQ(live_log->categories[0].person, p);
    EXPECT_EQ(live_log->categories[0].category, "location");
    EXPECT_EQ(live_log->categories[0].request_id, "req-loc");
    // p's location data written in the restored store: a new key, and the
    // log applied again erases none of it (the fence says it was applied).
    SKV_ASSERT_OK((*r1)->AppendEvent(p, Event{"gps_ping", 2000, {{"lat", 48.1}}, {}, {}}));
    SKV_ASSERT_OK((*r1)->Close());
    auto again = ReapplyErasureLog(RestoreTo(out_.Sub("r1")), *live_log);
    ASSERT_TRUE(again.ok()) << again.status().ToString();
    EXPECT_EQ(again->categories_erased, 0u);
    auto reopened = Store::Open(RestoreTo(out_.Sub("r1")));
    ASSERT_TRUE(reopened.ok());
    auto it = (*reopened)->ScanEvents(p, {});
    ASSERT_TRUE(it->Valid()) << it->status().ToString();
    EXPECT_EQ(it->value().ts_ms, 2000);
  }
  // b2, newer, restored with the restored store's log: the category stays erased.
  auto second = RestoreBackup(out_.Sub("b2"), RestoreTo(out_.Sub("r2")), WithLog(*live_log));
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_EQ(second->applied.categories_erased, 1u);
  auto r2 = Store::Open(RestoreTo(out_.Sub("r2")));
  ASSERT_TRUE(r2.ok()) << r2.status().ToString();
  auto it = (*r2)->ScanEvents(p, {});
  EXPECT_FALSE(it->Valid()) << "p's location event came back";
  EXPECT_TRUE((*r2)->GetPerson(p).ok());
}

// Review of stop 37, S1: the same when the copy's key for the category
// was erased already (an earlier erasure of the category, held by the
// backup) and when the copy never held the person (created after it):
// both were left out of the restored store's log, and a newer backup
// restored with that log brought the category back.
TEST_F(BackupTest, ARestoredStoresLogKeepsCategoryErasuresOfErasedKeysAndOfPeopleItNeverHeld) {
  options_.categories = {"location"};
  options_.event_categories = {{"gps_ping", "location"}};
  Reopen();
  const PersonId p = MakePerson("p@x.org");
  SKV_ASSERT_OK(store_->AppendEvent(p, Event{"gps_ping", 1000, {}, {}, {}}));
  SKV_ASSERT_OK(store_->EraseCategory(p, "location", EraseOptions{"req-1", false, AnalyticsOnErase::kKeep}).status());
  ASSERT_TRUE(store_->Backup(out_.Sub("b1")).ok());  // p's location key erased (req-1)
  SKV_ASSERT_OK(store_->AppendEvent(p, Event{"gps_ping", 2000, {}, {}, {}}));  // a new key
  const PersonId q = MakePerson("q@x.org");                                     // after b1
  SKV_ASSERT_OK(store_->AppendEvent(q, Event{"gps_ping", 3000, {}, {}, {}}));
  ASSERT_TRUE(store_->Backup(out_.Sub("b2")).ok());
  SKV_ASSERT_OK(store_->EraseCategory(p, "location", EraseOptions{"req-2", false, AnalyticsOnErase::kKeep}).status());
  SKV_ASSERT_OK(store_->EraseCategory(q, "location", EraseOptions{"req-3", false, AnalyticsOnErase::kKeep}).status());
  auto log = store_->ReadErasureLog();
  ASSERT_TRUE(log.ok());
  ASSERT_EQ(log->categories.size(), 3u);

  auto first = RestoreBackup(out_.Sub("b1"), RestoreTo(out_.Sub("r1")), WithLog(*log));
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  std::optional<ErasureLog> live_log;
  {
    auto r1 = Store::Open(RestoreTo(out_.Sub("r1")));
    ASSERT_TRUE(r1.ok()) << r1.status().ToString();
    auto read = (*r1)->ReadErasureLog();
    ASSERT_TRUE(read.ok());
    live_log = *read;
  }
  std::set<std::string> requests;
  for (const ErasedCategoryEntry& e : live_log->categories) requests.insert(e.request_id);
  EXPECT_EQ(requests, (std::set<std::string>{"req-1", "req-2", "req-3"}));

  auto second = RestoreBackup(out_.Sub("b2"), RestoreTo(out_.Sub("r2")), WithLog(*live_log));
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  auto r2 = Store::Open(RestoreTo(out_.Sub("r2")));
  ASSERT_TRUE(r2.ok()) << r2.status().ToString();
  EXPECT_FALSE((*r2)->ScanEvents(p, {})->Valid()) << "p's location event written after req-1 came back";
  EXPECT_FALSE((*r2)->ScanEvents(q, {})->Valid()) << "q's location event came back";
  EXPECT_TRUE((*r2)->GetPerson(q).ok());
}

// Review of stop 37, R4 and S10: the MANIFEST names BLAKE2b-256 digests of
// the files; a file changed with its XXH3 checksum recomputed fails them.
TEST_F(BackupTest, AFileChangedWithItsChecksumRecomputedFailsItsDigest) {
  MakePerson("a@x.org");
  ASSERT_TRUE(store_->Backup(out_.Sub("b")).ok());
  const std::string manifest = out_.Sub("b") + "/MANIFEST";
  std::string text = test::ReadFile(manifest);
  ASSERT_NE(text.find("\ndata_blake2b_256 "), std::string::npos);
  ASSERT_NE(text.find("\nkeys_blake2b_256 "), std::string::npos);
  const std::string data = out_.Sub("b") + "/data/data.mdb";
  std::string bytes = test::ReadFile(data);
  bytes.back() = static_cast<char>(bytes.back() ^ 1);  // the file's last page: its free tail
  test::WriteFile(data, bytes);
  auto sum = util::FileChecksum(data);
  ASSERT_TRUE(sum.ok());
  const std::size_t at = text.find("data_xxh3_128 ") + 14;
  text.replace(at, 32, util::HexEncode(*sum));
  // Untagged (the tag would fail first): the digest check alone refuses it.
  text = text.substr(0, text.find("tag "));
  test::WriteFile(manifest, text);
  RestoreOptions no_log;
  no_log.without_erasure_log = true;
  no_log.accept_untagged_backup = true;
  auto refused = RestoreBackup(out_.Sub("b"), RestoreTo(out_.Sub("r")), no_log);
  EXPECT_TRUE(refused.status().IsCorruption()) << refused.status().ToString();
  EXPECT_NE(refused.status().message().find("BLAKE2b"), std::string::npos) << refused.status().ToString();
  EXPECT_FALSE(fs::exists(out_.Sub("r")));
}

// Review of stop 34, R3: a category written again after its erasure gets a
// new key, and may be erased again. A log read between the two erasures
// names the category once; the backup holds two. The check counted them
// as a set, and accepted that log.
TEST_F(BackupTest, ALogLackingTheSecondErasureOfACategoryIsOlderThanTheBackup) {
  options_.categories = {"location"};
  options_.event_categories = {{"gps_ping", "location"}};
  Reopen();
  const PersonId p = MakePerson("p@x.org");
  const PersonId r = MakePerson("r@x.org");
  SKV_ASSERT_OK(store_->AppendEvent(p, Event{"gps_ping", 1000, {{"place", "a"}}, {}, {}}));
  ASSERT_TRUE(store_->EraseCategory(p, "location", EraseOptions{"loc-1", false, AnalyticsOnErase::kKeep}).ok());
  auto between = store_->ReadErasureLog();
  ASSERT_TRUE(between.ok());
  SKV_ASSERT_OK(store_->AppendEvent(p, Event{"gps_ping", 2000, {{"place", "b"}}, {}, {}}));
  ASSERT_TRUE(store_->EraseCategory(p, "location", EraseOptions{"loc-2", false, AnalyticsOnErase::kKeep}).ok());
  ASSERT_TRUE(store_->Backup(out_.Sub("b")).ok());
  ASSERT_TRUE(store_->Erase(r).ok());
  auto stale = RestoreBackup(out_.Sub("b"), RestoreTo(out_.Sub("r")), WithLog(*between));
  EXPECT_TRUE(stale.status().IsInvalidArgument()) << stale.status().ToString();
  EXPECT_NE(stale.status().message().find("loc-2"), std::string::npos) << stale.status().ToString();
  auto log = store_->ReadErasureLog();
  ASSERT_TRUE(log.ok());
  auto restored = RestoreBackup(out_.Sub("b"), RestoreTo(out_.Sub("r")), WithLog(*log));
  ASSERT_TRUE(restored.ok()) << restored.status().ToString();
  EXPECT_EQ(restored->applied.people_erased, 1u);
}

// Review of stop 34, R5: the rotation and compaction that make re-applied
// erasures cryptographic were decided by what the run erased, so a run
// after one cut short between its erasures and its rotation erased nothing,
// rotated nothing and reported OK. They follow the store's own state now.
TEST_F(BackupTest, ReapplyErasureLogAfterARunCutShortStillMakesTheErasuresCryptographic) {
  const PersonId gone = MakePerson("gone@x.org");
  SKV_ASSERT_OK(store_->Put(gone, "notes", "n", "G's diary"));
  ASSERT_TRUE(store_->Backup(out_.Sub("b")).ok());
  ASSERT_TRUE(store_->Erase(gone, EraseOptions{"req-gone", false, AnalyticsOnErase::kKeep}).ok());
  auto log = store_->ReadErasureLog();
  ASSERT_TRUE(log.ok());
  for (const char* sub : {"keys", "data"}) {
    fs::create_directories(out_.Sub("copy") + "/" + sub);
    fs::copy_file(out_.Sub("b") + "/" + sub + "/data.mdb", out_.Sub("copy") + "/" + sub + "/data.mdb");
  }
  {
    // The first run, cut short after its erasures: applied, not rotated.
    auto copy = Store::Open(RestoreTo(out_.Sub("copy")));
    ASSERT_TRUE(copy.ok()) << copy.status().ToString();
    auto applied = (*copy)->ApplyErasureLog(*log);
    ASSERT_TRUE(applied.ok());
    ASSERT_EQ(applied->people_erased, 1u);
    auto receipt = (*copy)->GetErasure("req-gone");
    ASSERT_TRUE(receipt.ok());
    ASSERT_FALSE(receipt->cryptographic);
  }
  auto again = ReapplyErasureLog(RestoreTo(out_.Sub("copy")), *log);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->people_erased, 0u);
  auto copy = Store::Open(RestoreTo(out_.Sub("copy")));
  ASSERT_TRUE(copy.ok()) << copy.status().ToString();
  auto receipt = (*copy)->GetErasure("req-gone");
  ASSERT_TRUE(receipt.ok()) << receipt.status().ToString();
  EXPECT_TRUE(receipt->cryptographic);
  EXPECT_EQ(receipt->level, ErasureLevel::kPurged);
  EXPECT_EQ((*copy)->Stats()->erasures_since_rotation, 0u);
}

TEST_F(BackupTest, AnErasureLogCutShortIsRefused) {
  const PersonId a = MakePerson("a@x.org");
  const PersonId b = MakePerson("b@x.org");
  ASSERT_TRUE(store_->Erase(a, EraseOptions{"r-a", true, AnalyticsOnErase::kKeep}).ok());
  ASSERT_TRUE(store_->Erase(b).ok());
  auto log = store_->ReadErasureLog();
  ASSERT_TRUE(log.ok());
  std::ostringstream out;
  SKV_ASSERT_OK(WriteErasureLog(*log, out));
  const std::string text = out.str();
  std::istringstream whole(text);
  auto read = ReadErasureLog(whole);
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  EXPECT_EQ(read->people.size(), 2u);
  EXPECT_EQ(read->suppressed.size(), 1u);
  EXPECT_EQ(read->store_id, log->store_id);
  // Every cut at a line boundary, and a line lost in the middle, is refused.
  std::vector<std::size_t> ends;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\n') ends.push_back(i + 1);
  }
  for (std::size_t k = 0; k + 1 < ends.size(); ++k) {
    std::istringstream cut(text.substr(0, ends[k]));
    EXPECT_TRUE(ReadErasureLog(cut).status().IsInvalidArgument()) << "cut after line " << k + 1;
  }
  std::istringstream missing(text.substr(0, ends[0]) + text.substr(ends[1]));
  EXPECT_TRUE(ReadErasureLog(missing).status().IsInvalidArgument());
  // Found by fuzz_payloads: a time given as a float out of int64 range was
  // converted (undefined behaviour); numbers must be JSON integers.
  for (const char* bad : {"1.7e30", "1.5", "\"12\"", "18446744073709551615"}) {
    std::string edited = text;
    const std::size_t at = edited.find("\"erased_at_ms\":") + 15;
    edited.replace(at, edited.find(',', at) - at, bad);
    std::istringstream in(edited);
    EXPECT_TRUE(ReadErasureLog(in).status().IsInvalidArgument()) << bad;
  }
}

TEST_F(BackupTest, BackupAndRestoreRefuseADirectoryThatHoldsSomething) {
  MakePerson("a@x.org");
  fs::create_directories(out_.Sub("full"));
  test::WriteFile(out_.Sub("full") + "/x", "keep me");
  EXPECT_TRUE(store_->Backup(out_.Sub("full")).status().IsAlreadyExists());
  EXPECT_EQ(test::ReadFile(out_.Sub("full") + "/x"), "keep me");
  ASSERT_TRUE(store_->Backup(out_.Sub("b")).ok());
  RestoreOptions no_log;
  no_log.without_erasure_log = true;
  EXPECT_TRUE(RestoreBackup(out_.Sub("b"), RestoreTo(out_.Sub("full")), no_log).status().IsAlreadyExists());
  EXPECT_EQ(test::ReadFile(out_.Sub("full") + "/x"), "keep me");
  // An empty directory is fine.
  fs::create_directories(out_.Sub("empty"));
  auto restored = RestoreBackup(out_.Sub("b"), RestoreTo(out_.Sub("empty")), no_log);
  EXPECT_TRUE(restored.ok()) << restored.status().ToString();
}

// Outside audit 37c, F3 and F7: a MANIFEST that is a FIFO hung the read
// for ever, one without a newline was read whole, "-1" was read as 2^64 - 1,
// and a later version was reported as no manifest at all.
TEST_F(BackupTest, AManifestThatIsAFifoHugeNegativeOrOfALaterVersionIsRefusedAtOnce) {
  MakePerson("a@x.org");
  ASSERT_TRUE(store_->Backup(out_.Sub("b")).ok());
  const std::string manifest = out_.Sub("b") + "/MANIFEST";
  const std::string good = test::ReadFile(manifest);
  fs::remove(manifest);
  ASSERT_EQ(::mkfifo(manifest.c_str(), 0600), 0);
  EXPECT_TRUE(ReadBackupInfo(out_.Sub("b")).status().IsCorruption());
  fs::remove(manifest);
  test::WriteFile(manifest, good + std::string(100 * 1024, 'x'));
  EXPECT_TRUE(ReadBackupInfo(out_.Sub("b")).status().IsCorruption());
  std::string negative = good;
  negative.replace(negative.find("\npeople 1\n") + 8, 1, "-1");
  test::WriteFile(manifest, negative);
  auto info = ReadBackupInfo(out_.Sub("b"));
  EXPECT_TRUE(info.status().IsCorruption()) << (info.ok() ? std::to_string(info->people) : "");
  std::string later = good;
  later.replace(0, later.find('\n'), "shredkv-backup 2");
  test::WriteFile(manifest, later);
  EXPECT_TRUE(ReadBackupInfo(out_.Sub("b")).status().IsUnsupportedVersion());
  test::WriteFile(manifest, good);
  auto ok = ReadBackupInfo(out_.Sub("b"));
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok->people, 1u);
}

// Outside audit 37c, F6: a restore removed whatever was at
// TARGET.restoring — a directory of the caller's, even the backup being
// restored — and two restores into one target removed each other's work.
TEST_F(BackupTest, ARestoreLeavesWhatIsNotItsOwnWorkAloneAndRunsOneAtATime) {
  const PersonId ann = MakePerson("ann@x.org");
  RestoreOptions no_log;
  no_log.without_erasure_log = true;
  const std::string target = out_.Sub("r");
  // The backup as TARGET.restoring, and inside the target.
  ASSERT_TRUE(store_->Backup(target + ".restoring").ok());
  EXPECT_TRUE(RestoreBackup(target + ".restoring", RestoreTo(target), no_log).status().IsInvalidArgument());
  EXPECT_TRUE(ReadBackupInfo(target + ".restoring").ok()) << "the backup was removed";
  fs::create_directories(out_.Sub("t2"));
  ASSERT_TRUE(store_->Backup(out_.Sub("t2") + "/b").ok());
  EXPECT_TRUE(RestoreBackup(out_.Sub("t2") + "/b", RestoreTo(out_.Sub("t2")), no_log).status().IsInvalidArgument());
  EXPECT_TRUE(ReadBackupInfo(out_.Sub("t2") + "/b").ok());
  fs::rename(target + ".restoring", out_.Sub("b"));

  // Someone else's directory at TARGET.restoring stays, and so does the
  // target.
  fs::create_directories(target + ".restoring");
  test::WriteFile(target + ".restoring/mine", "keep me");
  EXPECT_TRUE(RestoreBackup(out_.Sub("b"), RestoreTo(target), no_log).status().IsAlreadyExists());
  EXPECT_EQ(test::ReadFile(target + ".restoring/mine"), "keep me");
  EXPECT_FALSE(fs::exists(target));
  // A restore cut short leaves its marker: the next restore clears its work.
  fs::remove(target + ".restoring/mine");
  test::WriteFile(target + ".restoring/RESTORE-IN-PROGRESS", "a restore works here\n");
  test::WriteFile(target + ".restoring/half-copied", "x");

  // Another restore beside the target holds the directory's lock: Busy.
  const int held = ::open(out_.path().c_str(), O_RDONLY | O_DIRECTORY);
  ASSERT_GE(held, 0);
  ASSERT_EQ(::flock(held, LOCK_EX), 0);
  EXPECT_TRUE(RestoreBackup(out_.Sub("b"), RestoreTo(target), no_log).status().IsBusy());
  EXPECT_FALSE(fs::exists(target));
  ::close(held);

  auto restored = RestoreBackup(out_.Sub("b"), RestoreTo(target), no_log);
  ASSERT_TRUE(restored.ok()) << restored.status().ToString();
  EXPECT_FALSE(fs::exists(target + ".restoring"));
  EXPECT_FALSE(fs::exists(target + "/RESTORE-IN-PROGRESS"));
  auto r = Store::Open(RestoreTo(target));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE((*r)->GetPerson(ann).ok());
}

// Outside audit 37c, F8: into an empty mount point (a fresh volume) the
// restore did all its work beside it, then failed at the rename (EBUSY).
// Refused before the work now. Needs mount(2): skipped where not allowed.
TEST_F(BackupTest, ARestoreIntoAMountPointIsRefusedBeforeItsWork) {
  MakePerson("a@x.org");
  ASSERT_TRUE(store_->Backup(out_.Sub("b")).ok());
  const std::string mnt = out_.Sub("mnt");
  fs::create_directories(mnt);
  if (::geteuid() != 0 || std::system(("mount -t tmpfs -o size=1m tmpfs '" + mnt + "' 2>/dev/null").c_str()) != 0) {
    GTEST_SKIP() << "cannot mount a tmpfs here";
  }
  RestoreOptions no_log;
  no_log.without_erasure_log = true;
  auto refused = RestoreBackup(out_.Sub("b"), RestoreTo(mnt), no_log);
  const bool unmounted = std::system(("umount '" + mnt + "'").c_str()) == 0;
  EXPECT_TRUE(refused.status().IsInvalidArgument()) << refused.status().ToString();
  EXPECT_NE(refused.status().message().find("mount point"), std::string::npos);
  EXPECT_FALSE(fs::exists(mnt + ".restoring"));
  ASSERT_TRUE(unmounted);
}

TEST_F(BackupTest, ABackupTakenDuringWritesIsConsistent) {
  // Writers create people and append events while backups are taken; each
  // backup must restore to a store whose every person reads whole (keys and
  // data from one moment) and that Verify finds clean.
  std::atomic<bool> stop{false};
  std::atomic<int> created{0};
  std::vector<std::thread> writers;
  for (int t = 0; t < 3; ++t) {
    writers.emplace_back([&, t] {
      for (int i = 0; !stop.load(); ++i) {
        auto p = store_->CreatePerson({{"email", "w" + std::to_string(t) + "-" + std::to_string(i) + "@x.org"}},
                                      {{"n", static_cast<std::int64_t>(i)}});
        if (!p.ok()) continue;
        created.fetch_add(1);
        for (int e = 0; e < 3; ++e) (void)store_->AppendEvent(*p, Event{"view", 1000 + e, {}, {}});
      }
    });
  }
  while (created.load() < 30) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  std::vector<BackupInfo> backups;
  for (int k = 0; k < 3; ++k) {
    auto info = store_->Backup(out_.Sub("b" + std::to_string(k)));
    ASSERT_TRUE(info.ok()) << info.status().ToString();
    backups.push_back(*info);
  }
  stop.store(true);
  for (auto& w : writers) w.join();
  auto log = store_->ReadErasureLog();
  ASSERT_TRUE(log.ok());
  for (std::size_t k = 0; k < backups.size(); ++k) {
    const std::string target = out_.Sub("r" + std::to_string(k));
    auto restored = RestoreBackup(backups[k].directory, RestoreTo(target), WithLog(*log));
    ASSERT_TRUE(restored.ok()) << restored.status().ToString();
    auto r = Store::Open(RestoreTo(target));
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_TRUE(test::VerifiesClean(**r));
    auto stats = (*r)->Stats();
    ASSERT_TRUE(stats.ok());
    EXPECT_EQ(stats->people, backups[k].people);
    EXPECT_GE(stats->people, 30u);
    // No key without its person row and no person row without its key.
    EXPECT_EQ(stats->orphan_keys_collected, 0u);
    auto report = (*r)->Verify();
    ASSERT_TRUE(report.ok());
    EXPECT_EQ(report->orphan_keys, 0u);
  }
}

class RootKeyRotationTest : public test::StoreTest {};

TEST_F(RootKeyRotationTest, AfterRotationOnlyTheNewRootKeyOpensTheStore) {
  const PersonId a = MakePerson("a@x.org", {{"name", "A"}});
  auto& before = static_cast<engine::StoreImpl&>(*store_);
  auto old_epoch_row = before.key_store().RawRowForTesting("epochs", codec::EpochKey(1));
  auto old_check_row = before.key_store().RawRowForTesting("meta", "root_check");
  ASSERT_TRUE(old_epoch_row.ok() && old_check_row.ok());
  auto new_provider = NewRawKeyProvider(test::TestKeyBytes('n'));
  SKV_ASSERT_OK(store_->RotateRootKey(new_provider));
  EXPECT_EQ(store_->GetProfile(a)->at("name").as_string(), "A");  // the open store goes on
  EXPECT_TRUE(store_->RotateRootKey(new_provider).IsInvalidArgument());  // already the root key
  store_.reset();
  auto old_open = Store::Open(options_);
  EXPECT_TRUE(old_open.status().IsWrongKey()) << old_open.status().ToString();
  Options o = options_;
  o.key_provider = new_provider;
  auto reopened = Store::Open(o);
  ASSERT_TRUE(reopened.ok()) << reopened.status().ToString();
  EXPECT_EQ((*reopened)->GetProfile(a)->at("name").as_string(), "A");
  EXPECT_TRUE(test::VerifiesClean(**reopened));
  // The keys file was rebuilt: no row sealed under the old root is left in
  // any page of it, free pages included.
  reopened->reset();
  const std::string keys_file = test::ReadFile(options_.directory + "/keys/data.mdb");
  EXPECT_EQ(keys_file.find(*old_epoch_row), std::string::npos);
  EXPECT_EQ(keys_file.find(*old_check_row), std::string::npos);
}

TEST_F(RootKeyRotationTest, APassphraseStoreMovesToANewPassphrase) {
  test::TempDir dir;
  Options o = test::TestOptions(dir.Sub("p"));
  o.key_provider = NewPassphraseKeyProvider("old passphrase", PassphraseOptions{true});
  PersonId a;
  {
    auto s = Store::Open(o);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    a = *(*s)->CreatePerson({{"email", "a@x.org"}}, {{"name", "A"}});
    SKV_ASSERT_OK((*s)->RotateRootKey(NewPassphraseKeyProvider("new passphrase", PassphraseOptions{true})));
  }
  EXPECT_TRUE(Store::Open(o).status().IsWrongKey());
  o.key_provider = NewPassphraseKeyProvider("new passphrase", PassphraseOptions{true});
  auto s = Store::Open(o);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ((*s)->GetProfile(a)->at("name").as_string(), "A");
}

TEST(RootKeyRotationCrashTest, ACrashBeforeTheRebuildLeavesTheStoreToTheNewKey) {
  test::TempDir dir;
  Options o = test::TestOptions(dir.Sub("s"));
  o.durability = Durability::kFullSync;
  PersonId a;
  {
    auto s = Store::Open(o);
    ASSERT_TRUE(s.ok());
    a = *(*s)->CreatePerson({{"email", "a@x.org"}}, {{"name", "A"}});
  }
  const bool killed = test::RunChildKilledAt("root_rotation.before_rebuild", 1, [&] {
    auto s = Store::Open(o);
    if (!s.ok()) _exit(4);
    (void)(*s)->RotateRootKey(NewRawKeyProvider(test::TestKeyBytes('n')));
  });
  ASSERT_TRUE(killed);
  EXPECT_TRUE(Store::Open(o).status().IsWrongKey());
  Options n = o;
  n.key_provider = NewRawKeyProvider(test::TestKeyBytes('n'));
  auto s = Store::Open(n);  // finishes the pending rebuild
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ((*s)->GetProfile(a)->at("name").as_string(), "A");
  EXPECT_FALSE(static_cast<engine::StoreImpl&>(**s).key_store().rebuild_pending());
}

// Outside audit 32b, F1: a rotation cut short leaves the DEKs under two
// epoch keys (a state the next rotation finishes). RotateRootKey re-sealed
// every epoch row into one reused buffer that SealRow appends to, so every
// row after the first was garbage: it reported success, and afterwards
// neither the old nor the new root key opened the store.
TEST(RootKeyRotationCrashTest, TheRootKeyRotatesWhileARotationCutShortLeftTwoEpochKeys) {
  test::TempDir dir;
  Options o = test::TestOptions(dir.Sub("s"));
  o.durability = Durability::kFullSync;
  o.rotation_batch_size = 10;
  const std::vector<PersonId> people = test::FiftyPeopleFirstErased(o);
  ASSERT_EQ(people.size(), 50u);
  ASSERT_TRUE(test::RunChildKilledAt("rotation.after_rewrap_batch", 2, [&] {
    auto s = Store::Open(o);
    if (!s.ok()) _exit(4);
    (void)(*s)->RotateEpoch();
  }));
  auto new_provider = NewRawKeyProvider(test::TestKeyBytes('n'));
  {
    auto s = Store::Open(o);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    auto stats = (*s)->Stats();
    ASSERT_TRUE(stats.ok());
    ASSERT_LT(stats->oldest_key_epoch, stats->key_epoch);  // two epoch keys live
    SKV_ASSERT_OK((*s)->RotateRootKey(new_provider));
  }
  EXPECT_TRUE(Store::Open(o).status().IsWrongKey());
  Options n = o;
  n.key_provider = new_provider;
  {
    n.read_only = true;
    n.create_if_missing = false;
    auto s = Store::Open(n);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    EXPECT_TRUE(test::FiftyPeopleRead(**s, people));
    n.read_only = false;
  }
  auto s = Store::Open(n);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_TRUE(test::FiftyPeopleRead(**s, people));
  auto r = (*s)->RotateEpoch();  // the rotation cut short finishes under the new root key
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(test::FiftyPeopleRead(**s, people));
  EXPECT_TRUE(test::VerifiesClean(**s));
}

}  // namespace
}  // namespace shredkv

namespace shredkv {
namespace {

// Outside audit 30, F1: a lease's scan in a read-only open beside a writer
// process. The writer's category erasure makes the iterator read again from
// its current entry (another process's erasure does not wait for this
// process's lease), and the entry that took the current place had never
// been through the lease's filter: a `billing` lease handed out a record
// collected only for `marketing`, and an event of a category the person
// restricted. The filter now runs where every batch is read.
// A writer process forked from the test, and the test (the reader beside
// it), each telling the other one letter at a time over two pipes.
class WriterProcess {
 public:
  // Forks; the child runs `writer` (which talks through Say / WaitFor) and
  // exits with what it returns. Returns false if the fork or a pipe failed.
  bool Start(const std::function<int()>& writer) {
    if (::pipe(to_child_) != 0 || ::pipe(to_parent_) != 0) return false;
    pid_ = ::fork();
    if (pid_ < 0) return false;
    child_ = pid_ == 0;
    ::close(child_ ? to_child_[1] : to_child_[0]);
    ::close(child_ ? to_parent_[0] : to_parent_[1]);
    if (child_) _exit(writer());
    return true;
  }
  // Tells the other side `c`; false if it could not.
  bool Say(char c) { return ::write(child_ ? to_parent_[1] : to_child_[1], &c, 1) == 1; }
  // The other side's next letter; '\0' once it closed its end.
  char WaitFor() {
    char c = 0;
    return ::read(child_ ? to_child_[0] : to_parent_[0], &c, 1) == 1 ? c : '\0';
  }
  // The test: the writer's exit code once it ended, -1 if it did not exit.
  int Finish() {
    int status = 0;
    if (::waitpid(pid_, &status, 0) != pid_ || !WIFEXITED(status)) return -1;
    return WEXITSTATUS(status);
  }

 private:
  int to_child_[2] = {-1, -1}, to_parent_[2] = {-1, -1};
  pid_t pid_ = -1;
  bool child_ = false;
};

TEST(LiveReaderTest, ALeaseScanBesideAWriterNeverHandsOutWhatItsFilterRefuses) {
  test::TempDir dir;
  const std::string db = dir.Sub("s");
  Options o = test::TestOptions(db);
  o.categories = {"payment", "contact"};
  WriterProcess w;
  ASSERT_TRUE(w.Start([&]() -> int {
    auto store = Store::Open(o);
    if (!store.ok()) return 10;
    auto p = (*store)->CreatePerson({{"email", "p@x.org"}}, {{"name", "P"}});
    if (!p.ok()) return 11;
    auto record = [](std::string key, std::string purpose, std::string category) {
      Record r;
      r.collection = "orders";
      r.key = std::move(key);
      r.value = "for " + purpose;
      r.metadata.purposes = {std::move(purpose)};
      r.category = std::move(category);
      return r;
    };
    WriteBatch b;
    b.Put(*p, record("a1", "billing", ""));
    b.Put(*p, record("a2", "billing", "payment"));
    b.Put(*p, record("a3", "marketing", ""));  // not for billing
    b.Put(*p, record("a4", "billing", ""));
    b.AppendEvent(*p, Event{"view", 1, {}, {}, ""});
    b.AppendEvent(*p, Event{"pay", 2, {}, {}, "payment"});
    b.AppendEvent(*p, Event{"mail", 3, {}, {}, "contact"});  // restricted below
    b.AppendEvent(*p, Event{"view", 4, {}, {}, ""});
    if (!(*store)->Write(b).ok()) return 12;
    RestrictionSpec contact;
    contact.categories = {"contact"};
    if (!(*store)->Restrict(*p, contact).ok()) return 13;
    w.Say('r');
    if (w.WaitFor() != 'e') return 14;
    if (!(*store)->EraseCategory(*p, "payment").ok()) return 15;
    w.Say('e');
    if (w.WaitFor() != 'c') return 16;
    return (*store)->Close().ok() ? 0 : 17;
  }));
  ASSERT_EQ(w.WaitFor(), 'r');
  Options ro = o;
  ro.read_only = true;
  ro.create_if_missing = false;
  {
    auto reader = Store::Open(ro);
    ASSERT_TRUE(reader.ok()) << reader.status().ToString();
    auto p = (*reader)->Resolve({"email", "p@x.org"});
    ASSERT_TRUE(p.ok()) << p.status().ToString();
    auto lease = (*reader)->AcquireLease(*p, "billing");
    ASSERT_TRUE(lease.ok()) << lease.status().ToString();
    auto records = (*lease)->ScanRecords("orders");
    auto events = (*lease)->ScanEvents();
    ASSERT_TRUE(records->Valid());
    EXPECT_EQ(records->value().key, "a1");
    records->Next();
    ASSERT_TRUE(records->Valid());
    EXPECT_EQ(records->value().key, "a2");  // the current entry, of the category erased next
    ASSERT_TRUE(events->Valid());
    EXPECT_EQ(events->value().name, "view");
    events->Next();
    ASSERT_TRUE(events->Valid());
    EXPECT_EQ(events->value().name, "pay");
    ASSERT_TRUE(w.Say('e'));
    ASSERT_EQ(w.WaitFor(), 'e');
    std::vector<std::string> keys, names;
    for (; records->Valid(); records->Next()) keys.push_back(records->value().key);
    for (; events->Valid(); events->Next()) names.push_back(events->value().name);
    EXPECT_TRUE(records->status().ok()) << records->status().ToString();
    EXPECT_TRUE(events->status().ok()) << events->status().ToString();
    EXPECT_EQ(keys, (std::vector<std::string>{"a4"}));    // never a3 (marketing)
    EXPECT_EQ(names, (std::vector<std::string>{"view"}));  // never mail (restricted)
  }
  ASSERT_TRUE(w.Say('c'));
  EXPECT_EQ(w.Finish(), 0);
}

// Stop 31: a reader beside a writer whose rotation destroyed the old epoch
// keys and then waited for the reader to leave before rebuilding the keys
// file reloaded the epochs (a live person's key named the new one) but not
// the rebuild state, and reported the erasure cryptographic while the file
// still held the destroyed key's bytes. The receipt stays logical until the
// writer's rebuild.
WriterProcess* g_rotating_writer = nullptr;

TEST(LiveReaderTest, AReaderBesideARotationWaitingForItSaysTheErasureIsNotCryptographicYet) {
  test::TempDir dir;
  const std::string db = dir.Sub("s");
  const Options o = test::TestOptions(db);
  std::string request_id;
  PersonId live;
  {
    auto store = Store::Open(o);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    auto gone = (*store)->CreatePerson({{"email", "gone@x.org"}});
    auto kept = (*store)->CreatePerson({{"email", "kept@x.org"}}, {{"name", "K"}});
    ASSERT_TRUE(gone.ok() && kept.ok());
    live = *kept;
    auto receipt = (*store)->Erase(*gone);
    ASSERT_TRUE(receipt.ok()) << receipt.status().ToString();
    request_id = receipt->request_id;
  }
  WriterProcess w;
  g_rotating_writer = &w;
  ASSERT_TRUE(w.Start([&]() -> int {
    auto store = Store::Open(o);
    if (!store.ok()) return 10;
    w.Say('o');
    if (w.WaitFor() != 'r') return 11;
    util::SetTestPointHook([](std::string_view name) {
      if (name == "rotation.destroy_committed") g_rotating_writer->Say('d');
    });
    (void)(*store)->RotateEpoch();  // its rebuild waits for the reader to close
    return (*store)->Close().ok() ? 0 : 12;
  }));
  ASSERT_EQ(w.WaitFor(), 'o');
  Options ro = o;
  ro.read_only = true;
  ro.create_if_missing = false;
  {
    auto reader = Store::Open(ro);
    ASSERT_TRUE(reader.ok()) << reader.status().ToString();
    auto before = (*reader)->GetErasure(request_id);
    ASSERT_TRUE(before.ok()) << before.status().ToString();
    EXPECT_FALSE(before->cryptographic);
    ASSERT_TRUE(w.Say('r'));
    ASSERT_EQ(w.WaitFor(), 'd');
    auto profile = (*reader)->GetProfile(live);  // its key names the new epoch: the reader reloads
    ASSERT_TRUE(profile.ok()) << profile.status().ToString();
    EXPECT_EQ(profile->at("name"), Value("K"));
    auto during = (*reader)->GetErasure(request_id);
    ASSERT_TRUE(during.ok()) << during.status().ToString();
    EXPECT_FALSE(during->cryptographic);  // the destroyed key's bytes are still in the file
  }
  EXPECT_EQ(w.Finish(), 0);
  g_rotating_writer = nullptr;
  auto store = Store::Open(o);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  auto after = (*store)->GetErasure(request_id);
  ASSERT_TRUE(after.ok()) << after.status().ToString();
  EXPECT_TRUE(after->cryptographic);
}

// Issue 18: a read-only open beside the process that writes the store
// (`shredkv --read-only backup` while the application runs). The writer is
// a forked child; the reader is this process.
TEST(LiveReaderTest, AReadOnlyOpenReadsAndBacksUpBesideAWriterProcess) {
  test::TempDir dir;
  const std::string db = dir.Sub("s");
  WriterProcess w;
  ASSERT_TRUE(w.Start([&]() -> int {
    Options o = test::TestOptions(db);
    auto store = Store::Open(o);
    if (!store.ok()) return 10;
    auto a = (*store)->CreatePerson({{"email", "a@x.org"}}, {{"name", "A"}});
    auto b = (*store)->CreatePerson({{"email", "b@x.org"}}, {{"name", "B"}});
    if (!a.ok() || !b.ok()) return 11;
    for (int i = 0; i < 10; ++i) (void)(*store)->AppendEvent(*b, Event{"view", 1000 + i, {}, {}});
    w.Say('r');
    if (w.WaitFor() != 'e') return 12;
    if (!(*store)->Erase(*b).ok()) return 13;
    for (int i = 0; i < 50; ++i) (void)(*store)->AppendEvent(*a, Event{"view", 1000 + i, {}, {}});
    // Created after the reader opened: its key is a claimed pool row the
    // reader learns of through `data` (keys/key_store.h).
    if (!(*store)->CreatePerson({{"email", "c@x.org"}}, {{"name", "C"}}).ok()) return 15;
    w.Say('e');
    if (w.WaitFor() != 'c') return 14;
    // Waits for the reader beside it to close before swapping the file.
    if (!(*store)->CompactData().ok()) return 15;
    return (*store)->Close().ok() ? 0 : 16;
  }));
  ASSERT_EQ(w.WaitFor(), 'r');
  Options ro = test::TestOptions(db);
  ro.read_only = true;
  ro.create_if_missing = false;
  {
    auto reader = Store::Open(ro);
    ASSERT_TRUE(reader.ok()) << reader.status().ToString();
    auto a = (*reader)->Resolve({"email", "a@x.org"});
    auto b = (*reader)->Resolve({"email", "b@x.org"});
    ASSERT_TRUE(a.ok() && b.ok());
    EXPECT_EQ((*reader)->GetProfile(*b)->at("name").as_string(), "B");
    auto b_events = (*reader)->ScanEvents(*b);  // its batch holds all ten
    ASSERT_TRUE(b_events->Valid());
    ASSERT_TRUE(w.Say('e'));
    ASSERT_EQ(w.WaitFor(), 'e');
    // The writer's erasure is seen at once: no key is cached beside a writer,
    // and a scan started before hands out nothing more (stop 27's review:
    // the erasure epoch lived in the writer's memory only; now a read-only
    // open compares the `keys` file's last transaction).
    EXPECT_TRUE((*reader)->GetProfile(*b).status().IsErased());
    EXPECT_FALSE(b_events->Valid());
    EXPECT_TRUE(b_events->status().IsErased()) << b_events->status().ToString();
    auto c = (*reader)->Resolve({"email", "c@x.org"});
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    auto c_profile = (*reader)->GetProfile(*c);
    ASSERT_TRUE(c_profile.ok()) << c_profile.status().ToString();
    EXPECT_EQ(c_profile->at("name").as_string(), "C");
    std::size_t events = 0;
    for (auto it = (*reader)->ScanEvents(*a); it->Valid(); it->Next()) ++events;
    EXPECT_EQ(events, 50u);
    auto backup = (*reader)->Backup(dir.Sub("backup"));
    ASSERT_TRUE(backup.ok()) << backup.status().ToString();
    EXPECT_EQ(backup->people, 3u);  // b's rows await purge; b's key is gone
    ASSERT_TRUE(w.Say('c'));  // the writer's compaction now waits for this reader
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    EXPECT_EQ((*reader)->GetProfile(*a)->at("name").as_string(), "A");
  }
  ASSERT_EQ(w.Finish(), 0);
  // The backup restores; b stays erased (its key was gone when it was taken).
  Options to = test::TestOptions(dir.Sub("restored"));
  to.create_if_missing = false;
  RestoreOptions no_log;
  no_log.without_erasure_log = true;
  auto restored = RestoreBackup(dir.Sub("backup"), to, no_log);
  ASSERT_TRUE(restored.ok()) << restored.status().ToString();
  auto r = Store::Open(to);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE((*r)->Resolve({"email", "b@x.org"}).status().IsErased() ||
              (*r)->Resolve({"email", "b@x.org"}).status().IsNotFound());
  auto a = (*r)->Resolve({"email", "a@x.org"});
  ASSERT_TRUE(a.ok());
  EXPECT_EQ((*r)->GetProfile(*a)->at("name").as_string(), "A");
}

}  // namespace
}  // namespace shredkv
