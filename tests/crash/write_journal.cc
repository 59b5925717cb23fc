#include "crash/write_journal.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cstdarg>
#include <mutex>


namespace shredkv::crash {
namespace {

struct TrackedFd {
  std::string file;  // relative path
  bool dsync = false;
};

struct JournalState {
  std::mutex mu;
  bool active = false;
  std::string prefix;  // directory + "/"
  std::map<int, TrackedFd> fds;
  std::vector<JournalEntry> entries;
  std::uint64_t renames = 0;
};

JournalState& State() {
  static JournalState* state = new JournalState();  // never destroyed: used until exit
  return *state;
}

template <typename Fn>
Fn Real(const char* name) {
  return reinterpret_cast<Fn>(::dlsym(RTLD_NEXT, name));
}

using OpenFn = int (*)(const char*, int, ...);
using PwriteFn = ssize_t (*)(int, const void*, size_t, off_t);
using WriteFn = ssize_t (*)(int, const void*, size_t);
using WritevFn = ssize_t (*)(int, const iovec*, int);
using SyncFn = int (*)(int);
using TruncateFn = int (*)(int, off_t);
using CloseFn = int (*)(int);
using RenameFn = int (*)(const char*, const char*);
using LseekFn = off_t (*)(int, off_t, int);

bool IsLockFile(const std::string& rel) {
  return rel.size() >= 8 && rel.compare(rel.size() - 8, 8, "lock.mdb") == 0;
}

void OnOpen(int fd, const char* path, int flags) {
  JournalState& s = State();
  std::lock_guard lock(s.mu);
  s.fds.erase(fd);
  if (!s.active || path == nullptr) return;
  std::string p(path);
  if (p.rfind(s.prefix, 0) != 0) return;
  std::string rel = p.substr(s.prefix.size());
  if (IsLockFile(rel)) return;
  s.fds[fd] = TrackedFd{rel, (flags & O_DSYNC) != 0};
  if ((flags & O_TRUNC) != 0) {
    JournalEntry e;
    e.kind = JournalEntry::Kind::kTruncate;
    e.file = rel;
    s.entries.push_back(std::move(e));
  }
}

void OnWrite(int fd, off_t offset, std::string bytes) {
  JournalState& s = State();
  std::lock_guard lock(s.mu);
  auto it = s.fds.find(fd);
  if (!s.active || it == s.fds.end()) return;
  JournalEntry e;
  e.kind = JournalEntry::Kind::kWrite;
  e.file = it->second.file;
  e.offset = static_cast<std::uint64_t>(offset);
  e.bytes = std::move(bytes);
  e.durable = it->second.dsync;
  s.entries.push_back(std::move(e));
}

bool Tracked(int fd) {
  JournalState& s = State();
  std::lock_guard lock(s.mu);
  return s.active && s.fds.count(fd) != 0;
}

void OnFileEvent(int fd, JournalEntry::Kind kind, std::uint64_t offset) {
  JournalState& s = State();
  std::lock_guard lock(s.mu);
  auto it = s.fds.find(fd);
  if (!s.active || it == s.fds.end()) return;
  JournalEntry e;
  e.kind = kind;
  e.file = it->second.file;
  e.offset = offset;
  s.entries.push_back(std::move(e));
}

int OpenImpl(const char* name, const char* path, int flags, mode_t mode) {
  static const OpenFn real_open = Real<OpenFn>("open");
  static const OpenFn real_open64 = Real<OpenFn>("open64");
  const int fd = (name[4] == '6' ? real_open64 : real_open)(path, flags, mode);
  if (fd >= 0) OnOpen(fd, path, flags);
  return fd;
}

}  // namespace

void StartJournal(const std::string& directory) {
  JournalState& s = State();
  std::lock_guard lock(s.mu);
  s.active = true;
  s.prefix = directory + "/";
  s.fds.clear();
  s.entries.clear();
  s.renames = 0;
}

std::vector<JournalEntry> StopJournal(std::uint64_t* renames) {
  JournalState& s = State();
  std::lock_guard lock(s.mu);
  s.active = false;
  s.fds.clear();
  if (renames != nullptr) *renames = s.renames;
  return std::move(s.entries);
}

void JournalMarker(JournalEntry::Kind kind, std::uint64_t n) {
  JournalState& s = State();
  std::lock_guard lock(s.mu);
  if (!s.active) return;
  JournalEntry e;
  e.kind = kind;
  e.n = n;
  s.entries.push_back(std::move(e));
}

DirectoryImage Reconstruct(const DirectoryImage& base, const std::vector<JournalEntry>& journal,
                           std::size_t cut, PowerLossMode mode, std::mt19937_64& rng) {
  DirectoryImage durable = base;
  std::map<std::string, std::vector<const JournalEntry*>> pending;
  auto apply = [](std::string& file, const JournalEntry& e) {
    if (e.kind == JournalEntry::Kind::kTruncate) {
      file.resize(e.offset);
      return;
    }
    if (file.size() < e.offset + e.bytes.size()) file.resize(e.offset + e.bytes.size());
    file.replace(e.offset, e.bytes.size(), e.bytes);
  };
  for (std::size_t i = 0; i < cut && i < journal.size(); ++i) {
    const JournalEntry& e = journal[i];
    switch (e.kind) {
      case JournalEntry::Kind::kWrite:
        durable.try_emplace(e.file);  // a created file exists, possibly empty
        if (e.durable) {
          apply(durable[e.file], e);
        } else {
          pending[e.file].push_back(&e);
        }
        break;
      case JournalEntry::Kind::kTruncate:
        durable.try_emplace(e.file);
        pending[e.file].push_back(&e);
        break;
      case JournalEntry::Kind::kSync:
        for (const JournalEntry* p : pending[e.file]) apply(durable[e.file], *p);
        pending[e.file].clear();
        break;
      case JournalEntry::Kind::kAck:
      case JournalEntry::Kind::kIntent: break;
    }
  }
  if (mode == PowerLossMode::kTearUnsynced) {
    constexpr std::uint64_t kPage = 4096;
    for (const auto& [file, entries] : pending) {
      for (const JournalEntry* p : entries) {
        if (p->kind == JournalEntry::Kind::kTruncate) {
          if (rng() % 2 == 0) apply(durable[file], *p);
          continue;
        }
        // Split at page boundaries of the file; each piece lands or not.
        std::uint64_t pos = p->offset;
        const std::uint64_t end = p->offset + p->bytes.size();
        while (pos < end) {
          const std::uint64_t piece_end = std::min(end, (pos / kPage + 1) * kPage);
          if (rng() % 2 == 0) {
            JournalEntry piece;
            piece.offset = pos;
            piece.bytes = p->bytes.substr(pos - p->offset, piece_end - pos);
            apply(durable[file], piece);
          }
          pos = piece_end;
        }
      }
    }
  }
  return durable;
}

}  // namespace shredkv::crash

