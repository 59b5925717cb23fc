#include "storage/environment.h"

#include <fcntl.h>
#include <lmdb.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <cstdio>
#include <fstream>
#include <mutex>

#include "util/fork_generation.h"
#include "util/test_point.h"

namespace shredkv::storage {
namespace {

MDB_val ToVal(std::string_view s) {
  return MDB_val{s.size(), const_cast<char*>(s.data())};
}
std::string_view FromVal(const MDB_val& v) {
  return {static_cast<const char*>(v.mv_data), v.mv_size};
}

constexpr unsigned int kMaxReaders = 1024;

// The size LMDB gives a new lock file for kMaxReaders readers: a 192-byte
// header (two cache lines and the first reader slot) and a 64-byte slot
// for each further reader (MDB_txninfo, MDB_reader in mdb.c). A lock file
// at least this large is adopted as it is, so a larger guess is harmless.
constexpr off_t kLockFileBytes = 192 + (kMaxReaders - 1) * 64;

// LMDB creates its lock file with ftruncate (a sparse file) and writes it
// through a shared memory map: on a full filesystem the first write to one
// of its pages then raises SIGBUS (issue 16: rotate-keys on a full disk).
// So a new lock file is created here with every block allocated, and a
// full disk is a StoreFull. An existing one gets its holes allocated if
// possible (best effort: a full disk must not stop reads of a store).
Status PreallocateLockFile(const std::string& lock_path) {
  int fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  const bool created = fd >= 0;
  if (!created) {
    if (errno != EEXIST) return Status::OK();  // LMDB reports what is wrong with it
    fd = ::open(lock_path.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) return Status::OK();
  }
  struct stat st {};
  // Never resize an existing lock file: other processes may have it mapped.
  const off_t size = created ? kLockFileBytes : (::fstat(fd, &st) == 0 ? st.st_size : 0);
  const int rc = size > 0 ? ::posix_fallocate(fd, 0, size) : 0;
  ::close(fd);
  if (rc == 0 || !created) return Status::OK();
  ::unlink(lock_path.c_str());
  if (rc == ENOSPC) return Status::StoreFull("cannot create lock file '" + lock_path + "': disk full");
  if (rc == EOPNOTSUPP || rc == EINVAL) return Status::OK();  // LMDB creates it as before
  return Status::IOError("cannot allocate lock file '" + lock_path + "': " + std::strerror(rc));
}

// The read transactions open on this thread, innermost first: a View
// inside a View of the same environment must neither take resize_mutex_
// again nor wait for it exclusively (its own outer View holds it shared).
struct OpenRead {
  const Environment* env;
  ReadTxn* txn;
  OpenRead* outer;
};
thread_local OpenRead* t_open_reads = nullptr;

ReadTxn* OuterRead(const Environment* env) {
  for (OpenRead* r = t_open_reads; r != nullptr; r = r->outer) {
    if (r->env == env) return r->txn;
  }
  return nullptr;
}

}  // namespace

Status StatusFromLmdb(int rc, std::string_view what, std::string_view env_name) {
  std::string msg(what);
  msg += " in '";
  msg += env_name;
  msg += "': ";
  msg += mdb_strerror(rc);
  switch (rc) {
    case MDB_SUCCESS: return Status::OK();
    case MDB_NOTFOUND: return Status::NotFound(std::move(msg));
    case MDB_MAP_FULL: return Status::StoreFull(std::move(msg));
    case ENOSPC: return Status::StoreFull(msg + " (disk full)");
    case EROFS: return Status::ReadOnly(msg + " (read-only)");
    case EFBIG: return Status::StoreFull(msg + " (file size limit)");
    case MDB_READERS_FULL:
    case MDB_TXN_FULL:
    case MDB_BAD_RSLOT: return Status::Busy(std::move(msg));
    // A cursor stack deeper than LMDB's 32 levels: no tree of a real file
    // is that deep (2^32 pages at two keys a page), but a branch page that
    // points back up its own path makes one (found by damaging a page).
    case MDB_CURSOR_FULL:
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
    case MDB_INVALID:
    case MDB_VERSION_MISMATCH:
    case MDB_INCOMPATIBLE:
    case MDB_BAD_TXN:  // a transaction that already met a corrupt page
    case MDB_BAD_DBI:
    case MDB_PANIC: return Status::Corruption(std::move(msg));
    case MDB_KEYEXIST: return Status::AlreadyExists(std::move(msg));
    case MDB_BAD_VALSIZE: return Status::InvalidArgument(std::move(msg));
    case ENOENT: return Status::NotFound(std::move(msg));
    case EINVAL: return Status::InvalidArgument(std::move(msg));
    default: return Status::IOError(std::move(msg));
  }
}

// ---- ReadTxn / WriteTxn --------------------------------------------------

Status ReadTxn::Get(Table table, std::string_view key, std::string_view* value) const {
  if (table.absent()) return Status::NotFound("key not found");
  MDB_val k = ToVal(key);
  MDB_val v;
  int rc = mdb_get(txn_, table.dbi, &k, &v);
  if (rc == MDB_NOTFOUND) return Status::NotFound("key not found");
  if (rc != MDB_SUCCESS) return StatusFromLmdb(rc, "get", *env_name_);
  *value = FromVal(v);
  if (!bounds_.Contains(*value)) {
    *value = {};
    return Status::Corruption("get in '" + *env_name_ + "': a damaged page points outside the file");
  }
  return Status::OK();
}

Result<std::uint64_t> ReadTxn::Count(Table table) const {
  if (table.absent()) return std::uint64_t{0};
  MDB_stat st;
  int rc = mdb_stat(txn_, table.dbi, &st);
  if (rc != MDB_SUCCESS) return StatusFromLmdb(rc, "stat", *env_name_);
  return static_cast<std::uint64_t>(st.ms_entries);
}

Result<TableStats> ReadTxn::Stats(Table table) const {
  if (table.absent()) return TableStats{};
  MDB_stat st;
  int rc = mdb_stat(txn_, table.dbi, &st);
  if (rc != MDB_SUCCESS) return StatusFromLmdb(rc, "stat", *env_name_);
  return TableStats{st.ms_depth, static_cast<std::uint64_t>(st.ms_branch_pages),
                    static_cast<std::uint64_t>(st.ms_leaf_pages), static_cast<std::uint64_t>(st.ms_entries)};
}

std::uint64_t ReadTxn::commit_id() const { return static_cast<std::uint64_t>(mdb_txn_id(txn_)); }

Result<std::unique_ptr<Cursor>> ReadTxn::OpenCursor(Table table) const {
  MDB_cursor* c = nullptr;
  if (table.absent()) return std::unique_ptr<Cursor>(new Cursor(nullptr, env_name_, bounds_));  // never valid
  int rc = mdb_cursor_open(txn_, table.dbi, &c);
  if (rc != MDB_SUCCESS) return StatusFromLmdb(rc, "cursor open", *env_name_);
  return std::unique_ptr<Cursor>(new Cursor(c, env_name_, bounds_));
}

Status WriteTxn::Check(int rc, std::string_view what) {
  if (rc == MDB_MAP_FULL) map_full_ = true;
  return StatusFromLmdb(rc, what, *env_name_);
}

Status WriteTxn::Put(Table table, std::string_view key, std::string_view value) {
  MDB_val k = ToVal(key);
  MDB_val v = ToVal(value);
  int rc = mdb_put(txn_, table.dbi, &k, &v, 0);
  if (rc == MDB_SUCCESS) return Status::OK();
  return Check(rc, "put");
}

Status WriteTxn::Append(Table table, std::string_view key, std::string_view value) {
  MDB_val k = ToVal(key);
  MDB_val v = ToVal(value);
  int rc = mdb_put(txn_, table.dbi, &k, &v, MDB_APPEND);
  if (rc == MDB_SUCCESS) return Status::OK();
  if (rc == MDB_KEYEXIST) return Status::InvalidArgument("append: key out of order in '" + *env_name_ + "'");
  return Check(rc, "append");
}

Status WriteTxn::Nested(const std::function<Status(WriteTxn&)>& fn) {
  MDB_txn* child = nullptr;
  int rc = mdb_txn_begin(mdb_txn_env(txn_), txn_, 0, &child);
  if (rc != MDB_SUCCESS) return Check(rc, "begin nested");
  WriteTxn w(child, env_name_, bounds_);
  Status s = fn(w);
  if (w.map_full_) map_full_ = true;
  if (!s.ok() || w.map_full_) {
    mdb_txn_abort(child);
    return s.ok() ? Status::StoreFull("nested transaction in '" + *env_name_ + "': map full") : s;
  }
  rc = mdb_txn_commit(child);  // merges into txn_; frees child whatever the outcome
  if (rc == MDB_SUCCESS) return Status::OK();
  return Check(rc, "commit nested");
}

Status WriteTxn::Delete(Table table, std::string_view key) {
  MDB_val k = ToVal(key);
  int rc = mdb_del(txn_, table.dbi, &k, nullptr);
  if (rc == MDB_SUCCESS || rc == MDB_NOTFOUND) return Status::OK();
  return Check(rc, "delete");
}

Status WriteTxn::Clear(Table table) {
  int rc = mdb_drop(txn_, table.dbi, 0);
  if (rc == MDB_SUCCESS) return Status::OK();
  return Check(rc, "clear");
}

Result<std::uint64_t> WriteTxn::DeletePrefix(Table table, std::string_view prefix, std::uint64_t limit,
                                             const RowFilter& select, bool* more) {
  *more = false;
  if (prefix.empty()) return Status::InvalidArgument("DeletePrefix needs a non-empty prefix");
  MDB_cursor* cursor = nullptr;
  int rc = mdb_cursor_open(txn_, table.dbi, &cursor);
  if (rc != MDB_SUCCESS) return Check(rc, "cursor");
  std::uint64_t deleted = 0;
  MDB_val k = ToVal(prefix);
  MDB_val v{0, nullptr};
  rc = mdb_cursor_get(cursor, &k, &v, MDB_SET_RANGE);
  while (rc == MDB_SUCCESS) {
    const std::string_view key = FromVal(k);
    if (key.substr(0, prefix.size()) != prefix) break;
    if (deleted == limit) {
      *more = true;
      break;
    }
    if (!select || select(key, FromVal(v))) {
      rc = mdb_cursor_del(cursor, 0);
      if (rc != MDB_SUCCESS) break;
      ++deleted;
    }
    // After mdb_cursor_del the cursor already stands on the next entry;
    // LMDB's MDB_NEXT then returns that entry instead of skipping it.
    rc = mdb_cursor_get(cursor, &k, &v, MDB_NEXT);
  }
  mdb_cursor_close(cursor);
  if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND) return Check(rc, "delete");
  return deleted;
}

