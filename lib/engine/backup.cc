#include "engine/backup.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <string_view>
#include <utility>

#include "codec/sealed.h"
#include "crypto/keyed_hash.h"
#include "engine/data_rows.h"
#include "engine/store_impl.h"
#include "storage/environment.h"
#include "shredkv/store.h"
#include "util/checksum.h"
#include "util/coding.h"
#include "util/file_io.h"
#include "util/test_point.h"

namespace shredkv {
namespace engine {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kManifestHeader = "shredkv-backup 1";
const std::string kManifest = "MANIFEST";
const std::string kKeysFile = "keys/data.mdb";
const std::string kDataFile = "data/data.mdb";
// In a restore's work directory while it works there (removed before the
// rename, or with defer_custody_destroy by CompleteDeferredRestore): a work
// directory left by a restore cut short is removed by the next, anything
// else at that path is left alone.
const std::string kWorkMarker(kRestoreMarker);

// What the store's authentication tags (keys::KeyStore::Tag) are made for.
constexpr std::string_view kManifestTagPurpose = "backup MANIFEST";
constexpr std::string_view kLogTagPurpose = "erasure log";

// What an erasure log's tag covers: every field, in a fixed layout
// (independent of how the NDJSON form spells them).
std::string LogTagMessage(const ErasureLog& log) {
  std::string m;
  util::PutLengthPrefixed(&m, log.store_id);
  util::PutFixed64BE(&m, static_cast<std::uint64_t>(log.read_at_ms));
  // Since stop 39; a log without a position keeps the layout of before.
  if (log.position.known()) {
    m.append("position");
    util::PutFixed64BE(&m, log.position.generation);
    util::PutFixed64BE(&m, log.position.commit);
  }
  util::PutFixed64BE(&m, log.people.size());
  for (const ErasedPersonEntry& e : log.people) {
    util::PutLengthPrefixed(&m, e.person.view());
    util::PutLengthPrefixed(&m, e.request_id);
    util::PutFixed64BE(&m, static_cast<std::uint64_t>(e.erased_at_ms));
    m.push_back(static_cast<char>(e.analytics));
  }
  util::PutFixed64BE(&m, log.categories.size());
  for (const ErasedCategoryEntry& e : log.categories) {
    util::PutLengthPrefixed(&m, e.person.view());
    util::PutLengthPrefixed(&m, e.category);
    util::PutLengthPrefixed(&m, e.request_id);
    util::PutFixed64BE(&m, static_cast<std::uint64_t>(e.erased_at_ms));
    m.push_back(static_cast<char>(e.analytics));
  }
  util::PutFixed64BE(&m, log.suppressed.size());
  for (const SuppressedEntry& e : log.suppressed) {
    util::PutLengthPrefixed(&m, e.identifier_hash);
    util::PutLengthPrefixed(&m, e.request_id);
    util::PutFixed64BE(&m, static_cast<std::uint64_t>(e.suppressed_at_ms));
  }
  return m;
}

// Whether `dir` holds what a backup writes before its MANIFEST (keys/ and
// data/ with no lock file: a store has them) and nothing else (outside
// audit 31, F7).
bool LooksLikeACutShortBackup(const std::string& dir) {
  std::error_code ec;
  bool any = false;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name != "keys" && name != "data") return false;
    if (fs::exists(entry.path() / "lock.mdb", ec)) return false;
    any = true;
  }
  return any && !ec;
}

// util::PrepareEmptyDirectory for a backup's own target: the message says
// when what is there looks like a backup cut short.
Status PrepareBackupTarget(const std::string& dir, bool* created) {
  Status s = util::PrepareEmptyDirectory(dir, created);
  if (s.IsAlreadyExists() && LooksLikeACutShortBackup(dir)) {
    return s.WithMessage(s.message() +
                         " (its keys/ and data/ without a MANIFEST look like a backup cut short, which is not a "
                         "backup: if this command made it, delete it and run again)");
  }
  return s;
}

// The MANIFEST's text up to its tag line. `keys_sum`/`data_sum` are the
// files' XXH3-128 (damage), `keys_digest`/`data_digest` their BLAKE2b-256:
// under the tag, what binds the files to it (review of stop 37, R4: XXH3 is
// no cryptographic hash, and files made to match it passed the tag).
std::string ManifestText(const BackupInfo& info, const std::string& keys_sum, const std::string& data_sum,
                         const std::string& keys_digest, const std::string& data_digest) {
  std::ostringstream m;
  m << kManifestHeader << "\n"
    << "store_id " << info.store_id << "\n"
    << "created_ms " << info.created_ms << "\n"
    << "current_epoch " << info.current_epoch << "\n"
    << "oldest_epoch " << info.oldest_epoch << "\n";
  for (const std::string& label : info.custody_labels) m << "custody_label " << label << "\n";
  if (info.position.known()) {
    m << "position " << info.position.generation << " " << info.position.commit << "\n";
  }
  m << "people " << info.people << "\n"
    << "keys_bytes " << info.keys_bytes << "\n"
    << "keys_xxh3_128 " << util::HexEncode(keys_sum) << "\n"
    << "data_bytes " << info.data_bytes << "\n"
    << "data_xxh3_128 " << util::HexEncode(data_sum) << "\n"
    << "keys_blake2b_256 " << util::HexEncode(keys_digest) << "\n"
    << "data_blake2b_256 " << util::HexEncode(data_digest) << "\n";
  return m.str();
}

struct Manifest {
  BackupInfo info;
  std::string keys_sum_hex, data_sum_hex;
  // BLAKE2b-256 of the files (empty: a MANIFEST of a build before stop 37).
  std::string keys_digest_hex, data_digest_hex;
  // The last line's tag (hex; empty: none, a backup of a build before stop
  // 37) and the text before that line, which it covers.
  std::string tag_hex, tagged_text;
};

Result<Manifest> ReadManifest(const std::string& dir) {
  const std::string path = dir + "/" + kManifest;
  // A MANIFEST is a few hundred bytes (a line per custody label): read at
  // most 64 KiB of a regular file, so a FIFO, a device or a huge file in
  // its place is refused rather than waited on or read (outside audit 37c, F3).
  auto text = util::ReadSmallFile(path, 64 * 1024);
  if (text.status().IsNotFound()) {
    std::error_code ec;
    if (fs::exists(dir + "/SHARDS", ec)) {  // sharding::kManifestName (outside audit 38c, F5)
      return Status::InvalidArgument("'" + dir +
                                     "' is a sharded store's backup (it holds SHARDS and no MANIFEST): restore it "
                                     "with ShardedStore::Restore");
    }
    return Status::NotFound("no backup in '" + dir + "' (no MANIFEST: not a backup, or one cut short)");
  }
  if (!text.ok()) return text.status();
  std::istringstream in(*text);
  Manifest m;
  m.info.directory = dir;
  std::string line;
  if (!std::getline(in, line)) return Status::Corruption("'" + path + "' is empty");
  if (line != kManifestHeader) {
    // A later version of the same format: a newer shredkv's backup.
    static constexpr std::string_view kFamily = "shredkv-backup ";
    if (line.starts_with(kFamily) && line != kManifestHeader) {
      return Status::UnsupportedVersion("'" + path + "' is a backup manifest of another version ('" +
                                  line.substr(0, 32) + "'); this build reads '" + std::string(kManifestHeader) + "'");
    }
    return Status::Corruption("'" + path + "' is not a shredkv backup manifest (version 1)");
  }
  // Unsigned decimal only: "-1" is not read as 2^64 - 1 (outside audit 37c, F7).
  auto number = [&](const std::string& value, const std::string& key, auto* out) -> Status {
    using T = std::remove_pointer_t<decltype(out)>;
    const bool digits = !value.empty() && value.size() <= 20 &&
                        std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (digits) {
      try {
        const unsigned long long v = std::stoull(value);
        if (v <= static_cast<unsigned long long>(std::numeric_limits<T>::max())) {
          *out = static_cast<T>(v);
          return Status::OK();
        }
      } catch (const std::exception&) {
      }
    }
    return Status::Corruption("'" + path + "': '" + key + "' is not a number");
  };
  std::map<std::string, bool> seen;
  for (std::streamoff at = in.tellg(); std::getline(in, line); at = in.tellg()) {
    if (!m.tag_hex.empty()) return Status::Corruption("'" + path + "': a line after the tag");
    const std::size_t sp = line.find(' ');
    if (sp == std::string::npos) return Status::Corruption("'" + path + "': malformed line '" + line + "'");
    const std::string key = line.substr(0, sp), value = line.substr(sp + 1);
    seen[key] = true;
    Status s;
    if (key == "store_id") m.info.store_id = value;
    else if (key == "created_ms") s = number(value, key, &m.info.created_ms);
    else if (key == "current_epoch") s = number(value, key, &m.info.current_epoch);
    else if (key == "oldest_epoch") s = number(value, key, &m.info.oldest_epoch);
    else if (key == "custody_label") m.info.custody_labels.push_back(value);
    else if (key == "position") {
      const std::size_t gap = value.find(' ');
      if (gap == std::string::npos) return Status::Corruption("'" + path + "': 'position' is not two numbers");
      s = number(value.substr(0, gap), key, &m.info.position.generation);
      if (s.ok()) s = number(value.substr(gap + 1), key, &m.info.position.commit);
    }
    else if (key == "people") s = number(value, key, &m.info.people);
    else if (key == "keys_bytes") s = number(value, key, &m.info.keys_bytes);
    else if (key == "data_bytes") s = number(value, key, &m.info.data_bytes);
    else if (key == "keys_xxh3_128") m.keys_sum_hex = value;
    else if (key == "data_xxh3_128") m.data_sum_hex = value;
    else if (key == "keys_blake2b_256") m.keys_digest_hex = value;
    else if (key == "data_blake2b_256") m.data_digest_hex = value;
    else if (key == "tag") {
      if (value.empty()) return Status::Corruption("'" + path + "': an empty tag");
      m.tag_hex = value;
      m.tagged_text = text->substr(0, static_cast<std::size_t>(at));
    }
    // Unknown keys are a newer writer's additions: ignored.
    if (!s.ok()) return s;
  }
  for (const char* required : {"store_id", "current_epoch", "keys_xxh3_128", "data_xxh3_128"}) {
    if (!seen[required]) return Status::Corruption("'" + path + "' lacks '" + required + "'");
  }
  return m;
}

