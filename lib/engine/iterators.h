// Iterators over a person's events and records and over analytics rows.
// Each batch is read in its own short read transaction under the person's
// stripe lock, and the person's key is looked up again per batch, so an
// erasure between two batches ends the iteration with Erased. Entries wait
// decrypted between calls, so a call that hands one out first checks whether
// an erasure committed since they were read (EngineContext::erasure_epoch).
// Thread safety: an iterator is used by one thread at a time.
#ifndef SHREDKV_ENGINE_ITERATORS_H_
#define SHREDKV_ENGINE_ITERATORS_H_

#include <cstdint>
#include <atomic>
#include <functional>
#include <memory>
#include <set>
#include <string>

#include "shredkv/iterator.h"
#include "shredkv/store.h"

namespace shredkv::engine {

struct EngineContext;

// OK if the person's key and the category keys of `category_slots` (those
// whose rows an iterator has handed out) still exist: what an iterator checks
// when an erasure committed after it read its buffered entries. Erased if the
// person's key is gone, Busy if a category key is (an export stops then).
Status KeysStillThere(EngineContext* ctx, const PersonId& person, const std::set<std::uint32_t>& category_slots);

// Which entries an iterator hands out (null: all). Applied to every entry
// as its batch is read — also to those read again after an erasure
// repositioned the iterator (another process's, beside a read-only open) —
// so nothing it refuses is ever Valid(): a lease's purpose and category
// filter (outside audit 30, F1: the filter ran in Next() only, and an entry
// read again came out unfiltered).
template <typename T>
using EntryFilter = std::function<bool(const T&)>;

// Set (once) when the lease an iterator reads for is released: from then on
// the iterator drops what it buffered (an entry value() handed out stays
// until Next()) and ends with FailedPrecondition, as after Close. Null: the
// iterator reads for no lease.
using LeaseEnded = std::shared_ptr<const std::atomic<bool>>;

std::unique_ptr<EventIterator> NewEventIterator(EngineContext* ctx, const PersonId& id, TimeRange range,
                                                EntryFilter<StoredEvent> keep = nullptr,
                                                LeaseEnded lease_ended = nullptr);
std::unique_ptr<RecordIterator> NewRecordIterator(EngineContext* ctx, const PersonId& id,
                                                  std::string collection, std::string prefix,
                                                  EntryFilter<Record> keep = nullptr,
                                                  LeaseEnded lease_ended = nullptr);
std::unique_ptr<AnalyticsIterator> NewAnalyticsIterator(EngineContext* ctx, const AnalyticsQuery& query);
// Store::FindRecords: the record metadata index (engine/record_index.h).
std::unique_ptr<Iterator<FoundRecord>> NewFoundRecordIterator(EngineContext* ctx, const RecordQuery& query);
// Store::PeopleWithConsent: the consent index (engine/consent_index.h).
std::unique_ptr<Iterator<PersonId>> NewConsentPeopleIterator(EngineContext* ctx, std::string purpose, bool granted);
// See Store::Export (export_iterator.cc).
std::unique_ptr<Iterator<ExportItem>> NewExportIterator(EngineContext* ctx, const PersonId& id);

}  // namespace shredkv::engine

#endif  // SHREDKV_ENGINE_ITERATORS_H_
