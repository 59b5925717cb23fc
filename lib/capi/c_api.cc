// The C API (include/shredkv/c.h) over the public C++ API: conversions of
// arguments and results, and the error convention. Nothing here reaches
// below include/shredkv/ but the export format's JSON values and its strict
// parser (portability/json_values.h, strict_json.h) for
// shredkv_writebatch_append_events_json.
//
// Handles that mirror a C++ value type (attrs, events, records, ...) are
// that value itself behind an opaque pointer type that is never defined
// (a reinterpret_cast round trip), so a borrowed view of an item an
// iterator holds costs nothing. Handles with state of their own (store,
// options, iterator, lease, lists) are structs defined here.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <functional>
#include <initializer_list>
#include <iterator>
#include <limits>
#include <memory>
#include <new>
#include <sstream>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "portability/json_values.h"
#include "portability/strict_json.h"
#include "shredkv/c.h"
#include "shredkv/shredkv.h"
#include "util/chunked_output.h"
#include "util/fork_generation.h"

namespace sk = shredkv;

// ---- handle types with state ----------------------------------------------

// A store handle is one of three things: a Store (shredkv_open), a
// ShardedStore (shredkv_open_sharded), or a view of one shard of a
// ShardedStore (shredkv_shard), which shares ownership of it so that the
// shard outlives the view whatever order the handles are closed in.
struct shredkv_store {
  std::unique_ptr<sk::Store> store;
  std::shared_ptr<sk::ShardedStore> sharded;
  bool shard_view = false;  // `sharded` is shared with the handle that opened it
  sk::Store* shard = nullptr;  // the shard a view works on
  std::uint64_t fork_generation = shredkv::util::ForkGeneration();  // of the opening process

  bool empty() const { return store == nullptr && sharded == nullptr; }
  bool is_sharded() const { return sharded != nullptr && !shard_view; }
  // The plain store this handle works on: the Store, or a view's shard.
  // REQUIRES: !empty() && !is_sharded().
  sk::Store& plain() { return shard_view ? *shard : *store; }
};

struct shredkv_options {
  sk::Options options;
  // The first out-of-range enum a setter was given: shredkv_open and
  // shredkv_restore_backup fail with it (InvalidArgument), as the setters
  // cannot report.
  std::string invalid;
  // RestoreOptions::accept_untagged_backup / _log, for shredkv_restore_backup.
  bool restore_accept_untagged_backup = false;
  bool restore_accept_untagged_log = false;
};

struct shredkv_key_provider {
  std::shared_ptr<sk::KeyProvider> provider;
};

struct shredkv_custody {
  std::shared_ptr<sk::EpochKeyCustody> custody;
};

struct shredkv_retention {
  sk::RetentionRules rules;
};

struct shredkv_lease {
  std::unique_ptr<sk::Lease> lease;
};

struct shredkv_writebatch {
  sk::WriteBatch batch;
  std::string invalid;  // as shredkv_options::invalid, reported by shredkv_write
};

struct shredkv_rectification {
  sk::Rectification rectification;
  // The first NULL argument a setter was given: shredkv_rectify and
  // shredkv_write (shredkv_writebatch_rectify) fail with it.
  std::string invalid;
};

struct shredkv_notice_list {
  std::vector<sk::Notice> notices;
};

struct shredkv_consent_list {
  std::vector<sk::ConsentRecord> records;
};

struct shredkv_audit_list {
  std::vector<sk::AuditRecord> records;
};

struct shredkv_stats {
  sk::StoreStats stats;
  std::vector<std::pair<const char*, std::uint64_t>> fields;
};

struct shredkv_verify_report {
  sk::VerifyReport report;
};

// One iterator type for every scan; Item<T> maps the C++ item to what the
// kind-specific accessors return.
struct shredkv_iterator {
  enum class Kind { kEvent, kRecord, kFoundRecord, kAnalytics, kExport, kPerson };
  explicit shredkv_iterator(Kind k) : kind(k) {}
  virtual ~shredkv_iterator() = default;
  shredkv_iterator(const shredkv_iterator&) = delete;
  shredkv_iterator& operator=(const shredkv_iterator&) = delete;
  virtual bool Valid() const = 0;
  virtual void Next() = 0;
  virtual sk::Status status() const = 0;
  virtual const void* Current() const = 0;
  const Kind kind;
};

namespace {

// ---- errors ------------------------------------------------------------------

char* CopyToMalloc(std::string_view s) {
  auto* out = static_cast<char*>(std::malloc(s.size() + 1));
  if (out == nullptr) throw std::bad_alloc();
  if (!s.empty()) std::memcpy(out, s.data(), s.size());
  out[s.size()] = '\0';
  return out;
}

constexpr int kOk = SHREDKV_OK;

int Fail(char** errptr, const sk::Status& status) {
  if (errptr != nullptr) {
    std::free(*errptr);
    *errptr = nullptr;
    try {
      *errptr = CopyToMalloc(status.ToString());
    } catch (...) {
      // Out of memory: the code still tells what failed.
    }
  }
  return static_cast<int>(status.code());
}

int Report(char** errptr, const sk::Status& status) {
  return status.ok() ? kOk : Fail(errptr, status);
}

// Runs a call that reports through a code; no exception leaves it.
template <typename F>
int Guarded(char** errptr, F&& body) noexcept {
  try {
    try {
      return body();
    } catch (const std::bad_alloc&) {
      return Fail(errptr, sk::Status::Internal("out of memory"));
    } catch (const std::exception& e) {
      return Fail(errptr, sk::Status::Internal(std::string("unexpected exception: ") + e.what()));
    }
  } catch (...) {
    // Also an allocation failing while the message above was built: the
    // code alone then tells what failed.
    return SHREDKV_INTERNAL;
  }
}

// Runs a call that cannot report a failure: an exception aborts (c.h).
template <typename F>
auto Must(F&& body) noexcept -> decltype(body()) {
  try {
    return body();
  } catch (...) {
    std::abort();
  }
}

// ---- conversions -------------------------------------------------------------

// Enums cross as int: a value outside the C enum is refused, never cast
// into a C++ enum (which would wrap it into another value or one no switch
// handles).
bool InRange(int v, int lo, int hi) { return v >= lo && v <= hi; }
std::string OutOfRange(const char* what, int v) {
  return std::string(what) + ": " + std::to_string(v) + " is not a value of its enum";
}
// Calls a shard's view refuses (outside audit 40b, F1, F5): what adds
// people or identifiers (the check that an identifier is unique across the
// shards would be skipped), an erasure (a request id used in another shard
// would be used again) and a root-key rotation (the sharded store's SHARDS
// would stay under the old key, and no key would open it). They are made
// on the sharded store's handle.
bool RefusedOnShardView(std::string_view call) {
  static constexpr std::string_view kRefused[] = {
      "shredkv_create_person", "shredkv_link_identifier", "shredkv_rectify",      "shredkv_import_person",
      "shredkv_import_person2", "shredkv_write",          "shredkv_erase",        "shredkv_erase_by_identifier",
      "shredkv_erase_category", "shredkv_rotate_root_key"};
  return std::find(std::begin(kRefused), std::end(kRefused), call) != std::end(kRefused);
}
sk::Status NotOnShardView(std::string_view call) {
  return sk::Status::FailedPrecondition(
      std::string(call) +
      ": not on a shard's view (it would skip the sharded store's checks across shards): call it on the sharded "
      "store's handle" +
      (call == "shredkv_rotate_root_key" ? " (closed: shredkv_rotate_root_key_sharded)" : ""));
}

// A call a sharded store does not route, made on a sharded store's handle.
sk::Status NotOnShardedStore(std::string_view call) {
  const std::string what = call == "shredkv_backup"            ? "use shredkv_backup_sharded"
                           : call == "shredkv_rotate_root_key" ? "close it and use shredkv_rotate_root_key_sharded"
                                                               : "call it on each shard (shredkv_shard)";
  return sk::Status::FailedPrecondition(std::string(call) + ": not on a sharded store as a whole: " + what);
}
void NoteInvalid(std::string* slot, std::string message) {
  if (slot->empty()) *slot = std::move(message);
}

std::string Str(const char* s) { return s == nullptr ? std::string() : std::string(s); }
std::string Bytes(const char* data, std::size_t len) {
  return (data == nullptr || len == 0) ? std::string() : std::string(data, len);
}
std::string_view View(const char* data, std::size_t len) {
  return (data == nullptr || len == 0) ? std::string_view() : std::string_view(data, len);
}

sk::PersonId ToPerson(const shredkv_person_id_t* id) {
  sk::PersonId::Bytes bytes{};
  if (id != nullptr) std::memcpy(bytes.data(), id->bytes, bytes.size());
  return sk::PersonId(bytes);
}
void FromPerson(const sk::PersonId& id, shredkv_person_id_t* out) {
  if (out != nullptr) std::memcpy(out->bytes, id.bytes().data(), id.bytes().size());
}
// A pointer argument of a call, for CheckArgs: required unless its count
// (an array's element count, data's length in bytes) is 0. A handle, an
// out-parameter or a single input has no count: it is always required.
struct Arg {
  Arg(const void* p, const char* n) : ptr(p), name(n) {}
  Arg(const void* p, const char* n, std::size_t c, const char* cn) : ptr(p), name(n), count(c), count_name(cn) {}
  const void* ptr;
  const char* name;
  std::size_t count = 1;
  const char* count_name = nullptr;
};
using Args = std::initializer_list<Arg>;

// InvalidArgument for a NULL argument a call needs, naming the call and the
// argument: "shredkv_get: value is NULL", "shredkv_put: value is NULL but
// value_len is 5". Every call that returns a code checks its pointer
// arguments with it (CheckArgs) before it does anything.
sk::Status NullArgument(std::string_view call, const Arg& arg) {
  std::string message = std::string(call) + ": " + arg.name + " is NULL";
  if (arg.count_name != nullptr) message += std::string(" but ") + arg.count_name + " is " + std::to_string(arg.count);
  return sk::Status::InvalidArgument(std::move(message));
}
sk::Status NullArgument(std::string_view call, const char* argument) {
  return NullArgument(call, Arg(nullptr, argument));
}

// NullArgument for the first of `args` that is NULL although the call needs
// it; OK if none is.
sk::Status CheckArgs(std::string_view call, Args args) {
  for (const Arg& arg : args) {
    if (arg.ptr == nullptr && arg.count > 0) return NullArgument(call, arg);
  }
  return sk::Status::OK();
}

// CheckArgs for identifiers: the argument `name` (an array of n, or one if
// !array) and each identifier's value (NULL with a nonzero value_len).
sk::Status CheckIdentifiers(std::string_view call, const char* name, const shredkv_identifier_t* ids, std::size_t n,
                            bool array) {
  if (ids == nullptr) {
    return array ? CheckArgs(call, {Arg(ids, name, n, "n")}) : NullArgument(call, name);
  }
  for (std::size_t i = 0; i < n; ++i) {
    if (ids[i].value == nullptr && ids[i].value_len > 0) {
      const std::string element = array ? std::string(name) + "[" + std::to_string(i) + "]" : std::string(name);
      return NullArgument(
          call, Arg(nullptr, (element + ".value").c_str(), ids[i].value_len, (element + ".value_len").c_str()));
    }
  }
  return sk::Status::OK();
}

std::vector<sk::PersonId> ToPeople(const shredkv_person_id_t* people, std::size_t n) {
  std::vector<sk::PersonId> out;
  if (people == nullptr) return out;  // an empty list: the call's own InvalidArgument
  out.reserve(n);
  for (std::size_t i = 0; i < n; ++i) out.push_back(ToPerson(&people[i]));
  return out;
}

sk::Identifier ToIdentifier(const shredkv_identifier_t* identifier) {
  if (identifier == nullptr) return {};
  return {Str(identifier->type), Bytes(identifier->value, identifier->value_len)};
}
std::vector<sk::Identifier> ToIdentifiers(const shredkv_identifier_t* identifiers, std::size_t n) {
  std::vector<sk::Identifier> out;
  out.reserve(n);
  for (std::size_t i = 0; i < n; ++i) out.push_back(ToIdentifier(&identifiers[i]));
  return out;
}

std::vector<std::string> ToNames(const char* const* names, std::size_t n) {
  std::vector<std::string> out;
  out.reserve(n);
  for (std::size_t i = 0; i < n; ++i) out.push_back(Str(names[i]));
  return out;
}

// The value types behind the opaque pointers.
template <typename T, typename C>
const T& As(const C* handle) {
  return *reinterpret_cast<const T*>(handle);
}
template <typename T, typename C>
T& AsMutable(C* handle) {
  return *reinterpret_cast<T*>(handle);
}
template <typename C, typename T>
const C* Handle(const T& value) {
  return reinterpret_cast<const C*>(&value);
}
template <typename C, typename T>
C* NewHandle(T value) {
  return reinterpret_cast<C*>(new T(std::move(value)));
}

const sk::Attributes& Attrs(const shredkv_attrs_t* attrs) { return As<sk::Attributes>(attrs); }
sk::Attributes AttrsOrEmpty(const shredkv_attrs_t* attrs) {
  return attrs == nullptr ? sk::Attributes{} : Attrs(attrs);
}

const sk::Value* AttrAt(const shredkv_attrs_t* attrs, std::size_t i, const char** name = nullptr) {
  const auto& map = Attrs(attrs);
  if (i >= map.size()) return nullptr;
  auto it = map.begin();
  std::advance(it, static_cast<std::ptrdiff_t>(i));
  if (name != nullptr) *name = it->first.c_str();
  return &it->second;
}

sk::Event ToEvent(const char* name, std::int64_t ts_ms, const shredkv_attrs_t* properties,
                  const char* const* analytics_fields, std::size_t n_fields, const char* category) {
  sk::Event event;
  event.name = Str(name);
  event.ts_ms = ts_ms;
  event.properties = AttrsOrEmpty(properties);
  event.analytics_fields = ToNames(analytics_fields, n_fields);
  event.category = Str(category);
  return event;
}

sk::ProfilePatch ToPatch(const shredkv_attrs_t* set, const char* const* unset, std::size_t n_unset) {
  return sk::ProfilePatch{AttrsOrEmpty(set), ToNames(unset, n_unset)};
}

sk::RestrictionSpec ToSpec(unsigned char all, const char* const* purposes, std::size_t n_purposes,
                           const char* const* categories, std::size_t n_categories, const char* reason) {
  sk::RestrictionSpec spec;
  spec.all = all != 0;
  spec.purposes = ToNames(purposes, n_purposes);
  spec.categories = ToNames(categories, n_categories);
  spec.reason = Str(reason);
  return spec;
}

sk::EraseOptions ToEraseOptions(const char* request_id, unsigned char suppress, int analytics) {
  // REQUIRES: InRange(analytics, 0, 2) (checked by the callers).
  sk::EraseOptions options;
  options.request_id = Str(request_id);
  options.suppress = suppress != 0;
  options.analytics = static_cast<sk::AnalyticsOnErase>(analytics);
  return options;
}

const char* Element(const std::vector<std::string>& v, std::size_t i) {
  return i < v.size() ? v[i].c_str() : nullptr;
}

template <typename T>
void Fill(T* out, const T& value) {
  if (out != nullptr) *out = value;
}

// ---- iterators -----------------------------------------------------------------

template <typename T>
struct IteratorOf final : shredkv_iterator {
  IteratorOf(Kind k, std::unique_ptr<sk::Iterator<T>> it) : shredkv_iterator(k), inner(std::move(it)) {}
  bool Valid() const override { return inner != nullptr && inner->Valid(); }
  void Next() override {
    if (inner != nullptr) inner->Next();
  }
  sk::Status status() const override {
    return inner == nullptr ? sk::Status::Internal("no iterator") : inner->status();
  }
  const void* Current() const override { return Valid() ? &inner->value() : nullptr; }
  std::unique_ptr<sk::Iterator<T>> inner;
};

template <typename T>
shredkv_iterator_t* WrapIterator(shredkv_iterator::Kind kind, std::unique_ptr<sk::Iterator<T>> it) {
  return new IteratorOf<T>(kind, std::move(it));
}

// An iterator that failed before it started (an exception while creating
// it): not valid, its status the failure.
struct FailedIterator final : shredkv_iterator {
  explicit FailedIterator(sk::Status s) : shredkv_iterator(Kind::kEvent), failure(std::move(s)) {}
  bool Valid() const override { return false; }
  void Next() override {}
  sk::Status status() const override { return failure; }
  const void* Current() const override { return nullptr; }
  sk::Status failure;
};

template <typename F>
shredkv_iterator_t* GuardedIterator(F&& body) noexcept {
  try {
    return body();
  } catch (...) {
    try {
      return new FailedIterator(sk::Status::Internal("could not create the iterator"));
    } catch (...) {
      std::abort();
    }
  }
}

// Runs an operation queued into a batch (a call that cannot report): if
// `check` finds a NULL argument the operation needs, nothing is queued and
// the batch records the error, with which shredkv_write fails (as an
// out-of-range enum).
template <typename F>
void Queue(shredkv_writebatch_t* batch, const sk::Status& check, F&& body) noexcept {
  Must([&] {
    if (!check.ok()) return NoteInvalid(&batch->invalid, check.message());
    body();
  });
}

// For the setters that have nowhere to record an error (attributes, a
// record's origin): a NULL argument they need (data with a nonzero length)
// aborts the process with the message on stderr, as c.h says of the calls
// that cannot report, rather than being taken as empty data.
void RequireOrAbort(std::string_view call, Args args) noexcept {
  Must([&] {
    const sk::Status bad = CheckArgs(call, args);
    if (bad.ok()) return;
    std::fprintf(stderr, "shredkv: %s\n", bad.ToString().c_str());
    std::abort();
  });
}

// GuardedIterator for a scan with pointer arguments: a failed iterator
// whose status is CheckArgs(call, args) if one is NULL.
template <typename F>
shredkv_iterator_t* GuardedIterator(std::string_view call, Args args, F&& body) noexcept {
  return GuardedIterator([&]() -> shredkv_iterator_t* {
    if (auto bad = CheckArgs(call, args); !bad.ok()) return new FailedIterator(std::move(bad));
    return body();
  });
}

template <typename T>
const T* CurrentAs(const shredkv_iterator_t* it, shredkv_iterator::Kind kind) {
  if (it == nullptr || it->kind != kind) return nullptr;
  return static_cast<const T*>(Must([&] { return it->Current(); }));
}

// ---- streams to and from the caller ------------------------------------------------

// ---- callbacks into the caller ------------------------------------------------------

class CListener final : public sk::EventListener {
 public:
  CListener(const shredkv_listener_callbacks_t& callbacks, void* ctx) : cb_(callbacks), ctx_(ctx) {}
  void OnErasureCommitted(const sk::ErasureReceipt& receipt) override {
    if (cb_.erasure_committed != nullptr) cb_.erasure_committed(ctx_, Handle<shredkv_receipt_t>(receipt));
  }
  void OnErasureLevelReached(const sk::ErasureReceipt& receipt) override {
    if (cb_.erasure_level_reached != nullptr) cb_.erasure_level_reached(ctx_, Handle<shredkv_receipt_t>(receipt));
  }
  void OnMaintenanceCompleted(const sk::MaintenanceInfo& info) override {
    if (cb_.maintenance_completed == nullptr) return;
    cb_.maintenance_completed(ctx_, static_cast<int>(info.job), info.background ? 1 : 0,
                              static_cast<int>(info.status.code()), info.duration_us, info.done, info.pending);
  }
  void OnBackgroundError(const sk::Status& status) override {
    if (cb_.background_error == nullptr) return;
    const std::string message = status.message();
    cb_.background_error(ctx_, static_cast<int>(status.code()), message.c_str());
  }

