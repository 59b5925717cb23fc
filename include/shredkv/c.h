/* shredkv — the C API: the whole public API of shredkv as plain C (C99 and
 * later, and C++), for bindings (Python, Go, Rust, Java) and C programs. It
 * is a thin layer over the C++ API (store.h); its contracts are those of the
 * C++ declarations named in each comment, and docs/c-api.md describes it.
 *
 * Conventions
 * - Errors. Every call that can fail returns an int status code
 *   (shredkv_code_t: SHREDKV_OK = 0, the others as shredkv::StatusCode) and
 *   takes `char** errptr` last. On failure, if errptr is not NULL, *errptr
 *   receives the message ("NotFound: no such person"), malloc'ed, to be
 *   released with shredkv_free; a message already in *errptr is freed first
 *   (as leveldb/c.h does). On success *errptr is left alone. No C++
 *   exception crosses this API: an allocation failure (or a bug) inside a
 *   call that returns a code returns SHREDKV_INTERNAL; inside a call that
 *   cannot report it (a setter, an accessor) it aborts the process.
 * - Handles are opaque. A handle a call creates is owned by the caller and
 *   released with its _destroy function (a store with shredkv_close).
 *   `const` handles that a call returns from another handle (an iterator's
 *   current item, an element of a list) are borrowed: valid until the owner
 *   moves on (shredkv_iter_next) or is destroyed; never destroy them.
 * - Bytes and strings. Data that may hold any byte (identifier values,
 *   attribute values, collection names, record keys and values) is passed
 *   as pointer + length. Names (identifier types, attribute and event names,
 *   purposes, categories, request IDs, paths) are NUL-terminated UTF-8.
 *   Strings returned through `const char**` + `size_t*` are borrowed from
 *   their handle; buffers returned through `char**` are malloc'ed for the
 *   caller (release with shredkv_free) and NUL-terminated beyond their
 *   length, so text can be used as a C string.
 * - Pointer arguments are required unless the comment says "may be NULL".
 *   A NULL one is INVALID_ARGUMENT naming the call and the argument
 *   ("shredkv_get_profile: out is NULL", "shredkv_put: value is NULL but
 *   value_len is 5"), before the call does anything; a scan returns an
 *   iterator whose status is that error. An array or data given with a
 *   count or length may be NULL only when that is 0 (empty); NULL with a
 *   nonzero count or length is refused, never taken as empty. A batch
 *   operation records the error and shredkv_write fails with it (as an
 *   out-of-range enum; nothing is queued); a rectification setter records
 *   it for shredkv_rectify / shredkv_write. Calls that cannot report it say
 *   what they do (NULL returned, or the process aborted). Always optional
 *   (not written when NULL): person-ID out-parameters
 *   (shredkv_person_id_t*) and lengths (size_t*). A NULL name (a
 *   NUL-terminated string) is the empty name. Since stop 32 (outside audit
 *   32a: NULL out-parameters and name arrays crashed, NULL data was stored
 *   as empty).
 * - The handle itself (the first argument) of a call that returns no status
 *   code — a setter, an accessor, shredkv_writebatch_count — must not be
 *   NULL: that is a programming error, and the call's behaviour is
 *   undefined (it may crash), as with a handle already destroyed. Only the
 *   _destroy calls, shredkv_close, shredkv_iter_valid / _next and the calls
 *   whose comment says so take NULL (as nothing to do). Calls that return a
 *   status code refuse a NULL handle with INVALID_ARGUMENT.
 * - Booleans are unsigned char: 0 false, anything else true.
 * - Enums cross as int. A value outside its enum is refused: a call that
 *   returns a code returns INVALID_ARGUMENT; an options setter records it
 *   and shredkv_open / shredkv_restore_backup fail with INVALID_ARGUMENT; a
 *   batch operation records it and shredkv_write fails so.
 * - Plain structs (shredkv_identifier_t, the result structs, the listener
 *   callbacks) are frozen for the soname libshredkv.so.0: a field added to
 *   one would be a new soname.
 * - Person IDs are 16 bytes by value (shredkv_person_id_t); all-zero is no
 *   person.
 * - Thread safety is the C++ API's: a store is shared by any number of
 *   threads; every other handle (options, batch, iterator, lease, result)
 *   is used by one thread at a time. Blocking calls do not hold any lock of
 *   the caller's: a binding may release its interpreter lock around them.
 */
#ifndef SHREDKV_C_H_
#define SHREDKV_C_H_

#include <stddef.h>
#include <stdint.h>

#include "shredkv/visibility.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- status codes, versions, memory -------------------------------------- */

typedef enum shredkv_code {
  SHREDKV_OK = 0,
  SHREDKV_NOT_FOUND = 1,
  SHREDKV_ERASED = 2,
  SHREDKV_RESTRICTED = 3,
  SHREDKV_SUPPRESSED = 4,
  SHREDKV_ALREADY_EXISTS = 5,
  SHREDKV_INVALID_ARGUMENT = 6,
  SHREDKV_CORRUPTION = 7,
  SHREDKV_AUTHENTICATION_FAILED = 8,
  SHREDKV_WRONG_KEY = 9,
  SHREDKV_STORE_FULL = 10,
  SHREDKV_BUSY = 11,
  SHREDKV_IO_ERROR = 12,
  SHREDKV_FAILED_PRECONDITION = 13,
  SHREDKV_INTERNAL = 14,
  SHREDKV_UNSUPPORTED_VERSION = 15,
  SHREDKV_READ_ONLY = 16,
  SHREDKV_KEY_DESTROYED = 17
} shredkv_code_t;

/* The stable name of a code ("NotFound"); "Unknown" outside the enum. Static
 * storage: never free it. */
SHREDKV_EXPORT const char* shredkv_code_name(int code);

/* The library's version, "0.1.0", and its parts. A program built against
 * this header may check them against SHREDKV_VERSION_* (shredkv/version.h).
 * The soname's number (libshredkv.so.0) changes when this API breaks. */
SHREDKV_EXPORT const char* shredkv_version(void);
SHREDKV_EXPORT void shredkv_version_numbers(int* major, int* minor, int* patch);

/* Releases a buffer or message this API malloc'ed for the caller. NULL is
 * a no-op. */
SHREDKV_EXPORT void shredkv_free(void* ptr);

/* ---- person and anonymous IDs --------------------------------------------- */

typedef struct shredkv_person_id {
  uint8_t bytes[16];
} shredkv_person_id_t;

/* Writes 32 lowercase hex digits and a NUL into `out` (33 bytes). */
SHREDKV_EXPORT void shredkv_person_id_to_hex(const shredkv_person_id_t* id, char out[33]);
/* Parses 32 hex digits (NUL-terminated). INVALID_ARGUMENT otherwise. */
SHREDKV_EXPORT int shredkv_person_id_from_hex(const char* hex, shredkv_person_id_t* out,
                                              char** errptr);

/* ---- enums of the data model (values as in types.h / options.h) ----------- */

typedef enum shredkv_value_type {
  SHREDKV_VALUE_STRING = 1,
  SHREDKV_VALUE_INT64 = 2,
  SHREDKV_VALUE_DOUBLE = 3,
  SHREDKV_VALUE_BOOL = 4,
  SHREDKV_VALUE_TIMESTAMP = 5, /* ms since the Unix epoch, UTC */
  SHREDKV_VALUE_BYTES = 6
} shredkv_value_type_t;

typedef enum shredkv_analytics_on_erase {
  SHREDKV_ANALYTICS_KEEP = 0,
  SHREDKV_ANALYTICS_UNLINK = 1,
  SHREDKV_ANALYTICS_DELETE = 2
} shredkv_analytics_on_erase_t;

typedef enum shredkv_erasure_level {
  SHREDKV_ERASURE_LOGICAL = 1,
  SHREDKV_ERASURE_CRYPTOGRAPHIC = 2,
  SHREDKV_ERASURE_PURGED = 3
} shredkv_erasure_level_t;

typedef enum shredkv_notice_kind {
  SHREDKV_NOTICE_RECTIFICATION = 1,
  SHREDKV_NOTICE_ERASURE = 2,
  SHREDKV_NOTICE_RESTRICTION = 3,
  SHREDKV_NOTICE_IMPORT = 4,
  SHREDKV_NOTICE_RECORD_CHANGE = 5
} shredkv_notice_kind_t;

typedef enum shredkv_consent_action {
  SHREDKV_CONSENT_GRANT = 1,
  SHREDKV_CONSENT_WITHDRAW = 2,
  SHREDKV_CONSENT_RESTRICT = 3,
  SHREDKV_CONSENT_UNRESTRICT = 4
} shredkv_consent_action_t;

typedef enum shredkv_audit_action {
  SHREDKV_AUDIT_ERASE = 1,
  SHREDKV_AUDIT_UNSUPPRESS = 2,
  SHREDKV_AUDIT_ROTATION = 3,
  SHREDKV_AUDIT_PURGE = 4,
  SHREDKV_AUDIT_COMPACTION = 5,
  SHREDKV_AUDIT_SWEEP = 6,
  SHREDKV_AUDIT_ERASE_CATEGORY = 7,
  SHREDKV_AUDIT_PROCESSING_READ = 8
} shredkv_audit_action_t;

typedef enum shredkv_durability {
  SHREDKV_DURABILITY_FULL_SYNC = 0,
  SHREDKV_DURABILITY_NO_META_SYNC = 1,
  SHREDKV_DURABILITY_NO_SYNC = 2
} shredkv_durability_t;

typedef enum shredkv_cipher {
  SHREDKV_CIPHER_AUTO = 0,
  SHREDKV_CIPHER_XCHACHA20_POLY1305 = 1,
  SHREDKV_CIPHER_AES256_GCM = 2
} shredkv_cipher_t;

typedef enum shredkv_normalization {
  SHREDKV_NORMALIZE_EXACT = 0,
  SHREDKV_NORMALIZE_TRIM = 1,
  SHREDKV_NORMALIZE_LOWER_TRIM = 2,
  SHREDKV_NORMALIZE_EMAIL = 3,
  SHREDKV_NORMALIZE_PHONE = 4
} shredkv_normalization_t;

typedef enum shredkv_lawful_basis {
  SHREDKV_BASIS_CONSENT = 1,
  SHREDKV_BASIS_CONTRACT = 2,
  SHREDKV_BASIS_LEGITIMATE_INTEREST = 3,
  SHREDKV_BASIS_LEGAL_OBLIGATION = 4,
  SHREDKV_BASIS_VITAL_INTEREST = 5,
  SHREDKV_BASIS_PUBLIC_TASK = 6
} shredkv_lawful_basis_t;

typedef enum shredkv_tracking_policy {
  SHREDKV_TRACKING_REJECT = 0,
  SHREDKV_TRACKING_DROP = 1
} shredkv_tracking_policy_t;

typedef enum shredkv_log_level {
  SHREDKV_LOG_DEBUG = 0,
  SHREDKV_LOG_INFO = 1,
  SHREDKV_LOG_WARN = 2,
  SHREDKV_LOG_ERROR = 3
} shredkv_log_level_t;