// ---- Cursor ----------------------------------------------------------------

Cursor::~Cursor() {
  if (cursor_ != nullptr) mdb_cursor_close(cursor_);
}

Status Cursor::Move(int op, std::string_view key) {
  if (cursor_ == nullptr) {  // an absent table (Table::absent)
    valid_ = false;
    return Status::OK();
  }
  MDB_val k = ToVal(key);
  MDB_val v{0, nullptr};
  int rc = mdb_cursor_get(cursor_, &k, &v, static_cast<MDB_cursor_op>(op));
  if (rc == MDB_NOTFOUND) {
    valid_ = false;
    return Status::OK();
  }
  if (rc != MDB_SUCCESS) {
    valid_ = false;
    return StatusFromLmdb(rc, "cursor", *env_name_);
  }
  key_ = FromVal(k);
  value_ = FromVal(v);
  if (!bounds_.Contains(key_) || !bounds_.Contains(value_)) {
    valid_ = false;
    key_ = value_ = {};
    return Status::Corruption("cursor in '" + *env_name_ + "': a damaged page points outside the file");
  }
  valid_ = true;
  return Status::OK();
}

Status Cursor::Seek(std::string_view key) {
  if (key.empty()) return SeekToFirst();  // LMDB rejects zero-length keys
  return Move(MDB_SET_RANGE, key);
}
Status Cursor::SeekToFirst() { return Move(MDB_FIRST); }
Status Cursor::SeekToLast() { return Move(MDB_LAST); }
Status Cursor::Next() { return Move(MDB_NEXT); }
Status Cursor::Prev() { return Move(MDB_PREV); }

// ---- Environment -------------------------------------------------------------

namespace {

// LMDB's page size is the OS page size: 4 KiB at least.
constexpr off_t kSmallestPageSize = 4096;

// Checks the environment's path, or with `create` makes its directory:
// NotFound (absent, or a directory without data.mdb), InvalidArgument (not
// a directory), Corruption (read-only: a data file shorter than two pages),
// IOError.
Status PrepareEnvPath(const EnvOptions& options) {
  struct stat st {};
  if (options.single_file) {
    if (::stat(options.path.c_str(), &st) != 0 && !options.create) {
      return Status::NotFound("environment file '" + options.path + "' does not exist");
    }
  } else if (::stat(options.path.c_str(), &st) != 0) {
    if (errno != ENOENT) return Status::IOError("cannot stat '" + options.path + "': " + std::strerror(errno));
    if (!options.create) return Status::NotFound("environment '" + options.path + "' does not exist");
    if (::mkdir(options.path.c_str(), 0700) != 0 && errno != EEXIST) {
      return Status::IOError("cannot create '" + options.path + "': " + std::strerror(errno));
    }
  } else if (!S_ISDIR(st.st_mode)) {
    return Status::InvalidArgument("'" + options.path + "' is not a directory");
  } else if (!options.create) {
    std::string data_file = options.path + "/data.mdb";
    if (::stat(data_file.c_str(), &st) != 0) {
      return Status::NotFound("environment '" + options.path + "' has no data.mdb");
    }
  }
  // An environment has two meta pages once its creation finished. A
  // shorter file is a creation cut short (LMDB had not written its meta
  // pages) or a file emptied or cut: a writable open lets LMDB write a new
  // environment into it (it holds nothing to recover; Open then finds no
  // commit and says NotFound, and the engine decides from the `keys`
  // environment whether that is a creation to finish or damage), but a read-only one
  // would fail with an error that names no damage ("Bad file descriptor").
  if (!options.create && options.read_only) {
    const std::string file = options.single_file ? options.path : options.path + "/data.mdb";
    if (::stat(file.c_str(), &st) == 0 && S_ISREG(st.st_mode) && st.st_size < 2 * kSmallestPageSize) {
      return Status::Corruption("'" + file + "' is " + std::to_string(st.st_size) +
                                " bytes, shorter than an environment's two meta pages: emptied or cut, or its "
                                "creation was cut short (restore from a backup)");
    }
  }
  return Status::OK();
}

}  // namespace