// Corruption unless the file at `path` has `want_hex` as its checksum and,
// if `want_digest_hex` is not empty, that as its BLAKE2b-256.
Status CheckFile(const std::string& path, const std::string& want_hex, const std::string& want_digest_hex) {
  auto sum = util::FileChecksum(path);
  if (!sum.ok()) {
    return sum.status().IsNotFound() ? Status::Corruption("the backup lacks '" + path + "'") : sum.status();
  }
  if (util::HexEncode(*sum) != want_hex) {
    return Status::Corruption("'" + path + "' does not match the checksum in the backup's MANIFEST (damaged)");
  }
  if (!want_digest_hex.empty()) {
    auto digest = crypto::FileHash256(path);
    if (!digest.ok()) return digest.status();
    if (util::HexEncode(*digest) != want_digest_hex) {
      return Status::Corruption("'" + path + "' does not match the BLAKE2b-256 digest in the backup's MANIFEST "
                                "(changed after the backup was taken)");
    }
  }
  return Status::OK();
}

Status CopyFileSynced(const std::string& from, const std::string& to) {
  std::error_code ec;
  if (!fs::copy_file(from, to, fs::copy_options::none, ec) || ec) {
    // libstdc++ reports a copy cut short by a full disk (a short sendfile)
    // as EIO: a disk without room for the file is StoreFull, as every
    // other full-disk failure (outside audit 32b, F5).
    std::error_code size_ec;
    const std::uintmax_t size = fs::file_size(from, size_ec);
    std::error_code remove_ec;
    fs::remove(to, remove_ec);
    if (!size_ec) {
      if (Status room = storage::CheckFreeSpace(fs::path(to).parent_path().string(), size, "copying '" + from + "'");
          !room.ok()) {
        return room;
      }
    }
    return Status::IOError("cannot copy '" + from + "' to '" + to + "': " + ec.message());
  }
  fs::permissions(to, fs::perms::owner_read | fs::perms::owner_write, ec);
  return util::SyncPath(to);
}

// InvalidArgument unless `log` names every erasure `held` (a restored
// copy's own log) names: fences are kept forever (and a restore fences the
// people of its log it never held, ApplyErasureLog), so a log read from the
// live store after the copy was taken names all of the copy's. One that
// lacks one was read before the copy was taken and may lack erasures made
// since (outside audit 34, F2: such a log was applied, and a person erased
// after the backup came back). People match by ID. Category keys match by
// person and category, counted — a category written again after its
// erasure gets a new key, so it may be erased twice (review of stop 34,
// R3) — not by request id, since a restore re-applies an erasure under a
// new id when the log's names another erasure in the copy. A person the log
// names erased whole covers their category erasures.
Status CheckLogNotOlder(const ErasureLog& held, const ErasureLog& log, std::string_view copy) {
  std::set<PersonId> people;
  for (const ErasedPersonEntry& e : log.people) people.insert(e.person);
  std::map<std::pair<PersonId, std::string_view>, std::size_t> categories;  // erasures named, by (person, category)
  for (const ErasedCategoryEntry& e : log.categories) ++categories[{e.person, e.category}];
  auto older = [&](const std::string& what) {
    return Status::InvalidArgument("the erasure log is older than " + std::string(copy) + ": it lacks " + what +
                                   ", which " + std::string(copy) +
                                   " holds (read the log from the live store after the copy was taken; an older "
                                   "one may lack erasures made since)");
  };
  for (const ErasedPersonEntry& e : held.people) {
    if (people.count(e.person) == 0) {
      return older("the erasure of person " + e.person.ToHex() + " (request '" + e.request_id + "')");
    }
  }
  for (const ErasedCategoryEntry& e : held.categories) {
    if (people.count(e.person) != 0) continue;
    auto named = categories.find({e.person, e.category});
    if (named == categories.end() || named->second == 0) {
      return older("an erasure of category '" + e.category + "' of person " + e.person.ToHex() + " (request '" +
                   e.request_id + "')");
    }
    --named->second;
  }
  return Status::OK();
}

// That `log` is the open copy's store's and carries its tag (or has none
// and `accept_untagged_log`), then CheckLogNotOlder against the copy's own
// erasures.
Status CheckLogFor(Store& copy_store, const ErasureLog& log, std::string_view copy, bool accept_untagged_log) {
  auto held = copy_store.ReadErasureLog();
  if (!held.ok()) return held.status();
  if (held->store_id != log.store_id) {
    return Status::InvalidArgument("the erasure log is of store " + log.store_id + ", " + std::string(copy) +
                                   " is store " + held->store_id);
  }
  const keys::KeyStore& keys = static_cast<StoreImpl&>(copy_store).key_store();
  if (log.tag.empty()) {
    if (!accept_untagged_log) {
      return Status::InvalidArgument(
          "the erasure log has no authentication tag (a log of a build before stop 37): anyone able to write it "
          "could have deleted an erasure from it. Read it again from the live store, or accept it as it is "
          "(RestoreOptions::accept_untagged_log; the CLI's --accept-untagged-log)");
    }
  } else if (!keys.TagMatches(kLogTagPurpose, LogTagMessage(log), log.tag)) {
    return Status::InvalidArgument("the erasure log fails its authentication tag: it was changed after the store "
                                   "wrote it (an entry deleted, a time moved?), or is a copy of another store's");
  }
  return CheckLogNotOlder(*held, log, copy);
}

// Corruption unless `manifest` carries the open copy's tag (or has none and
// `accept_untagged_backup`).
Status CheckManifestTag(Store& copy_store, const Manifest& manifest, bool accept_untagged_backup) {
  const keys::KeyStore& keys = static_cast<StoreImpl&>(copy_store).key_store();
  const std::string where = "the MANIFEST of '" + manifest.info.directory + "'";
  if (manifest.tag_hex.empty()) {
    if (accept_untagged_backup) return Status::OK();
    return Status::Corruption(where + " has no authentication tag (a backup of a build before stop 37): anyone able "
                              "to write the backup could have changed it. Restore it only if nobody else can "
                              "write where it is kept (RestoreOptions::accept_untagged_backup; the CLI's "
                              "--accept-untagged-backup)");
  }
  const auto tag = util::HexDecode(manifest.tag_hex);
  if (!tag.has_value() || !keys.TagMatches(kManifestTagPurpose, manifest.tagged_text, *tag)) {
    return Status::Corruption(where + " fails its authentication tag: it was changed after the backup was taken, "
                              "or belongs to another store's backup; nothing was restored");
  }
  // Every tagged MANIFEST names the files' digests (checked with the copies).
  if (manifest.keys_digest_hex.empty() || manifest.data_digest_hex.empty()) {
    return Status::Corruption(where + " is tagged but names no BLAKE2b-256 digest of its files");
  }
  return Status::OK();
}

