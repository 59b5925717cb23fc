// shredkv — iterators over events, records and analytics rows.
//
// An iterator is positioned on its first entry when returned. It reads in
// batches of Options::iterator_batch_size, each in its own short read
// transaction, and holds no transaction between calls: entries committed
// after the iterator passed a position are not seen there, entries ahead of
// it may be. Values are owned copies, valid until the next call to Next().
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