 private:
  shredkv_listener_callbacks_t cb_;
  void* ctx_;
};

class CLogger final : public sk::Logger {
 public:
  CLogger(void (*log)(void*, int, const char*), void* ctx) : log_(log), ctx_(ctx) {}
  void Log(sk::LogLevel level, std::string_view message) override {
    const std::string text(message);
    log_(ctx_, static_cast<int>(level), text.c_str());
  }

 private:
  void (*log_)(void*, int, const char*);
  void* ctx_;
};

// `call` names the C function in the message for a NULL store (outside
// audit 37b, F6: "no store (NULL handle)" named neither).
//
// A body that takes `auto&` runs on a ShardedStore too; one that takes
// `sk::Store&` is a call the sharded store does not route (a shard's own
// change feed, audit log, erasure log, ...): on a sharded handle it is
// FailedPrecondition, naming shredkv_shard.
template <typename F>
int WithStore(shredkv_store_t* store, char** errptr, std::string_view call, F&& body) noexcept {
  if (store == nullptr || store->empty()) {
    return Fail(errptr, sk::Status::InvalidArgument(std::string(call) + ": store is NULL"));
  }
  return Guarded(errptr, [&] {
    if (store->shard_view && RefusedOnShardView(call)) return Fail(errptr, NotOnShardView(call));
    if (store->is_sharded()) {
      if constexpr (std::is_invocable_v<F&, sk::ShardedStore&>) {
        return body(*store->sharded);
      } else {
        return Fail(errptr, NotOnShardedStore(call));
      }
    } else {
      return body(store->plain());
    }
  });
}

// Guarded and WithStore for a call with pointer arguments: CheckArgs(call,
// args) first.
template <typename F>
int Guarded(char** errptr, std::string_view call, Args args, F&& body) noexcept {
  return Guarded(errptr, [&] {
    if (auto bad = CheckArgs(call, args); !bad.ok()) return Fail(errptr, bad);
    return body();
  });
}
template <typename F>
int WithStore(shredkv_store_t* store, char** errptr, std::string_view call, Args args, F&& body) noexcept {
  return WithStore(store, errptr, call, [&]<typename S>(S& s) requires std::is_invocable_v<F&, S&> {
    if (auto bad = CheckArgs(call, args); !bad.ok()) return Fail(errptr, bad);
    return body(s);
  });
}

const char* StaticName(std::string_view name) {
  // The name functions of the C++ API return views of string literals.
  return name.data();
}

// The C++ name of enum value `v` if it is one (lo..hi), else "unknown".
template <typename E>
const char* EnumName(int v, int lo, int hi, std::string_view (*name)(E)) {
  return InRange(v, lo, hi) ? StaticName(name(static_cast<E>(v))) : "unknown";
}

}  // namespace

