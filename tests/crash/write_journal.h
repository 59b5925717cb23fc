// A write/sync interposer for the power-loss simulation. The test binary
// that links write_journal.cc defines open, pwrite, write, writev, fsync,
// fdatasync, ftruncate and rename itself; liblmdb and the library resolve
// them to these definitions, which call the real functions (dlsym
// RTLD_NEXT) and, while a journal is running, record every write, truncate
// and sync of a file under the journaled directory, in order. From the
// journal and a snapshot of the directory taken when it started,
// Reconstruct() builds the files as a power loss at any point of the
// journal would leave them: synced writes kept, unsynced ones dropped or
// torn (a random subset of their 4 KiB pages applied).
//
// Model of the disk: a write becomes durable at the next fsync/fdatasync of
// its file, or at once on a file opened with O_DSYNC/O_SYNC (LMDB writes
// its meta page that way under kFullSync). Directory entries and file
// creation are taken as durable (the journal starts on an existing store);
// renames are not modelled and are counted so a test can refuse them.
// Thread safety: recording is mutex-protected; Start/Stop/Take are called by
// one test thread.
#ifndef SHREDKV_TESTS_CRASH_WRITE_JOURNAL_H_
#define SHREDKV_TESTS_CRASH_WRITE_JOURNAL_H_

#include <cstdint>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "crash/directory_image.h"

namespace shredkv::crash {

struct JournalEntry {
  enum class Kind : std::uint8_t { kWrite, kTruncate, kSync, kAck, kIntent };
  Kind kind = Kind::kWrite;
  std::string file;          // path relative to the journaled directory
  std::uint64_t offset = 0;  // kWrite: file offset; kTruncate: new length
  std::string bytes;         // kWrite
  bool durable = false;      // kWrite through an O_DSYNC descriptor
  std::uint64_t n = 0;       // kAck/kIntent: the operation's number
};

// Starts recording writes to files opened under `directory` from now on.
void StartJournal(const std::string& directory);
// Stops recording and returns what was recorded; also how many renames of
// journaled files were seen (the model does not cover them).
std::vector<JournalEntry> StopJournal(std::uint64_t* renames);
// Records a trace marker (operation started / acknowledged) in order with the writes.
void JournalMarker(JournalEntry::Kind kind, std::uint64_t n);

enum class PowerLossMode : std::uint8_t {
  kDropUnsynced,  // every write not yet synced is lost
  kTearUnsynced,  // each 4 KiB page of an unsynced write survives or not at random
};

// The directory as a power loss just before journal entry `cut` would leave
// it (entries [0, cut) happened), starting from `base`.
DirectoryImage Reconstruct(const DirectoryImage& base, const std::vector<JournalEntry>& journal,
                           std::size_t cut, PowerLossMode mode, std::mt19937_64& rng);

}  // namespace shredkv::crash

#endif  // SHREDKV_TESTS_CRASH_WRITE_JOURNAL_H_
