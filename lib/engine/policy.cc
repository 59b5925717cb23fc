#include "engine/policy.h"

#include <algorithm>

namespace shredkv::engine {
namespace {

bool ValidName(std::string_view name) {
  if (name.empty() || name.size() > 32) return false;
  return std::all_of(name.begin(), name.end(),
                     [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'; });
}

}  // namespace

Result<Policy> Policy::Create(const Options& options) {
  Policy p;
  std::vector<PurposeSpec> purposes = options.purposes;
  if (purposes.empty()) {
    purposes = {{"marketing", LawfulBasis::kConsent},
                {"personalization", LawfulBasis::kConsent},
                {"analytics", LawfulBasis::kLegitimateInterest},
                {"support", LawfulBasis::kContract},
                {"billing", LawfulBasis::kContract}};
  }
  for (const PurposeSpec& spec : purposes) {
    if (!ValidName(spec.name)) return Status::InvalidArgument("purpose name '" + spec.name + "' must match [a-z0-9_]{1,32}");
    if (static_cast<int>(spec.basis) < 1 || static_cast<int>(spec.basis) > 6) {
      return Status::InvalidArgument("purpose '" + spec.name + "' has an unknown lawful basis");
    }
    if (!p.purposes_.emplace(spec.name, spec.basis).second) {
      return Status::InvalidArgument("purpose '" + spec.name + "' is defined twice");
    }
  }
  std::vector<std::string> categories = options.categories;
  if (categories.empty()) categories = {"contact", "location", "behaviour", "payment"};
  p.categories_.insert(kGeneralCategory);
  for (const std::string& c : categories) {
    if (!ValidName(c)) return Status::InvalidArgument("category name '" + c + "' must match [a-z0-9_]{1,32}");
    p.categories_.insert(c);
  }
  for (const auto* m : {&options.event_categories, &options.collection_categories, &options.attribute_categories}) {
    for (const auto& [item, category] : *m) {
      if (p.categories_.count(category) == 0) {
        return Status::InvalidArgument("'" + item + "' is declared in unregistered category '" + category + "'");
      }
    }
  }
  p.event_categories_ = options.event_categories;
  p.collection_categories_ = options.collection_categories;
  p.attribute_categories_ = options.attribute_categories;
  p.tracking_purpose_ = options.tracking_purpose;
  if (!p.tracking_purpose_.empty() && p.purposes_.count(p.tracking_purpose_) == 0) {
    return Status::InvalidArgument("tracking purpose '" + p.tracking_purpose_ + "' is not a registered purpose");
  }
  return p;
}

Result<LawfulBasis> Policy::Basis(std::string_view purpose) const {
  auto it = purposes_.find(purpose);
  if (it == purposes_.end()) return Status::InvalidArgument("unknown purpose '" + std::string(purpose) + "'");
  return it->second;
}

Status Policy::CheckCategory(std::string_view category) const {
  if (categories_.count(category) == 0) {
    return Status::InvalidArgument("unknown category '" + std::string(category) + "'");
  }
  return Status::OK();
}

namespace {
std::string Lookup(const std::map<std::string, std::string, std::less<>>& m, std::string_view key,
                   std::string_view explicit_category) {
  if (!explicit_category.empty()) return std::string(explicit_category);
  auto it = m.find(key);
  return it == m.end() ? std::string(kGeneralCategory) : it->second;
}
}  // namespace

std::string Policy::EventCategory(std::string_view name, std::string_view explicit_category) const {
  return Lookup(event_categories_, name, explicit_category);
}
std::string Policy::CollectionCategory(std::string_view collection, std::string_view explicit_category) const {
  return Lookup(collection_categories_, collection, explicit_category);
}
std::string Policy::AttributeCategory(std::string_view attribute) const {
  return Lookup(attribute_categories_, attribute, {});
}

bool Policy::Refused(const RestrictionState& r, const std::map<std::string, bool>& consent,
                     std::string_view purpose) const {
  if (r.all) return true;
  if (std::find(r.purposes.begin(), r.purposes.end(), purpose) != r.purposes.end()) return true;
  auto basis = Basis(purpose);
  if (!basis.ok()) return false;
  const auto decision = consent.find(std::string(purpose));
  switch (*basis) {
    case LawfulBasis::kConsent:  // needs a grant
      return decision == consent.end() || !decision->second;
    case LawfulBasis::kLegitimateInterest:
    case LawfulBasis::kPublicTask:
      // Art. 21(1): an objection (a withdrawal) stops the processing; a
      // later grant lifts it. Before stop 28 (audit F3) it was recorded
      // and not consulted, though the docs called it the way to object.
      return decision != consent.end() && !decision->second;
    case LawfulBasis::kContract:
    case LawfulBasis::kLegalObligation:
    case LawfulBasis::kVitalInterest:
      return false;  // no right to object (Art. 21): restrict the purpose to stop it
  }
  return false;
}

}  // namespace shredkv::engine
