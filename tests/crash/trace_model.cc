#include "crash/trace_model.h"

#include <sstream>

namespace shredkv::crash {
namespace {

constexpr const char* kCollection = "c";

const char* KindName(OpKind k) {
  switch (k) {
    case OpKind::kCreate: return "create";
    case OpKind::kPut: return "put";
    case OpKind::kDelete: return "delete";
    case OpKind::kPatch: return "patch";
    case OpKind::kAppend: return "append";
    case OpKind::kBatch: return "batch";
    case OpKind::kErase: return "erase";
    case OpKind::kPurge: return "purge";
    case OpKind::kRotate: return "rotate";
  }
  return "?";
}

std::optional<OpKind> KindFromName(const std::string& s) {
  for (OpKind k : {OpKind::kCreate, OpKind::kPut, OpKind::kDelete, OpKind::kPatch, OpKind::kAppend,
                   OpKind::kBatch, OpKind::kErase, OpKind::kPurge, OpKind::kRotate}) {
    if (s == KindName(k)) return k;
  }
  return std::nullopt;
}

std::string OrDash(const std::string& s) { return s.empty() ? "-" : s; }
std::string FromDash(const std::string& s) { return s == "-" ? std::string() : s; }

std::string RecordValue(std::uint64_t n) { return "v" + std::to_string(n); }

ProfilePatch PatchFor(std::uint64_t n) {
  ProfilePatch patch;
  patch.set["v"] = static_cast<std::int64_t>(n);
  if (n % 2 == 1) {
    patch.set["w"] = "w" + std::to_string(n);
  } else {
    patch.unset.push_back("w");
  }
  return patch;
}

Event EventFor(std::uint64_t n) {
  Event e;
  e.name = "e";
  e.ts_ms = static_cast<std::int64_t>(n);
  e.properties["n"] = static_cast<std::int64_t>(n);
  return e;
}

PersonId IdOf(const std::string& hex) {
  auto id = PersonId::FromHex(hex);
  return id.ok() ? *id : PersonId();
}

}  // namespace

std::string Encode(const Op& op) {
  std::ostringstream out;
  out << KindName(op.kind) << ' ' << op.n << ' ' << OrDash(op.person) << ' ' << OrDash(op.email) << ' '
      << OrDash(op.key);
  return out.str();
}

std::optional<Op> Parse(const std::string& line) {
  std::istringstream in(line);
  std::string kind, person, email, key;
  Op op;
  if (!(in >> kind >> op.n >> person >> email >> key)) return std::nullopt;
  auto k = KindFromName(kind);
  if (!k) return std::nullopt;
  op.kind = *k;
  op.person = FromDash(person);
  op.email = FromDash(email);
  op.key = FromDash(key);
  return op;
}

void Model::Apply(const Op& op) {
  switch (op.kind) {
    case OpKind::kCreate: {
      PersonState& p = people_[op.person];
      p.email = op.email;
      p.profile["v"] = static_cast<std::int64_t>(op.n);
      return;
    }
    case OpKind::kPut: people_[op.person].records[op.key] = RecordValue(op.n); return;
    case OpKind::kDelete: people_[op.person].records.erase(op.key); return;
    case OpKind::kPatch: {
      const ProfilePatch patch = PatchFor(op.n);
      PersonState& p = people_[op.person];
      for (const auto& [k, v] : patch.set) p.profile[k] = v;
      for (const auto& k : patch.unset) p.profile.erase(k);
      return;
    }
    case OpKind::kAppend: people_[op.person].event_ts.push_back(static_cast<std::int64_t>(op.n)); return;
    case OpKind::kBatch: {
      Op part = op;
      part.kind = OpKind::kPut;
      Apply(part);
      part.kind = OpKind::kAppend;
      Apply(part);
      part.kind = OpKind::kPatch;
      Apply(part);
      return;
    }
    case OpKind::kErase: {
      PersonState& p = people_[op.person];
      p.erased = true;
      p.profile.clear();
      p.records.clear();
      p.event_ts.clear();
      return;
    }
    case OpKind::kPurge:
    case OpKind::kRotate: return;
  }
}

std::size_t Model::live_count() const {
  std::size_t n = 0;
  for (const auto& [id, p] : people_) n += p.erased ? 0 : 1;
  return n;
}

bool RunWorkload(Store& store, Model& model, std::mt19937_64& rng, std::uint64_t* next_n,
                 const WorkloadOptions& options, TraceSink& sink) {
  for (std::size_t i = 0; i < options.ops; ++i) {
    std::vector<std::string> live;
    for (const auto& [id, p] : model.people()) {
      if (!p.erased) live.push_back(id);
    }
    Op op;
    op.n = (*next_n)++;
    const std::uint64_t roll = rng() % 100;
    if (live.empty() || (live.size() < 8 && roll < 15)) {
      op.kind = OpKind::kCreate;
    } else if (roll < 40) {
      op.kind = OpKind::kPut;
    } else if (roll < 48) {
      op.kind = OpKind::kDelete;
    } else if (roll < 62) {
      op.kind = OpKind::kPatch;
    } else if (roll < 78) {
      op.kind = OpKind::kAppend;
    } else if (roll < 88) {
      op.kind = OpKind::kBatch;
    } else if (roll < 94) {
      op.kind = OpKind::kErase;
    } else if (roll < 98 || !options.allow_rotate) {
      op.kind = OpKind::kPurge;
    } else {
      op.kind = OpKind::kRotate;
    }
    WriteBatch create_batch;
    if (op.kind == OpKind::kCreate) {
      op.email = options.email_prefix + std::to_string(op.n) + "@x.org";
      op.person = create_batch
                      .CreatePerson({{"email", op.email}}, {{"v", static_cast<std::int64_t>(op.n)}})
                      .ToHex();
    } else if (op.kind != OpKind::kPurge && op.kind != OpKind::kRotate) {
      op.person = live[rng() % live.size()];
      op.key = "k" + std::to_string(rng() % 6);
    }
    // Keep every person's event list short: the checks scan it after each crash.
    if ((op.kind == OpKind::kAppend || op.kind == OpKind::kBatch) &&
        model.people().at(op.person).event_ts.size() >= 24) {
      op.kind = OpKind::kPut;
    }

    sink.Intent(op);
    const PersonId id = IdOf(op.person);
    Status s;
    switch (op.kind) {
      case OpKind::kCreate: s = store.Write(create_batch); break;
      case OpKind::kPut: s = store.Put(id, kCollection, op.key, RecordValue(op.n)); break;
      case OpKind::kDelete: s = store.Delete(id, kCollection, op.key); break;
      case OpKind::kPatch: s = store.PatchProfile(id, PatchFor(op.n)); break;
      case OpKind::kAppend: s = store.AppendEvent(id, EventFor(op.n)); break;
      case OpKind::kBatch: {
        WriteBatch b;
        b.Put(id, kCollection, op.key, RecordValue(op.n));
        b.AppendEvent(id, EventFor(op.n));
        b.PatchProfile(id, PatchFor(op.n));
        s = store.Write(b);
        break;
      }
      case OpKind::kErase: s = store.Erase(id).status(); break;
      case OpKind::kPurge: s = store.Purge(64).status(); break;
      case OpKind::kRotate: s = store.RotateEpoch().status(); break;
    }
    if (!s.ok()) {
      sink.Failed(op, s);
      return false;
    }
    model.Apply(op);
    sink.Ack(op);
  }
  return true;
}

std::string DiffPerson(Store& store, const std::string& person_hex, const PersonState& state) {
  const PersonId id = IdOf(person_hex);
  const std::string who = "person " + person_hex.substr(0, 8) + ": ";
  if (state.erased) {
    auto profile = store.GetProfile(id);
    if (!profile.status().IsErased()) return who + "erased, but GetProfile gave " + profile.status().ToString();
    auto rec = store.Get(id, kCollection, "k0");
    if (!rec.status().IsErased()) return who + "erased, but Get gave " + rec.status().ToString();
    auto events = store.ScanEvents(id);
    if (events->Valid() || !events->status().IsErased()) return who + "erased, but ScanEvents was not Erased";
    auto resolved = store.Resolve({"email", state.email});
    if (resolved.ok()) return who + "erased, but the email still resolves";
    if (!resolved.status().IsErased() && !resolved.status().IsNotFound()) {
      return who + "erased, Resolve gave " + resolved.status().ToString();
    }
    return "";
  }
  auto profile = store.GetProfile(id);
  if (!profile.ok()) return who + "GetProfile: " + profile.status().ToString();
  if (*profile != state.profile) return who + "profile differs";
  std::map<std::string, std::string> records;
  for (auto it = store.ScanRecords(id, kCollection); it->Valid(); it->Next()) {
    records[it->value().key] = it->value().value;
  }
  if (records != state.records) {
    return who + "records differ (" + std::to_string(records.size()) + " found, " +
           std::to_string(state.records.size()) + " expected)";
  }
  std::vector<std::int64_t> ts;
  auto events = store.ScanEvents(id);
  for (; events->Valid(); events->Next()) {
    auto n = events->value().properties.find("n");
    if (n == events->value().properties.end() || n->second.as_int64() != events->value().ts_ms) {
      return who + "event property differs from its timestamp";
    }
    ts.push_back(events->value().ts_ms);
  }
  if (!events->status().ok()) return who + "ScanEvents: " + events->status().ToString();
  if (ts != state.event_ts) {
    return who + "events differ (" + std::to_string(ts.size()) + " found, " +
           std::to_string(state.event_ts.size()) + " expected)";
  }
  auto resolved = store.Resolve({"email", state.email});
  if (!resolved.ok() || resolved->ToHex() != person_hex) return who + "email does not resolve to the person";
  return "";
}

std::string CheckAbsent(Store& store, const std::string& person_hex, const std::string& email) {
  auto profile = store.GetProfile(IdOf(person_hex));
  if (!profile.status().IsNotFound()) return "uncommitted person present: " + profile.status().ToString();
  auto resolved = store.Resolve({"email", email});
  if (!resolved.status().IsNotFound()) return "uncommitted email resolves: " + resolved.status().ToString();
  return "";
}

std::string CheckAgainstModel(Store& store, Model& model, const std::optional<Op>& in_flight,
                              bool* in_flight_present) {
  if (in_flight_present != nullptr) *in_flight_present = false;
  const bool touches_person = in_flight && !in_flight->person.empty();
  for (const auto& [hex, state] : model.people()) {
    if (touches_person && hex == in_flight->person) continue;
    if (std::string d = DiffPerson(store, hex, state); !d.empty()) return d;
  }
  if (!touches_person) {
    if (in_flight) {
      model.Apply(*in_flight);  // purge/rotate: no logical change
      if (in_flight_present != nullptr) *in_flight_present = true;
    }
    return "";
  }
  // The operation in flight: wholly absent or wholly present.
  const std::string& hex = in_flight->person;
  std::string before;
  if (in_flight->kind == OpKind::kCreate) {
    before = CheckAbsent(store, hex, in_flight->email);
  } else {
    before = DiffPerson(store, hex, model.people().at(hex));
  }
  if (before.empty()) return "";
  Model after = model;
  after.Apply(*in_flight);
  std::string after_diff = DiffPerson(store, hex, after.people().at(hex));
  if (!after_diff.empty()) {
    return "in-flight " + Encode(*in_flight) + " neither absent (" + before + ") nor present (" + after_diff + ")";
  }
  model = std::move(after);
  if (in_flight_present != nullptr) *in_flight_present = true;
  return "";
}

}  // namespace shredkv::crash
