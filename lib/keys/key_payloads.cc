#include "keys/key_payloads.h"

#include "util/coding.h"

namespace shredkv::keys {

void EncodeRequest(const ErasureRequest& r, std::string* out) {
  util::PutFixed64BE(out, util::OrderedFromSigned(r.erased_at_ms));
  util::PutFixed64BE(out, r.key_epoch);
  util::PutFixed64BE(out, r.people);
  util::PutFixed64BE(out, r.pending);
  out->push_back(static_cast<char>(r.analytics_mode));
  out->push_back(r.suppressed ? 1 : 0);
  util::PutLengthPrefixed(out, r.category);
}

Status DecodeRequest(std::string_view id, std::string_view in, ErasureRequest* r) {
  util::ByteReader rd(in);
  std::uint64_t at = 0;
  std::uint8_t mode = 0, sup = 0;
  std::string_view category;
  if (!rd.GetFixed64BE(&at) || !rd.GetFixed64BE(&r->key_epoch) || !rd.GetFixed64BE(&r->people) ||
      !rd.GetFixed64BE(&r->pending) || !rd.GetU8(&mode) || !rd.GetU8(&sup) || !rd.GetLengthPrefixed(&category) ||
      !rd.done() || sup > 1) {
    return Status::Corruption("erasure request record malformed");
  }
  r->request_id = std::string(id);
  r->erased_at_ms = util::SignedFromOrdered(at);
  r->analytics_mode = mode;
  r->suppressed = sup != 0;
  r->category = std::string(category);
  return Status::OK();
}

void EncodeFence(const ErasureRequest& r, std::string* out) {
  util::PutLengthPrefixed(out, r.request_id);
  util::PutFixed64BE(out, util::OrderedFromSigned(r.erased_at_ms));
  util::PutFixed64BE(out, r.key_epoch);
  out->push_back(static_cast<char>(r.analytics_mode));
}

Status DecodeFence(std::string_view in, bool with_category, ErasureRequest* r) {
  util::ByteReader rd(in);
  std::string_view id, category;
  std::uint64_t at = 0;
  std::uint8_t mode = 0;
  if (!rd.GetLengthPrefixed(&id) || !rd.GetFixed64BE(&at) || !rd.GetFixed64BE(&r->key_epoch) || !rd.GetU8(&mode) ||
      (with_category && !rd.GetLengthPrefixed(&category)) || !rd.done()) {
    return Status::Corruption("erasure fence malformed");
  }
  r->request_id = std::string(id);
  r->erased_at_ms = util::SignedFromOrdered(at);
  r->analytics_mode = mode;
  r->category = std::string(category);
  return Status::OK();
}

void EncodeSuppression(std::string_view request_id, std::int64_t at_ms, std::string* out) {
  util::PutLengthPrefixed(out, request_id);
  util::PutFixed64BE(out, util::OrderedFromSigned(at_ms));
}

Status DecodeSuppression(std::string_view in, std::string* request_id, std::int64_t* at_ms) {
  util::ByteReader rd(in);
  std::string_view id;
  std::uint64_t at = 0;
  if (!rd.GetLengthPrefixed(&id) || !rd.GetFixed64BE(&at) || !rd.done()) {
    return Status::Corruption("suppression entry malformed");
  }
  *request_id = std::string(id);
  *at_ms = util::SignedFromOrdered(at);
  return Status::OK();
}

void EncodeTicket(const TicketPayload& t, std::string* out) {
  util::PutLengthPrefixed(out, t.request_id);
  out->push_back(static_cast<char>(t.analytics_mode));
  if (t.analytics_links.empty()) return;
  if (t.links_sealed) util::PutLengthPrefixed(out, "");
  util::PutLengthPrefixed(out, t.analytics_links);
}

Status DecodeTicket(std::string_view in, TicketPayload* t) {
  util::ByteReader r(in);
  std::string_view id, links;
  if (!r.GetLengthPrefixed(&id) || !r.GetU8(&t->analytics_mode)) return Status::Corruption("purge ticket malformed");
  // Format 3: the analytics links (absent in format 2 and for kKeep),
  // sealed behind an empty field since stop 29.
  bool sealed = false;
  if (!r.done()) {
    if (!r.GetLengthPrefixed(&links)) return Status::Corruption("purge ticket malformed");
    if (links.empty()) {
      sealed = true;
      if (!r.GetLengthPrefixed(&links)) return Status::Corruption("purge ticket malformed");
    }
    if (!r.done() || links.empty()) return Status::Corruption("purge ticket malformed");
  }
  t->request_id = std::string(id);
  t->analytics_links = std::string(links);
  t->links_sealed = sealed;
  return Status::OK();
}

}  // namespace shredkv::keys
