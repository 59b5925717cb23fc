/* The C API suite, part 1 (core): codes and versions, person IDs, enum
 * names, attribute maps, people and identifiers, profiles, events, records,
 * iterators, analytics, rectification and the change feed, restriction and
 * consent, leases, write batches, export and import. Each test opens its
 * own store in a fresh directory (raw key, no sync) and frees everything it
 * gets, so LeakSanitizer and valgrind can check the API and the test. */
#include "c_test.h"

#include <limits.h>
#include <time.h>

#include "shredkv/version.h"

/* ---- helpers ------------------------------------------------------------------ */

static const char kRootKey[32] = "0123456789abcdef0123456789abcde";

/* Opens a new store in `dir`: raw 32-byte key, SHREDKV_DURABILITY_NO_SYNC. */
static int open_store(const char* dir, shredkv_store_t** out) {
  char* err = NULL;
  shredkv_key_provider_t* key = shredkv_key_provider_raw(kRootKey, sizeof kRootKey);
  if (key == NULL) {
    fprintf(stderr, "open_store: shredkv_key_provider_raw returned NULL\n");
    return 1;
  }
  shredkv_options_t* options = shredkv_options_create();
  shredkv_options_set_directory(options, dir);
  shredkv_options_set_create_if_missing(options, 1);
  shredkv_options_set_durability(options, SHREDKV_DURABILITY_NO_SYNC);
  shredkv_options_set_key_provider(options, key);
  shredkv_key_provider_destroy(key); /* the options keep their own reference */
  *out = NULL;
  const int rc = shredkv_open(options, out, &err);
  shredkv_options_destroy(options);
  CHECK_OK(rc, err);
  CHECK(*out != NULL);
  return 0;
}

/* Closes the store and removes its directory. */
static int close_store(shredkv_store_t* store, const char* dir) {
  char* err = NULL;
  CHECK_OK(shredkv_close(store, &err), err);
  CHECK_EQ_INT(c_test_rmtree(dir), 0);
  return 0;
}

/* Opens a store in a fresh temporary directory (`dir`, 256 bytes). */
#define SETUP(dir, store)                      \
  char dir[256];                               \
  shredkv_store_t* store = NULL;               \
  CHECK_EQ_INT(c_test_mkdtemp(dir), 0);        \
  if (open_store(dir, &store) != 0) return 1

#define TEARDOWN(dir, store)                     \
  do {                                           \
    if (close_store(store, dir) != 0) return 1;  \
  } while (0)

static shredkv_identifier_t ident(const char* type, const char* value) {
  shredkv_identifier_t id;
  id.type = type;
  id.value = value;
  id.value_len = strlen(value);
  return id;
}

static int same_person(const shredkv_person_id_t* a, const shredkv_person_id_t* b) {
  return memcmp(a->bytes, b->bytes, sizeof a->bytes) == 0;
}

static int is_zero16(const uint8_t bytes[16]) {
  for (int i = 0; i < 16; ++i) {
    if (bytes[i] != 0) return 0;
  }
  return 1;
}

/* A person with the email `email` and no profile. */
static int new_person(shredkv_store_t* store, const char* email, shredkv_person_id_t* out) {
  char* err = NULL;
  shredkv_identifier_t id = ident("email", email);
  CHECK_OK(shredkv_create_person(store, &id, 1, NULL, out, &err), err);
  return 0;
}

/* Appends an event `name` at `ts` with properties {amount: int, page: string}
 * where `amount` is an analytics field. */
static int add_event(shredkv_store_t* store, const shredkv_person_id_t* p, const char* name, int64_t ts,
                     int64_t amount) {
  char* err = NULL;
  shredkv_attrs_t* props = shredkv_attrs_create();
  shredkv_attrs_set_int64(props, "amount", amount);
  shredkv_attrs_set_string(props, "page", "/home", 5);
  const char* fields[] = {"amount"};
  const int rc = shredkv_append_event(store, p, name, ts, props, fields, 1, NULL, &err);
  shredkv_attrs_destroy(props);
  CHECK_OK(rc, err);
  return 0;
}

/* Counts the items of an iterator (consuming it) and checks it ended OK. */
static int drain_count(shredkv_iterator_t* it, size_t* n) {
  char* err = NULL;
  *n = 0;
  for (; shredkv_iter_valid(it); shredkv_iter_next(it)) ++*n;
  CHECK_OK(shredkv_iter_status(it, &err), err);
  return 0;
}

/* ---- codes, versions, memory, IDs, enum names ----------------------------------- */

static int test_codes_and_versions(void) {
  CHECK_STR(shredkv_code_name(SHREDKV_OK), "OK");
  CHECK_STR(shredkv_code_name(SHREDKV_NOT_FOUND), "NotFound");
  CHECK_STR(shredkv_code_name(SHREDKV_ERASED), "Erased");
  CHECK_STR(shredkv_code_name(SHREDKV_RESTRICTED), "Restricted");
  CHECK_STR(shredkv_code_name(SHREDKV_SUPPRESSED), "Suppressed");
  CHECK_STR(shredkv_code_name(SHREDKV_ALREADY_EXISTS), "AlreadyExists");
  CHECK_STR(shredkv_code_name(SHREDKV_INVALID_ARGUMENT), "InvalidArgument");
  CHECK_STR(shredkv_code_name(SHREDKV_CORRUPTION), "Corruption");
  CHECK_STR(shredkv_code_name(SHREDKV_AUTHENTICATION_FAILED), "AuthenticationFailed");
  CHECK_STR(shredkv_code_name(SHREDKV_WRONG_KEY), "WrongKey");
  CHECK_STR(shredkv_code_name(SHREDKV_STORE_FULL), "StoreFull");
  CHECK_STR(shredkv_code_name(SHREDKV_BUSY), "Busy");
  CHECK_STR(shredkv_code_name(SHREDKV_IO_ERROR), "IOError");
  CHECK_STR(shredkv_code_name(SHREDKV_FAILED_PRECONDITION), "FailedPrecondition");
  CHECK_STR(shredkv_code_name(SHREDKV_INTERNAL), "Internal");
  CHECK_STR(shredkv_code_name(SHREDKV_UNSUPPORTED_VERSION), "UnsupportedVersion");
  CHECK_STR(shredkv_code_name(SHREDKV_READ_ONLY), "ReadOnly");
  CHECK_STR(shredkv_code_name(SHREDKV_KEY_DESTROYED), "KeyDestroyed");
  CHECK_STR(shredkv_code_name(18), "Unknown");
  CHECK_STR(shredkv_code_name(-1), "Unknown");
  CHECK_STR(shredkv_code_name(INT_MAX), "Unknown");

  CHECK_STR(shredkv_version(), SHREDKV_VERSION_STRING);
  int major = -1, minor = -1, patch = -1;
  shredkv_version_numbers(&major, &minor, &patch);
  CHECK_EQ_INT(major, SHREDKV_VERSION_MAJOR);
  CHECK_EQ_INT(minor, SHREDKV_VERSION_MINOR);
  CHECK_EQ_INT(patch, SHREDKV_VERSION_PATCH);
  char expect[64];
  snprintf(expect, sizeof expect, "%d.%d.%d", major, minor, patch);
  CHECK_STR(shredkv_version(), expect);
  shredkv_version_numbers(NULL, NULL, NULL); /* each part may be NULL */

  shredkv_free(NULL); /* a no-op */
  return 0;
}

static int test_enum_names(void) {
  CHECK_STR(shredkv_analytics_on_erase_name(SHREDKV_ANALYTICS_KEEP), "keep");
  CHECK_STR(shredkv_analytics_on_erase_name(SHREDKV_ANALYTICS_UNLINK), "unlink");
  CHECK_STR(shredkv_analytics_on_erase_name(SHREDKV_ANALYTICS_DELETE), "delete");
  CHECK_STR(shredkv_analytics_on_erase_name(3), "unknown");
  CHECK_STR(shredkv_analytics_on_erase_name(-1), "unknown");

  CHECK_STR(shredkv_erasure_level_name(SHREDKV_ERASURE_LOGICAL), "logical");
  CHECK_STR(shredkv_erasure_level_name(SHREDKV_ERASURE_CRYPTOGRAPHIC), "cryptographic");
  CHECK_STR(shredkv_erasure_level_name(SHREDKV_ERASURE_PURGED), "purged");
  CHECK_STR(shredkv_erasure_level_name(0), "unknown");
  CHECK_STR(shredkv_erasure_level_name(4), "unknown");

  CHECK_STR(shredkv_notice_kind_name(SHREDKV_NOTICE_RECTIFICATION), "rectification");
  CHECK_STR(shredkv_notice_kind_name(SHREDKV_NOTICE_ERASURE), "erasure");
  CHECK_STR(shredkv_notice_kind_name(SHREDKV_NOTICE_RESTRICTION), "restriction");
  CHECK_STR(shredkv_notice_kind_name(SHREDKV_NOTICE_IMPORT), "import");
  CHECK_STR(shredkv_notice_kind_name(SHREDKV_NOTICE_RECORD_CHANGE), "record");
  CHECK_STR(shredkv_notice_kind_name(0), "unknown");
  CHECK_STR(shredkv_notice_kind_name(6), "unknown");

  CHECK_STR(shredkv_audit_action_name(SHREDKV_AUDIT_ERASE), "erase");
  CHECK_STR(shredkv_audit_action_name(SHREDKV_AUDIT_UNSUPPRESS), "unsuppress");
  CHECK_STR(shredkv_audit_action_name(SHREDKV_AUDIT_ROTATION), "rotation");
  CHECK_STR(shredkv_audit_action_name(SHREDKV_AUDIT_PURGE), "purge");
  CHECK_STR(shredkv_audit_action_name(SHREDKV_AUDIT_COMPACTION), "compaction");
  CHECK_STR(shredkv_audit_action_name(SHREDKV_AUDIT_SWEEP), "sweep");
  CHECK_STR(shredkv_audit_action_name(SHREDKV_AUDIT_ERASE_CATEGORY), "erase_category");
  CHECK_STR(shredkv_audit_action_name(SHREDKV_AUDIT_PROCESSING_READ), "processing_read");
  CHECK_STR(shredkv_audit_action_name(0), "unknown");
  CHECK_STR(shredkv_audit_action_name(9), "unknown");

  CHECK_STR(shredkv_maintenance_job_name(SHREDKV_JOB_PURGE), "purge");
  CHECK_STR(shredkv_maintenance_job_name(SHREDKV_JOB_ROTATION), "rotation");
  CHECK_STR(shredkv_maintenance_job_name(SHREDKV_JOB_COMPACTION), "compaction");
  CHECK_STR(shredkv_maintenance_job_name(SHREDKV_JOB_SWEEP), "sweep");
  CHECK_STR(shredkv_maintenance_job_name(SHREDKV_JOB_ANALYTICS), "analytics");
  CHECK_STR(shredkv_maintenance_job_name(SHREDKV_JOB_ORPHAN_KEYS), "orphan_keys");
  CHECK_STR(shredkv_maintenance_job_name(0), "unknown");
  CHECK_STR(shredkv_maintenance_job_name(7), "unknown");

  CHECK_STR(shredkv_log_level_name(SHREDKV_LOG_DEBUG), "debug");
  CHECK_STR(shredkv_log_level_name(SHREDKV_LOG_INFO), "info");
  CHECK_STR(shredkv_log_level_name(SHREDKV_LOG_WARN), "warn");
  CHECK_STR(shredkv_log_level_name(SHREDKV_LOG_ERROR), "error");
  CHECK_STR(shredkv_log_level_name(-1), "unknown");
  CHECK_STR(shredkv_log_level_name(4), "unknown");
  return 0;
}

static int test_person_id_hex(void) {
  char* err = NULL;
  shredkv_person_id_t id;
  for (int i = 0; i < 16; ++i) id.bytes[i] = (uint8_t)(i * 17);
  char hex[33];
  memset(hex, 'x', sizeof hex);
  shredkv_person_id_to_hex(&id, hex);
  CHECK_EQ_INT(hex[32], '\0');
  CHECK_STR(hex, "00112233445566778899aabbccddeeff");

  shredkv_person_id_t back;
  memset(&back, 0, sizeof back);
  CHECK_OK(shredkv_person_id_from_hex(hex, &back, &err), err);
  CHECK(same_person(&id, &back));
  CHECK(err == NULL); /* left alone on success */

  /* Too short, too long, not hex: INVALID_ARGUMENT with a message. */
  const char* bad[] = {"", "0112", "01122334455667788899aabbccddeef", "01122334455667788899aabbccddeeff0",
                       "0112233445566778889zaabbccddeeff"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; ++i) {
    shredkv_person_id_t untouched = id;
    const int rc = shredkv_person_id_from_hex(bad[i], &untouched, &err);
    CHECK_EQ_INT(rc, SHREDKV_INVALID_ARGUMENT);
    CHECK(err != NULL);
    CHECK(strncmp(err, "InvalidArgument", 15) == 0);
    /* errptr already holding a message: the next failure frees it first
     * (valgrind / LeakSanitizer would see a leak otherwise). */
  }
  shredkv_free(err);
  err = NULL;
  /* errptr may be NULL. */
  CHECK_EQ_INT(shredkv_person_id_from_hex("zz", &back, NULL), SHREDKV_INVALID_ARGUMENT);
  return 0;
}

/* ---- attribute maps --------------------------------------------------------------- */

static int test_attrs(void) {
  shredkv_attrs_t* a = shredkv_attrs_create();
  CHECK(a != NULL);
  CHECK_EQ_INT(shredkv_attrs_count(a), 0);
  /* Set out of name order: the map reads back in bytewise name order. */
  shredkv_attrs_set_timestamp(a, "ts", 1700000000123LL);
  shredkv_attrs_set_string(a, "name", "Ann\0B", 5);
  shredkv_attrs_set_int64(a, "age", -42);
  shredkv_attrs_set_bytes(a, "blob", "\x00\x01\xff", 3);
  shredkv_attrs_set_double(a, "score", 2.5);
  shredkv_attrs_set_bool(a, "active", 7); /* nonzero: true */
  shredkv_attrs_set_bool(a, "Zed", 0);    /* 'Z' sorts before lowercase */
  CHECK_EQ_INT(shredkv_attrs_count(a), 7);
  const char* order[] = {"Zed", "active", "age", "blob", "name", "score", "ts"};
  for (size_t i = 0; i < 7; ++i) {
    CHECK_STR(shredkv_attrs_name(a, i), order[i]);
    CHECK_EQ_INT(shredkv_attrs_find(a, order[i]), (long)i);
  }
  CHECK_EQ_INT(shredkv_attrs_find(a, "missing"), -1);
  CHECK_EQ_INT(shredkv_attrs_find(a, "nam"), -1);

  size_t len = 99;
  /* Zed: bool false */
  CHECK_EQ_INT(shredkv_attrs_type(a, 0), SHREDKV_VALUE_BOOL);
  CHECK_EQ_INT(shredkv_attrs_int64(a, 0), 0);
  /* active: bool true, read as 1 through the int64 getter */
  CHECK_EQ_INT(shredkv_attrs_type(a, 1), SHREDKV_VALUE_BOOL);
  CHECK_EQ_INT(shredkv_attrs_int64(a, 1), 1);
  CHECK(shredkv_attrs_data(a, 1, &len) == NULL);
  CHECK_EQ_INT(len, 0);
  CHECK(shredkv_attrs_double(a, 1) == 0.0);
  /* age: int64 */
  CHECK_EQ_INT(shredkv_attrs_type(a, 2), SHREDKV_VALUE_INT64);
  CHECK_EQ_INT(shredkv_attrs_int64(a, 2), -42);
  CHECK(shredkv_attrs_double(a, 2) == 0.0);
  len = 99;
  CHECK(shredkv_attrs_data(a, 2, &len) == NULL);
  CHECK_EQ_INT(len, 0);
  /* blob: bytes, any byte */
  CHECK_EQ_INT(shredkv_attrs_type(a, 3), SHREDKV_VALUE_BYTES);
  const char* d = shredkv_attrs_data(a, 3, &len);
  CHECK(d != NULL);
  CHECK_EQ_INT(len, 3);
  CHECK(memcmp(d, "\x00\x01\xff", 3) == 0);
  CHECK_EQ_INT(shredkv_attrs_int64(a, 3), 0);
  CHECK(shredkv_attrs_double(a, 3) == 0.0);
  /* name: string with an embedded NUL */
  CHECK_EQ_INT(shredkv_attrs_type(a, 4), SHREDKV_VALUE_STRING);
  d = shredkv_attrs_data(a, 4, &len);
  CHECK(d != NULL);
  CHECK_EQ_INT(len, 5);
  CHECK(memcmp(d, "Ann\0B", 5) == 0);
  CHECK_EQ_INT(shredkv_attrs_int64(a, 4), 0);
  /* score: double */
  CHECK_EQ_INT(shredkv_attrs_type(a, 5), SHREDKV_VALUE_DOUBLE);
  CHECK(shredkv_attrs_double(a, 5) == 2.5);
  CHECK_EQ_INT(shredkv_attrs_int64(a, 5), 0);
  len = 99;
  CHECK(shredkv_attrs_data(a, 5, &len) == NULL);
  CHECK_EQ_INT(len, 0);
  /* ts: timestamp, read through the int64 getter */
  CHECK_EQ_INT(shredkv_attrs_type(a, 6), SHREDKV_VALUE_TIMESTAMP);
  CHECK_EQ_INT(shredkv_attrs_int64(a, 6), 1700000000123LL);
  CHECK(shredkv_attrs_data(a, 6, NULL) == NULL);

  /* A setter replaces the value and type of an existing name. */
  shredkv_attrs_set_string(a, "age", "old", 3);
  CHECK_EQ_INT(shredkv_attrs_count(a), 7);
  CHECK_EQ_INT(shredkv_attrs_type(a, 2), SHREDKV_VALUE_STRING);
  CHECK_EQ_INT(shredkv_attrs_int64(a, 2), 0);
  d = shredkv_attrs_data(a, 2, &len);
  CHECK(d != NULL && len == 3 && memcmp(d, "old", 3) == 0);

  /* remove: 1 if it was there, 0 if not; indexes shift. */
  CHECK_EQ_INT(shredkv_attrs_remove(a, "blob"), 1);
  CHECK_EQ_INT(shredkv_attrs_remove(a, "blob"), 0);
  CHECK_EQ_INT(shredkv_attrs_remove(a, "never"), 0);
  CHECK_EQ_INT(shredkv_attrs_count(a), 6);
  CHECK_EQ_INT(shredkv_attrs_find(a, "blob"), -1);
  CHECK_EQ_INT(shredkv_attrs_find(a, "name"), 3);
  CHECK_STR(shredkv_attrs_name(a, 3), "name");

  /* clear empties the map; it stays usable. */
  shredkv_attrs_clear(a);
  CHECK_EQ_INT(shredkv_attrs_count(a), 0);
  CHECK_EQ_INT(shredkv_attrs_find(a, "name"), -1);
  shredkv_attrs_set_int64(a, "n", 1);
  CHECK_EQ_INT(shredkv_attrs_count(a), 1);
  CHECK_EQ_INT(shredkv_attrs_int64(a, 0), 1);
  shredkv_attrs_destroy(a);
  return 0;
}