// ======================================================================
extern "C" {

// ---- codes, versions, memory ---------------------------------------------------

const char* shredkv_code_name(int code) {
  if (code < 0 || code > static_cast<int>(sk::StatusCode::kKeyDestroyed)) return "Unknown";
  return StaticName(sk::StatusCodeName(static_cast<sk::StatusCode>(code)));
}

const char* shredkv_version(void) { return SHREDKV_VERSION_STRING; }

void shredkv_version_numbers(int* major, int* minor, int* patch) {
  Fill(major, static_cast<int>(SHREDKV_VERSION_MAJOR));
  Fill(minor, static_cast<int>(SHREDKV_VERSION_MINOR));
  Fill(patch, static_cast<int>(SHREDKV_VERSION_PATCH));
}

void shredkv_free(void* ptr) { std::free(ptr); }

// ---- person IDs -------------------------------------------------------------------

void shredkv_person_id_to_hex(const shredkv_person_id_t* id, char out[33]) {
  Must([&] {
    const std::string hex = ToPerson(id).ToHex();
    std::memcpy(out, hex.c_str(), 33);
  });
}

int shredkv_person_id_from_hex(const char* hex, shredkv_person_id_t* out, char** errptr) {
  return Guarded(errptr, "shredkv_person_id_from_hex", {{hex, "hex"}, {out, "out"}}, [&] {
    auto id = sk::PersonId::FromHex(Str(hex));
    if (!id.ok()) return Fail(errptr, id.status());
    FromPerson(*id, out);
    return kOk;
  });
}

// ---- enum names ------------------------------------------------------------------

const char* shredkv_analytics_on_erase_name(int mode) { return EnumName(mode, 0, 2, sk::AnalyticsOnEraseName); }
const char* shredkv_erasure_level_name(int level) { return EnumName(level, 1, 3, sk::ErasureLevelName); }
const char* shredkv_notice_kind_name(int kind) { return EnumName(kind, 1, 5, sk::NoticeKindName); }
const char* shredkv_audit_action_name(int action) { return EnumName(action, 1, 8, sk::AuditActionName); }
const char* shredkv_log_level_name(int level) { return EnumName(level, 0, 3, sk::LogLevelName); }
const char* shredkv_maintenance_job_name(int job) { return EnumName(job, 1, 6, sk::MaintenanceJobName); }

// ---- attributes --------------------------------------------------------------------

shredkv_attrs_t* shredkv_attrs_create(void) {
  return Must([] { return NewHandle<shredkv_attrs_t>(sk::Attributes{}); });
}
void shredkv_attrs_destroy(shredkv_attrs_t* attrs) { delete reinterpret_cast<sk::Attributes*>(attrs); }

static void SetAttr(shredkv_attrs_t* attrs, const char* name, sk::Value value) {
  Must([&] { AsMutable<sk::Attributes>(attrs).insert_or_assign(Str(name), std::move(value)); });
}
void shredkv_attrs_set_string(shredkv_attrs_t* attrs, const char* name, const char* value, size_t value_len) {
  RequireOrAbort("shredkv_attrs_set_string", {{value, "value", value_len, "value_len"}});
  SetAttr(attrs, name, sk::Value(Bytes(value, value_len)));
}
void shredkv_attrs_set_int64(shredkv_attrs_t* attrs, const char* name, int64_t value) {
  SetAttr(attrs, name, sk::Value(static_cast<std::int64_t>(value)));
}
void shredkv_attrs_set_double(shredkv_attrs_t* attrs, const char* name, double value) {
  SetAttr(attrs, name, sk::Value(value));
}
void shredkv_attrs_set_bool(shredkv_attrs_t* attrs, const char* name, unsigned char value) {
  SetAttr(attrs, name, sk::Value(value != 0));
}
void shredkv_attrs_set_timestamp(shredkv_attrs_t* attrs, const char* name, int64_t ms) {
  SetAttr(attrs, name, sk::Value(sk::Timestamp{ms}));
}
void shredkv_attrs_set_bytes(shredkv_attrs_t* attrs, const char* name, const char* value, size_t value_len) {
  RequireOrAbort("shredkv_attrs_set_bytes", {{value, "value", value_len, "value_len"}});
  SetAttr(attrs, name, sk::Value::Bytes(Bytes(value, value_len)));
}
int shredkv_attrs_remove(shredkv_attrs_t* attrs, const char* name) {
  return Must([&] {
    auto& map = AsMutable<sk::Attributes>(attrs);
    auto it = map.find(std::string_view(name == nullptr ? "" : name));
    if (it == map.end()) return 0;
    map.erase(it);
    return 1;
  });
}
void shredkv_attrs_clear(shredkv_attrs_t* attrs) { AsMutable<sk::Attributes>(attrs).clear(); }
size_t shredkv_attrs_count(const shredkv_attrs_t* attrs) { return Attrs(attrs).size(); }
long shredkv_attrs_find(const shredkv_attrs_t* attrs, const char* name) {
  const auto& map = Attrs(attrs);
  auto it = map.find(std::string_view(name == nullptr ? "" : name));
  return it == map.end() ? -1L : static_cast<long>(std::distance(map.begin(), it));
}
const char* shredkv_attrs_name(const shredkv_attrs_t* attrs, size_t i) {
  const char* name = nullptr;
  return AttrAt(attrs, i, &name) != nullptr ? name : nullptr;
}
int shredkv_attrs_type(const shredkv_attrs_t* attrs, size_t i) {
  const sk::Value* v = AttrAt(attrs, i);
  return v == nullptr ? 0 : static_cast<int>(v->type());
}
const char* shredkv_attrs_data(const shredkv_attrs_t* attrs, size_t i, size_t* len) {
  const sk::Value* v = AttrAt(attrs, i);
  const std::string* s = nullptr;
  if (v != nullptr && v->type() == sk::Value::Type::kString) s = &v->as_string();
  if (v != nullptr && v->type() == sk::Value::Type::kBytes) s = &v->as_bytes();
  Fill(len, s == nullptr ? std::size_t{0} : s->size());
  return s == nullptr ? nullptr : s->data();
}
int64_t shredkv_attrs_int64(const shredkv_attrs_t* attrs, size_t i) {
  const sk::Value* v = AttrAt(attrs, i);
  if (v == nullptr) return 0;
  switch (v->type()) {
    case sk::Value::Type::kInt64: return v->as_int64();
    case sk::Value::Type::kTimestamp: return v->as_timestamp().ms;
    case sk::Value::Type::kBool: return v->as_bool() ? 1 : 0;
    default: return 0;
  }
}
double shredkv_attrs_double(const shredkv_attrs_t* attrs, size_t i) {
  const sk::Value* v = AttrAt(attrs, i);
  return (v != nullptr && v->type() == sk::Value::Type::kDouble) ? v->as_double() : 0.0;
}

// ---- key providers, custody, retention -----------------------------------------------

shredkv_key_provider_t* shredkv_key_provider_file(const char* path) {
  return Must([&] { return new shredkv_key_provider{sk::NewFileKeyProvider(Str(path))}; });
}
shredkv_key_provider_t* shredkv_key_provider_passphrase(const char* passphrase, size_t passphrase_len,
                                                        unsigned char interactive) {
  if (passphrase == nullptr && passphrase_len > 0) return nullptr;
  return Must([&] {
    sk::PassphraseOptions options;
    options.interactive_limits = interactive != 0;
    return new shredkv_key_provider{sk::NewPassphraseKeyProvider(View(passphrase, passphrase_len), options)};
  });
}
shredkv_key_provider_t* shredkv_key_provider_raw(const char* key, size_t key_len) {
  if (key == nullptr || key_len != sk::RootKey::kSize) return nullptr;
  return Must([&] { return new shredkv_key_provider{sk::NewRawKeyProvider(std::string_view(key, key_len))}; });
}
void shredkv_key_provider_destroy(shredkv_key_provider_t* provider) { delete provider; }

namespace {
// A KeyProvider over a C callback (shredkv_key_provider_callback).
class CallbackKeyProvider final : public sk::KeyProvider {
 public:
  CallbackKeyProvider(shredkv_get_root_key_fn get, void* ctx, std::string description)
      : get_(get), ctx_(ctx), description_(std::move(description)) {}
  sk::Result<sk::RootKey> GetRootKey(const sk::KeyRequest& request) override {
    // Zeroed: a callback that reports success without writing the key
    // (a binding whose language-level exception became a default 0, seen
    // with cffi and a KeyboardInterrupt) must not seal the store under
    // whatever was on the stack. An all-zero key is refused below.
    unsigned char key[sk::RootKey::kSize] = {};
    char* message = nullptr;
    const int rc = get_(ctx_, request.store_salt.data(), request.store_salt.size(), key, &message);
    std::string why = message != nullptr ? message : "";
    std::free(message);
    if (rc != 0) {
      explicit_bzero(key, sizeof(key));
      return sk::Status::IOError("the root key callback " + description_ + " failed" +
                                 (why.empty() ? std::string() : ": " + why));
    }
    unsigned char any = 0;
    for (unsigned char b : key) any = static_cast<unsigned char>(any | b);
    if (any == 0) {
      return sk::Status::IOError("the root key callback " + description_ +
                                 " reported success but wrote no key (32 zero bytes)");
    }
    auto root = sk::RootKey::FromBytes(std::string_view(reinterpret_cast<const char*>(key), sizeof(key)));
    explicit_bzero(key, sizeof(key));
    return root;
  }
  std::string Describe() const override { return "callback:" + description_; }

 private:
  shredkv_get_root_key_fn get_;
  void* ctx_;
  std::string description_;
};
}  // namespace

shredkv_key_provider_t* shredkv_key_provider_callback(shredkv_get_root_key_fn get_key, void* ctx,
                                                      const char* description) {
  if (get_key == nullptr) return nullptr;
  return Must([&] {
    return new shredkv_key_provider{std::make_shared<CallbackKeyProvider>(get_key, ctx, Str(description))};
  });
}

int shredkv_create_key_file(const char* path, char** errptr) {
  return Guarded(errptr, [&] { return Report(errptr, sk::CreateKeyFile(Str(path))); });
}

int shredkv_custody_pkcs11(const char* module_path, const char* token_label, const char* pin, size_t pin_len,
                           shredkv_custody_t** out, char** errptr) {
  return Guarded(errptr, "shredkv_custody_pkcs11", {{pin, "pin", pin_len, "pin_len"}, {out, "out"}}, [&] {
    sk::Pkcs11Options options{Str(module_path), Str(token_label), Bytes(pin, pin_len)};
    auto custody = sk::NewPkcs11Custody(options);
    if (!custody.ok()) return Fail(errptr, custody.status());
    *out = new shredkv_custody{std::move(custody).value()};
    return kOk;
  });
}
void shredkv_custody_destroy(shredkv_custody_t* custody) { delete custody; }

shredkv_retention_t* shredkv_retention_create(void) {
  return Must([] { return new shredkv_retention{}; });
}
void shredkv_retention_destroy(shredkv_retention_t* rules) { delete rules; }
void shredkv_retention_set_event(shredkv_retention_t* rules, const char* event_name, int64_t max_age_ms) {
  Must([&] { rules->rules.events.insert_or_assign(Str(event_name), max_age_ms); });
}
void shredkv_retention_set_collection(shredkv_retention_t* rules, const char* collection, int64_t max_age_ms) {
  Must([&] { rules->rules.collections.insert_or_assign(Str(collection), max_age_ms); });
}
void shredkv_retention_set_collection_n(shredkv_retention_t* rules, const char* collection, size_t collection_len,
                                        int64_t max_age_ms) {
  RequireOrAbort("shredkv_retention_set_collection_n", {{collection, "collection", collection_len, "collection_len"}});
  Must([&] { rules->rules.collections.insert_or_assign(Bytes(collection, collection_len), max_age_ms); });
}
void shredkv_retention_set_analytics(shredkv_retention_t* rules, int64_t max_age_ms) {
  rules->rules.analytics = max_age_ms;
}
// Rule i's name (NULL past the end), its max age in *max_age_ms.
static const std::string* RuleAt(const std::map<std::string, std::int64_t, std::less<>>& map, size_t i,
                                 int64_t* max_age_ms) {
  if (i >= map.size()) return nullptr;
  auto it = map.begin();
  std::advance(it, static_cast<std::ptrdiff_t>(i));
  Fill(max_age_ms, it->second);
  return &it->first;
}
static const char* CStr(const std::string* s) { return s == nullptr ? nullptr : s->c_str(); }
size_t shredkv_retention_event_count(const shredkv_retention_t* rules) { return rules->rules.events.size(); }
const char* shredkv_retention_event(const shredkv_retention_t* rules, size_t i, int64_t* max_age_ms) {
  return CStr(RuleAt(rules->rules.events, i, max_age_ms));
}
size_t shredkv_retention_collection_count(const shredkv_retention_t* rules) {
  return rules->rules.collections.size();
}
const char* shredkv_retention_collection(const shredkv_retention_t* rules, size_t i, int64_t* max_age_ms) {
  return CStr(RuleAt(rules->rules.collections, i, max_age_ms));
}
const char* shredkv_retention_collection_n(const shredkv_retention_t* rules, size_t i, size_t* collection_len,
                                          int64_t* max_age_ms) {
  const std::string* name = RuleAt(rules->rules.collections, i, max_age_ms);
  if (name != nullptr) Fill(collection_len, name->size());
  return CStr(name);
}
int64_t shredkv_retention_analytics(const shredkv_retention_t* rules) { return rules->rules.analytics; }
void shredkv_retention_set_feed(shredkv_retention_t* rules, int64_t max_age_ms) { rules->rules.feed = max_age_ms; }
int64_t shredkv_retention_feed(const shredkv_retention_t* rules) { return rules->rules.feed; }

// ---- options -------------------------------------------------------------------------

shredkv_options_t* shredkv_options_create(void) {
  return Must([] { return new shredkv_options{}; });
}
void shredkv_options_destroy(shredkv_options_t* options) { delete options; }
void shredkv_options_set_directory(shredkv_options_t* options, const char* directory) {
  Must([&] { options->options.directory = Str(directory); });
}
void shredkv_options_set_create_if_missing(shredkv_options_t* options, unsigned char v) {
  options->options.create_if_missing = v != 0;
}
void shredkv_options_set_error_if_exists(shredkv_options_t* options, unsigned char v) {
  options->options.error_if_exists = v != 0;
}
void shredkv_options_set_read_only(shredkv_options_t* options, unsigned char v) {
  options->options.read_only = v != 0;
}
void shredkv_options_set_durability(shredkv_options_t* options, int durability) {
  Must([&] {
    if (!InRange(durability, 0, 2)) return NoteInvalid(&options->invalid, OutOfRange("durability", durability));
    options->options.durability = static_cast<sk::Durability>(durability);
  });
}
void shredkv_options_set_initial_map_size(shredkv_options_t* options, uint64_t bytes) {
  options->options.initial_map_size = bytes;
}
void shredkv_options_set_max_map_size(shredkv_options_t* options, uint64_t bytes) {
  options->options.max_map_size = bytes;
}
void shredkv_options_set_dek_cache_capacity(shredkv_options_t* options, size_t keys) {
  options->options.dek_cache_capacity = keys;
}
void shredkv_options_set_key_provider(shredkv_options_t* options, const shredkv_key_provider_t* provider) {
  options->options.key_provider = provider == nullptr ? nullptr : provider->provider;
}
void shredkv_options_set_custody(shredkv_options_t* options, const shredkv_custody_t* custody) {
  options->options.epoch_key_custody = custody == nullptr ? nullptr : custody->custody;
}
void shredkv_options_set_cipher(shredkv_options_t* options, int cipher) {
  Must([&] {
    if (!InRange(cipher, 0, 2)) return NoteInvalid(&options->invalid, OutOfRange("cipher", cipher));
    options->options.cipher = static_cast<sk::Cipher>(cipher);
  });
}
void shredkv_options_add_identifier_type(shredkv_options_t* options, const char* name, int normalization) {
  Must([&] {
    if (!InRange(normalization, 0, 4)) return NoteInvalid(&options->invalid, OutOfRange("normalization", normalization));
    options->options.identifier_types.push_back({Str(name), static_cast<sk::Normalization>(normalization)});
  });
}
void shredkv_options_set_iterator_batch_size(shredkv_options_t* options, size_t rows) {
  options->options.iterator_batch_size = rows;
}
void shredkv_options_set_clock(shredkv_options_t* options, int64_t (*clock)(void* ctx), void* ctx) {
  Must([&] {
    if (clock == nullptr) {
      options->options.clock = nullptr;
    } else {
      options->options.clock = [clock, ctx] { return static_cast<std::int64_t>(clock(ctx)); };
    }
  });
}
void shredkv_options_set_progress(shredkv_options_t* options,
                                  void (*progress)(void* ctx, const char* operation, uint64_t done, uint64_t total),
                                  void* ctx) {
  Must([&] {
    if (progress == nullptr) {
      options->options.progress = nullptr;
    } else {
      options->options.progress = [progress, ctx](std::string_view operation, std::uint64_t done,
                                                  std::uint64_t total) {
        const std::string op(operation);
        progress(ctx, op.c_str(), done, total);
      };
    }
  });
}
void shredkv_options_set_logger(shredkv_options_t* options, void (*log)(void* ctx, int level, const char* message),
                                void* ctx, int min_level) {
  Must([&] {
    options->options.logger = log == nullptr ? nullptr : std::make_shared<CLogger>(log, ctx);
    if (!InRange(min_level, 0, 3)) return NoteInvalid(&options->invalid, OutOfRange("log level", min_level));
    options->options.log_level = static_cast<sk::LogLevel>(min_level);
  });
}
void shredkv_options_set_unlink_time_granularity_ms(shredkv_options_t* options, int64_t ms) {
  options->options.unlink_time_granularity_ms = ms;
}
void shredkv_options_set_analytics_time_granularity_ms(shredkv_options_t* options, int64_t ms) {
  options->options.analytics_time_granularity_ms = ms;
}
void shredkv_options_set_rotate_after_erasures(shredkv_options_t* options, uint64_t n) {
  options->options.rotate_after_erasures = n;
}
void shredkv_options_set_rotate_after_ms(shredkv_options_t* options, int64_t ms) {
  options->options.rotate_after_ms = ms;
}
void shredkv_options_set_rotation_batch_size(shredkv_options_t* options, size_t keys) {
  options->options.rotation_batch_size = keys;
}
void shredkv_options_set_background_maintenance_ms(shredkv_options_t* options, int64_t ms) {
  options->options.background_maintenance_ms = ms;
}
void shredkv_options_set_restore_accept_untagged(shredkv_options_t* options, unsigned char backup, unsigned char log) {
  options->restore_accept_untagged_backup = backup != 0;
  options->restore_accept_untagged_log = log != 0;
}
void shredkv_options_set_purge_budget_rows(shredkv_options_t* options, size_t rows) {
  options->options.purge_budget_rows = rows;
}
void shredkv_options_set_retention(shredkv_options_t* options, const shredkv_retention_t* rules) {
  Must([&] {
    if (rules == nullptr) {
      options->options.retention.reset();
    } else {
      options->options.retention = rules->rules;
    }
  });
}
void shredkv_options_set_sweep_budget_rows(shredkv_options_t* options, size_t rows) {
  options->options.sweep_budget_rows = rows;
}
void shredkv_options_add_purpose(shredkv_options_t* options, const char* name, int basis) {
  Must([&] {
    if (!InRange(basis, 1, 6)) return NoteInvalid(&options->invalid, OutOfRange("lawful basis", basis));
    options->options.purposes.push_back({Str(name), static_cast<sk::LawfulBasis>(basis)});
  });
}
void shredkv_options_add_category(shredkv_options_t* options, const char* name) {
  Must([&] { options->options.categories.push_back(Str(name)); });
}
void shredkv_options_set_event_category(shredkv_options_t* options, const char* event_name, const char* category) {
  Must([&] { options->options.event_categories.insert_or_assign(Str(event_name), Str(category)); });
}
void shredkv_options_set_collection_category(shredkv_options_t* options, const char* collection,
                                             const char* category) {
  Must([&] { options->options.collection_categories.insert_or_assign(Str(collection), Str(category)); });
}
void shredkv_options_set_collection_category_n(shredkv_options_t* options, const char* collection,
                                               size_t collection_len, const char* category) {
  RequireOrAbort("shredkv_options_set_collection_category_n",
                 {{collection, "collection", collection_len, "collection_len"}});
  Must([&] {
    options->options.collection_categories.insert_or_assign(Bytes(collection, collection_len), Str(category));
  });
}
void shredkv_options_set_attribute_category(shredkv_options_t* options, const char* attribute,
                                            const char* category) {
  Must([&] { options->options.attribute_categories.insert_or_assign(Str(attribute), Str(category)); });
}
void shredkv_options_set_tracking_purpose(shredkv_options_t* options, const char* purpose) {
  Must([&] { options->options.tracking_purpose = Str(purpose); });
}
void shredkv_options_set_tracking_policy(shredkv_options_t* options, int policy) {
  Must([&] {
    if (!InRange(policy, 0, 1)) return NoteInvalid(&options->invalid, OutOfRange("tracking policy", policy));
    options->options.tracking_policy = static_cast<sk::RestrictedTrackingPolicy>(policy);
  });
}
void shredkv_options_set_lease_drain_timeout_ms(shredkv_options_t* options, int64_t ms) {
  options->options.lease_drain_timeout_ms = ms;
}
void shredkv_options_set_audit_processing_reads(shredkv_options_t* options, unsigned char v) {
  options->options.audit_processing_reads = v != 0;
}
void shredkv_options_add_listener(shredkv_options_t* options, const shredkv_listener_callbacks_t* callbacks,
                                  void* ctx) {
  if (callbacks == nullptr) return;
  Must([&] { options->options.listeners.push_back(std::make_shared<CListener>(*callbacks, ctx)); });
}

// ---- the store -------------------------------------------------------------------------

int shredkv_open(const shredkv_options_t* options, shredkv_store_t** out, char** errptr) {
  return Guarded(errptr, "shredkv_open", {{options, "options"}, {out, "out"}}, [&] {
    if (!options->invalid.empty()) return Fail(errptr, sk::Status::InvalidArgument(options->invalid));
    auto store = sk::Store::Open(options->options);
    if (!store.ok()) return Fail(errptr, store.status());
    *out = new shredkv_store{};
    (*out)->store = std::move(store).value();
    return kOk;
  });
}

int shredkv_close(shredkv_store_t* store, char** errptr) {
  if (store == nullptr) return kOk;
  bool refused = false;  // on the store's maintenance thread: still open, the handle stays
  const int code = Guarded(errptr, [&] {
    // A shard's view closes only itself: the shard closes with its store.
    if (store->empty() || store->shard_view) return kOk;
    const sk::Status s = store->is_sharded() ? store->sharded->Close() : store->store->Close();
    refused = s.IsFailedPrecondition() && shredkv::util::ForkGeneration() == store->fork_generation;
    return Report(errptr, s);
  });
  if (refused) return code;
  // In a forked child Close is FailedPrecondition and releases nothing; the
  // Store is leaked rather than destroyed: a parent thread inside a call at
  // the fork may have held one of its locks or waited on one of its
  // condition variables, and destroying those waits for ever (store.h).
  if (shredkv::util::ForkGeneration() != store->fork_generation) {
    (void)store->store.release();
    if (store->sharded != nullptr) (void)new std::shared_ptr<sk::ShardedStore>(std::move(store->sharded));
  }
  delete store;
  return code;
}

// ---- people and identifiers -------------------------------------------------------------

int shredkv_create_person(shredkv_store_t* store, const shredkv_identifier_t* identifiers, size_t n,
                          const shredkv_attrs_t* profile, shredkv_person_id_t* out, char** errptr) {
  return WithStore(store, errptr, "shredkv_create_person", [&](auto& s) {
    const sk::Status bad = CheckIdentifiers("shredkv_create_person", "identifiers", identifiers, n, true);
    if (!bad.ok()) return Fail(errptr, bad);
    auto id = s.CreatePerson(ToIdentifiers(identifiers, n), AttrsOrEmpty(profile));
    if (!id.ok()) return Fail(errptr, id.status());
    FromPerson(*id, out);
    return kOk;
  });
}

int shredkv_resolve(shredkv_store_t* store, const shredkv_identifier_t* identifier, shredkv_person_id_t* out,
                    char** errptr) {
  return WithStore(store, errptr, "shredkv_resolve", [&](auto& s) {
    const sk::Status bad = CheckIdentifiers("shredkv_resolve", "identifier", identifier, 1, false);
    if (!bad.ok()) return Fail(errptr, bad);
    auto id = s.Resolve(ToIdentifier(identifier));
    if (!id.ok()) return Fail(errptr, id.status());
    FromPerson(*id, out);
    return kOk;
  });
}

int shredkv_link_identifier(shredkv_store_t* store, const shredkv_person_id_t* person,
                            const shredkv_identifier_t* identifier, char** errptr) {
  return WithStore(store, errptr, "shredkv_link_identifier", {{person, "person"}}, [&](auto& s) {
    const sk::Status bad = CheckIdentifiers("shredkv_link_identifier", "identifier", identifier, 1, false);
    if (!bad.ok()) return Fail(errptr, bad);
    return Report(errptr, s.LinkIdentifier(ToPerson(person), ToIdentifier(identifier)));
  });
}

int shredkv_unlink_identifier(shredkv_store_t* store, const shredkv_person_id_t* person,
                              const shredkv_identifier_t* identifier, char** errptr) {
  return WithStore(store, errptr, "shredkv_unlink_identifier", {{person, "person"}}, [&](auto& s) {
    const sk::Status bad = CheckIdentifiers("shredkv_unlink_identifier", "identifier", identifier, 1, false);
    if (!bad.ok()) return Fail(errptr, bad);
    return Report(errptr, s.UnlinkIdentifier(ToPerson(person), ToIdentifier(identifier)));
  });
}

int shredkv_normalize_identifier(const shredkv_options_t* options, const shredkv_identifier_t* identifier,
                                 char** out, size_t* out_len, char** errptr) {
  return Guarded(errptr, "shredkv_normalize_identifier", {{out, "out"}}, [&] {
    const sk::Status bad = CheckIdentifiers("shredkv_normalize_identifier", "identifier", identifier, 1, false);
    if (!bad.ok()) return Fail(errptr, bad);
    static const std::vector<sk::IdentifierTypeSpec> kNone;
    auto normal = sk::NormalizeIdentifier(ToIdentifier(identifier),
                                          options == nullptr ? kNone : options->options.identifier_types);
    if (!normal.ok()) return Fail(errptr, normal.status());
    *out = CopyToMalloc(normal->value);
    Fill(out_len, normal->value.size());
    return kOk;
  });
}

int shredkv_check_new_identifier(const shredkv_options_t* options, const shredkv_identifier_t* identifier,
                                 char** errptr) {
  return Guarded(errptr, "shredkv_check_new_identifier", {}, [&] {
    const sk::Status bad = CheckIdentifiers("shredkv_check_new_identifier", "identifier", identifier, 1, false);
    if (!bad.ok()) return Fail(errptr, bad);
    static const std::vector<sk::IdentifierTypeSpec> kNone;
    const sk::Status status = sk::CheckNewIdentifier(ToIdentifier(identifier),
                                                     options == nullptr ? kNone : options->options.identifier_types);
    if (!status.ok()) return Fail(errptr, status);
    return kOk;
  });
}

int shredkv_get_person(shredkv_store_t* store, const shredkv_person_id_t* person, shredkv_person_info_t** out,
                       char** errptr) {
  return WithStore(store, errptr, "shredkv_get_person", {{person, "person"}, {out, "out"}}, [&](auto& s) {
    auto info = s.GetPerson(ToPerson(person));
    if (!info.ok()) return Fail(errptr, info.status());
    *out = NewHandle<shredkv_person_info_t>(std::move(info).value());
    return kOk;
  });
}
void shredkv_person_info_destroy(shredkv_person_info_t* info) { delete reinterpret_cast<sk::PersonInfo*>(info); }
void shredkv_person_info_id(const shredkv_person_info_t* info, shredkv_person_id_t* out) {
  FromPerson(As<sk::PersonInfo>(info).id, out);
}
void shredkv_person_info_anon_id(const shredkv_person_info_t* info, uint8_t out[16]) {
  const auto& bytes = As<sk::PersonInfo>(info).anon_id.bytes();
  std::memcpy(out, bytes.data(), bytes.size());
}
int64_t shredkv_person_info_created_ms(const shredkv_person_info_t* info) {
  return As<sk::PersonInfo>(info).created_ms;
}
uint64_t shredkv_person_info_key_epoch(const shredkv_person_info_t* info) {
  return As<sk::PersonInfo>(info).key_epoch;
}
size_t shredkv_person_info_identifier_count(const shredkv_person_info_t* info) {
  return As<sk::PersonInfo>(info).identifiers.size();
}
const char* shredkv_person_info_identifier(const shredkv_person_info_t* info, size_t i, const char** value,
                                           size_t* value_len) {
  const auto& ids = As<sk::PersonInfo>(info).identifiers;
  if (i >= ids.size()) return nullptr;
  Fill(value, ids[i].value.c_str());
  Fill(value_len, ids[i].value.size());
  return ids[i].type.c_str();
}

// ---- profiles ---------------------------------------------------------------------------

int shredkv_get_profile(shredkv_store_t* store, const shredkv_person_id_t* person, shredkv_attrs_t** out,
                        char** errptr) {
  return WithStore(store, errptr, "shredkv_get_profile", {{person, "person"}, {out, "out"}}, [&](auto& s) {
    auto profile = s.GetProfile(ToPerson(person));
    if (!profile.ok()) return Fail(errptr, profile.status());
    *out = NewHandle<shredkv_attrs_t>(std::move(profile).value());
    return kOk;
  });
}

int shredkv_lookup_profile(shredkv_store_t* store, const shredkv_identifier_t* identifier,
                           shredkv_person_id_t* person, shredkv_attrs_t** out, char** errptr) {
  return WithStore(store, errptr, "shredkv_lookup_profile", {{out, "out"}}, [&](auto& s) {
    const sk::Status bad = CheckIdentifiers("shredkv_lookup_profile", "identifier", identifier, 1, false);
    if (!bad.ok()) return Fail(errptr, bad);
    auto found = s.LookupProfile(ToIdentifier(identifier));
    if (!found.ok()) return Fail(errptr, found.status());
    FromPerson(found->id, person);
    *out = NewHandle<shredkv_attrs_t>(std::move(found->attributes));
    return kOk;
  });
}

int shredkv_patch_profile(shredkv_store_t* store, const shredkv_person_id_t* person, const shredkv_attrs_t* set,
                          const char* const* unset, size_t n_unset, char** errptr) {
  return WithStore(
      store, errptr, "shredkv_patch_profile", {{person, "person"}, {unset, "unset", n_unset, "n_unset"}},
      [&](auto& s) { return Report(errptr, s.PatchProfile(ToPerson(person), ToPatch(set, unset, n_unset))); });
}

// ---- events -------------------------------------------------------------------------------

int shredkv_append_event(shredkv_store_t* store, const shredkv_person_id_t* person, const char* name,
                         int64_t ts_ms, const shredkv_attrs_t* properties, const char* const* analytics_fields,
                         size_t n_fields, const char* category, char** errptr) {
  return WithStore(
      store, errptr, "shredkv_append_event",
      {{person, "person"}, {analytics_fields, "analytics_fields", n_fields, "n_fields"}}, [&](auto& s) {
        return Report(errptr, s.AppendEvent(ToPerson(person),
                                            ToEvent(name, ts_ms, properties, analytics_fields, n_fields, category)));
      });
}

const char* shredkv_event_name(const shredkv_event_t* event) { return As<sk::StoredEvent>(event).name.c_str(); }
int64_t shredkv_event_ts_ms(const shredkv_event_t* event) { return As<sk::StoredEvent>(event).ts_ms; }
uint64_t shredkv_event_seq(const shredkv_event_t* event) { return As<sk::StoredEvent>(event).seq; }
const char* shredkv_event_category(const shredkv_event_t* event) {
  return As<sk::StoredEvent>(event).category.c_str();
}
const shredkv_attrs_t* shredkv_event_properties(const shredkv_event_t* event) {
  return Handle<shredkv_attrs_t>(As<sk::StoredEvent>(event).properties);
}

// ---- records --------------------------------------------------------------------------------

shredkv_record_t* shredkv_record_create(const char* collection, size_t collection_len, const char* key,
                                        size_t key_len, const char* value, size_t value_len) {
  return Must([&]() -> shredkv_record_t* {
    // NULL data with a nonzero length: no record (shredkv_put_record and
    // shredkv_writebatch_put_record refuse a NULL record).
    if (!CheckArgs("shredkv_record_create", {{collection, "collection", collection_len, "collection_len"},
                                             {key, "key", key_len, "key_len"},
                                             {value, "value", value_len, "value_len"}})
             .ok())
      return nullptr;
    sk::Record record;
    record.collection = Bytes(collection, collection_len);
    record.key = Bytes(key, key_len);
    record.value = Bytes(value, value_len);
    return NewHandle<shredkv_record_t>(std::move(record));
  });
}
void shredkv_record_destroy(shredkv_record_t* record) { delete reinterpret_cast<sk::Record*>(record); }
void shredkv_record_set_category(shredkv_record_t* record, const char* category) {
  Must([&] { AsMutable<sk::Record>(record).category = Str(category); });
}
void shredkv_record_add_purpose(shredkv_record_t* record, const char* purpose) {
  Must([&] { AsMutable<sk::Record>(record).metadata.purposes.push_back(Str(purpose)); });
}
void shredkv_record_set_origin(shredkv_record_t* record, const char* origin, size_t origin_len) {
  RequireOrAbort("shredkv_record_set_origin", {{origin, "origin", origin_len, "origin_len"}});
  Must([&] { AsMutable<sk::Record>(record).metadata.origin = Bytes(origin, origin_len); });
}
void shredkv_record_add_shared_with(shredkv_record_t* record, const char* recipient) {
  Must([&] { AsMutable<sk::Record>(record).metadata.shared_with.push_back(Str(recipient)); });
}
void shredkv_record_set_automated_decision(shredkv_record_t* record, unsigned char v) {
  AsMutable<sk::Record>(record).metadata.automated_decision = v != 0;
}
void shredkv_record_set_expires_ms(shredkv_record_t* record, int64_t ms) {
  AsMutable<sk::Record>(record).metadata.expires_ms = ms;
}
static const char* DataOf(const std::string& s, size_t* len) {
  Fill(len, s.size());
  return s.data();
}
const char* shredkv_record_collection(const shredkv_record_t* record, size_t* len) {
  return DataOf(As<sk::Record>(record).collection, len);
}
const char* shredkv_record_key(const shredkv_record_t* record, size_t* len) {
  return DataOf(As<sk::Record>(record).key, len);
}
const char* shredkv_record_value(const shredkv_record_t* record, size_t* len) {
  return DataOf(As<sk::Record>(record).value, len);
}
const char* shredkv_record_category(const shredkv_record_t* record) {
  return As<sk::Record>(record).category.c_str();
}
size_t shredkv_record_purpose_count(const shredkv_record_t* record) {
  return As<sk::Record>(record).metadata.purposes.size();
}
const char* shredkv_record_purpose(const shredkv_record_t* record, size_t i) {
  return Element(As<sk::Record>(record).metadata.purposes, i);
}
const char* shredkv_record_origin(const shredkv_record_t* record, size_t* len) {
  return DataOf(As<sk::Record>(record).metadata.origin, len);
}
size_t shredkv_record_shared_with_count(const shredkv_record_t* record) {
  return As<sk::Record>(record).metadata.shared_with.size();
}
const char* shredkv_record_shared_with(const shredkv_record_t* record, size_t i) {
  return Element(As<sk::Record>(record).metadata.shared_with, i);
}
unsigned char shredkv_record_automated_decision(const shredkv_record_t* record) {
  return As<sk::Record>(record).metadata.automated_decision ? 1 : 0;
}
int64_t shredkv_record_expires_ms(const shredkv_record_t* record) {
  return As<sk::Record>(record).metadata.expires_ms;
}

int shredkv_put(shredkv_store_t* store, const shredkv_person_id_t* person, const char* collection,
                size_t collection_len, const char* key, size_t key_len, const char* value, size_t value_len,
                char** errptr) {
  return WithStore(store, errptr, "shredkv_put",
                   {{person, "person"},
                    {collection, "collection", collection_len, "collection_len"},
                    {key, "key", key_len, "key_len"},
                    {value, "value", value_len, "value_len"}},
                   [&](auto& s) {
                     return Report(errptr, s.Put(ToPerson(person), View(collection, collection_len), View(key, key_len),
                                                 View(value, value_len)));
                   });
}

int shredkv_put_record(shredkv_store_t* store, const shredkv_person_id_t* person, const shredkv_record_t* record,
                       char** errptr) {
  return WithStore(store, errptr, "shredkv_put_record", {{person, "person"}, {record, "record"}}, [&](auto& s) {
    sk::WriteBatch batch;
    batch.Put(ToPerson(person), As<sk::Record>(record));
    return Report(errptr, s.Write(batch));
  });
}

int shredkv_get(shredkv_store_t* store, const shredkv_person_id_t* person, const char* collection,
                size_t collection_len, const char* key, size_t key_len, char** value, size_t* value_len,
                char** errptr) {
  return WithStore(store, errptr, "shredkv_get",
                   {{person, "person"},
                    {collection, "collection", collection_len, "collection_len"},
                    {key, "key", key_len, "key_len"},
                    {value, "value"}},
                   [&](auto& s) {
                     auto got = s.Get(ToPerson(person), View(collection, collection_len), View(key, key_len));
                     if (!got.ok()) return Fail(errptr, got.status());
                     *value = CopyToMalloc(*got);
                     Fill(value_len, got->size());
                     return kOk;
                   });
}

int shredkv_get_record(shredkv_store_t* store, const shredkv_person_id_t* person, const char* collection,
                       size_t collection_len, const char* key, size_t key_len, shredkv_record_t** out,
                       char** errptr) {
  return WithStore(store, errptr, "shredkv_get_record",
                   {{person, "person"},
                    {collection, "collection", collection_len, "collection_len"},
                    {key, "key", key_len, "key_len"},
                    {out, "out"}},
                   [&](auto& s) {
                     auto got = s.GetRecord(ToPerson(person), View(collection, collection_len), View(key, key_len));
                     if (!got.ok()) return Fail(errptr, got.status());
                     *out = NewHandle<shredkv_record_t>(std::move(got).value());
                     return kOk;
                   });
}

int shredkv_delete(shredkv_store_t* store, const shredkv_person_id_t* person, const char* collection,
                   size_t collection_len, const char* key, size_t key_len, char** errptr) {
  return WithStore(store, errptr, "shredkv_delete",
                   {{person, "person"},
                    {collection, "collection", collection_len, "collection_len"},
                    {key, "key", key_len, "key_len"}},
                   [&](auto& s) {
                     return Report(errptr,
                                   s.Delete(ToPerson(person), View(collection, collection_len), View(key, key_len)));
                   });
}

// ---- iterators --------------------------------------------------------------------------------

// Valid() and the accessors may read a batch again (after an erasure), so
// they run under Must like every other call.
unsigned char shredkv_iter_valid(const shredkv_iterator_t* it) {
  return it != nullptr && Must([&] { return it->Valid(); }) ? 1 : 0;
}
void shredkv_iter_next(shredkv_iterator_t* it) {
  if (it != nullptr && shredkv_iter_valid(it) != 0) Must([&] { it->Next(); });
}
int shredkv_iter_status(const shredkv_iterator_t* it, char** errptr) {
  if (it == nullptr) return Fail(errptr, sk::Status::InvalidArgument("shredkv_iter_status: it is NULL"));
  return Guarded(errptr, [&] { return Report(errptr, it->status()); });
}
void shredkv_iter_destroy(shredkv_iterator_t* it) { delete it; }

using Kind = shredkv_iterator::Kind;

const shredkv_event_t* shredkv_iter_event(const shredkv_iterator_t* it) {
  const auto* e = CurrentAs<sk::StoredEvent>(it, Kind::kEvent);
  return e == nullptr ? nullptr : Handle<shredkv_event_t>(*e);
}
const shredkv_record_t* shredkv_iter_record(const shredkv_iterator_t* it) {
  if (const auto* r = CurrentAs<sk::Record>(it, Kind::kRecord)) return Handle<shredkv_record_t>(*r);
  if (const auto* f = CurrentAs<sk::FoundRecord>(it, Kind::kFoundRecord)) {
    return Handle<shredkv_record_t>(f->record);
  }
  return nullptr;
}
const shredkv_analytics_row_t* shredkv_iter_analytics(const shredkv_iterator_t* it) {
  const auto* a = CurrentAs<sk::AnalyticsRow>(it, Kind::kAnalytics);
  return a == nullptr ? nullptr : Handle<shredkv_analytics_row_t>(*a);
}
const shredkv_export_item_t* shredkv_iter_export_item(const shredkv_iterator_t* it) {
  const auto* x = CurrentAs<sk::ExportItem>(it, Kind::kExport);
  return x == nullptr ? nullptr : Handle<shredkv_export_item_t>(*x);
}
int shredkv_iter_person(const shredkv_iterator_t* it, shredkv_person_id_t* out) {
  if (const auto* p = CurrentAs<sk::PersonId>(it, Kind::kPerson)) {
    FromPerson(*p, out);
    return 1;
  }
  if (const auto* f = CurrentAs<sk::FoundRecord>(it, Kind::kFoundRecord)) {
    FromPerson(f->person, out);
    return 1;
  }
  return 0;
}

static shredkv_iterator_t* ClosedStoreIterator() {
  return new FailedIterator(sk::Status::InvalidArgument("no store (NULL handle)"));
}

// The iterator `make` opens on the store or sharded store behind `store`
// (WithStore's dispatch, for calls that return an iterator).
extern "C++" template <typename F>
shredkv_iterator_t* IterateStore(shredkv_store_t* store, std::string_view call, F&& make) {
  if (store == nullptr || store->empty()) return ClosedStoreIterator();
  if (store->is_sharded()) {
    if constexpr (std::is_invocable_v<F&, sk::ShardedStore&>) {
      return make(*store->sharded);
    } else {
      return new FailedIterator(NotOnShardedStore(call));
    }
  } else {
    return make(store->plain());
  }
}

shredkv_iterator_t* shredkv_scan_events(shredkv_store_t* store, const shredkv_person_id_t* person, int64_t from_ms,
                                        int64_t to_ms) {
  return GuardedIterator("shredkv_scan_events", {{person, "person"}}, [&]() -> shredkv_iterator_t* {
    return IterateStore(store, "shredkv_scan_events", [&](auto& s) {
      return WrapIterator(Kind::kEvent, s.ScanEvents(ToPerson(person), sk::TimeRange{from_ms, to_ms}));
    });
  });
}
shredkv_iterator_t* shredkv_scan_records(shredkv_store_t* store, const shredkv_person_id_t* person,
                                         const char* collection, size_t collection_len, const char* prefix,
                                         size_t prefix_len) {
  return GuardedIterator(
      "shredkv_scan_records",
      {{person, "person"},
       {collection, "collection", collection_len, "collection_len"},
       {prefix, "prefix", prefix_len, "prefix_len"}},
      [&]() -> shredkv_iterator_t* {
        return IterateStore(store, "shredkv_scan_records", [&](auto& s) {
          return WrapIterator(Kind::kRecord, s.ScanRecords(ToPerson(person), View(collection, collection_len),
                                                           View(prefix, prefix_len)));
        });
      });
}
shredkv_iterator_t* shredkv_find_records(shredkv_store_t* store, int field, const char* value, int64_t before_ms) {
  return GuardedIterator([&]() -> shredkv_iterator_t* {
    if (store == nullptr) return ClosedStoreIterator();
    if (!InRange(field, 0, 2)) {
      return static_cast<shredkv_iterator_t*>(
          new FailedIterator(sk::Status::InvalidArgument(OutOfRange("find_records field", field))));
    }
    sk::RecordQuery query;
    query.field = static_cast<sk::RecordQuery::Field>(field);
    query.value = Str(value);
    query.before_ms = before_ms;
    return IterateStore(store, "shredkv_find_records",
                        [&](auto& s) { return WrapIterator(Kind::kFoundRecord, s.FindRecords(query)); });
  });
}
shredkv_iterator_t* shredkv_scan_analytics(shredkv_store_t* store, int64_t from_ms, int64_t to_ms,
                                           const char* name) {
  return GuardedIterator([&]() -> shredkv_iterator_t* {
    sk::AnalyticsQuery query;
    query.range = sk::TimeRange{from_ms, to_ms};
    if (name != nullptr) query.name = std::string(name);
    return IterateStore(store, "shredkv_scan_analytics",
                        [&](sk::Store& s) { return WrapIterator(Kind::kAnalytics, s.ScanAnalytics(query)); });
  });
}

void shredkv_analytics_anon_id(const shredkv_analytics_row_t* row, uint8_t out[16]) {
  const auto& bytes = As<sk::AnalyticsRow>(row).anon_id.bytes();
  std::memcpy(out, bytes.data(), bytes.size());
}
const char* shredkv_analytics_name(const shredkv_analytics_row_t* row) {
  return As<sk::AnalyticsRow>(row).name.c_str();
}
int64_t shredkv_analytics_ts_ms(const shredkv_analytics_row_t* row) { return As<sk::AnalyticsRow>(row).ts_ms; }
uint64_t shredkv_analytics_seq(const shredkv_analytics_row_t* row) { return As<sk::AnalyticsRow>(row).seq; }
const shredkv_attrs_t* shredkv_analytics_fields(const shredkv_analytics_row_t* row) {
  return Handle<shredkv_attrs_t>(As<sk::AnalyticsRow>(row).fields);
}

// ---- rectification and the feed --------------------------------------------------------------

shredkv_rectification_t* shredkv_rectification_create(void) {
  return Must([] { return new shredkv_rectification{}; });
}
void shredkv_rectification_destroy(shredkv_rectification_t* r) { delete r; }
void shredkv_rectification_set_profile(shredkv_rectification_t* r, const shredkv_attrs_t* set) {
  if (set == nullptr) return;
  Must([&] {
    for (const auto& [name, value] : Attrs(set)) r->rectification.profile.set.insert_or_assign(name, value);
  });
}
void shredkv_rectification_unset_profile(shredkv_rectification_t* r, const char* name) {
  Must([&] { r->rectification.profile.unset.push_back(Str(name)); });
}
void shredkv_rectification_replace_identifier(shredkv_rectification_t* r, const shredkv_identifier_t* old_identifier,
                                              const shredkv_identifier_t* new_identifier) {
  Must([&] {
    const char* call = "shredkv_rectification_replace_identifier";
    sk::Status bad = CheckIdentifiers(call, "old_identifier", old_identifier, 1, false);
    if (bad.ok()) bad = CheckIdentifiers(call, "new_identifier", new_identifier, 1, false);
    if (!bad.ok()) return NoteInvalid(&r->invalid, bad.message());
    r->rectification.identifiers.emplace_back(ToIdentifier(old_identifier), ToIdentifier(new_identifier));
  });
}
void shredkv_rectification_correct_event(shredkv_rectification_t* r, int64_t ts_ms, uint64_t seq,
                                         const shredkv_attrs_t* set, const char* const* unset, size_t n_unset) {
  Must([&] {
    const sk::Status bad = CheckArgs("shredkv_rectification_correct_event", {{unset, "unset", n_unset, "n_unset"}});
    if (!bad.ok()) return NoteInvalid(&r->invalid, bad.message());
    r->rectification.events.push_back({ts_ms, seq, ToPatch(set, unset, n_unset)});
  });
}
int shredkv_rectify(shredkv_store_t* store, const shredkv_person_id_t* person, const shredkv_rectification_t* r,
                    char** errptr) {
  return WithStore(store, errptr, "shredkv_rectify", {{person, "person"}, {r, "r"}}, [&](auto& s) {
    if (r == nullptr) return Fail(errptr, sk::Status::InvalidArgument("no rectification (NULL handle)"));
    if (!r->invalid.empty()) return Fail(errptr, sk::Status::InvalidArgument(r->invalid));
    return Report(errptr, s.Rectify(ToPerson(person), r->rectification));
  });
}

uint64_t shredkv_notice_cursor(const shredkv_notice_t* notice) { return As<sk::Notice>(notice).cursor; }
int shredkv_notice_kind(const shredkv_notice_t* notice) { return static_cast<int>(As<sk::Notice>(notice).kind); }
void shredkv_notice_person(const shredkv_notice_t* notice, shredkv_person_id_t* out) {
  FromPerson(As<sk::Notice>(notice).person, out);
}
int64_t shredkv_notice_time_ms(const shredkv_notice_t* notice) { return As<sk::Notice>(notice).time_ms; }
size_t shredkv_notice_name_count(const shredkv_notice_t* notice) { return As<sk::Notice>(notice).names.size(); }
const char* shredkv_notice_name(const shredkv_notice_t* notice, size_t i) {
  return Element(As<sk::Notice>(notice).names, i);
}

int shredkv_read_feed(shredkv_store_t* store, size_t max, shredkv_notice_list_t** out, char** errptr) {
  return WithStore(store, errptr, "shredkv_read_feed", {{out, "out"}}, [&](sk::Store& s) {
    auto notices = s.ReadFeed(max);
    if (!notices.ok()) return Fail(errptr, notices.status());
    *out = new shredkv_notice_list{std::move(notices).value()};
    return kOk;
  });
}
size_t shredkv_notice_list_count(const shredkv_notice_list_t* list) { return list->notices.size(); }
const shredkv_notice_t* shredkv_notice_list_at(const shredkv_notice_list_t* list, size_t i) {
  return i < list->notices.size() ? Handle<shredkv_notice_t>(list->notices[i]) : nullptr;
}
void shredkv_notice_list_destroy(shredkv_notice_list_t* list) { delete list; }
int shredkv_ack_feed(shredkv_store_t* store, uint64_t cursor, char** errptr) {
  return WithStore(store, errptr, "shredkv_ack_feed", [&](sk::Store& s) { return Report(errptr, s.AckFeed(cursor)); });
}

// ---- restriction, consent, leases ----------------------------------------------------------------

unsigned char shredkv_restriction_all(const shredkv_restriction_t* r) {
  return As<sk::RestrictionState>(r).all ? 1 : 0;
}
size_t shredkv_restriction_purpose_count(const shredkv_restriction_t* r) {
  return As<sk::RestrictionState>(r).purposes.size();
}
const char* shredkv_restriction_purpose(const shredkv_restriction_t* r, size_t i) {
  return Element(As<sk::RestrictionState>(r).purposes, i);
}
size_t shredkv_restriction_category_count(const shredkv_restriction_t* r) {
  return As<sk::RestrictionState>(r).categories.size();
}
const char* shredkv_restriction_category(const shredkv_restriction_t* r, size_t i) {
  return Element(As<sk::RestrictionState>(r).categories, i);
}
int64_t shredkv_restriction_updated_ms(const shredkv_restriction_t* r) {
  return As<sk::RestrictionState>(r).updated_ms;
}
void shredkv_restriction_destroy(shredkv_restriction_t* r) { delete reinterpret_cast<sk::RestrictionState*>(r); }

int shredkv_restrict(shredkv_store_t* store, const shredkv_person_id_t* people, size_t n, unsigned char all,
                     const char* const* purposes, size_t n_purposes, const char* const* categories,
                     size_t n_categories, const char* reason, char** errptr) {
  return WithStore(store, errptr, "shredkv_restrict",
                   {{people, "people", n, "n"},
                    {purposes, "purposes", n_purposes, "n_purposes"},
                    {categories, "categories", n_categories, "n_categories"}},
                   [&](auto& s) {
                     return Report(errptr, s.Restrict(ToPeople(people, n), ToSpec(all, purposes, n_purposes, categories,
                                                                                  n_categories, reason)));
                   });
}
int shredkv_unrestrict(shredkv_store_t* store, const shredkv_person_id_t* people, size_t n, unsigned char all,
                       const char* const* purposes, size_t n_purposes, const char* const* categories,
                       size_t n_categories, const char* reason, char** errptr) {
  return WithStore(store, errptr, "shredkv_unrestrict",
                   {{people, "people", n, "n"},
                    {purposes, "purposes", n_purposes, "n_purposes"},
                    {categories, "categories", n_categories, "n_categories"}},
                   [&](auto& s) {
                     return Report(errptr, s.Unrestrict(ToPeople(people, n), ToSpec(all, purposes, n_purposes,
                                                                                    categories, n_categories, reason)));
                   });
}
int shredkv_get_restriction(shredkv_store_t* store, const shredkv_person_id_t* person, shredkv_restriction_t** out,
                            char** errptr) {
  return WithStore(store, errptr, "shredkv_get_restriction", {{person, "person"}, {out, "out"}}, [&](auto& s) {
    auto state = s.GetRestriction(ToPerson(person));
    if (!state.ok()) return Fail(errptr, state.status());
    *out = NewHandle<shredkv_restriction_t>(std::move(state).value());
    return kOk;
  });
}

int shredkv_set_consent(shredkv_store_t* store, const shredkv_person_id_t* people, size_t n, const char* purpose,
                        unsigned char granted, const char* source, char** errptr) {
  return WithStore(store, errptr, "shredkv_set_consent", {{people, "people", n, "n"}}, [&](auto& s) {
    return Report(errptr, s.SetConsent(ToPeople(people, n), Str(purpose), granted != 0, Str(source)));
  });
}
int shredkv_get_consent(shredkv_store_t* store, const shredkv_person_id_t* person, shredkv_consent_list_t** out,
                        char** errptr) {
  return WithStore(store, errptr, "shredkv_get_consent", {{person, "person"}, {out, "out"}}, [&](auto& s) {
    auto consent = s.GetConsent(ToPerson(person));
    if (!consent.ok()) return Fail(errptr, consent.status());
    auto list = std::make_unique<shredkv_consent_list>();
    for (const auto& [purpose, granted] : *consent) {
      sk::ConsentRecord record;
      record.action = granted ? sk::ConsentRecord::Action::kGrant : sk::ConsentRecord::Action::kWithdraw;
      record.purpose = purpose;
      list->records.push_back(std::move(record));
    }
    *out = list.release();
    return kOk;
  });
}
int shredkv_get_consent_history(shredkv_store_t* store, const shredkv_person_id_t* person,
                                shredkv_consent_list_t** out, char** errptr) {
  return WithStore(store, errptr, "shredkv_get_consent_history", {{person, "person"}, {out, "out"}}, [&](auto& s) {
    auto history = s.GetConsentHistory(ToPerson(person));
    if (!history.ok()) return Fail(errptr, history.status());
    *out = new shredkv_consent_list{std::move(history).value()};
    return kOk;
  });
}
size_t shredkv_consent_list_count(const shredkv_consent_list_t* list) { return list->records.size(); }
const shredkv_consent_record_t* shredkv_consent_list_at(const shredkv_consent_list_t* list, size_t i) {
  return i < list->records.size() ? Handle<shredkv_consent_record_t>(list->records[i]) : nullptr;
}
void shredkv_consent_list_destroy(shredkv_consent_list_t* list) { delete list; }
int shredkv_consent_action(const shredkv_consent_record_t* c) {
  return static_cast<int>(As<sk::ConsentRecord>(c).action);
}
const char* shredkv_consent_purpose(const shredkv_consent_record_t* c) {
  return As<sk::ConsentRecord>(c).purpose.c_str();
}
unsigned char shredkv_consent_restriction_all(const shredkv_consent_record_t* c) {
  return As<sk::ConsentRecord>(c).restriction.all ? 1 : 0;
}
size_t shredkv_consent_restriction_purpose_count(const shredkv_consent_record_t* c) {
  return As<sk::ConsentRecord>(c).restriction.purposes.size();
}
const char* shredkv_consent_restriction_purpose(const shredkv_consent_record_t* c, size_t i) {
  return Element(As<sk::ConsentRecord>(c).restriction.purposes, i);
}
size_t shredkv_consent_restriction_category_count(const shredkv_consent_record_t* c) {
  return As<sk::ConsentRecord>(c).restriction.categories.size();
}
const char* shredkv_consent_restriction_category(const shredkv_consent_record_t* c, size_t i) {
  return Element(As<sk::ConsentRecord>(c).restriction.categories, i);
}
const char* shredkv_consent_restriction_reason(const shredkv_consent_record_t* c) {
  return As<sk::ConsentRecord>(c).restriction.reason.c_str();
}
int64_t shredkv_consent_time_ms(const shredkv_consent_record_t* c) { return As<sk::ConsentRecord>(c).time_ms; }
const char* shredkv_consent_source(const shredkv_consent_record_t* c) {
  return As<sk::ConsentRecord>(c).source.c_str();
}

shredkv_iterator_t* shredkv_people_with_consent(shredkv_store_t* store, const char* purpose, unsigned char granted) {
  return GuardedIterator([&]() -> shredkv_iterator_t* {
    return IterateStore(store, "shredkv_people_with_consent", [&](auto& s) {
      return WrapIterator(Kind::kPerson, s.PeopleWithConsent(Str(purpose), granted != 0));
    });
  });
}

int shredkv_acquire_lease(shredkv_store_t* store, const shredkv_person_id_t* person, const char* purpose,
                          shredkv_lease_t** out, char** errptr) {
  return WithStore(store, errptr, "shredkv_acquire_lease", {{person, "person"}, {out, "out"}}, [&](auto& s) {
    auto lease = s.AcquireLease(ToPerson(person), Str(purpose));
    if (!lease.ok()) return Fail(errptr, lease.status());
    *out = new shredkv_lease{std::move(lease).value()};
    return kOk;
  });
}
void shredkv_lease_release(shredkv_lease_t* lease) { delete lease; }
void shredkv_lease_person(const shredkv_lease_t* lease, shredkv_person_id_t* out) {
  FromPerson(lease->lease->person(), out);
}
const char* shredkv_lease_purpose(const shredkv_lease_t* lease) { return lease->lease->purpose().c_str(); }
int shredkv_lease_get_profile(shredkv_lease_t* lease, shredkv_attrs_t** out, char** errptr) {
  return Guarded(errptr, "shredkv_lease_get_profile", {{lease, "lease"}, {out, "out"}}, [&] {
    auto profile = lease->lease->GetProfile();
    if (!profile.ok()) return Fail(errptr, profile.status());
    *out = NewHandle<shredkv_attrs_t>(std::move(profile).value());
    return kOk;
  });
}
shredkv_iterator_t* shredkv_lease_scan_events(shredkv_lease_t* lease, int64_t from_ms, int64_t to_ms) {
  return GuardedIterator("shredkv_lease_scan_events", {{lease, "lease"}}, [&]() -> shredkv_iterator_t* {
    return WrapIterator(Kind::kEvent, lease->lease->ScanEvents(sk::TimeRange{from_ms, to_ms}));
  });
}
int shredkv_lease_get(shredkv_lease_t* lease, const char* collection, size_t collection_len, const char* key,
                      size_t key_len, char** value, size_t* value_len, char** errptr) {
  return Guarded(errptr, "shredkv_lease_get",
                 {{lease, "lease"},
                  {collection, "collection", collection_len, "collection_len"},
                  {key, "key", key_len, "key_len"},
                  {value, "value"}},
                 [&] {
                   auto got = lease->lease->Get(View(collection, collection_len), View(key, key_len));
                   if (!got.ok()) return Fail(errptr, got.status());
                   *value = CopyToMalloc(*got);
                   Fill(value_len, got->size());
                   return kOk;
                 });
}
shredkv_iterator_t* shredkv_lease_scan_records(shredkv_lease_t* lease, const char* collection,
                                               size_t collection_len, const char* prefix, size_t prefix_len) {
  return GuardedIterator("shredkv_lease_scan_records",
                         {{lease, "lease"},
                          {collection, "collection", collection_len, "collection_len"},
                          {prefix, "prefix", prefix_len, "prefix_len"}},
                         [&]() -> shredkv_iterator_t* {
                           return WrapIterator(
                               Kind::kRecord,
                               lease->lease->ScanRecords(View(collection, collection_len), View(prefix, prefix_len)));
                         });
}

// ---- write batches -----------------------------------------------------------------------------

shredkv_writebatch_t* shredkv_writebatch_create(void) {
  return Must([] { return new shredkv_writebatch{}; });
}
void shredkv_writebatch_destroy(shredkv_writebatch_t* batch) { delete batch; }
void shredkv_writebatch_clear(shredkv_writebatch_t* batch) {
  batch->batch.Clear();
  batch->invalid.clear();
}
size_t shredkv_writebatch_count(const shredkv_writebatch_t* batch) { return batch->batch.size(); }
void shredkv_writebatch_create_person(shredkv_writebatch_t* batch, const shredkv_identifier_t* identifiers, size_t n,
                                      const shredkv_attrs_t* profile, shredkv_person_id_t* out) {
  Queue(batch, CheckIdentifiers("shredkv_writebatch_create_person", "identifiers", identifiers, n, true),
        [&] { FromPerson(batch->batch.CreatePerson(ToIdentifiers(identifiers, n), AttrsOrEmpty(profile)), out); });
}
void shredkv_writebatch_import_person(shredkv_writebatch_t* batch, const shredkv_identifier_t* identifiers, size_t n,
                                      const shredkv_attrs_t* profile, int64_t created_ms, shredkv_person_id_t* out) {
  Queue(batch, CheckIdentifiers("shredkv_writebatch_import_person", "identifiers", identifiers, n, true), [&] {
    FromPerson(batch->batch.ImportPerson(ToIdentifiers(identifiers, n), AttrsOrEmpty(profile), created_ms), out);
  });
}
void shredkv_writebatch_link_identifier(shredkv_writebatch_t* batch, const shredkv_person_id_t* person,
                                        const shredkv_identifier_t* identifier) {
  const char* call = "shredkv_writebatch_link_identifier";
  Queue(batch,
        person == nullptr ? NullArgument(call, "person") : CheckIdentifiers(call, "identifier", identifier, 1, false),
        [&] { batch->batch.LinkIdentifier(ToPerson(person), ToIdentifier(identifier)); });
}
void shredkv_writebatch_unlink_identifier(shredkv_writebatch_t* batch, const shredkv_person_id_t* person,
                                          const shredkv_identifier_t* identifier) {
  const char* call = "shredkv_writebatch_unlink_identifier";
  Queue(batch,
        person == nullptr ? NullArgument(call, "person") : CheckIdentifiers(call, "identifier", identifier, 1, false),
        [&] { batch->batch.UnlinkIdentifier(ToPerson(person), ToIdentifier(identifier)); });
}
void shredkv_writebatch_patch_profile(shredkv_writebatch_t* batch, const shredkv_person_id_t* person,
                                      const shredkv_attrs_t* set, const char* const* unset, size_t n_unset) {
  Queue(batch,
        CheckArgs("shredkv_writebatch_patch_profile", {{person, "person"}, {unset, "unset", n_unset, "n_unset"}}),
        [&] { batch->batch.PatchProfile(ToPerson(person), ToPatch(set, unset, n_unset)); });
}
void shredkv_writebatch_append_event(shredkv_writebatch_t* batch, const shredkv_person_id_t* person, const char* name,
                                     int64_t ts_ms, const shredkv_attrs_t* properties,
                                     const char* const* analytics_fields, size_t n_fields, const char* category) {
  Queue(batch,
        CheckArgs("shredkv_writebatch_append_event",
                  {{person, "person"}, {analytics_fields, "analytics_fields", n_fields, "n_fields"}}),
        [&] {
          batch->batch.AppendEvent(ToPerson(person),
                                   ToEvent(name, ts_ms, properties, analytics_fields, n_fields, category));
        });
}
void shredkv_writebatch_import_event(shredkv_writebatch_t* batch, const shredkv_person_id_t* person, const char* name,
                                     int64_t ts_ms, const shredkv_attrs_t* properties,
                                     const char* const* analytics_fields, size_t n_fields, const char* category) {
  Queue(batch,
        CheckArgs("shredkv_writebatch_import_event",
                  {{person, "person"}, {analytics_fields, "analytics_fields", n_fields, "n_fields"}}),
        [&] {
          batch->batch.ImportEvent(ToPerson(person),
                                   ToEvent(name, ts_ms, properties, analytics_fields, n_fields, category));
        });
}
int shredkv_writebatch_append_events_json(shredkv_writebatch_t* batch, const char* json, size_t len,
                                          char** errptr) {
  return Guarded(errptr, "shredkv_writebatch_append_events_json", {{batch, "batch"}, {json, "json", len, "len"}}, [&] {
    using Json = sk::portability::Json;
    // The strict parser of imports (portability/strict_json.h): an integer
    // literal beyond 64 bits is refused like one beyond int64 below (nlohmann
    // alone makes it a double: outside audit 32a, F6), and so are duplicate
    // keys and nesting deeper than 64 levels. Text that is not UTF-8 is not
    // valid JSON.
    Json doc;
    std::string error;
    if (!sk::portability::StrictParse(View(json, len), &doc, &error)) {
      return Fail(errptr, sk::Status::InvalidArgument("append_events_json: " + error));
    }
    if (!doc.is_array()) return Fail(errptr, sk::Status::InvalidArgument("append_events_json: not a JSON array"));
    struct Queued {
      sk::PersonId person;
      sk::Event event;
      bool imported = false;
    };
    std::vector<Queued> queued;
    queued.reserve(doc.size());
    for (std::size_t i = 0; i < doc.size(); ++i) {
      const Json& e = doc[i];
      const std::string where = "append_events_json: events[" + std::to_string(i) + "]";
      auto bad = [&](const std::string& why) { return Fail(errptr, sk::Status::InvalidArgument(where + why)); };
      if (!e.is_object()) return bad(": not an object");
      Queued q;
      for (const auto& [field, value] : e.items()) {
        if (field == "person") {
          if (!value.is_string()) return bad(".person: not a string");
          auto id = sk::PersonId::FromHex(value.get_ref<const std::string&>());
          if (!id.ok()) return bad(".person: not 32 hex digits");
          q.person = *id;
        } else if (field == "name") {
          if (!value.is_string()) return bad(".name: not a string");
          q.event.name = value.get<std::string>();
        } else if (field == "ts") {
          if (!value.is_number_integer() ||
              (value.is_number_unsigned() &&
               value.get<std::uint64_t>() > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))) {
            return bad(".ts: not an integer (ms) in int64 range");
          }
          q.event.ts_ms = value.get<std::int64_t>();
        } else if (field == "properties") {
          if (!value.is_object()) return bad(".properties: not an object");
          for (const auto& [name, v] : value.items()) {
            const std::string path = where + ".properties." + name;
            if (v.is_string()) {
              q.event.properties.insert_or_assign(name, sk::Value(v.get<std::string>()));
            } else if (v.is_boolean()) {
              q.event.properties.insert_or_assign(name, sk::Value(v.get<bool>()));
            } else if (v.is_number_integer()) {
              if (v.is_number_unsigned() &&
                  v.get<std::uint64_t>() > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
                return Fail(errptr, sk::Status::InvalidArgument(path + ": integer out of int64 range"));
              }
              q.event.properties.insert_or_assign(name, sk::Value(v.get<std::int64_t>()));
            } else if (v.is_number()) {
              q.event.properties.insert_or_assign(name, sk::Value(v.get<double>()));
            } else {
              auto typed = sk::portability::ValueFromJson(v, path);
              if (!typed.ok()) return Fail(errptr, typed.status());
              q.event.properties.insert_or_assign(name, std::move(typed).value());
            }
          }
        } else if (field == "analytics_fields") {
          if (!value.is_array()) return bad(".analytics_fields: not an array");
          for (const auto& f : value) {
            if (!f.is_string()) return bad(".analytics_fields: not an array of strings");
            q.event.analytics_fields.push_back(f.get<std::string>());
          }
        } else if (field == "category") {
          if (!value.is_string()) return bad(".category: not a string");
          q.event.category = value.get<std::string>();
        } else if (field == "imported") {
          if (!value.is_boolean()) return bad(".imported: not a boolean");
          q.imported = value.get<bool>();
        } else {
          return bad(": unknown field " + sk::portability::QuotedForMessage(field));
        }
      }
      if (q.person.empty()) return bad(": no person");
      if (q.event.name.empty()) return bad(": no name");
      if (!e.contains("ts")) return bad(": no ts");
      queued.push_back(std::move(q));
    }
    for (auto& q : queued) {
      if (q.imported) {
        batch->batch.ImportEvent(q.person, std::move(q.event));
      } else {
        batch->batch.AppendEvent(q.person, std::move(q.event));
      }
    }
    return kOk;
  });
}
void shredkv_writebatch_put(shredkv_writebatch_t* batch, const shredkv_person_id_t* person, const char* collection,
                            size_t collection_len, const char* key, size_t key_len, const char* value,
                            size_t value_len, const char* category) {
  Queue(batch,
        CheckArgs("shredkv_writebatch_put", {{person, "person"},
                                             {collection, "collection", collection_len, "collection_len"},
                                             {key, "key", key_len, "key_len"},
                                             {value, "value", value_len, "value_len"}}),
        [&] {
          batch->batch.Put(ToPerson(person), Bytes(collection, collection_len), Bytes(key, key_len),
                           Bytes(value, value_len), Str(category));
        });
}
void shredkv_writebatch_put_record(shredkv_writebatch_t* batch, const shredkv_person_id_t* person,
                                   const shredkv_record_t* record) {
  Queue(batch, CheckArgs("shredkv_writebatch_put_record", {{person, "person"}, {record, "record"}}),
        [&] { batch->batch.Put(ToPerson(person), As<sk::Record>(record)); });
}
void shredkv_writebatch_delete(shredkv_writebatch_t* batch, const shredkv_person_id_t* person, const char* collection,
                               size_t collection_len, const char* key, size_t key_len) {
  Queue(batch,
        CheckArgs("shredkv_writebatch_delete", {{person, "person"},
                                                {collection, "collection", collection_len, "collection_len"},
                                                {key, "key", key_len, "key_len"}}),
        [&] { batch->batch.Delete(ToPerson(person), Bytes(collection, collection_len), Bytes(key, key_len)); });
}
void shredkv_writebatch_rectify(shredkv_writebatch_t* batch, const shredkv_person_id_t* person,
                                const shredkv_rectification_t* r) {
  Queue(batch, CheckArgs("shredkv_writebatch_rectify", {{person, "person"}, {r, "r"}}), [&] {
    if (!r->invalid.empty()) return NoteInvalid(&batch->invalid, r->invalid);
    batch->batch.Rectify(ToPerson(person), r->rectification);
  });
}
void shredkv_writebatch_record_consent(shredkv_writebatch_t* batch, const shredkv_person_id_t* person, int action,
                                       const char* purpose, unsigned char all, const char* const* purposes,
                                       size_t n_purposes, const char* const* categories, size_t n_categories,
                                       const char* reason, int64_t time_ms, const char* source) {
  Queue(batch,
        CheckArgs("shredkv_writebatch_record_consent", {{person, "person"},
                                                        {purposes, "purposes", n_purposes, "n_purposes"},
                                                        {categories, "categories", n_categories, "n_categories"}}),
        [&] {
          if (!InRange(action, 1, 4)) return NoteInvalid(&batch->invalid, OutOfRange("record_consent action", action));
          sk::ConsentRecord record;
          record.action = static_cast<sk::ConsentRecord::Action>(action);
          record.purpose = Str(purpose);
          record.restriction = ToSpec(all, purposes, n_purposes, categories, n_categories, reason);
          record.time_ms = time_ms;
          record.source = Str(source);
          batch->batch.RecordConsent(ToPerson(person), std::move(record));
        });
}
void shredkv_writebatch_set_progress(shredkv_writebatch_t* batch, const char* name, uint64_t position) {
  Queue(batch, CheckArgs("shredkv_writebatch_set_progress", {{name, "name"}}),
        [&] { batch->batch.SetProgress(name, position); });
}
int shredkv_read_progress(shredkv_store_t* store, const char* name, uint64_t* position, char** errptr) {
  return WithStore(store, errptr, "shredkv_read_progress", {{name, "name"}}, [&](sk::Store& s) {
    auto r = s.ReadProgress(name);
    if (!r.ok()) return Fail(errptr, r.status());
    Fill(position, *r);
    return kOk;
  });
}
int shredkv_write(shredkv_store_t* store, const shredkv_writebatch_t* batch, char** errptr) {
  return WithStore(store, errptr, "shredkv_write", {{batch, "batch"}}, [&](auto& s) {
    if (!batch->invalid.empty()) return Fail(errptr, sk::Status::InvalidArgument(batch->invalid));
    return Report(errptr, s.Write(batch->batch));
  });
}

