// The storage layer: one LMDB environment with named tables, behind an API
// that exposes nothing of lmdb.h.
//
// Enforced here, not just documented (LMDB's caveats):
// - the map grows by itself: a write that finds the map full is aborted, the
//   map is doubled while no transaction of this process is open, and the
//   write function is run again (so it must be re-runnable);
// - stale reader slots of dead processes are cleared at open;
// - transactions live only inside View()/Update() callbacks, so none is held
//   across API calls; an Update inside a View or Update of the same
//   environment on the same thread would nest transactions (an Update inside
//   a View is refused with Internal); a View inside a View is allowed (View
//   says how it reads);
// - a child process after fork() gets FailedPrecondition from every call.
// Thread safety: an Environment is shared by any number of threads.
// Concurrent View()s run in parallel; Update()s are serialised by LMDB.
#ifndef SHREDKV_STORAGE_ENVIRONMENT_H_
#define SHREDKV_STORAGE_ENVIRONMENT_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

#include "shredkv/options.h"
#include "shredkv/status.h"

struct MDB_env;
struct MDB_txn;
struct MDB_cursor;

namespace shredkv::storage {

// A table is an index into the environment's list of named databases.
struct Table {
  // The handle of a table in EnvOptions::added_tables that a read-only open
  // did not find: reads see it empty.
  static constexpr unsigned int kAbsent = ~0u;
  unsigned int dbi = 0;
  bool absent() const { return dbi == kAbsent; }
};

struct EnvOptions {
  std::string path;                 // directory holding data.mdb and lock.mdb,
                                    // or with single_file the data file itself
  bool single_file = false;         // path is the file (lock file: path + "-lock")
  std::vector<std::string> tables;  // named databases (see create)
  // Tables of `tables` that a format gained after stores of it were made
  // (e.g. `analytics_staged`): a writable open of an existing environment
  // creates them if missing; a read-only open leaves them absent
  // (Table::absent(), read as empty). Any other missing table is Corruption.
  std::vector<std::string> added_tables;
  bool create = false;              // create directory and files if missing
  std::uint64_t initial_map_size = 1ull << 20;
  std::uint64_t max_map_size = 1ull << 40;
  Durability durability = Durability::kFullSync;
  // Open an existing environment without writing to it or to its lock file
  // (MDB_RDONLY | MDB_NOLOCK), so a store on a read-only filesystem or
  // without write permission can be read. No lock file means no reader
  // table: the caller must exclude writers in other processes for as long
  // as it is open (DirectoryClaim in ClaimMode::kShared). Update() is
  // ReadOnly; tables must exist (Corruption otherwise). REQUIRES: !create.
  bool read_only = false;
  // With read_only: open beside a writer in another process instead — with
  // LMDB's lock file and reader table (MDB_RDONLY without MDB_NOLOCK), so
  // the writer keeps every page a read transaction of this process sees.
  // The lock file must be writable (DirectoryClaim kLiveReader).
  bool beside_writer = false;
  // Tables (of `tables`) that the caller reads while it opens, e.g. its
  // format and key tables. Open walks their pages and the table directory's
  // (opening a table reads it), and in a writable open the free-page
  // table's (every write allocates from it), as CheckPages does, before any
  // of them is read: damage there is Corruption naming the page, with
  // nothing written, instead of an LMDB assertion that aborts the process
  // or a read through a wild offset. A read-only open is refused only for
  // damage a read would trip on (PageCheck::read_hazards), so it stays the
  // way to read a store whose damage only writes would spread. Keep it to
  // small tables; the large ones are checked by Verify, backups and
  // rebuilds, which walk every page before they read rows.
  std::vector<std::string> checked_at_open;
  // Tables only a writable open reads (e.g. to finish pending work): walked
  // as above, by writable opens only.
  std::vector<std::string> checked_at_writable_open;
};

class Cursor;

// The B-tree shape of a table (mdb_stat): a lookup or seek reads `depth`
// pages, root to leaf.
struct TableStats {
  std::uint32_t depth = 0;
  std::uint64_t branch_pages = 0;
  std::uint64_t leaf_pages = 0;
  std::uint64_t entries = 0;
};

// A read-only view of one snapshot. Values returned as string_view point into
// the memory map and are valid only until the transaction ends: copy them
// before returning from the callback.
// The bytes of a read-only snapshot: every key and value LMDB returns in one
// lies inside the map, below its last used page. A damaged page can make
// LMDB return a pointer or size outside it; such a row is Corruption, not a
// read of unmapped memory. Empty (unchecked) for write transactions, whose
// dirty pages live on the heap.
struct MapBounds {
  const char* begin = nullptr;
  const char* end = nullptr;
  bool Contains(std::string_view bytes) const {
    if (begin == nullptr || bytes.empty()) return true;
    return bytes.data() >= begin && bytes.data() < end &&
           bytes.size() <= static_cast<std::size_t>(end - bytes.data());
  }
};

class ReadTxn {
 public:
  ReadTxn(const ReadTxn&) = delete;
  ReadTxn& operator=(const ReadTxn&) = delete;

