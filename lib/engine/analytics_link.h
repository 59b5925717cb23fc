// Where a person's analytics rows live, and how only the person's own keys
// find them (format 3, docs/format.md §5.4, docs/security.md §5).
//
// An analytics row is keyed by bucket ‖ row_id:
//   bucket = the event time floored to the store's analytics granularity
//            (data meta `analytics_granularity`, fixed when the store is made);
//   row_id = derived from the link and the event's sequence number seq
//            (AnalyticsLayout below),
//   link   = H32(slot key; "analytics-link"), slot key the key that seals the
//            event row (the person key or the event's category key).
// So the row shares no key, sequence number, exact time or insertion order
// with its event row, and finding it needs the link, which exists only while
// the slot key does. An erasure that must still reach the rows after the key
// is gone (unlink, delete) puts the links into its purge ticket (EncodeLinks).
// Unlinked rows get a random row_id and a coarser bucket.
// Thread safety: stateless.
#ifndef SHREDKV_ENGINE_ANALYTICS_LINK_H_
#define SHREDKV_ENGINE_ANALYTICS_LINK_H_

#include <array>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "crypto/secure_memory.h"
#include "shredkv/status.h"

namespace shredkv::engine {

inline constexpr std::size_t kAnalyticsLinkSize = 32;
// Default and bounds of Options::analytics_time_granularity_ms.
inline constexpr std::int64_t kMinAnalyticsGranularityMs = 1000;

// A slot key's analytics link. Held in a std::string only as long as the
// caller needs it; callers wipe it (crypto::Wipe).
std::string AnalyticsLink(const crypto::SecretKey& slot_key);

// The links of one person's key slots, derived once per use; wiped when
// destroyed. Held inline (no allocation: a batch keeps one a person it
// writes). Thread safety: one owner.
class LinkCache {
 public:
  LinkCache() = default;
  LinkCache(const LinkCache&) = delete;
  LinkCache& operator=(const LinkCache&) = delete;
  LinkCache(LinkCache&& other) noexcept = default;
  ~LinkCache();
  // The link of `slot`, whose key is `slot_key`; valid while the cache is
  // alive and not moved.
  std::string_view Get(std::uint32_t slot, const crypto::SecretKey& slot_key);

 private:
  struct Entry {
    std::uint32_t slot = 0;
    std::array<char, kAnalyticsLinkSize> link{};
  };
  static constexpr std::size_t kInline = 2;  // the person key and one category key, usually
  std::array<Entry, kInline> inline_{};
  std::size_t inline_used_ = 0;
  // Slots beyond kInline, made on first need (an empty std::deque allocates
  // two blocks, and every person of a batch has a LinkCache); a deque:
  // growing never moves (and leaves unwiped) a link.
  std::unique_ptr<std::deque<Entry>> more_;
};

// How a store's linked analytics keys are built (data meta
// `analytics_layout`, format.md §5.4):
//   kUngrouped  bucket ‖ H16(link; "analytics-row" ‖ seq) — format-3 stores
//               made before the layout was recorded;
//   kGrouped    bucket ‖ group ‖ row: group = link[0..8), the same for every
//               row of the slot, row = SipHash-2-4(link[16..32); seq) as
//               fixed64be. A slot's rows of one bucket are adjacent (in an
//               order that follows neither seq nor time), so reading a
//               person's rows reads neighbouring keys; the grouping is the
//               one the anonymous ID in every row's value shows anyway
//               (security.md §5.1). Stores made or migrated from now on.
enum class AnalyticsLayout : std::uint32_t { kUngrouped = 1, kGrouped = 2 };

// The key of the analytics row of the event (ts_ms, seq) sealed under the
// slot key whose link is `link`.
std::string LinkedAnalyticsKey(AnalyticsLayout layout, std::string_view link, std::int64_t granularity_ms,
                               std::int64_t ts_ms, std::uint64_t seq);

// A fresh unlinked key in `bucket_ms`'s bucket: a random row id.
std::string RandomAnalyticsKey(std::int64_t bucket_ms);

// floor(ts_ms / granularity_ms) * granularity_ms, rounding towards -inf.
std::int64_t FloorTo(std::int64_t ts_ms, std::int64_t granularity_ms);

// The links of a purge ticket: slot → link, encoded as
// varint(n) (fixed32be(slot) ‖ link[32])*n, slots ascending.
std::string EncodeLinks(const std::map<std::uint32_t, std::string>& links);
// Corruption if malformed. The caller wipes the decoded links.
[[nodiscard]] Status DecodeLinks(std::string_view in, std::map<std::uint32_t, std::string>* links);

}  // namespace shredkv::engine

#endif  // SHREDKV_ENGINE_ANALYTICS_LINK_H_