/* ---- people and identifiers ------------------------------------------------------- */

static int test_people(void) {
  SETUP(dir, store);
  char* err = NULL;
  shredkv_identifier_t ids[2] = {ident("email", "  Ann@Example.ORG "), ident("customer_id", "c-17")};
  shredkv_attrs_t* profile = shredkv_attrs_create();
  shredkv_attrs_set_string(profile, "name", "Ann", 3);
  shredkv_person_id_t ann;
  memset(&ann, 0, sizeof ann);
  CHECK_OK(shredkv_create_person(store, ids, 2, profile, &ann, &err), err);
  shredkv_attrs_destroy(profile);
  CHECK(!is_zero16(ann.bytes));

  /* Resolve by the normalised email and by the customer ID. */
  shredkv_identifier_t q = ident("email", "ann@example.org");
  shredkv_person_id_t got;
  memset(&got, 0, sizeof got);
  CHECK_OK(shredkv_resolve(store, &q, &got, &err), err);
  CHECK(same_person(&got, &ann));
  memset(&got, 0, sizeof got);
  CHECK_OK(shredkv_resolve(store, &ids[1], &got, &err), err);
  CHECK(same_person(&got, &ann));

  /* An identifier of someone else's: ALREADY_EXISTS, message in errptr. */
  shredkv_person_id_t bob;
  shredkv_identifier_t taken = ident("email", "ANN@example.org");
  CHECK_CODE(shredkv_create_person(store, &taken, 1, NULL, &bob, &err), SHREDKV_ALREADY_EXISTS, err);
  CHECK_CODE(shredkv_create_person(store, NULL, 0, NULL, &bob, &err), SHREDKV_INVALID_ARGUMENT, err);
  shredkv_identifier_t bad_type = ident("no_such_type", "x");
  CHECK_CODE(shredkv_create_person(store, &bad_type, 1, NULL, &bob, &err), SHREDKV_INVALID_ARGUMENT, err);
  CHECK(new_person(store, "bob@example.org", &bob) == 0);

  /* Unknown identifier: NOT_FOUND with a message. */
  shredkv_identifier_t nobody = ident("email", "nobody@example.org");
  CHECK_EQ_INT(shredkv_resolve(store, &nobody, &got, &err), SHREDKV_NOT_FOUND);
  CHECK(err != NULL && strncmp(err, "NotFound", 8) == 0);
  shredkv_free(err);
  err = NULL;

  /* lookup_profile: the person and the profile in one call; NOT_FOUND as resolve. */
  shredkv_attrs_t* found = NULL;
  memset(&got, 0, sizeof got);
  CHECK_OK(shredkv_lookup_profile(store, &q, &got, &found, &err), err);
  CHECK(same_person(&got, &ann));
  CHECK_EQ_INT(shredkv_attrs_count(found), 1);
  CHECK(shredkv_attrs_find(found, "name") == 0);
  shredkv_attrs_destroy(found);
  found = NULL;
  CHECK_CODE(shredkv_lookup_profile(store, &nobody, &got, &found, &err), SHREDKV_NOT_FOUND, err);
  CHECK(found == NULL);

  /* link: a free identifier; again is OK; someone else's is ALREADY_EXISTS. */
  shredkv_identifier_t phone = ident("phone", "+41 79 123 45 67");
  CHECK_OK(shredkv_link_identifier(store, &ann, &phone, &err), err);
  CHECK_OK(shredkv_link_identifier(store, &ann, &phone, &err), err);
  CHECK_OK(shredkv_resolve(store, &phone, &got, &err), err);
  CHECK(same_person(&got, &ann));
  shredkv_identifier_t bobs = ident("email", "bob@example.org");
  CHECK_CODE(shredkv_link_identifier(store, &ann, &bobs, &err), SHREDKV_ALREADY_EXISTS, err);

  /* get_person: id, anon id, creation time, epoch, sorted identifiers. */
  shredkv_person_info_t* info = NULL;
  CHECK_OK(shredkv_get_person(store, &ann, &info, &err), err);
  shredkv_person_id_t info_id;
  memset(&info_id, 0, sizeof info_id);
  shredkv_person_info_id(info, &info_id);
  CHECK(same_person(&info_id, &ann));
  uint8_t anon[16];
  memset(anon, 0, sizeof anon);
  shredkv_person_info_anon_id(info, anon);
  CHECK(!is_zero16(anon));
  CHECK(memcmp(anon, ann.bytes, 16) != 0);
  CHECK(shredkv_person_info_created_ms(info) > 1600000000000LL);
  CHECK(shredkv_person_info_key_epoch(info) >= 1);
  CHECK_EQ_INT(shredkv_person_info_identifier_count(info), 3);
  const char* v = NULL;
  size_t vlen = 0;
  /* sorted by (type, value): customer_id, email, phone */
  CHECK_STR(shredkv_person_info_identifier(info, 0, &v, &vlen), "customer_id");
  CHECK(vlen == 4 && memcmp(v, "c-17", 4) == 0);
  CHECK_STR(shredkv_person_info_identifier(info, 1, &v, &vlen), "email");
  CHECK(vlen == strlen("ann@example.org") && memcmp(v, "ann@example.org", vlen) == 0);
  CHECK_STR(shredkv_person_info_identifier(info, 2, &v, &vlen), "phone");
  CHECK(vlen > 0 && strchr(v, ' ') == NULL); /* normalised: no spaces */
  shredkv_person_info_destroy(info);

  /* unlink: gone from resolve and the info; unlinking again: NOT_FOUND. */
  CHECK_OK(shredkv_unlink_identifier(store, &ann, &ids[1], &err), err);
  CHECK_CODE(shredkv_resolve(store, &ids[1], &got, &err), SHREDKV_NOT_FOUND, err);
  CHECK_CODE(shredkv_unlink_identifier(store, &ann, &ids[1], &err), SHREDKV_NOT_FOUND, err);
  CHECK_CODE(shredkv_unlink_identifier(store, &ann, &bobs, &err), SHREDKV_NOT_FOUND, err);
  CHECK_OK(shredkv_get_person(store, &ann, &info, &err), err);
  CHECK_EQ_INT(shredkv_person_info_identifier_count(info), 2);
  CHECK_STR(shredkv_person_info_identifier(info, 0, NULL, NULL), "email");
  CHECK(shredkv_person_info_identifier(info, 2, &v, &vlen) == NULL);
  shredkv_person_info_destroy(info);

  /* An unknown person: NOT_FOUND. */
  shredkv_person_id_t ghost;
  memset(&ghost, 0x5a, sizeof ghost);
  CHECK_CODE(shredkv_get_person(store, &ghost, &info, &err), SHREDKV_NOT_FOUND, err);
  TEARDOWN(dir, store);
  return 0;
}

/* ---- profiles ---------------------------------------------------------------------- */

static int test_profile(void) {
  SETUP(dir, store);
  char* err = NULL;
  shredkv_person_id_t ann;
  CHECK(new_person(store, "ann@example.org", &ann) == 0);

  /* A new person without a profile has an empty one. */
  shredkv_attrs_t* got = NULL;
  CHECK_OK(shredkv_get_profile(store, &ann, &got, &err), err);
  CHECK_EQ_INT(shredkv_attrs_count(got), 0);
  shredkv_attrs_destroy(got);

  shredkv_attrs_t* set = shredkv_attrs_create();
  shredkv_attrs_set_string(set, "city", "Bern", 4);
  shredkv_attrs_set_int64(set, "age", 41);
  shredkv_attrs_set_bool(set, "vip", 1);
  CHECK_OK(shredkv_patch_profile(store, &ann, set, NULL, 0, &err), err);
  CHECK_OK(shredkv_get_profile(store, &ann, &got, &err), err);
  CHECK_EQ_INT(shredkv_attrs_count(got), 3);
  long i = shredkv_attrs_find(got, "city");
  CHECK(i >= 0);
  size_t len = 0;
  const char* d = shredkv_attrs_data(got, (size_t)i, &len);
  CHECK(d != NULL && len == 4 && memcmp(d, "Bern", 4) == 0);
  i = shredkv_attrs_find(got, "age");
  CHECK(i >= 0);
  CHECK_EQ_INT(shredkv_attrs_type(got, (size_t)i), SHREDKV_VALUE_INT64);
  CHECK_EQ_INT(shredkv_attrs_int64(got, (size_t)i), 41);
  shredkv_attrs_destroy(got);

  /* One patch sets, replaces and unsets; unsetting an absent name is fine. */
  shredkv_attrs_clear(set);
  shredkv_attrs_set_string(set, "city", "Basel", 5);
  shredkv_attrs_set_double(set, "height", 1.75);
  const char* unset[] = {"vip", "never_there"};
  CHECK_OK(shredkv_patch_profile(store, &ann, set, unset, 2, &err), err);
  CHECK_OK(shredkv_get_profile(store, &ann, &got, &err), err);
  CHECK_EQ_INT(shredkv_attrs_count(got), 3); /* age, city, height */
  CHECK_STR(shredkv_attrs_name(got, 0), "age");
  CHECK_STR(shredkv_attrs_name(got, 1), "city");
  CHECK_STR(shredkv_attrs_name(got, 2), "height");
  CHECK_EQ_INT(shredkv_attrs_find(got, "vip"), -1);
  d = shredkv_attrs_data(got, 1, &len);
  CHECK(d != NULL && len == 5 && memcmp(d, "Basel", 5) == 0);
  CHECK(shredkv_attrs_double(got, 2) == 1.75);
  shredkv_attrs_destroy(got);

  /* set may be NULL: unset only. */
  const char* unset2[] = {"age"};
  CHECK_OK(shredkv_patch_profile(store, &ann, NULL, unset2, 1, &err), err);
  CHECK_OK(shredkv_get_profile(store, &ann, &got, &err), err);
  CHECK_EQ_INT(shredkv_attrs_count(got), 2);
  CHECK_EQ_INT(shredkv_attrs_find(got, "age"), -1);
  shredkv_attrs_destroy(got);

  /* An empty attribute name is refused; an unknown person is NOT_FOUND. */
  shredkv_attrs_clear(set);
  shredkv_attrs_set_int64(set, "", 1);
  CHECK_CODE(shredkv_patch_profile(store, &ann, set, NULL, 0, &err), SHREDKV_INVALID_ARGUMENT, err);
  shredkv_attrs_destroy(set);
  shredkv_person_id_t ghost;
  memset(&ghost, 0x33, sizeof ghost);
  CHECK_CODE(shredkv_get_profile(store, &ghost, &got, &err), SHREDKV_NOT_FOUND, err);
  CHECK_CODE(shredkv_patch_profile(store, &ghost, NULL, unset2, 1, &err), SHREDKV_NOT_FOUND, err);
  TEARDOWN(dir, store);
  return 0;
}

/* ---- events --------------------------------------------------------------------------- */

static const int64_t kT0 = 1700000000000LL; /* 2023-11-14T22:13:20Z */

static int test_events(void) {
  SETUP(dir, store);
  char* err = NULL;
  shredkv_person_id_t ann;
  CHECK(new_person(store, "ann@example.org", &ann) == 0);
  CHECK(add_event(store, &ann, "page_view", kT0 + 2000, 1) == 0);
  CHECK(add_event(store, &ann, "page_view", kT0, 2) == 0);
  CHECK(add_event(store, &ann, "purchase", kT0 + 2000, 3) == 0);
  /* An explicit category; no properties at all. */
  CHECK_OK(shredkv_append_event(store, &ann, "login", kT0 + 5000, NULL, NULL, 0, "behaviour", &err), err);

  /* An analytics field that is not a property: INVALID_ARGUMENT, nothing added. */
  const char* missing[] = {"no_such_property"};
  CHECK_CODE(shredkv_append_event(store, &ann, "x", kT0, NULL, missing, 1, NULL, &err), SHREDKV_INVALID_ARGUMENT,
             err);

  /* All events, ordered by (ts, seq). */
  shredkv_iterator_t* it = shredkv_scan_events(store, &ann, INT64_MIN, INT64_MAX);
  CHECK(it != NULL);
  const char* names[] = {"page_view", "page_view", "purchase", "login"};
  const int64_t times[] = {kT0, kT0 + 2000, kT0 + 2000, kT0 + 5000};
  const int64_t amounts[] = {2, 1, 3, 0};
  uint64_t last_seq_at_2000 = 0;
  size_t n = 0;
  for (; shredkv_iter_valid(it); shredkv_iter_next(it), ++n) {
    CHECK(n < 4);
    const shredkv_event_t* e = shredkv_iter_event(it);
    CHECK(e != NULL);
    /* Every accessor of another kind: NULL / 0. */
    CHECK(shredkv_iter_record(it) == NULL);
    CHECK(shredkv_iter_analytics(it) == NULL);
    CHECK(shredkv_iter_export_item(it) == NULL);
    shredkv_person_id_t who = ann;
    CHECK_EQ_INT(shredkv_iter_person(it, &who), 0);
    CHECK(same_person(&who, &ann)); /* untouched */
    CHECK_STR(shredkv_event_name(e), names[n]);
    CHECK_EQ_INT(shredkv_event_ts_ms(e), times[n]);
    CHECK(shredkv_event_seq(e) > 0);
    if (times[n] == kT0 + 2000) {
      CHECK(shredkv_event_seq(e) > last_seq_at_2000); /* same ts: by seq */
      last_seq_at_2000 = shredkv_event_seq(e);
    }
    const shredkv_attrs_t* props = shredkv_event_properties(e);
    CHECK(props != NULL);
    if (n < 3) {
      CHECK_STR(shredkv_event_category(e), "general");
      CHECK_EQ_INT(shredkv_attrs_count(props), 2);
      const long a = shredkv_attrs_find(props, "amount");
      CHECK(a >= 0);
      CHECK_EQ_INT(shredkv_attrs_int64(props, (size_t)a), amounts[n]);
      size_t len = 0;
      const char* page = shredkv_attrs_data(props, (size_t)shredkv_attrs_find(props, "page"), &len);
      CHECK(page != NULL && len == 5 && memcmp(page, "/home", 5) == 0);
    } else {
      CHECK_STR(shredkv_event_category(e), "behaviour");
      CHECK_EQ_INT(shredkv_attrs_count(props), 0);
    }
  }
  CHECK_EQ_INT(n, 4);
  CHECK(shredkv_iter_event(it) == NULL); /* not valid: no item */
  CHECK_OK(shredkv_iter_status(it, &err), err);
  shredkv_iter_destroy(it);

  /* Half-open ranges [from, to). */
  struct {
    int64_t from, to;
    size_t want;
  } ranges[] = {
      {kT0, kT0 + 2000, 1},     {kT0 + 2000, kT0 + 2001, 2}, {kT0 + 1, kT0 + 5000, 2},
      {kT0 + 5000, INT64_MAX, 1}, {INT64_MIN, kT0, 0},        {kT0 + 6000, INT64_MAX, 0},
  };
  for (size_t r = 0; r < sizeof ranges / sizeof ranges[0]; ++r) {
    it = shredkv_scan_events(store, &ann, ranges[r].from, ranges[r].to);
    CHECK(drain_count(it, &n) == 0);
    shredkv_iter_destroy(it);
    CHECK_EQ_INT(n, ranges[r].want);
  }
  it = shredkv_scan_events(store, &ann, kT0 + 2000, kT0 + 2001);
  CHECK(shredkv_iter_valid(it));
  CHECK_STR(shredkv_event_name(shredkv_iter_event(it)), "page_view");
  shredkv_iter_next(it);
  CHECK(shredkv_iter_valid(it));
  CHECK_STR(shredkv_event_name(shredkv_iter_event(it)), "purchase");
  shredkv_iter_next(it);
  CHECK(!shredkv_iter_valid(it));
  shredkv_iter_destroy(it);

  /* An unknown person: the scan ends at once with NOT_FOUND. */
  shredkv_person_id_t ghost;
  memset(&ghost, 0x44, sizeof ghost);
  it = shredkv_scan_events(store, &ghost, INT64_MIN, INT64_MAX);
  CHECK(!shredkv_iter_valid(it));
  CHECK(shredkv_iter_event(it) == NULL);
  CHECK_CODE(shredkv_iter_status(it, &err), SHREDKV_NOT_FOUND, err);
  shredkv_iter_destroy(it);
  CHECK_CODE(shredkv_append_event(store, &ghost, "x", kT0, NULL, NULL, 0, NULL, &err), SHREDKV_NOT_FOUND, err);
  TEARDOWN(dir, store);
  return 0;
}

