// The migration of a format-2 `data` environment to format 3 (analytics rows
// unlinkable from event rows, docs/format.md §11), run by Store::Open before
// any call is served.
//
// Format 2 keyed an analytics row ts ‖ seq, the (ts, seq) of its event row;
// format 3 keys it bucket ‖ row_id (engine/analytics_link.h). The migration
// moves every row in two phases, each in transactions of at most
// kRowsPerTxn rows that also advance the resume state in data meta
// `migration_v3` := u8(phase) ‖ lp(resume key), so a crash at any point
// leaves a store that the next open resumes where the last commit ended:
//   phase 1  walks `events`: the analytics row of each event whose key slot
//            still has its key moves to its linked key; the row of an event
//            whose key is gone (an erased person or category awaiting purge)
//            moves to a random key (unlinked, as its key's erasure makes it);
//   phase 2  walks `analytics` for the format-2 keys left (rows whose event
//            is gone: purged, expired, or unlinked by an erasure) and moves
//            each to a random key in its bucket.
// The last transaction writes `format` = 3 and `analytics_granularity` and
// deletes `migration_v3`. Erasures a format-2 engine left half-applied were
// finished by RecoverErasures, with format-2 keys, before this runs.
// A format-2 analytics row whose checksum fails is dropped (counted in the
// progress total only): it was unreadable already, and re-sealing it under a
// new key would make it look sound.
#include <memory>
#include <string>
#include <vector>

#include "codec/row_codec.h"
#include "codec/sealed.h"
#include "crypto/secure_memory.h"
#include "engine/analytics_link.h"
#include "engine/data_rows.h"
#include "engine/migration.h"
#include "util/coding.h"
#include "util/test_point.h"

namespace shredkv::engine {
namespace {

using codec::TableId;

constexpr std::size_t kRowsPerTxn = 1000;
constexpr std::uint8_t kPhaseEvents = MigrationState::kPhaseEvents;
constexpr std::uint8_t kPhaseLeftovers = MigrationState::kPhaseLeftovers;

// One analytics row to move: from its format-2 key to `to`.
struct Move {
  std::string from, to;
};

// One migration run: reads a batch of moves in a read transaction, then
// applies it with the new resume state in one write transaction.
class Migration {
 public:
  explicit Migration(EngineContext& ctx) : ctx_(ctx) {}

  Status Run() {
    if (Status s = LoadState(); !s.ok()) return s;
    Report();
    for (bool finished = false; !finished;) {
      moves_.clear();
      MigrationState next = state_;
      std::uint64_t examined = 0;
      Status s = ctx_.data->View([&](storage::ReadTxn& txn) {
        return state_.phase == kPhaseEvents ? CollectEventMoves(txn, &next, &examined)
                                            : CollectLeftoverMoves(txn, &next, &examined, &finished);
      });
      if (!s.ok()) return s;
      s = ctx_.data->Update([&](storage::WriteTxn& txn) { return ApplyMoves(txn, next, finished); });
      if (!s.ok()) return s;
      state_ = next;
      done_ += examined;
      Report();
      util::TestPoint("migrate.after_batch");
    }
    if (ctx_.options.durability != Durability::kFullSync) {
      if (Status f = ctx_.data->Sync(); !f.ok()) return f;
    }
    return Status::OK();
  }

 private:
  Status LoadState() {
    return ctx_.data->View([&](storage::ReadTxn& txn) -> Status {
      std::string raw;
      Status g = ReadPlain(txn, ctx_.tables.meta, TableId::kDataMeta, kMigrationKey, &raw);
      if (g.ok()) {
        if (Status d = DecodeMigrationState(raw, &state_); !d.ok()) return d;
      } else if (!g.IsNotFound()) {
        return g;
      }
      auto events = txn.Count(ctx_.tables.events);
      if (!events.ok()) return events.status();
      auto analytics = txn.Count(ctx_.tables.analytics);
      if (!analytics.ok()) return analytics.status();
      total_ = *events + *analytics;
      return Status::OK();
    });
  }

  void Report() {
    if (ctx_.wants_progress()) ctx_.ReportProgress("migrate", done_, total_);
  }

  // Phase 1: the analytics rows of up to kRowsPerTxn events.
  Status CollectEventMoves(storage::ReadTxn& txn, MigrationState* next, std::uint64_t* examined) {
    auto cursor = txn.OpenCursor(ctx_.tables.events);
    if (!cursor.ok()) return cursor.status();
    auto& c = **cursor;
    Status m = c.Seek(state_.resume);
    for (; m.ok() && c.Valid() && *examined < kRowsPerTxn; m = c.Next()) {
      ++*examined;
      next->resume = std::string(c.key()) + '\0';
      if (c.key().size() != PersonId::kSize + 16) return Status::Corruption("event key has the wrong length");
      std::int64_t ts = 0;
      std::uint64_t seq = 0;
      if (Status d = codec::DecodeTsSeq(c.key().substr(PersonId::kSize), &ts, &seq); !d.ok()) return d;
      const std::string from = codec::AnalyticsKeyV2(ts, seq);
      std::string_view unused;
      Status g = txn.Get(ctx_.tables.analytics, from, &unused);
      if (g.IsNotFound()) continue;
      if (!g.ok()) return g;
      auto to = NewKeyOf(c.key(), c.value(), ts, seq);
      if (!to.ok()) return to.status();
      moves_.push_back({from, std::move(to).value()});
    }
    if (!m.ok()) return m;
    if (!c.Valid()) *next = MigrationState{kPhaseLeftovers, ""};
    return Status::OK();
  }