typedef enum shredkv_maintenance_job {
  SHREDKV_JOB_PURGE = 1,
  SHREDKV_JOB_ROTATION = 2,
  SHREDKV_JOB_COMPACTION = 3,
  SHREDKV_JOB_SWEEP = 4,
  SHREDKV_JOB_ANALYTICS = 5,
  SHREDKV_JOB_ORPHAN_KEYS = 6
} shredkv_maintenance_job_t;

typedef enum shredkv_export_format {
  SHREDKV_EXPORT_JSON = 0,
  SHREDKV_EXPORT_NDJSON = 1
} shredkv_export_format_t;

typedef enum shredkv_record_query_field {
  SHREDKV_QUERY_PURPOSE = 0,
  SHREDKV_QUERY_RECIPIENT = 1,
  SHREDKV_QUERY_EXPIRES_BEFORE = 2
} shredkv_record_query_field_t;

typedef enum shredkv_restored_custody_keys {
  SHREDKV_CUSTODY_KEYS_UNSPECIFIED = 0,
  SHREDKV_CUSTODY_KEYS_TAKE_OVER = 1,
  SHREDKV_CUSTODY_KEYS_NEW = 2
} shredkv_restored_custody_keys_t;

/* Short stable names ("keep", "cryptographic", "rectification", "erase",
 * "purge"); static storage. "unknown" outside the enum. */
SHREDKV_EXPORT const char* shredkv_analytics_on_erase_name(int mode);
SHREDKV_EXPORT const char* shredkv_erasure_level_name(int level);
SHREDKV_EXPORT const char* shredkv_notice_kind_name(int kind);
SHREDKV_EXPORT const char* shredkv_audit_action_name(int action);
SHREDKV_EXPORT const char* shredkv_maintenance_job_name(int job);
SHREDKV_EXPORT const char* shredkv_log_level_name(int level);

/* ---- identifiers ----------------------------------------------------------- */

/* An identifier of a person (Identifier): a type ("email", NUL-terminated)
 * and a value of `value_len` bytes. Input only; the store copies it. */
typedef struct shredkv_identifier {
  const char* type;
  const char* value;
  size_t value_len;
} shredkv_identifier_t;

/* ---- attributes: typed name → value maps (Attributes) ---------------------- */

typedef struct shredkv_attrs shredkv_attrs_t;

SHREDKV_EXPORT shredkv_attrs_t* shredkv_attrs_create(void);
SHREDKV_EXPORT void shredkv_attrs_destroy(shredkv_attrs_t* attrs);
/* Setters add or replace the attribute `name` (NUL-terminated, 1..255
 * bytes: checked where the map is used). A NULL value with a nonzero
 * value_len aborts the process (the message on stderr): the map has no
 * room for an error, and empty data in its place would be silent loss. */
SHREDKV_EXPORT void shredkv_attrs_set_string(shredkv_attrs_t* attrs, const char* name,
                                             const char* value, size_t value_len);
SHREDKV_EXPORT void shredkv_attrs_set_int64(shredkv_attrs_t* attrs, const char* name, int64_t value);
SHREDKV_EXPORT void shredkv_attrs_set_double(shredkv_attrs_t* attrs, const char* name, double value);
SHREDKV_EXPORT void shredkv_attrs_set_bool(shredkv_attrs_t* attrs, const char* name, unsigned char value);
SHREDKV_EXPORT void shredkv_attrs_set_timestamp(shredkv_attrs_t* attrs, const char* name, int64_t ms);
SHREDKV_EXPORT void shredkv_attrs_set_bytes(shredkv_attrs_t* attrs, const char* name,
                                            const char* value, size_t value_len);
/* Removes `name`; 1 if it was there, 0 if not. */
SHREDKV_EXPORT int shredkv_attrs_remove(shredkv_attrs_t* attrs, const char* name);
SHREDKV_EXPORT void shredkv_attrs_clear(shredkv_attrs_t* attrs);
/* Attributes in name order (bytewise), indexed 0..count-1. */
SHREDKV_EXPORT size_t shredkv_attrs_count(const shredkv_attrs_t* attrs);
/* The index of `name`, or -1 if absent. */
SHREDKV_EXPORT long shredkv_attrs_find(const shredkv_attrs_t* attrs, const char* name);
/* REQUIRES for the accessors below: i < count; for a typed getter, the
 * attribute is of that type (shredkv_attrs_type); otherwise the getter
 * returns 0 / NULL and length 0. */
SHREDKV_EXPORT const char* shredkv_attrs_name(const shredkv_attrs_t* attrs, size_t i);
SHREDKV_EXPORT int shredkv_attrs_type(const shredkv_attrs_t* attrs, size_t i); /* shredkv_value_type */
/* STRING and BYTES. */
SHREDKV_EXPORT const char* shredkv_attrs_data(const shredkv_attrs_t* attrs, size_t i, size_t* len);
/* INT64 and TIMESTAMP (ms); BOOL as 0/1. */
SHREDKV_EXPORT int64_t shredkv_attrs_int64(const shredkv_attrs_t* attrs, size_t i);
SHREDKV_EXPORT double shredkv_attrs_double(const shredkv_attrs_t* attrs, size_t i);

/* ---- key providers, custody, options --------------------------------------- */

typedef struct shredkv_key_provider shredkv_key_provider_t;

/* Root key from a file of 32 raw bytes, mode 0600 (NewFileKeyProvider). */
SHREDKV_EXPORT shredkv_key_provider_t* shredkv_key_provider_file(const char* path);
/* Argon2id from a passphrase and the store's salt; `interactive` selects
 * the fast limits (tests). The passphrase is copied into guarded memory.
 * NULL if passphrase is NULL with a nonzero passphrase_len. */
SHREDKV_EXPORT shredkv_key_provider_t* shredkv_key_provider_passphrase(const char* passphrase,
                                                                       size_t passphrase_len,
                                                                       unsigned char interactive);
/* Exactly 32 key bytes, copied into guarded memory; NULL if key_len != 32. */
SHREDKV_EXPORT shredkv_key_provider_t* shredkv_key_provider_raw(const char* key, size_t key_len);
/* The root key from the application's own source (a KMS, a secret
 * manager): `get_key` is called when a store is opened (also by
 * shredkv_restore_backup and shredkv_rotate_root_key) with the store's
 * random salt (16 bytes; what a derivation may use), and writes exactly 32
 * key bytes into `key_out`, which the library wipes after copying them into
 * guarded memory. It returns 0, or nonzero to fail the call with IO_ERROR,
 * optionally setting *message to a malloc'ed explanation (freed by the
 * library; never put key material in it). `key_out` starts zeroed, and a
 * callback that returns 0 leaving 32 zero bytes there fails the call with
 * IO_ERROR too (since stop 26: a binding whose exception turned into a
 * default 0 had sealed the store under uninitialised bytes). `description` (copied) names the
 * provider in messages; ctx is passed back. Called on the opening thread.
 * NULL if get_key is NULL. */
typedef int (*shredkv_get_root_key_fn)(void* ctx, const char* store_salt, size_t salt_len,
                                       unsigned char key_out[32], char** message);
SHREDKV_EXPORT shredkv_key_provider_t* shredkv_key_provider_callback(shredkv_get_root_key_fn get_key, void* ctx,
                                                                     const char* description);
/* The options and stores holding the provider keep it alive. */
SHREDKV_EXPORT void shredkv_key_provider_destroy(shredkv_key_provider_t* provider);
/* Creates a new 32-byte root key file, mode 0600, O_EXCL, fsynced
 * (CreateKeyFile). ALREADY_EXISTS if `path` exists. */
SHREDKV_EXPORT int shredkv_create_key_file(const char* path, char** errptr);

/* Epoch keys held in a PKCS#11 token (key_custody.h, NewPkcs11Custody):
 * the module's path, the token's label, the user PIN (copied). */
typedef struct shredkv_custody shredkv_custody_t;
SHREDKV_EXPORT int shredkv_custody_pkcs11(const char* module_path, const char* token_label,
                                          const char* pin, size_t pin_len,
                                          shredkv_custody_t** out, char** errptr);
SHREDKV_EXPORT void shredkv_custody_destroy(shredkv_custody_t* custody);

/* Storage limitation by time (RetentionRules): max ages in ms. */
typedef struct shredkv_retention shredkv_retention_t;
SHREDKV_EXPORT shredkv_retention_t* shredkv_retention_create(void);
SHREDKV_EXPORT void shredkv_retention_destroy(shredkv_retention_t* rules);
SHREDKV_EXPORT void shredkv_retention_set_event(shredkv_retention_t* rules, const char* event_name,
                                                int64_t max_age_ms);
SHREDKV_EXPORT void shredkv_retention_set_collection(shredkv_retention_t* rules, const char* collection,
                                                     int64_t max_age_ms);
/* The same for any collection name (data: pointer + length, NUL and
 * non-UTF-8 bytes included; shredkv_retention_set_collection takes a C
 * string, so it cannot name those). Aborts if collection is NULL with a
 * nonzero length. */
SHREDKV_EXPORT void shredkv_retention_set_collection_n(shredkv_retention_t* rules, const char* collection,
                                                       size_t collection_len, int64_t max_age_ms);
SHREDKV_EXPORT void shredkv_retention_set_analytics(shredkv_retention_t* rules, int64_t max_age_ms);
/* Rules in name order; name borrowed from the rules. */
SHREDKV_EXPORT size_t shredkv_retention_event_count(const shredkv_retention_t* rules);
SHREDKV_EXPORT const char* shredkv_retention_event(const shredkv_retention_t* rules, size_t i,
                                                   int64_t* max_age_ms);
SHREDKV_EXPORT size_t shredkv_retention_collection_count(const shredkv_retention_t* rules);
SHREDKV_EXPORT const char* shredkv_retention_collection(const shredkv_retention_t* rules, size_t i,
                                                        int64_t* max_age_ms);
/* Rule i's collection with its length (borrowed from the rules; a name
 * that holds a NUL is cut short by shredkv_retention_collection). */
SHREDKV_EXPORT const char* shredkv_retention_collection_n(const shredkv_retention_t* rules, size_t i,
                                                          size_t* collection_len, int64_t* max_age_ms);
SHREDKV_EXPORT int64_t shredkv_retention_analytics(const shredkv_retention_t* rules);
/* RetentionRules::feed: the max age of change-feed notices (0: kept until
 * acknowledged). */
SHREDKV_EXPORT void shredkv_retention_set_feed(shredkv_retention_t* rules, int64_t max_age_ms);
SHREDKV_EXPORT int64_t shredkv_retention_feed(const shredkv_retention_t* rules);