// ---- the interposed C functions --------------------------------------------
// Defined in the test executable, they take precedence over libc for liblmdb
// and the library alike.

using shredkv::crash::JournalEntry;

extern "C" int open(const char* path, int flags, ...) {
  mode_t mode = 0;
  if ((flags & (O_CREAT | O_TMPFILE)) != 0) {
    va_list ap;
    va_start(ap, flags);
    mode = static_cast<mode_t>(va_arg(ap, unsigned int));
    va_end(ap);
  }
  return shredkv::crash::OpenImpl("open", path, flags, mode);
}

extern "C" int open64(const char* path, int flags, ...) {
  mode_t mode = 0;
  if ((flags & (O_CREAT | O_TMPFILE)) != 0) {
    va_list ap;
    va_start(ap, flags);
    mode = static_cast<mode_t>(va_arg(ap, unsigned int));
    va_end(ap);
  }
  return shredkv::crash::OpenImpl("open64", path, flags, mode);
}

extern "C" ssize_t pwrite(int fd, const void* buf, size_t count, off_t offset) {
  static const auto real = shredkv::crash::Real<shredkv::crash::PwriteFn>("pwrite");
  const ssize_t n = real(fd, buf, count, offset);
  if (n > 0) {
    shredkv::crash::OnWrite(fd, offset, std::string(static_cast<const char*>(buf), static_cast<std::size_t>(n)));
  }
  return n;
}