/* ---- records ---------------------------------------------------------------------------- */

/* The wall clock in ms, as precise as the store's (time() is a coarse clock
 * that may still read the previous second when the store's reads the next:
 * a comparison with it failed once under load). */
static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + (int64_t)(ts.tv_nsec / 1000000);
}

/* `got_len` is read after `got` is computed (the getter fills it). */
static int check_bytes(const char* got, const size_t* got_len, const char* want, size_t want_len) {
  CHECK(got != NULL);
  CHECK_EQ_INT(*got_len, want_len);
  CHECK(want_len == 0 || memcmp(got, want, want_len) == 0);
  return 0;
}

static int test_records(void) {
  SETUP(dir, store);
  char* err = NULL;
  shredkv_person_id_t ann;
  CHECK(new_person(store, "ann@example.org", &ann) == 0);
  const int64_t expires = now_ms() + 86400000LL;

  /* A built record reads back what was set, before any store sees it. */
  shredkv_record_t* rec = shredkv_record_create("prefs", 5, "theme", 5, "dark", 4);
  CHECK(rec != NULL);
  size_t len = 0;
  CHECK(check_bytes(shredkv_record_collection(rec, &len), &len, "prefs", 5) == 0);
  CHECK(check_bytes(shredkv_record_key(rec, &len), &len, "theme", 5) == 0);
  CHECK(check_bytes(shredkv_record_value(rec, &len), &len, "dark", 4) == 0);
  CHECK_STR(shredkv_record_category(rec), "");
  CHECK_EQ_INT(shredkv_record_purpose_count(rec), 0);
  CHECK(check_bytes(shredkv_record_origin(rec, &len), &len, "", 0) == 0);
  CHECK_EQ_INT(shredkv_record_shared_with_count(rec), 0);
  CHECK_EQ_INT(shredkv_record_automated_decision(rec), 0);
  CHECK_EQ_INT(shredkv_record_expires_ms(rec), 0);
  shredkv_record_set_category(rec, "contact");
  shredkv_record_add_purpose(rec, "support");
  shredkv_record_add_purpose(rec, "billing");
  shredkv_record_set_origin(rec, "signup\0form", 11);
  shredkv_record_add_shared_with(rec, "zeta");
  shredkv_record_add_shared_with(rec, "acme");
  shredkv_record_set_automated_decision(rec, 1);
  shredkv_record_set_expires_ms(rec, expires);
  CHECK_STR(shredkv_record_category(rec), "contact");
  CHECK_EQ_INT(shredkv_record_purpose_count(rec), 2);
  CHECK_STR(shredkv_record_purpose(rec, 0), "support"); /* as added, until stored */
  CHECK(shredkv_record_purpose(rec, 2) == NULL);
  CHECK_EQ_INT(shredkv_record_shared_with_count(rec), 2);
  CHECK(shredkv_record_shared_with(rec, 2) == NULL);
  CHECK_EQ_INT(shredkv_record_automated_decision(rec), 1);
  CHECK_EQ_INT(shredkv_record_expires_ms(rec), expires);
  CHECK_OK(shredkv_put_record(store, &ann, rec, &err), err);
  shredkv_record_destroy(rec);

  /* get_record: value, category and metadata (lists stored sorted). */
  shredkv_record_t* got = NULL;
  CHECK_OK(shredkv_get_record(store, &ann, "prefs", 5, "theme", 5, &got, &err), err);
  CHECK(check_bytes(shredkv_record_collection(got, &len), &len, "prefs", 5) == 0);
  CHECK(check_bytes(shredkv_record_key(got, &len), &len, "theme", 5) == 0);
  CHECK(check_bytes(shredkv_record_value(got, &len), &len, "dark", 4) == 0);
  CHECK_STR(shredkv_record_category(got), "contact");
  CHECK_EQ_INT(shredkv_record_purpose_count(got), 2);
  CHECK_STR(shredkv_record_purpose(got, 0), "billing");
  CHECK_STR(shredkv_record_purpose(got, 1), "support");
  CHECK(check_bytes(shredkv_record_origin(got, &len), &len, "signup\0form", 11) == 0);
  CHECK_EQ_INT(shredkv_record_shared_with_count(got), 2);
  CHECK_STR(shredkv_record_shared_with(got, 0), "acme");
  CHECK_STR(shredkv_record_shared_with(got, 1), "zeta");
  CHECK_EQ_INT(shredkv_record_automated_decision(got), 1);
  CHECK_EQ_INT(shredkv_record_expires_ms(got), expires);
  shredkv_record_destroy(got);

  /* get: the value, malloc'ed and NUL-terminated beyond its length. */
  char* value = NULL;
  size_t value_len = 0;
  CHECK_OK(shredkv_get(store, &ann, "prefs", 5, "theme", 5, &value, &value_len, &err), err);
  CHECK_EQ_INT(value_len, 4);
  CHECK_STR(value, "dark");
  shredkv_free(value);

  /* put: value only; an update keeps the category and drops the metadata. */
  CHECK_OK(shredkv_put(store, &ann, "prefs", 5, "theme", 5, "light", 5, &err), err);
  CHECK_OK(shredkv_get_record(store, &ann, "prefs", 5, "theme", 5, &got, &err), err);
  CHECK(check_bytes(shredkv_record_value(got, &len), &len, "light", 5) == 0);
  CHECK_STR(shredkv_record_category(got), "contact");
  CHECK_EQ_INT(shredkv_record_purpose_count(got), 0);
  CHECK_EQ_INT(shredkv_record_shared_with_count(got), 0);
  CHECK_EQ_INT(shredkv_record_expires_ms(got), 0);
  shredkv_record_destroy(got);
  /* A new record by put: general; binary key and value. */
  CHECK_OK(shredkv_put(store, &ann, "bin", 3, "k\0x", 3, "\0\1\2", 3, &err), err);
  CHECK_OK(shredkv_get(store, &ann, "bin", 3, "k\0x", 3, &value, &value_len, &err), err);
  CHECK(check_bytes(value, &value_len, "\0\1\2", 3) == 0);
  CHECK_EQ_INT(value[3], '\0');
  shredkv_free(value);
  CHECK_OK(shredkv_get_record(store, &ann, "bin", 3, "k\0x", 3, &got, &err), err);
  CHECK_STR(shredkv_record_category(got), "general");
  shredkv_record_destroy(got);
  CHECK_CODE(shredkv_get(store, &ann, "bin", 3, "k", 1, &value, &value_len, &err), SHREDKV_NOT_FOUND, err);

  /* scan_records with a prefix, in key order. */
  const char* keys[] = {"item:2", "other", "item:1", "item:3"};
  for (size_t i = 0; i < 4; ++i) {
    CHECK_OK(shredkv_put(store, &ann, "cart", 4, keys[i], strlen(keys[i]), keys[i], strlen(keys[i]), &err), err);
  }
  shredkv_iterator_t* it = shredkv_scan_records(store, &ann, "cart", 4, "item:", 5);
  const char* want[] = {"item:1", "item:2", "item:3"};
  size_t n = 0;
  for (; shredkv_iter_valid(it); shredkv_iter_next(it), ++n) {
    CHECK(n < 3);
    const shredkv_record_t* r = shredkv_iter_record(it);
    CHECK(r != NULL);
    CHECK(shredkv_iter_event(it) == NULL);
    CHECK(shredkv_iter_analytics(it) == NULL);
    CHECK(shredkv_iter_export_item(it) == NULL);
    shredkv_person_id_t who;
    CHECK_EQ_INT(shredkv_iter_person(it, &who), 0);
    CHECK(check_bytes(shredkv_record_collection(r, &len), &len, "cart", 4) == 0);
    CHECK(check_bytes(shredkv_record_key(r, &len), &len, want[n], strlen(want[n])) == 0);
    CHECK(check_bytes(shredkv_record_value(r, &len), &len, want[n], strlen(want[n])) == 0);
  }
  CHECK_EQ_INT(n, 3);
  CHECK(shredkv_iter_record(it) == NULL);
  CHECK_OK(shredkv_iter_status(it, &err), err);
  shredkv_iter_destroy(it);
  it = shredkv_scan_records(store, &ann, "cart", 4, NULL, 0);
  CHECK(drain_count(it, &n) == 0);
  shredkv_iter_destroy(it);
  CHECK_EQ_INT(n, 4);
  it = shredkv_scan_records(store, &ann, "cart", 4, "zzz", 3);
  CHECK(drain_count(it, &n) == 0);
  shredkv_iter_destroy(it);
  CHECK_EQ_INT(n, 0);

  /* delete; deleting an absent record is OK. */
  CHECK_OK(shredkv_delete(store, &ann, "cart", 4, "item:2", 6, &err), err);
  CHECK_OK(shredkv_delete(store, &ann, "cart", 4, "item:2", 6, &err), err);
  CHECK_CODE(shredkv_get(store, &ann, "cart", 4, "item:2", 6, &value, &value_len, &err), SHREDKV_NOT_FOUND, err);
  CHECK_CODE(shredkv_get_record(store, &ann, "cart", 4, "item:2", 6, &got, &err), SHREDKV_NOT_FOUND, err);
  it = shredkv_scan_records(store, &ann, "cart", 4, "item:", 5);
  CHECK(drain_count(it, &n) == 0);
  shredkv_iter_destroy(it);
  CHECK_EQ_INT(n, 2);

  /* An unregistered purpose in the metadata: INVALID_ARGUMENT. */
  rec = shredkv_record_create("prefs", 5, "x", 1, "y", 1);
  shredkv_record_add_purpose(rec, "no_such_purpose");
  CHECK_CODE(shredkv_put_record(store, &ann, rec, &err), SHREDKV_INVALID_ARGUMENT, err);
  shredkv_record_destroy(rec);
  CHECK_CODE(shredkv_get(store, &ann, "prefs", 5, "x", 1, &value, &value_len, &err), SHREDKV_NOT_FOUND, err);
  TEARDOWN(dir, store);
  return 0;
}

/* Puts a record with metadata: purposes and recipients (NULL-terminated lists). */
static int put_meta(shredkv_store_t* store, const shredkv_person_id_t* p, const char* collection, const char* key,
                    const char* const* purposes, const char* const* recipients, int64_t expires) {
  char* err = NULL;
  shredkv_record_t* rec = shredkv_record_create(collection, strlen(collection), key, strlen(key), "v", 1);
  for (; purposes != NULL && *purposes != NULL; ++purposes) shredkv_record_add_purpose(rec, *purposes);
  for (; recipients != NULL && *recipients != NULL; ++recipients) shredkv_record_add_shared_with(rec, *recipients);
  shredkv_record_set_expires_ms(rec, expires);
  const int rc = shredkv_put_record(store, p, rec, &err);
  shredkv_record_destroy(rec);
  CHECK_OK(rc, err);
  return 0;
}

/* Runs a find_records query; returns the keys found ("key@a" / "key@b" by
 * owner) joined with ',' in iteration order, into `out`. */
static int find_keys(shredkv_store_t* store, int field, const char* value, int64_t before,
                     const shredkv_person_id_t* a, const shredkv_person_id_t* b, char out[256]) {
  char* err = NULL;
  out[0] = '\0';
  shredkv_iterator_t* it = shredkv_find_records(store, field, value, before);
  CHECK(it != NULL);
  for (; shredkv_iter_valid(it); shredkv_iter_next(it)) {
    const shredkv_record_t* r = shredkv_iter_record(it);
    CHECK(r != NULL);
    CHECK(shredkv_iter_event(it) == NULL);
    CHECK(shredkv_iter_analytics(it) == NULL);
    CHECK(shredkv_iter_export_item(it) == NULL);
    shredkv_person_id_t owner;
    memset(&owner, 0, sizeof owner);
    CHECK_EQ_INT(shredkv_iter_person(it, &owner), 1);
    CHECK(same_person(&owner, a) || same_person(&owner, b));
    size_t len = 0;
    const char* key = shredkv_record_key(r, &len);
    char item[64];
    snprintf(item, sizeof item, "%s%.*s@%s", out[0] != '\0' ? "," : "", (int)len, key,
             same_person(&owner, a) ? "a" : "b");
    CHECK(strlen(out) + strlen(item) < 256);
    strcat(out, item);
  }
  CHECK_OK(shredkv_iter_status(it, &err), err);
  shredkv_iter_destroy(it);
  return 0;
}

static int test_find_records(void) {
  SETUP(dir, store);
  shredkv_person_id_t ann, bob;
  CHECK(new_person(store, "ann@example.org", &ann) == 0);
  CHECK(new_person(store, "bob@example.org", &bob) == 0);
  const int64_t day = 86400000LL, now = now_ms();
  const char* billing[] = {"billing", NULL};
  const char* billing_support[] = {"billing", "support", NULL};
  const char* acme[] = {"acme", NULL};
  const char* beta[] = {"beta", NULL};
  CHECK(put_meta(store, &ann, "orders", "o1", billing, acme, now + day) == 0);
  CHECK(put_meta(store, &bob, "orders", "o2", billing_support, NULL, now + 2 * day) == 0);
  CHECK(put_meta(store, &bob, "notes", "n1", NULL, beta, 0) == 0);
  char got[256];

  CHECK(find_keys(store, SHREDKV_QUERY_PURPOSE, "support", 0, &ann, &bob, got) == 0);
  CHECK_STR(got, "o2@b");
  CHECK(find_keys(store, SHREDKV_QUERY_PURPOSE, "billing", 0, &ann, &bob, got) == 0);
  CHECK(strcmp(got, "o1@a,o2@b") == 0 || strcmp(got, "o2@b,o1@a") == 0);
  CHECK(find_keys(store, SHREDKV_QUERY_PURPOSE, "marketing", 0, &ann, &bob, got) == 0);
  CHECK_STR(got, "");
  CHECK(find_keys(store, SHREDKV_QUERY_RECIPIENT, "acme", 0, &ann, &bob, got) == 0);
  CHECK_STR(got, "o1@a");
  CHECK(find_keys(store, SHREDKV_QUERY_RECIPIENT, "beta", 0, &ann, &bob, got) == 0);
  CHECK_STR(got, "n1@b");
  CHECK(find_keys(store, SHREDKV_QUERY_RECIPIENT, "gamma", 0, &ann, &bob, got) == 0);
  CHECK_STR(got, "");
  /* Expiring before: soonest first; the value is ignored. */
  CHECK(find_keys(store, SHREDKV_QUERY_EXPIRES_BEFORE, "ignored", now + day + day / 2, &ann, &bob, got) == 0);
  CHECK_STR(got, "o1@a");
  CHECK(find_keys(store, SHREDKV_QUERY_EXPIRES_BEFORE, NULL, now + 3 * day, &ann, &bob, got) == 0);
  CHECK_STR(got, "o1@a,o2@b");
  CHECK(find_keys(store, SHREDKV_QUERY_EXPIRES_BEFORE, NULL, now + day / 2, &ann, &bob, got) == 0);
  CHECK_STR(got, "");
  /* A field outside the enum: the scan ends with INVALID_ARGUMENT. */
  char* err = NULL;
  shredkv_iterator_t* it = shredkv_find_records(store, 3, "billing", 0);
  CHECK(!shredkv_iter_valid(it));
  CHECK(shredkv_iter_record(it) == NULL);
  CHECK_CODE(shredkv_iter_status(it, &err), SHREDKV_INVALID_ARGUMENT, err);
  shredkv_iter_destroy(it);
  it = shredkv_find_records(store, -1, "billing", 0);
  CHECK_CODE(shredkv_iter_status(it, &err), SHREDKV_INVALID_ARGUMENT, err);
  shredkv_iter_destroy(it);
  TEARDOWN(dir, store);
  return 0;
}

