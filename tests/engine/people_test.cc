#include <gtest/gtest.h>

#include "test_util.h"

namespace shredkv {
namespace {

using test::StoreTest;

class PeopleTest : public StoreTest {};

TEST_F(PeopleTest, ResolveFindsPersonByEachIdentifierType) {
  auto id = store_->CreatePerson({{"email", "ann@example.org"},
                                  {"phone", "+49 170 1234567"},
                                  {"customer_id", "C-1001"},
                                  {"device_id", "dev-abc"}});
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  for (const Identifier& ident : std::vector<Identifier>{{"email", "ann@example.org"},
                                                         {"phone", "+491701234567"},
                                                         {"customer_id", "C-1001"},
                                                         {"device_id", "dev-abc"}}) {
    auto r = store_->Resolve(ident);
    ASSERT_TRUE(r.ok()) << ident.type << ": " << r.status().ToString();
    EXPECT_EQ(*r, *id);
  }
  EXPECT_TRUE(store_->Resolve({"email", "bob@example.org"}).status().IsNotFound());
}

TEST_F(PeopleTest, EmailNormalisationIgnoresCaseAndSurroundingSpace) {
  PersonId id = MakePerson("  Ann.Smith@Example.ORG ");
  auto r = store_->Resolve({"email", "ann.smith@example.org"});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, id);
  auto info = store_->GetPerson(id);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->identifiers, (std::vector<Identifier>{{"email", "ann.smith@example.org"}}));
}

TEST_F(PeopleTest, PhoneNormalisationKeepsPlusAndDigits) {
  auto id = store_->CreatePerson({{"phone", " +49 (170) 123-4567 "}});
  ASSERT_TRUE(id.ok());
  auto r = store_->Resolve({"phone", "+491701234567"});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, *id);
  // Without the plus it is a different number.
  EXPECT_TRUE(store_->Resolve({"phone", "491701234567"}).status().IsNotFound());
}

TEST_F(PeopleTest, NormalizeIdentifierRules) {
  EXPECT_EQ(NormalizeIdentifier({"email", " A@B.C "})->value, "a@b.c");
  EXPECT_EQ(NormalizeIdentifier({"phone", "+1 (555) 010-9999"})->value, "+15550109999");
  EXPECT_EQ(NormalizeIdentifier({"customer_id", "  Cust-7 "})->value, "Cust-7");
  EXPECT_EQ(NormalizeIdentifier({"device_id", "ABC"})->value, "ABC");
  EXPECT_TRUE(NormalizeIdentifier({"email", "no-at-sign"}).status().IsInvalidArgument());
  EXPECT_TRUE(NormalizeIdentifier({"email", "a@b@c"}).status().IsInvalidArgument());
  EXPECT_TRUE(NormalizeIdentifier({"email", "a b@c.d"}).status().IsInvalidArgument());
  EXPECT_TRUE(NormalizeIdentifier({"phone", "12"}).status().IsInvalidArgument());
  EXPECT_TRUE(NormalizeIdentifier({"phone", "call me"}).status().IsInvalidArgument());
  EXPECT_TRUE(NormalizeIdentifier({"customer_id", "   "}).status().IsInvalidArgument());
  EXPECT_TRUE(NormalizeIdentifier({"customer_id", std::string(1025, 'x')}).status().IsInvalidArgument());
  EXPECT_TRUE(NormalizeIdentifier({"passport", "X"}).status().IsInvalidArgument());
  EXPECT_EQ(NormalizeIdentifier({"loyalty", " AbC "}, {{"loyalty", Normalization::kLowerTrim}})->value, "abc");
}