/* Options of a store (Options; the defaults are the C++ ones). */
typedef struct shredkv_options shredkv_options_t;
SHREDKV_EXPORT shredkv_options_t* shredkv_options_create(void);
SHREDKV_EXPORT void shredkv_options_destroy(shredkv_options_t* options);
SHREDKV_EXPORT void shredkv_options_set_directory(shredkv_options_t* options, const char* directory);
SHREDKV_EXPORT void shredkv_options_set_create_if_missing(shredkv_options_t* options, unsigned char v);
SHREDKV_EXPORT void shredkv_options_set_error_if_exists(shredkv_options_t* options, unsigned char v);
SHREDKV_EXPORT void shredkv_options_set_read_only(shredkv_options_t* options, unsigned char v);
SHREDKV_EXPORT void shredkv_options_set_durability(shredkv_options_t* options, int durability);
SHREDKV_EXPORT void shredkv_options_set_initial_map_size(shredkv_options_t* options, uint64_t bytes);
SHREDKV_EXPORT void shredkv_options_set_max_map_size(shredkv_options_t* options, uint64_t bytes);
SHREDKV_EXPORT void shredkv_options_set_dek_cache_capacity(shredkv_options_t* options, size_t keys);
/* Required. The options keep their own reference: the caller may destroy
 * its handle at once. */
SHREDKV_EXPORT void shredkv_options_set_key_provider(shredkv_options_t* options,
                                                     const shredkv_key_provider_t* provider);
/* NULL clears it. Kept by reference, like the key provider. */
SHREDKV_EXPORT void shredkv_options_set_custody(shredkv_options_t* options,
                                                const shredkv_custody_t* custody);
SHREDKV_EXPORT void shredkv_options_set_cipher(shredkv_options_t* options, int cipher);
SHREDKV_EXPORT void shredkv_options_add_identifier_type(shredkv_options_t* options, const char* name,
                                                        int normalization);
SHREDKV_EXPORT void shredkv_options_set_iterator_batch_size(shredkv_options_t* options, size_t rows);
/* The clock in ms since the epoch (tests); NULL restores the system clock.
 * Called from any thread of the store. */
SHREDKV_EXPORT void shredkv_options_set_clock(shredkv_options_t* options,
                                              int64_t (*clock)(void* ctx), void* ctx);
/* Progress of rotate-keys, verify, migrate, on the calling thread; must
 * not call the store. NULL: none. */
SHREDKV_EXPORT void shredkv_options_set_progress(
    shredkv_options_t* options,
    void (*progress)(void* ctx, const char* operation, uint64_t done, uint64_t total), void* ctx);
/* Log lines at or above `min_level` (shredkv_log_level); the message is
 * NUL-terminated and valid during the call. Person IDs are masked. */
SHREDKV_EXPORT void shredkv_options_set_logger(shredkv_options_t* options,
                                               void (*log)(void* ctx, int level, const char* message),
                                               void* ctx, int min_level);
SHREDKV_EXPORT void shredkv_options_set_unlink_time_granularity_ms(shredkv_options_t* options, int64_t ms);
SHREDKV_EXPORT void shredkv_options_set_analytics_time_granularity_ms(shredkv_options_t* options,
                                                                      int64_t ms);
SHREDKV_EXPORT void shredkv_options_set_rotate_after_erasures(shredkv_options_t* options, uint64_t n);
SHREDKV_EXPORT void shredkv_options_set_rotate_after_ms(shredkv_options_t* options, int64_t ms);
SHREDKV_EXPORT void shredkv_options_set_rotation_batch_size(shredkv_options_t* options, size_t keys);
SHREDKV_EXPORT void shredkv_options_set_background_maintenance_ms(shredkv_options_t* options, int64_t ms);
SHREDKV_EXPORT void shredkv_options_set_purge_budget_rows(shredkv_options_t* options, size_t rows);
/* Copies the rules; NULL unsets them (the stored rules apply). */
SHREDKV_EXPORT void shredkv_options_set_retention(shredkv_options_t* options,
                                                  const shredkv_retention_t* rules);
SHREDKV_EXPORT void shredkv_options_set_sweep_budget_rows(shredkv_options_t* options, size_t rows);
/* The first call replaces the default purposes / categories; later calls add. */
SHREDKV_EXPORT void shredkv_options_add_purpose(shredkv_options_t* options, const char* name, int basis);
SHREDKV_EXPORT void shredkv_options_add_category(shredkv_options_t* options, const char* name);
SHREDKV_EXPORT void shredkv_options_set_event_category(shredkv_options_t* options, const char* event_name,
                                                       const char* category);
SHREDKV_EXPORT void shredkv_options_set_collection_category(shredkv_options_t* options,
                                                            const char* collection, const char* category);
/* The same for any collection name (pointer + length, as
 * shredkv_retention_set_collection_n). Aborts if collection is NULL with a
 * nonzero length. */
SHREDKV_EXPORT void shredkv_options_set_collection_category_n(shredkv_options_t* options,
                                                              const char* collection, size_t collection_len,
                                                              const char* category);
SHREDKV_EXPORT void shredkv_options_set_attribute_category(shredkv_options_t* options,
                                                           const char* attribute, const char* category);
SHREDKV_EXPORT void shredkv_options_set_tracking_purpose(shredkv_options_t* options, const char* purpose);
SHREDKV_EXPORT void shredkv_options_set_tracking_policy(shredkv_options_t* options, int policy);
SHREDKV_EXPORT void shredkv_options_set_lease_drain_timeout_ms(shredkv_options_t* options, int64_t ms);
SHREDKV_EXPORT void shredkv_options_set_audit_processing_reads(shredkv_options_t* options, unsigned char v);

/* ---- listeners (EventListener) ---------------------------------------------- */

typedef struct shredkv_receipt shredkv_receipt_t;

/* Callbacks of a listener; any may be NULL. Called after the store released
 * its locks, one notice at a time (listener.h's rules: a callback may call
 * the store, not close it). Borrowed arguments are valid during the call. */
typedef struct shredkv_listener_callbacks {
  void (*erasure_committed)(void* ctx, const shredkv_receipt_t* receipt);
  void (*erasure_level_reached)(void* ctx, const shredkv_receipt_t* receipt);
  /* job: shredkv_maintenance_job; code: the job's status code. */
  void (*maintenance_completed)(void* ctx, int job, unsigned char background, int code,
                                int64_t duration_us, uint64_t done, uint64_t pending);
  void (*background_error)(void* ctx, int code, const char* message);
} shredkv_listener_callbacks_t;

/* Adds a listener; the callbacks struct is copied. */
SHREDKV_EXPORT void shredkv_options_add_listener(shredkv_options_t* options,
                                                 const shredkv_listener_callbacks_t* callbacks, void* ctx);

/* ---- the store --------------------------------------------------------------- */

typedef struct shredkv_store shredkv_store_t;

/* Store::Open. On success *out is the store, to be released with
 * shredkv_close. */
SHREDKV_EXPORT int shredkv_open(const shredkv_options_t* options, shredkv_store_t** out, char** errptr);
/* Store::Close, then releases the handle (also when Close fails; NULL is a
 * no-op). Every iterator and lease of the store must be destroyed before
 * (batches are not tied to a store). In a child process after fork() it
 * returns FAILED_PRECONDITION at once and releases only the handle (the
 * store's memory is left to the child's exit; since stop 26 — it could hang
 * there). Called on the store's background maintenance thread (from a
 * listener or logger) it returns FAILED_PRECONDITION and changes nothing:
 * the store stays open and the handle valid (since stop 32 — it aborted the
 * process); close it from another thread. A sharded store's handle closes
 * every shard; a shard's view (shredkv_shard) releases only itself. */
SHREDKV_EXPORT int shredkv_close(shredkv_store_t* store, char** errptr);

/* ---- people and identifiers ------------------------------------------------- */

/* Store::CreatePerson: n >= 1 identifiers; profile may be NULL. */
SHREDKV_EXPORT int shredkv_create_person(shredkv_store_t* store, const shredkv_identifier_t* identifiers,
                                         size_t n, const shredkv_attrs_t* profile,
                                         shredkv_person_id_t* out, char** errptr);
/* Store::Resolve: NOT_FOUND, SUPPRESSED, ERASED. */
SHREDKV_EXPORT int shredkv_resolve(shredkv_store_t* store, const shredkv_identifier_t* identifier,
                                   shredkv_person_id_t* out, char** errptr);
SHREDKV_EXPORT int shredkv_link_identifier(shredkv_store_t* store, const shredkv_person_id_t* person,
                                           const shredkv_identifier_t* identifier, char** errptr);
SHREDKV_EXPORT int shredkv_unlink_identifier(shredkv_store_t* store, const shredkv_person_id_t* person,
                                             const shredkv_identifier_t* identifier, char** errptr);
/* Normalises a value by its type's rules (NormalizeIdentifier); `options`
 * (may be NULL) adds its identifier types. *out: malloc'ed. */
SHREDKV_EXPORT int shredkv_normalize_identifier(const shredkv_options_t* options,
                                                const shredkv_identifier_t* identifier, char** out,
                                                size_t* out_len, char** errptr);
/* 0 if `identifier` may be given to a person (CheckNewIdentifier): the
 * errors of shredkv_normalize_identifier, and SHREDKV_INVALID_ARGUMENT if its
 * normalised value holds a control character or, for an e-mail address,
 * ill-formed UTF-8 or an invisible or space-like character — what a store
 * refuses when the identifier would become someone's. `options` (may be
 * NULL) adds its identifier types. Reads no store. */
SHREDKV_EXPORT int shredkv_check_new_identifier(const shredkv_options_t* options,
                                                const shredkv_identifier_t* identifier, char** errptr);

/* What the store holds about a person (PersonInfo). */
typedef struct shredkv_person_info shredkv_person_info_t;
SHREDKV_EXPORT int shredkv_get_person(shredkv_store_t* store, const shredkv_person_id_t* person,
                                      shredkv_person_info_t** out, char** errptr);
SHREDKV_EXPORT void shredkv_person_info_destroy(shredkv_person_info_t* info);
SHREDKV_EXPORT void shredkv_person_info_id(const shredkv_person_info_t* info, shredkv_person_id_t* out);
/* The anonymous ID's 16 bytes. */
SHREDKV_EXPORT void shredkv_person_info_anon_id(const shredkv_person_info_t* info, uint8_t out[16]);
SHREDKV_EXPORT int64_t shredkv_person_info_created_ms(const shredkv_person_info_t* info);
SHREDKV_EXPORT uint64_t shredkv_person_info_key_epoch(const shredkv_person_info_t* info);
/* Normalised identifiers, sorted by (type, value). */
SHREDKV_EXPORT size_t shredkv_person_info_identifier_count(const shredkv_person_info_t* info);
SHREDKV_EXPORT const char* shredkv_person_info_identifier(const shredkv_person_info_t* info, size_t i,
                                                          const char** value, size_t* value_len);

/* ---- profiles ------------------------------------------------------------------ */

/* Store::GetProfile: *out is a new attribute map. */
SHREDKV_EXPORT int shredkv_get_profile(shredkv_store_t* store, const shredkv_person_id_t* person,
                                       shredkv_attrs_t** out, char** errptr);
/* Store::LookupProfile (shredkv_resolve + shredkv_get_profile in one read):
 * *person gets the person, *out a new attribute map. NOT_FOUND, SUPPRESSED,
 * ERASED as shredkv_resolve. */
SHREDKV_EXPORT int shredkv_lookup_profile(shredkv_store_t* store, const shredkv_identifier_t* identifier,
                                          shredkv_person_id_t* person, shredkv_attrs_t** out, char** errptr);