/* ---- analytics ------------------------------------------------------------------------------ */

static const int64_t kHour = 3600000LL;

static int anon_of(shredkv_store_t* store, const shredkv_person_id_t* p, uint8_t out[16]) {
  char* err = NULL;
  shredkv_person_info_t* info = NULL;
  CHECK_OK(shredkv_get_person(store, p, &info, &err), err);
  shredkv_person_info_anon_id(info, out);
  shredkv_person_info_destroy(info);
  return 0;
}

static int test_analytics(void) {
  SETUP(dir, store);
  char* err = NULL;
  shredkv_person_id_t ann, bob;
  CHECK(new_person(store, "ann@example.org", &ann) == 0);
  CHECK(new_person(store, "bob@example.org", &bob) == 0);
  uint8_t ann_anon[16], bob_anon[16];
  CHECK(anon_of(store, &ann, ann_anon) == 0);
  CHECK(anon_of(store, &bob, bob_anon) == 0);
  const int64_t h0 = kT0 - kT0 % kHour; /* the hour of kT0 */
  CHECK(kT0 != h0);
  CHECK(add_event(store, &ann, "page_view", kT0, 2) == 0);
  CHECK(add_event(store, &ann, "purchase", kT0 + 2000, 3) == 0);
  CHECK(add_event(store, &bob, "page_view", kT0 + 2 * kHour, 5) == 0);
  /* No analytics fields: still a row (name and time), with no fields. */
  CHECK_OK(shredkv_append_event(store, &bob, "login", kT0 + 2 * kHour + 1, NULL, NULL, 0, NULL, &err), err);

  shredkv_iterator_t* it = shredkv_scan_analytics(store, INT64_MIN, INT64_MAX, NULL);
  CHECK(it != NULL);
  size_t n = 0, ann_rows = 0, bob_rows = 0;
  int64_t last_ts = INT64_MIN;
  int seen_purchase = 0, seen_login = 0;
  for (; shredkv_iter_valid(it); shredkv_iter_next(it), ++n) {
    const shredkv_analytics_row_t* row = shredkv_iter_analytics(it);
    CHECK(row != NULL);
    CHECK(shredkv_iter_event(it) == NULL);
    CHECK(shredkv_iter_record(it) == NULL);
    CHECK(shredkv_iter_export_item(it) == NULL);
    shredkv_person_id_t who;
    CHECK_EQ_INT(shredkv_iter_person(it, &who), 0);
    uint8_t anon[16];
    shredkv_analytics_anon_id(row, anon);
    const int64_t ts = shredkv_analytics_ts_ms(row);
    CHECK(ts >= last_ts); /* by time bucket */
    last_ts = ts;
    CHECK_EQ_INT(ts % kHour, 0); /* coarsened to the hour */
    CHECK_EQ_INT(shredkv_analytics_seq(row), 0); /* no event named by a scan */
    const shredkv_attrs_t* fields = shredkv_analytics_fields(row);
    CHECK(fields != NULL);
    const char* name = shredkv_analytics_name(row);
    if (memcmp(anon, ann_anon, 16) == 0) {
      ++ann_rows;
      CHECK_EQ_INT(ts, h0);
      /* Only the declared field: "page" stays out. */
      CHECK_EQ_INT(shredkv_attrs_count(fields), 1);
      CHECK_STR(shredkv_attrs_name(fields, 0), "amount");
      if (strcmp(name, "purchase") == 0) {
        seen_purchase = 1;
        CHECK_EQ_INT(shredkv_attrs_int64(fields, 0), 3);
      } else {
        CHECK_STR(name, "page_view");
        CHECK_EQ_INT(shredkv_attrs_int64(fields, 0), 2);
      }
    } else {
      CHECK(memcmp(anon, bob_anon, 16) == 0);
      ++bob_rows;
      CHECK_EQ_INT(ts, h0 + 2 * kHour);
      if (strcmp(name, "login") == 0) {
        seen_login = 1;
        CHECK_EQ_INT(shredkv_attrs_count(fields), 0);
      } else {
        CHECK_STR(name, "page_view");
        CHECK_EQ_INT(shredkv_attrs_int64(fields, (size_t)shredkv_attrs_find(fields, "amount")), 5);
      }
    }
  }
  CHECK_OK(shredkv_iter_status(it, &err), err);
  CHECK(shredkv_iter_analytics(it) == NULL);
  shredkv_iter_destroy(it);
  CHECK_EQ_INT(n, 4);
  CHECK_EQ_INT(ann_rows, 2);
  CHECK_EQ_INT(bob_rows, 2);
  CHECK(seen_purchase && seen_login);

  /* By name; by range (rows' own coarse times). */
  it = shredkv_scan_analytics(store, INT64_MIN, INT64_MAX, "page_view");
  for (n = 0; shredkv_iter_valid(it); shredkv_iter_next(it), ++n) {
    CHECK_STR(shredkv_analytics_name(shredkv_iter_analytics(it)), "page_view");
  }
  CHECK_OK(shredkv_iter_status(it, &err), err);
  shredkv_iter_destroy(it);
  CHECK_EQ_INT(n, 2);
  struct {
    int64_t from, to;
    const char* name;
    size_t want;
  } q[] = {
      {h0, h0 + 1, NULL, 2},          {h0 + 1, h0 + 2 * kHour, NULL, 0}, {h0 + kHour, INT64_MAX, NULL, 2},
      {h0, h0 + 3 * kHour, "purchase", 1}, {h0, h0 + 3 * kHour, "nothing", 0},
  };
  for (size_t i = 0; i < sizeof q / sizeof q[0]; ++i) {
    it = shredkv_scan_analytics(store, q[i].from, q[i].to, q[i].name);
    CHECK(drain_count(it, &n) == 0);
    shredkv_iter_destroy(it);
    CHECK_EQ_INT(n, q[i].want);
  }
  TEARDOWN(dir, store);
  return 0;
}

/* ---- rectification and the change feed -------------------------------------------------------- */

/* The first event of a person: its ts and seq. */
static int first_event(shredkv_store_t* store, const shredkv_person_id_t* p, int64_t* ts, uint64_t* seq) {
  char* err = NULL;
  shredkv_iterator_t* it = shredkv_scan_events(store, p, INT64_MIN, INT64_MAX);
  CHECK(shredkv_iter_valid(it));
  *ts = shredkv_event_ts_ms(shredkv_iter_event(it));
  *seq = shredkv_event_seq(shredkv_iter_event(it));
  CHECK_OK(shredkv_iter_status(it, &err), err);
  shredkv_iter_destroy(it);
  return 0;
}

static int notice_has_name(const shredkv_notice_t* notice, const char* name) {
  for (size_t i = 0; i < shredkv_notice_name_count(notice); ++i) {
    if (strcmp(shredkv_notice_name(notice, i), name) == 0) return 1;
  }
  return 0;
}

static int test_rectification_and_feed(void) {
  SETUP(dir, store);
  char* err = NULL;
  shredkv_person_id_t ann, bob;
  shredkv_attrs_t* profile = shredkv_attrs_create();
  shredkv_attrs_set_string(profile, "city", "Bern", 4);
  shredkv_attrs_set_int64(profile, "age", 41);
  shredkv_identifier_t ann_email = ident("email", "ann@example.org");
  CHECK_OK(shredkv_create_person(store, &ann_email, 1, profile, &ann, &err), err);
  shredkv_attrs_destroy(profile);
  CHECK(new_person(store, "bob@example.org", &bob) == 0);
  CHECK(add_event(store, &ann, "purchase", kT0, 3) == 0);
  int64_t ts = 0;
  uint64_t seq = 0;
  CHECK(first_event(store, &ann, &ts, &seq) == 0);
  CHECK_EQ_INT(ts, kT0);

  /* A rectification whose identifier replacement is taken: nothing applies. */
  shredkv_attrs_t* set = shredkv_attrs_create();
  shredkv_attrs_set_string(set, "city", "Basel", 5);
  shredkv_rectification_t* r = shredkv_rectification_create();
  shredkv_rectification_set_profile(r, set);
  shredkv_identifier_t bob_email = ident("email", "bob@example.org");
  shredkv_rectification_replace_identifier(r, &ann_email, &bob_email);
  CHECK_CODE(shredkv_rectify(store, &ann, r, &err), SHREDKV_ALREADY_EXISTS, err);
  shredkv_rectification_destroy(r);
  shredkv_attrs_t* got = NULL;
  CHECK_OK(shredkv_get_profile(store, &ann, &got, &err), err);
  size_t len = 0;
  const char* city = shredkv_attrs_data(got, (size_t)shredkv_attrs_find(got, "city"), &len);
  CHECK(city != NULL && len == 4 && memcmp(city, "Bern", 4) == 0);
  shredkv_attrs_destroy(got);
  /* An unknown event (ts, seq): NOT_FOUND. */
  r = shredkv_rectification_create();
  shredkv_rectification_correct_event(r, ts, seq + 1000, set, NULL, 0);
  CHECK_CODE(shredkv_rectify(store, &ann, r, &err), SHREDKV_NOT_FOUND, err);
  shredkv_rectification_destroy(r);

  /* Drop whatever the feed holds so far (record and other notices). */
  shredkv_notice_list_t* list = NULL;
  CHECK_OK(shredkv_read_feed(store, 1000, &list, &err), err);
  if (shredkv_notice_list_count(list) > 0) {
    const shredkv_notice_t* last = shredkv_notice_list_at(list, shredkv_notice_list_count(list) - 1);
    CHECK_OK(shredkv_ack_feed(store, shredkv_notice_cursor(last), &err), err);
  }
  shredkv_notice_list_destroy(list);

  /* The real one: profile set (merged over two calls) and unset, identifier
   * replaced, event corrected (set and unset). */
  r = shredkv_rectification_create();
  shredkv_rectification_set_profile(r, set);
  shredkv_attrs_t* set2 = shredkv_attrs_create();
  shredkv_attrs_set_string(set2, "zip", "4000", 4);
  shredkv_rectification_set_profile(r, set2);
  shredkv_rectification_unset_profile(r, "age");
  shredkv_identifier_t new_email = ident("email", "ann@new.example.org");
  shredkv_rectification_replace_identifier(r, &ann_email, &new_email);
  shredkv_attrs_t* fix = shredkv_attrs_create();
  shredkv_attrs_set_int64(fix, "amount", 4);
  const char* drop[] = {"page"};
  shredkv_rectification_correct_event(r, ts, seq, fix, drop, 1);
  const int64_t before = now_ms();
  CHECK_OK(shredkv_rectify(store, &ann, r, &err), err);
  shredkv_rectification_destroy(r);
  shredkv_attrs_destroy(set);
  shredkv_attrs_destroy(set2);
  shredkv_attrs_destroy(fix);

  CHECK_OK(shredkv_get_profile(store, &ann, &got, &err), err);
  CHECK_EQ_INT(shredkv_attrs_count(got), 2); /* city, zip */
  CHECK_EQ_INT(shredkv_attrs_find(got, "age"), -1);
  city = shredkv_attrs_data(got, (size_t)shredkv_attrs_find(got, "city"), &len);
  CHECK(city != NULL && len == 5 && memcmp(city, "Basel", 5) == 0);
  CHECK(shredkv_attrs_find(got, "zip") >= 0);
  shredkv_attrs_destroy(got);
  shredkv_person_id_t who;
  CHECK_OK(shredkv_resolve(store, &new_email, &who, &err), err);
  CHECK(same_person(&who, &ann));
  CHECK_CODE(shredkv_resolve(store, &ann_email, &who, &err), SHREDKV_NOT_FOUND, err);
  shredkv_iterator_t* it = shredkv_scan_events(store, &ann, INT64_MIN, INT64_MAX);
  CHECK(shredkv_iter_valid(it));
  const shredkv_attrs_t* props = shredkv_event_properties(shredkv_iter_event(it));
  CHECK_EQ_INT(shredkv_attrs_count(props), 1);
  CHECK_STR(shredkv_attrs_name(props, 0), "amount");
  CHECK_EQ_INT(shredkv_attrs_int64(props, 0), 4);
  CHECK_EQ_INT(shredkv_event_seq(shredkv_iter_event(it)), seq);
  shredkv_iter_destroy(it);
  /* The declared analytics field carries the corrected value too. */
  it = shredkv_scan_analytics(store, INT64_MIN, INT64_MAX, "purchase");
  CHECK(shredkv_iter_valid(it));
  const shredkv_attrs_t* fields = shredkv_analytics_fields(shredkv_iter_analytics(it));
  CHECK_EQ_INT(shredkv_attrs_int64(fields, (size_t)shredkv_attrs_find(fields, "amount")), 4);
  shredkv_iter_destroy(it);

  /* The feed: one rectification notice naming what changed, never values. */
  CHECK_OK(shredkv_read_feed(store, 1000, &list, &err), err);
  CHECK_EQ_INT(shredkv_notice_list_count(list), 1);
  const shredkv_notice_t* notice = shredkv_notice_list_at(list, 0);
  CHECK(notice != NULL);
  CHECK_EQ_INT(shredkv_notice_kind(notice), SHREDKV_NOTICE_RECTIFICATION);
  CHECK_STR(shredkv_notice_kind_name(shredkv_notice_kind(notice)), "rectification");
  shredkv_notice_person(notice, &who);
  CHECK(same_person(&who, &ann));
  CHECK(shredkv_notice_time_ms(notice) >= before - 1000);
  CHECK(shredkv_notice_time_ms(notice) <= now_ms() + 1000);
  const uint64_t rect_cursor = shredkv_notice_cursor(notice);
  CHECK(rect_cursor > 0);
  CHECK_EQ_INT(shredkv_notice_name_count(notice), 6);
  CHECK(notice_has_name(notice, "profile.city"));
  CHECK(notice_has_name(notice, "profile.zip"));
  CHECK(notice_has_name(notice, "profile.age"));
  CHECK(notice_has_name(notice, "identifier.email"));
  CHECK(notice_has_name(notice, "event.amount"));
  CHECK(notice_has_name(notice, "event.page"));
  CHECK(shredkv_notice_name(notice, 6) == NULL);
  shredkv_notice_list_destroy(list);

  /* Record changes: a record notice naming "record.put" / "record.delete". */
  CHECK_OK(shredkv_put(store, &bob, "prefs", 5, "k", 1, "v", 1, &err), err);
  CHECK_OK(shredkv_delete(store, &bob, "prefs", 5, "k", 1, &err), err);
  CHECK_OK(shredkv_read_feed(store, 1000, &list, &err), err);
  CHECK_EQ_INT(shredkv_notice_list_count(list), 3);
  int saw_put = 0, saw_delete = 0;
  uint64_t prev = 0;
  for (size_t i = 0; i < shredkv_notice_list_count(list); ++i) {
    notice = shredkv_notice_list_at(list, i);
    CHECK(shredkv_notice_cursor(notice) > prev); /* oldest first */
    prev = shredkv_notice_cursor(notice);
    if (i == 0) { /* still the unacknowledged rectification */
      CHECK_EQ_INT(shredkv_notice_cursor(notice), rect_cursor);
      continue;
    }
    CHECK_EQ_INT(shredkv_notice_kind(notice), SHREDKV_NOTICE_RECORD_CHANGE);
    shredkv_notice_person(notice, &who);
    CHECK(same_person(&who, &bob));
    saw_put |= notice_has_name(notice, "record.put");
    saw_delete |= notice_has_name(notice, "record.delete");
  }
  CHECK(saw_put && saw_delete);
  shredkv_notice_list_destroy(list);
  /* max bounds the list; ack deletes up to a cursor. */
  CHECK_OK(shredkv_read_feed(store, 1, &list, &err), err);
  CHECK_EQ_INT(shredkv_notice_list_count(list), 1);
  CHECK_EQ_INT(shredkv_notice_cursor(shredkv_notice_list_at(list, 0)), rect_cursor);
  shredkv_notice_list_destroy(list);
  CHECK_OK(shredkv_ack_feed(store, rect_cursor, &err), err);
  CHECK_OK(shredkv_read_feed(store, 1000, &list, &err), err);
  CHECK_EQ_INT(shredkv_notice_list_count(list), 2);
  CHECK(shredkv_notice_cursor(shredkv_notice_list_at(list, 0)) > rect_cursor);
  const uint64_t last = shredkv_notice_cursor(shredkv_notice_list_at(list, 1));
  shredkv_notice_list_destroy(list);
  CHECK_OK(shredkv_ack_feed(store, last, &err), err);
  CHECK_OK(shredkv_read_feed(store, 1000, &list, &err), err);
  CHECK_EQ_INT(shredkv_notice_list_count(list), 0);
  shredkv_notice_list_destroy(list);
  TEARDOWN(dir, store);
  return 0;
}

