// The clear payloads inside the `keys` environment's plain rows other than
// wrapped keys (docs/format.md §4): erasure requests (`requests`), fences
// (`fences`, `category_fences`) and purge tickets (`purge_queue`). Each is
// stored in a checksummed plain row (codec::PlainRow); these functions are
// what is inside it. Decoders accept exactly what the encoders write and
// return Corruption for anything else, never reading past their input
// (fuzz/fuzz_key_payloads.cc).
#ifndef SHREDKV_KEYS_KEY_PAYLOADS_H_
#define SHREDKV_KEYS_KEY_PAYLOADS_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "shredkv/status.h"

namespace shredkv::keys {

// One erasure request as recorded in `requests`.
struct ErasureRequest {
  std::string request_id;
  std::int64_t erased_at_ms = 0;
  std::uint64_t key_epoch = 0;  // current epoch at the erase commit
  std::uint64_t people = 0;
  std::uint64_t pending = 0;    // people not yet purged
  std::uint8_t analytics_mode = 0;
  bool suppressed = false;
  std::string category;  // a category erasure: the category; empty: whole people
};

// A `requests` row's payload: every field but request_id (the row key).
void EncodeRequest(const ErasureRequest& r, std::string* out);
// Fills *r from a payload and the row key `id`.
Status DecodeRequest(std::string_view id, std::string_view in, ErasureRequest* r);

// A fence's payload: the request id, erase time, key epoch and analytics
// mode of the erasure (a category fence appends the category,
// length-prefixed). Read back for the erasure log (Store::ReadErasureLog).
void EncodeFence(const ErasureRequest& r, std::string* out);
// Fills request_id, erased_at_ms, key_epoch, analytics_mode and, with
// `with_category` (a category fence), category.
Status DecodeFence(std::string_view in, bool with_category, ErasureRequest* r);

// A `suppressed` row's payload: the request that suppressed the identifier
// and when.
void EncodeSuppression(std::string_view request_id, std::int64_t at_ms, std::string* out);
Status DecodeSuppression(std::string_view in, std::string* request_id, std::int64_t* at_ms);

// A purge ticket's payload: lp(request id) ‖ u8(analytics mode), then the
// analytics links if any — sealed: lp("") ‖ lp(sealed links) (since stop 29);
// in the clear: lp(links) (format 3 before it).
struct TicketPayload {
  std::string request_id;
  std::uint8_t analytics_mode = 0;
  // Empty: none written (kKeep, and every ticket of format 2).
  std::string analytics_links;
  // Whether analytics_links is a sealed row (KeyStore seals and opens it)
  // or the links themselves.
  bool links_sealed = false;
};
void EncodeTicket(const TicketPayload& t, std::string* out);
Status DecodeTicket(std::string_view in, TicketPayload* t);

}  // namespace shredkv::keys

#endif  // SHREDKV_KEYS_KEY_PAYLOADS_H_