  // NotFound if absent.
  Status Get(Table table, std::string_view key, std::string_view* value) const;
  // Entries in the table, as of this snapshot.
  Result<std::uint64_t> Count(Table table) const;
  Result<TableStats> Stats(Table table) const;
  // A cursor valid until the transaction ends.
  Result<std::unique_ptr<Cursor>> OpenCursor(Table table) const;
  // The ID of the last commit this snapshot sees (a write transaction: the
  // commit it will be). Grows by one a commit of this file; a file rebuilt
  // from rows (RebuildToFile, CopyLiveRows) starts again from 1.
  std::uint64_t commit_id() const;

 protected:
  friend class Environment;
  ReadTxn(MDB_txn* txn, const std::string* env_name, MapBounds bounds = {})
      : txn_(txn), env_name_(env_name), bounds_(bounds) {}
  MDB_txn* txn_;
  const std::string* env_name_;
  MapBounds bounds_;
};

class WriteTxn : public ReadTxn {
 public:
  // Errors: StoreFull when the map is full (Update() then grows and retries).
  Status Put(Table table, std::string_view key, std::string_view value);
  // Put of a key greater than every key in the table (MDB_APPEND): pages
  // fill up completely instead of splitting in half. A key out of order is
  // InvalidArgument.
  Status Append(Table table, std::string_view key, std::string_view value);
  // OK if absent.
  Status Delete(Table table, std::string_view key);
  // Deletes every entry of the table.
  Status Clear(Table table);
  // Which entries DeletePrefix removes: true to delete. Null: all.
  using RowFilter = std::function<bool(std::string_view key, std::string_view value)>;
  // Deletes, in one cursor walk (mdb_cursor_del), up to `limit` entries whose
  // key starts with `prefix` (non-empty) and that `select` accepts. *more is
  // set if the walk stopped at `limit` before the end of the prefix range.
  // Returns the number of entries deleted.
  Result<std::uint64_t> DeletePrefix(Table table, std::string_view prefix, std::uint64_t limit,
                                     const RowFilter& select, bool* more);
  // Runs `fn` in a child transaction (LMDB nested transaction): its changes
  // join this transaction if `fn` returns OK and are undone, leaving this
  // one as it was, if it fails — what lets one commit carry several
  // independent write batches, each all or nothing. A full map inside the
  // child marks this transaction too, so Update() grows the map and re-runs
  // the whole callback. `fn` must not use cursors or views of this
  // transaction after it returns an error. Returns fn's status, or the
  // error of beginning or merging the child.
  Status Nested(const std::function<Status(WriteTxn&)>& fn);
  // A write in this transaction (or a child) found the map full: Update()
  // will grow it and run the callback again.
  bool map_full() const { return map_full_; }

 private:
  friend class Environment;
  using ReadTxn::ReadTxn;
  Status Check(int rc, std::string_view what);
  bool map_full_ = false;
};

// A positioned cursor over one table. Key/value views are valid until the
// cursor moves or the transaction ends.
class Cursor {
 public:
  ~Cursor();
  Cursor(const Cursor&) = delete;
  Cursor& operator=(const Cursor&) = delete;

  // Positions at the first key >= `key`.
  Status Seek(std::string_view key);
  Status SeekToFirst();
  Status SeekToLast();
  // REQUIRES: Valid().
  Status Next();
  Status Prev();
  bool Valid() const { return valid_; }
  std::string_view key() const { return key_; }
  std::string_view value() const { return value_; }