Result<std::unique_ptr<Environment>> Environment::Open(const EnvOptions& options) {
  util::InstallForkHandler();
  std::unique_ptr<Environment> env(new Environment());
  env->name_ = options.path;
  env->single_file_ = options.single_file;
  env->read_only_ = options.read_only;
  if (options.read_only && options.create) return Status::InvalidArgument("a read-only environment cannot be created");
  env->table_names_ = options.tables;
  env->max_map_size_ = options.max_map_size;
  env->fork_generation_ = util::ForkGeneration();

  if (Status p = PrepareEnvPath(options); !p.ok()) return p;

  int rc = mdb_env_create(&env->env_);
  if (rc != MDB_SUCCESS) return StatusFromLmdb(rc, "env create", env->name_);
  auto fail = [&](int code, const char* what) { return env->FailOpen(code, what); };
  if ((rc = mdb_env_set_maxdbs(env->env_, static_cast<MDB_dbi>(options.tables.size() + 1))) != 0)
    return fail(rc, "set maxdbs");
  if ((rc = mdb_env_set_maxreaders(env->env_, kMaxReaders)) != 0) return fail(rc, "set maxreaders");
  if ((rc = mdb_env_set_mapsize(env->env_, options.initial_map_size)) != 0)
    return fail(rc, "set mapsize");
  unsigned int flags = MDB_NOTLS | MDB_NORDAHEAD;
  if (options.single_file) flags |= MDB_NOSUBDIR;
  if (options.durability == Durability::kNoMetaSync) flags |= MDB_NOMETASYNC;
  if (options.durability == Durability::kNoSync) flags |= MDB_NOSYNC;
  if (options.read_only) flags |= options.beside_writer ? MDB_RDONLY : MDB_RDONLY | MDB_NOLOCK;
  if (Status s = options.read_only ? Status::OK()
                                   : PreallocateLockFile(options.single_file ? options.path + "-lock"
                                                                             : options.path + "/lock.mdb");
      !s.ok()) {
    mdb_env_close(env->env_);
    env->env_ = nullptr;
    return s;
  }
  if ((rc = mdb_env_open(env->env_, options.path.c_str(), flags, 0600)) != 0) {
    // Files this process may read but not write: ReadOnly, not an I/O error.
    if (rc == EACCES && ::access(env->data_file().c_str(), R_OK) == 0) rc = EROFS;
    return fail(rc, "open");
  }

  int dead = 0;  // (no reader table without a lock file)
  if (!options.read_only && (rc = mdb_reader_check(env->env_, &dead)) != 0) return fail(rc, "reader check");

  // The map may already be larger than our initial size (a previous run grew it).
  MDB_envinfo info;
  mdb_env_info(env->env_, &info);
  env->last_txn_id_at_open_ = info.me_last_txnid;
  if (info.me_mapsize < options.initial_map_size) {
    if ((rc = mdb_env_set_mapsize(env->env_, options.initial_map_size)) != 0)
      return fail(rc, "set mapsize");
  }

  MDB_stat env_stat;
  mdb_env_stat(env->env_, &env_stat);
  env->page_size_ = env_stat.ms_psize;
  env->LocateMap();

  if (Status c = env->CheckPagesAtOpen(options); !c.ok()) return c;
  if (Status t = env->OpenTables(options.create, options.added_tables); !t.ok()) return t;
  return env;
}

Status Environment::FailOpen(int rc, const char* what) {
  Status s = StatusFromLmdb(rc, what, name_);
  mdb_env_close(env_);  // a failed open must still be closed
  env_ = nullptr;
  return s;
}

Status Environment::CheckPagesAtOpen(const EnvOptions& options) {
  if (map_base_ == nullptr) return Status::OK();  // cannot walk: LMDB's own checks only
  // A read-only open reads; a writable one also writes, which allocates from
  // the free-page table and frees pages by their own numbers.
  std::vector<std::string> tables = options.checked_at_open;
  if (!read_only_) {
    tables.insert(tables.end(), options.checked_at_writable_open.begin(), options.checked_at_writable_open.end());
  }
  auto check = WalkPages(WalkScope{!read_only_, &tables});
  Status s = check.ok() ? Status::OK() : check.status();
  if (s.ok() && (read_only_ ? check->read_hazards > 0 : !check->ok())) {
    const std::string& first = check->read_hazards > 0 ? check->first_read_hazard : check->problems.front();
    std::string msg = std::to_string(check->problems.size()) + " problem(s) in the pages read when opening '" +
                      name_ + "', first: " + first + "; nothing was written (";
    msg += check->read_hazards == 0 ? "reads do not use what is damaged: a read-only open still reads the store"
                                    : "restore from a backup";
    s = Status::Corruption(msg + ")");
  }
  if (!s.ok()) {
    mdb_env_close(env_);
    env_ = nullptr;
  }
  return s;
}

Status Environment::OpenTables(bool create, const std::vector<std::string>& added) {
  auto is_added = [&](const std::string& t) { return std::find(added.begin(), added.end(), t) != added.end(); };
  MDB_txn* txn = nullptr;
  int rc = mdb_txn_begin(env_, nullptr, MDB_RDONLY, &txn);
  for (int attempt = 0; rc == MDB_MAP_RESIZED && attempt < 3; ++attempt) {
    // A writer in another process grew the map since this open read its
    // size (seen beside a writer, stop 26's review): adopt it, and look again.
    mdb_env_set_mapsize(env_, 0);
    LocateMap();
    rc = mdb_txn_begin(env_, nullptr, MDB_RDONLY, &txn);
  }
  if (rc != 0) return FailOpen(rc, "begin");
  bool missing = false;
  for (const std::string& t : table_names_) {
    MDB_dbi dbi;
    rc = mdb_dbi_open(txn, t.c_str(), 0, &dbi);
    if (rc == MDB_NOTFOUND && read_only_ && is_added(t)) {
      dbis_.push_back(Table::kAbsent);  // read as empty
      continue;
    }
    if (rc == MDB_NOTFOUND) {
      missing = true;
      if (create || is_added(t)) continue;
      break;
    }
    if (rc != 0) {
      mdb_txn_abort(txn);
      return FailOpen(rc, "open table");
    }
    dbis_.push_back(dbi);
  }
  if (!missing) {
    if ((rc = mdb_txn_commit(txn)) != 0) return FailOpen(rc, "open tables");
    return Status::OK();
  }
  mdb_txn_abort(txn);
  dbis_.clear();
  bool only_added_missing = true;
  if (!create) {
    // Which table is missing decides: only added tables may be created in
    // an existing environment.
    for (const std::string& t : table_names_) {
      if (!is_added(t)) {
        MDB_txn* probe = nullptr;
        MDB_dbi dbi;
        if ((rc = mdb_txn_begin(env_, nullptr, MDB_RDONLY, &probe)) != 0) return FailOpen(rc, "begin");
        rc = mdb_dbi_open(probe, t.c_str(), 0, &dbi);
        mdb_txn_abort(probe);
        if (rc == MDB_NOTFOUND) only_added_missing = false;
      }
    }
  }
  if (!create && !only_added_missing) {
    // Never committed: not damage, an environment whose creation was cut
    // short before the commit that makes its tables.
    Status s = last_txn_id_at_open_ == 0
                   ? Status::NotFound("environment '" + name_ +
                                      "' holds no commit (its creation was cut short before the first)")
                   : Status::Corruption("environment '" + name_ + "' lacks one of its tables");
    mdb_env_close(env_);
    env_ = nullptr;
    return s;
  }
  if ((rc = mdb_txn_begin(env_, nullptr, 0, &txn)) != 0) return FailOpen(rc, "begin");
  for (const std::string& t : table_names_) {
    MDB_dbi dbi;
    rc = mdb_dbi_open(txn, t.c_str(), MDB_CREATE, &dbi);
    if (rc != 0) {
      mdb_txn_abort(txn);
      return FailOpen(rc, "create table");
    }
    dbis_.push_back(dbi);
  }
  if ((rc = mdb_txn_commit(txn)) != 0) return FailOpen(rc, "commit table creation");
  return Status::OK();
}

