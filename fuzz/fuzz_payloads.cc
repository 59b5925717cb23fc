// libFuzzer harness: the decoders of the `keys` environment's clear
// payloads (lib/keys/key_payloads.h: erasure requests, purge tickets) and of
// the format-3 migration's resume state (engine/migration.h), which an
// attacker who can write the files controls.
//
// The first input byte picks a decoder, the rest is what it decodes. Any
// bytes give OK or Corruption, never a crash or a read past the input, and
// whatever decodes re-encodes to exactly the input: each value has one
// encoding, so a damaged payload cannot pass as a different valid one by
// trailing or padded bytes.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "engine/migration.h"
#include "keys/key_payloads.h"

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
  switch (data[0] % 3) {
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