// Outside audit 36a F10, review of stop 36 R3 and R4: an identifier that
// would look like another cannot be given to anyone — control characters in
// every type, invisible and space-like ones in e-mail addresses — checked
// after normalisation (what the rules trim is trimmed first), and never on
// lookups (values stored before are still found, and erased, by value).
TEST_F(PeopleTest, LookAlikeIdentifiersCannotBeClaimedButLookupsStillWork) {
  for (const std::string& bad :
       {std::string("dave@example.org\xE2\x80\x8B"), std::string("dave@example.org\xC2\xA0"),
        std::string("dave@example.org\xE2\x81\xA0"), std::string("da\xC2\xADve@example.org"),
        std::string("dave@example.org\xE2\x80\xAC"), std::string("dave@example.org\xE2\x81\xA6"),
        std::string("dave@example.org\xE1\xA0\x8E"), std::string("dave@example.org\xE1\x9A\x80"),
        std::string("dave@example.org\xEF\xB8\x8F"), std::string("dave@example.org\xCD\x8F"),
        std::string("da\x07ve@example.org"), std::string("dave@exam\0ple.org", 17),
        std::string("\xEF\xBB\xBF" "dave@example.org"), std::string("dave@example.org\xE2\xA0\x80"),
        std::string("d\xC1\xA1ve@example.org"), std::string("dave@example.org\xED\xA0\x80"),
        std::string("dave@example.org\xF8"), std::string("dave@example.org\xE2\x80")}) {
    auto r = store_->CreatePerson({{"email", bad}});
    EXPECT_TRUE(r.status().IsInvalidArgument()) << bad << ": " << r.status().ToString();
    EXPECT_TRUE(store_->Resolve({"email", bad}).status().IsNotFound()) << bad;
  }
  EXPECT_TRUE(store_->CreatePerson({{"device_id", std::string("AB\0C", 4)}}).status().IsInvalidArgument());
  EXPECT_TRUE(store_->CreatePerson({{"customer_id", "C\x1B[2J"}}).status().IsInvalidArgument());
  // What the rules trim is not refused; other Unicode is kept.
  auto c = store_->CreatePerson({{"customer_id", "C-42\r\n"}});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(*store_->Resolve({"customer_id", "C-42"}), *c);
  EXPECT_TRUE(store_->CreatePerson({{"email", " dave@example.org\v"}}).ok());
  EXPECT_TRUE(store_->CreatePerson({{"customer_id", "Kund\xC3\xA9 7"}}).ok());
  EXPECT_TRUE(store_->CreatePerson({{"email", "j\xC3\xBCrgen@b\xC3\xBC" "cher.example"}}).ok());
  EXPECT_TRUE(store_->CreatePerson({{"device_id", "raw\xFF\xFE" "bytes"}}).ok());  // only e-mails must be UTF-8
  EXPECT_EQ(store_->Stats()->people, 5u);
  // The public check says the same before a write.
  EXPECT_TRUE(CheckNewIdentifier({"email", "dave@example.org\xE2\x81\xA0"}).IsInvalidArgument());
  EXPECT_TRUE(CheckNewIdentifier({"email", " Dave@Example.org "}).ok());
}

TEST_F(PeopleTest, ApplicationRegisteredTypesWork) {
  options_.identifier_types = {{"loyalty_card", Normalization::kLowerTrim}};
  Reopen();
  auto id = store_->CreatePerson({{"loyalty_card", " LC-9 "}});
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  EXPECT_EQ(*store_->Resolve({"loyalty_card", "lc-9"}), *id);
  options_.identifier_types = {{"Bad Name", Normalization::kExact}};
  store_.reset();
  EXPECT_TRUE(Store::Open(options_).status().IsInvalidArgument());
}

TEST_F(PeopleTest, UnknownIdentifierTypeIsInvalidArgument) {
  EXPECT_TRUE(store_->CreatePerson({{"passport", "X1"}}).status().IsInvalidArgument());
  EXPECT_TRUE(store_->Resolve({"passport", "X1"}).status().IsInvalidArgument());
  EXPECT_TRUE(store_->CreatePerson({}).status().IsInvalidArgument());
}

TEST_F(PeopleTest, IdentifierBelongsToAtMostOnePerson) {
  MakePerson("ann@x.org");
  auto dup = store_->CreatePerson({{"email", "ANN@x.org"}});
  EXPECT_TRUE(dup.status().IsAlreadyExists()) << dup.status().ToString();
  PersonId bob = MakePerson("bob@x.org");
  EXPECT_TRUE(store_->LinkIdentifier(bob, {"email", "ann@x.org"}).IsAlreadyExists());
  auto stats = store_->Stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->people, 2u);
}