Environment::~Environment() {
  if (env_ != nullptr) {
    // In a forked child the parent's environment must not be touched.
    if (util::ForkGeneration() == fork_generation_) mdb_env_close(env_);
  }
}

Table Environment::table(std::string_view name) const {
  for (std::size_t i = 0; i < table_names_.size(); ++i) {
    if (table_names_[i] == name) return Table{dbis_[i]};
  }
  return Table{0};  // the unnamed main database: never used for rows
}

Status Environment::CheckUsable() const {
  if (dead_.load()) return Status::IOError("environment '" + name_ + "' lost its memory map; reopen the store");
  if (util::ForkGeneration() != fork_generation_) {
    return Status::FailedPrecondition("environment '" + name_ +
                                      "' was opened by the parent process: not usable after fork()");
  }
  return Status::OK();
}

Status Environment::View(const std::function<Status(ReadTxn&)>& fn) {
  if (Status s = CheckUsable(); !s.ok()) return s;
  ReadTxn* const outer = OuterRead(this);
  for (int attempt = 0;; ++attempt) {
    std::shared_lock lock(resize_mutex_, std::defer_lock);
    if (outer == nullptr) lock.lock();  // else the outer View holds it
    MDB_txn* txn = nullptr;
    int rc = mdb_txn_begin(env_, nullptr, MDB_RDONLY, &txn);
    if (rc == MDB_MAP_RESIZED && outer != nullptr) {
      // Another process grew the map past this one's, and this thread's
      // outer transaction keeps the map from being resized: read in the
      // outer snapshot (older, and whole).
      return fn(*outer);
    }
    if (rc == MDB_MAP_RESIZED && attempt < 3) {
      lock.unlock();
      std::unique_lock ex(resize_mutex_);
      mdb_env_set_mapsize(env_, 0);  // adopt the size another process set
      LocateMap();
      continue;
    }
    if (rc != MDB_SUCCESS) return StatusFromLmdb(rc, "begin read", name_);
    // The snapshot's bytes: the map up to the last used page (read after the
    // snapshot began, so it covers it).
    MapBounds bounds;
    if (map_base_ != nullptr) {
      MDB_envinfo info;
      mdb_env_info(env_, &info);
      bounds.begin = map_base_;
      bounds.end = map_base_ + std::min<std::uint64_t>(map_len_, (info.me_last_pgno + 1) * std::uint64_t{page_size_});
    }
    ReadTxn r(txn, &name_, bounds);
    OpenRead open{this, &r, t_open_reads};
    struct EndRead {
      OpenRead& open;
      MDB_txn* txn;
      ~EndRead() {
        t_open_reads = open.outer;
        mdb_txn_abort(txn);
      }
    } end{open, txn};
    t_open_reads = &open;
    return fn(r);
  }
}

Status Environment::Update(const std::function<Status(WriteTxn&)>& fn) {
  if (Status s = CheckUsable(); !s.ok()) return s;
  if (read_only_) return Status::ReadOnly("environment '" + name_ + "' is open read-only");
  // A write inside this thread's own read of the environment could never
  // grow the map (that waits for the read to end): refused, not hung.
  if (OuterRead(this) != nullptr) {
    return Status::Internal("environment '" + name_ + "': a write inside a read of the same environment");
  }
  for (int attempt = 0;; ++attempt) {
    std::uint64_t seen_map_size = 0;
    {
      std::shared_lock lock(resize_mutex_);
      MDB_envinfo info;
      mdb_env_info(env_, &info);
      seen_map_size = info.me_mapsize;
      MDB_txn* txn = nullptr;
      int rc = mdb_txn_begin(env_, nullptr, 0, &txn);
      if (rc == MDB_MAP_RESIZED && attempt < 3) {
        lock.unlock();
        std::unique_lock ex(resize_mutex_);
        mdb_env_set_mapsize(env_, 0);
        LocateMap();
        continue;
      }
      if (rc != MDB_SUCCESS) return StatusFromLmdb(rc, "begin write", name_);
      WriteTxn w(txn, &name_);
      Status s = fn(w);
      if (!s.ok() || w.map_full_) {
        mdb_txn_abort(txn);
        if (!w.map_full_) return s;
      } else {
        rc = mdb_txn_commit(txn);  // frees txn whatever the outcome
        if (rc == MDB_SUCCESS) return Status::OK();
        if (rc == EIO) {
          // LMDB reports a short page write as EIO ("filesystem full?"):
          // a write that crossed the file size limit or filled the disk.
          if (std::string cause = ShortWriteCause(); !cause.empty()) {
            return Status::StoreFull("commit in '" + name_ + "': short write (" + cause + ")");
          }
        }
        if (rc != MDB_MAP_FULL) return StatusFromLmdb(rc, "commit", name_);
      }
    }
    // The map was full: grow it with no transaction of ours open, then retry.
    if (Status g = Grow(seen_map_size); !g.ok()) return g;
  }
}