/* ---- restriction, consent, leases ------------------------------------------------------------- */

/* Checks a restriction state against the expected flags and lists. */
static int check_restriction(const shredkv_restriction_t* r, int all, const char* purpose, const char* category) {
  CHECK_EQ_INT(shredkv_restriction_all(r), all);
  CHECK_EQ_INT(shredkv_restriction_purpose_count(r), purpose != NULL ? 1 : 0);
  if (purpose != NULL) CHECK_STR(shredkv_restriction_purpose(r, 0), purpose);
  CHECK(shredkv_restriction_purpose(r, 1) == NULL);
  CHECK_EQ_INT(shredkv_restriction_category_count(r), category != NULL ? 1 : 0);
  if (category != NULL) CHECK_STR(shredkv_restriction_category(r, 0), category);
  CHECK(shredkv_restriction_category(r, 1) == NULL);
  return 0;
}

static int restriction_is(shredkv_store_t* store, const shredkv_person_id_t* p, int all, const char* purpose,
                          const char* category, int64_t* updated_ms) {
  char* err = NULL;
  shredkv_restriction_t* r = NULL;
  CHECK_OK(shredkv_get_restriction(store, p, &r, &err), err);
  const int bad = check_restriction(r, all, purpose, category);
  if (updated_ms != NULL) *updated_ms = shredkv_restriction_updated_ms(r);
  shredkv_restriction_destroy(r);
  return bad;
}

static int test_restriction(void) {
  SETUP(dir, store);
  char* err = NULL;
  shredkv_person_id_t people[2], ghost;
  CHECK(new_person(store, "ann@example.org", &people[0]) == 0);
  CHECK(new_person(store, "bob@example.org", &people[1]) == 0);
  memset(&ghost, 0x66, sizeof ghost);
  int64_t updated = -1;
  CHECK(restriction_is(store, &people[0], 0, NULL, NULL, &updated) == 0);
  CHECK_EQ_INT(updated, 0); /* never restricted */

  /* Two people in one call: purposes and categories, with a reason. */
  const char* marketing[] = {"marketing"};
  const char* location[] = {"location"};
  CHECK_OK(shredkv_restrict(store, people, 2, 0, marketing, 1, location, 1, "ticket-1", &err), err);
  for (int i = 0; i < 2; ++i) {
    CHECK(restriction_is(store, &people[i], 0, "marketing", "location", &updated) == 0);
    CHECK(updated > 1600000000000LL);
  }
  /* all: added to what is there. */
  CHECK_OK(shredkv_restrict(store, &people[0], 1, 1, NULL, 0, NULL, 0, NULL, &err), err);
  CHECK(restriction_is(store, &people[0], 1, "marketing", "location", NULL) == 0);
  /* Unrestrict all lifts everything; a purpose lifts only that. */
  CHECK_OK(shredkv_unrestrict(store, &people[0], 1, 1, NULL, 0, NULL, 0, "resolved", &err), err);
  CHECK(restriction_is(store, &people[0], 0, NULL, NULL, NULL) == 0);
  CHECK_OK(shredkv_unrestrict(store, &people[1], 1, 0, marketing, 1, NULL, 0, NULL, &err), err);
  CHECK(restriction_is(store, &people[1], 0, NULL, "location", NULL) == 0);

  /* Errors change nothing: an unknown purpose or category, an empty spec, an
   * unknown person among others (all or nothing). */
  const char* nope[] = {"no_such_purpose"};
  CHECK_CODE(shredkv_restrict(store, people, 2, 0, nope, 1, NULL, 0, NULL, &err), SHREDKV_INVALID_ARGUMENT, err);
  CHECK_CODE(shredkv_restrict(store, people, 2, 0, NULL, 0, nope, 1, NULL, &err), SHREDKV_INVALID_ARGUMENT, err);
  CHECK_CODE(shredkv_restrict(store, people, 2, 0, NULL, 0, NULL, 0, NULL, &err), SHREDKV_INVALID_ARGUMENT, err);
  shredkv_person_id_t mixed[2] = {people[0], ghost};
  CHECK_CODE(shredkv_restrict(store, mixed, 2, 0, marketing, 1, NULL, 0, NULL, &err), SHREDKV_NOT_FOUND, err);
  CHECK(restriction_is(store, &people[0], 0, NULL, NULL, NULL) == 0);
  CHECK_CODE(shredkv_unrestrict(store, &ghost, 1, 1, NULL, 0, NULL, 0, NULL, &err), SHREDKV_NOT_FOUND, err);
  shredkv_restriction_t* r = NULL;
  CHECK_CODE(shredkv_get_restriction(store, &ghost, &r, &err), SHREDKV_NOT_FOUND, err);
  TEARDOWN(dir, store);
  return 0;
}

static int test_consent(void) {
  SETUP(dir, store);
  char* err = NULL;
  shredkv_person_id_t people[2];
  CHECK(new_person(store, "ann@example.org", &people[0]) == 0);
  CHECK(new_person(store, "bob@example.org", &people[1]) == 0);
  shredkv_consent_list_t* list = NULL;
  CHECK_OK(shredkv_get_consent(store, &people[0], &list, &err), err);
  CHECK_EQ_INT(shredkv_consent_list_count(list), 0); /* never decided: absent */
  shredkv_consent_list_destroy(list);

  const int64_t before = now_ms();
  CHECK_OK(shredkv_set_consent(store, people, 2, "marketing", 1, "web-banner", &err), err);
  CHECK_OK(shredkv_set_consent(store, &people[0], 1, "marketing", 0, NULL, &err), err);
  CHECK_OK(shredkv_set_consent(store, &people[0], 1, "personalization", 1, "app", &err), err);
  const char* support[] = {"support"};
  const char* payment[] = {"payment"};
  CHECK_OK(shredkv_restrict(store, &people[0], 1, 0, support, 1, payment, 1, "complaint 7", &err), err);
  CHECK_OK(shredkv_unrestrict(store, &people[0], 1, 0, support, 1, NULL, 0, NULL, &err), err);
  CHECK_CODE(shredkv_set_consent(store, people, 2, "no_such_purpose", 1, NULL, &err), SHREDKV_INVALID_ARGUMENT,
             err);

  /* Current decisions: one record a purpose, time 0. */
  CHECK_OK(shredkv_get_consent(store, &people[0], &list, &err), err);
  CHECK_EQ_INT(shredkv_consent_list_count(list), 2);
  int seen = 0;
  for (size_t i = 0; i < shredkv_consent_list_count(list); ++i) {
    const shredkv_consent_record_t* c = shredkv_consent_list_at(list, i);
    CHECK(c != NULL);
    CHECK_EQ_INT(shredkv_consent_time_ms(c), 0);
    if (strcmp(shredkv_consent_purpose(c), "marketing") == 0) {
      CHECK_EQ_INT(shredkv_consent_action(c), SHREDKV_CONSENT_WITHDRAW);
      seen |= 1;
    } else {
      CHECK_STR(shredkv_consent_purpose(c), "personalization");
      CHECK_EQ_INT(shredkv_consent_action(c), SHREDKV_CONSENT_GRANT);
      seen |= 2;
    }
  }
  CHECK_EQ_INT(seen, 3);
  shredkv_consent_list_destroy(list);
  CHECK_OK(shredkv_get_consent(store, &people[1], &list, &err), err);
  CHECK_EQ_INT(shredkv_consent_list_count(list), 1);
  CHECK_EQ_INT(shredkv_consent_action(shredkv_consent_list_at(list, 0)), SHREDKV_CONSENT_GRANT);
  shredkv_consent_list_destroy(list);

  /* The history, oldest first, with sources, reasons and restrictions. */
  CHECK_OK(shredkv_get_consent_history(store, &people[0], &list, &err), err);
  CHECK_EQ_INT(shredkv_consent_list_count(list), 5);
  const int actions[] = {SHREDKV_CONSENT_GRANT, SHREDKV_CONSENT_WITHDRAW, SHREDKV_CONSENT_GRANT,
                         SHREDKV_CONSENT_RESTRICT, SHREDKV_CONSENT_UNRESTRICT};
  const char* purposes[] = {"marketing", "marketing", "personalization", "", ""};
  const char* sources[] = {"web-banner", "", "app", "", ""};
  int64_t last = before - 1000;
  for (size_t i = 0; i < 5; ++i) {
    const shredkv_consent_record_t* c = shredkv_consent_list_at(list, i);
    CHECK_EQ_INT(shredkv_consent_action(c), actions[i]);
    CHECK_STR(shredkv_consent_purpose(c), purposes[i]);
    CHECK_STR(shredkv_consent_source(c), sources[i]);
    CHECK(shredkv_consent_time_ms(c) >= last);
    last = shredkv_consent_time_ms(c);
    if (i < 3) {
      CHECK_EQ_INT(shredkv_consent_restriction_all(c), 0);
      CHECK_EQ_INT(shredkv_consent_restriction_purpose_count(c), 0);
      CHECK_EQ_INT(shredkv_consent_restriction_category_count(c), 0);
    }
  }
  CHECK(last <= now_ms() + 1000);
  const shredkv_consent_record_t* c = shredkv_consent_list_at(list, 3);
  CHECK_EQ_INT(shredkv_consent_restriction_all(c), 0);
  CHECK_EQ_INT(shredkv_consent_restriction_purpose_count(c), 1);
  CHECK_STR(shredkv_consent_restriction_purpose(c, 0), "support");
  CHECK(shredkv_consent_restriction_purpose(c, 1) == NULL);
  CHECK_EQ_INT(shredkv_consent_restriction_category_count(c), 1);
  CHECK_STR(shredkv_consent_restriction_category(c, 0), "payment");
  CHECK(shredkv_consent_restriction_category(c, 1) == NULL);
  CHECK_STR(shredkv_consent_restriction_reason(c), "complaint 7");
  c = shredkv_consent_list_at(list, 4);
  CHECK_EQ_INT(shredkv_consent_restriction_purpose_count(c), 1);
  CHECK_STR(shredkv_consent_restriction_purpose(c, 0), "support");
  CHECK_EQ_INT(shredkv_consent_restriction_category_count(c), 0);
  CHECK_STR(shredkv_consent_restriction_reason(c), ""); /* none given */
  shredkv_consent_list_destroy(list);

  shredkv_person_id_t ghost;
  memset(&ghost, 0x77, sizeof ghost);
  CHECK_CODE(shredkv_get_consent(store, &ghost, &list, &err), SHREDKV_NOT_FOUND, err);
  CHECK_CODE(shredkv_get_consent_history(store, &ghost, &list, &err), SHREDKV_NOT_FOUND, err);
  shredkv_person_id_t mixed[2] = {people[1], ghost};
  CHECK_CODE(shredkv_set_consent(store, mixed, 2, "marketing", 0, NULL, &err), SHREDKV_NOT_FOUND, err);
  CHECK_OK(shredkv_get_consent(store, &people[1], &list, &err), err);
  CHECK_EQ_INT(shredkv_consent_action(shredkv_consent_list_at(list, 0)), SHREDKV_CONSENT_GRANT); /* unchanged */
  shredkv_consent_list_destroy(list);
  TEARDOWN(dir, store);
  return 0;
}

/* The people of a people_with_consent scan, as a bit set over `people`. */
static int consent_set(shredkv_store_t* store, const char* purpose, unsigned char granted,
                       const shredkv_person_id_t* people, size_t n, unsigned* bits) {
  char* err = NULL;
  *bits = 0;
  shredkv_iterator_t* it = shredkv_people_with_consent(store, purpose, granted);
  CHECK(it != NULL);
  for (; shredkv_iter_valid(it); shredkv_iter_next(it)) {
    CHECK(shredkv_iter_event(it) == NULL);
    CHECK(shredkv_iter_record(it) == NULL);
    CHECK(shredkv_iter_analytics(it) == NULL);
    CHECK(shredkv_iter_export_item(it) == NULL);
    shredkv_person_id_t who;
    memset(&who, 0, sizeof who);
    CHECK_EQ_INT(shredkv_iter_person(it, &who), 1);
    size_t i = 0;
    while (i < n && !same_person(&who, &people[i])) ++i;
    CHECK(i < n);
    CHECK((*bits & (1u << i)) == 0); /* each person once */
    *bits |= 1u << i;
  }
  CHECK_OK(shredkv_iter_status(it, &err), err);
  shredkv_iter_destroy(it);
  return 0;
}

static int test_people_with_consent(void) {
  SETUP(dir, store);
  char* err = NULL;
  shredkv_person_id_t p[4]; /* ann, bob, carol, dave (never decided) */
  CHECK(new_person(store, "ann@example.org", &p[0]) == 0);
  CHECK(new_person(store, "bob@example.org", &p[1]) == 0);
  CHECK(new_person(store, "carol@example.org", &p[2]) == 0);
  CHECK(new_person(store, "dave@example.org", &p[3]) == 0);
  CHECK_OK(shredkv_set_consent(store, p, 3, "marketing", 1, "form", &err), err);
  CHECK_OK(shredkv_set_consent(store, &p[1], 1, "marketing", 0, NULL, &err), err);
  CHECK_OK(shredkv_set_consent(store, &p[2], 1, "personalization", 0, NULL, &err), err);
  unsigned bits = 0;
  CHECK(consent_set(store, "marketing", 1, p, 4, &bits) == 0);
  CHECK_EQ_INT(bits, 0x5); /* ann, carol: the latest decision counts */
  CHECK(consent_set(store, "marketing", 0, p, 4, &bits) == 0);
  CHECK_EQ_INT(bits, 0x2); /* bob */
  CHECK(consent_set(store, "personalization", 0, p, 4, &bits) == 0);
  CHECK_EQ_INT(bits, 0x4);
  CHECK(consent_set(store, "personalization", 1, p, 4, &bits) == 0);
  CHECK_EQ_INT(bits, 0);
  CHECK(consent_set(store, "billing", 1, p, 4, &bits) == 0);
  CHECK_EQ_INT(bits, 0);
  /* An unregistered purpose: the scan ends with INVALID_ARGUMENT. */
  shredkv_iterator_t* it = shredkv_people_with_consent(store, "no_such_purpose", 1);
  CHECK(!shredkv_iter_valid(it));
  shredkv_person_id_t who = p[3];
  CHECK_EQ_INT(shredkv_iter_person(it, &who), 0);
  CHECK(same_person(&who, &p[3]));
  CHECK_CODE(shredkv_iter_status(it, &err), SHREDKV_INVALID_ARGUMENT, err);
  shredkv_iter_destroy(it);
  TEARDOWN(dir, store);
  return 0;
}

