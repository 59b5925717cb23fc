// libFuzzer harness: every decoder of on-disk values (lib/codec).
//
// The first input byte picks a target, the rest is the bytes it decodes:
//  - person rows (codec::OpenPersonRow): random bytes and mutations,
//    including relabelled key slots;
//  - sealed rows (codec::OpenRow): random bytes, and mutations (byte flips,
//    truncation, extension, other table or storage key) of a row sealed from
//    the input, must give Corruption or AuthenticationFailed with an empty
//    plaintext: never a crash, never partial plaintext. An unmutated row opens
//    to exactly what was sealed.
//  - plain rows (codec::OpenPlain): random and mutated rows must give
//    Corruption unless they are exactly the plain row of the payload they
//    open to (a checksum detects damage; it is not a MAC).
//  - payload decoders (person, profile, event, record, restriction, consent
//    record, analytics, attribute maps, (ts, seq) key tails): any bytes give
//    OK or Corruption; whatever decodes re-encodes to bytes that decode to the
//    same encoding again (decode ∘ encode is stable).
// The key-store rows (lib/keys) are plain and sealed rows of the same
// envelopes; their payloads are fuzzed by fuzz_payloads.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>

#include "codec/row_codec.h"
#include "codec/sealed.h"
#include "codec/value_codec.h"
#include "crypto/aead.h"
#include "crypto/secure_memory.h"
#include "util/coding.h"