std::string Environment::ShortWriteCause() const {
  struct stat st {};
  if (::stat(data_file().c_str(), &st) == 0) {
    rlimit limit{};
    if (::getrlimit(RLIMIT_FSIZE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY &&
        static_cast<rlim_t>(st.st_size) >= limit.rlim_cur) {
      return "file size limit";
    }
  }
  struct statvfs fs {};
  const std::string dir = single_file_ ? name_.substr(0, name_.find_last_of('/') + 1) + "." : name_;
  if (::statvfs(dir.c_str(), &fs) == 0 && static_cast<std::uint64_t>(fs.f_bavail) * fs.f_frsize < (1u << 20)) {
    return "disk full";
  }
  return {};
}

Status Environment::Grow(std::uint64_t seen_map_size) {
  std::unique_lock ex(resize_mutex_);
  MDB_envinfo info;
  mdb_env_info(env_, &info);
  if (info.me_mapsize > seen_map_size) return Status::OK();  // another writer grew it
  if (info.me_mapsize >= max_map_size_) {
    return Status::StoreFull("environment '" + name_ + "' reached its maximum map size of " +
                             std::to_string(max_map_size_) + " bytes");
  }
  std::uint64_t next = std::min<std::uint64_t>(info.me_mapsize * 2, max_map_size_);
  // mdb_env_set_mapsize unmaps the old map before mapping the new one, and
  // cannot restore it if that fails. So first make sure the address space
  // for the new size exists (while the old map still takes its share: a
  // conservative check).
  void* probe = ::mmap(nullptr, next, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (probe == MAP_FAILED) {
    return Status::StoreFull("cannot grow map of '" + name_ + "' to " + std::to_string(next) +
                             " bytes: no address space (" + std::strerror(errno) + ")");
  }
  ::munmap(probe, next);
  int rc = mdb_env_set_mapsize(env_, next);
  LocateMap();
  if (rc != MDB_SUCCESS) {
    dead_ = true;  // LMDB has no map now: any further use would fault
    return Status::IOError("environment '" + name_ + "' lost its memory map growing to " +
                           std::to_string(next) + " bytes (" + mdb_strerror(rc) + "); reopen the store");
  }
  return Status::OK();
}

void Environment::LocateMap() {
  map_base_ = nullptr;
  map_len_ = 0;
  struct stat st {};
  if (::stat(data_file().c_str(), &st) != 0) return;
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line)) {
    // start-end perms offset major:minor inode path
    unsigned long long start = 0, end = 0, offset = 0, inode = 0;
    unsigned int dev_major = 0, dev_minor = 0;
    char perms[8] = {};
    if (std::sscanf(line.c_str(), "%llx-%llx %7s %llx %x:%x %llu", &start, &end, perms, &offset, &dev_major,
                    &dev_minor, &inode) != 7) {
      continue;
    }
    if (inode == st.st_ino && dev_major == major(st.st_dev) && dev_minor == minor(st.st_dev) && offset == 0) {
      map_base_ = reinterpret_cast<const char*>(static_cast<std::uintptr_t>(start));
      map_len_ = end - start;
      return;
    }
  }
}

// ---- page walk (CheckPages) --------------------------------------------------