static int test_leases(void) {
  SETUP(dir, store);
  char* err = NULL;
  shredkv_person_id_t ann, ghost;
  shredkv_identifier_t email = ident("email", "ann@example.org");
  shredkv_attrs_t* profile = shredkv_attrs_create();
  shredkv_attrs_set_string(profile, "name", "Ann", 3);
  CHECK_OK(shredkv_create_person(store, &email, 1, profile, &ann, &err), err);
  shredkv_attrs_destroy(profile);
  memset(&ghost, 0x11, sizeof ghost);
  CHECK(add_event(store, &ann, "page_view", kT0, 1) == 0);
  CHECK(add_event(store, &ann, "page_view", kT0 + 1000, 2) == 0);
  CHECK_OK(shredkv_append_event(store, &ann, "checkin", kT0 + 500, NULL, NULL, 0, "location", &err), err);
  CHECK_OK(shredkv_put(store, &ann, "notes", 5, "n1", 2, "hello", 5, &err), err);
  CHECK_OK(shredkv_put(store, &ann, "notes", 5, "n2", 2, "world", 5, &err), err);
  shredkv_record_t* rec = shredkv_record_create("notes", 5, "n3", 2, "where", 5);
  shredkv_record_set_category(rec, "location");
  CHECK_OK(shredkv_put_record(store, &ann, rec, &err), err);
  shredkv_record_destroy(rec);
  rec = shredkv_record_create("notes", 5, "n4", 2, "invoice", 7);
  shredkv_record_add_purpose(rec, "billing");
  CHECK_OK(shredkv_put_record(store, &ann, rec, &err), err);
  shredkv_record_destroy(rec);

  /* marketing's basis is consent: RESTRICTED until granted. */
  shredkv_lease_t* lease = NULL;
  CHECK_CODE(shredkv_acquire_lease(store, &ann, "marketing", &lease, &err), SHREDKV_RESTRICTED, err);
  CHECK_CODE(shredkv_acquire_lease(store, &ann, "no_such_purpose", &lease, &err), SHREDKV_INVALID_ARGUMENT, err);
  CHECK_CODE(shredkv_acquire_lease(store, &ghost, "support", &lease, &err), SHREDKV_NOT_FOUND, err);
  CHECK_OK(shredkv_set_consent(store, &ann, 1, "marketing", 1, "form", &err), err);
  CHECK_OK(shredkv_acquire_lease(store, &ann, "marketing", &lease, &err), err);
  shredkv_person_id_t who;
  memset(&who, 0, sizeof who);
  shredkv_lease_person(lease, &who);
  CHECK(same_person(&who, &ann));
  CHECK_STR(shredkv_lease_purpose(lease), "marketing");
  shredkv_attrs_t* got = NULL;
  CHECK_OK(shredkv_lease_get_profile(lease, &got, &err), err);
  CHECK_EQ_INT(shredkv_attrs_count(got), 1);
  CHECK_STR(shredkv_attrs_name(got, 0), "name");
  shredkv_attrs_destroy(got);
  size_t n = 0;
  shredkv_iterator_t* it = shredkv_lease_scan_events(lease, INT64_MIN, INT64_MAX);
  CHECK(shredkv_iter_valid(it));
  CHECK(shredkv_iter_event(it) != NULL);
  CHECK(drain_count(it, &n) == 0);
  shredkv_iter_destroy(it);
  CHECK_EQ_INT(n, 3);
  it = shredkv_lease_scan_events(lease, kT0 + 1, INT64_MAX);
  CHECK(drain_count(it, &n) == 0);
  shredkv_iter_destroy(it);
  CHECK_EQ_INT(n, 2);
  char* value = NULL;
  size_t value_len = 0;
  CHECK_OK(shredkv_lease_get(lease, "notes", 5, "n1", 2, &value, &value_len, &err), err);
  CHECK(check_bytes(value, &value_len, "hello", 5) == 0);
  shredkv_free(value);
  CHECK_CODE(shredkv_lease_get(lease, "notes", 5, "zz", 2, &value, &value_len, &err), SHREDKV_NOT_FOUND, err);
  /* A record collected for billing only: not for marketing. */
  CHECK_CODE(shredkv_lease_get(lease, "notes", 5, "n4", 2, &value, &value_len, &err), SHREDKV_RESTRICTED, err);
  it = shredkv_lease_scan_records(lease, "notes", 5, NULL, 0);
  CHECK(drain_count(it, &n) == 0);
  shredkv_iter_destroy(it);
  CHECK_EQ_INT(n, 3); /* n1, n2, n3 */
  it = shredkv_lease_scan_records(lease, "notes", 5, "n2", 2);
  CHECK(shredkv_iter_valid(it));
  size_t len = 0;
  CHECK(check_bytes(shredkv_record_value(shredkv_iter_record(it), &len), &len, "world", 5) == 0);
  CHECK(drain_count(it, &n) == 0);
  shredkv_iter_destroy(it);
  CHECK_EQ_INT(n, 1); /* only n2 has the prefix */
  shredkv_lease_release(lease);

  /* billing may read its record. */
  CHECK_OK(shredkv_acquire_lease(store, &ann, "billing", &lease, &err), err);
  CHECK_OK(shredkv_lease_get(lease, "notes", 5, "n4", 2, &value, &value_len, &err), err);
  CHECK(check_bytes(value, &value_len, "invoice", 7) == 0);
  shredkv_free(value);
  shredkv_lease_release(lease);

  /* A restricted purpose: RESTRICTED; a restricted category: left out. */
  const char* support[] = {"support"};
  const char* location[] = {"location"};
  CHECK_OK(shredkv_restrict(store, &ann, 1, 0, support, 1, location, 1, "objection", &err), err);
  CHECK_CODE(shredkv_acquire_lease(store, &ann, "support", &lease, &err), SHREDKV_RESTRICTED, err);
  CHECK_OK(shredkv_acquire_lease(store, &ann, "analytics", &lease, &err), err);
  CHECK_STR(shredkv_lease_purpose(lease), "analytics");
  it = shredkv_lease_scan_events(lease, INT64_MIN, INT64_MAX);
  for (n = 0; shredkv_iter_valid(it); shredkv_iter_next(it), ++n) {
    CHECK_STR(shredkv_event_name(shredkv_iter_event(it)), "page_view");
  }
  CHECK_OK(shredkv_iter_status(it, &err), err);
  shredkv_iter_destroy(it);
  CHECK_EQ_INT(n, 2); /* the location event is withheld */
  CHECK_CODE(shredkv_lease_get(lease, "notes", 5, "n3", 2, &value, &value_len, &err), SHREDKV_RESTRICTED, err);
  it = shredkv_lease_scan_records(lease, "notes", 5, NULL, 0);
  CHECK(drain_count(it, &n) == 0);
  shredkv_iter_destroy(it);
  CHECK_EQ_INT(n, 2); /* n1, n2: n3 (location) and n4 (billing) left out */
  shredkv_lease_release(lease);
  /* Restricting everything: no lease at all. */
  CHECK_OK(shredkv_restrict(store, &ann, 1, 1, NULL, 0, NULL, 0, NULL, &err), err);
  CHECK_CODE(shredkv_acquire_lease(store, &ann, "billing", &lease, &err), SHREDKV_RESTRICTED, err);
  TEARDOWN(dir, store);
  return 0;
}

/* ---- write batches -------------------------------------------------------------------------------- */

static int event_count(shredkv_store_t* store, const shredkv_person_id_t* p, size_t* n) {
  shredkv_iterator_t* it = shredkv_scan_events(store, p, INT64_MIN, INT64_MAX);
  const int bad = drain_count(it, n);
  shredkv_iter_destroy(it);
  return bad;
}

static int test_writebatch(void) {
  SETUP(dir, store);
  char* err = NULL;
  shredkv_person_id_t bob;
  CHECK(new_person(store, "bob@example.org", &bob) == 0);
  shredkv_writebatch_t* b = shredkv_writebatch_create();
  CHECK(b != NULL);
  CHECK_EQ_INT(shredkv_writebatch_count(b), 0);

  /* A new person, usable by the batch's later operations. */
  shredkv_identifier_t ann_ids[1] = {ident("email", "ann@example.org")};
  shredkv_attrs_t* profile = shredkv_attrs_create();
  shredkv_attrs_set_string(profile, "city", "Bern", 4);
  shredkv_attrs_set_int64(profile, "age", 41);
  shredkv_person_id_t ann;
  memset(&ann, 0, sizeof ann);
  shredkv_writebatch_create_person(b, ann_ids, 1, profile, &ann);
  CHECK(!is_zero16(ann.bytes));
  shredkv_identifier_t ann_phone = ident("phone", "+41791234567");
  shredkv_identifier_t ann_cust = ident("customer_id", "c-1");
  shredkv_writebatch_link_identifier(b, &ann, &ann_phone);
  shredkv_writebatch_link_identifier(b, &ann, &ann_cust);
  shredkv_writebatch_unlink_identifier(b, &ann, &ann_cust);
  shredkv_attrs_clear(profile);
  shredkv_attrs_set_string(profile, "zip", "3000", 4);
  const char* unset[] = {"age"};
  shredkv_writebatch_patch_profile(b, &ann, profile, unset, 1);
  shredkv_attrs_t* props = shredkv_attrs_create();
  shredkv_attrs_set_int64(props, "amount", 9);
  const char* fields[] = {"amount"};
  shredkv_writebatch_append_event(b, &ann, "purchase", kT0, props, fields, 1, NULL);
  shredkv_writebatch_append_event(b, &bob, "page_view", kT0 + 1, NULL, NULL, 0, "behaviour");
  shredkv_writebatch_put(b, &ann, "notes", 5, "a", 1, "one", 3, NULL);
  shredkv_writebatch_put(b, &ann, "notes", 5, "b", 1, "two", 3, "contact");
  shredkv_writebatch_delete(b, &ann, "notes", 5, "a", 1);
  shredkv_record_t* rec = shredkv_record_create("orders", 6, "o1", 2, "x", 1);
  shredkv_record_add_shared_with(rec, "acme");
  shredkv_writebatch_put_record(b, &ann, rec);
  shredkv_record_destroy(rec); /* arguments are copied when queued */
  shredkv_writebatch_record_consent(b, &ann, SHREDKV_CONSENT_GRANT, "marketing", 0, NULL, 0, NULL, 0, NULL, 0,
                                    "batch");
  const char* location[] = {"location"};
  shredkv_writebatch_record_consent(b, &bob, SHREDKV_CONSENT_RESTRICT, NULL, 0, NULL, 0, location, 1, "asked",
                                    kT0, NULL);
  CHECK_EQ_INT(shredkv_writebatch_count(b), 13);
  CHECK_OK(shredkv_write(store, b, &err), err);
  shredkv_attrs_destroy(props);

  shredkv_person_id_t who;
  CHECK_OK(shredkv_resolve(store, &ann_ids[0], &who, &err), err);
  CHECK(same_person(&who, &ann));
  CHECK_OK(shredkv_resolve(store, &ann_phone, &who, &err), err);
  CHECK(same_person(&who, &ann));
  CHECK_CODE(shredkv_resolve(store, &ann_cust, &who, &err), SHREDKV_NOT_FOUND, err);
  shredkv_attrs_t* got = NULL;
  CHECK_OK(shredkv_get_profile(store, &ann, &got, &err), err);
  CHECK_EQ_INT(shredkv_attrs_count(got), 2);
  CHECK_STR(shredkv_attrs_name(got, 0), "city");
  CHECK_STR(shredkv_attrs_name(got, 1), "zip");
  shredkv_attrs_destroy(got);
  size_t n = 0;
  CHECK(event_count(store, &ann, &n) == 0);
  CHECK_EQ_INT(n, 1);
  CHECK(event_count(store, &bob, &n) == 0);
  CHECK_EQ_INT(n, 1);
  char* value = NULL;
  size_t value_len = 0;
  CHECK_CODE(shredkv_get(store, &ann, "notes", 5, "a", 1, &value, &value_len, &err), SHREDKV_NOT_FOUND, err);
  shredkv_record_t* r = NULL;
  CHECK_OK(shredkv_get_record(store, &ann, "notes", 5, "b", 1, &r, &err), err);
  CHECK_STR(shredkv_record_category(r), "contact");
  shredkv_record_destroy(r);
  CHECK_OK(shredkv_get_record(store, &ann, "orders", 6, "o1", 2, &r, &err), err);
  CHECK_EQ_INT(shredkv_record_shared_with_count(r), 1);
  CHECK_STR(shredkv_record_shared_with(r, 0), "acme");
  shredkv_record_destroy(r);
  shredkv_consent_list_t* consent = NULL;
  CHECK_OK(shredkv_get_consent(store, &ann, &consent, &err), err);
  CHECK_EQ_INT(shredkv_consent_list_count(consent), 1);
  CHECK_STR(shredkv_consent_purpose(shredkv_consent_list_at(consent, 0)), "marketing");
  CHECK_EQ_INT(shredkv_consent_action(shredkv_consent_list_at(consent, 0)), SHREDKV_CONSENT_GRANT);
  shredkv_consent_list_destroy(consent);
  CHECK_OK(shredkv_get_consent_history(store, &bob, &consent, &err), err);
  CHECK_EQ_INT(shredkv_consent_list_count(consent), 1);
  const shredkv_consent_record_t* c = shredkv_consent_list_at(consent, 0);
  CHECK_EQ_INT(shredkv_consent_action(c), SHREDKV_CONSENT_RESTRICT);
  CHECK_EQ_INT(shredkv_consent_time_ms(c), kT0);
  CHECK_STR(shredkv_consent_restriction_reason(c), "asked");
  shredkv_consent_list_destroy(consent);
  CHECK(restriction_is(store, &bob, 0, NULL, "location", NULL) == 0);

  /* clear empties the batch; a rectification and an import, second batch. */
  shredkv_writebatch_clear(b);
  CHECK_EQ_INT(shredkv_writebatch_count(b), 0);
  shredkv_rectification_t* rect = shredkv_rectification_create();
  shredkv_attrs_clear(profile);
  shredkv_attrs_set_string(profile, "city", "Thun", 4);
  shredkv_rectification_set_profile(rect, profile);
  shredkv_writebatch_rectify(b, &ann, rect);
  shredkv_rectification_destroy(rect);
  shredkv_identifier_t carol_id = ident("email", "carol@example.org");
  shredkv_person_id_t carol;
  shredkv_writebatch_import_person(b, &carol_id, 1, NULL, kT0, &carol);
  shredkv_writebatch_import_event(b, &carol, "purchase", kT0 + 10, NULL, NULL, 0, NULL);
  CHECK_EQ_INT(shredkv_writebatch_count(b), 3);
  CHECK_OK(shredkv_write(store, b, &err), err);
  shredkv_attrs_destroy(profile);
  CHECK_OK(shredkv_get_profile(store, &ann, &got, &err), err);
  size_t len = 0;
  const char* city = shredkv_attrs_data(got, (size_t)shredkv_attrs_find(got, "city"), &len);
  CHECK(city != NULL && len == 4 && memcmp(city, "Thun", 4) == 0);
  shredkv_attrs_destroy(got);
  shredkv_person_info_t* info = NULL;
  CHECK_OK(shredkv_get_person(store, &carol, &info, &err), err);
  CHECK_EQ_INT(shredkv_person_info_created_ms(info), kT0); /* the exported creation time */
  shredkv_person_info_destroy(info);
  CHECK(event_count(store, &carol, &n) == 0);
  CHECK_EQ_INT(n, 1);
  /* The rectification and the import wrote their notices. */
  shredkv_notice_list_t* feed = NULL;
  CHECK_OK(shredkv_read_feed(store, 1000, &feed, &err), err);
  int saw_rect = 0, saw_import = 0;
  for (size_t i = 0; i < shredkv_notice_list_count(feed); ++i) {
    const shredkv_notice_t* notice = shredkv_notice_list_at(feed, i);
    shredkv_notice_person(notice, &who);
    if (shredkv_notice_kind(notice) == SHREDKV_NOTICE_RECTIFICATION && same_person(&who, &ann)) {
      saw_rect = notice_has_name(notice, "profile.city");
    }
    if (shredkv_notice_kind(notice) == SHREDKV_NOTICE_IMPORT && same_person(&who, &carol)) saw_import = 1;
  }
  shredkv_notice_list_destroy(feed);
  CHECK(saw_rect && saw_import);
  shredkv_writebatch_destroy(b);
  TEARDOWN(dir, store);
  return 0;
}