TEST_F(PeopleTest, LinkAndUnlinkIdentifiers) {
  PersonId id = MakePerson("ann@x.org");
  SKV_ASSERT_OK(store_->LinkIdentifier(id, {"phone", "+44 20 7946 0000"}));
  SKV_ASSERT_OK(store_->LinkIdentifier(id, {"phone", "+442079460000"}));  // already hers: no-op
  EXPECT_EQ(*store_->Resolve({"phone", "+442079460000"}), id);
  EXPECT_EQ(store_->GetPerson(id)->identifiers.size(), 2u);

  SKV_ASSERT_OK(store_->UnlinkIdentifier(id, {"email", "ann@x.org"}));
  EXPECT_TRUE(store_->Resolve({"email", "ann@x.org"}).status().IsNotFound());
  EXPECT_EQ(store_->GetPerson(id)->identifiers,
            (std::vector<Identifier>{{"phone", "+442079460000"}}));
  EXPECT_TRUE(store_->UnlinkIdentifier(id, {"email", "ann@x.org"}).IsNotFound());

  // A freed identifier can be taken by someone else.
  PersonId bob = MakePerson("bob@x.org");
  SKV_ASSERT_OK(store_->LinkIdentifier(bob, {"email", "ann@x.org"}));
  EXPECT_EQ(*store_->Resolve({"email", "ann@x.org"}), bob);
  EXPECT_TRUE(store_->UnlinkIdentifier(id, {"email", "ann@x.org"}).IsNotFound());
}

TEST_F(PeopleTest, UnknownPersonIsNotFound) {
  PersonId ghost(PersonId::Bytes{9, 9, 9});
  EXPECT_TRUE(store_->GetPerson(ghost).status().IsNotFound());
  EXPECT_TRUE(store_->LinkIdentifier(ghost, {"email", "g@x.org"}).IsNotFound());
  EXPECT_TRUE(store_->Resolve({"email", "g@x.org"}).status().IsNotFound());
}

TEST_F(PeopleTest, PersonInfoHasRandomAnonymousIdAndCreationTime) {
  options_.clock = [] { return std::int64_t{1700000000000}; };
  Reopen();
  PersonId a = MakePerson("a@x.org");
  PersonId b = MakePerson("b@x.org");
  auto ia = store_->GetPerson(a);
  auto ib = store_->GetPerson(b);
  ASSERT_TRUE(ia.ok() && ib.ok());
  EXPECT_FALSE(ia->anon_id.empty());
  EXPECT_NE(ia->anon_id, ib->anon_id);
  EXPECT_NE(ia->anon_id.bytes(), ia->id.bytes());
  EXPECT_EQ(ia->created_ms, 1700000000000);
  EXPECT_EQ(ia->key_epoch, 1u);
}

TEST_F(PeopleTest, ManyPeoplePersistAcrossReopen) {
  constexpr int kPeople = 2000;
  std::vector<PersonId> ids;
  WriteBatch batch;
  for (int i = 0; i < kPeople; ++i) {
    ids.push_back(batch.CreatePerson({{"email", "user" + std::to_string(i) + "@x.org"},
                                      {"customer_id", "C" + std::to_string(i)}},
                                     {{"n", i}}));
  }
  SKV_ASSERT_OK(store_->Write(batch));
  Reopen();
  for (int i = 0; i < kPeople; i += 7) {
    auto r = store_->Resolve({"customer_id", "C" + std::to_string(i)});
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(*r, ids[static_cast<std::size_t>(i)]);
    EXPECT_EQ(store_->GetProfile(*r)->at("n").as_int64(), i);
  }
  EXPECT_EQ(store_->Stats()->people, static_cast<std::uint64_t>(kPeople));
  EXPECT_EQ(store_->Stats()->identifiers, static_cast<std::uint64_t>(2 * kPeople));
}

}  // namespace
}  // namespace shredkv
