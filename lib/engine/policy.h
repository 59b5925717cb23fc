// Purposes, data categories and the declared category of each kind of item,
// from Options (design §6). Immutable after Create.
// Thread safety: read-only after construction.
#ifndef SHREDKV_ENGINE_POLICY_H_
#define SHREDKV_ENGINE_POLICY_H_

#include <map>
#include <set>
#include <string>

#include "shredkv/options.h"
#include "shredkv/types.h"

namespace shredkv::engine {

class Policy {
 public:
  // InvalidArgument for malformed names, duplicates, or a declared category
  // that is not registered.
  static Result<Policy> Create(const Options& options);

  // NotFound-free lookups: InvalidArgument for an unknown purpose/category.
  Result<LawfulBasis> Basis(std::string_view purpose) const;
  Status CheckCategory(std::string_view category) const;

  // The category of an item: the explicit one if given, else the declared
  // one, else "general".
  std::string EventCategory(std::string_view name, std::string_view explicit_category) const;
  std::string CollectionCategory(std::string_view collection, std::string_view explicit_category) const;
  std::string AttributeCategory(std::string_view attribute) const;

  const std::string& tracking_purpose() const { return tracking_purpose_; }

  // Whether processing for `purpose` is refused by `r` and the consent map.
  bool Refused(const RestrictionState& r, const std::map<std::string, bool>& consent,
               std::string_view purpose) const;

 private:
  std::map<std::string, LawfulBasis, std::less<>> purposes_;
  std::set<std::string, std::less<>> categories_;
  std::map<std::string, std::string, std::less<>> event_categories_, collection_categories_, attribute_categories_;
  std::string tracking_purpose_;
};

}  // namespace shredkv::engine

#endif  // SHREDKV_ENGINE_POLICY_H_