static int test_writebatch_events_json(void) {
  SETUP(dir, store);
  char* err = NULL;
  shredkv_person_id_t ann, bob;
  CHECK(new_person(store, "ann@example.org", &ann) == 0);
  CHECK(new_person(store, "bob@example.org", &bob) == 0);
  char ann_hex[33], bob_hex[33];
  shredkv_person_id_to_hex(&ann, ann_hex);
  shredkv_person_id_to_hex(&bob, bob_hex);
  shredkv_writebatch_t* b = shredkv_writebatch_create();
  shredkv_writebatch_append_event(b, &ann, "first", kT0 - 1, NULL, NULL, 0, NULL); /* one queued before */

  char json[1024];
  snprintf(json, sizeof json,
           "[{\"person\": \"%s\", \"name\": \"purchase\", \"ts\": %" PRId64 ","
           " \"properties\": {\"s\": \"x\", \"i\": -7, \"d\": 2.5, \"b\": true,"
           " \"t\": {\"timestamp\": 1234}, \"raw\": {\"bytes\": \"AAH/\"}},"
           " \"analytics_fields\": [\"i\"], \"category\": \"payment\"},"
           " {\"person\": \"%s\", \"name\": \"login\", \"ts\": %" PRId64 "},"
           " {\"person\": \"%s\", \"name\": \"old\", \"ts\": 1000, \"imported\": true}]",
           ann_hex, kT0, bob_hex, kT0 + 1, bob_hex);
  CHECK_OK(shredkv_writebatch_append_events_json(b, json, strlen(json), &err), err);
  CHECK_EQ_INT(shredkv_writebatch_count(b), 4);

  /* All or nothing: a bad event anywhere queues none of them. */
  char bad[6][512];
  snprintf(bad[0], sizeof bad[0], "[{\"person\": \"%s\", \"name\": \"x\", \"ts\": 1},", ann_hex); /* cut short */
  snprintf(bad[1], sizeof bad[1], "{\"person\": \"%s\", \"name\": \"x\", \"ts\": 1}", ann_hex); /* not an array */
  snprintf(bad[2], sizeof bad[2],
           "[{\"person\": \"%s\", \"name\": \"x\", \"ts\": 1},"
           " {\"person\": \"%s\", \"name\": \"y\", \"ts\": 2, \"bogus_field\": 1}]",
           ann_hex, ann_hex);
  snprintf(bad[3], sizeof bad[3], "[{\"person\": \"%.31s\", \"name\": \"x\", \"ts\": 1}]", ann_hex);
  snprintf(bad[4], sizeof bad[4], "[{\"person\": \"%s\", \"name\": \"x\"}]", ann_hex); /* no ts */
  snprintf(bad[5], sizeof bad[5], "[{\"person\": \"%s\", \"name\": \"x\", \"ts\": 1.5}]", ann_hex);
  for (int i = 0; i < 6; ++i) {
    CHECK_EQ_INT(shredkv_writebatch_append_events_json(b, bad[i], strlen(bad[i]), &err), SHREDKV_INVALID_ARGUMENT);
    CHECK(err != NULL);
    if (i == 2) {
      /* The message names the first malformed event and its field. */
      CHECK(strstr(err, "events[1]") != NULL);
      CHECK(strstr(err, "bogus_field") != NULL);
    }
    shredkv_free(err);
    err = NULL;
    CHECK_EQ_INT(shredkv_writebatch_count(b), 4);
  }
  /* Outside audit 37b, F5: names echoed in messages are quoted and cut: an
     escaped NUL cut the C string short, a 1 MiB field made a 1 MiB message. */
  {
    const char* dup = "[{\"name\": \"x\", \"x\\u0000y\": 1, \"x\\u0000y\": 2}]";
    CHECK_EQ_INT(shredkv_writebatch_append_events_json(b, dup, strlen(dup), &err), SHREDKV_INVALID_ARGUMENT);
    CHECK(err != NULL && strstr(err, "x\\u0000y") != NULL);
    shredkv_free(err);
    err = NULL;
    const size_t big = (size_t)1 << 20;
    char* huge = malloc(big + 256);
    CHECK(huge != NULL);
    int at = snprintf(huge, 256, "[{\"person\": \"%s\", \"name\": \"x\", \"ts\": 1, \"", ann_hex);
    memset(huge + at, 'f', big);
    strcpy(huge + at + big, "\": 1}]");
    CHECK_EQ_INT(shredkv_writebatch_append_events_json(b, huge, strlen(huge), &err), SHREDKV_INVALID_ARGUMENT);
    CHECK(err != NULL && strlen(err) < 1024 && strstr(err, "unknown field") != NULL);
    shredkv_free(err);
    err = NULL;
    free(huge);
    CHECK_EQ_INT(shredkv_writebatch_count(b), 4);
  }
  /* Outside audit 37b, F2: a NUL byte inside `len` ended the input, and the
     events after it were dropped with 0 returned. */
  {
    char joined[1100];
    const int first = snprintf(joined, sizeof joined, "[{\"person\": \"%s\", \"name\": \"x\", \"ts\": 1}]", ann_hex);
    joined[first] = '\0';
    const int second =
        snprintf(joined + first + 1, sizeof joined - (size_t)first - 1,
                 "[{\"person\": \"%s\", \"name\": \"y\", \"ts\": 2}]", ann_hex);
    CHECK_EQ_INT(shredkv_writebatch_append_events_json(b, joined, (size_t)first + 1 + (size_t)second, &err),
                 SHREDKV_INVALID_ARGUMENT);
    CHECK(err != NULL && strstr(err, "NUL") != NULL);
    shredkv_free(err);
    err = NULL;
    CHECK_EQ_INT(shredkv_writebatch_count(b), 4);
  }
  CHECK_OK(shredkv_write(store, b, &err), err);

  /* The events arrived with their typed properties. */
  shredkv_iterator_t* it = shredkv_scan_events(store, &ann, kT0, kT0 + 1);
  CHECK(shredkv_iter_valid(it));
  const shredkv_event_t* e = shredkv_iter_event(it);
  CHECK_STR(shredkv_event_name(e), "purchase");
  CHECK_STR(shredkv_event_category(e), "payment");
  const shredkv_attrs_t* p = shredkv_event_properties(e);
  CHECK_EQ_INT(shredkv_attrs_count(p), 6); /* b d i raw s t */
  CHECK_EQ_INT(shredkv_attrs_type(p, 0), SHREDKV_VALUE_BOOL);
  CHECK_EQ_INT(shredkv_attrs_int64(p, 0), 1);
  CHECK_EQ_INT(shredkv_attrs_type(p, 1), SHREDKV_VALUE_DOUBLE);
  CHECK(shredkv_attrs_double(p, 1) == 2.5);
  CHECK_EQ_INT(shredkv_attrs_type(p, 2), SHREDKV_VALUE_INT64);
  CHECK_EQ_INT(shredkv_attrs_int64(p, 2), -7);
  CHECK_EQ_INT(shredkv_attrs_type(p, 3), SHREDKV_VALUE_BYTES);
  size_t len = 0;
  CHECK(check_bytes(shredkv_attrs_data(p, 3, &len), &len, "\x00\x01\xff", 3) == 0);
  CHECK_EQ_INT(shredkv_attrs_type(p, 4), SHREDKV_VALUE_STRING);
  CHECK(check_bytes(shredkv_attrs_data(p, 4, &len), &len, "x", 1) == 0);
  CHECK_EQ_INT(shredkv_attrs_type(p, 5), SHREDKV_VALUE_TIMESTAMP);
  CHECK_EQ_INT(shredkv_attrs_int64(p, 5), 1234);
  shredkv_iter_destroy(it);
  size_t n = 0;
  CHECK(event_count(store, &ann, &n) == 0);
  CHECK_EQ_INT(n, 2);
  CHECK(event_count(store, &bob, &n) == 0);
  CHECK_EQ_INT(n, 2);
  /* analytics_fields: the row of the purchase carries "i" only. */
  it = shredkv_scan_analytics(store, INT64_MIN, INT64_MAX, "purchase");
  CHECK(shredkv_iter_valid(it));
  const shredkv_attrs_t* f = shredkv_analytics_fields(shredkv_iter_analytics(it));
  CHECK_EQ_INT(shredkv_attrs_count(f), 1);
  CHECK_STR(shredkv_attrs_name(f, 0), "i");
  shredkv_iter_destroy(it);

  /* imported: true is history, not tracking: a person restricted for
   * everything still gets it, while a new event is refused. */
  CHECK_OK(shredkv_restrict(store, &bob, 1, 1, NULL, 0, NULL, 0, NULL, &err), err);
  shredkv_writebatch_clear(b);
  snprintf(json, sizeof json, "[{\"person\": \"%s\", \"name\": \"tracked\", \"ts\": 5}]", bob_hex);
  CHECK_OK(shredkv_writebatch_append_events_json(b, json, strlen(json), &err), err);
  CHECK_CODE(shredkv_write(store, b, &err), SHREDKV_RESTRICTED, err);
  shredkv_writebatch_clear(b);
  snprintf(json, sizeof json, "[{\"person\": \"%s\", \"name\": \"history\", \"ts\": 5, \"imported\": true}]",
           bob_hex);
  CHECK_OK(shredkv_writebatch_append_events_json(b, json, strlen(json), &err), err);
  CHECK_OK(shredkv_write(store, b, &err), err);
  CHECK(event_count(store, &bob, &n) == 0);
  CHECK_EQ_INT(n, 3);
  /* An empty array queues nothing and is fine. */
  shredkv_writebatch_clear(b);
  CHECK_OK(shredkv_writebatch_append_events_json(b, "[]", 2, &err), err);
  CHECK_EQ_INT(shredkv_writebatch_count(b), 0);
  shredkv_writebatch_destroy(b);
  TEARDOWN(dir, store);
  return 0;
}

static int test_write_atomic(void) {
  SETUP(dir, store);
  char* err = NULL;
  shredkv_person_id_t ann, bob;
  CHECK(new_person(store, "ann@example.org", &ann) == 0);
  CHECK(new_person(store, "bob@example.org", &bob) == 0);
  shredkv_writebatch_t* b = shredkv_writebatch_create();
  shredkv_identifier_t dave_id = ident("email", "dave@example.org");
  shredkv_person_id_t dave;
  shredkv_writebatch_create_person(b, &dave_id, 1, NULL, &dave);
  shredkv_writebatch_append_event(b, &dave, "signup", kT0, NULL, NULL, 0, NULL);
  shredkv_writebatch_put(b, &bob, "notes", 5, "k", 1, "v", 1, NULL);
  shredkv_writebatch_append_event(b, &bob, "page_view", kT0, NULL, NULL, 0, NULL);
  shredkv_identifier_t anns = ident("email", "ann@example.org");
  shredkv_writebatch_link_identifier(b, &bob, &anns); /* taken: fails the batch */
  CHECK_EQ_INT(shredkv_writebatch_count(b), 5);
  CHECK_EQ_INT(shredkv_write(store, b, &err), SHREDKV_ALREADY_EXISTS);
  CHECK(err != NULL && strncmp(err, "AlreadyExists", 13) == 0);
  shredkv_free(err);
  err = NULL;
  /* Nothing of it was committed. */
  shredkv_person_id_t who;
  CHECK_CODE(shredkv_resolve(store, &dave_id, &who, &err), SHREDKV_NOT_FOUND, err);
  shredkv_person_info_t* info = NULL;
  CHECK_CODE(shredkv_get_person(store, &dave, &info, &err), SHREDKV_NOT_FOUND, err);
  char* value = NULL;
  size_t value_len = 0;
  CHECK_CODE(shredkv_get(store, &bob, "notes", 5, "k", 1, &value, &value_len, &err), SHREDKV_NOT_FOUND, err);
  size_t n = 1;
  CHECK(event_count(store, &bob, &n) == 0);
  CHECK_EQ_INT(n, 0);
  CHECK_OK(shredkv_resolve(store, &anns, &who, &err), err);
  CHECK(same_person(&who, &ann));
  CHECK_EQ_INT(shredkv_writebatch_count(b), 5); /* the batch itself is kept */

  /* A creation under a taken identifier fails the same way. */
  shredkv_writebatch_clear(b);
  shredkv_person_id_t eve;
  shredkv_writebatch_put(b, &ann, "notes", 5, "k", 1, "v", 1, NULL);
  shredkv_writebatch_create_person(b, &anns, 1, NULL, &eve);
  CHECK_CODE(shredkv_write(store, b, &err), SHREDKV_ALREADY_EXISTS, err);
  CHECK_CODE(shredkv_get(store, &ann, "notes", 5, "k", 1, &value, &value_len, &err), SHREDKV_NOT_FOUND, err);
  CHECK_CODE(shredkv_get_person(store, &eve, &info, &err), SHREDKV_NOT_FOUND, err);
  /* A consent action outside the enum fails the whole batch at write
   * (INVALID_ARGUMENT); clear forgets it. */
  shredkv_writebatch_clear(b);
  shredkv_writebatch_put(b, &ann, "notes", 5, "k", 1, "v", 1, NULL);
  shredkv_writebatch_record_consent(b, &ann, 5, "marketing", 0, NULL, 0, NULL, 0, NULL, 0, NULL);
  CHECK_CODE(shredkv_write(store, b, &err), SHREDKV_INVALID_ARGUMENT, err);
  CHECK_CODE(shredkv_get(store, &ann, "notes", 5, "k", 1, &value, &value_len, &err), SHREDKV_NOT_FOUND, err);
  shredkv_consent_list_t* history = NULL;
  CHECK_OK(shredkv_get_consent_history(store, &ann, &history, &err), err);
  CHECK_EQ_INT(shredkv_consent_list_count(history), 0);
  shredkv_consent_list_destroy(history);
  /* An empty batch commits (nothing), also after a cleared invalid one. */
  shredkv_writebatch_clear(b);
  CHECK_EQ_INT(shredkv_writebatch_count(b), 0);
  CHECK_OK(shredkv_write(store, b, &err), err);
  shredkv_writebatch_destroy(b);
  TEARDOWN(dir, store);
  return 0;
}

/* ---- export and import ------------------------------------------------------------------------- */

/* A person with something of every kind an export holds: two identifiers, a
 * profile, a restriction, consent, two events (with analytics rows), two
 * records and feed notices. */
static int rich_person(shredkv_store_t* store, shredkv_person_id_t* out) {
  char* err = NULL;
  shredkv_identifier_t ids[2] = {ident("email", "ann@example.org"), ident("customer_id", "c-9")};
  shredkv_attrs_t* profile = shredkv_attrs_create();
  shredkv_attrs_set_string(profile, "city", "Bern", 4);
  const int rc = shredkv_create_person(store, ids, 2, profile, out, &err);
  shredkv_attrs_destroy(profile);
  CHECK_OK(rc, err);
  CHECK(add_event(store, out, "page_view", kT0, 1) == 0);
  CHECK(add_event(store, out, "purchase", kT0 + 1000, 2) == 0);
  CHECK_OK(shredkv_put(store, out, "notes", 5, "n1", 2, "hello", 5, &err), err);
  shredkv_record_t* rec = shredkv_record_create("orders", 6, "o1", 2, "\0bin", 4);
  shredkv_record_add_purpose(rec, "billing");
  shredkv_record_set_origin(rec, "shop", 4);
  const int rc2 = shredkv_put_record(store, out, rec, &err);
  shredkv_record_destroy(rec);
  CHECK_OK(rc2, err);
  CHECK_OK(shredkv_set_consent(store, out, 1, "personalization", 1, "app", &err), err);
  const char* marketing[] = {"marketing"};
  CHECK_OK(shredkv_restrict(store, out, 1, 0, marketing, 1, NULL, 0, "objection", &err), err);
  return 0;
}

/* Every export-item accessor but the one of the item's kind returns NULL. */
static int only_kind(const shredkv_export_item_t* item, int kind) {
  const char* v = NULL;
  size_t vlen = 0;
  CHECK_EQ_INT(shredkv_export_item_person(item) != NULL, kind == SHREDKV_ITEM_PERSON);
  CHECK_EQ_INT(shredkv_export_item_identifier(item, &v, &vlen) != NULL, kind == SHREDKV_ITEM_IDENTIFIER);
  CHECK_EQ_INT(shredkv_export_item_profile(item) != NULL, kind == SHREDKV_ITEM_PROFILE);
  CHECK_EQ_INT(shredkv_export_item_restriction(item) != NULL, kind == SHREDKV_ITEM_RESTRICTION);
  CHECK_EQ_INT(shredkv_export_item_consent(item) != NULL, kind == SHREDKV_ITEM_CONSENT);
  CHECK_EQ_INT(shredkv_export_item_event(item) != NULL, kind == SHREDKV_ITEM_EVENT);
  CHECK_EQ_INT(shredkv_export_item_record(item) != NULL, kind == SHREDKV_ITEM_RECORD);
  CHECK_EQ_INT(shredkv_export_item_analytics(item) != NULL, kind == SHREDKV_ITEM_ANALYTICS);
  CHECK_EQ_INT(shredkv_export_item_notice(item) != NULL, kind == SHREDKV_ITEM_NOTICE);
  return 0;
}

