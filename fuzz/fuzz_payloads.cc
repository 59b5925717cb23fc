// libFuzzer harness: the decoders of the `keys` environment's clear
// payloads (lib/keys/key_payloads.h: erasure requests, purge tickets,
// fences and suppression entries, which the erasure log reads back), of the
// format-3 migration's resume state (engine/migration.h), which an attacker
// who can write the files controls, and the erasure log reader
// (ReadErasureLog, shredkv/portability.h), whose file a restore trusts.
//
// The first input byte picks a decoder, the rest is what it decodes. Any
// bytes give OK or Corruption, never a crash or a read past the input, and
// whatever decodes re-encodes to exactly the input: each value has one
// encoding, so a damaged payload cannot pass as a different valid one by
// trailing or padded bytes. The erasure log gives OK or InvalidArgument, and
// what it reads is written and read back to the same entries.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include <sstream>

#include "engine/migration.h"
#include "keys/key_payloads.h"
#include "shredkv/portability.h"
#include "util/coding.h"

namespace {

using namespace shredkv;

[[noreturn]] void Fail(const std::string& what) {
  std::fprintf(stderr, "fuzz_payloads: %s\n", what.c_str());
  std::abort();
}

void CheckStatus(const Status& s, const char* what) {
  if (!s.ok() && !s.IsCorruption()) Fail(std::string(what) + " gave neither OK nor Corruption: " + s.ToString());
}

void CheckRoundTrip(const std::string& encoded, std::string_view input, const char* what) {
  if (encoded != input) Fail(std::string(what) + ": a decoded payload re-encodes to other bytes");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view in(reinterpret_cast<const char*>(data + 1), size - 1);
  switch (data[0] % 7) {
    case 0: {
      keys::ErasureRequest r;
      const Status s = keys::DecodeRequest("request-id", in, &r);
      CheckStatus(s, "DecodeRequest");
      if (!s.ok()) return 0;
      if (r.request_id != "request-id") Fail("DecodeRequest lost the request id");
      std::string out;
      keys::EncodeRequest(r, &out);
      CheckRoundTrip(out, in, "request");
      break;
    }
    case 1: {
      keys::TicketPayload t;
      const Status s = keys::DecodeTicket(in, &t);
      CheckStatus(s, "DecodeTicket");
      if (!s.ok()) return 0;
      std::string out;
      keys::EncodeTicket(t, &out);
      CheckRoundTrip(out, in, "purge ticket");
      break;
    }
    case 3:
    case 4: {  // a fence, a category fence
      const bool category = data[0] % 7 == 4;
      keys::ErasureRequest r;
      const Status s = keys::DecodeFence(in, category, &r);
      CheckStatus(s, "DecodeFence");
      if (!s.ok()) return 0;
      std::string out;
      keys::EncodeFence(r, &out);
      if (category) util::PutLengthPrefixed(&out, r.category);
      CheckRoundTrip(out, in, "fence");
      break;
    }
    case 5: {
      std::string request_id;
      std::int64_t at = 0;
      const Status s = keys::DecodeSuppression(in, &request_id, &at);
      CheckStatus(s, "DecodeSuppression");
      if (!s.ok()) return 0;
      std::string out;
      keys::EncodeSuppression(request_id, at, &out);
      CheckRoundTrip(out, in, "suppression entry");
      break;
    }
    case 6: {
      std::istringstream text{std::string(in)};
      auto log = ReadErasureLog(text);
      if (!log.ok()) {
        if (!log.status().IsInvalidArgument()) Fail("ReadErasureLog gave " + log.status().ToString());
        return 0;
      }
      std::ostringstream written;
      if (!WriteErasureLog(*log, written).ok()) Fail("WriteErasureLog failed on what ReadErasureLog read");
      std::istringstream again(written.str());
      auto reread = ReadErasureLog(again);
      if (!reread.ok()) Fail("an erasure log written from a read one does not read: " + reread.status().ToString());
      if (reread->store_id != log->store_id || reread->read_at_ms != log->read_at_ms || reread->tag != log->tag ||
          reread->people.size() != log->people.size() ||
          reread->categories.size() != log->categories.size() || reread->suppressed.size() != log->suppressed.size()) {
        Fail("an erasure log changed in a write and read");
      }
      for (std::size_t i = 0; i < log->people.size(); ++i) {
        const auto &a = log->people[i], &b = reread->people[i];
        if (a.person != b.person || a.request_id != b.request_id || a.erased_at_ms != b.erased_at_ms ||
            a.analytics != b.analytics) {
          Fail("an erasure log entry changed in a write and read");
        }
      }
      for (std::size_t i = 0; i < log->suppressed.size(); ++i) {
        if (log->suppressed[i].identifier_hash != reread->suppressed[i].identifier_hash) {
          Fail("a suppressed hash changed in a write and read");
        }
      }
      break;
    }
    default: {
      engine::MigrationState m;
      const Status s = engine::DecodeMigrationState(in, &m);
      CheckStatus(s, "DecodeMigrationState");
      if (!s.ok()) return 0;
      if (m.phase != engine::MigrationState::kPhaseEvents && m.phase != engine::MigrationState::kPhaseLeftovers) {
        Fail("DecodeMigrationState accepted an unknown phase");
      }
      CheckRoundTrip(engine::EncodeMigrationState(m), in, "migration state");
      break;
    }
  }
  return 0;
}