// ---- export and import ----------------------------------------------------------------------------

shredkv_iterator_t* shredkv_export(shredkv_store_t* store, const shredkv_person_id_t* person) {
  return GuardedIterator("shredkv_export", {{person, "person"}}, [&]() -> shredkv_iterator_t* {
    return IterateStore(store, "shredkv_export",
                        [&](auto& s) { return WrapIterator(Kind::kExport, s.Export(ToPerson(person))); });
  });
}
static const sk::ExportItem& Item(const shredkv_export_item_t* item) { return As<sk::ExportItem>(item); }
int shredkv_export_item_kind(const shredkv_export_item_t* item) { return static_cast<int>(Item(item).kind); }
const shredkv_person_info_t* shredkv_export_item_person(const shredkv_export_item_t* item) {
  return Item(item).kind == sk::ExportItem::Kind::kPerson ? Handle<shredkv_person_info_t>(Item(item).person)
                                                          : nullptr;
}
const char* shredkv_export_item_identifier(const shredkv_export_item_t* item, const char** value,
                                           size_t* value_len) {
  if (Item(item).kind != sk::ExportItem::Kind::kIdentifier) return nullptr;
  const auto& id = Item(item).identifier;
  Fill(value, id.value.c_str());
  Fill(value_len, id.value.size());
  return id.type.c_str();
}
const shredkv_attrs_t* shredkv_export_item_profile(const shredkv_export_item_t* item) {
  return Item(item).kind == sk::ExportItem::Kind::kProfile ? Handle<shredkv_attrs_t>(Item(item).profile) : nullptr;
}
const shredkv_restriction_t* shredkv_export_item_restriction(const shredkv_export_item_t* item) {
  return Item(item).kind == sk::ExportItem::Kind::kRestriction
             ? Handle<shredkv_restriction_t>(Item(item).restriction)
             : nullptr;
}
const shredkv_consent_record_t* shredkv_export_item_consent(const shredkv_export_item_t* item) {
  return Item(item).kind == sk::ExportItem::Kind::kConsent ? Handle<shredkv_consent_record_t>(Item(item).consent)
                                                           : nullptr;
}
const shredkv_event_t* shredkv_export_item_event(const shredkv_export_item_t* item) {
  return Item(item).kind == sk::ExportItem::Kind::kEvent ? Handle<shredkv_event_t>(Item(item).event) : nullptr;
}
const shredkv_record_t* shredkv_export_item_record(const shredkv_export_item_t* item) {
  return Item(item).kind == sk::ExportItem::Kind::kRecord ? Handle<shredkv_record_t>(Item(item).record) : nullptr;
}
const shredkv_analytics_row_t* shredkv_export_item_analytics(const shredkv_export_item_t* item) {
  return Item(item).kind == sk::ExportItem::Kind::kAnalytics ? Handle<shredkv_analytics_row_t>(Item(item).analytics)
                                                             : nullptr;
}
const shredkv_notice_t* shredkv_export_item_notice(const shredkv_export_item_t* item) {
  return Item(item).kind == sk::ExportItem::Kind::kNotice ? Handle<shredkv_notice_t>(Item(item).notice) : nullptr;
}