static int test_export_items(void) {
  SETUP(dir, store);
  char* err = NULL;
  shredkv_person_id_t ann, bob;
  CHECK(rich_person(store, &ann) == 0);
  CHECK(new_person(store, "bob@example.org", &bob) == 0);
  CHECK(add_event(store, &bob, "page_view", kT0, 7) == 0); /* not Ann's: not exported */
  uint8_t anon[16];
  CHECK(anon_of(store, &ann, anon) == 0);

  shredkv_iterator_t* it = shredkv_export(store, &ann);
  CHECK(it != NULL);
  size_t count[9] = {0};
  int last_kind = -1, saw_grant = 0, saw_restrict = 0;
  for (; shredkv_iter_valid(it); shredkv_iter_next(it)) {
    const shredkv_export_item_t* item = shredkv_iter_export_item(it);
    CHECK(item != NULL);
    CHECK(shredkv_iter_event(it) == NULL);
    CHECK(shredkv_iter_record(it) == NULL);
    CHECK(shredkv_iter_analytics(it) == NULL);
    shredkv_person_id_t who;
    CHECK_EQ_INT(shredkv_iter_person(it, &who), 0);
    const int kind = shredkv_export_item_kind(item);
    CHECK(kind >= SHREDKV_ITEM_PERSON && kind <= SHREDKV_ITEM_NOTICE);
    CHECK(kind >= last_kind); /* person, identifiers, profile, ..., notices */
    last_kind = kind;
    ++count[kind];
    CHECK(only_kind(item, kind) == 0);
    size_t len = 0;
    switch (kind) {
      case SHREDKV_ITEM_PERSON: {
        const shredkv_person_info_t* info = shredkv_export_item_person(item);
        shredkv_person_info_id(info, &who);
        CHECK(same_person(&who, &ann));
        CHECK_EQ_INT(shredkv_person_info_identifier_count(info), 2);
        break;
      }
      case SHREDKV_ITEM_IDENTIFIER: {
        const char* value = NULL;
        const char* type = shredkv_export_item_identifier(item, &value, &len);
        if (strcmp(type, "email") == 0) {
          CHECK(check_bytes(value, &len, "ann@example.org", 15) == 0);
        } else {
          CHECK_STR(type, "customer_id");
          CHECK(check_bytes(value, &len, "c-9", 3) == 0);
        }
        break;
      }
      case SHREDKV_ITEM_PROFILE: {
        const shredkv_attrs_t* p = shredkv_export_item_profile(item);
        CHECK_EQ_INT(shredkv_attrs_count(p), 1);
        CHECK(check_bytes(shredkv_attrs_data(p, 0, &len), &len, "Bern", 4) == 0);
        break;
      }
      case SHREDKV_ITEM_RESTRICTION:
        CHECK(check_restriction(shredkv_export_item_restriction(item), 0, "marketing", NULL) == 0);
        CHECK(shredkv_restriction_updated_ms(shredkv_export_item_restriction(item)) > 0);
        break;
      case SHREDKV_ITEM_CONSENT: {
        const shredkv_consent_record_t* c = shredkv_export_item_consent(item);
        if (shredkv_consent_action(c) == SHREDKV_CONSENT_GRANT) {
          CHECK_STR(shredkv_consent_purpose(c), "personalization");
          CHECK_STR(shredkv_consent_source(c), "app");
          saw_grant = 1;
        } else {
          CHECK_EQ_INT(shredkv_consent_action(c), SHREDKV_CONSENT_RESTRICT);
          CHECK_STR(shredkv_consent_restriction_reason(c), "objection");
          saw_restrict = 1;
        }
        break;
      }
      case SHREDKV_ITEM_EVENT: {
        const shredkv_event_t* e = shredkv_export_item_event(item);
        CHECK_STR(shredkv_event_name(e), count[kind] == 1 ? "page_view" : "purchase");
        CHECK_EQ_INT(shredkv_event_ts_ms(e), count[kind] == 1 ? kT0 : kT0 + 1000);
        CHECK_EQ_INT(shredkv_attrs_count(shredkv_event_properties(e)), 2);
        break;
      }
      case SHREDKV_ITEM_RECORD: {
        const shredkv_record_t* r = shredkv_export_item_record(item);
        const char* key = shredkv_record_key(r, &len);
        if (len == 2 && memcmp(key, "o1", 2) == 0) {
          CHECK(check_bytes(shredkv_record_value(r, &len), &len, "\0bin", 4) == 0);
          CHECK_EQ_INT(shredkv_record_purpose_count(r), 1);
          CHECK(check_bytes(shredkv_record_origin(r, &len), &len, "shop", 4) == 0);
        } else {
          CHECK(check_bytes(shredkv_record_value(r, &len), &len, "hello", 5) == 0);
        }
        break;
      }
      case SHREDKV_ITEM_ANALYTICS: {
        const shredkv_analytics_row_t* a = shredkv_export_item_analytics(item);
        uint8_t row_anon[16];
        shredkv_analytics_anon_id(a, row_anon);
        CHECK(memcmp(row_anon, anon, 16) == 0);
        CHECK(shredkv_analytics_seq(a) > 0); /* in an export: the event's seq */
        CHECK_EQ_INT(shredkv_analytics_ts_ms(a) % kHour, 0);
        CHECK_EQ_INT(shredkv_attrs_count(shredkv_analytics_fields(a)), 1);
        break;
      }
      case SHREDKV_ITEM_NOTICE: {
        const shredkv_notice_t* notice = shredkv_export_item_notice(item);
        shredkv_notice_person(notice, &who);
        CHECK(same_person(&who, &ann));
        CHECK(shredkv_notice_kind(notice) == SHREDKV_NOTICE_RECORD_CHANGE ||
              shredkv_notice_kind(notice) == SHREDKV_NOTICE_RESTRICTION);
        break;
      }
      default:
        CHECK(0);
    }
  }
  CHECK(shredkv_iter_export_item(it) == NULL);
  CHECK_OK(shredkv_iter_status(it, &err), err);
  shredkv_iter_destroy(it);
  CHECK_EQ_INT(count[SHREDKV_ITEM_PERSON], 1);
  CHECK_EQ_INT(count[SHREDKV_ITEM_IDENTIFIER], 2);
  CHECK_EQ_INT(count[SHREDKV_ITEM_PROFILE], 1);
  CHECK_EQ_INT(count[SHREDKV_ITEM_RESTRICTION], 1);
  CHECK(count[SHREDKV_ITEM_CONSENT] >= 2 && saw_grant && saw_restrict);
  CHECK_EQ_INT(count[SHREDKV_ITEM_EVENT], 2);
  CHECK_EQ_INT(count[SHREDKV_ITEM_RECORD], 2);
  CHECK_EQ_INT(count[SHREDKV_ITEM_ANALYTICS], 2);
  CHECK(count[SHREDKV_ITEM_NOTICE] >= 3); /* two record puts, restriction, consent */

  /* An unknown person: the export ends with NOT_FOUND. */
  shredkv_person_id_t ghost;
  memset(&ghost, 0x21, sizeof ghost);
  it = shredkv_export(store, &ghost);
  CHECK(!shredkv_iter_valid(it));
  CHECK_CODE(shredkv_iter_status(it, &err), SHREDKV_NOT_FOUND, err);
  shredkv_iter_destroy(it);
  TEARDOWN(dir, store);
  return 0;
}

/* A growing buffer for shredkv_export_person's write callback. */
typedef struct sink {
  char* data;
  size_t len, cap;
  size_t calls;
  size_t fail_at; /* the call (1-based) that returns nonzero; 0: never */
} sink;

static int sink_write(void* ctx, const char* data, size_t len) {
  sink* s = (sink*)ctx;
  ++s->calls;
  if (s->fail_at != 0 && s->calls >= s->fail_at) return 1;
  if (s->len + len + 1 > s->cap) {
    size_t cap = s->cap == 0 ? 256 : s->cap;
    while (cap < s->len + len + 1) cap *= 2;
    char* grown = (char*)realloc(s->data, cap);
    if (grown == NULL) return 1;
    s->data = grown;
    s->cap = cap;
  }
  memcpy(s->data + s->len, data, len);
  s->len += len;
  s->data[s->len] = '\0';
  return 0;
}

static size_t count_lines(const char* text, size_t len) {
  size_t n = 0;
  for (size_t i = 0; i < len; ++i) n += text[i] == '\n';
  return n;
}

/* Imports `data` into a new store and checks the counts and the person. */
static int import_into_new_store(const char* data, size_t len, int format) {
  SETUP(dir, store);
  char* err = NULL;
  shredkv_person_id_t id;
  memset(&id, 0, sizeof id);
  uint64_t identifiers = 0, events = 0, records = 0;
  CHECK_OK(shredkv_import_person(store, data, len, format, &id, &identifiers, &events, &records, &err), err);
  CHECK(!is_zero16(id.bytes));
  CHECK_EQ_INT(identifiers, 2);
  CHECK_EQ_INT(events, 2);
  CHECK_EQ_INT(records, 2);
  shredkv_identifier_t email = ident("email", "ann@example.org");
  shredkv_person_id_t who;
  CHECK_OK(shredkv_resolve(store, &email, &who, &err), err);
  CHECK(same_person(&who, &id));
  size_t n = 0;
  CHECK(event_count(store, &id, &n) == 0);
  CHECK_EQ_INT(n, 2);
  char* value = NULL;
  size_t value_len = 0;
  CHECK_OK(shredkv_get(store, &id, "orders", 6, "o1", 2, &value, &value_len, &err), err);
  CHECK(check_bytes(value, &value_len, "\0bin", 4) == 0);
  shredkv_free(value);
  shredkv_attrs_t* profile = NULL;
  CHECK_OK(shredkv_get_profile(store, &id, &profile, &err), err);
  CHECK_EQ_INT(shredkv_attrs_count(profile), 1);
  shredkv_attrs_destroy(profile);
  /* The same export again: its identifiers are taken now; counts may be NULL. */
  CHECK_CODE(shredkv_import_person(store, data, len, format, &who, NULL, NULL, NULL, &err), SHREDKV_ALREADY_EXISTS,
             err);
  TEARDOWN(dir, store);
  return 0;
}

/* rich_person, and its export as the JSON document into `json`. */
static int rich_person_as_json(shredkv_store_t* store, shredkv_person_id_t* person, sink* json) {
  char* err = NULL;
  CHECK(rich_person(store, person) == 0);
  CHECK_OK(shredkv_export_person(store, person, SHREDKV_EXPORT_JSON, sink_write, json, &err), err);
  return 0;
}

/* The analytics rows of everyone in `store`: how many, and how many are
 * named `name` with no field. */
static int count_analytics(shredkv_store_t* store, const char* name, size_t* rows, size_t* named_bare) {
  shredkv_iterator_t* it = shredkv_scan_analytics(store, INT64_MIN, INT64_MAX, NULL);
  CHECK(it != NULL);
  *rows = *named_bare = 0;
  for (; shredkv_iter_valid(it); shredkv_iter_next(it)) {
    const shredkv_analytics_row_t* row = shredkv_iter_analytics(it);
    ++*rows;
    if (strcmp(shredkv_analytics_name(row), name) == 0 && shredkv_attrs_count(shredkv_analytics_fields(row)) == 0) {
      ++*named_bare;
    }
  }
  char* err = NULL;
  CHECK_OK(shredkv_iter_status(it, &err), err);
  shredkv_iter_destroy(it);
  return 0;
}

/* Outside audit 36a, F3: an import wrote the file's event names and the
 * fields it declared into the clear analytics rows. By default the rows of
 * imported events are anonymous; AS_EXPORTED keeps names and fields. */
static int test_import_analytics_modes(void) {
  SETUP(dir, store);
  char* err = NULL;
  shredkv_person_id_t ann;
  sink json = {NULL, 0, 0, 0, 0};
  CHECK(rich_person_as_json(store, &ann, &json) == 0);
  size_t rows = 0, bare = 0;
  CHECK(count_analytics(store, "purchase", &rows, &bare) == 0);
  CHECK_EQ_INT(rows, 2);
  CHECK_EQ_INT(bare, 0); /* the source's rows carry their field */

  SETUP(anon_dir, anon);
  shredkv_person_id_t id;
  CHECK_OK(shredkv_import_person(anon, json.data, json.len, SHREDKV_EXPORT_JSON, &id, NULL, NULL, NULL, &err), err);
  CHECK(count_analytics(anon, "imported", &rows, &bare) == 0);
  CHECK_EQ_INT(rows, 2);
  CHECK_EQ_INT(bare, 2);
  TEARDOWN(anon_dir, anon);

  SETUP(kept_dir, kept);
  CHECK_OK(shredkv_import_person2(kept, json.data, json.len, SHREDKV_EXPORT_JSON,
                                  SHREDKV_IMPORTED_ANALYTICS_AS_EXPORTED, &id, NULL, NULL, NULL, &err),
           err);
  CHECK(count_analytics(kept, "purchase", &rows, &bare) == 0);
  CHECK_EQ_INT(rows, 2);
  CHECK_EQ_INT(bare, 0);
  CHECK(count_analytics(kept, "imported", &rows, &bare) == 0);
  CHECK_EQ_INT(bare, 0);
  CHECK_CODE(shredkv_import_person2(kept, json.data, json.len, SHREDKV_EXPORT_JSON, 7, &id, NULL, NULL, NULL, &err),
             SHREDKV_INVALID_ARGUMENT, err);
  TEARDOWN(kept_dir, kept);
  free(json.data);
  TEARDOWN(dir, store);
  return 0;
}

static int test_export_import_person(void) {
  SETUP(dir, store);
  char* err = NULL;
  shredkv_person_id_t ann;
  sink json = {NULL, 0, 0, 0, 0};
  CHECK(rich_person_as_json(store, &ann, &json) == 0);
  CHECK(json.len > 0 && json.calls > 0);
  CHECK_EQ_INT(json.data[0], '{');
  CHECK(strstr(json.data, "ann@example.org") != NULL);
  CHECK(strstr(json.data, "purchase") != NULL);

  sink nd = {NULL, 0, 0, 0, 0};
  CHECK_OK(shredkv_export_person(store, &ann, SHREDKV_EXPORT_NDJSON, sink_write, &nd, &err), err);
  CHECK(nd.len > 0);
  CHECK_EQ_INT(nd.data[0], '{');
  CHECK_EQ_INT(nd.data[nd.len - 1], '\n');
  CHECK(count_lines(nd.data, nd.len) >= 12); /* header, one line an item, end */

  /* A callback that stops: IO_ERROR. */
  sink stop = {NULL, 0, 0, 0, 1};
  CHECK_CODE(shredkv_export_person(store, &ann, SHREDKV_EXPORT_JSON, sink_write, &stop, &err), SHREDKV_IO_ERROR,
             err);
  CHECK(stop.calls >= 1);
  free(stop.data);
  /* An unknown format; an unknown person. */
  sink none = {NULL, 0, 0, 0, 0};
  CHECK_CODE(shredkv_export_person(store, &ann, 7, sink_write, &none, &err), SHREDKV_INVALID_ARGUMENT, err);
  shredkv_person_id_t ghost;
  memset(&ghost, 0x13, sizeof ghost);
  CHECK_CODE(shredkv_export_person(store, &ghost, SHREDKV_EXPORT_JSON, sink_write, &none, &err), SHREDKV_NOT_FOUND,
             err);
  free(none.data);

  /* Importing into the same store: the identifiers are taken. */
  shredkv_person_id_t copy;
  CHECK_CODE(shredkv_import_person(store, json.data, json.len, SHREDKV_EXPORT_JSON, &copy, NULL, NULL, NULL, &err),
             SHREDKV_ALREADY_EXISTS, err);
  TEARDOWN(dir, store);

  /* Into fresh stores: both formats. */
  CHECK(import_into_new_store(json.data, json.len, SHREDKV_EXPORT_JSON) == 0);
  CHECK(import_into_new_store(nd.data, nd.len, SHREDKV_EXPORT_NDJSON) == 0);

  /* Malformed input and a cut-short NDJSON stream: INVALID_ARGUMENT. */
  SETUP(dir2, store2);
  const char* junk = "{\"not\": \"an export\"}";
  CHECK_CODE(shredkv_import_person(store2, junk, strlen(junk), SHREDKV_EXPORT_JSON, &copy, NULL, NULL, NULL, &err),
             SHREDKV_INVALID_ARGUMENT, err);
  size_t cut = nd.len - 1;
  while (cut > 0 && nd.data[cut - 1] != '\n') --cut; /* drop the end line */
  CHECK(cut > 0);
  CHECK_CODE(shredkv_import_person(store2, nd.data, cut, SHREDKV_EXPORT_NDJSON, &copy, NULL, NULL, NULL, &err),
             SHREDKV_INVALID_ARGUMENT, err);
  CHECK_CODE(shredkv_import_person(store2, json.data, json.len, 9, &copy, NULL, NULL, NULL, &err),
             SHREDKV_INVALID_ARGUMENT, err);
  shredkv_identifier_t email = ident("email", "ann@example.org");
  CHECK_CODE(shredkv_resolve(store2, &email, &copy, &err), SHREDKV_NOT_FOUND, err); /* nothing written */
  TEARDOWN(dir2, store2);
  free(json.data);
  free(nd.data);
  return 0;
}

static const c_test tests[] = {
  {"codes_and_versions", test_codes_and_versions},
  {"enum_names", test_enum_names},
  {"person_id_hex", test_person_id_hex},
  {"attrs", test_attrs},
  {"people", test_people},
  {"profile", test_profile},
  {"events", test_events},
  {"records", test_records},
  {"find_records", test_find_records},
  {"analytics", test_analytics},
  {"rectification_and_feed", test_rectification_and_feed},
  {"restriction", test_restriction},
  {"consent", test_consent},
  {"people_with_consent", test_people_with_consent},
  {"leases", test_leases},
  {"writebatch", test_writebatch},
  {"writebatch_events_json", test_writebatch_events_json},
  {"write_atomic", test_write_atomic},
  {"export_items", test_export_items},
  {"export_import_person", test_export_import_person},
  {"import_analytics_modes", test_import_analytics_modes},
};

int main(int argc, char** argv) { return c_test_main(argc, argv, tests, sizeof tests / sizeof tests[0]); }