namespace {

using namespace shredkv;
using codec::TableId;

[[noreturn]] void Fail(const std::string& what) {
  std::fprintf(stderr, "fuzz_codec: %s\n", what.c_str());
  std::abort();
}

void ExpectCorruption(const Status& s, const std::string& what) {
  if (!s.ok() && !s.IsCorruption()) Fail(what + " gave " + s.ToString() + " (want OK or Corruption)");
}

const crypto::SecretKey& FixedKey() {
  static const crypto::SecretKey key = [] {
    auto k = crypto::SecretKey::FromBytes(std::string(crypto::SecretKey::kSize, 'z'));
    if (!k.ok()) Fail("SecretKey::FromBytes: " + k.status().ToString());
    return std::move(k).value();
  }();
  return key;
}

// Reads a small number from the front of `in` (0 when empty).
std::uint8_t TakeByte(std::string_view* in) {
  if (in->empty()) return 0;
  const auto b = static_cast<std::uint8_t>(in->front());
  in->remove_prefix(1);
  return b;
}

TableId PickTable(std::uint8_t b) {
  static constexpr TableId kTables[] = {TableId::kDeks, TableId::kEpochs, TableId::kPeople, TableId::kProfiles,
                                        TableId::kEvents, TableId::kRecords, TableId::kConsentHistory};
  return kTables[b % (sizeof(kTables) / sizeof(kTables[0]))];
}

// Opens `row`; on error the plaintext must be empty and the code one of the
// two the contract names.
Status OpenChecked(TableId table, std::string_view storage_key, std::string_view row, std::string* plaintext) {
  *plaintext = "stale bytes that must not survive a failed open";
  const Status s = codec::OpenRow(FixedKey(), table, storage_key, row, plaintext);
  if (!s.ok()) {
    if (!s.IsCorruption() && !s.IsAuthenticationFailed()) Fail("OpenRow gave " + s.ToString());
    if (!plaintext->empty()) Fail("OpenRow failed but left " + std::to_string(plaintext->size()) + " plaintext bytes");
  }
  return s;
}

void FuzzSealed(std::string_view in) {
  // Random bytes as a sealed row: authentic only with negligible probability.
  std::string plaintext;
  const Status random = OpenChecked(TableId::kRecords, "key", in, &plaintext);
  if (random.ok()) Fail("random bytes opened as a sealed row");

  // A genuine row, then one mutation chosen by the input.
  const std::uint8_t how = TakeByte(&in);
  const std::uint8_t where = TakeByte(&in);
  const std::uint8_t what = TakeByte(&in);
  const TableId table = PickTable(TakeByte(&in));
  const std::string storage_key = "person-0123456789";
  const crypto::CipherId cipher = (how & 0x80) != 0 && crypto::Aes256GcmAvailable()
                                      ? crypto::CipherId::kAes256Gcm
                                      : crypto::CipherId::kXChaCha20Poly1305;
  std::string row;
  codec::SealRow(cipher, FixedKey(), table, storage_key, in, &row);
  std::string mutated = row;
  std::string key = storage_key;
  TableId open_table = table;
  switch (how % 6) {
    case 0: break;  // unmutated
    case 1: mutated[where % mutated.size()] = static_cast<char>(mutated[where % mutated.size()] ^ (what | 1)); break;
    case 2: mutated.resize(where % mutated.size()); break;
    case 3: mutated.append(1 + what % 8, static_cast<char>(where)); break;
    case 4: key[where % key.size()] = static_cast<char>(key[where % key.size()] ^ (what | 1)); break;
    default: open_table = PickTable(static_cast<std::uint8_t>(what + 1)); break;
  }
  const bool changed = mutated != row || key != storage_key || open_table != table;
  const Status s = OpenChecked(open_table, key, mutated, &plaintext);
  if (changed && s.ok()) Fail("a mutated sealed row opened");
  if (!changed) {
    if (!s.ok()) Fail("an unmutated sealed row failed: " + s.ToString());
    if (plaintext != in) Fail("an unmutated sealed row opened to other bytes");
  }
}

// Person rows (codec::OpenPersonRow, codec::PersonRowSlot): random bytes and
// mutations of a genuine row (the slot bytes included) never open, never
// crash and leave no plaintext; an unmutated row opens to its bytes and
// names its slot.
void FuzzPersonRow(std::string_view in) {
  std::string plaintext = "stale";
  std::uint32_t slot = 0;
  const Status random = codec::OpenPersonRow(FixedKey(), TableId::kEvents, "key", in, &plaintext);
  if (random.ok()) Fail("random bytes opened as a person row");
  if (!random.IsCorruption() && !random.IsAuthenticationFailed()) Fail("OpenPersonRow gave " + random.ToString());
  if (!plaintext.empty()) Fail("OpenPersonRow failed but left plaintext");
  (void)codec::PersonRowSlot(in, &slot);

  const std::uint8_t how = TakeByte(&in);
  const std::uint8_t where = TakeByte(&in);
  const std::uint8_t what = TakeByte(&in);
  const std::uint32_t sealed_slot = TakeByte(&in);
  const TableId table = PickTable(what);
  const std::string storage_key = "person-0123456789";
  const crypto::CipherId cipher = (how & 0x80) != 0 && crypto::Aes256GcmAvailable()
                                      ? crypto::CipherId::kAes256Gcm
                                      : crypto::CipherId::kXChaCha20Poly1305;
  std::string row;
  codec::SealPersonRow(cipher, FixedKey(), sealed_slot, table, storage_key, in, &row);
  if (!codec::PersonRowSlot(row, &slot).ok() || slot != sealed_slot) Fail("a person row does not name its slot");
  std::string mutated = row;
  switch (how % 4) {
    case 0: break;
    case 1: mutated[where % mutated.size()] = static_cast<char>(mutated[where % mutated.size()] ^ (what | 1)); break;
    case 2: mutated.resize(where % mutated.size()); break;
    default: mutated[2 + where % 4] = static_cast<char>(mutated[2 + where % 4] ^ (what | 1)); break;  // the slot
  }
  plaintext = "stale";
  const Status s = codec::OpenPersonRow(FixedKey(), table, storage_key, mutated, &plaintext);
  if (mutated != row) {
    if (s.ok()) Fail("a mutated person row opened");
    if (!s.IsCorruption() && !s.IsAuthenticationFailed()) Fail("OpenPersonRow gave " + s.ToString());
    if (!plaintext.empty()) Fail("a mutated person row left plaintext");
  } else if (!s.ok() || plaintext != in) {
    Fail("an unmutated person row did not open to its bytes");
  }
}

// A plain row that opened must be exactly the row its payload seals to.
void ExpectSelfConsistent(TableId table, std::string_view storage_key, std::string_view row,
                          std::string_view payload) {
  std::string resealed;
  codec::SealPlain(table, storage_key, payload, &resealed);
  if (resealed != row) Fail("OpenPlain accepted a row that is not its payload's plain row");
}

void FuzzPlain(std::string_view in) {
  std::string_view payload;
  const Status random = codec::OpenPlain(TableId::kIdentIndex, "key", in, &payload);
  ExpectCorruption(random, "OpenPlain of random bytes");
  if (random.ok()) ExpectSelfConsistent(TableId::kIdentIndex, "key", in, payload);

  const std::uint8_t how = TakeByte(&in);
  const std::uint8_t where = TakeByte(&in);
  std::string row;
  codec::SealPlain(TableId::kFences, "person", in, &row);
  std::string mutated = row;
  if (how % 3 == 1) mutated[where % mutated.size()] = static_cast<char>(mutated[where % mutated.size()] ^ 0x5a);
  if (how % 3 == 2) mutated.resize(where % mutated.size());
  const Status s = codec::OpenPlain(TableId::kFences, "person", mutated, &payload);
  ExpectCorruption(s, "OpenPlain of a mutated row");
  // A checksum detects damage, it does not authenticate: a mutation may be
  // another well-formed row (libFuzzer's comparison tracing finds the checksum
  // of a shorter payload), but then the row must be exactly that.
  if (mutated != row && s.ok()) ExpectSelfConsistent(TableId::kFences, "person", mutated, payload);
  if (mutated == row && (!s.ok() || payload != in)) Fail("an unmutated plain row did not open to its payload");
}

// Decodes with `decode`; if that succeeds, encode → decode → encode must be
// stable. `Value` is the decoded type.
template <typename T, typename Decode, typename Encode>
void RoundTrip(std::string_view in, const char* what, Decode decode, Encode encode) {
  T first{};
  const Status s = decode(in, &first);
  ExpectCorruption(s, what);
  if (!s.ok()) return;
  std::string once;
  encode(first, &once);
  T second{};
  const Status again = decode(once, &second);
  if (!again.ok()) Fail(std::string(what) + ": re-encoded bytes do not decode: " + again.ToString());
  std::string twice;
  encode(second, &twice);
  if (once != twice) Fail(std::string(what) + ": decode/encode is not stable");
}

struct EventParts {
  std::string name, category;
  Attributes props;
};

struct RecordParts {
  Record record;
  std::optional<std::int64_t> written_ms;
};

void FuzzPayload(std::uint8_t selector, std::string_view in) {
  switch (selector % 9) {
    case 0:
      return RoundTrip<codec::PersonPayload>(in, "DecodePerson", codec::DecodePerson, codec::EncodePerson);
    case 1:
      return RoundTrip<Attributes>(in, "DecodeProfile", codec::DecodeProfile, codec::EncodeProfile);
    case 2:
      return RoundTrip<EventParts>(
          in, "DecodeEvent",
          [](std::string_view b, EventParts* e) { return codec::DecodeEvent(b, &e->name, &e->category, &e->props); },
          [](const EventParts& e, std::string* out) { codec::EncodeEvent(e.name, e.category, e.props, out); });
    case 3:
      return RoundTrip<RecordParts>(
          in, "DecodeRecord",
          [](std::string_view b, RecordParts* r) { return codec::DecodeRecord(b, &r->record, &r->written_ms); },
          [](const RecordParts& p, std::string* out) {
            const Record& r = p.record;
            codec::EncodeRecord(r.collection, r.key, r.value, r.category, r.metadata, p.written_ms, out);
          });
    case 4:
      return RoundTrip<RestrictionState>(in, "DecodeRestriction", codec::DecodeRestriction, codec::EncodeRestriction);
    case 5:
      return RoundTrip<ConsentRecord>(in, "DecodeConsentRecord", codec::DecodeConsentRecord,
                                      codec::EncodeConsentRecord);
    case 6:
      return RoundTrip<AnalyticsRow>(in, "DecodeAnalytics", codec::DecodeAnalytics,
                                     [](const AnalyticsRow& r, std::string* out) {
                                       codec::EncodeAnalytics(r.anon_id, r.name, r.fields, out);
                                     });
    case 7:
      return RoundTrip<Attributes>(
          in, "DecodeAttributes",
          [](std::string_view b, Attributes* a) {
            util::ByteReader reader(b);
            Status s = codec::DecodeAttributes(&reader, a);
            if (s.ok() && !reader.done()) s = Status::Corruption("trailing bytes");
            return s;
          },
          codec::EncodeAttributes);
    default: {
      std::int64_t ts = 0;
      std::uint64_t seq = 0;
      const Status s = codec::DecodeTsSeq(in, &ts, &seq);
      ExpectCorruption(s, "DecodeTsSeq");
      if (s.ok() && codec::AnalyticsKeyV2(ts, seq) != in) Fail("DecodeTsSeq does not invert AnalyticsKeyV2");
      std::int64_t bucket = 0;
      const Status a = codec::DecodeAnalyticsKey(in, &bucket);
      ExpectCorruption(a, "DecodeAnalyticsKey");
      if (a.ok() && codec::AnalyticsKey(bucket, in.substr(8)) != in) {
        Fail("DecodeAnalyticsKey does not invert AnalyticsKey");
      }
      return;
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  const std::uint8_t selector = TakeByte(&in);
  switch (selector % 5) {
    case 0: FuzzSealed(in); break;
    case 1: FuzzPlain(in); break;
    case 2: FuzzPersonRow(in); break;
    default: FuzzPayload(static_cast<std::uint8_t>(selector >> 2), in); break;
  }
  return 0;
}