// RestoreBackup's checks of its copy, opened read-only, before anything is
// changed or destroyed: the MANIFEST's tag; the custody labels it names
// against the copy's own epoch records (outside audit 37c, F2: they decide
// whether custody_keys must be given and which keys a failure destroys);
// the custody keys the copy lists to destroy, which its writable open
// destroys (a list without a tag could name the live original's); and the
// erasure log: the store's, tagged, not older than the copy's erasures, and
// read after the backup was taken (a log naming every erasure the backup
// holds may still have been read before it, with no erasure in between).
Status VetCopy(Store& copy, const Manifest& manifest, const RestoreOptions& restore) {
  if (Status t = CheckManifestTag(copy, manifest, restore.accept_untagged_backup); !t.ok()) return t;
  keys::KeyStore& keys = static_cast<StoreImpl&>(copy).key_store();
  std::vector<std::string> named = manifest.info.custody_labels, held;
  for (const keys::EpochRecord& e : keys.Epochs()) {
    if (!e.custody_label.empty()) held.push_back(e.custody_label);
  }
  std::sort(named.begin(), named.end());
  std::sort(held.begin(), held.end());
  if (named != held) {
    return Status::Corruption("the MANIFEST of '" + manifest.info.directory + "' names " +
                              std::to_string(named.size()) + " custody key(s), the backup's keys file " +
                              std::to_string(held.size()) +
                              ": the MANIFEST was changed, or is another backup's; nothing was restored");
  }
  // The tagged list's tag (Corruption if it fails); what any list names is
  // destroyed only if it is a label of an epoch this copy destroyed
  // (KeyStore::MayDestroyCustodyLabel).
  auto left = keys.CustodyKeysLeftToDestroy();
  if (!left.ok()) return left.status().WithContext("the backup's keys file");
  if (restore.erasure_log != nullptr) {
    if (Status f = CheckLogFor(copy, *restore.erasure_log, "the backup", restore.accept_untagged_log); !f.ok()) {
      return f;
    }
    if (Status t = CheckErasureLogReadAfter(*restore.erasure_log, manifest.info); !t.ok()) return t;
  }
  return Status::OK();
}


// What RestoreBackup does to its opened copy after copying it, and
// ReapplyErasureLog to a store put back otherwise (each has checked the log
// with CheckLogFor first): re-applies `log` (when given), purges what is
// pending and compacts the data file if the purge deleted rows or erasures
// are not yet cryptographic, re-seals the root-sealed keys under `reseal`'s
// root key (when given), and last rotates the epoch if erasures are not yet
// cryptographic or `rotate` says so.
//
// The order matters (review of stop 34). The rotation comes last: for a
// copy that keeps its backup's custody keys (RestoredCustodyKeys::
// kTakeOver) it destroys them, and a step failing after it would leave the
// backup unrestorable with the copy removed (R1). It is decided by the
// store's own state (StoreStats::erasures_since_rotation), not by what this
// run erased: a run after one cut short between its erasures and its
// rotation finds nothing to erase, and must still rotate and compact (R5).
Status FinishCopy(Store& store, const ErasureLog* log, bool rotate, const std::shared_ptr<KeyProvider>& reseal,
                  ErasureLogApplied* applied) {
  // The copy goes on from here, apart from the original and from other
  // copies: its positions from now on are above the backup's or the
  // snapshot's and the log's, so a log of the original read earlier is
  // older than any backup of the copy (and a restored copy's data file,
  // rebuilt from rows, counts its commits from 1 again).
  {
    EngineContext& ctx = static_cast<StoreImpl&>(store).context();
    CallGuard guard(ctx, CallAccess::kWrite);
    if (!guard.ok()) return guard.status();
    std::lock_guard write_lock(ctx.write_mu);
    const std::uint64_t floor = log != nullptr ? log->position.generation : 0;
    Status a = ctx.data->Update([&](storage::WriteTxn& txn) { return AdvanceGeneration(ctx, txn, floor); });
    if (!a.ok()) return a.WithContext("advancing the copy's position generation");
  }
  if (log != nullptr) {
    auto done = static_cast<StoreImpl&>(store).ApplyCheckedErasureLog(*log);
    if (!done.ok()) return done.status();
    *applied = *done;
  }
  std::uint64_t rows_purged = 0;
  for (;;) {
    auto purged = store.Purge(100000);
    if (!purged.ok()) return purged.status().WithContext("purging the re-applied erasures");
    rows_purged += purged->rows_deleted + purged->people_purged;
    if (purged->people_pending == 0) break;
    if (purged->rows_deleted == 0 && purged->people_purged == 0) {
      return Status::Internal("purging the re-applied erasures made no progress");
    }
  }
  auto stats = store.Stats();
  if (!stats.ok()) return stats.status();
  const bool unrotated = stats->erasures_since_rotation > 0;
  // The purged rows — of the people erased again, or of erasures the copy
  // held unpurged — are in free pages of the data file (the original may
  // have compacted them away long ago): rewrite it from the live rows, as
  // `compact` does, so the copy holds no byte of them (outside audit 29a
  // F5; the second case: review of stop 29).
  if (rows_purged > 0 || unrotated) {
    auto compacted = store.CompactData();
    if (!compacted.ok()) return compacted.status().WithContext("compacting the copy after the re-applied erasures");
  }
  if (reseal != nullptr) {
    if (Status r = store.RotateRootKey(reseal); !r.ok()) {
      return r.WithContext("re-sealing the restored copy under the current root key");
    }
  }
  // The erasures, cryptographic in the copy as they may be in the
  // original: their DEKs are in free pages of `keys` until a rotation. A
  // rotation also rebuilds `keys`, leaving no dropped pool key in a free page.
  if (unrotated || rotate) {
    auto rotated = store.RotateEpoch();
    if (!rotated.ok()) return rotated.status().WithContext("rotating the epoch after the re-applied erasures");
  }
  return Status::OK();
}

}  // namespace

Result<BackupInfo> Backups::Backup(const std::string& directory) {
  if (directory.empty()) return Status::InvalidArgument("a backup needs a directory");
  bool created = false;
  if (Status p = PrepareBackupTarget(directory, &created); !p.ok()) return p;
  auto info = WriteBackup(directory);
  if (!info.ok()) util::RemoveFill(directory, created);
  return info;
}

Result<BackupInfo> Backups::WriteBackup(const std::string& directory) {
  auto infos = BackupTogether({this}, {directory});
  if (!infos.ok()) return infos.status();
  return std::move(infos->front());
}

Status Backups::PrepareBackup(const std::string& directory, BackupInfo* info) {
  for (const char* sub : {"/keys", "/data"}) {
    if (Status m = util::MakePrivateDirectories(directory + sub); !m.ok()) {
      return m.WithContext("creating the backup's directories");
    }
  }
  // A damaged page would be copied, or fail the copy halfway: refuse first.
  if (Status p = ctx_.CheckAllPages("backed up"); !p.ok()) return p;
  info->directory = directory;
  info->store_id = util::HexEncode(ctx_.keys->store_id());
  info->created_ms = ctx_.Now();
  // A commit of its own before the snapshots: the backup's position is then
  // above that of every erasure log read before this call, whatever the
  // clocks did (outside audit 38b, F2: a clock stepped back between the
  // two let a stale log pass). A store that cannot write (read-only, or a
  // full disk, where a backup is what the operator needs most) takes its
  // backup without it: a log read with nothing committed in between has
  // the backup's position, and only the times order them.
  if (!ctx_.options.read_only) {
    std::lock_guard write_lock(ctx_.write_mu);
    (void)ctx_.data->Update([&](storage::WriteTxn& txn) -> Status {
      std::string count;
      std::uint64_t taken = 0;
      Status g = codec::ReadPlain(txn, ctx_.tables.meta, codec::TableId::kDataMeta, kBackupsTakenKey, &count);
      if (g.ok() && count.size() == 8) taken = util::DecodeFixed64BE(count.data());
      if (!g.ok() && !g.IsNotFound()) return g;
      count.clear();
      util::PutFixed64BE(&count, taken + 1);
      return txn.Put(ctx_.tables.meta, kBackupsTakenKey, codec::PlainRow(codec::TableId::kDataMeta, kBackupsTakenKey, count));
    });
  }
  return Status::OK();
}

Result<StorePosition> ReadStorePosition(const EngineContext& ctx, const storage::ReadTxn& data_txn) {
  StorePosition p;
  std::string generation;
  Status g = codec::ReadPlain(data_txn, ctx.tables.meta, codec::TableId::kDataMeta, kPositionGenerationKey, &generation);
  if (g.ok()) {
    if (generation.size() != 8) return Status::Corruption("the store's position generation row is malformed");
    p.generation = util::DecodeFixed64BE(generation.data());
  } else if (!g.IsNotFound()) {
    return g;
  }
  p.commit = data_txn.commit_id();
  return p;
}

Status AdvanceGeneration(const EngineContext& ctx, storage::WriteTxn& data_txn, std::uint64_t floor) {
  auto now = ReadStorePosition(ctx, data_txn);
  if (!now.ok()) return now.status();
  const std::uint64_t next = std::max(now->generation, floor);
  if (next == std::numeric_limits<std::uint64_t>::max()) return Status::Corruption("the store's generation is at its end");
  return PutGeneration(data_txn, ctx.tables.meta, next + 1);
}

Status PutGeneration(storage::WriteTxn& txn, storage::Table meta, std::uint64_t generation) {
  std::string value;
  util::PutFixed64BE(&value, generation);
  return txn.Put(meta, kPositionGenerationKey, codec::PlainRow(codec::TableId::kDataMeta, kPositionGenerationKey, value));
}

