#include <gtest/gtest.h>

#include "codec/sealed.h"
#include "storage/environment.h"
#include "test_util.h"
#include "util/coding.h"

namespace shredkv {
namespace {

class AuditTamperTest : public test::StoreTest {};

TEST_F(AuditTamperTest, RewrittenEntryWithValidChecksumBreaksTheChain) {
  for (int i = 0; i < 3; ++i) {
    auto id = store_->CreatePerson({{"email", "p" + std::to_string(i) + "@x.org"}});
    ASSERT_TRUE(id.ok());
    ASSERT_TRUE(store_->Erase(*id).ok());
  }
  ASSERT_TRUE(store_->VerifyAuditLog()->intact);
  SKV_ASSERT_OK(store_->Close());
  store_.reset();
  {
    storage::EnvOptions o;
    o.path = dir_.Sub("data");
    o.tables = {"audit"};
    auto env = storage::Environment::Open(o);
    ASSERT_TRUE(env.ok());
    storage::Table t = (*env)->table("audit");
    // Change the people count of entry 2 and fix up its XXH3 checksum, as an
    // attacker without the root key could: the keyed chain hash catches it.
    SKV_ASSERT_OK((*env)->Update([&](storage::WriteTxn& txn) -> Status {
      std::string key;
      util::PutFixed64BE(&key, 2);
      std::string_view row, payload;
      if (Status g = txn.Get(t, key, &row); !g.ok()) return g;
      if (Status p = codec::OpenPlain(codec::TableId::kAudit, key, row, &payload); !p.ok()) return p;
      std::string body(payload);
      body[1 + 8 + 1 + 35 + 7] ^= 0x01;  // kind, time, lp("er-" + 32 hex digits), count1 low byte
      std::string fixed;
      codec::SealPlain(codec::TableId::kAudit, key, body, &fixed);
      return txn.Put(t, key, fixed);
    }));
  }
  Reopen();
  auto v = store_->VerifyAuditLog();
  ASSERT_TRUE(v.ok());
  EXPECT_FALSE(v->intact);
  EXPECT_NE(v->problem.find("entry 2"), std::string::npos) << v->problem;
}

// Issue 17 (the regulator's "read logs"): the audit log could be verified
// but not read. ReadAudit returns the entries in chain order, from a
// position, with the erase entry's hash equal to the receipt's.
TEST_F(AuditTamperTest, TheAuditLogReadsBackInChainOrder) {
  auto ann = store_->CreatePerson({{"email", "ann@x.org"}});
  ASSERT_TRUE(ann.ok());
  SKV_ASSERT_OK(store_->AppendEvent(*ann, Event{"e", 1, {}, {}}));
  auto receipt = store_->Erase(*ann, EraseOptions{"req-ann", false, AnalyticsOnErase::kDelete});
  ASSERT_TRUE(receipt.ok());
  ASSERT_TRUE(store_->RotateEpoch().ok());
  ASSERT_TRUE(store_->Purge(1000).ok());
  auto all = store_->ReadAudit(0, 100);
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  ASSERT_EQ(all->size(), 3u);
  const AuditRecord& erase = (*all)[0];
  EXPECT_EQ(erase.seq, 1u);
  EXPECT_EQ(erase.action, AuditAction::kErase);
  EXPECT_EQ(erase.request_id, "req-ann");
  EXPECT_EQ(erase.count1, 1u);
  EXPECT_EQ(erase.analytics, AnalyticsOnErase::kDelete);
  EXPECT_EQ(erase.hash, receipt->audit_hash);
  EXPECT_EQ((*all)[1].action, AuditAction::kRotation);
  EXPECT_EQ((*all)[1].count1, 2u);  // the new epoch
  EXPECT_FALSE((*all)[1].analytics.has_value());
  EXPECT_EQ((*all)[2].action, AuditAction::kPurge);
  EXPECT_EQ((*all)[2].hash, store_->VerifyAuditLog()->head_hash);
  auto page = store_->ReadAudit(1, 1);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->size(), 1u);
  EXPECT_EQ((*page)[0].seq, 2u);
  EXPECT_TRUE(store_->ReadAudit(3, 10)->empty());
}

// Issue 17 (the regulator's "read logs", a person's "who processed my
// data"): with Options::audit_processing_reads every granted lease is an
// audit entry naming its purpose and the person's audit subject, a pseudonym
// keyed with the person's key: it leads to the person while they exist and,
// once they are erased, cannot be computed by anyone.
TEST_F(AuditTamperTest, ProcessingReadsAreLoggedUnderAPseudonymErasureOrphans) {
  options_.audit_processing_reads = true;
  Reopen();
  auto ann = store_->CreatePerson({{"email", "ann@x.org"}});
  auto ben = store_->CreatePerson({{"email", "ben@x.org"}});
  ASSERT_TRUE(ann.ok() && ben.ok());
  SKV_ASSERT_OK(store_->SetConsent(*ann, "marketing", true, "banner"));
  { ASSERT_TRUE(store_->AcquireLease(*ann, "support").ok()); }
  { ASSERT_TRUE(store_->AcquireLease(*ann, "marketing").ok()); }
  { ASSERT_TRUE(store_->AcquireLease(*ben, "support").ok()); }
  EXPECT_TRUE(store_->AcquireLease(*ben, "marketing").status().IsRestricted());  // refused: not logged
  auto subject = store_->AuditSubject(*ann);
  ASSERT_TRUE(subject.ok());
  EXPECT_EQ(subject->size(), 32u);
  EXPECT_NE(*subject, *store_->AuditSubject(*ben));
  auto log = store_->ReadAudit(0, 100);
  ASSERT_TRUE(log.ok());
  ASSERT_EQ(log->size(), 3u);
  std::vector<std::string> anns_purposes;
  for (const AuditRecord& r : *log) {
    EXPECT_EQ(r.action, AuditAction::kProcessingRead);
    EXPECT_TRUE(r.request_id.empty());
    if (r.subject == *subject) anns_purposes.push_back(r.purpose);
  }
  EXPECT_EQ(anns_purposes, (std::vector<std::string>{"support", "marketing"}));
  EXPECT_TRUE(store_->VerifyAuditLog()->intact);
  ASSERT_TRUE(store_->Erase(*ann).ok());
  EXPECT_TRUE(store_->AuditSubject(*ann).status().IsErased());
  options_.audit_processing_reads = false;
  Reopen();
  { ASSERT_TRUE(store_->AcquireLease(*ben, "support").ok()); }
  EXPECT_EQ(store_->ReadAudit(0, 100)->size(), 4u);  // the erasure; no read logged with the option off
}

}  // namespace
}  // namespace shredkv