namespace {

// LMDB 0.9's on-disk layout (mdb.c, 64-bit builds; not part of lmdb.h).
namespace lmdb_layout {
constexpr std::size_t kPageHeader = 16;  // pgno u64, pad u16, flags u16, lower u16, upper u16 (overflow: pages u32)
constexpr std::size_t kNodeHeader = 8;   // lo u16, hi u16, flags u16, ksize u16, then key and data
constexpr std::uint16_t kBranch = 0x01, kLeaf = 0x02, kOverflow = 0x04, kMeta = 0x08;
constexpr std::uint16_t kBigData = 0x01, kSubData = 0x02, kDupData = 0x04;  // node flags
constexpr std::uint16_t kIntegerKey = 0x08;                                 // MDB_db flags
constexpr std::size_t kDbRecord = 48;  // MDB_db: pad u32, flags u16, depth u16, 4 counts u64, root u64
constexpr std::size_t kMetaFree = kPageHeader + 24, kMetaMain = kMetaFree + kDbRecord;
constexpr std::size_t kMetaLastPage = kMetaMain + kDbRecord, kMetaTxnId = kMetaLastPage + 8;
constexpr std::uint32_t kMagic = 0xBEEFC0DE, kDataVersion = 1;
constexpr std::uint64_t kNoPage = ~std::uint64_t{0};
constexpr std::uint32_t kMaxDepth = 32;  // far beyond any real tree; bounds the recursion
}  // namespace lmdb_layout

template <typename T>
T Load(const char* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

struct DbRecord {
  std::uint16_t flags = 0, depth = 0;
  std::uint64_t branch = 0, leaf = 0, overflow = 0, entries = 0, root = lmdb_layout::kNoPage;
};

DbRecord ReadDbRecord(const char* p) {
  DbRecord d;
  d.flags = Load<std::uint16_t>(p + 4);
  d.depth = Load<std::uint16_t>(p + 6);
  d.branch = Load<std::uint64_t>(p + 8);
  d.leaf = Load<std::uint64_t>(p + 16);
  d.overflow = Load<std::uint64_t>(p + 24);
  d.entries = Load<std::uint64_t>(p + 32);
  d.root = Load<std::uint64_t>(p + 40);
  return d;
}

int CompareKeys(std::string_view a, std::string_view b, bool integer) {
  if (integer && a.size() == 8 && b.size() == 8) {
    const auto x = Load<std::uint64_t>(a.data()), y = Load<std::uint64_t>(b.data());
    return x < y ? -1 : x > y ? 1 : 0;
  }
  return a.compare(b);
}

// Walks the trees of one snapshot whose pages lie at `base`; `pages` are the
// pages that may be read (those in the file and the map). Each problem is
// classed by LMDB 0.9's read path (mdb_page_search, mdb_node_read): what a
// read looks at — a page's kind bits, its lower bound and the node offsets,
// sizes and child page numbers under it, key order and key ranges, the
// first overflow page — is a read hazard; what only writes use — a page's
// own number, its upper bound, a table's depth and page counts, overflow
// headers, the free-page table — is not.
class PageWalker {
 public:
  PageWalker(const char* base, std::uint64_t page_size, std::uint64_t pages, PageCheck* out)
      : base_(base), psize_(page_size), readable_(pages), seen_(pages, false), out_(out) {}

  // A problem; `read_hazard` unless a read through the page would still
  // find the right rows (see PageCheck::read_hazards).
  void Problem(std::string what, bool read_hazard = true) {
    if (read_hazard && reads_use_tree_) {
      if (out_->read_hazards++ == 0) out_->first_read_hazard = what;
    }
    ++out_->problem_count;
    if (out_->problems.size() < 100) out_->problems.push_back(std::move(what));
  }

  // Walks a tree; for the table directory (`directory`), each table record
  // found in its leaves is appended to *tables. `named`: a table of ours,
  // created without flags.
  void WalkTree(const std::string& name, const DbRecord& db, bool directory, bool named,
                std::vector<std::pair<std::string, DbRecord>>* tables) {
    // Reads never look at the free-page table; writes allocate from it.
    reads_use_tree_ = name != kFreeTable;
    // LMDB adopts the comparator flags a record holds (reverse or integer
    // keys, duplicates): ours never have any.
    if (named && db.flags != 0) {
      Problem(name + ": flags 0x" + Hex(db.flags) + " in its record (its tables have none)");
      return;
    }
    Counts c;
    if (db.root != lmdb_layout::kNoPage) {
      Walk(name, db, db.root, 1, directory, tables, {}, nullptr, &c);
      if (!c.aborted && c.leaf_level != db.depth) {
        Problem(name + ": its record says depth " + std::to_string(db.depth) + ", the leaves are at level " +
                    std::to_string(c.leaf_level),
                /*read_hazard=*/false);
      }
    } else if (db.depth != 0 || db.entries != 0) {
      Problem(name + ": empty table with depth " + std::to_string(db.depth) + " and " + std::to_string(db.entries) +
                  " entries",
              /*read_hazard=*/false);
    }
    if (c.aborted) return;  // the counts below would only repeat the damage
    // LMDB's reads follow the pages, not these counts (mdb_stat reports them).
    auto compare = [&](const char* what, std::uint64_t recorded, std::uint64_t found) {
      if (recorded != found) {
        Problem(name + ": its record says " + std::to_string(recorded) + " " + what + ", the tree has " +
                    std::to_string(found),
                /*read_hazard=*/false);
      }
    };
    compare("branch pages", db.branch, c.branch);
    compare("leaf pages", db.leaf, c.leaf);
    compare("overflow pages", db.overflow, c.overflow);
    compare("entries", db.entries, c.entries);
  }

 private:
  struct Counts {
    std::uint64_t branch = 0, leaf = 0, overflow = 0, entries = 0;
    std::uint32_t leaf_level = 0;  // of the first leaf reached
    bool aborted = false;
  };

  const char* Page(std::uint64_t pgno) const { return base_ + pgno * psize_; }

  // Claims pages [pgno, pgno + n) for `name`; false (reported) if one is
  // outside the file or was reached already.
  bool Claim(const std::string& name, std::uint64_t pgno, std::uint64_t n, const char* what) {
    if (pgno < 2 || pgno >= readable_ || n > readable_ - pgno) {
      Problem(name + ": " + what + " " + std::to_string(pgno) + " is outside the file (" + std::to_string(readable_) +
              " pages)");
      return false;
    }
    for (std::uint64_t i = 0; i < n; ++i) {
      if (seen_[pgno + i]) {
        Problem(name + ": page " + std::to_string(pgno + i) + " is reached twice");
        return false;
      }
      seen_[pgno + i] = true;
    }
    return true;
  }

  // Walks the subtree at `pgno`, whose keys must lie in [low, *high) (no
  // upper bound if `high` is null): a page whose keys leave the range its
  // parent gives is another page's (a misdirected or lost write).
  void Walk(const std::string& name, const DbRecord& db, std::uint64_t pgno, std::uint32_t level, bool directory,
            std::vector<std::pair<std::string, DbRecord>>* tables, std::string_view low, const std::string_view* high,
            Counts* c) {
    using namespace lmdb_layout;
    if (level > kMaxDepth) {
      Problem(name + ": deeper than " + std::to_string(kMaxDepth) + " levels at page " + std::to_string(pgno));
      c->aborted = true;
      return;
    }
    if (!Claim(name, pgno, 1, "page")) {
      c->aborted = true;
      return;
    }
    ++out_->pages;
    const char* p = Page(pgno);
    const std::string where = name + ": page " + std::to_string(pgno) + ": ";
    auto bad = [&](const std::string& what) {
      Problem(where + what);
      c->aborted = true;
    };
    // LMDB's reads do not look at a page's own number; a write frees the
    // page by it (the wrong page into the free list). A page holding another
    // page's rows is caught by the key ranges below.
    if (const auto own = Load<std::uint64_t>(p); own != pgno) {
      Problem(where + "its header names page " + std::to_string(own), /*read_hazard=*/false);
    }
    const auto flags = Load<std::uint16_t>(p + 10);
    if (flags != kLeaf && flags != kBranch) return bad("flags 0x" + Hex(flags) + " (neither a branch nor a leaf page)");
    const bool leaf = flags == kLeaf;
    if (leaf && c->leaf_level == 0) c->leaf_level = level;
    if (leaf && level != c->leaf_level) {
      Problem(where + "a leaf at level " + std::to_string(level) + ", another at level " +
                  std::to_string(c->leaf_level),
              /*read_hazard=*/false);
    }
    const auto lower = Load<std::uint16_t>(p + 12), upper = Load<std::uint16_t>(p + 14);
    if (lower < kPageHeader || lower > psize_ || (lower - kPageHeader) % 2 != 0) {
      return bad("lower bound " + std::to_string(lower) + " does not fit a " + std::to_string(psize_) + "-byte page");
    }
    // Only writes use the upper bound (free space); reads use the offsets.
    const bool upper_sound = upper >= lower && upper <= psize_;
    if (!upper_sound) {
      Problem(where + "upper bound " + std::to_string(upper) + " (lower " + std::to_string(lower) + ")",
              /*read_hazard=*/false);
    }
    const std::size_t n = (lower - kPageHeader) / 2;
    if (n == 0) return bad("no entries");
    // LMDB keeps two entries in every branch page but the free-page
    // table's, and asserts it (aborting the process) when it descends.
    if (!leaf && n < 2 && name != kFreeTable) return bad("a branch page with one entry");
    leaf ? ++c->leaf : ++c->branch;
    const bool integer = (db.flags & kIntegerKey) != 0;
    // The nodes: offsets, sizes, key order and range.
    std::vector<std::string_view> keys(n);
    bool nodes_below_upper = false;
    for (std::size_t i = 0; i < n; ++i) {
      const auto off = Load<std::uint16_t>(p + kPageHeader + 2 * i);
      if (off < lower || off + kNodeHeader > psize_) {
        return bad("entry " + std::to_string(i) + " at offset " + std::to_string(off) + " is outside the node area");
      }
      if (upper_sound && off < upper) nodes_below_upper = true;
      const char* node = p + off;
      const auto ksize = Load<std::uint16_t>(node + 6);
      if (off + kNodeHeader + ksize > psize_) return bad("entry " + std::to_string(i) + ": key runs past the page");
      keys[i] = std::string_view(node + kNodeHeader, ksize);
      if (!leaf && i == 0) continue;  // a branch's first key is implicit (the range's low end)
      if (i > (leaf ? 0u : 1u) && CompareKeys(keys[i - 1], keys[i], integer) >= 0) {
        return bad("entry " + std::to_string(i) + ": keys out of order");
      }
      if (CompareKeys(keys[i], low, integer) < 0 || (high != nullptr && CompareKeys(keys[i], *high, integer) >= 0)) {
        return bad("entry " + std::to_string(i) + ": a key outside the range its parent gives (another page's rows)");
      }
    }
    if (nodes_below_upper) Problem(where + "nodes below its upper bound", /*read_hazard=*/false);
    for (std::size_t i = 0; i < n; ++i) {
      const char* node = p + Load<std::uint16_t>(p + kPageHeader + 2 * i);
      const auto lo = Load<std::uint16_t>(node), hi = Load<std::uint16_t>(node + 2);
      const auto nflags = Load<std::uint16_t>(node + 4);
      const std::string_view& key = keys[i];
      const char* data = key.data() + key.size();
      const std::size_t room = psize_ - static_cast<std::size_t>(data - p);
      if (!leaf) {
        const std::uint64_t child = lo | (std::uint64_t{hi} << 16) | (std::uint64_t{nflags} << 32);
        const std::string_view child_low = i == 0 ? low : key;
        const std::string_view* child_high = i + 1 < n ? &keys[i + 1] : high;
        Walk(name, db, child, level + 1, directory, tables, child_low, child_high, c);
        if (c->aborted) return;
        continue;
      }
      ++c->entries;
      const std::uint64_t dsize = lo | (std::uint64_t{hi} << 16);
      if (nflags & kBigData) {
        if (room < 8) return bad("entry " + std::to_string(i) + ": overflow page number runs past the page");
        const auto first = Load<std::uint64_t>(data);
        const std::uint64_t need = (kPageHeader - 1 + dsize) / psize_ + 1;
        // A read takes the value from the first overflow page on, by its size.
        if (!Claim(name, first, need, "overflow page")) {
          c->aborted = true;
          return;
        }
        out_->pages += need;
        c->overflow += need;
        const char* op = Page(first);
        const auto count = Load<std::uint32_t>(op + 12);
        if (Load<std::uint64_t>(op) != first || Load<std::uint16_t>(op + 10) != kOverflow || count != need) {
          Problem(where + "entry " + std::to_string(i) + ": overflow page " + std::to_string(first) +
                      " has a damaged header (" + std::to_string(count) + " pages for " + std::to_string(dsize) +
                      " bytes)",
                  /*read_hazard=*/false);
        }
      } else if (nflags & kDupData) {
        return bad("entry " + std::to_string(i) + ": duplicate-key data in a table without duplicates");
      } else if (dsize > room) {
        return bad("entry " + std::to_string(i) + ": value of " + std::to_string(dsize) + " bytes runs past the page");
      } else if (nflags & kSubData) {
        if (!directory || dsize != kDbRecord) return bad("entry " + std::to_string(i) + ": misplaced table record");
        tables->emplace_back(std::string(key), ReadDbRecord(data));
      } else if (directory) {
        return bad("entry " + std::to_string(i) + ": a table directory entry that is no table");
      }
    }
  }

  static std::string Hex(unsigned v) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "%x", v);
    return buf;
  }