/* Store::PatchProfile: sets `set` (may be NULL) and removes the `n_unset`
 * names in one step. */
SHREDKV_EXPORT int shredkv_patch_profile(shredkv_store_t* store, const shredkv_person_id_t* person,
                                         const shredkv_attrs_t* set, const char* const* unset,
                                         size_t n_unset, char** errptr);

/* ---- events ------------------------------------------------------------------- */

/* Store::AppendEvent. properties may be NULL; the `n_fields` names in
 * analytics_fields must be properties; category NULL or "": the declared one. */
SHREDKV_EXPORT int shredkv_append_event(shredkv_store_t* store, const shredkv_person_id_t* person,
                                        const char* name, int64_t ts_ms, const shredkv_attrs_t* properties,
                                        const char* const* analytics_fields, size_t n_fields,
                                        const char* category, char** errptr);

/* A stored event (StoredEvent), borrowed from an iterator or export item. */
typedef struct shredkv_event shredkv_event_t;
SHREDKV_EXPORT const char* shredkv_event_name(const shredkv_event_t* event);
SHREDKV_EXPORT int64_t shredkv_event_ts_ms(const shredkv_event_t* event);
SHREDKV_EXPORT uint64_t shredkv_event_seq(const shredkv_event_t* event);
SHREDKV_EXPORT const char* shredkv_event_category(const shredkv_event_t* event);
SHREDKV_EXPORT const shredkv_attrs_t* shredkv_event_properties(const shredkv_event_t* event);

/* ---- records ------------------------------------------------------------------ */

/* A record (Record) with its metadata (RecordMetadata). Built by the caller
 * for shredkv_put_record / shredkv_writebatch_put_record, returned owned by
 * shredkv_get_record, borrowed from iterators. shredkv_record_create returns
 * NULL if collection, key or value is NULL with a nonzero length;
 * shredkv_record_set_origin aborts then (as the attribute setters). */
typedef struct shredkv_record shredkv_record_t;
SHREDKV_EXPORT shredkv_record_t* shredkv_record_create(const char* collection, size_t collection_len,
                                                       const char* key, size_t key_len, const char* value,
                                                       size_t value_len);
SHREDKV_EXPORT void shredkv_record_destroy(shredkv_record_t* record);
/* NULL or "": the collection's declared category (a new record), or the
 * record's own (an update). */
SHREDKV_EXPORT void shredkv_record_set_category(shredkv_record_t* record, const char* category);
SHREDKV_EXPORT void shredkv_record_add_purpose(shredkv_record_t* record, const char* purpose);
SHREDKV_EXPORT void shredkv_record_set_origin(shredkv_record_t* record, const char* origin, size_t origin_len);
SHREDKV_EXPORT void shredkv_record_add_shared_with(shredkv_record_t* record, const char* recipient);
SHREDKV_EXPORT void shredkv_record_set_automated_decision(shredkv_record_t* record, unsigned char v);
SHREDKV_EXPORT void shredkv_record_set_expires_ms(shredkv_record_t* record, int64_t ms);
SHREDKV_EXPORT const char* shredkv_record_collection(const shredkv_record_t* record, size_t* len);
SHREDKV_EXPORT const char* shredkv_record_key(const shredkv_record_t* record, size_t* len);
SHREDKV_EXPORT const char* shredkv_record_value(const shredkv_record_t* record, size_t* len);
SHREDKV_EXPORT const char* shredkv_record_category(const shredkv_record_t* record);
SHREDKV_EXPORT size_t shredkv_record_purpose_count(const shredkv_record_t* record);
SHREDKV_EXPORT const char* shredkv_record_purpose(const shredkv_record_t* record, size_t i);
SHREDKV_EXPORT const char* shredkv_record_origin(const shredkv_record_t* record, size_t* len);
SHREDKV_EXPORT size_t shredkv_record_shared_with_count(const shredkv_record_t* record);
SHREDKV_EXPORT const char* shredkv_record_shared_with(const shredkv_record_t* record, size_t i);
SHREDKV_EXPORT unsigned char shredkv_record_automated_decision(const shredkv_record_t* record);
SHREDKV_EXPORT int64_t shredkv_record_expires_ms(const shredkv_record_t* record);

/* Store::Put (value of the record only; metadata none). */
SHREDKV_EXPORT int shredkv_put(shredkv_store_t* store, const shredkv_person_id_t* person,
                               const char* collection, size_t collection_len, const char* key, size_t key_len,
                               const char* value, size_t value_len, char** errptr);
/* Puts a whole record with its category and metadata (one commit). */
SHREDKV_EXPORT int shredkv_put_record(shredkv_store_t* store, const shredkv_person_id_t* person,
                                      const shredkv_record_t* record, char** errptr);
/* Store::Get: *value malloc'ed (value required). NOT_FOUND if absent. */
SHREDKV_EXPORT int shredkv_get(shredkv_store_t* store, const shredkv_person_id_t* person,
                               const char* collection, size_t collection_len, const char* key, size_t key_len,
                               char** value, size_t* value_len, char** errptr);
/* Store::GetRecord: *out owned. */
SHREDKV_EXPORT int shredkv_get_record(shredkv_store_t* store, const shredkv_person_id_t* person,
                                      const char* collection, size_t collection_len, const char* key,
                                      size_t key_len, shredkv_record_t** out, char** errptr);
/* Store::Delete: deleting an absent record is OK. */
SHREDKV_EXPORT int shredkv_delete(shredkv_store_t* store, const shredkv_person_id_t* person,
                                  const char* collection, size_t collection_len, const char* key,
                                  size_t key_len, char** errptr);

/* ---- iterators ------------------------------------------------------------------ */

/* One iterator type for every scan: positioned on its first item when
 * returned; the accessor matching its kind returns the current item
 * (borrowed until shredkv_iter_next), the others NULL. Errors of the scan
 * (NOT_FOUND, ERASED, BUSY, CORRUPTION, ...) end it: check
 * shredkv_iter_status once shredkv_iter_valid is 0. An iterator started
 * before an erasure returns none of the erased data once shredkv_erase (or
 * shredkv_erase_category) returned: its next call skips the erased items or
 * ends with ERASED (iterator.h); an item borrowed before stays valid, as it
 * was, until shredkv_iter_next, which moves past it. */
typedef struct shredkv_iterator shredkv_iterator_t;
SHREDKV_EXPORT unsigned char shredkv_iter_valid(const shredkv_iterator_t* it);
/* REQUIRES: valid. */
SHREDKV_EXPORT void shredkv_iter_next(shredkv_iterator_t* it);
SHREDKV_EXPORT int shredkv_iter_status(const shredkv_iterator_t* it, char** errptr);
SHREDKV_EXPORT void shredkv_iter_destroy(shredkv_iterator_t* it);

typedef struct shredkv_analytics_row shredkv_analytics_row_t;
typedef struct shredkv_export_item shredkv_export_item_t;
/* Current item, or NULL if not valid or not of that kind. */
SHREDKV_EXPORT const shredkv_event_t* shredkv_iter_event(const shredkv_iterator_t* it);
SHREDKV_EXPORT const shredkv_record_t* shredkv_iter_record(const shredkv_iterator_t* it);
SHREDKV_EXPORT const shredkv_analytics_row_t* shredkv_iter_analytics(const shredkv_iterator_t* it);
SHREDKV_EXPORT const shredkv_export_item_t* shredkv_iter_export_item(const shredkv_iterator_t* it);
/* The person of the current item: people_with_consent's person, or
 * find_records' record's owner. 0 (and *out untouched) otherwise. */
SHREDKV_EXPORT int shredkv_iter_person(const shredkv_iterator_t* it, shredkv_person_id_t* out);

/* Store::ScanEvents over [from_ms, to_ms) (INT64_MIN, INT64_MAX: all). */
SHREDKV_EXPORT shredkv_iterator_t* shredkv_scan_events(shredkv_store_t* store, const shredkv_person_id_t* person,
                                                       int64_t from_ms, int64_t to_ms);
/* Store::ScanRecords: the person's records in `collection` whose key starts
 * with `prefix` (prefix_len 0: all). */
SHREDKV_EXPORT shredkv_iterator_t* shredkv_scan_records(shredkv_store_t* store, const shredkv_person_id_t* person,
                                                        const char* collection, size_t collection_len,
                                                        const char* prefix, size_t prefix_len);
/* Store::FindRecords: records of any person whose metadata lists `value`
 * (purpose / recipient), or expiring before `before_ms` (EXPIRES_BEFORE;
 * value ignored). Items: shredkv_iter_record and shredkv_iter_person. */
SHREDKV_EXPORT shredkv_iterator_t* shredkv_find_records(shredkv_store_t* store, int field, const char* value,
                                                        int64_t before_ms);
/* Store::ScanAnalytics over [from_ms, to_ms); name NULL: every event name. */
SHREDKV_EXPORT shredkv_iterator_t* shredkv_scan_analytics(shredkv_store_t* store, int64_t from_ms, int64_t to_ms,
                                                          const char* name);

/* An analytics row (AnalyticsRow), borrowed. */
SHREDKV_EXPORT void shredkv_analytics_anon_id(const shredkv_analytics_row_t* row, uint8_t out[16]);
SHREDKV_EXPORT const char* shredkv_analytics_name(const shredkv_analytics_row_t* row);
SHREDKV_EXPORT int64_t shredkv_analytics_ts_ms(const shredkv_analytics_row_t* row);
SHREDKV_EXPORT uint64_t shredkv_analytics_seq(const shredkv_analytics_row_t* row);
SHREDKV_EXPORT const shredkv_attrs_t* shredkv_analytics_fields(const shredkv_analytics_row_t* row);

/* ---- rectification and the change feed (Art. 16, 19) ---------------------------- */

/* Corrections applied atomically (Rectification). */
typedef struct shredkv_rectification shredkv_rectification_t;
SHREDKV_EXPORT shredkv_rectification_t* shredkv_rectification_create(void);
SHREDKV_EXPORT void shredkv_rectification_destroy(shredkv_rectification_t* r);
/* The profile attributes to set (copied; merged with earlier calls). */
SHREDKV_EXPORT void shredkv_rectification_set_profile(shredkv_rectification_t* r, const shredkv_attrs_t* set);
SHREDKV_EXPORT void shredkv_rectification_unset_profile(shredkv_rectification_t* r, const char* name);
SHREDKV_EXPORT void shredkv_rectification_replace_identifier(shredkv_rectification_t* r,
                                                             const shredkv_identifier_t* old_identifier,
                                                             const shredkv_identifier_t* new_identifier);
/* Corrects the properties of the event (ts_ms, seq): sets `set` (may be
 * NULL) and removes the `n_unset` names. */
SHREDKV_EXPORT void shredkv_rectification_correct_event(shredkv_rectification_t* r, int64_t ts_ms, uint64_t seq,
                                                        const shredkv_attrs_t* set, const char* const* unset,
                                                        size_t n_unset);
/* Store::Rectify. */
SHREDKV_EXPORT int shredkv_rectify(shredkv_store_t* store, const shredkv_person_id_t* person,
                                   const shredkv_rectification_t* r, char** errptr);