static bool ToFormat(int format, sk::ExportFormat* out) {
  if (format == SHREDKV_EXPORT_JSON) {
    *out = sk::ExportFormat::kJson;
  } else if (format == SHREDKV_EXPORT_NDJSON) {
    *out = sk::ExportFormat::kNdjson;
  } else {
    return false;
  }
  return true;
}

int shredkv_export_person(shredkv_store_t* store, const shredkv_person_id_t* person, int format,
                          shredkv_write_fn write, void* ctx, char** errptr) {
  return WithStore(store, errptr, "shredkv_export_person", {{person, "person"}}, [&](auto& s) {
    sk::ExportFormat f{};
    if (!ToFormat(format, &f)) return Fail(errptr, sk::Status::InvalidArgument("unknown export format"));
    if (write == nullptr) return Fail(errptr, sk::Status::InvalidArgument("shredkv_export_person: write is NULL"));
    sk::util::ChunkedOutputBuf buf([&](const char* data, std::size_t size) { return write(ctx, data, size) == 0; });
    std::ostream out(&buf);
    sk::Status status = sk::ExportPerson(s, ToPerson(person), f, out);
    if (status.ok() && (out.flush().fail() || buf.failed())) {
      status = sk::Status::IOError("the write callback stopped the export");
    }
    return Report(errptr, status);
  });
}

