#include "engine/feed.h"

#include <algorithm>

#include "codec/sealed.h"
#include "engine/data_rows.h"
#include "engine/retention.h"
#include "util/coding.h"

namespace shredkv {

std::string_view NoticeKindName(NoticeKind kind) {
  switch (kind) {
    case NoticeKind::kRectification: return "rectification";
    case NoticeKind::kErasure: return "erasure";
    case NoticeKind::kRestriction: return "restriction";
    case NoticeKind::kImport: return "import";
    case NoticeKind::kRecordChange: return "record";
  }
  return "unknown";
}

namespace engine {

using codec::TableId;

namespace {

constexpr std::string_view kFloorKey{"\0\0\0\0\0\0\0\0", 8};

// The fixed part of a notice's payload: u8 kind ‖ person ‖ i64 time.
constexpr std::size_t kTimeOffset = 1 + PersonId::kSize;

}  // namespace

std::int64_t NoticeExpiryCutoff(const RetentionRules& rules, std::int64_t now_ms) {
  // kNoNoticeExpiry (INT64_MIN) also when the clock is within the rule of
  // INT64_MIN: then no notice is expired (one at INT64_MIN expires 1 ms
  // late at the one instant the cutoff is exactly INT64_MIN).
  return rules.feed > 0 ? RetentionCutoff(now_ms, rules.feed).value_or(kNoNoticeExpiry) : kNoNoticeExpiry;
}

Result<std::uint64_t> Outbox::NewestCursor(storage::ReadTxn& txn) const {
  std::uint64_t newest = 0;
  {
    auto c = txn.OpenCursor(table_);
    if (!c.ok()) return c.status();
    if (Status m = (*c)->SeekToLast(); !m.ok()) return m;
    if ((*c)->Valid()) {
      if ((*c)->key().size() != 8) return Status::Corruption("outbox key has the wrong length");
      newest = util::DecodeFixed64BE((*c)->key().data());
    }
  }
  // Acknowledged notices are deleted; the floor (key 0) keeps the highest
  // cursor acknowledged, so cursors never go back.
  std::string_view row;
  if (txn.Get(table_, kFloorKey, &row).ok()) {
    std::string_view payload;
    if (Status o = codec::OpenPlain(TableId::kOutbox, kFloorKey, row, &payload); !o.ok()) return o;
    if (payload.size() == 8) newest = std::max(newest, util::DecodeFixed64BE(payload.data()));
  }
  return newest;
}

Status Outbox::Append(storage::WriteTxn& txn, NoticeKind kind, const PersonId& person, std::int64_t time_ms,
                      std::vector<std::string> names) {
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  auto newest = NewestCursor(txn);
  if (!newest.ok()) return newest.status();
  if (*newest == ~std::uint64_t{0}) return Status::StoreFull("the change feed has used every cursor");
  const std::uint64_t cursor = *newest + 1;
  std::string key, payload;
  util::PutFixed64BE(&key, cursor);
  payload.push_back(static_cast<char>(kind));
  payload.append(person.view());
  util::PutFixed64BE(&payload, util::OrderedFromSigned(time_ms));
  util::PutVarint64(&payload, names.size());
  for (const std::string& n : names) util::PutLengthPrefixed(&payload, n);
  return txn.Put(table_, key, PlainRow(TableId::kOutbox, key, payload));
}

Result<std::vector<Notice>> Outbox::Read(storage::ReadTxn& txn, std::uint64_t after, std::size_t max,
                                         const PersonId* person, std::int64_t expired_at) {
  auto expired = ExpiredPrefix(txn, expired_at);
  if (!expired.ok()) return expired.status();
  after = std::max(after, expired->last);
  std::vector<Notice> out;
  auto c = txn.OpenCursor(table_);
  if (!c.ok()) return c.status();
  std::string start;
  util::PutFixed64BE(&start, std::max<std::uint64_t>(after + 1, 1));
  Status m = (*c)->Seek(start);
  for (; m.ok() && (*c)->Valid() && out.size() < max; m = (*c)->Next()) {
    std::string_view payload;
    if (Status o = codec::OpenPlain(TableId::kOutbox, (*c)->key(), (*c)->value(), &payload); !o.ok()) {
      return o.WithContext("change feed");
    }
    util::ByteReader r(payload);
    Notice n;
    std::uint8_t kind = 0;
    std::string_view pid;
    std::uint64_t time = 0, count = 0;
    if ((*c)->key().size() != 8 || !r.GetU8(&kind) || !r.GetBytes(PersonId::kSize, &pid) ||
        !r.GetFixed64BE(&time) || !r.GetVarint64(&count) || count > payload.size()) {
      return Status::Corruption("change feed notice malformed");
    }
    for (std::uint64_t i = 0; i < count; ++i) {
      std::string_view name;
      if (!r.GetLengthPrefixed(&name)) return Status::Corruption("change feed notice malformed");
      n.names.emplace_back(name);
    }
    if (!r.done() || kind < 1 || kind > static_cast<std::uint8_t>(NoticeKind::kRecordChange)) {
      return Status::Corruption("change feed notice malformed");
    }
    auto id = PersonIdFromBytes(pid);
    if (!id.ok()) return id.status();
    if (person != nullptr && *id != *person) continue;
    n.cursor = util::DecodeFixed64BE((*c)->key().data());
    n.kind = static_cast<NoticeKind>(kind);
    n.person = *id;
    n.time_ms = util::SignedFromOrdered(time);
    out.push_back(std::move(n));
  }
  if (!m.ok()) return m;
  return out;
}

Status Outbox::Ack(storage::WriteTxn& txn, std::uint64_t cursor) {
  auto newest = NewestCursor(txn);
  if (!newest.ok()) return newest.status();
  if (cursor > *newest) {
    return Status::InvalidArgument("cursor " + std::to_string(cursor) + " was never issued (the newest is " +
                                   std::to_string(*newest) + ")");
  }
  std::vector<std::string> keys;
  {
    auto c = txn.OpenCursor(table_);
    if (!c.ok()) return c.status();
    std::string first;
    util::PutFixed64BE(&first, 1);
    Status m = (*c)->Seek(first);
    for (; m.ok() && (*c)->Valid(); m = (*c)->Next()) {
      if ((*c)->key().size() != 8 || util::DecodeFixed64BE((*c)->key().data()) > cursor) break;
      keys.emplace_back((*c)->key());
    }
    if (!m.ok()) return m;
  }
  for (const std::string& k : keys) {
    if (Status d = txn.Delete(table_, k); !d.ok()) return d;
  }
  // Remember the highest acknowledged cursor (key 0) so cursors never repeat.
  return RaiseFloor(txn, cursor);
}

Status Outbox::RaiseFloor(storage::WriteTxn& txn, std::uint64_t cursor) {
  std::string_view row, payload;
  if (txn.Get(table_, kFloorKey, &row).ok() && codec::OpenPlain(TableId::kOutbox, kFloorKey, row, &payload).ok() &&
      payload.size() == 8 && util::DecodeFixed64BE(payload.data()) >= cursor) {
    return Status::OK();
  }
  std::string v;
  util::PutFixed64BE(&v, cursor);
  return txn.Put(table_, kFloorKey, PlainRow(TableId::kOutbox, kFloorKey, v));
}

Status Outbox::WalkExpired(const storage::ReadTxn& txn, std::int64_t expired_at, std::uint64_t max,
                           const std::function<Status(std::string_view key)>& visit, bool* more) const {
  *more = false;
  if (expired_at == kNoNoticeExpiry) return Status::OK();
  auto c = txn.OpenCursor(table_);
  if (!c.ok()) return c.status();
  std::string first;
  util::PutFixed64BE(&first, 1);
  std::uint64_t visited = 0;
  Status m = (*c)->Seek(first);
  for (; m.ok() && (*c)->Valid(); m = (*c)->Next()) {
    std::string_view payload;
    if (Status o = codec::OpenPlain(TableId::kOutbox, (*c)->key(), (*c)->value(), &payload); !o.ok()) {
      return o.WithContext("change feed");
    }
    if ((*c)->key().size() != 8 || payload.size() < kTimeOffset + 8) {
      return Status::Corruption("change feed notice malformed");
    }
    const std::int64_t time = util::SignedFromOrdered(util::DecodeFixed64BE(payload.data() + kTimeOffset));
    if (time > expired_at) break;  // the prefix ends at the first notice not expired
    if (visited == max) {
      *more = true;
      break;
    }
    if (Status v = visit((*c)->key()); !v.ok()) return v;
    ++visited;
  }
  return m;
}

Result<Outbox::Expired> Outbox::DeleteExpired(storage::WriteTxn& txn, std::int64_t expired_at, std::uint64_t max) {
  Expired out;
  std::vector<std::string> keys;
  Status w = WalkExpired(
      txn, expired_at, max,
      [&keys](std::string_view key) {
        keys.emplace_back(key);
        return Status::OK();
      },
      &out.more);
  if (!w.ok()) return w;
  if (keys.empty()) return out;
  for (const std::string& k : keys) {
    if (Status d = txn.Delete(table_, k); !d.ok()) return d;
  }
  out.deleted = keys.size();
  // The newest notice may be among them: without the floor, the next
  // notice would get a cursor a consumer may already have read.
  if (Status f = RaiseFloor(txn, util::DecodeFixed64BE(keys.back().data())); !f.ok()) return f;
  return out;
}

Result<Outbox::Prefix> Outbox::ExpiredPrefix(const storage::ReadTxn& txn, std::int64_t expired_at) const {
  Prefix prefix;
  bool more = false;
  Status w = WalkExpired(
      txn, expired_at, ~std::uint64_t{0},
      [&prefix](std::string_view key) {
        ++prefix.count;
        prefix.last = util::DecodeFixed64BE(key.data());
        return Status::OK();
      },
      &more);
  if (!w.ok()) return w;
  return prefix;
}

}  // namespace engine
}  // namespace shredkv
