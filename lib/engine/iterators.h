// Iterators over a person's events and records and over analytics rows.
// Each batch is read in its own short read transaction under the person's
// stripe lock, and the person's key is looked up again per batch, so an
// erasure between two batches ends the iteration with Erased.
// Thread safety: an iterator is used by one thread at a time.
#ifndef SHREDKV_ENGINE_ITERATORS_H_
#define SHREDKV_ENGINE_ITERATORS_H_

#include <memory>
#include <string>

#include "shredkv/iterator.h"
#include "shredkv/store.h"

namespace shredkv::engine {

struct EngineContext;

std::unique_ptr<EventIterator> NewEventIterator(EngineContext* ctx, const PersonId& id, TimeRange range);
std::unique_ptr<RecordIterator> NewRecordIterator(EngineContext* ctx, const PersonId& id,
                                                  std::string collection, std::string prefix);
std::unique_ptr<AnalyticsIterator> NewAnalyticsIterator(EngineContext* ctx, const AnalyticsQuery& query);
// Store::FindRecords: the record metadata index (engine/record_index.h).
std::unique_ptr<Iterator<FoundRecord>> NewFoundRecordIterator(EngineContext* ctx, const RecordQuery& query);
// Store::PeopleWithConsent: the consent index (engine/consent_index.h).
std::unique_ptr<Iterator<PersonId>> NewConsentPeopleIterator(EngineContext* ctx, std::string purpose, bool granted);
// See Store::Export (export_iterator.cc).
std::unique_ptr<Iterator<ExportItem>> NewExportIterator(EngineContext* ctx, const PersonId& id);

}  // namespace shredkv::engine

#endif  // SHREDKV_ENGINE_ITERATORS_H_