 private:
  friend class ReadTxn;
  Cursor(MDB_cursor* c, const std::string* env_name, MapBounds bounds)
      : cursor_(c), env_name_(env_name), bounds_(bounds) {}
  Status Move(int op, std::string_view key = {});
  MDB_cursor* cursor_;
  const std::string* env_name_;
  MapBounds bounds_;
  bool valid_ = false;
  std::string_view key_, value_;
};

// What Environment::CheckPages found.
struct PageCheck {
  std::uint64_t pages = 0;            // pages reached and checked
  std::vector<std::string> problems;  // one line each, naming the page; at most 100
  std::uint64_t problem_count = 0;    // every problem found, listed or not
  // Problems a read could trip on (an LMDB assertion, a wild offset, a page
  // outside the file, another page's rows, a table's comparator flags), all
  // of them counted, and the first. The others are damage only writes would
  // spread: a page's own number, its upper bound, a table record's depth and
  // counts, an overflow page's header, the free-page table, the older meta
  // page.
  std::uint64_t read_hazards = 0;
  std::string first_read_hazard;
  bool ok() const { return problem_count == 0 && problems.empty(); }
};

struct EnvInfo {
  std::uint64_t map_size = 0;
  std::uint64_t file_bytes = 0;     // size of data.mdb on disk
  std::uint64_t last_txn_id = 0;
};

class Environment {
 public:
  // Opens or creates the environment. Errors: NotFound (missing and
  // !create; also, with !create, a file that holds no commit at all — LMDB
  // made it and its creator was stopped before the first commit, which
  // creates the tables: outside audit 36b, F1), Corruption (not an LMDB
  // file, a version mismatch, or committed without one of its tables),
  // IOError.
  static Result<std::unique_ptr<Environment>> Open(const EnvOptions& options);
  // The ID of the last commit in the file when this environment opened it
  // (0: none): where it was before this process wrote anything.
  std::uint64_t last_txn_id_at_open() const { return last_txn_id_at_open_; }
  ~Environment();
  Environment(const Environment&) = delete;
  Environment& operator=(const Environment&) = delete;

  // The table named `name` (one of EnvOptions::tables).
  Table table(std::string_view name) const;

  // Runs `fn` in a read transaction of the latest snapshot. Inside another
  // View of this environment on the same thread (a key lookup inside a
  // scan), `fn` reads the latest snapshot too, except when another process
  // grew the map since the outer View began: the map cannot be resized
  // while the outer transaction is open, so `fn` then reads in the outer
  // View's snapshot (a consistent, older one) instead of waiting for a
  // resize that would never come.
  Status View(const std::function<Status(ReadTxn&)>& fn);

  // Runs `fn` in a write transaction and commits if it returns OK; aborts
  // otherwise and returns its status. ReadOnly if opened read-only. Runs `fn` again after growing the map
  // if it hit a full map. A commit that returned OK is durable per
  // EnvOptions::durability.
  Status Update(const std::function<Status(WriteTxn&)>& fn);

  // Checks every page (CheckPages: Corruption, with nothing written, if one
  // is damaged), then writes the live rows of every table, in key order,
  // into a new single-file environment `dest_file` (any file there is
  // replaced), in
  // write transactions of at most ~16 MiB of rows, then fsyncs it and
  // removes its lock file. Runs under one read snapshot: writes committed
  // after it began are not in the copy.
  // Unlike LMDB's compacting copy (mdb_env_copy2 with MDB_CP_COMPACT), which
  // copies branch pages as they are, with the separator keys of rows
  // deleted long ago, the new file's every page was written from live rows
  // only: no deleted key or value survives in a branch, leaf, overflow or
  // free page of it (docs/security.md §6).
  // `finish` (if given) writes to the new environment after the rows and
  // before its fsync (a row the new file must hold that the old one must
  // not: the engine's position generation).
  using FinishRebuild = std::function<Status(Environment& fresh)>;
  Status RebuildToFile(const std::string& dest_file, std::uint64_t initial_map_size,
                       const FinishRebuild& finish = nullptr);
  // StoreFull unless the disk holding `dest_file` has room for a rebuild of
  // this environment (its live pages, a lock file and 1 MiB): what
  // RebuildToFile checks first, for callers that write before they rebuild.
  Status CheckRoomForRebuild(const std::string& dest_file);

  // Writes the live rows of every table as `snapshot` (a read transaction of
  // this environment) sees them into a new single-file environment
  // `dest_file`, as RebuildToFile does, then fsyncs it. For copies that must
  // agree with a snapshot of another environment (Store::Backup). Does not
  // check pages first: the caller does (CheckPages). With `keep`, only the
  // rows for which keep(table name, key) is true are copied.
  using RowFilter = std::function<bool(std::string_view table, std::string_view key)>;
  Status CopyLiveRows(const ReadTxn& snapshot, const std::string& dest_file, const RowFilter& keep = nullptr);

  // Walks every page reachable from the current meta page under one read
  // snapshot — the free-page table, the table directory and every table:
  // branch, leaf and overflow pages — and checks both meta pages and each
  // page's header (its own page number, its kind, lower/upper bounds), every
  // node's offset and size, each branch's child page (in the file, not
  // reached twice), key order within a page, and each table's depth, page
  // counts and entry count against its record. LMDB checks almost none of
  // this before it uses a page, so a damaged header passes reads of other
  // pages and surfaces later, in a write (which may spread it) or a rebuild
  // (MDB_BAD_VALSIZE, MDB_PAGE_NOTFOUND). Reads only. Damage is listed in
  // the result; the call fails only if the walk cannot run (FailedPrecondition
  // if this process cannot locate the map).
  Result<PageCheck> CheckPages();

