#include "shredkv/types.h"
#include "shredkv/listener.h"

#include "util/coding.h"

namespace shredkv {
namespace {

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

template <typename Tag>
Result<RandomId<Tag>> RandomId<Tag>::FromHex(std::string_view hex) {
  if (hex.size() != 2 * kSize) {
    return Status::InvalidArgument("id must be 32 hex digits, got " + std::to_string(hex.size()) +
                                   " characters");
  }
  Bytes bytes{};
  for (std::size_t i = 0; i < kSize; ++i) {
    int hi = HexDigit(hex[2 * i]);
    int lo = HexDigit(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return Status::InvalidArgument("id contains a non-hex character");
    bytes[i] = static_cast<std::uint8_t>(hi * 16 + lo);
  }
  return RandomId(bytes);
}

template <typename Tag>
std::string RandomId<Tag>::ToHex() const {
  return util::HexEncode(view());
}

template class RandomId<PersonIdTag>;
template class RandomId<AnonymousIdTag>;

std::string_view ErasureLevelName(ErasureLevel level) {
  switch (level) {
    case ErasureLevel::kLogical: return "logical";
    case ErasureLevel::kCryptographic: return "cryptographic";
    case ErasureLevel::kPurged: return "purged";
  }
  return "unknown";
}

std::string_view MaintenanceJobName(MaintenanceJob job) {
  switch (job) {
    case MaintenanceJob::kPurge: return "purge";
    case MaintenanceJob::kRotation: return "rotation";
    case MaintenanceJob::kCompaction: return "compaction";
    case MaintenanceJob::kSweep: return "sweep";
    case MaintenanceJob::kAnalytics: return "analytics";
    case MaintenanceJob::kOrphanKeys: return "orphan_keys";
  }
  return "unknown";
}

std::string_view LogLevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug: return "debug";
    case LogLevel::kInfo: return "info";
    case LogLevel::kWarn: return "warn";
    case LogLevel::kError: return "error";
  }
  return "unknown";
}

std::string_view AuditActionName(AuditAction action) {
  switch (action) {
    case AuditAction::kErase: return "erase";
    case AuditAction::kUnsuppress: return "unsuppress";
    case AuditAction::kRotation: return "rotation";
    case AuditAction::kPurge: return "purge";
    case AuditAction::kCompaction: return "compaction";
    case AuditAction::kSweep: return "sweep";
    case AuditAction::kEraseCategory: return "erase_category";
    case AuditAction::kProcessingRead: return "processing_read";
  }
  return "unknown";
}

std::string_view ConsentActionName(ConsentRecord::Action action) {
  switch (action) {
    case ConsentRecord::Action::kGrant: return "grant";
    case ConsentRecord::Action::kWithdraw: return "withdraw";
    case ConsentRecord::Action::kRestrict: return "restrict";
    case ConsentRecord::Action::kUnrestrict: return "unrestrict";
  }
  return "unknown";
}

std::string_view AnalyticsOnEraseName(AnalyticsOnErase mode) {
  switch (mode) {
    case AnalyticsOnErase::kKeep: return "keep";
    case AnalyticsOnErase::kUnlink: return "unlink";
    case AnalyticsOnErase::kDelete: return "delete";
  }
  return "unknown";
}

}  // namespace shredkv
