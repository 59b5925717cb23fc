#include "shredkv/status.h"

namespace shredkv {

std::string_view StatusCodeName(StatusCode code) noexcept {
  switch (code) {
    case StatusCode::kOk: return "OK";
    case StatusCode::kNotFound: return "NotFound";
    case StatusCode::kErased: return "Erased";
    case StatusCode::kRestricted: return "Restricted";
    case StatusCode::kSuppressed: return "Suppressed";
    case StatusCode::kAlreadyExists: return "AlreadyExists";
    case StatusCode::kInvalidArgument: return "InvalidArgument";
    case StatusCode::kCorruption: return "Corruption";
    case StatusCode::kAuthenticationFailed: return "AuthenticationFailed";
    case StatusCode::kWrongKey: return "WrongKey";
    case StatusCode::kStoreFull: return "StoreFull";
    case StatusCode::kBusy: return "Busy";
    case StatusCode::kIOError: return "IOError";
    case StatusCode::kFailedPrecondition: return "FailedPrecondition";
    case StatusCode::kInternal: return "Internal";
    case StatusCode::kUnsupportedVersion: return "UnsupportedVersion";
    case StatusCode::kReadOnly: return "ReadOnly";
    case StatusCode::kKeyDestroyed: return "KeyDestroyed";
  }
  return "Unknown";
}

Status Status::WithContext(std::string_view context) const {
  if (ok()) return *this;
  std::string msg(context);
  msg += ": ";
  msg += message_;
  return Status(code_, std::move(msg));
}

Status Status::WithMessage(std::string message) const {
  if (ok()) return *this;
  return Status(code_, std::move(message));
}

std::string Status::ToString() const {
  if (ok()) return "OK";
  std::string out(StatusCodeName(code_));
  if (!message_.empty()) {
    out += ": ";
    out += message_;
  }
  return out;
}

}  // namespace shredkv