/* A change-feed notice (Notice). */
typedef struct shredkv_notice shredkv_notice_t;
SHREDKV_EXPORT uint64_t shredkv_notice_cursor(const shredkv_notice_t* notice);
SHREDKV_EXPORT int shredkv_notice_kind(const shredkv_notice_t* notice); /* shredkv_notice_kind */
SHREDKV_EXPORT void shredkv_notice_person(const shredkv_notice_t* notice, shredkv_person_id_t* out);
SHREDKV_EXPORT int64_t shredkv_notice_time_ms(const shredkv_notice_t* notice);
SHREDKV_EXPORT size_t shredkv_notice_name_count(const shredkv_notice_t* notice);
SHREDKV_EXPORT const char* shredkv_notice_name(const shredkv_notice_t* notice, size_t i);

typedef struct shredkv_notice_list shredkv_notice_list_t;
/* Store::ReadFeed: up to `max` unacknowledged notices, oldest first. */
SHREDKV_EXPORT int shredkv_read_feed(shredkv_store_t* store, size_t max, shredkv_notice_list_t** out,
                                     char** errptr);
SHREDKV_EXPORT size_t shredkv_notice_list_count(const shredkv_notice_list_t* list);
SHREDKV_EXPORT const shredkv_notice_t* shredkv_notice_list_at(const shredkv_notice_list_t* list, size_t i);
SHREDKV_EXPORT void shredkv_notice_list_destroy(shredkv_notice_list_t* list);
/* Store::AckFeed: deletes every notice with cursor <= `cursor`; an
 * InvalidArgument error for a cursor past the newest ever issued. */
SHREDKV_EXPORT int shredkv_ack_feed(shredkv_store_t* store, uint64_t cursor, char** errptr);

/* ---- restriction, consent, leases (Art. 18, 21) -------------------------------------- */

/* Which processing a person has restricted (RestrictionState). */
typedef struct shredkv_restriction shredkv_restriction_t;
SHREDKV_EXPORT unsigned char shredkv_restriction_all(const shredkv_restriction_t* r);
SHREDKV_EXPORT size_t shredkv_restriction_purpose_count(const shredkv_restriction_t* r);
SHREDKV_EXPORT const char* shredkv_restriction_purpose(const shredkv_restriction_t* r, size_t i);
SHREDKV_EXPORT size_t shredkv_restriction_category_count(const shredkv_restriction_t* r);
SHREDKV_EXPORT const char* shredkv_restriction_category(const shredkv_restriction_t* r, size_t i);
/* The last change (0: never restricted). */
SHREDKV_EXPORT int64_t shredkv_restriction_updated_ms(const shredkv_restriction_t* r);
SHREDKV_EXPORT void shredkv_restriction_destroy(shredkv_restriction_t* r);

/* Store::Restrict / Unrestrict for `n` people in one commit, all or
 * nothing: `all`, and/or purposes and categories; reason may be NULL. */
SHREDKV_EXPORT int shredkv_restrict(shredkv_store_t* store, const shredkv_person_id_t* people, size_t n,
                                    unsigned char all, const char* const* purposes, size_t n_purposes,
                                    const char* const* categories, size_t n_categories, const char* reason,
                                    char** errptr);
SHREDKV_EXPORT int shredkv_unrestrict(shredkv_store_t* store, const shredkv_person_id_t* people, size_t n,
                                      unsigned char all, const char* const* purposes, size_t n_purposes,
                                      const char* const* categories, size_t n_categories, const char* reason,
                                      char** errptr);
SHREDKV_EXPORT int shredkv_get_restriction(shredkv_store_t* store, const shredkv_person_id_t* person,
                                           shredkv_restriction_t** out, char** errptr);

/* Store::SetConsent for `n` people in one commit; source may be NULL. */
SHREDKV_EXPORT int shredkv_set_consent(shredkv_store_t* store, const shredkv_person_id_t* people, size_t n,
                                       const char* purpose, unsigned char granted, const char* source,
                                       char** errptr);

/* Consent per purpose (Store::GetConsent), or a consent history
 * (Store::GetConsentHistory): a list of consent records. */
typedef struct shredkv_consent_list shredkv_consent_list_t;
typedef struct shredkv_consent_record shredkv_consent_record_t;
/* The current decisions: one record a purpose, GRANT or WITHDRAW, time 0. */
SHREDKV_EXPORT int shredkv_get_consent(shredkv_store_t* store, const shredkv_person_id_t* person,
                                       shredkv_consent_list_t** out, char** errptr);
SHREDKV_EXPORT int shredkv_get_consent_history(shredkv_store_t* store, const shredkv_person_id_t* person,
                                               shredkv_consent_list_t** out, char** errptr);
SHREDKV_EXPORT size_t shredkv_consent_list_count(const shredkv_consent_list_t* list);
SHREDKV_EXPORT const shredkv_consent_record_t* shredkv_consent_list_at(const shredkv_consent_list_t* list,
                                                                       size_t i);
SHREDKV_EXPORT void shredkv_consent_list_destroy(shredkv_consent_list_t* list);
SHREDKV_EXPORT int shredkv_consent_action(const shredkv_consent_record_t* c); /* shredkv_consent_action */
SHREDKV_EXPORT const char* shredkv_consent_purpose(const shredkv_consent_record_t* c);
/* RESTRICT / UNRESTRICT: what was restricted or lifted, and the reason
 * given ("" if none). */
SHREDKV_EXPORT unsigned char shredkv_consent_restriction_all(const shredkv_consent_record_t* c);
SHREDKV_EXPORT size_t shredkv_consent_restriction_purpose_count(const shredkv_consent_record_t* c);
SHREDKV_EXPORT const char* shredkv_consent_restriction_purpose(const shredkv_consent_record_t* c, size_t i);
SHREDKV_EXPORT size_t shredkv_consent_restriction_category_count(const shredkv_consent_record_t* c);
SHREDKV_EXPORT const char* shredkv_consent_restriction_category(const shredkv_consent_record_t* c, size_t i);
SHREDKV_EXPORT const char* shredkv_consent_restriction_reason(const shredkv_consent_record_t* c);
SHREDKV_EXPORT int64_t shredkv_consent_time_ms(const shredkv_consent_record_t* c);
SHREDKV_EXPORT const char* shredkv_consent_source(const shredkv_consent_record_t* c);

/* Store::PeopleWithConsent: items through shredkv_iter_person. */
SHREDKV_EXPORT shredkv_iterator_t* shredkv_people_with_consent(shredkv_store_t* store, const char* purpose,
                                                               unsigned char granted);

/* A processing lease (Lease): one person, one purpose, one thread. */
typedef struct shredkv_lease shredkv_lease_t;
/* Store::AcquireLease: RESTRICTED, BUSY, NOT_FOUND, ERASED, INVALID_ARGUMENT. */
SHREDKV_EXPORT int shredkv_acquire_lease(shredkv_store_t* store, const shredkv_person_id_t* person,
                                         const char* purpose, shredkv_lease_t** out, char** errptr);
/* Releases the lease. Its iterators must be destroyed first. */
SHREDKV_EXPORT void shredkv_lease_release(shredkv_lease_t* lease);
SHREDKV_EXPORT void shredkv_lease_person(const shredkv_lease_t* lease, shredkv_person_id_t* out);
SHREDKV_EXPORT const char* shredkv_lease_purpose(const shredkv_lease_t* lease);
SHREDKV_EXPORT int shredkv_lease_get_profile(shredkv_lease_t* lease, shredkv_attrs_t** out, char** errptr);
SHREDKV_EXPORT shredkv_iterator_t* shredkv_lease_scan_events(shredkv_lease_t* lease, int64_t from_ms,
                                                             int64_t to_ms);
SHREDKV_EXPORT int shredkv_lease_get(shredkv_lease_t* lease, const char* collection, size_t collection_len,
                                     const char* key, size_t key_len, char** value, size_t* value_len,
                                     char** errptr);
SHREDKV_EXPORT shredkv_iterator_t* shredkv_lease_scan_records(shredkv_lease_t* lease, const char* collection,
                                                              size_t collection_len, const char* prefix,
                                                              size_t prefix_len);

/* ---- write batches ---------------------------------------------------------------- */

/* Many operations on many people, committed atomically by shredkv_write
 * (WriteBatch). Arguments are copied when queued. */
typedef struct shredkv_writebatch shredkv_writebatch_t;
SHREDKV_EXPORT shredkv_writebatch_t* shredkv_writebatch_create(void);
SHREDKV_EXPORT void shredkv_writebatch_destroy(shredkv_writebatch_t* batch);
SHREDKV_EXPORT void shredkv_writebatch_clear(shredkv_writebatch_t* batch);
SHREDKV_EXPORT size_t shredkv_writebatch_count(const shredkv_writebatch_t* batch);
/* Queues a new person; *out is their ID (chosen now), usable by the
 * batch's later operations. profile may be NULL. */
SHREDKV_EXPORT void shredkv_writebatch_create_person(shredkv_writebatch_t* batch,
                                                     const shredkv_identifier_t* identifiers, size_t n,
                                                     const shredkv_attrs_t* profile, shredkv_person_id_t* out);
/* An imported person: exported creation time, an import notice. */
SHREDKV_EXPORT void shredkv_writebatch_import_person(shredkv_writebatch_t* batch,
                                                     const shredkv_identifier_t* identifiers, size_t n,
                                                     const shredkv_attrs_t* profile, int64_t created_ms,
                                                     shredkv_person_id_t* out);
SHREDKV_EXPORT void shredkv_writebatch_link_identifier(shredkv_writebatch_t* batch,
                                                       const shredkv_person_id_t* person,
                                                       const shredkv_identifier_t* identifier);
SHREDKV_EXPORT void shredkv_writebatch_unlink_identifier(shredkv_writebatch_t* batch,
                                                         const shredkv_person_id_t* person,
                                                         const shredkv_identifier_t* identifier);
SHREDKV_EXPORT void shredkv_writebatch_patch_profile(shredkv_writebatch_t* batch, const shredkv_person_id_t* person,
                                                     const shredkv_attrs_t* set, const char* const* unset,
                                                     size_t n_unset);
/* As shredkv_append_event. */
SHREDKV_EXPORT void shredkv_writebatch_append_event(shredkv_writebatch_t* batch, const shredkv_person_id_t* person,
                                                    const char* name, int64_t ts_ms,
                                                    const shredkv_attrs_t* properties,
                                                    const char* const* analytics_fields, size_t n_fields,
                                                    const char* category);
/* History of an imported person: the tracking policy does not apply. */
SHREDKV_EXPORT void shredkv_writebatch_import_event(shredkv_writebatch_t* batch, const shredkv_person_id_t* person,
                                                    const char* name, int64_t ts_ms,
                                                    const shredkv_attrs_t* properties,
                                                    const char* const* analytics_fields, size_t n_fields,
                                                    const char* category);
