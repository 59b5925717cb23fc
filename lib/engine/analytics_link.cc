#include "engine/analytics_link.h"

#include <array>
#include <limits>

#include "codec/row_codec.h"
#include "crypto/keyed_hash.h"
#include "crypto/random.h"
#include "crypto/secure_memory.h"
#include "util/coding.h"

namespace shredkv::engine {

namespace {
constexpr std::string_view kRowLabel = "analytics-row";
}  // namespace

namespace {
// H32(K; "analytics-link") as crypto::KeyedHash computes it (the part
// length-prefixed), in one call without allocating the prefix.
void ComputeLink(const crypto::SecretKey& slot_key, char* out) {
  static constexpr char kMessage[] = "\x0e" "analytics-link";
  static_assert(sizeof kMessage - 2 == 0x0e);
  crypto::KeyedHashRaw(slot_key.view(), std::string_view(kMessage, sizeof kMessage - 1),
                       reinterpret_cast<unsigned char*>(out), kAnalyticsLinkSize);
}
}  // namespace

std::string AnalyticsLink(const crypto::SecretKey& slot_key) {
  std::string link(kAnalyticsLinkSize, '\0');
  ComputeLink(slot_key, link.data());
  return link;
}

LinkCache::~LinkCache() {
  for (Entry& e : inline_) crypto::Wipe(e.link.data(), e.link.size());
  if (more_) {
    for (Entry& e : *more_) crypto::Wipe(e.link.data(), e.link.size());
  }
}

std::string_view LinkCache::Get(std::uint32_t slot, const crypto::SecretKey& slot_key) {
  for (std::size_t i = 0; i < inline_used_; ++i) {
    if (inline_[i].slot == slot) return std::string_view(inline_[i].link.data(), kAnalyticsLinkSize);
  }
  if (more_) {
    for (const Entry& e : *more_) {
      if (e.slot == slot) return std::string_view(e.link.data(), kAnalyticsLinkSize);
    }
  }
  Entry* e = nullptr;
  if (inline_used_ < kInline) {
    e = &inline_[inline_used_++];
  } else {
    if (!more_) more_ = std::make_unique<std::deque<Entry>>();
    e = &more_->emplace_back();
  }
  e->slot = slot;
  ComputeLink(slot_key, e->link.data());
  return std::string_view(e->link.data(), kAnalyticsLinkSize);
}

std::int64_t FloorTo(std::int64_t ts_ms, std::int64_t granularity_ms) {
  if (granularity_ms <= 1) return ts_ms;
  std::int64_t r = ts_ms % granularity_ms;
  if (r < 0) r += granularity_ms;
  // Near INT64_MIN the floor is below it (signed overflow: stop 26's audit
  // saw such a row filed ~292 million years ahead): the lowest bucket.
  if (ts_ms < std::numeric_limits<std::int64_t>::min() + r) return ts_ms - (ts_ms % granularity_ms);
  return ts_ms - r;
}

std::string LinkedAnalyticsKey(AnalyticsLayout layout, std::string_view link, std::int64_t granularity_ms,
                               std::int64_t ts_ms, std::uint64_t seq) {
  if (layout == AnalyticsLayout::kGrouped) {
    static_assert(codec::kAnalyticsRowIdSize == 16 && kAnalyticsLinkSize == 32);
    std::array<char, 8> seq_be{};
    for (std::size_t i = 0; i < 8; ++i) seq_be[i] = static_cast<char>(seq >> (56 - 8 * i));
    const std::uint64_t row = crypto::ShortKeyedHash(link.substr(16, 16), std::string_view(seq_be.data(), 8));
    std::array<char, codec::kAnalyticsRowIdSize> row_id{};
    std::copy(link.begin(), link.begin() + 8, row_id.begin());
    for (std::size_t i = 0; i < 8; ++i) row_id[8 + i] = static_cast<char>(row >> (56 - 8 * i));
    return codec::AnalyticsKey(FloorTo(ts_ms, granularity_ms), std::string_view(row_id.data(), row_id.size()));
  }
  std::array<char, kRowLabel.size() + 8> message{};
  std::copy(kRowLabel.begin(), kRowLabel.end(), message.begin());
  for (std::size_t i = 0; i < 8; ++i) message[kRowLabel.size() + i] = static_cast<char>(seq >> (56 - 8 * i));
  std::array<unsigned char, codec::kAnalyticsRowIdSize> row_id{};
  crypto::KeyedHashRaw(link, std::string_view(message.data(), message.size()), row_id.data(), row_id.size());
  return codec::AnalyticsKey(FloorTo(ts_ms, granularity_ms),
                             std::string_view(reinterpret_cast<const char*>(row_id.data()), row_id.size()));
}

std::string RandomAnalyticsKey(std::int64_t bucket_ms) {
  const auto row_id = crypto::RandomArray<codec::kAnalyticsRowIdSize>();
  return codec::AnalyticsKey(bucket_ms, std::string_view(reinterpret_cast<const char*>(row_id.data()), row_id.size()));
}

std::string EncodeLinks(const std::map<std::uint32_t, std::string>& links) {
  std::string out;
  util::PutVarint64(&out, links.size());
  for (const auto& [slot, link] : links) {
    util::PutFixed32BE(&out, slot);
    out.append(link);
  }
  return out;
}

Status DecodeLinks(std::string_view in, std::map<std::uint32_t, std::string>* links) {
  util::ByteReader r(in);
  std::uint64_t n = 0;
  if (!r.GetVarint64(&n) || n > in.size() / (4 + kAnalyticsLinkSize)) {
    return Status::Corruption("analytics links are malformed");
  }
  for (std::uint64_t i = 0; i < n; ++i) {
    std::uint32_t slot = 0;
    std::string_view link;
    if (!r.GetFixed32BE(&slot) || !r.GetBytes(kAnalyticsLinkSize, &link)) {
      return Status::Corruption("analytics links are malformed");
    }
    (*links)[slot] = std::string(link);
  }
  if (!r.done()) return Status::Corruption("analytics links are malformed");
  return Status::OK();
}

}  // namespace shredkv::engine