// shredkv_import_person2, its errors naming `call` (outside audit 37b, F6:
// import_person2's named import_person).
static int ImportPerson(const char* call, shredkv_store_t* store, const char* data, size_t len, int format, int analytics,
                 shredkv_person_id_t* out, uint64_t* identifiers, uint64_t* events, uint64_t* records,
                 char** errptr) {
  return WithStore(store, errptr, call, {{data, "data", len, "len"}}, [&](auto& s) {
    sk::ExportFormat f{};
    if (!ToFormat(format, &f)) return Fail(errptr, sk::Status::InvalidArgument("unknown export format"));
    sk::ImportOptions options;
    if (analytics == SHREDKV_IMPORTED_ANALYTICS_AS_EXPORTED) {
      options.analytics = sk::ImportedAnalytics::kAsExported;
    } else if (analytics != SHREDKV_IMPORTED_ANALYTICS_ANONYMOUS) {
      return Fail(errptr, sk::Status::InvalidArgument("unknown imported analytics mode " + std::to_string(analytics)));
    }
    std::istringstream in(Bytes(data, len));
    auto imported = sk::ImportPerson(s, in, f, options);
    if (!imported.ok()) return Fail(errptr, imported.status());
    FromPerson(imported->person, out);
    Fill(identifiers, imported->identifiers);
    Fill(events, imported->events);
    Fill(records, imported->records);
    return kOk;
  });
}

int shredkv_import_person(shredkv_store_t* store, const char* data, size_t len, int format, shredkv_person_id_t* out,
                          uint64_t* identifiers, uint64_t* events, uint64_t* records, char** errptr) {
  return ImportPerson("shredkv_import_person", store, data, len, format, SHREDKV_IMPORTED_ANALYTICS_ANONYMOUS, out,
                      identifiers, events, records, errptr);
}

int shredkv_import_person2(shredkv_store_t* store, const char* data, size_t len, int format, int analytics,
                           shredkv_person_id_t* out, uint64_t* identifiers, uint64_t* events, uint64_t* records,
                           char** errptr) {
  return ImportPerson("shredkv_import_person2", store, data, len, format, analytics, out, identifiers, events, records,
                      errptr);
}

// ---- erasure ------------------------------------------------------------------------------------------

static const sk::ErasureReceipt& Receipt(const shredkv_receipt_t* r) { return As<sk::ErasureReceipt>(r); }
void shredkv_receipt_destroy(shredkv_receipt_t* receipt) { delete reinterpret_cast<sk::ErasureReceipt*>(receipt); }
const char* shredkv_receipt_request_id(const shredkv_receipt_t* r) { return Receipt(r).request_id.c_str(); }
int64_t shredkv_receipt_erased_at_ms(const shredkv_receipt_t* r) { return Receipt(r).erased_at_ms; }
uint64_t shredkv_receipt_people(const shredkv_receipt_t* r) { return Receipt(r).people; }
int shredkv_receipt_analytics(const shredkv_receipt_t* r) { return static_cast<int>(Receipt(r).analytics); }
unsigned char shredkv_receipt_suppressed(const shredkv_receipt_t* r) { return Receipt(r).suppressed ? 1 : 0; }
int shredkv_receipt_level(const shredkv_receipt_t* r) { return static_cast<int>(Receipt(r).level); }
unsigned char shredkv_receipt_cryptographic(const shredkv_receipt_t* r) { return Receipt(r).cryptographic ? 1 : 0; }
unsigned char shredkv_receipt_purged(const shredkv_receipt_t* r) { return Receipt(r).purged ? 1 : 0; }
uint64_t shredkv_receipt_key_epoch(const shredkv_receipt_t* r) { return Receipt(r).key_epoch; }
const char* shredkv_receipt_audit_hash(const shredkv_receipt_t* r) { return Receipt(r).audit_hash.c_str(); }
const char* shredkv_receipt_category(const shredkv_receipt_t* r) { return Receipt(r).category.c_str(); }

// Overloaded, so of C++ linkage (the block is inside extern "C").
extern "C++" {
static int ReturnReceipt(sk::Result<sk::ErasureReceipt> receipt, shredkv_receipt_t** out, char** errptr) {
  if (!receipt.ok()) return Fail(errptr, receipt.status());
  if (out != nullptr) *out = NewHandle<shredkv_receipt_t>(std::move(receipt).value());
  return kOk;
}
// A sharded store's request as one receipt (c.h, shredkv_erase): its parts'
// people summed, the lowest level, cryptographic and purged once every part
// is, the latest erasure time; the key epoch and audit hash of a one-part
// request (a shard's own), else 0 and empty.
static int ReturnReceipt(sk::Result<sk::ShardedErasureReceipt> sharded, shredkv_receipt_t** out, char** errptr) {
  if (!sharded.ok()) return Fail(errptr, sharded.status());
  if (out == nullptr) return kOk;
  sk::ErasureReceipt whole;
  whole.request_id = sharded->request_id;
  whole.people = sharded->people;
  whole.level = sharded->level;
  whole.cryptographic = !sharded->parts.empty();
  whole.purged = !sharded->parts.empty();
  for (const auto& [shard, part] : sharded->parts) {
    whole.erased_at_ms = std::max(whole.erased_at_ms, part.erased_at_ms);
    whole.analytics = part.analytics;
    whole.suppressed = whole.suppressed || part.suppressed;
    whole.cryptographic = whole.cryptographic && part.cryptographic;
    whole.purged = whole.purged && part.purged;
    whole.category = part.category;
  }
  if (sharded->parts.size() == 1) {
    whole.key_epoch = sharded->parts.front().second.key_epoch;
    whole.audit_hash = sharded->parts.front().second.audit_hash;
  }
  *out = NewHandle<shredkv_receipt_t>(std::move(whole));
  return kOk;
}
}  // extern "C++"