/* Queues many events in one call, for bindings whose per-call cost is
 * high: `json` (`len` bytes) is a JSON array of event objects
 *   {"person": "<32 hex digits>", "name": "page_view", "ts": <int ms>,
 *    "properties": {...}, "analytics_fields": ["..."], "category": "...",
 *    "imported": false}
 * ("properties", "analytics_fields", "category" and "imported" optional;
 * imported true: as shredkv_writebatch_import_event). A property is a JSON
 * string (STRING), integer (INT64), other number (DOUBLE), boolean (BOOL),
 * or a typed value of the export format (docs/export-format.md:
 * {"timestamp": ms}, {"bytes": "<base64>"}, {"double": "NaN"}, ...). All or
 * nothing: INVALID_ARGUMENT naming the first malformed event and field, and
 * nothing is queued (an allocation failure, INTERNAL, may leave some queued:
 * clear the batch then). The events are checked by shredkv_write as if
 * queued one by one. Parsed as imports are (strict): an integer literal
 * outside int64, on either side, is INVALID_ARGUMENT naming its key (not
 * its digits), never a DOUBLE; so are duplicate keys and nesting deeper
 * than 64 levels (since stop 32: an integer below INT64_MIN or from 2^64 on
 * was stored as a rounded DOUBLE, outside audit 32a F6). */
SHREDKV_EXPORT int shredkv_writebatch_append_events_json(shredkv_writebatch_t* batch, const char* json, size_t len,
                                                         char** errptr);
/* category NULL or "": declared / kept, as WriteBatch::Put. */
SHREDKV_EXPORT void shredkv_writebatch_put(shredkv_writebatch_t* batch, const shredkv_person_id_t* person,
                                           const char* collection, size_t collection_len, const char* key,
                                           size_t key_len, const char* value, size_t value_len,
                                           const char* category);
SHREDKV_EXPORT void shredkv_writebatch_put_record(shredkv_writebatch_t* batch, const shredkv_person_id_t* person,
                                                  const shredkv_record_t* record);
SHREDKV_EXPORT void shredkv_writebatch_delete(shredkv_writebatch_t* batch, const shredkv_person_id_t* person,
                                              const char* collection, size_t collection_len, const char* key,
                                              size_t key_len);
SHREDKV_EXPORT void shredkv_writebatch_rectify(shredkv_writebatch_t* batch, const shredkv_person_id_t* person,
                                               const shredkv_rectification_t* r);
/* WriteBatch::RecordConsent: action GRANT / WITHDRAW name `purpose`;
 * RESTRICT / UNRESTRICT use all / purposes / categories / reason. time 0:
 * now; source may be NULL. Does not wait for leases (for imports). */
SHREDKV_EXPORT void shredkv_writebatch_record_consent(shredkv_writebatch_t* batch,
                                                      const shredkv_person_id_t* person, int action,
                                                      const char* purpose, unsigned char all,
                                                      const char* const* purposes, size_t n_purposes,
                                                      const char* const* categories, size_t n_categories,
                                                      const char* reason, int64_t time_ms, const char* source);
/* WriteBatch::SetProgress: `position` under `name` (NUL-terminated, 1 to 64
 * characters of A-Z a-z 0-9 . _ : -, kept in the clear) in the batch's
 * commit. */
SHREDKV_EXPORT void shredkv_writebatch_set_progress(shredkv_writebatch_t* batch, const char* name,
                                                    uint64_t position);
/* Store::Write: all or nothing; the message names the failing operation. */
SHREDKV_EXPORT int shredkv_write(shredkv_store_t* store, const shredkv_writebatch_t* batch, char** errptr);
/* Store::ReadProgress: SHREDKV_NOT_FOUND if no position was committed under
 * `name`. */
SHREDKV_EXPORT int shredkv_read_progress(shredkv_store_t* store, const char* name, uint64_t* position,
                                         char** errptr);

/* ---- export and import (Art. 15, 20) -------------------------------------------------- */

typedef enum shredkv_export_kind {
  SHREDKV_ITEM_PERSON = 0,
  SHREDKV_ITEM_IDENTIFIER = 1,
  SHREDKV_ITEM_PROFILE = 2,
  SHREDKV_ITEM_RESTRICTION = 3,
  SHREDKV_ITEM_CONSENT = 4,
  SHREDKV_ITEM_EVENT = 5,
  SHREDKV_ITEM_RECORD = 6,
  SHREDKV_ITEM_ANALYTICS = 7,
  SHREDKV_ITEM_NOTICE = 8
} shredkv_export_kind_t;

/* Store::Export: one consistent snapshot of everything held on the person;
 * items through shredkv_iter_export_item. BUSY from the iterator if the
 * person changes meanwhile (retry). */
SHREDKV_EXPORT shredkv_iterator_t* shredkv_export(shredkv_store_t* store, const shredkv_person_id_t* person);
SHREDKV_EXPORT int shredkv_export_item_kind(const shredkv_export_item_t* item); /* shredkv_export_kind */
/* The part of the item its kind names (borrowed), NULL for other kinds. A
 * PERSON item's info must not be destroyed. */
SHREDKV_EXPORT const shredkv_person_info_t* shredkv_export_item_person(const shredkv_export_item_t* item);
SHREDKV_EXPORT const char* shredkv_export_item_identifier(const shredkv_export_item_t* item, const char** value,
                                                          size_t* value_len);
SHREDKV_EXPORT const shredkv_attrs_t* shredkv_export_item_profile(const shredkv_export_item_t* item);
SHREDKV_EXPORT const shredkv_restriction_t* shredkv_export_item_restriction(const shredkv_export_item_t* item);
SHREDKV_EXPORT const shredkv_consent_record_t* shredkv_export_item_consent(const shredkv_export_item_t* item);
SHREDKV_EXPORT const shredkv_event_t* shredkv_export_item_event(const shredkv_export_item_t* item);
SHREDKV_EXPORT const shredkv_record_t* shredkv_export_item_record(const shredkv_export_item_t* item);
SHREDKV_EXPORT const shredkv_analytics_row_t* shredkv_export_item_analytics(const shredkv_export_item_t* item);
SHREDKV_EXPORT const shredkv_notice_t* shredkv_export_item_notice(const shredkv_export_item_t* item);

/* Receives the output of a streaming writer; returns 0 to go on, nonzero
 * to stop (the call then fails with IO_ERROR). */
typedef int (*shredkv_write_fn)(void* ctx, const char* data, size_t len);
/* ExportPerson: the person's export in the documented format
 * (docs/export-format.md) streamed to `write` in pieces, memory bounded by
 * one item. On error the output written so far must be discarded. */
SHREDKV_EXPORT int shredkv_export_person(shredkv_store_t* store, const shredkv_person_id_t* person, int format,
                                         shredkv_write_fn write, void* ctx, char** errptr);
/* ImportPerson: one export (`len` bytes) as a new person, atomically, with
 * ImportOptions{} (imported events' analytics rows anonymous). Counts may
 * be NULL. */
SHREDKV_EXPORT int shredkv_import_person(shredkv_store_t* store, const char* data, size_t len, int format,
                                         shredkv_person_id_t* out, uint64_t* identifiers, uint64_t* events,
                                         uint64_t* records, char** errptr);
/* ImportedAnalytics (write_batch.h): what an imported event's analytics
 * row, in the clear and kept after erasure, holds. */
typedef enum shredkv_imported_analytics {
  SHREDKV_IMPORTED_ANALYTICS_AS_EXPORTED = 0, /* the file's event names and analytics fields */
  SHREDKV_IMPORTED_ANALYTICS_ANONYMOUS = 1    /* the name "imported", no field (the default) */
} shredkv_imported_analytics_t;
/* As shredkv_import_person, with ImportOptions::analytics = `analytics`
 * (since stop 36). */
SHREDKV_EXPORT int shredkv_import_person2(shredkv_store_t* store, const char* data, size_t len, int format,
                                          int analytics, shredkv_person_id_t* out, uint64_t* identifiers,
                                          uint64_t* events, uint64_t* records, char** errptr);

/* ---- erasure (Art. 17) ------------------------------------------------------------------ */

/* The proof of one erasure request (ErasureReceipt). */
SHREDKV_EXPORT void shredkv_receipt_destroy(shredkv_receipt_t* receipt);
SHREDKV_EXPORT const char* shredkv_receipt_request_id(const shredkv_receipt_t* receipt);
SHREDKV_EXPORT int64_t shredkv_receipt_erased_at_ms(const shredkv_receipt_t* receipt);
SHREDKV_EXPORT uint64_t shredkv_receipt_people(const shredkv_receipt_t* receipt);
SHREDKV_EXPORT int shredkv_receipt_analytics(const shredkv_receipt_t* receipt); /* shredkv_analytics_on_erase */
SHREDKV_EXPORT unsigned char shredkv_receipt_suppressed(const shredkv_receipt_t* receipt);
SHREDKV_EXPORT int shredkv_receipt_level(const shredkv_receipt_t* receipt); /* shredkv_erasure_level */
SHREDKV_EXPORT unsigned char shredkv_receipt_cryptographic(const shredkv_receipt_t* receipt);
SHREDKV_EXPORT unsigned char shredkv_receipt_purged(const shredkv_receipt_t* receipt);
SHREDKV_EXPORT uint64_t shredkv_receipt_key_epoch(const shredkv_receipt_t* receipt);
SHREDKV_EXPORT const char* shredkv_receipt_audit_hash(const shredkv_receipt_t* receipt);
/* A category erasure's category; "" for whole people. */
SHREDKV_EXPORT const char* shredkv_receipt_category(const shredkv_receipt_t* receipt);

/* Store::Erase of `n` people in one commit. request_id NULL or "": a random
 * one; analytics: shredkv_analytics_on_erase. `out` (may be NULL) receives
 * the receipt, here and in the other erasure calls and shredkv_get_erasure. */
SHREDKV_EXPORT int shredkv_erase(shredkv_store_t* store, const shredkv_person_id_t* people, size_t n,
                                 const char* request_id, unsigned char suppress, int analytics,
                                 shredkv_receipt_t** out, char** errptr);
SHREDKV_EXPORT int shredkv_erase_by_identifier(shredkv_store_t* store, const shredkv_identifier_t* identifier,
                                               const char* request_id, unsigned char suppress, int analytics,
                                               shredkv_receipt_t** out, char** errptr);
/* Store::EraseCategory (suppression does not apply). */
SHREDKV_EXPORT int shredkv_erase_category(shredkv_store_t* store, const shredkv_person_id_t* person,
                                          const char* category, const char* request_id, int analytics,
                                          shredkv_receipt_t** out, char** errptr);
/* Store::GetErasure: the request's current state. */
SHREDKV_EXPORT int shredkv_get_erasure(shredkv_store_t* store, const char* request_id, shredkv_receipt_t** out,
                                       char** errptr);
SHREDKV_EXPORT int shredkv_unsuppress(shredkv_store_t* store, const shredkv_identifier_t* identifier,
                                      char** errptr);

/* ---- housekeeping ----------------------------------------------------------------------- */

/* Plain result structs, filled by the call (fields as the C++ ones). */
typedef struct shredkv_purge_result {
  uint64_t rows_deleted;
  uint64_t people_purged;
  uint64_t people_pending;
} shredkv_purge_result_t;

typedef struct shredkv_sweep_result {
  uint64_t events_deleted;
  uint64_t records_deleted;
  uint64_t analytics_deleted;
  uint64_t batches;
  uint64_t pending;
  uint64_t seeks;
  uint64_t entries_read;
} shredkv_sweep_result_t;