  // Bytes of the pages the live trees take (every table's branch, leaf and
  // overflow pages, and the table directory's): about what RebuildToFile
  // writes, and what a copy-on-write rewrite of every row adds to the file.
  Result<std::uint64_t> LiveBytes();

  // Path of the data file (data.mdb).
  std::string data_file() const;

  // Forces the OS buffers to disk (for kNoSync stores).
  Status Sync();

  Result<EnvInfo> Info();
  // The ID of the last committed write transaction, by any process (read
  // from the meta pages; no transaction, no system call).
  std::uint64_t LastCommittedTxn() const;
  const std::string& path() const { return name_; }

  // Frees the reader-table slots of processes that died holding a read
  // transaction (mdb_reader_check): such a slot pins the pages of its
  // snapshot, so every later commit allocates new pages and the file grows
  // until the slot is freed. Open does it once; a long-running writer calls
  // it again (maintenance) for readers beside it that were killed meanwhile
  // (docs/backup.md §5). Returns the slots freed; 0 on a read-only open (no
  // reader table of its own to clean).
  Result<int> ClearStaleReaders();

 private:
  Environment() = default;
  // Open's steps after mdb_env_open. Each closes the environment when it
  // fails (FailOpen), so Open can return its status as is.
  Status FailOpen(int rc, const char* what);
  // Opens every table, read-only first (an existing, possibly damaged file
  // is never written just by opening it); creates them if one is missing
  // and `create` (or it is one of `added` and the open is writable), else
  // Corruption; a missing added table of a read-only open is absent.
  Status OpenTables(bool create, const std::vector<std::string>& added);
  // EnvOptions::checked_at_open: Corruption if a page of those tables, of
  // the free-page table or of the table directory is damaged. Skipped (OK)
  // when the map was not located. Closes the environment when it fails.
  Status CheckPagesAtOpen(const EnvOptions& options);
  // What WalkPages walks besides the meta pages and the table directory.
  struct WalkScope {
    bool free_table = true;
    const std::vector<std::string>* tables = nullptr;  // null: every table
  };
  Result<PageCheck> WalkPages(const WalkScope& scope);
  Status Grow(std::uint64_t seen_map_size);
  // Why a commit's page write came up short: "file size limit" or "disk
  // full" if either is evident, else empty (a genuine I/O error).
  std::string ShortWriteCause() const;
  // Finds this environment's memory map in /proc/self/maps (LMDB does not
  // report its address), so read snapshots can bound what LMDB returns.
  // Null (bounds unchecked) if not found. REQUIRES: no transaction open, or
  // resize_mutex_ held exclusively.
  void LocateMap();
  const char* map_base_ = nullptr;
  std::uint64_t map_len_ = 0;
  std::uint64_t page_size_ = 4096;
  std::uint64_t last_txn_id_at_open_ = 0;  // 0: the file held no commit when opened
  Status CheckUsable() const;
  // RebuildToFile's and CopyLiveRows' copy: the live rows `in` sees into a
  // new environment at `dest_file`, fsynced, its lock file removed;
  // `dest_file` removed again on failure.
  Status WriteLiveRows(const ReadTxn& in, const std::string& dest_file, std::uint64_t initial_map_size,
                       const RowFilter& keep = nullptr, const FinishRebuild& finish = nullptr);

  MDB_env* env_ = nullptr;
  std::string name_;
  bool single_file_ = false;
  bool read_only_ = false;
  std::vector<std::string> table_names_;
  std::vector<unsigned int> dbis_;
  std::uint64_t max_map_size_ = 0;
  std::uint64_t fork_generation_ = 0;
  std::atomic<bool> dead_{false};  // the map was lost in a failed growth
  // Shared by every transaction of this process; exclusive while resizing.
  mutable std::shared_mutex resize_mutex_;
};

// Atomically replaces the closed environment file `target` with
// `replacement` (rename, then fsync of the directory). With `wipe_old`, the
// old file's blocks are then overwritten with zeros through a descriptor kept
// open across the rename (best effort: copy-on-write filesystems and SSD
// wear levelling may keep old blocks; see docs/security.md).
// REQUIRES: no environment of this process has `target` open.
Status ReplaceFile(const std::string& target, const std::string& replacement, bool wipe_old);

// StoreFull unless the filesystem holding `path` (a file or a directory)
// has at least `bytes` free for an unprivileged writer. Checked before work
// that writes a whole new file (a rebuild, a key rotation), so a full disk
// refuses it up front instead of failing it halfway. Best effort: other
// writers may take the space after the check.
Status CheckFreeSpace(const std::string& path, std::uint64_t bytes, std::string_view for_what);

// Maps an LMDB (or errno) code to a Status naming `what` and the environment.
Status StatusFromLmdb(int rc, std::string_view what, std::string_view env_name);

}  // namespace shredkv::storage

#endif  // SHREDKV_STORAGE_ENVIRONMENT_H_
