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

}  // namespace
}  // namespace shredkv