typedef struct shredkv_rotation_result {
  uint64_t new_epoch;
  uint64_t destroyed_epochs;
  uint64_t rewrapped_keys;
  uint64_t batches;
  uint64_t keys_file_bytes_before;
  uint64_t keys_file_bytes_after;
} shredkv_rotation_result_t;

/* Store::Purge / RotateEpoch / CompactData / Sweep / RunMaintenance. `out`
 * may be NULL. */
SHREDKV_EXPORT int shredkv_purge(shredkv_store_t* store, size_t budget_rows, shredkv_purge_result_t* out,
                                 char** errptr);
SHREDKV_EXPORT int shredkv_rotate_epoch(shredkv_store_t* store, shredkv_rotation_result_t* out, char** errptr);
SHREDKV_EXPORT int shredkv_compact_data(shredkv_store_t* store, uint64_t* file_bytes_before,
                                        uint64_t* file_bytes_after, char** errptr);
SHREDKV_EXPORT int shredkv_set_retention(shredkv_store_t* store, const shredkv_retention_t* rules, char** errptr);
SHREDKV_EXPORT int shredkv_get_retention(shredkv_store_t* store, shredkv_retention_t** out, char** errptr);
SHREDKV_EXPORT int shredkv_sweep(shredkv_store_t* store, size_t budget_rows, shredkv_sweep_result_t* out,
                                 char** errptr);
/* shredkv_sweep, and the change-feed notices it deleted
 * (SweepResult::notices_deleted; `notices_deleted` may be NULL). Added in
 * stop 30 beside shredkv_sweep, whose struct's layout is frozen. */
SHREDKV_EXPORT int shredkv_sweep2(shredkv_store_t* store, size_t budget_rows, shredkv_sweep_result_t* out,
                                  uint64_t* notices_deleted, char** errptr);
SHREDKV_EXPORT int shredkv_run_maintenance(shredkv_store_t* store, char** errptr);

/* ---- stats ------------------------------------------------------------------------------- */

/* StoreStats: numbers by name ("people", "erased", "pending_purge",
 * "format_version", ... every numeric field of StoreStats, with its C++
 * name; "retention_backfill_pending" and, since stop 31, "keys_rebuild_pending"
 * as 0/1) and the operation metrics. */
typedef struct shredkv_stats shredkv_stats_t;
SHREDKV_EXPORT int shredkv_get_stats(shredkv_store_t* store, shredkv_stats_t** out, char** errptr);
SHREDKV_EXPORT void shredkv_stats_destroy(shredkv_stats_t* stats);
/* The numeric fields, in a fixed order. */
SHREDKV_EXPORT size_t shredkv_stats_field_count(const shredkv_stats_t* stats);
SHREDKV_EXPORT const char* shredkv_stats_field_name(const shredkv_stats_t* stats, size_t i);
SHREDKV_EXPORT uint64_t shredkv_stats_field_value(const shredkv_stats_t* stats, size_t i);
/* The field `name`: SHREDKV_OK, or NOT_FOUND for a name not in the list. */
SHREDKV_EXPORT int shredkv_stats_get(const shredkv_stats_t* stats, const char* name, uint64_t* out);
/* StoreStats::store_id: the store's ID, 32 hex digits, the same for every
 * copy of the store (shredkv_backup_info_store_id). Owned by `stats`. */
SHREDKV_EXPORT const char* shredkv_stats_store_id(const shredkv_stats_t* stats);
/* Operations (OperationStats), in a fixed order. */
SHREDKV_EXPORT size_t shredkv_stats_operation_count(const shredkv_stats_t* stats);
SHREDKV_EXPORT const char* shredkv_stats_operation_name(const shredkv_stats_t* stats, size_t i);
SHREDKV_EXPORT uint64_t shredkv_stats_operation_calls(const shredkv_stats_t* stats, size_t i);
SHREDKV_EXPORT uint64_t shredkv_stats_operation_errors(const shredkv_stats_t* stats, size_t i);
SHREDKV_EXPORT uint64_t shredkv_stats_operation_total_us(const shredkv_stats_t* stats, size_t i);
/* The latency histogram (OperationStats::latency_buckets): bucket b < count
 * holds the calls that took more than 2^(b-1) µs and at most 2^b µs (bucket
 * 0: at most 1 µs; the last: longer than 2^(count-2) µs). */
SHREDKV_EXPORT size_t shredkv_latency_bucket_count(void);
SHREDKV_EXPORT uint64_t shredkv_stats_operation_bucket(const shredkv_stats_t* stats, size_t i, size_t bucket);
/* OperationStats::QuantileUpperBoundUs(q), 0 < q <= 1. */
SHREDKV_EXPORT uint64_t shredkv_stats_operation_quantile_us(const shredkv_stats_t* stats, size_t i, double q);

/* ---- audit and verification --------------------------------------------------------------- */

/* Store::VerifyAuditLog. head_hash and problem (malloc'ed) may be NULL. */
SHREDKV_EXPORT int shredkv_verify_audit_log(shredkv_store_t* store, uint64_t* entries, unsigned char* intact,
                                            char** head_hash, char** problem, char** errptr);

/* Audit log entries (AuditRecord), from Store::ReadAudit. */
typedef struct shredkv_audit_list shredkv_audit_list_t;
SHREDKV_EXPORT int shredkv_read_audit(shredkv_store_t* store, uint64_t after_seq, size_t max,
                                      shredkv_audit_list_t** out, char** errptr);
SHREDKV_EXPORT size_t shredkv_audit_list_count(const shredkv_audit_list_t* list);
SHREDKV_EXPORT void shredkv_audit_list_destroy(shredkv_audit_list_t* list);
SHREDKV_EXPORT uint64_t shredkv_audit_seq(const shredkv_audit_list_t* list, size_t i);
SHREDKV_EXPORT int shredkv_audit_action(const shredkv_audit_list_t* list, size_t i); /* shredkv_audit_action */
SHREDKV_EXPORT int64_t shredkv_audit_time_ms(const shredkv_audit_list_t* list, size_t i);
SHREDKV_EXPORT const char* shredkv_audit_request_id(const shredkv_audit_list_t* list, size_t i);
SHREDKV_EXPORT uint64_t shredkv_audit_count1(const shredkv_audit_list_t* list, size_t i);
SHREDKV_EXPORT uint64_t shredkv_audit_count2(const shredkv_audit_list_t* list, size_t i);
/* Erasures: the analytics mode; -1 for other actions. */
SHREDKV_EXPORT int shredkv_audit_analytics(const shredkv_audit_list_t* list, size_t i);
SHREDKV_EXPORT const char* shredkv_audit_purpose(const shredkv_audit_list_t* list, size_t i);
SHREDKV_EXPORT const char* shredkv_audit_subject(const shredkv_audit_list_t* list, size_t i);
SHREDKV_EXPORT const char* shredkv_audit_hash(const shredkv_audit_list_t* list, size_t i);

/* Store::AuditSubject: 32 hex digits, malloc'ed. */
SHREDKV_EXPORT int shredkv_audit_subject_of(shredkv_store_t* store, const shredkv_person_id_t* person,
                                            char** out, char** errptr);

/* Store::Verify's report. */
typedef struct shredkv_verify_report shredkv_verify_report_t;
SHREDKV_EXPORT int shredkv_verify(shredkv_store_t* store, shredkv_verify_report_t** out, char** errptr);
SHREDKV_EXPORT void shredkv_verify_report_destroy(shredkv_verify_report_t* report);
SHREDKV_EXPORT unsigned char shredkv_verify_report_ok(const shredkv_verify_report_t* report);
/* "pages", "people", "identifiers", "events", "records", "analytics_rows",
 * "audit_entries", "orphan_keys", "problem_count": SHREDKV_OK or NOT_FOUND. */
SHREDKV_EXPORT int shredkv_verify_report_get(const shredkv_verify_report_t* report, const char* name,
                                             uint64_t* out);
SHREDKV_EXPORT size_t shredkv_verify_report_problem_count(const shredkv_verify_report_t* report);
SHREDKV_EXPORT const char* shredkv_verify_report_problem(const shredkv_verify_report_t* report, size_t i);

/* ---- backups, the erasure log, root keys (backup.h) ---------------------------------------- */

/* What a backup holds (BackupInfo). */
typedef struct shredkv_backup_info shredkv_backup_info_t;
SHREDKV_EXPORT void shredkv_backup_info_destroy(shredkv_backup_info_t* info);
SHREDKV_EXPORT const char* shredkv_backup_info_directory(const shredkv_backup_info_t* info);
SHREDKV_EXPORT const char* shredkv_backup_info_store_id(const shredkv_backup_info_t* info);
SHREDKV_EXPORT int64_t shredkv_backup_info_created_ms(const shredkv_backup_info_t* info);
SHREDKV_EXPORT uint64_t shredkv_backup_info_current_epoch(const shredkv_backup_info_t* info);
SHREDKV_EXPORT uint64_t shredkv_backup_info_oldest_epoch(const shredkv_backup_info_t* info);
SHREDKV_EXPORT uint64_t shredkv_backup_info_people(const shredkv_backup_info_t* info);
SHREDKV_EXPORT uint64_t shredkv_backup_info_keys_bytes(const shredkv_backup_info_t* info);
SHREDKV_EXPORT uint64_t shredkv_backup_info_data_bytes(const shredkv_backup_info_t* info);
SHREDKV_EXPORT size_t shredkv_backup_info_custody_label_count(const shredkv_backup_info_t* info);
SHREDKV_EXPORT const char* shredkv_backup_info_custody_label(const shredkv_backup_info_t* info, size_t i);

/* Store::Backup into `directory` (created; must not hold anything). *out
 * may be NULL. */
SHREDKV_EXPORT int shredkv_backup(shredkv_store_t* store, const char* directory, shredkv_backup_info_t** out,
                                  char** errptr);
/* ReadBackupInfo. */
SHREDKV_EXPORT int shredkv_read_backup_info(const char* backup_dir, shredkv_backup_info_t** out, char** errptr);

/* Every erasure a store remembers (ErasureLog). */
typedef struct shredkv_erasure_log shredkv_erasure_log_t;
SHREDKV_EXPORT int shredkv_read_erasure_log(shredkv_store_t* store, shredkv_erasure_log_t** out, char** errptr);
SHREDKV_EXPORT void shredkv_erasure_log_destroy(shredkv_erasure_log_t* log);
SHREDKV_EXPORT const char* shredkv_erasure_log_store_id(const shredkv_erasure_log_t* log);
/* ErasureLog::read_at_ms: when the log was read (0: unknown). */
SHREDKV_EXPORT int64_t shredkv_erasure_log_read_at_ms(const shredkv_erasure_log_t* log);
/* CheckErasureLogReadAfter: SHREDKV_INVALID_ARGUMENT if `log` was read
 * before the backup `info` was taken — by the store positions both carry
 * since stop 39 (whatever the clocks did), else by the read and backup
 * times. */
