// shredkv — Status and Result<T>: the error model of the public API.
//
// No exception crosses the API. Every fallible call returns a Status or a
// Result<T>; both are [[nodiscard]], so a caller cannot silently drop an error.
// Thread safety: immutable values, safe to copy and share between threads.
#ifndef SHREDKV_STATUS_H_
#define SHREDKV_STATUS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

#include "shredkv/visibility.h"

namespace shredkv {

// Error codes. The numeric values are stable: tools map them to exit codes and
// they may be logged. Do not renumber.
enum class StatusCode : std::uint8_t {
  kOk = 0,
  kNotFound = 1,            // no such person, record, identifier or key
  kErased = 2,              // the person was erased (crypto-shredded)
  kRestricted = 3,          // processing refused by a restriction or consent
  kSuppressed = 4,          // the identifier is on the suppression list
  kAlreadyExists = 5,       // identifier taken by another person, or duplicate
  kInvalidArgument = 6,     // the caller passed something malformed
  kCorruption = 7,          // stored bytes fail a checksum or do not parse
  kAuthenticationFailed = 8,// a ciphertext failed its AEAD tag (tampered/moved)
  kWrongKey = 9,            // the root key does not open this store
  kStoreFull = 10,          // map or disk full and growth was impossible
  kBusy = 11,               // a lock/lease could not be taken in time
  kIOError = 12,            // the operating system reported an I/O failure
  kFailedPrecondition = 13, // store closed, used after fork, opened twice, ...
  kInternal = 14,           // a bug in shredkv: please report it
  kUnsupportedVersion = 15, // the store was written by a newer shredkv (or an
                            // older one this version cannot migrate)
  kReadOnly = 16,           // the store's directory or files cannot be written
                            // (a read-only filesystem, no write permission)
  kKeyDestroyed = 17,       // a key this copy of the store needs was destroyed
                            // in its custody (a backup older than a rotation)
};

// Short, stable name of a code, e.g. "NotFound".
SHREDKV_EXPORT std::string_view StatusCodeName(StatusCode code) noexcept;

class [[nodiscard]] SHREDKV_EXPORT Status {
 public:
  Status() noexcept = default;  // OK

  static Status OK() noexcept { return Status(); }
  static Status NotFound(std::string msg) { return {StatusCode::kNotFound, std::move(msg)}; }
  static Status Erased(std::string msg) { return {StatusCode::kErased, std::move(msg)}; }
  static Status Restricted(std::string msg) { return {StatusCode::kRestricted, std::move(msg)}; }
  static Status Suppressed(std::string msg) { return {StatusCode::kSuppressed, std::move(msg)}; }
  static Status AlreadyExists(std::string msg) { return {StatusCode::kAlreadyExists, std::move(msg)}; }
  static Status InvalidArgument(std::string msg) { return {StatusCode::kInvalidArgument, std::move(msg)}; }
  static Status Corruption(std::string msg) { return {StatusCode::kCorruption, std::move(msg)}; }
  static Status AuthenticationFailed(std::string msg) {
    return {StatusCode::kAuthenticationFailed, std::move(msg)};
  }
  static Status WrongKey(std::string msg) { return {StatusCode::kWrongKey, std::move(msg)}; }
  static Status StoreFull(std::string msg) { return {StatusCode::kStoreFull, std::move(msg)}; }
  static Status Busy(std::string msg) { return {StatusCode::kBusy, std::move(msg)}; }
  static Status IOError(std::string msg) { return {StatusCode::kIOError, std::move(msg)}; }
  static Status FailedPrecondition(std::string msg) {
    return {StatusCode::kFailedPrecondition, std::move(msg)};
  }
  static Status Internal(std::string msg) { return {StatusCode::kInternal, std::move(msg)}; }
  static Status UnsupportedVersion(std::string msg) {
    return {StatusCode::kUnsupportedVersion, std::move(msg)};
  }
  static Status ReadOnly(std::string msg) { return {StatusCode::kReadOnly, std::move(msg)}; }
  static Status KeyDestroyed(std::string msg) { return {StatusCode::kKeyDestroyed, std::move(msg)}; }

  bool ok() const noexcept { return code_ == StatusCode::kOk; }
  StatusCode code() const noexcept { return code_; }
  // What failed and where; empty for OK.
  const std::string& message() const noexcept { return message_; }

  bool IsNotFound() const noexcept { return code_ == StatusCode::kNotFound; }
  bool IsUnsupportedVersion() const noexcept { return code_ == StatusCode::kUnsupportedVersion; }
  bool IsErased() const noexcept { return code_ == StatusCode::kErased; }
  bool IsRestricted() const noexcept { return code_ == StatusCode::kRestricted; }
  bool IsSuppressed() const noexcept { return code_ == StatusCode::kSuppressed; }
  bool IsAlreadyExists() const noexcept { return code_ == StatusCode::kAlreadyExists; }
  bool IsInvalidArgument() const noexcept { return code_ == StatusCode::kInvalidArgument; }
  bool IsCorruption() const noexcept { return code_ == StatusCode::kCorruption; }
  bool IsAuthenticationFailed() const noexcept {
    return code_ == StatusCode::kAuthenticationFailed;
  }
  bool IsWrongKey() const noexcept { return code_ == StatusCode::kWrongKey; }
  bool IsStoreFull() const noexcept { return code_ == StatusCode::kStoreFull; }
  bool IsBusy() const noexcept { return code_ == StatusCode::kBusy; }
  bool IsIOError() const noexcept { return code_ == StatusCode::kIOError; }
  bool IsFailedPrecondition() const noexcept { return code_ == StatusCode::kFailedPrecondition; }
  bool IsReadOnly() const noexcept { return code_ == StatusCode::kReadOnly; }
  bool IsKeyDestroyed() const noexcept { return code_ == StatusCode::kKeyDestroyed; }

  // Returns a copy whose message is "<context>: <message>".
  Status WithContext(std::string_view context) const;
  // Returns a status of the same code with `message` instead (OK stays OK).
  Status WithMessage(std::string message) const;

  // "OK" or "<CodeName>: <message>".
  std::string ToString() const;

  friend bool operator==(const Status& a, const Status& b) noexcept {
    return a.code_ == b.code_ && a.message_ == b.message_;
  }

 private:
  Status(StatusCode code, std::string msg) : code_(code), message_(std::move(msg)) {}

  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

// Either a value of type T or a non-OK Status. Constructing a Result from an
// OK status is a programming error and yields an Internal status instead.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}  // NOLINT(google-explicit-constructor)
  Result(Status status)                          // NOLINT(google-explicit-constructor)
      : status_(status.ok() ? Status::Internal("Result built from an OK status without a value")
                            : std::move(status)) {}

  bool ok() const noexcept { return value_.has_value(); }
  const Status& status() const noexcept { return status_; }

  // REQUIRES: ok().
  T& value() & { return *value_; }
  const T& value() const& { return *value_; }
  T&& value() && { return std::move(*value_); }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }
  T& operator*() & { return *value_; }
  const T& operator*() const& { return *value_; }

 private:
  std::optional<T> value_;
  Status status_;
};

}  // namespace shredkv

#endif  // SHREDKV_STATUS_H_