  // The format-3 key of the analytics row of the event row (key, row): the
  // linked key while the event's key slot has its key, else a random one.
  Result<std::string> NewKeyOf(std::string_view event_key, std::string_view event_row, std::int64_t ts,
                               std::uint64_t seq) {
    auto person = PersonIdFromBytes(event_key.substr(0, PersonId::kSize));
    if (!person.ok()) return person.status();
    if (!links_ || *person != cached_person_) {  // events sort by person
      links_ = std::make_unique<LinkCache>();
      cached_person_ = *person;
    }
    std::uint32_t slot = 0;
    if (codec::PersonRowSlot(event_row, &slot).ok()) {
      auto dek = ctx_.keys->GetDek(*person, slot);
      if (dek.ok()) return ctx_.AnalyticsKeyFor(links_->Get(slot, **dek), ts, seq);
      if (!dek.status().IsNotFound()) return dek.status();
    }
    return RandomAnalyticsKey(FloorTo(ts, ctx_.analytics_granularity_ms));
  }

  // Phase 2: up to kRowsPerTxn format-2 analytics keys whose event is gone.
  Status CollectLeftoverMoves(storage::ReadTxn& txn, MigrationState* next, std::uint64_t* examined, bool* finished) {
    auto cursor = txn.OpenCursor(ctx_.tables.analytics);
    if (!cursor.ok()) return cursor.status();
    auto& c = **cursor;
    Status m = c.Seek(state_.resume);
    for (; m.ok() && c.Valid() && moves_.size() < kRowsPerTxn && *examined < 16 * kRowsPerTxn; m = c.Next()) {
      ++*examined;
      next->resume = std::string(c.key()) + '\0';
      if (c.key().size() == codec::kAnalyticsKeySize) continue;  // moved already
      std::int64_t ts = 0;
      std::uint64_t seq = 0;
      if (Status d = codec::DecodeTsSeq(c.key(), &ts, &seq); !d.ok()) return d;
      moves_.push_back({std::string(c.key()), RandomAnalyticsKey(FloorTo(ts, ctx_.analytics_granularity_ms))});
    }
    if (!m.ok()) return m;
    *finished = !c.Valid();
    return Status::OK();
  }

  // Moves the collected rows and stores `next`; the last batch marks the
  // environment format 3 instead.
  Status ApplyMoves(storage::WriteTxn& txn, const MigrationState& next, bool finished) {
    for (const Move& mv : moves_) {
      std::string row;
      std::string_view stored, payload;
      if (Status g = txn.Get(ctx_.tables.analytics, mv.from, &stored); !g.ok()) return g;
      const bool sound = codec::OpenPlain(TableId::kAnalytics, mv.from, stored, &payload).ok();
      if (sound) codec::SealPlain(TableId::kAnalytics, mv.to, payload, &row);
      if (Status d = txn.Delete(ctx_.tables.analytics, mv.from); !d.ok()) return d;
      if (!sound) continue;
      std::string_view taken;
      if (txn.Get(ctx_.tables.analytics, mv.to, &taken).ok()) {
        return Status::Internal("analytics row key collision during the format-3 migration");
      }
      if (Status p = txn.Put(ctx_.tables.analytics, mv.to, row); !p.ok()) return p;
    }
    const DataTables& t = ctx_.tables;
    // Every transaction records the layout its moves used, so a resumed
    // migration keeps it (ReadDataMeta).
    if (Status p = ctx_.PutAnalyticsLayout(txn); !p.ok()) return p;
    if (!finished) {
      return txn.Put(t.meta, kMigrationKey, PlainRow(TableId::kDataMeta, kMigrationKey, EncodeMigrationState(next)));
    }
    std::string granularity;
    util::PutFixed64BE(&granularity, static_cast<std::uint64_t>(ctx_.analytics_granularity_ms));
    if (Status p = txn.Put(t.meta, kAnalyticsGranularityKey,
                           PlainRow(TableId::kDataMeta, kAnalyticsGranularityKey, granularity));
        !p.ok()) {
      return p;
    }
    if (Status d = txn.Delete(t.meta, kMigrationKey); !d.ok()) return d;
    return ctx_.PutDataFormat(txn);
  }

  EngineContext& ctx_;
  MigrationState state_;
  std::uint64_t total_ = 0, done_ = 0;
  std::vector<Move> moves_;
  PersonId cached_person_;
  std::unique_ptr<LinkCache> links_;
};

}  // namespace

std::string EncodeMigrationState(const MigrationState& s) {
  std::string out;
  out.push_back(static_cast<char>(s.phase));
  util::PutLengthPrefixed(&out, s.resume);
  return out;
}

Status DecodeMigrationState(std::string_view in, MigrationState* s) {
  util::ByteReader r(in);
  std::string_view resume;
  if (!r.GetU8(&s->phase) || !r.GetLengthPrefixed(&resume) || !r.done() ||
      (s->phase != MigrationState::kPhaseEvents && s->phase != MigrationState::kPhaseLeftovers)) {
    return Status::Corruption("format-3 migration state is malformed");
  }
  s->resume = std::string(resume);
  return Status::OK();
}

Status MigrateData(EngineContext& ctx) {
  if (ctx.data_format >= kDataFormatVersion) return Status::OK();
  std::lock_guard write_lock(ctx.write_mu);
  if (ctx.data_format < kUnlinkedDataFormatVersion) {
    // Its last transaction stores format kDataFormatVersion.
    if (Status s = Migration(ctx).Run(); !s.ok()) return s;
  } else {
    if (Status s = ctx.data->Update([&](storage::WriteTxn& txn) { return ctx.PutDataFormat(txn); }); !s.ok()) return s;
  }
  ctx.data_format = kDataFormatVersion;
  return Status::OK();
}

}  // namespace shredkv::engine