int shredkv_erase(shredkv_store_t* store, const shredkv_person_id_t* people, size_t n, const char* request_id,
                  unsigned char suppress, int analytics, shredkv_receipt_t** out, char** errptr) {
  return WithStore(store, errptr, "shredkv_erase", {{people, "people", n, "n"}}, [&](auto& s) {
    if (!InRange(analytics, 0, 2)) return Fail(errptr, sk::Status::InvalidArgument(OutOfRange("analytics", analytics)));
    return ReturnReceipt(s.Erase(ToPeople(people, n), ToEraseOptions(request_id, suppress, analytics)), out, errptr);
  });
}
int shredkv_erase_by_identifier(shredkv_store_t* store, const shredkv_identifier_t* identifier,
                                const char* request_id, unsigned char suppress, int analytics,
                                shredkv_receipt_t** out, char** errptr) {
  return WithStore(store, errptr, "shredkv_erase_by_identifier", [&](auto& s) {
    const sk::Status bad = CheckIdentifiers("shredkv_erase_by_identifier", "identifier", identifier, 1, false);
    if (!bad.ok()) return Fail(errptr, bad);
    if (!InRange(analytics, 0, 2)) return Fail(errptr, sk::Status::InvalidArgument(OutOfRange("analytics", analytics)));
    return ReturnReceipt(s.EraseByIdentifier(ToIdentifier(identifier),
                                             ToEraseOptions(request_id, suppress, analytics)),
                         out, errptr);
  });
}
int shredkv_erase_category(shredkv_store_t* store, const shredkv_person_id_t* person, const char* category,
                           const char* request_id, int analytics, shredkv_receipt_t** out, char** errptr) {
  return WithStore(store, errptr, "shredkv_erase_category", {{person, "person"}}, [&](auto& s) {
    if (!InRange(analytics, 0, 2)) return Fail(errptr, sk::Status::InvalidArgument(OutOfRange("analytics", analytics)));
    return ReturnReceipt(s.EraseCategory(ToPerson(person), Str(category), ToEraseOptions(request_id, 0, analytics)),
                         out, errptr);
  });
}
int shredkv_get_erasure(shredkv_store_t* store, const char* request_id, shredkv_receipt_t** out, char** errptr) {
  return WithStore(store, errptr, "shredkv_get_erasure",
                   [&](auto& s) { return ReturnReceipt(s.GetErasure(Str(request_id)), out, errptr); });
}
int shredkv_unsuppress(shredkv_store_t* store, const shredkv_identifier_t* identifier, char** errptr) {
  return WithStore(store, errptr, "shredkv_unsuppress", [&](auto& s) {
    const sk::Status bad = CheckIdentifiers("shredkv_unsuppress", "identifier", identifier, 1, false);
    if (!bad.ok()) return Fail(errptr, bad);
    return Report(errptr, s.Unsuppress(ToIdentifier(identifier)));
  });
}

// ---- housekeeping ----------------------------------------------------------------------------------------

int shredkv_purge(shredkv_store_t* store, size_t budget_rows, shredkv_purge_result_t* out, char** errptr) {
  return WithStore(store, errptr, "shredkv_purge", [&](auto& s) {
    auto result = s.Purge(budget_rows);
    if (!result.ok()) return Fail(errptr, result.status());
    Fill(out, shredkv_purge_result_t{result->rows_deleted, result->people_purged, result->people_pending});
    return kOk;
  });
}
int shredkv_rotate_epoch(shredkv_store_t* store, shredkv_rotation_result_t* out, char** errptr) {
  return WithStore(store, errptr, "shredkv_rotate_epoch", [&](auto& s) {
    auto r = s.RotateEpoch();
    if (!r.ok()) return Fail(errptr, r.status());
    Fill(out, shredkv_rotation_result_t{r->new_epoch, r->destroyed_epochs, r->rewrapped_keys, r->batches,
                                        r->keys_file_bytes_before, r->keys_file_bytes_after});
    return kOk;
  });
}
int shredkv_compact_data(shredkv_store_t* store, uint64_t* file_bytes_before, uint64_t* file_bytes_after,
                         char** errptr) {
  return WithStore(store, errptr, "shredkv_compact_data", [&](auto& s) {
    auto r = s.CompactData();
    if (!r.ok()) return Fail(errptr, r.status());
    Fill(file_bytes_before, r->file_bytes_before);
    Fill(file_bytes_after, r->file_bytes_after);
    return kOk;
  });
}
int shredkv_set_retention(shredkv_store_t* store, const shredkv_retention_t* rules, char** errptr) {
  return WithStore(store, errptr, "shredkv_set_retention", {{rules, "rules"}},
                   [&](auto& s) { return Report(errptr, s.SetRetention(rules->rules)); });
}
int shredkv_get_retention(shredkv_store_t* store, shredkv_retention_t** out, char** errptr) {
  return WithStore(store, errptr, "shredkv_get_retention", {{out, "out"}}, [&](auto& s) {
    // Every shard has the rules SetRetention gave them all; shard 0 is set
    // first, so it holds the rules of the latest call even when one failed
    // part-way.
    auto rules = [&] {
      if constexpr (std::is_same_v<std::remove_cvref_t<decltype(s)>, sk::ShardedStore>) {
        return s.shard(0).GetRetention();
      } else {
        return s.GetRetention();
      }
    }();
    if (!rules.ok()) return Fail(errptr, rules.status());
    *out = new shredkv_retention{std::move(rules).value()};
    return kOk;
  });
}
int shredkv_sweep2(shredkv_store_t* store, size_t budget_rows, shredkv_sweep_result_t* out,
                   uint64_t* notices_deleted, char** errptr) {
  return WithStore(store, errptr, "shredkv_sweep2", [&](sk::Store& s) {
    auto r = s.Sweep(budget_rows);
    if (!r.ok()) return Fail(errptr, r.status());
    Fill(out, shredkv_sweep_result_t{r->events_deleted, r->records_deleted, r->analytics_deleted, r->batches,
                                     r->pending, r->seeks, r->entries_read});
    Fill(notices_deleted, r->notices_deleted);
    return kOk;
  });
}
int shredkv_sweep(shredkv_store_t* store, size_t budget_rows, shredkv_sweep_result_t* out, char** errptr) {
  return shredkv_sweep2(store, budget_rows, out, nullptr, errptr);
}
int shredkv_run_maintenance(shredkv_store_t* store, char** errptr) {
  return WithStore(store, errptr, "shredkv_run_maintenance", [&](auto& s) { return Report(errptr, s.RunMaintenance()); });
}

// ---- stats ---------------------------------------------------------------------------------------------------

int shredkv_get_stats(shredkv_store_t* store, shredkv_stats_t** out, char** errptr) {
  return WithStore(store, errptr, "shredkv_get_stats", {{out, "out"}}, [&](auto& s) {
    auto stats = s.Stats();
    if (!stats.ok()) return Fail(errptr, stats.status());
    auto handle = std::make_unique<shredkv_stats>();
    handle->stats = std::move(stats).value();
    const sk::StoreStats& st = handle->stats;
    handle->fields = {
        {"format_version", st.format_version},
        {"people", st.people},
        {"erased", st.erased},
        {"suppressed", st.suppressed},
        {"pending_purge", st.pending_purge},
        {"erased_categories", st.erased_categories},
        {"erasures_since_rotation", st.erasures_since_rotation},
        {"suppressed_rejections", st.suppressed_rejections},
        {"restricted", st.restricted},
        {"tracking_rejected", st.tracking_rejected},
        {"tracking_dropped", st.tracking_dropped},
        {"oldest_key_epoch", st.oldest_key_epoch},
        {"expired_removed", st.expired_removed},
        {"expired_pending", st.expired_pending},
        {"retention_backfill_pending", st.retention_backfill_pending ? 1u : 0u},
        {"orphan_keys_collected", st.orphan_keys_collected},
        {"write_batches", st.write_batches},
        {"write_commits", st.write_commits},
        {"identifiers", st.identifiers},
        {"events", st.events},
        {"records", st.records},
        {"analytics_rows", st.analytics_rows},
        {"analytics_staged", st.analytics_staged},
        {"key_epoch", st.key_epoch},
        {"keys_file_bytes", st.keys_file_bytes},
        {"data_file_bytes", st.data_file_bytes},
        {"data_map_bytes", st.data_map_bytes},
        // Appended (the order is fixed: indexes never move; stop 31).
        {"keys_rebuild_pending", st.keys_rebuild_pending ? 1u : 0u},
        {"erasures_awaiting_rebuild", st.erasures_awaiting_rebuild},
    };
    *out = handle.release();
    return kOk;
  });
}
void shredkv_stats_destroy(shredkv_stats_t* stats) { delete stats; }
size_t shredkv_stats_field_count(const shredkv_stats_t* stats) { return stats->fields.size(); }
const char* shredkv_stats_field_name(const shredkv_stats_t* stats, size_t i) {
  return i < stats->fields.size() ? stats->fields[i].first : nullptr;
}
uint64_t shredkv_stats_field_value(const shredkv_stats_t* stats, size_t i) {
  return i < stats->fields.size() ? stats->fields[i].second : 0;
}
int shredkv_stats_get(const shredkv_stats_t* stats, const char* name, uint64_t* out) {
  const std::string_view wanted = name == nullptr ? "" : name;
  for (const auto& [field, value] : stats->fields) {
    if (wanted == field) {
      Fill(out, value);
      return kOk;
    }
  }
  return SHREDKV_NOT_FOUND;
}
const char* shredkv_stats_store_id(const shredkv_stats_t* stats) { return stats->stats.store_id.c_str(); }
size_t shredkv_stats_operation_count(const shredkv_stats_t* stats) { return stats->stats.operations.size(); }
static const sk::OperationStats* Operation(const shredkv_stats_t* stats, size_t i) {
  return i < stats->stats.operations.size() ? &stats->stats.operations[i] : nullptr;
}
const char* shredkv_stats_operation_name(const shredkv_stats_t* stats, size_t i) {
  const auto* op = Operation(stats, i);
  return op == nullptr ? nullptr : op->name.c_str();
}
uint64_t shredkv_stats_operation_calls(const shredkv_stats_t* stats, size_t i) {
  const auto* op = Operation(stats, i);
  return op == nullptr ? 0 : op->calls;
}
uint64_t shredkv_stats_operation_errors(const shredkv_stats_t* stats, size_t i) {
  const auto* op = Operation(stats, i);
  return op == nullptr ? 0 : op->errors;
}
uint64_t shredkv_stats_operation_total_us(const shredkv_stats_t* stats, size_t i) {
  const auto* op = Operation(stats, i);
  return op == nullptr ? 0 : op->total_us;
}
size_t shredkv_latency_bucket_count(void) { return sk::kLatencyBuckets; }
uint64_t shredkv_stats_operation_bucket(const shredkv_stats_t* stats, size_t i, size_t bucket) {
  const auto* op = Operation(stats, i);
  return (op == nullptr || bucket >= sk::kLatencyBuckets) ? 0 : op->latency_buckets[bucket];
}
uint64_t shredkv_stats_operation_quantile_us(const shredkv_stats_t* stats, size_t i, double q) {
  const auto* op = Operation(stats, i);
  return op == nullptr ? 0 : op->QuantileUpperBoundUs(q);
}

// ---- audit and verification ------------------------------------------------------------------------------------

int shredkv_verify_audit_log(shredkv_store_t* store, uint64_t* entries, unsigned char* intact, char** head_hash,
                             char** problem, char** errptr) {
  return WithStore(store, errptr, "shredkv_verify_audit_log", [&](sk::Store& s) {
    auto v = s.VerifyAuditLog();
    if (!v.ok()) return Fail(errptr, v.status());
    char* hash = head_hash == nullptr ? nullptr : CopyToMalloc(v->head_hash);
    char* why = nullptr;
    try {
      why = problem == nullptr ? nullptr : CopyToMalloc(v->problem);
    } catch (...) {
      std::free(hash);
      throw;
    }
    Fill(entries, v->entries);
    Fill(intact, static_cast<unsigned char>(v->intact ? 1 : 0));
    if (head_hash != nullptr) *head_hash = hash;
    if (problem != nullptr) *problem = why;
    return kOk;
  });
}

int shredkv_read_audit(shredkv_store_t* store, uint64_t after_seq, size_t max, shredkv_audit_list_t** out,
                       char** errptr) {
  return WithStore(store, errptr, "shredkv_read_audit", {{out, "out"}}, [&](sk::Store& s) {
    auto records = s.ReadAudit(after_seq, max);
    if (!records.ok()) return Fail(errptr, records.status());
    *out = new shredkv_audit_list{std::move(records).value()};
    return kOk;
  });
}
size_t shredkv_audit_list_count(const shredkv_audit_list_t* list) { return list->records.size(); }
void shredkv_audit_list_destroy(shredkv_audit_list_t* list) { delete list; }
static const sk::AuditRecord* AuditAt(const shredkv_audit_list_t* list, size_t i) {
  return i < list->records.size() ? &list->records[i] : nullptr;
}
uint64_t shredkv_audit_seq(const shredkv_audit_list_t* list, size_t i) {
  const auto* r = AuditAt(list, i);
  return r == nullptr ? 0 : r->seq;
}
int shredkv_audit_action(const shredkv_audit_list_t* list, size_t i) {
  const auto* r = AuditAt(list, i);
  return r == nullptr ? 0 : static_cast<int>(r->action);
}
int64_t shredkv_audit_time_ms(const shredkv_audit_list_t* list, size_t i) {
  const auto* r = AuditAt(list, i);
  return r == nullptr ? 0 : r->time_ms;
}
const char* shredkv_audit_request_id(const shredkv_audit_list_t* list, size_t i) {
  const auto* r = AuditAt(list, i);
  return r == nullptr ? nullptr : r->request_id.c_str();
}
uint64_t shredkv_audit_count1(const shredkv_audit_list_t* list, size_t i) {
  const auto* r = AuditAt(list, i);
  return r == nullptr ? 0 : r->count1;
}
uint64_t shredkv_audit_count2(const shredkv_audit_list_t* list, size_t i) {
  const auto* r = AuditAt(list, i);
  return r == nullptr ? 0 : r->count2;
}
int shredkv_audit_analytics(const shredkv_audit_list_t* list, size_t i) {
  const auto* r = AuditAt(list, i);
  return (r == nullptr || !r->analytics.has_value()) ? -1 : static_cast<int>(*r->analytics);
}
const char* shredkv_audit_purpose(const shredkv_audit_list_t* list, size_t i) {
  const auto* r = AuditAt(list, i);
  return r == nullptr ? nullptr : r->purpose.c_str();
}
const char* shredkv_audit_subject(const shredkv_audit_list_t* list, size_t i) {
  const auto* r = AuditAt(list, i);
  return r == nullptr ? nullptr : r->subject.c_str();
}
const char* shredkv_audit_hash(const shredkv_audit_list_t* list, size_t i) {
  const auto* r = AuditAt(list, i);
  return r == nullptr ? nullptr : r->hash.c_str();
}

int shredkv_audit_subject_of(shredkv_store_t* store, const shredkv_person_id_t* person, char** out, char** errptr) {
  return WithStore(store, errptr, "shredkv_audit_subject_of", {{person, "person"}, {out, "out"}}, [&](auto& s) {
    auto subject = s.AuditSubject(ToPerson(person));
    if (!subject.ok()) return Fail(errptr, subject.status());
    *out = CopyToMalloc(*subject);
    return kOk;
  });
}

int shredkv_verify(shredkv_store_t* store, shredkv_verify_report_t** out, char** errptr) {
  return WithStore(store, errptr, "shredkv_verify", {{out, "out"}}, [&](auto& s) {
    auto report = s.Verify();
    if (!report.ok()) return Fail(errptr, report.status());
    *out = new shredkv_verify_report{std::move(report).value()};
    return kOk;
  });
}
void shredkv_verify_report_destroy(shredkv_verify_report_t* report) { delete report; }
unsigned char shredkv_verify_report_ok(const shredkv_verify_report_t* report) {
  return report->report.ok() ? 1 : 0;
}
int shredkv_verify_report_get(const shredkv_verify_report_t* report, const char* name, uint64_t* out) {
  const sk::VerifyReport& r = report->report;
  const std::pair<const char*, std::uint64_t> fields[] = {
      {"pages", r.pages},         {"people", r.people},
      {"identifiers", r.identifiers}, {"events", r.events},
      {"records", r.records},     {"analytics_rows", r.analytics_rows},
      {"audit_entries", r.audit_entries}, {"orphan_keys", r.orphan_keys},
      {"problem_count", r.problem_count},
  };
  const std::string_view wanted = name == nullptr ? "" : name;
  for (const auto& [field, value] : fields) {
    if (wanted == field) {
      Fill(out, value);
      return kOk;
    }
  }
  return SHREDKV_NOT_FOUND;
}
size_t shredkv_verify_report_problem_count(const shredkv_verify_report_t* report) {
  return report->report.problems.size();
}
const char* shredkv_verify_report_problem(const shredkv_verify_report_t* report, size_t i) {
  return Element(report->report.problems, i);
}