extern "C" ssize_t write(int fd, const void* buf, size_t count) {
  static const auto real = shredkv::crash::Real<shredkv::crash::WriteFn>("write");
  static const auto real_lseek = shredkv::crash::Real<shredkv::crash::LseekFn>("lseek");
  if (!shredkv::crash::Tracked(fd)) return real(fd, buf, count);
  const off_t offset = real_lseek(fd, 0, SEEK_CUR);
  const ssize_t n = real(fd, buf, count);
  if (n > 0) {
    shredkv::crash::OnWrite(fd, offset, std::string(static_cast<const char*>(buf), static_cast<std::size_t>(n)));
  }
  return n;
}

extern "C" ssize_t writev(int fd, const struct iovec* iov, int iovcnt) {
  static const auto real = shredkv::crash::Real<shredkv::crash::WritevFn>("writev");
  static const auto real_lseek = shredkv::crash::Real<shredkv::crash::LseekFn>("lseek");
  if (!shredkv::crash::Tracked(fd)) return real(fd, iov, iovcnt);
  const off_t offset = real_lseek(fd, 0, SEEK_CUR);
  const ssize_t n = real(fd, iov, iovcnt);
  if (n > 0) {
    std::string bytes;
    for (int i = 0; i < iovcnt && bytes.size() < static_cast<std::size_t>(n); ++i) {
      bytes.append(static_cast<const char*>(iov[i].iov_base), iov[i].iov_len);
    }
    bytes.resize(static_cast<std::size_t>(n));
    shredkv::crash::OnWrite(fd, offset, std::move(bytes));
  }
  return n;
}

extern "C" int fsync(int fd) {
  static const auto real = shredkv::crash::Real<shredkv::crash::SyncFn>("fsync");
  const int rc = real(fd);
  if (rc == 0) shredkv::crash::OnFileEvent(fd, JournalEntry::Kind::kSync, 0);
  return rc;
}

extern "C" int fdatasync(int fd) {
  static const auto real = shredkv::crash::Real<shredkv::crash::SyncFn>("fdatasync");
  const int rc = real(fd);
  if (rc == 0) shredkv::crash::OnFileEvent(fd, JournalEntry::Kind::kSync, 0);
  return rc;
}

extern "C" int ftruncate(int fd, off_t length) {
  static const auto real = shredkv::crash::Real<shredkv::crash::TruncateFn>("ftruncate");
  const int rc = real(fd, length);
  if (rc == 0) shredkv::crash::OnFileEvent(fd, JournalEntry::Kind::kTruncate, static_cast<std::uint64_t>(length));
  return rc;
}

extern "C" int close(int fd) {
  static const auto real = shredkv::crash::Real<shredkv::crash::CloseFn>("close");
  {
    shredkv::crash::JournalState& s = shredkv::crash::State();
    std::lock_guard lock(s.mu);
    s.fds.erase(fd);
  }
  return real(fd);
}

extern "C" int rename(const char* from, const char* to) {
  static const auto real = shredkv::crash::Real<shredkv::crash::RenameFn>("rename");
  {
    shredkv::crash::JournalState& s = shredkv::crash::State();
    std::lock_guard lock(s.mu);
    if (s.active && std::string(to).rfind(s.prefix, 0) == 0) ++s.renames;
  }
  return real(from, to);
}