  static constexpr const char* kFreeTable = "free-page table";
  const char* base_;
  std::uint64_t psize_;
  std::uint64_t readable_;
  std::vector<bool> seen_;
  PageCheck* out_;
  bool reads_use_tree_ = true;
};

}  // namespace

Result<PageCheck> Environment::CheckPages() { return WalkPages(WalkScope{}); }

Result<PageCheck> Environment::WalkPages(const WalkScope& scope) {
  using namespace lmdb_layout;
  PageCheck out;
  // A writer may commit twice between the snapshot's start and the reading
  // of the meta pages, so that neither names the snapshot any more (they
  // alternate): its pages are still pinned, but its roots are no longer in
  // a meta page. That is a race, not damage: take a new snapshot and look
  // again (a writer that commits between every two steps of ours for 100
  // tries in a row is reported as the problem it then looks like). The
  // same for any problem found while a newer commit exists (below).
  bool raced = false;
  Status s;
  for (int attempt = 0; attempt < 100; ++attempt) {
    out = PageCheck{};
    raced = false;
    s = View([&](ReadTxn& txn) -> Status {
      if (map_base_ == nullptr) return Status::FailedPrecondition("cannot locate the map of '" + name_ + "'");
      struct stat st {};
      if (::stat(data_file().c_str(), &st) != 0) return Status::IOError("cannot stat '" + data_file() + "'");
      // Pages that can be read without a fault: in the file and in the map.
      const std::uint64_t readable =
          std::min<std::uint64_t>(static_cast<std::uint64_t>(st.st_size), map_len_) / page_size_;
      if (readable < 2) {
        out.problems.push_back("the file is shorter than its two meta pages");
        ++out.problem_count;
        return Status::OK();
      }
      PageWalker walker(map_base_, page_size_, readable, &out);
      const std::uint64_t txn_id = mdb_txn_id(txn.txn_);
      util::TestPoint("check_pages.after_snapshot");
      const char* current = nullptr;
      int newer = 0;  // sound meta pages of later commits
      for (std::uint64_t m = 0; m < 2; ++m) {
        const char* p = map_base_ + m * page_size_;
        const std::string where = "meta page " + std::to_string(m) + ": ";
        ++out.pages;
        if (Load<std::uint64_t>(p) != m || (Load<std::uint16_t>(p + 10) & kMeta) == 0 ||
            Load<std::uint32_t>(p + kPageHeader) != kMagic || Load<std::uint32_t>(p + kPageHeader + 4) != kDataVersion) {
          // The open already read the meta pages (LMDB checks magic and
          // version there and uses the newer one); the other is only a
          // fallback.
          walker.Problem(where + "damaged header, magic or version", /*read_hazard=*/false);
          continue;
        }
        // The meta page's last page may lie past the end of the file: a
        // page taken from the end and freed again in the same transaction
        // (a loose page) counts in it but is never written, and without
        // MDB_WRITEMAP only written pages grow the file (seen after a commit
        // that deleted many rows). What matters — every page a tree reaches
        // being in the file — the walk below checks.
        if (Load<std::uint64_t>(p + kMetaTxnId) == txn_id) current = p;
        if (Load<std::uint64_t>(p + kMetaTxnId) > txn_id) ++newer;
      }
      if (current == nullptr && newer > 0 && attempt + 1 < 100) {
        raced = true;
        return Status::OK();
      }
      if (current == nullptr) {
        walker.Problem("no meta page names the snapshot being read (transaction " + std::to_string(txn_id) + ")");
        return Status::OK();
      }
      std::vector<std::pair<std::string, DbRecord>> tables;
      if (scope.free_table) {
        walker.WalkTree("free-page table", ReadDbRecord(current + kMetaFree), false, false, nullptr);
      }
      walker.WalkTree("table directory", ReadDbRecord(current + kMetaMain), true, false, &tables);
      for (const auto& [name, record] : tables) {
        if (scope.tables != nullptr && std::find(scope.tables->begin(), scope.tables->end(), name) == scope.tables->end()) {
          continue;
        }
        walker.WalkTree("table '" + name + "'", record, false, true, nullptr);
      }
      // A commit running meanwhile may have been caught half-written: its
      // meta page naming pages past the size read above, or (LMDB writes a
      // meta page's roots before its transaction id) our slot's roots
      // already replaced. Problems seen while a newer commit exists are
      // looked at again on a new snapshot; damage is still there then.
      if (!out.problems.empty() && attempt + 1 < 100) {
        for (std::uint64_t m = 0; m < 2; ++m) {
          if (Load<std::uint64_t>(map_base_ + m * page_size_ + kMetaTxnId) > txn_id) raced = true;
        }
      }
      return Status::OK();
    });
    if (!s.ok() || !raced) break;
  }
  if (!s.ok()) return s;
  for (std::string& p : out.problems) p = "'" + name_ + "': " + p;
  if (out.read_hazards > 0) out.first_read_hazard = "'" + name_ + "': " + out.first_read_hazard;
  return out;
}

Result<std::uint64_t> Environment::LiveBytes() {
  std::uint64_t pages = 0;
  Status s = View([&](ReadTxn& txn) -> Status {
    MDB_stat st;
    MDB_dbi main_dbi = 0;
    int rc = mdb_dbi_open(txn.txn_, nullptr, 0, &main_dbi);
    if (rc == 0) rc = mdb_stat(txn.txn_, main_dbi, &st);
    if (rc != 0) return StatusFromLmdb(rc, "stat", name_);
    pages += st.ms_branch_pages + st.ms_leaf_pages + st.ms_overflow_pages;
    for (unsigned int dbi : dbis_) {
      if (dbi == Table::kAbsent) continue;
      if ((rc = mdb_stat(txn.txn_, dbi, &st)) != 0) return StatusFromLmdb(rc, "stat", name_);
      pages += st.ms_branch_pages + st.ms_leaf_pages + st.ms_overflow_pages;
    }
    return Status::OK();
  });
  if (!s.ok()) return s;
  return (pages + 2) * page_size_;  // and the two meta pages
}

Status CheckFreeSpace(const std::string& path, std::uint64_t bytes, std::string_view for_what) {
  struct statvfs fs {};
  if (::statvfs(path.c_str(), &fs) != 0) return Status::OK();  // cannot tell: the writes will
  const std::uint64_t free_bytes = static_cast<std::uint64_t>(fs.f_bavail) * fs.f_frsize;
  if (free_bytes >= bytes) return Status::OK();
  return Status::StoreFull(std::string(for_what) + " needs about " + std::to_string(bytes) + " bytes free on the disk of '" +
                           path + "', " + std::to_string(free_bytes) + " are (disk full)");
}