// ---- backups, the erasure log, root keys ---------------------------------------------------------------------

static const sk::BackupInfo& Info(const shredkv_backup_info_t* info) { return As<sk::BackupInfo>(info); }
void shredkv_backup_info_destroy(shredkv_backup_info_t* info) { delete reinterpret_cast<sk::BackupInfo*>(info); }
const char* shredkv_backup_info_directory(const shredkv_backup_info_t* info) { return Info(info).directory.c_str(); }
const char* shredkv_backup_info_store_id(const shredkv_backup_info_t* info) { return Info(info).store_id.c_str(); }
int64_t shredkv_backup_info_created_ms(const shredkv_backup_info_t* info) { return Info(info).created_ms; }
uint64_t shredkv_backup_info_current_epoch(const shredkv_backup_info_t* info) { return Info(info).current_epoch; }
uint64_t shredkv_backup_info_oldest_epoch(const shredkv_backup_info_t* info) { return Info(info).oldest_epoch; }
uint64_t shredkv_backup_info_people(const shredkv_backup_info_t* info) { return Info(info).people; }
uint64_t shredkv_backup_info_keys_bytes(const shredkv_backup_info_t* info) { return Info(info).keys_bytes; }
uint64_t shredkv_backup_info_data_bytes(const shredkv_backup_info_t* info) { return Info(info).data_bytes; }
size_t shredkv_backup_info_custody_label_count(const shredkv_backup_info_t* info) {
  return Info(info).custody_labels.size();
}
const char* shredkv_backup_info_custody_label(const shredkv_backup_info_t* info, size_t i) {
  return Element(Info(info).custody_labels, i);
}

int shredkv_backup(shredkv_store_t* store, const char* directory, shredkv_backup_info_t** out, char** errptr) {
  return WithStore(store, errptr, "shredkv_backup", [&](sk::Store& s) {
    auto info = s.Backup(Str(directory));
    if (!info.ok()) return Fail(errptr, info.status());
    if (out != nullptr) *out = NewHandle<shredkv_backup_info_t>(std::move(info).value());
    return kOk;
  });
}
int shredkv_read_backup_info(const char* backup_dir, shredkv_backup_info_t** out, char** errptr) {
  return Guarded(errptr, "shredkv_read_backup_info", {{out, "out"}}, [&] {
    auto info = sk::ReadBackupInfo(Str(backup_dir));
    if (!info.ok()) return Fail(errptr, info.status());
    *out = NewHandle<shredkv_backup_info_t>(std::move(info).value());
    return kOk;
  });
}

static const sk::ErasureLog& Log(const shredkv_erasure_log_t* log) { return As<sk::ErasureLog>(log); }
int shredkv_read_erasure_log(shredkv_store_t* store, shredkv_erasure_log_t** out, char** errptr) {
  return WithStore(store, errptr, "shredkv_read_erasure_log", {{out, "out"}}, [&](sk::Store& s) {
    auto log = s.ReadErasureLog();
    if (!log.ok()) return Fail(errptr, log.status());
    *out = NewHandle<shredkv_erasure_log_t>(std::move(log).value());
    return kOk;
  });
}
void shredkv_erasure_log_destroy(shredkv_erasure_log_t* log) { delete reinterpret_cast<sk::ErasureLog*>(log); }
const char* shredkv_erasure_log_store_id(const shredkv_erasure_log_t* log) { return Log(log).store_id.c_str(); }
int64_t shredkv_erasure_log_read_at_ms(const shredkv_erasure_log_t* log) { return Log(log).read_at_ms; }
int shredkv_check_erasure_log_read_after(const shredkv_erasure_log_t* log, const shredkv_backup_info_t* info,
                                         char** errptr) {
  return Guarded(errptr, "shredkv_check_erasure_log_read_after", {{log, "log"}, {info, "info"}},
                 [&] { return Report(errptr, sk::CheckErasureLogReadAfter(Log(log), Info(info))); });
}
size_t shredkv_erasure_log_people_count(const shredkv_erasure_log_t* log) { return Log(log).people.size(); }
size_t shredkv_erasure_log_category_count(const shredkv_erasure_log_t* log) { return Log(log).categories.size(); }
size_t shredkv_erasure_log_suppressed_count(const shredkv_erasure_log_t* log) { return Log(log).suppressed.size(); }
const char* shredkv_erasure_log_person(const shredkv_erasure_log_t* log, size_t i, shredkv_person_id_t* person,
                                       int64_t* erased_at_ms, int* analytics) {
  if (i >= Log(log).people.size()) return nullptr;
  const auto& e = Log(log).people[i];
  FromPerson(e.person, person);
  Fill(erased_at_ms, e.erased_at_ms);
  Fill(analytics, static_cast<int>(e.analytics));
  return e.request_id.c_str();
}
const char* shredkv_erasure_log_category(const shredkv_erasure_log_t* log, size_t i, shredkv_person_id_t* person,
                                         const char** request_id, int64_t* erased_at_ms, int* analytics) {
  if (i >= Log(log).categories.size()) return nullptr;
  const auto& e = Log(log).categories[i];
  FromPerson(e.person, person);
  Fill(request_id, e.request_id.c_str());
  Fill(erased_at_ms, e.erased_at_ms);
  Fill(analytics, static_cast<int>(e.analytics));
  return e.category.c_str();
}
const char* shredkv_erasure_log_suppressed(const shredkv_erasure_log_t* log, size_t i, uint8_t hash[16],
                                           int64_t* suppressed_at_ms) {
  if (i >= Log(log).suppressed.size()) return nullptr;
  const auto& e = Log(log).suppressed[i];
  if (hash != nullptr) {
    std::memset(hash, 0, 16);
    std::memcpy(hash, e.identifier_hash.data(), std::min<std::size_t>(16, e.identifier_hash.size()));
  }
  Fill(suppressed_at_ms, e.suppressed_at_ms);
  return e.request_id.c_str();
}
int shredkv_erasure_log_to_ndjson(const shredkv_erasure_log_t* log, char** out, size_t* out_len, char** errptr) {
  return Guarded(errptr, "shredkv_erasure_log_to_ndjson", {{log, "log"}, {out, "out"}}, [&] {
    std::ostringstream text;
    const sk::Status status = sk::WriteErasureLog(Log(log), text);
    if (!status.ok()) return Fail(errptr, status);
    const std::string s = std::move(text).str();
    *out = CopyToMalloc(s);
    Fill(out_len, s.size());
    return kOk;
  });
}
int shredkv_erasure_log_from_ndjson(const char* data, size_t len, shredkv_erasure_log_t** out, char** errptr) {
  return Guarded(errptr, "shredkv_erasure_log_from_ndjson", {{data, "data", len, "len"}, {out, "out"}}, [&] {
    std::istringstream in(Bytes(data, len));
    auto log = sk::ReadErasureLog(in);
    if (!log.ok()) return Fail(errptr, log.status());
    *out = NewHandle<shredkv_erasure_log_t>(std::move(log).value());
    return kOk;
  });
}

static void FillApplied(shredkv_erasure_log_applied_t* out, const sk::ErasureLogApplied& a) {
  Fill(out, shredkv_erasure_log_applied_t{a.people_erased, a.categories_erased, a.suppressions_added,
                                          a.already_erased, a.not_present});
}

int shredkv_apply_erasure_log(shredkv_store_t* store, const shredkv_erasure_log_t* log,
                              shredkv_erasure_log_applied_t* out, char** errptr) {
  return WithStore(store, errptr, "shredkv_apply_erasure_log", {{log, "log"}}, [&](sk::Store& s) {
    auto applied = s.ApplyErasureLog(Log(log));
    if (!applied.ok()) return Fail(errptr, applied.status());
    FillApplied(out, *applied);
    return kOk;
  });
}

int shredkv_restore_backup(const char* backup_dir, const shredkv_options_t* options, const shredkv_erasure_log_t* log,
                           unsigned char without_erasure_log, int custody_keys, shredkv_backup_info_t** info,
                           shredkv_erasure_log_applied_t* applied, char** errptr) {
  return Guarded(errptr, [&] {
    if (options == nullptr) return Fail(errptr, sk::Status::InvalidArgument("shredkv_restore_backup: options is NULL"));
    if (!options->invalid.empty()) return Fail(errptr, sk::Status::InvalidArgument(options->invalid));
    if (!InRange(custody_keys, 0, 2)) {
      return Fail(errptr, sk::Status::InvalidArgument(OutOfRange("custody_keys", custody_keys)));
    }
    sk::RestoreOptions restore;
    restore.erasure_log = log == nullptr ? nullptr : &Log(log);
    restore.without_erasure_log = without_erasure_log != 0;
    restore.custody_keys = static_cast<sk::RestoredCustodyKeys>(custody_keys);
    restore.accept_untagged_backup = options->restore_accept_untagged_backup;
    restore.accept_untagged_log = options->restore_accept_untagged_log;
    auto result = sk::RestoreBackup(Str(backup_dir), options->options, restore);
    if (!result.ok()) return Fail(errptr, result.status());
    FillApplied(applied, result->applied);
    if (info != nullptr) *info = NewHandle<shredkv_backup_info_t>(std::move(result->backup));
    return kOk;
  });
}

int shredkv_reapply_erasure_log(const shredkv_options_t* options, const shredkv_erasure_log_t* log,
                                shredkv_erasure_log_applied_t* applied, char** errptr) {
  return shredkv_reapply_erasure_log2(options, log, SHREDKV_CUSTODY_KEYS_UNSPECIFIED, applied, errptr);
}

int shredkv_reapply_erasure_log2(const shredkv_options_t* options, const shredkv_erasure_log_t* log, int custody_keys,
                                 shredkv_erasure_log_applied_t* applied, char** errptr) {
  return Guarded(errptr, [&] {
    if (options == nullptr) {
      return Fail(errptr, sk::Status::InvalidArgument("shredkv_reapply_erasure_log: options is NULL"));
    }
    if (log == nullptr) return Fail(errptr, sk::Status::InvalidArgument("shredkv_reapply_erasure_log: log is NULL"));
    if (!options->invalid.empty()) return Fail(errptr, sk::Status::InvalidArgument(options->invalid));
    if (!InRange(custody_keys, 0, 2)) {
      return Fail(errptr, sk::Status::InvalidArgument(OutOfRange("custody_keys", custody_keys)));
    }
    sk::ReapplyOptions reapply;
    reapply.accept_untagged_log = options->restore_accept_untagged_log;
    reapply.custody_keys = static_cast<sk::RestoredCustodyKeys>(custody_keys);
    auto result = sk::ReapplyErasureLog(options->options, Log(log), reapply);
    if (!result.ok()) return Fail(errptr, result.status());
    FillApplied(applied, *result);
    return kOk;
  });
}

int shredkv_rotate_root_key(shredkv_store_t* store, const shredkv_key_provider_t* new_provider, char** errptr) {
  return WithStore(store, errptr, "shredkv_rotate_root_key", {{new_provider, "new_provider"}},
                   [&](sk::Store& s) { return Report(errptr, s.RotateRootKey(new_provider->provider)); });
}

// ---- sharded stores -----------------------------------------------------------------

int shredkv_open_sharded(const shredkv_options_t* options, uint32_t shard_count, shredkv_store_t** out,
                         char** errptr) {
  return Guarded(errptr, "shredkv_open_sharded", {{options, "options"}, {out, "out"}}, [&] {
    if (!options->invalid.empty()) return Fail(errptr, sk::Status::InvalidArgument(options->invalid));
    auto sharded = sk::ShardedStore::Open(options->options, shard_count);
    if (!sharded.ok()) return Fail(errptr, sharded.status());
    *out = new shredkv_store{};
    (*out)->sharded = std::move(sharded).value();
    return kOk;
  });
}

uint32_t shredkv_shard_count(const shredkv_store_t* store) {
  if (store == nullptr || !store->is_sharded()) return 0;
  return store->sharded->shard_count();
}

int shredkv_shard_of(const shredkv_store_t* store, const shredkv_person_id_t* person, uint32_t* out,
                     char** errptr) {
  return Guarded(errptr, "shredkv_shard_of", {{person, "person"}, {out, "out"}}, [&] {
    if (store == nullptr || !store->is_sharded()) {
      return Fail(errptr, sk::Status::InvalidArgument("shredkv_shard_of: not a sharded store's handle"));
    }
    *out = store->sharded->ShardOf(ToPerson(person));
    return kOk;
  });
}

int shredkv_shard(shredkv_store_t* store, uint32_t index, shredkv_store_t** out, char** errptr) {
  return Guarded(errptr, "shredkv_shard", {{out, "out"}}, [&] {
    if (store == nullptr || !store->is_sharded()) {
      return Fail(errptr, sk::Status::InvalidArgument("shredkv_shard: not a sharded store's handle"));
    }
    if (index >= store->sharded->shard_count()) {
      return Fail(errptr, sk::Status::InvalidArgument("shredkv_shard: shard " + std::to_string(index) +
                                                      " of a store of " +
                                                      std::to_string(store->sharded->shard_count())));
    }
    auto view = std::make_unique<shredkv_store>();
    view->sharded = store->sharded;
    view->shard_view = true;
    view->shard = &store->sharded->shard(index);
    view->fork_generation = store->fork_generation;
    *out = view.release();
    return kOk;
  });
}

int shredkv_backup_sharded(shredkv_store_t* store, const char* directory, shredkv_backup_info_t** shard_infos,
                           size_t n, char** errptr) {
  return Guarded(errptr, "shredkv_backup_sharded", {{shard_infos, "shard_infos", n, "n"}}, [&] {
    if (store == nullptr || !store->is_sharded()) {
      return Fail(errptr, sk::Status::InvalidArgument("shredkv_backup_sharded: not a sharded store's handle"));
    }
    if (shard_infos != nullptr && n != store->sharded->shard_count()) {
      return Fail(errptr, sk::Status::InvalidArgument("shredkv_backup_sharded: n is " + std::to_string(n) +
                                                      " for a store of " +
                                                      std::to_string(store->sharded->shard_count()) + " shards"));
    }
    auto info = store->sharded->Backup(Str(directory));
    if (!info.ok()) return Fail(errptr, info.status());
    if (shard_infos != nullptr) {
      for (std::size_t i = 0; i < n; ++i) {
        shard_infos[i] = NewHandle<shredkv_backup_info_t>(std::move(info->shards[i]));
      }
    }
    return kOk;
  });
}

int shredkv_restore_sharded(const char* backup_dir, const shredkv_options_t* options,
                            const shredkv_erasure_log_t* const* logs, size_t n_logs,
                            unsigned char without_erasure_log, int custody_keys,
                            const shredkv_key_provider_t* backup_provider, shredkv_erasure_log_applied_t* applied,
                            char** errptr) {
  return Guarded(errptr, "shredkv_restore_sharded", {{options, "options"}, {logs, "logs", n_logs, "n_logs"}}, [&] {
    if (!options->invalid.empty()) return Fail(errptr, sk::Status::InvalidArgument(options->invalid));
    if (!InRange(custody_keys, 0, 2)) {
      return Fail(errptr, sk::Status::InvalidArgument(OutOfRange("custody_keys", custody_keys)));
    }
    sk::ShardedRestoreOptions restore;
    for (std::size_t i = 0; i < n_logs; ++i) {
      if (logs[i] == nullptr) {
        return Fail(errptr, sk::Status::InvalidArgument("shredkv_restore_sharded: logs[" + std::to_string(i) +
                                                        "] is NULL"));
      }
      restore.erasure_logs.push_back(Log(logs[i]));
    }
    restore.without_erasure_log = without_erasure_log != 0;
    restore.custody_keys = static_cast<sk::RestoredCustodyKeys>(custody_keys);
    restore.accept_untagged_backup = options->restore_accept_untagged_backup;
    restore.accept_untagged_log = options->restore_accept_untagged_log;
    if (backup_provider != nullptr) restore.backup_key_provider = backup_provider->provider;
    auto result = sk::ShardedStore::Restore(Str(backup_dir), options->options, restore);
    if (!result.ok()) return Fail(errptr, result.status());
    sk::ErasureLogApplied sum;
    for (const sk::RestoreResult& shard : result->shards) {
      sum.people_erased += shard.applied.people_erased;
      sum.categories_erased += shard.applied.categories_erased;
      sum.suppressions_added += shard.applied.suppressions_added;
      sum.already_erased += shard.applied.already_erased;
      sum.not_present += shard.applied.not_present;
    }
    FillApplied(applied, sum);
    return kOk;
  });
}

int shredkv_rotate_root_key_sharded(const shredkv_options_t* options, const shredkv_key_provider_t* new_provider,
                                    char** errptr) {
  return Guarded(errptr, "shredkv_rotate_root_key_sharded", {{options, "options"}, {new_provider, "new_provider"}},
                 [&] {
                   if (!options->invalid.empty()) {
                     return Fail(errptr, sk::Status::InvalidArgument(options->invalid));
                   }
                   return Report(errptr, sk::ShardedStore::RotateRootKey(options->options, new_provider->provider));
                 });
}

}  // extern "C"