SHREDKV_EXPORT int shredkv_check_erasure_log_read_after(const shredkv_erasure_log_t* log,
                                                        const shredkv_backup_info_t* info, char** errptr);
SHREDKV_EXPORT size_t shredkv_erasure_log_people_count(const shredkv_erasure_log_t* log);
SHREDKV_EXPORT size_t shredkv_erasure_log_category_count(const shredkv_erasure_log_t* log);
SHREDKV_EXPORT size_t shredkv_erasure_log_suppressed_count(const shredkv_erasure_log_t* log);
/* The i-th erased person: request id borrowed; analytics and time may be NULL. */
SHREDKV_EXPORT const char* shredkv_erasure_log_person(const shredkv_erasure_log_t* log, size_t i,
                                                      shredkv_person_id_t* person, int64_t* erased_at_ms,
                                                      int* analytics);
/* The i-th erased category key: the category (borrowed); the rest may be NULL. */
SHREDKV_EXPORT const char* shredkv_erasure_log_category(const shredkv_erasure_log_t* log, size_t i,
                                                        shredkv_person_id_t* person, const char** request_id,
                                                        int64_t* erased_at_ms, int* analytics);
/* The i-th suppressed identifier: its 16-byte keyed hash; returns the
 * request id (borrowed); suppressed_at_ms may be NULL. */
SHREDKV_EXPORT const char* shredkv_erasure_log_suppressed(const shredkv_erasure_log_t* log, size_t i,
                                                          uint8_t hash[16], int64_t* suppressed_at_ms);
/* WriteErasureLog: the documented NDJSON (docs/backup.md), malloc'ed. */
SHREDKV_EXPORT int shredkv_erasure_log_to_ndjson(const shredkv_erasure_log_t* log, char** out, size_t* out_len,
                                                 char** errptr);
/* ReadErasureLog: INVALID_ARGUMENT naming the line for a malformed or
 * cut-short log. */
SHREDKV_EXPORT int shredkv_erasure_log_from_ndjson(const char* data, size_t len, shredkv_erasure_log_t** out,
                                                   char** errptr);

typedef struct shredkv_erasure_log_applied {
  uint64_t people_erased;
  uint64_t categories_erased;
  uint64_t suppressions_added;
  uint64_t already_erased;
  uint64_t not_present;
} shredkv_erasure_log_applied_t;

/* Store::ApplyErasureLog. `out` may be NULL. */
SHREDKV_EXPORT int shredkv_apply_erasure_log(shredkv_store_t* store, const shredkv_erasure_log_t* log,
                                             shredkv_erasure_log_applied_t* out, char** errptr);
/* RestoreBackup into options' directory: `log` is the live store's
 * erasure log, or NULL with without_erasure_log set; custody_keys:
 * shredkv_restored_custody_keys. info and applied may be NULL. */
SHREDKV_EXPORT int shredkv_restore_backup(const char* backup_dir, const shredkv_options_t* options,
                                          const shredkv_erasure_log_t* log, unsigned char without_erasure_log,
                                          int custody_keys, shredkv_backup_info_t** info,
                                          shredkv_erasure_log_applied_t* applied, char** errptr);
/* ReapplyErasureLog: `log` (the live store's) re-applied to the closed
 * store at options' directory, one put back by a file-level copy or a
 * volume snapshot (since stop 39; outside audit 39b, F5): erases again
 * whom it still holds, fences the rest, adds the suppressions, purges,
 * drops the free key pool, compacts and rotates as a restore does.
 * INVALID_ARGUMENT for another store's log, one older than the store, one
 * that fails its tag, or an untagged one unless accepted with
 * shredkv_options_set_restore_accept_untagged(options, _, 1). applied may
 * be NULL. */
SHREDKV_EXPORT int shredkv_reapply_erasure_log(const shredkv_options_t* options, const shredkv_erasure_log_t* log,
                                               shredkv_erasure_log_applied_t* applied, char** errptr);
/* As shredkv_reapply_erasure_log with ReapplyOptions::custody_keys
 * (shredkv_restored_custody_keys; since stop 40, outside audit 40a, F1):
 * required for a store whose epoch keys are in a custody, which it shares
 * with the store it was copied from and which the re-application's
 * rotation destroys — TAKE_OVER (it replaces that store) or NEW (a copy
 * beside it gets custody keys of its own). shredkv_reapply_erasure_log is
 * this with UNSPECIFIED: INVALID_ARGUMENT for such a store, nothing
 * changed. */
SHREDKV_EXPORT int shredkv_reapply_erasure_log2(const shredkv_options_t* options, const shredkv_erasure_log_t* log,
                                                int custody_keys, shredkv_erasure_log_applied_t* applied,
                                                char** errptr);
/* RestoreOptions::accept_untagged_backup and accept_untagged_log for
 * shredkv_restore_backup with these options (default 0, 0): accept a backup
 * whose MANIFEST, or an erasure log, carries no authentication tag (made by
 * a build before stop 37). Anyone able to write them could then have
 * changed them unseen: only for backups and logs kept where nobody else can
 * write. */
SHREDKV_EXPORT void shredkv_options_set_restore_accept_untagged(shredkv_options_t* options, unsigned char backup,
                                                                unsigned char log);
/* Store::RotateRootKey: the store's root-sealed keys re-sealed under the
 * key `new_provider` gives. */
SHREDKV_EXPORT int shredkv_rotate_root_key(shredkv_store_t* store, const shredkv_key_provider_t* new_provider,
                                           char** errptr);

/* ---- sharded stores (sharded_store.h; since stop 40) ---------------------------- */

/* ShardedStore::Open: N store directories under options' directory, a
 * person in one shard, so that writes use more than one LMDB writer.
 * shard_count: 1..256 to create (with create_if_missing); 0 takes an
 * existing store's count, any other value must equal it. The handle is a
 * store handle like shredkv_open's, released with shredkv_close (which
 * closes every shard). Every call on a store handle works on it with the
 * sharded store's contract (sharded_store.h: calls on one person go to
 * their shard; calls over many people are split by shard, each part
 * atomic; identifiers are unique across the shards), except the calls
 * below, which are FAILED_PRECONDITION on a sharded handle:
 * - of one shard, to make on each shard's view (shredkv_shard):
 *   shredkv_scan_analytics, shredkv_read_feed, shredkv_ack_feed,
 *   shredkv_read_progress, shredkv_sweep / shredkv_sweep2,
 *   shredkv_read_audit, shredkv_verify_audit_log, shredkv_read_erasure_log
 *   (one log a shard: what shredkv_restore_sharded takes),
 *   shredkv_apply_erasure_log;
 * - shredkv_backup (use shredkv_backup_sharded) and shredkv_rotate_root_key
 *   (close the store, then shredkv_rotate_root_key_sharded).
 * On a sharded handle an erasure receipt describes the whole request: its
 * parts' people summed, the lowest level, cryptographic and purged once
 * every shard's part is, the latest erasure time; key_epoch and audit_hash
 * are a shard's own, so they are given for a request of one part and are 0
 * and "" for one of several (each part: shredkv_get_erasure on each
 * shard's view). A request cut short (a later shard's part failed after
 * earlier parts committed: the error says "is partly made") shows only the
 * parts made, and may read as complete: no shard records which shards a
 * request meant. Finish it by calling shredkv_erase again with the same
 * people and request id. shredkv_get_retention reads shard 0's rules (every
 * shard's, once shredkv_set_retention succeeded). A listener or logger must
 * not close a sharded store: shredkv_close there returns
 * FAILED_PRECONDITION for the shard whose thread it is on, after closing
 * the others (the handle stays valid; close it again from another
 * thread). */
SHREDKV_EXPORT int shredkv_open_sharded(const shredkv_options_t* options, uint32_t shard_count,
                                        shredkv_store_t** out, char** errptr);
/* The shard count of a sharded store's handle; 0 for any other handle
 * (a plain store, a shard's view, NULL). */
SHREDKV_EXPORT uint32_t shredkv_shard_count(const shredkv_store_t* store);
/* ShardedStore::ShardOf: the shard that holds `person`. INVALID_ARGUMENT
 * unless `store` is a sharded store's handle. */
SHREDKV_EXPORT int shredkv_shard_of(const shredkv_store_t* store, const shredkv_person_id_t* person, uint32_t* out,
                                    char** errptr);
/* ShardedStore::shard: a view of shard `index` as a store handle, for what
 * the sharded store does not route (above). Release it with shredkv_close,
 * which releases the view only; the shard closes with the sharded store,
 * after which calls on the view are FAILED_PRECONDITION (the view keeps the
 * memory alive, so it may be released in any order). Iterators and leases
 * made through a view must be destroyed before the last of the view and
 * its store's handle is released. A view refuses (FAILED_PRECONDITION) what
 * would skip the sharded store's checks across shards: shredkv_create_person,
 * shredkv_link_identifier, shredkv_rectify, shredkv_import_person(2),
 * shredkv_write, the erasures (a request id of another shard would be used
 * again) and shredkv_rotate_root_key (SHARDS would stay under the old key;
 * since stop 40's outside audit 40b: it was accepted). INVALID_ARGUMENT for an index out of range or a handle
 * that is not a sharded store's. */
SHREDKV_EXPORT int shredkv_shard(shredkv_store_t* store, uint32_t index, shredkv_store_t** out, char** errptr);
/* ShardedStore::Backup into `directory` (created; must not hold anything).
 * shard_infos: NULL (then n is 0), or an array of n = shredkv_shard_count
 * entries that receives each shard's backup info, each released with
 * shredkv_backup_info_destroy. */
SHREDKV_EXPORT int shredkv_backup_sharded(shredkv_store_t* store, const char* directory,
                                          shredkv_backup_info_t** shard_infos, size_t n, char** errptr);
/* ShardedStore::Restore of a backup shredkv_backup_sharded wrote into
 * options' directory (must not exist or be empty): logs are the live
 * store's erasure logs, one a shard in shard order (shredkv_read_erasure_log
 * on each shard's view, read after the backup and kept apart from it), or
 * NULL and 0 with without_erasure_log set; custody_keys:
 * shredkv_restored_custody_keys; backup_provider: the root key the backup was
 * taken under when it was rotated since (else NULL); the untagged-backup
 * and untagged-log options of shredkv_options_set_restore_accept_untagged
 * apply to every shard. `applied` (may be NULL) receives the sums over the
 * shards. */
SHREDKV_EXPORT int shredkv_restore_sharded(const char* backup_dir, const shredkv_options_t* options,
                                           const shredkv_erasure_log_t* const* logs, size_t n_logs,
                                           unsigned char without_erasure_log, int custody_keys,
                                           const shredkv_key_provider_t* backup_provider,
                                           shredkv_erasure_log_applied_t* applied, char** errptr);
/* ShardedStore::RotateRootKey: the closed sharded store at options'
 * directory (options' key provider: its current root key) moved to the key
 * `new_provider` gives: every shard, then SHARDS. A rotation cut short is
 * finished by calling it again with the same two keys. */
SHREDKV_EXPORT int shredkv_rotate_root_key_sharded(const shredkv_options_t* options,
                                                   const shredkv_key_provider_t* new_provider, char** errptr);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* SHREDKV_C_H_ */
