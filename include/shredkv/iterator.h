// shredkv — iterators over events, records and analytics rows.
//
// An iterator is positioned on its first entry when returned. It reads in
// batches of Options::iterator_batch_size, each in its own short read
// transaction, and holds no transaction between calls: entries committed
// after the iterator passed a position are not seen there, entries ahead of
// it may be. Values are owned copies, valid until the next call to Next().
//
// Erasure: once Store::Erase or EraseCategory returned, no call of an
// iterator returns the erased data, also not one started before and holding
// a batch read before the erasure. Each Valid() and value() checks whether
// an erasure committed since the batch was read (for a read-only open
// beside a writer process: any commit of the writer's key file); if one may
// have reached it, the batch is read again from the current entry. Entries
// of an erased category are then skipped, an erased person ends the
// iteration with Erased, and an export (Store::Export) stops with Erased
// or, for a category whose items it has handed out, Busy. So the current
// entry can change between calls: if it was erased, the entry after it
// takes its place. An entry value() handed out stays valid, as it was,
// until Next(), and Next() moves past it (not past an entry only Valid()
// has seen since). value() called when an erasure has just ended the
// iteration returns an empty entry. Analytics rows hold no personal data and
// are not dropped.
//
// Thread safety: an iterator is used by one thread at a time.
#ifndef SHREDKV_ITERATOR_H_
#define SHREDKV_ITERATOR_H_

#include "shredkv/status.h"
#include "shredkv/types.h"
#include "shredkv/visibility.h"

namespace shredkv {

template <typename T>
class SHREDKV_EXPORT Iterator {
 public:
  virtual ~Iterator() = default;

  // True while positioned on an entry. False at the end or after an error;
  // check status() to tell which.
  virtual bool Valid() const = 0;

  // Moves to the next entry. REQUIRES: Valid().
  virtual void Next() = 0;

  // The current entry. REQUIRES: Valid().
  virtual const T& value() const = 0;

  // OK unless iteration stopped on an error (corruption, authentication
  // failure, erased person, ...).
  virtual Status status() const = 0;
};

using EventIterator = Iterator<StoredEvent>;
using RecordIterator = Iterator<Record>;
using AnalyticsIterator = Iterator<AnalyticsRow>;

}  // namespace shredkv

#endif  // SHREDKV_ITERATOR_H_
