#include "engine/feed.h"

#include <algorithm>

#include "codec/sealed.h"
#include "engine/data_rows.h"
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

}  // namespace

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
                                         const PersonId* person) {
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
  std::string v;
  util::PutFixed64BE(&v, cursor);
  std::string_view row, payload;
  if (txn.Get(table_, kFloorKey, &row).ok() && codec::OpenPlain(TableId::kOutbox, kFloorKey, row, &payload).ok() &&
      payload.size() == 8 && util::DecodeFixed64BE(payload.data()) > cursor) {
    return Status::OK();
  }
  return txn.Put(table_, kFloorKey, PlainRow(TableId::kOutbox, kFloorKey, v));
}

}  // namespace engine
}  // namespace shredkv