Status Backups::CopySnapshots(storage::ReadTxn& data_snapshot, storage::ReadTxn& keys_snapshot,
                              const std::string& directory, BackupInfo* info) {
  auto epochs = ctx_.keys->EpochRecordsIn(keys_snapshot);
  if (!epochs.ok()) return epochs.status();
  for (const keys::EpochRecord& e : *epochs) {
    if (info->oldest_epoch == 0) info->oldest_epoch = e.epoch;
    info->current_epoch = e.epoch;  // the newest key; the current epoch is the newest one
    if (!e.custody_label.empty()) info->custody_labels.push_back(e.custody_label);
  }
  auto people = data_snapshot.Count(ctx_.tables.people);
  if (!people.ok()) return people.status();
  info->people = *people;
  auto position = ReadStorePosition(ctx_, data_snapshot);
  if (!position.ok()) return position.status();
  info->position = *position;
  // Pool keys no claim of this `data` snapshot names are left out: they
  // are no one's key yet, and the store may hand them to people created
  // after the backup, whose keys a backup must never hold (nor a copy
  // restored from it share).
  std::set<std::string, std::less<>> claimed;
  {
    auto cursor = data_snapshot.OpenCursor(ctx_.tables.key_claims);
    if (!cursor.ok()) return cursor.status();
    auto& c = **cursor;
    for (Status m = c.SeekToFirst(); c.Valid() || !m.ok(); m = c.Next()) {
      if (!m.ok()) return m;
      std::string_view payload;
      if (Status o = codec::OpenPlain(codec::TableId::kKeyClaims, c.key(), c.value(), &payload); !o.ok()) return o;
      claimed.emplace(payload);  // the pool row's key: fixed64be(index)
    }
  }
  auto keep = [&](std::string_view table, std::string_view key) {
    return table != "pool" || claimed.count(key) != 0;
  };
  if (Status k = ctx_.keys->environment().CopyLiveRows(keys_snapshot, directory + "/" + kKeysFile, keep); !k.ok()) {
    return k;
  }
  util::TestPoint("backup.between_copies");
  return ctx_.data->CopyLiveRows(data_snapshot, directory + "/" + kDataFile);
}

Status Backups::SealBackup(const std::string& directory, BackupInfo* info) {
  std::error_code ec;
  auto keys_sum = util::FileChecksum(directory + "/" + kKeysFile);
  if (!keys_sum.ok()) return keys_sum.status();
  auto data_sum = util::FileChecksum(directory + "/" + kDataFile);
  if (!data_sum.ok()) return data_sum.status();
  auto keys_digest = crypto::FileHash256(directory + "/" + kKeysFile);
  if (!keys_digest.ok()) return keys_digest.status();
  auto data_digest = crypto::FileHash256(directory + "/" + kDataFile);
  if (!data_digest.ok()) return data_digest.status();
  info->keys_bytes = fs::file_size(directory + "/" + kKeysFile, ec);
  info->data_bytes = fs::file_size(directory + "/" + kDataFile, ec);

  // The manifest last, renamed into place: a directory with one holds a
  // whole backup.
  for (const std::string& p : {directory + "/keys", directory + "/data"}) {
    if (Status f = util::SyncPath(p); !f.ok()) return f;
  }
  // Tagged under the store's keys, last: a restore refuses a MANIFEST
  // changed by anyone without the root key (outside audit 37c, F1 and F2:
  // its times and custody labels decide what a restore checks and keeps).
  std::string manifest = ManifestText(*info, *keys_sum, *data_sum, *keys_digest, *data_digest);
  manifest += "tag " + util::HexEncode(ctx_.keys->Tag(kManifestTagPurpose, manifest)) + "\n";
  return util::WriteFileDurably(directory + "/" + kManifest, manifest);
}

namespace {

// Locks every mutex of `mutexes` (distinct) without holding some while
// blocking on another, as std::lock does for a fixed set (review 38, R2: a
// long operation holding one store's write lock stalled the writes of
// every store locked before it): blocks on one, tries the rest, and on a
// failure releases all and starts again by blocking on the one that failed.
std::vector<std::unique_lock<std::mutex>> LockAll(const std::vector<std::mutex*>& mutexes) {
  std::vector<std::unique_lock<std::mutex>> locks;
  for (std::mutex* m : mutexes) locks.emplace_back(*m, std::defer_lock);
  for (std::size_t first = 0;;) {
    locks[first].lock();
    std::size_t failed = locks.size();
    for (std::size_t i = 0; i < locks.size() && failed == locks.size(); ++i) {
      if (i != first && !locks[i].try_lock()) failed = i;
    }
    if (failed == locks.size()) return locks;
    for (auto& l : locks) {
      if (l.owns_lock()) l.unlock();
    }
    first = failed;
  }
}

}  // namespace

Result<std::vector<BackupInfo>> BackupTogether(const std::vector<Backups*>& stores,
                                               const std::vector<std::string>& directories) {
  const std::size_t n = stores.size();
  if (n == 0 || directories.size() != n) return Status::InvalidArgument("one backup directory a store");
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t j = i + 1; j < n; ++j) {
      if (&stores[i]->ctx_ == &stores[j]->ctx_) return Status::InvalidArgument("a store given twice");
    }
  }
  // Each store's rotation_mu before its call guard, as a rotation takes
  // them: no rotation (whose epochs the manifest names) or compaction
  // during its copy. Taken store by store, in the order given; each store's
  // are released once its backup is sealed. The lock order across stores
  // (docs/architecture.md §8): rotation_mu and call guard of each store in
  // the order given, then every write_mu together (LockAll) — no other path
  // holds locks of two stores.
  std::vector<std::unique_lock<std::mutex>> rotation_locks;
  std::vector<std::unique_ptr<CallGuard>> guards;
  std::vector<BackupInfo> infos(n);
  for (std::size_t i = 0; i < n; ++i) {
    rotation_locks.emplace_back(stores[i]->ctx_.rotation_mu);
    guards.push_back(std::make_unique<CallGuard>(stores[i]->ctx_));
    if (!guards.back()->ok()) return guards.back()->status();
    if (Status p = stores[i]->PrepareBackup(directories[i], &infos[i]); !p.ok()) return p;
  }
  // Every store's snapshots begin while every store's write_mu is held —
  // which every write of this process to either environment holds — so
  // they all see the same commits: one point for all the stores, and no
  // call of this process that changed two of them (an identifier unlinked
  // in one shard, then linked in another: outside audit 38c, F1) is in one
  // store's backup and not in the other's. (A store opened read-only beside
  // a writer in another process cannot hold that writer's lock: there each
  // store's snapshot is only consistent in itself.) Within a store `data`
  // is snapshotted first and `keys` second: keys are written before the
  // data that needs them (creation) and erased before their data is
  // purged, so a `keys` snapshot at least as new as the `data` one has a
  // key for every person in it, or their fence (an erasure the restore
  // finishes). The copies run after the write_mus are released: writers go
  // on. They run from the last store to the first, each inside its own
  // snapshots and the earlier stores', so each store's snapshots end (and
  // its map may grow again, its rotation run) once its copy and seal are
  // done (review 38, R1: every snapshot and rotation lock was held to the
  // end of the whole backup).
  std::vector<std::mutex*> write_mutexes;
  for (Backups* b : stores) write_mutexes.push_back(&b->ctx_.write_mu);
  std::vector<std::unique_lock<std::mutex>> write_locks = LockAll(write_mutexes);
  std::function<Status(std::size_t)> begin = [&](std::size_t i) -> Status {
    if (i == n) {
      for (auto& l : write_locks) l.unlock();
      return Status::OK();
    }
    EngineContext& ctx = stores[i]->ctx_;
    Status s = ctx.data->View([&](storage::ReadTxn& data_snapshot) {
      return ctx.keys->environment().View([&](storage::ReadTxn& keys_snapshot) -> Status {
        if (Status later = begin(i + 1); !later.ok()) return later;
        Status c = stores[i]->CopySnapshots(data_snapshot, keys_snapshot, directories[i], &infos[i]);
        return c.ok() ? c : c.WithContext("backing up to '" + directories[i] + "'");
      });
    });
    if (!s.ok()) return s;
    if (Status f = stores[i]->SealBackup(directories[i], &infos[i]); !f.ok()) return f;
    guards[i].reset();
    rotation_locks[i].unlock();
    return Status::OK();
  };
  Status s = begin(0);
  for (auto& l : write_locks) {
    if (l.owns_lock()) l.unlock();
  }
  if (!s.ok()) return s;
  return infos;
}