std::string Environment::data_file() const { return single_file_ ? name_ : name_ + "/data.mdb"; }

Status Environment::CheckRoomForRebuild(const std::string& dest_file) {
  // The new file takes about the live pages, its lock file kLockFileBytes.
  auto live = LiveBytes();
  if (!live.ok()) return live.status().WithContext("rebuilding '" + name_ + "'");
  const std::string dest_dir = dest_file.substr(0, dest_file.find_last_of('/') + 1) + ".";
  return CheckFreeSpace(dest_dir, *live + static_cast<std::uint64_t>(kLockFileBytes) + (1u << 20),
                        "rebuilding '" + name_ + "'");
}

Status Environment::RebuildToFile(const std::string& dest_file, std::uint64_t initial_map_size,
                                  const FinishRebuild& finish) {
  if (Status s = CheckUsable(); !s.ok()) return s;
  ::unlink(dest_file.c_str());
  ::unlink((dest_file + "-lock").c_str());
  // A damaged page would fail the copy halfway or be copied: refuse first.
  auto pages = CheckPages();
  if (!pages.ok()) return pages.status().WithContext("rebuilding '" + name_ + "'");
  if (!pages->ok()) {
    return Status::Corruption("rebuilding '" + name_ + "': " + std::to_string(pages->problems.size()) +
                              " damaged page(s), first: " + pages->problems.front());
  }
  if (Status f = CheckRoomForRebuild(dest_file); !f.ok()) return f;
  Status s = View([&](ReadTxn& in) { return WriteLiveRows(in, dest_file, initial_map_size, nullptr, finish); });
  return s.WithContext("rebuilding '" + name_ + "'");
}

Status Environment::CopyLiveRows(const ReadTxn& snapshot, const std::string& dest_file, const RowFilter& keep) {
  if (Status s = CheckUsable(); !s.ok()) return s;
  ::unlink(dest_file.c_str());
  ::unlink((dest_file + "-lock").c_str());
  std::uint64_t map_size = 0;
  {
    MDB_envinfo info;
    mdb_env_info(env_, &info);
    map_size = info.me_mapsize;
  }
  return WriteLiveRows(snapshot, dest_file, map_size, keep).WithContext("copying '" + name_ + "'");
}

Status Environment::WriteLiveRows(const ReadTxn& in, const std::string& dest_file, std::uint64_t initial_map_size,
                                  const RowFilter& keep, const FinishRebuild& finish) {
  EnvOptions eo;
  eo.path = dest_file;
  eo.single_file = true;
  eo.tables = table_names_;
  eo.create = true;
  eo.initial_map_size = initial_map_size;
  eo.max_map_size = max_map_size_;
  eo.durability = Durability::kNoSync;  // one fsync at the end
  auto fresh = Environment::Open(eo);
  if (!fresh.ok()) return fresh.status();
  constexpr std::size_t kBatchBytes = 16u << 20;
  // Views into the source's map: valid for as long as `in` lives, which
  // outlasts the copy (no row is copied into the heap, so none needs wiping).
  std::vector<std::pair<std::string_view, std::string_view>> batch;
  Status s = [&]() -> Status {
    for (std::size_t i = 0; i < table_names_.size(); ++i) {
      const Table src{dbis_[i]};
      const Table dst = (*fresh)->table(table_names_[i]);
      auto cursor = in.OpenCursor(src);
      if (!cursor.ok()) return cursor.status();
      auto& c = **cursor;
      Status m = c.SeekToFirst();
      while (m.ok() && c.Valid()) {
        batch.clear();
        std::size_t bytes = 0;
        for (; m.ok() && c.Valid() && bytes < kBatchBytes; m = c.Next()) {
          if (keep && !keep(table_names_[i], c.key())) continue;
          batch.emplace_back(c.key(), c.value());
          bytes += c.key().size() + c.value().size();
        }
        if (!m.ok()) return m;
        Status w = (*fresh)->Update([&](WriteTxn& out) -> Status {
          for (const auto& [k, v] : batch) {
            if (Status a = out.Append(dst, k, v); !a.ok()) return a;
          }
          return Status::OK();
        });
        if (!w.ok()) return w;
      }
      if (!m.ok()) return m;
    }
    return Status::OK();
  }();
  if (s.ok() && finish) s = finish(**fresh);
  if (s.ok()) s = (*fresh)->Sync();
  fresh->reset();
  ::unlink((dest_file + "-lock").c_str());
  if (!s.ok()) {
    ::unlink(dest_file.c_str());
    return s;
  }
  return Status::OK();
}

Status ReplaceFile(const std::string& target, const std::string& replacement, bool wipe_old) {
  int old_fd = wipe_old ? ::open(target.c_str(), O_WRONLY | O_CLOEXEC) : -1;
  if (::rename(replacement.c_str(), target.c_str()) != 0) {
    if (old_fd >= 0) ::close(old_fd);
    return Status::IOError("cannot rename '" + replacement + "' to '" + target + "': " + std::strerror(errno));
  }
  const std::string dir = target.substr(0, target.find_last_of('/'));
  int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  const bool renamed_durably = dir_fd >= 0 && ::fsync(dir_fd) == 0;
  if (dir_fd >= 0) ::close(dir_fd);
  if (!renamed_durably) {
    // Never scrub the old file while power loss could still bring its name back.
    if (old_fd >= 0) ::close(old_fd);
    return Status::IOError("cannot sync directory '" + dir + "' after replacing '" + target +
                           "'; the old file was left intact");
  }
  if (old_fd >= 0) {
    // The new file is durable in place; now scrub the old, unlinked inode.
    struct stat st {};
    if (::fstat(old_fd, &st) == 0) {
      std::string zeros(1u << 16, '\0');
      off_t off = 0;
      while (off < st.st_size) {
        const auto n = static_cast<std::size_t>(std::min<off_t>(st.st_size - off, static_cast<off_t>(zeros.size())));
        ssize_t w = ::pwrite(old_fd, zeros.data(), n, off);
        if (w <= 0) break;
        off += w;
      }
      ::fdatasync(old_fd);
    }
    ::close(old_fd);
  }
  return Status::OK();
}

Status Environment::Sync() {
  if (Status s = CheckUsable(); !s.ok()) return s;
  return StatusFromLmdb(mdb_env_sync(env_, 1), "sync", name_);
}

Result<int> Environment::ClearStaleReaders() {
  if (Status s = CheckUsable(); !s.ok()) return s;
  if (read_only_) return 0;
  int dead = 0;
  if (const int rc = mdb_reader_check(env_, &dead); rc != 0) {
    return Status::IOError("reader check of " + name_ + ": " + mdb_strerror(rc));
  }
  return dead;
}

std::uint64_t Environment::LastCommittedTxn() const {
  MDB_envinfo info;
  mdb_env_info(env_, &info);
  return info.me_last_txnid;
}

Result<EnvInfo> Environment::Info() {
  if (Status s = CheckUsable(); !s.ok()) return s;
  EnvInfo out;
  MDB_envinfo info;
  mdb_env_info(env_, &info);
  out.map_size = info.me_mapsize;
  out.last_txn_id = info.me_last_txnid;
  struct stat st {};
  std::string file = data_file();
  if (::stat(file.c_str(), &st) == 0) out.file_bytes = static_cast<std::uint64_t>(st.st_size);
  return out;
}

}  // namespace shredkv::storage