Result<ErasureLog> Backups::ReadErasureLog() {
  CallGuard guard(ctx_);
  if (!guard.ok()) return guard.status();
  ErasureLog log;
  log.store_id = util::HexEncode(ctx_.keys->store_id());
  log.read_at_ms = ctx_.Now();
  // The position before the fences: the log holds at least every erasure
  // committed up to it.
  Status p = ctx_.data->View([&](storage::ReadTxn& txn) -> Status {
    auto position = ReadStorePosition(ctx_, txn);
    if (!position.ok()) return position.status();
    log.position = *position;
    return Status::OK();
  });
  if (!p.ok()) return p;
  auto fences = ctx_.keys->Fences();
  if (!fences.ok()) return fences.status();
  for (keys::FenceRecord& f : *fences) {
    const auto mode = static_cast<AnalyticsOnErase>(f.request.analytics_mode);
    if (f.slot == keys::kPersonSlot) {
      log.people.push_back(ErasedPersonEntry{f.person, std::move(f.request.request_id), f.request.erased_at_ms, mode});
    } else {
      log.categories.push_back(ErasedCategoryEntry{f.person, std::move(f.request.category),
                                                   std::move(f.request.request_id), f.request.erased_at_ms, mode});
    }
  }
  auto suppressed = ctx_.keys->Suppressions();
  if (!suppressed.ok()) return suppressed.status();
  for (keys::SuppressionRecord& r : *suppressed) {
    log.suppressed.push_back(SuppressedEntry{std::move(r.identifier_hash), std::move(r.request_id), r.at_ms});
  }
  log.tag = ctx_.keys->Tag(kLogTagPurpose, LogTagMessage(log));
  return log;
}

Result<ErasureLogApplied> Backups::ApplyErasureLog(const ErasureLog& log, bool tag_checked) {
  {
    CallGuard guard(ctx_, CallAccess::kWrite);
    if (!guard.ok()) return guard.status();
    const std::string own = util::HexEncode(ctx_.keys->store_id());
    if (log.store_id != own) {
      return Status::InvalidArgument("the erasure log is of store " + log.store_id + ", this store is " + own);
    }
    // Review of stop 37, R3: Store::ApplyErasureLog took a log with an entry
    // added (erasing someone it never named) or removed.
    if (!tag_checked) {
      if (log.tag.empty()) {
        return Status::InvalidArgument(
            "the erasure log has no authentication tag (a log of a build before stop 37, or made by hand): read it "
            "again from the live store (or apply it to the closed store with ReapplyErasureLog — the CLI's "
            "reapply-erasure-log — accepting an untagged log)");
      }
      if (!ctx_.keys->TagMatches(kLogTagPurpose, LogTagMessage(log), log.tag)) {
        return Status::InvalidArgument("the erasure log fails its authentication tag: it was changed after the "
                                       "store wrote it, or is a copy of another store's");
      }
    }
  }
  ErasureLogApplied applied;
  // The suppressions first: they need nothing else, and an entry below that
  // fails leaves them in force (outside audit 39b, F1: a fence refused on
  // every run kept every suppression of the log out, and the erased
  // people's identifiers could be registered again).
  if (!log.suppressed.empty()) {
    CallGuard guard(ctx_, CallAccess::kWrite);
    if (!guard.ok()) return guard.status();
    std::vector<keys::SuppressionRecord> records;
    records.reserve(log.suppressed.size());
    for (const SuppressedEntry& e : log.suppressed) {
      records.push_back(keys::SuppressionRecord{e.identifier_hash, e.request_id, e.suppressed_at_ms});
    }
    std::lock_guard write_lock(ctx_.write_mu);
    auto added = ctx_.keys->AddSuppressions(records);
    if (!added.ok()) return added.status();
    applied.suppressions_added = *added;
  }
  // Whether this store still holds `person`: kPresent, or why not.
  enum class Held { kPresent, kErased, kNever };
  auto held = [&](const PersonId& person) -> Result<Held> {
    CallGuard guard(ctx_, CallAccess::kWrite);  // no Close or file swap under the reads
    if (!guard.ok()) return guard.status();
    // A key lost without a fence while the person's rows are here is
    // Corruption: the restore stops rather than count the person as never
    // present and leave their rows.
    auto dek = ctx_.PersonKey(person);
    if (dek.ok()) return Held::kPresent;
    if (dek.status().IsErased()) return Held::kErased;
    if (dek.status().IsNotFound()) return Held::kNever;
    return dek.status();
  };

  // Whether this store holds the erasure of `category` under `request_id`
  // (then it was made before the backup was taken). A request of that id
  // that erased something else (a copy restored beside the original reusing
  // an application's request id) does not count: the entry is made under a
  // new id then.
  // A category fence of the person holding the request counts too: one a
  // restore of this store added for a category it held nothing in then
  // (below), whose data written since must not be erased by the log again.
  auto before_backup = [&](const PersonId& person, const std::string& request_id,
                           const std::string& category) -> Result<bool> {
    CallGuard guard(ctx_, CallAccess::kWrite);
    if (!guard.ok()) return guard.status();
    auto request = ctx_.keys->GetRequest(request_id);
    if (request.ok() && request->category == category) return true;
    if (!request.ok() && !request.status().IsNotFound()) return request.status();
    return ctx_.keys->HasCategoryFence(person, category, request_id);
  };

  // One erasure request per request id, as it was made: its people, its
  // analytics mode, and its time and whether it suppressed identifiers, so
  // the request made here again records them (outside audit 40a, F5: the
  // receipt and the audit entry said "not suppressed", and the time of the
  // restore).
  struct Remade {
    std::vector<PersonId> people;
    AnalyticsOnErase analytics = AnalyticsOnErase::kKeep;
    Eraser::AsOriginal original;
  };
  std::map<std::string, Remade> requests;
  std::set<std::string_view> suppressing;
  for (const SuppressedEntry& s : log.suppressed) {
    if (!s.request_id.empty()) suppressing.insert(s.request_id);
  }
  // People this store never held: fenced, so that its own log names them
  // (review of stop 34, R2: a store restored from an older backup dropped
  // them from its log, and a newer backup restored with that log brought
  // back a person erased in between).
  std::vector<std::pair<PersonId, keys::ErasureRequest>> never_held, categories_never_held;
  for (const ErasedPersonEntry& e : log.people) {
    auto h = held(e.person);
    if (!h.ok()) return h.status();
    if (*h == Held::kErased) ++applied.already_erased;
    if (*h == Held::kNever) {
      ++applied.not_present;
      keys::ErasureRequest r;
      r.request_id = e.request_id;
      r.erased_at_ms = e.erased_at_ms;
      r.people = 1;
      r.analytics_mode = static_cast<std::uint8_t>(e.analytics);
      r.suppressed = suppressing.count(e.request_id) != 0;
      never_held.emplace_back(e.person, std::move(r));
    }
    if (*h != Held::kPresent) continue;
    Remade& r = requests[e.request_id];
    r.people.push_back(e.person);
    r.analytics = e.analytics;
    r.original.erased_at_ms = e.erased_at_ms;
    r.original.suppressed = suppressing.count(e.request_id) != 0;
  }
  // The log's requests erased here under their own id: the fences below of
  // the same requests' other people count in these rows (review 39, #12).
  std::set<std::string> made_here;
  for (auto& [request_id, remade] : requests) {
    EraseOptions options;
    options.request_id = request_id;
    options.analytics = remade.analytics;
    auto receipt = eraser_.Erase(remade.people, options, remade.original);
    if (!receipt.ok() && receipt.status().IsAlreadyExists()) {
      // The id names another erasure here: erase under a new one.
      options.request_id.clear();
      receipt = eraser_.Erase(remade.people, options, remade.original);
    }
    if (!receipt.ok()) return receipt.status().WithContext("re-applying erasure request '" + request_id + "'");
    if (!options.request_id.empty()) made_here.insert(request_id);
    applied.people_erased += remade.people.size();
  }
  // A category erasure of the log this store does not make (it holds nothing
  // in the category, or the category's key here is erased already, or it
  // never held the person): fenced all the same, so that this store's own
  // log names it (review of stop 34, R2's category half; the last two cases
  // since the review of stop 37, S1: a newer backup restored with that log
  // brought the category back).
  auto fence_category = [&](const ErasedCategoryEntry& e) {
    keys::ErasureRequest r;
    r.request_id = e.request_id;
    r.erased_at_ms = e.erased_at_ms;
    r.people = 1;
    r.analytics_mode = static_cast<std::uint8_t>(e.analytics);
    r.category = e.category;
    categories_never_held.emplace_back(e.person, std::move(r));
  };
  for (const ErasedCategoryEntry& e : log.categories) {
    auto h = held(e.person);
    if (!h.ok()) return h.status();
    if (*h == Held::kErased) {  // the person's erasure covers the category
      ++applied.already_erased;
      continue;
    }
    if (*h == Held::kNever) {
      ++applied.not_present;
      fence_category(e);
      continue;
    }
    // The log names the category, not the key it had then: a request this
    // store already holds was made before the backup, and erasing the
    // category again would shred the key of what was written after it
    // (outside audit 29a F3).
    auto made = before_backup(e.person, e.request_id, e.category);
    if (!made.ok()) return made.status();
    if (*made) {
      ++applied.already_erased;
      continue;
    }
    EraseOptions options;
    options.request_id = e.request_id;
    options.analytics = e.analytics;
    auto receipt = eraser_.EraseCategory(e.person, e.category, options);
    if (!receipt.ok() && receipt.status().IsAlreadyExists()) {
      options.request_id.clear();
      receipt = eraser_.EraseCategory(e.person, e.category, options);
    }
    if (receipt.ok()) {
      ++applied.categories_erased;
      if (!options.request_id.empty()) made_here.insert(e.request_id);
    } else if (receipt.status().IsErased()) {
      ++applied.already_erased;
      fence_category(e);
    } else if (receipt.status().IsNotFound()) {
      ++applied.not_present;
      fence_category(e);
    } else {
      return receipt.status().WithContext("re-applying category erasure '" + e.request_id + "'");
    }
  }
  // Erasure notices for what is fenced below, as an erasure writes them (no
  // name for a person, `category.<c>` for a category): outside audit 38a,
  // F1 — none was written, so a recipient that had not read the original's
  // feed, which the restored store's replaces, was never told of them.
  // One `data` commit before the fences: a crash between the two writes
  // them again when the log is applied again (a recipient told twice),
  // never not at all. A person fenced already reads as erased above and is
  // not here; a category fence already held (the log applied before) gets
  // no second notice.
  std::vector<std::pair<PersonId, std::vector<std::string>>> notices;
  for (const auto& entry : never_held) notices.emplace_back(entry.first, std::vector<std::string>{});
  if (!categories_never_held.empty()) {
    CallGuard guard(ctx_, CallAccess::kWrite);
    if (!guard.ok()) return guard.status();
    for (const auto& [person, request] : categories_never_held) {
      auto fenced = ctx_.keys->HasCategoryFence(person, request.category, request.request_id);
      if (!fenced.ok()) return fenced.status();
      if (!*fenced) notices.emplace_back(person, std::vector<std::string>{"category." + request.category});
    }
  }
  if (!notices.empty()) {
    CallGuard guard(ctx_, CallAccess::kWrite);
    if (!guard.ok()) return guard.status();
    std::lock_guard write_lock(ctx_.write_mu);
    Status w = ctx_.data->Update([&](storage::WriteTxn& txn) -> Status {
      for (const auto& notice : notices) {
        Status n = ctx_.outbox->Append(txn, NoticeKind::kErasure, notice.first, ctx_.Now(), notice.second);
        if (!n.ok()) return n;
      }
      return Status::OK();
    });
    if (!w.ok()) return w.WithContext("writing the erasure notices of what the log names and this store never held");
  }
  if (!never_held.empty()) {
    CallGuard guard(ctx_, CallAccess::kWrite);
    if (!guard.ok()) return guard.status();
    std::lock_guard write_lock(ctx_.write_mu);
    auto fenced = ctx_.keys->AddForeignFences(never_held, made_here);
    if (!fenced.ok()) return fenced.status().WithContext("fencing the people of the log this store never held");
  }
  if (!categories_never_held.empty()) {
    CallGuard guard(ctx_, CallAccess::kWrite);
    if (!guard.ok()) return guard.status();
    std::lock_guard write_lock(ctx_.write_mu);
    auto fenced = ctx_.keys->AddForeignCategoryFences(categories_never_held, made_here);
    if (!fenced.ok()) {
      return fenced.status().WithContext("fencing the category erasures of the log this store held nothing in");
    }
  }
  return applied;
}

}  // namespace engine

Result<ErasureLogApplied> ReapplyErasureLog(const Options& options, const ErasureLog& log, bool accept_untagged_log) {
  ReapplyOptions reapply;
  reapply.accept_untagged_log = accept_untagged_log;
  return ReapplyErasureLog(options, log, reapply);
}

Result<ErasureLogApplied> ReapplyErasureLog(const Options& options, const ErasureLog& log,
                                            const ReapplyOptions& reapply) {
  if (options.read_only) return Status::InvalidArgument("ReapplyErasureLog writes: Options::read_only must be false");
  if (reapply.custody_keys != RestoredCustodyKeys::kUnspecified &&
      reapply.custody_keys != RestoredCustodyKeys::kTakeOver && reapply.custody_keys != RestoredCustodyKeys::kNewKeys) {
    return Status::InvalidArgument("ReapplyOptions::custody_keys is not one of its values");
  }
  Options o = options;
  o.create_if_missing = false;
  o.error_if_exists = false;
  o.background_maintenance_ms = 0;
  // Opened as a copy: the custody keys its keys file lists to destroy are
  // left alone until the caller's choice is known (review 41, #3: the open
  // destroyed them before the refusal below said "nothing was changed").
  auto store = engine::StoreImpl::Open(o, engine::StoreImpl::OpenIntent::kReapplyCopy);
  if (!store.ok()) return store.status();
  ErasureLogApplied applied;
  Status f = engine::CheckLogFor(**store, log, "the store", reapply.accept_untagged_log);
  keys::KeyStore& key_store = static_cast<engine::StoreImpl&>(**store).key_store();
  // A store with epoch keys in a custody shares them with the store it was
  // copied from, and the rotation below destroys them (outside audit 40a,
  // F1: the live original failed KeyDestroyed on every call after it).
  // Asked before anything changes, as RestoreBackup asks.
  bool in_custody = false;
  for (const keys::EpochRecord& e : key_store.Epochs()) in_custody = in_custody || !e.custody_label.empty();
  if (f.ok() && in_custody && reapply.custody_keys == RestoredCustodyKeys::kUnspecified) {
    f = Status::InvalidArgument(
        "the store's epoch keys are held in a custody, which it shares with the store it was copied from, and "
        "re-applying the log rotates the epoch, destroying them: say whether this store takes over those custody "
        "keys (it replaces the original, which must never be opened again) or gets new ones (a copy beside it): "
        "ReapplyOptions::custody_keys; nothing was changed");
  }
  // With new keys the re-key drops that list (the original's keys); any
  // other copy obeys it now, as an ordinary writable open would have.
  if (f.ok() && in_custody && reapply.custody_keys == RestoredCustodyKeys::kNewKeys) {
    auto moved = key_store.RekeyCustody();
    if (!moved.ok()) f = moved.status().WithContext("wrapping the store's epoch keys under new custody keys");
  } else if (f.ok()) {
    f = key_store.FinishCustodyDestroy();
  }
  // A file-level copy or a volume snapshot holds the free key pool as it
  // was then: the original store handed those keys to people it created
  // later, and a person among them erased since would have their key here,
  // able to open their rows in any copy of the original's data file
  // (found in stop 39's read of outside audit 39b). Dropped, and the keys
  // file rebuilt by the rotation so no free page keeps them; the pool
  // refills at the next creation.
  // The rotation is made whatever this run dropped: a run cut short after
  // the drop's commit leaves nothing in the pool for its rerun to count
  // (review 39, #3), and the dropped keys stay in free pages until a
  // rotation rebuilds the keys file.
  if (f.ok()) {
    auto dropped = key_store.DropFreePool();
    if (!dropped.ok()) f = dropped.status();
  }
  // No order check against the state put back (outside audit 39b, F2): a
  // volume snapshot records no position of its own taking, and the files
  // of a restored copy (RestoreShard's files in place) are of another
  // generation than the original's logs by design. Only a log that lacks
  // an erasure the store holds is refused (CheckLogFor).
  if (f.ok()) f = engine::FinishCopy(**store, &log, /*rotate=*/true, /*reseal=*/nullptr, &applied);
  Status c = (*store)->Close();
  if (!f.ok()) return f;
  if (!c.ok()) return c;
  return applied;
}

// Outside audit 35b, F1: a log read before the backup passed
// CheckLogNotOlder whenever no erasure happened between the two, and a
// person erased after the backup came back.
Status CheckErasureLogReadAfter(const ErasureLog& log, const BackupInfo& backup) {
  // Both positions recorded (stop 39): the store's own count decides,
  // whatever the clocks did (outside audit 38b, F2: a clock stepped back
  // between the log and the backup let a stale log pass). Equal: nothing
  // was committed between the two (a backup commits before its snapshots,
  // so a log read before a backup of a writable open is below it): the
  // log is as new as the backup, and accepted whatever the clocks say
  // (outside audit 40a, F7: a clock stepped back between the two refused a
  // good log). An erasure whose `keys` commit fell between the two, its
  // `data` commit not yet made, is in the backup and not in the log:
  // CheckLogFor, run beside this check, refuses that log.
  if (log.position.known() && backup.position.known()) {
    if (log.position >= backup.position) return Status::OK();
    return Status::InvalidArgument(
        "the erasure log was read at store position " + std::to_string(log.position.generation) + "/" +
        std::to_string(log.position.commit) + ", before the backup was taken (position " +
        std::to_string(backup.position.generation) + "/" + std::to_string(backup.position.commit) +
        "): it lacks every erasure made since it was read (read the log from the live store, or use the newest one "
        "kept)");
  }
  // A position not recorded (a log or backup of a build before stop 39):
  // the times decide. A read time
  // of 0 means "not recorded" only in an untagged log (one of a build
  // before stop 35 has none); a tagged log always records it, and 0 there
  // is a clock at 0 (outside audit 38b, F2: such a log skipped the check).
  const bool recorded = log.read_at_ms != 0 || !log.tag.empty();
  if (!recorded || log.read_at_ms >= backup.created_ms) return Status::OK();
  return Status::InvalidArgument("the erasure log was read at " + std::to_string(log.read_at_ms) +
                                 ", before the backup was taken (" + std::to_string(backup.created_ms) +
                                 "): it lacks every erasure made since it was read (read the log from the live "
                                 "store, or use the newest one kept)");
}

Status CompleteDeferredRestore(const std::string& directory) {
  const std::string marker = directory + "/" + std::string(engine::kRestoreMarker);
  if (::unlink(marker.c_str()) != 0 && errno != ENOENT) {
    return Status::IOError("cannot remove '" + marker + "': " + std::strerror(errno));
  }
  // Also when it was gone: a call cut short after the unlink.
  return util::SyncPath(directory);
}

Result<BackupInfo> ReadBackupInfo(const std::string& backup_dir) {
  auto m = engine::ReadManifest(backup_dir);
  if (!m.ok()) return m.status();
  return m->info;
}

Result<RestoreResult> RestoreBackup(const std::string& backup_dir, const Options& options,
                                    const RestoreOptions& restore) {
  namespace fs = std::filesystem;
  if (restore.erasure_log == nullptr && !restore.without_erasure_log) {
    return Status::InvalidArgument(
        "restoring needs the live store's erasure log (erasures made after the backup would come back "
        "otherwise), or RestoreOptions::without_erasure_log");
  }
  if (restore.erasure_log != nullptr && restore.without_erasure_log) {  // outside audit 34, F4
    return Status::InvalidArgument("an erasure log and without_erasure_log contradict each other: give one");
  }
  std::string target = options.directory;
  while (target.size() > 1 && target.back() == '/') target.pop_back();
  if (target.empty()) return Status::InvalidArgument("Options::directory names where to restore");
  if (options.read_only) return Status::InvalidArgument("a restore writes: Options::read_only must be false");
  if (restore.backup_key_provider != nullptr && options.key_provider == nullptr) {
    return Status::InvalidArgument(
        "RestoreOptions::backup_key_provider needs Options::key_provider: the root key to re-seal the copy under");
  }
  const std::string work = target + ".restoring";
  // The backup must not be where the restore writes: inside the target, or
  // its work directory, which a restore clears (outside audit 37c, F6: a
  // backup named TARGET.restoring was deleted by its own restore).
  {
    std::error_code ec;
    const fs::path from = fs::weakly_canonical(fs::absolute(backup_dir), ec);
    if (ec) return Status::IOError("cannot resolve the backup's path '" + backup_dir + "': " + ec.message());
    for (const std::string& place : {target, work}) {
      std::error_code pec;
      const fs::path to = fs::weakly_canonical(fs::absolute(place), pec);
      if (pec) return Status::IOError("cannot resolve '" + place + "': " + pec.message());
      auto [end, _] = std::mismatch(to.begin(), to.end(), from.begin(), from.end());
      if (end == to.end()) {
        return Status::InvalidArgument("the backup '" + backup_dir + "' is inside '" + place +
                                       "', where the restore writes");
      }
    }
  }
  auto manifest = engine::ReadManifest(backup_dir);
  if (!manifest.ok()) return manifest.status();
  const BackupInfo& info = manifest->info;
  if (restore.erasure_log != nullptr && restore.erasure_log->store_id != info.store_id) {
    return Status::InvalidArgument("the erasure log is of store " + restore.erasure_log->store_id +
                                   ", the backup of store " + info.store_id);
  }

  // The epoch keys the backup needs, before anything is copied.
  if (!info.custody_labels.empty() && restore.custody_keys == RestoredCustodyKeys::kUnspecified) {
    return Status::InvalidArgument(
        "the backup's epoch keys are held in a custody: say whether the restored store takes over the "
        "original's custody keys (it replaces the original) or gets new ones (a copy beside it): "
        "RestoreOptions::custody_keys");
  }
  if (!info.custody_labels.empty()) {
    if (!options.epoch_key_custody) {
      return Status::FailedPrecondition("the backup's epoch keys are held in a key custody: restore it with "
                                        "its custody (Options::epoch_key_custody)");
    }
    for (const std::string& label : info.custody_labels) {
      auto has = options.epoch_key_custody->HasKey(label);
      if (!has.ok()) return has.status();
      if (!*has) {
        return Status::KeyDestroyed("the backup in '" + backup_dir + "' (epochs " + std::to_string(info.oldest_epoch) +
                                    ".." + std::to_string(info.current_epoch) + ") needs custody key '" + label +
                                    "', which a key rotation after the backup destroyed in " +
                                    options.epoch_key_custody->Describe() + ": it can no longer be restored");
      }
    }
  }

  // A restore cut short after its rename (review 40, #1: finishing it on
  // a retry, as this stop first did, took whatever log and custody choice
  // the retry was given — a newer log's erasures skipped, a take-over
  // finished as a copy beside the original): nothing in it was used (every
  // writable open refuses the marker), and the backup's custody keys are
  // all still there, so it is removed and the restore made again.
  {
    std::error_code mec;
    if (fs::exists(target + "/" + engine::kWorkMarker, mec)) {
      return Status::AlreadyExists("'" + target + "' holds a restore cut short after its copy was moved into place "
                                   "(its " + engine::kWorkMarker + " file): nothing in it was used; remove it and "
                                   "run the restore again");
    }
  }

  bool created = false;
  if (Status p = util::PrepareEmptyDirectory(target, &created); !p.ok()) return p;
  // The copy is made beside the target and renamed over it: an empty mount
  // point (a fresh volume) cannot be renamed over, so say so before the
  // work rather than at its end (outside audit 37c, F8).
  if (!created) {
    struct stat at {}, above {};
    std::string parent = fs::path(target).parent_path().string();
    if (parent.empty()) parent = ".";
    if (::stat(target.c_str(), &at) == 0 && ::stat(parent.c_str(), &above) == 0 && at.st_dev != above.st_dev) {
      return Status::InvalidArgument("'" + target + "' is a mount point: a restore is renamed into place, which "
                                     "cannot replace a mount point; restore into a directory inside it");
    }
  }
  // One restore at a time beside the target (outside audit 37c, F6: two
  // restores into one target removed each other's work directory, and
  // failed with errors that blamed the backup).
  auto lock = util::LockDirectoryOf(target, "restore");
  if (!lock.ok()) {
    util::RemoveFill(target, created);
    return lock.status();
  }
  // Restored beside the target and renamed over it at the end: a restore
  // cut short leaves no half store at options.directory. What is at `work`
  // is removed only if a restore made it (its marker says so): anything
  // else there is the caller's.
  std::error_code ec;
  if (fs::exists(fs::symlink_status(work, ec))) {
    // A restore's own: it holds the marker, or nothing but the marker's
    // temporary file (a restore cut short while it wrote its marker:
    // outside audit 40a, F6 — every retry was refused).
    // Empty too: killed between making it and writing the marker (review
    // 40, #4).
    bool ours = fs::exists(work + "/" + engine::kWorkMarker, ec);
    if (!ours && fs::is_directory(fs::symlink_status(work, ec))) {
      std::size_t entries = 0;
      bool only_marker_tmp = true;
      for (const auto& entry : fs::directory_iterator(work, ec)) {
        ++entries;
        only_marker_tmp = only_marker_tmp && entry.path().filename() == engine::kWorkMarker + ".tmp";
      }
      ours = !ec && entries <= 1 && only_marker_tmp;
    }
    if (!ours) {
      util::RemoveFill(target, created);
      return Status::AlreadyExists(
          "'" + work + "' exists and is not marked as the work directory of a restore cut short: move it away (a "
          "restore works there). If it holds a store, look at it with --read-only verify (a writable open may "
          "destroy custody keys a backup needs) before you use or delete it");
    }
    fs::remove_all(work, ec);
  }
  // Custody keys made for the copy (by RekeyCustody for kNewKeys, by its
  // epoch rotation in either mode): on a failure they would wrap epoch keys
  // of a copy that no longer exists, and nothing would ever destroy them
  // (outside audit 34, F6). Read from the open copy when it fails or is
  // closed: a rotation destroys what RekeyCustody made and makes another
  // (review of stop 34, R4).
  std::vector<std::string> made_labels;
  // The custody keys of the epochs the copy's rotation destroyed, which the
  // rotation leaves in the custody (KeyStore::DeferCustodyDestroy) until
  // the copy is in place: with kTakeOver they are the backup's own, and a
  // restore failing after the rotation (a close, fsync or rename) must
  // leave the backup restorable. On a failure those this restore made are
  // destroyed, the backup's kept; on success all of them.
  std::vector<std::string> left_to_destroy;
  // The backup's own custody labels, which a failure must never destroy:
  // as the MANIFEST names them until the copy is open, then as the copy's
  // epoch records (sealed under the root key) do. The MANIFEST alone is not
  // to be trusted with them (outside audit 37c, F2: with its labels
  // deleted, a failed restore destroyed the live original's token key).
  std::vector<std::string> backup_labels = info.custody_labels;
  auto fail = [&](Status s) {
    std::error_code e;
    fs::remove_all(work, e);
    if (created) fs::remove(target, e);
    for (const std::string& label : made_labels) (void)options.epoch_key_custody->DestroyKey(label);
    for (const std::string& label : left_to_destroy) {
      if (std::find(backup_labels.begin(), backup_labels.end(), label) == backup_labels.end()) {
        (void)options.epoch_key_custody->DestroyKey(label);
      }
    }
    return s;
  };
  // Room for both copies first, and 1 MiB for the lock files and the
  // restore's own commits: a full disk refuses the restore before it
  // writes (StoreFull, as elsewhere). Measured at the target, beside which
  // the work directory goes (the same file system: the rename needs it).
  std::uintmax_t bytes = 1u << 20;
  for (const std::string& f : {engine::kKeysFile, engine::kDataFile}) {
    std::error_code size_ec;
    const std::uintmax_t size = fs::file_size(backup_dir + "/" + f, size_ec);
    if (!size_ec) bytes += size;
  }
  if (Status room = storage::CheckFreeSpace(target, bytes, "restoring the backup"); !room.ok()) {
    return fail(room.WithContext("nothing was restored"));
  }
  // The marker before anything else in the work directory: a restore cut
  // short at any point after it leaves a directory the next one clears
  // (review of stop 37, R7).
  if (Status m = util::MakePrivateDirectories(work); !m.ok()) return fail(m);
  const std::string marker = work + "/" + engine::kWorkMarker;
  if (Status m = util::WriteFileDurably(marker, "a restore works here\n"); !m.ok()) return fail(m);
  for (const char* sub : {"/keys", "/data"}) {
    if (Status m = util::MakePrivateDirectories(work + sub); !m.ok()) return fail(m);
  }
  for (const std::string& f : {engine::kKeysFile, engine::kDataFile}) {
    if (Status c = engine::CopyFileSynced(backup_dir + "/" + f, work + "/" + f); !c.ok()) return fail(c);
  }
  // The copies, which are what is opened, against the manifest.
  if (Status k = engine::CheckFile(work + "/" + engine::kKeysFile, manifest->keys_sum_hex, manifest->keys_digest_hex);
      !k.ok()) {
    return fail(k);
  }
  if (Status d = engine::CheckFile(work + "/" + engine::kDataFile, manifest->data_sum_hex, manifest->data_digest_hex);
      !d.ok()) {
    return fail(d);
  }
  RestoreResult result;
  result.backup = info;
  {
    Options o = options;
    o.directory = work;
    o.create_if_missing = false;
    o.error_if_exists = false;
    o.background_maintenance_ms = 0;
    if (restore.backup_key_provider != nullptr) o.key_provider = restore.backup_key_provider;
    auto open_copy = [&](bool read_only) -> Result<std::unique_ptr<Store>> {
      Options opened = o;
      opened.read_only = read_only;
      auto copy = engine::StoreImpl::Open(opened, engine::StoreImpl::OpenIntent::kRestoreCopy);
      if (copy.ok()) return copy;
      Status s = copy.status().WithContext("opening the restored copy");
      if (s.IsWrongKey() && restore.backup_key_provider == nullptr) {
        s = s.WithContext("(a backup taken before a root-key rotation opens with the old root key: "
                          "RestoreOptions::backup_key_provider)");
      }
      return s;
    };
    // Vetted read-only first: until the MANIFEST, the custody keys the copy
    // lists to destroy (a writable open destroys them) and the erasure log
    // are known to be the store's own, nothing in the custody is destroyed
    // and nothing in the copy changed.
    {
      auto vetted = open_copy(/*read_only=*/true);
      if (!vetted.ok()) return fail(vetted.status());
      Status v = engine::VetCopy(**vetted, *manifest, restore);
      Status c = (*vetted)->Close();
      if (!v.ok()) return fail(v);
      if (!c.ok()) return fail(c);
    }
    auto store = open_copy(/*read_only=*/false);
    if (!store.ok()) return fail(store.status());
    keys::KeyStore& key_store = static_cast<engine::StoreImpl&>(**store).key_store();
    key_store.DeferCustodyDestroy();
    auto copy_labels = [&]() {
      std::vector<std::string> labels;
      for (const keys::EpochRecord& e : key_store.Epochs()) {
        if (!e.custody_label.empty()) labels.push_back(e.custody_label);
      }
      return labels;
    };
    backup_labels = copy_labels();
    // The copy's custody labels that are not the backup's: those this
    // restore made.
    auto new_labels = [&]() {
      std::vector<std::string> made;
      for (std::string& label : copy_labels()) {
        if (std::find(backup_labels.begin(), backup_labels.end(), label) == backup_labels.end()) {
          made.push_back(std::move(label));
        }
      }
      return made;
    };
    auto fail_open = [&](Status s) {
      made_labels = new_labels();
      if (auto left = key_store.CustodyKeysLeftToDestroy(); left.ok()) left_to_destroy = std::move(*left);
      (void)(*store)->Close();
      return fail(s);
    };
    if (!info.custody_labels.empty() && restore.custody_keys == RestoredCustodyKeys::kNewKeys) {
      auto moved = key_store.RekeyCustody();
      if (!moved.ok()) return fail_open(moved.status());
    }
    // Backups made before they left free pool keys out may hold keys the
    // original hands to people it creates later: never this copy's.
    auto dropped = key_store.DropFreePool();
    if (!dropped.ok()) return fail_open(dropped.status());
    const std::shared_ptr<KeyProvider> reseal =
        restore.backup_key_provider != nullptr ? options.key_provider : nullptr;
    if (Status f = engine::FinishCopy(**store, restore.erasure_log, *dropped > 0, reseal, &result.applied); !f.ok()) {
      return fail_open(f);
    }
    made_labels = new_labels();
    auto left = key_store.CustodyKeysLeftToDestroy();
    if (!left.ok()) return fail_open(left.status());
    left_to_destroy = std::move(*left);
    if (Status c = (*store)->Close(); !c.ok()) return fail(c);
  }
  // With defer_custody_destroy the marker stays until the caller's
  // CompleteDeferredRestore: until then the copy's keys file lists the
  // custody keys to destroy (with kTakeOver the backup's), and an ordinary
  // writable open of the copy in place, before the caller's other copies
  // are (a sharded restore cut short), would destroy them (review of stop
  // 38, R3).
  // The marker goes into place with the copy and is removed only after the
  // rename is durable (outside audit 40a, F4: removed before the rename, a
  // restore killed in between left a complete, unmarked work directory
  // whose writable open — a `verify` the retry's message suggested —
  // destroyed the backup's custody keys). A restore cut short after the
  // rename leaves the target marked: its retry is refused until the target
  // is removed (above).
  for (const std::string& d : {work + "/keys", work + "/data", work}) {
    if (Status f = util::SyncPath(d); !f.ok()) return fail(f);
  }
  util::TestPoint("restore.before_rename");
  if (::rename(work.c_str(), target.c_str()) != 0) {
    return fail(Status::IOError("cannot rename '" + work + "' to '" + target + "': " + std::strerror(errno)));
  }
  const std::string parent = fs::path(target).parent_path().string();
  // The rename made durable before any custody key goes (review of stop
  // 37, R1: after a power loss the copy could be back at `work` with the
  // backup's keys destroyed). If the sync fails, the store is in place but
  // perhaps not for good: the keys its rotation replaced stay, listed in
  // its keys file for its next writable open, and the backup restorable.
  // With defer_custody_destroy the caller syncs the parent (review 37b,
  // S4: ShardedStore::Restore removed a shard whose sync failed here, and
  // the custody keys made for it, named in no result, stayed in the token).
  if (!restore.defer_custody_destroy) {
    if (Status f = util::SyncPath(parent.empty() ? "." : parent); !f.ok()) {
      return f.WithContext("the restored store is at '" + target +
                           "', its rename perhaps not durable and its restore marker left (writable opens refuse "
                           "it): remove it and run the restore again");
    }
    util::TestPoint("restore.after_rename");
    if (Status c = CompleteDeferredRestore(target); !c.ok()) {
      return c.WithContext("the restored store is at '" + target +
                           "' and still marked as a restore's (writable opens refuse it): remove it and run the "
                           "restore again");
    }
  }
  // In place now: the keys made are the restored store's, and the keys of
  // the epochs its rotation destroyed go. One that cannot be destroyed here
  // stays listed in the restored store's keys file, and its next writable
  // open destroys it.
  result.new_custody_labels = std::move(made_labels);
  if (restore.defer_custody_destroy) {
    result.custody_keys_to_destroy = std::move(left_to_destroy);
  } else {
    for (const std::string& label : left_to_destroy) (void)options.epoch_key_custody->DestroyKey(label);
  }
  return result;
}

}  // namespace shredkv
