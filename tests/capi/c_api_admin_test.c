/* The C API suite, part 2 (administration): key providers and custody,
 * retention rules and sweeps with an injected clock, every options setter,
 * the progress / logger / listener callbacks, opening and closing (error
 * codes and the errptr convention), identifier normalisation, erasure and
 * its receipts, housekeeping results, stats, the audit log, verification,
 * backups, the erasure log, restores and root-key rotation. Part 1
 * (c_api_core_test.c) covers the data model. Each test works in a fresh
 * temporary directory, removed at its end. */
#include "c_test.h"
#include "c_store_helpers.h"

#include <time.h>

/* ---- helpers --------------------------------------------------------------- */

#define T0_MS INT64_C(1700000000000)
#define DAY_MS INT64_C(86400000)

/* Appends an event with one string property; category NULL: the declared one. */
static int append_event(shredkv_store_t* store, const shredkv_person_id_t* person, const char* name, int64_t ts_ms,
                        const char* category, char** err) {
  shredkv_attrs_t* props = shredkv_attrs_create();
  shredkv_attrs_set_string(props, "where", "here", 4);
  const int rc = shredkv_append_event(store, person, name, ts_ms, props, NULL, 0, category, err);
  shredkv_attrs_destroy(props);
  return rc;
}

/* The number of the person's events (all time), or -1 if the scan fails. */
static long count_events(shredkv_store_t* store, const shredkv_person_id_t* person) {
  shredkv_iterator_t* it = shredkv_scan_events(store, person, INT64_MIN, INT64_MAX);
  long n = 0;
  for (; shredkv_iter_valid(it); shredkv_iter_next(it)) ++n;
  char* err = NULL;
  const int rc = shredkv_iter_status(it, &err);
  shredkv_free(err);
  shredkv_iter_destroy(it);
  return rc == SHREDKV_OK ? n : -1;
}

/* The code of shredkv_get_profile for the person (the profile released). */

static int is_hex(const char* s, size_t n) {
  if (s == NULL || strlen(s) != n) return 0;
  for (size_t i = 0; i < n; ++i) {
    const char c = s[i];
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return 0;
  }
  return 1;
}

static int64_t test_clock(void* ctx) { return *(const int64_t*)ctx; }

/* ---- key providers and custody ------------------------------------------------ */

static int test_key_file(void) {
  char dir[256], key_path[256], store_dir[256];
  CHECK(c_test_mkdtemp(dir) == 0);
  sub_path(key_path, dir, "root.key");
  sub_path(store_dir, dir, "store");
  char* err = NULL;
  CHECK_OK(shredkv_create_key_file(key_path, &err), err);
  struct stat st;
  CHECK(stat(key_path, &st) == 0);
  CHECK_EQ_INT(st.st_mode & 0777, 0600);
  CHECK_EQ_INT(st.st_size, 32);
  /* O_EXCL: a second creation fails and names the problem. */
  CHECK_EQ_INT(shredkv_create_key_file(key_path, &err), SHREDKV_ALREADY_EXISTS);
  CHECK(err != NULL && strncmp(err, "AlreadyExists", 13) == 0);
  shredkv_free(err);
  err = NULL;

  shredkv_person_id_t ann, found;
  for (int round = 0; round < 2; ++round) {
    shredkv_key_provider_t* provider = shredkv_key_provider_file(key_path);
    CHECK(provider != NULL);
    shredkv_options_t* options = shredkv_options_create();
    shredkv_options_set_directory(options, store_dir);
    shredkv_options_set_create_if_missing(options, round == 0);
    shredkv_options_set_durability(options, SHREDKV_DURABILITY_NO_SYNC);
    shredkv_options_set_initial_map_size(options, 4u << 20);
    shredkv_options_set_key_provider(options, provider);
    shredkv_key_provider_destroy(provider);
    shredkv_store_t* store = NULL;
    CHECK_OK(shredkv_open(options, &store, &err), err);
    shredkv_options_destroy(options);
    shredkv_identifier_t id = email_id("ann@example.org");
    if (round == 0) {
      CHECK_OK(create_person(store, "ann@example.org", "Ann", &ann, &err), err);
    } else {
      /* Reopened with the same key file: the data is there. */
      CHECK_OK(shredkv_resolve(store, &id, &found, &err), err);
      CHECK(memcmp(found.bytes, ann.bytes, 16) == 0);
    }
    CHECK_OK(shredkv_close(store, &err), err);
  }
  CHECK(c_test_rmtree(dir) == 0);
  return 0;
}

static int open_with_passphrase(const char* dir, const char* passphrase, unsigned char create,
                                shredkv_store_t** out, char** err) {
  shredkv_key_provider_t* provider = shredkv_key_provider_passphrase(passphrase, strlen(passphrase), 1);
  if (provider == NULL) return SHREDKV_INTERNAL;
  shredkv_options_t* options = shredkv_options_create();
  shredkv_options_set_directory(options, dir);
  shredkv_options_set_create_if_missing(options, create);
  shredkv_options_set_durability(options, SHREDKV_DURABILITY_NO_SYNC);
  shredkv_options_set_initial_map_size(options, 4u << 20);
  shredkv_options_set_key_provider(options, provider);
  shredkv_key_provider_destroy(provider);
  const int rc = shredkv_open(options, out, err);
  shredkv_options_destroy(options);
  return rc;
}

static int test_key_passphrase(void) {
  char dir[256];
  CHECK(c_test_mkdtemp(dir) == 0);
  char* err = NULL;
  shredkv_store_t* store = NULL;
  shredkv_person_id_t ann, found;
  CHECK_OK(open_with_passphrase(dir, "correct horse battery staple", 1, &store, &err), err);
  CHECK_OK(create_person(store, "ann@example.org", "Ann", &ann, &err), err);
  CHECK_OK(shredkv_close(store, &err), err);

  /* Another passphrase derives another key. */
  store = NULL;
  CHECK_CODE(open_with_passphrase(dir, "wrong horse battery staple", 0, &store, &err), SHREDKV_WRONG_KEY, err);

  /* The same passphrase (and the store's salt) derives the same key. */
  CHECK_OK(open_with_passphrase(dir, "correct horse battery staple", 0, &store, &err), err);
  shredkv_identifier_t id = email_id("ann@example.org");
  CHECK_OK(shredkv_resolve(store, &id, &found, &err), err);
  CHECK(memcmp(found.bytes, ann.bytes, 16) == 0);
  CHECK_OK(shredkv_close(store, &err), err);
  CHECK(c_test_rmtree(dir) == 0);
  return 0;
}

static int test_key_raw(void) {
  char key[33];
  make_key(key, 1);
  key[32] = 'x';
  CHECK(shredkv_key_provider_raw(key, 31) == NULL);
  CHECK(shredkv_key_provider_raw(key, 33) == NULL);
  CHECK(shredkv_key_provider_raw(key, 0) == NULL);
  CHECK(shredkv_key_provider_raw(NULL, 32) == NULL);
  shredkv_key_provider_t* provider = shredkv_key_provider_raw(key, 32);
  CHECK(provider != NULL);

  /* The provider opens a store; the options outlive the caller's handle. */
  char dir[256];
  CHECK(c_test_mkdtemp(dir) == 0);
  shredkv_options_t* options = shredkv_options_create();
  shredkv_options_set_directory(options, dir);
  shredkv_options_set_create_if_missing(options, 1);
  shredkv_options_set_durability(options, SHREDKV_DURABILITY_NO_SYNC);
  shredkv_options_set_key_provider(options, provider);
  shredkv_key_provider_destroy(provider);
  char* err = NULL;
  shredkv_store_t* store = NULL;
  CHECK_OK(shredkv_open(options, &store, &err), err);
  shredkv_options_destroy(options);
  CHECK_OK(shredkv_close(store, &err), err);
  /* The same 32 bytes open it again through test_options' provider. */
  CHECK_OK(open_store(dir, 1, &store, &err), err);
  CHECK_OK(shredkv_close(store, &err), err);
  CHECK(c_test_rmtree(dir) == 0);
  return 0;
}

typedef struct key_source {
  char key[32];
  int calls, bad_salt, fail, write_nothing;
} key_source;

static int get_root_key(void* ctx, const char* store_salt, size_t salt_len, unsigned char key_out[32],
                        char** message) {
  key_source* source = ctx;
  ++source->calls;
  if (store_salt == NULL || salt_len != 16) ++source->bad_salt;
  if (source->fail) {
    const char text[] = "the key service is down";
    *message = malloc(sizeof text);
    if (*message != NULL) memcpy(*message, text, sizeof text);
    return 1;
  }
  if (source->write_nothing) return 0; /* success without a key (a binding's swallowed exception) */
  memcpy(key_out, source->key, 32);
  return 0;
}

static int open_with_callback(const char* dir, key_source* source, shredkv_store_t** out, char** err) {
  shredkv_key_provider_t* provider = shredkv_key_provider_callback(get_root_key, source, "test-kms");
  if (provider == NULL) return SHREDKV_INTERNAL;
  shredkv_options_t* options = shredkv_options_create();
  shredkv_options_set_directory(options, dir);
  shredkv_options_set_create_if_missing(options, 1);
  shredkv_options_set_durability(options, SHREDKV_DURABILITY_NO_SYNC);
  shredkv_options_set_initial_map_size(options, 4u << 20);
  shredkv_options_set_key_provider(options, provider);
  shredkv_key_provider_destroy(provider);
  const int rc = shredkv_open(options, out, err);
  shredkv_options_destroy(options);
  return rc;
}

static int test_key_callback(void) {
  CHECK(shredkv_key_provider_callback(NULL, NULL, "nothing") == NULL);
  char dir[256];
  CHECK(c_test_mkdtemp(dir) == 0);
  key_source source;
  memset(&source, 0, sizeof source);
  make_key(source.key, 5);
  char* err = NULL;
  shredkv_store_t* store = NULL;
  CHECK_OK(open_with_callback(dir, &source, &store, &err), err);
  CHECK(source.calls >= 1);
  CHECK_EQ_INT(source.bad_salt, 0);
  shredkv_person_id_t ann;
  CHECK_OK(create_person(store, "ann@example.org", "Ann", &ann, &err), err);
  CHECK_OK(shredkv_close(store, &err), err);

  /* The key it gives is the store's: the raw provider of the same bytes opens it. */
  CHECK_OK(open_store(dir, 5, &store, &err), err);
  CHECK_EQ_INT(profile_code(store, &ann), SHREDKV_OK);
  CHECK_OK(shredkv_close(store, &err), err);

  /* A failing callback fails the open with IO_ERROR and its message. */
  source.fail = 1;
  const int calls = source.calls;
  CHECK_EQ_INT(open_with_callback(dir, &source, &store, &err), SHREDKV_IO_ERROR);
  CHECK(source.calls > calls);
  CHECK(err != NULL && strstr(err, "the key service is down") != NULL);
  shredkv_free(err);
  err = NULL;

  /* Another key from the callback: WrongKey. */
  source.fail = 0;
  make_key(source.key, 6);
  CHECK_CODE(open_with_callback(dir, &source, &store, &err), SHREDKV_WRONG_KEY, err);

  /* Stop 26's audit: a callback that returns 0 without writing key_out
   * (cffi's default return value after a KeyboardInterrupt) made the
   * library use its uninitialised buffer as the key; a new store was sealed
   * under it. Now IO_ERROR, and no store is made. */
  source.write_nothing = 1;
  char fresh[300];
  snprintf(fresh, sizeof fresh, "%s/fresh", dir);
  CHECK_EQ_INT(open_with_callback(fresh, &source, &store, &err), SHREDKV_IO_ERROR);
  CHECK(err != NULL && strstr(err, "wrote no key") != NULL);
  shredkv_free(err);
  err = NULL;
  source.write_nothing = 0;
  CHECK_OK(open_with_callback(fresh, &source, &store, &err), err); /* the real key creates it */
  CHECK_OK(shredkv_close(store, &err), err);
  CHECK(c_test_rmtree(dir) == 0);
  return 0;
}

static int test_custody_pkcs11_missing_module(void) {
  static char marker;
  shredkv_custody_t* const sentinel = (shredkv_custody_t*)(void*)&marker;
  shredkv_custody_t* out = sentinel;
  char* err = NULL;
  const int rc = shredkv_custody_pkcs11("/nonexistent/shredkv-no-such-pkcs11-module.so", "shredkv", "1234", 4,
                                        &out, &err);
  CHECK(rc != SHREDKV_OK);
  CHECK(out == sentinel); /* left untouched on failure */
  CHECK(err != NULL && err[0] != '\0');
  CHECK(strncmp(err, shredkv_code_name(rc), strlen(shredkv_code_name(rc))) == 0);
  shredkv_free(err);
  shredkv_custody_destroy(NULL); /* harmless */
  return 0;
}

/* ---- retention and sweeps ------------------------------------------------------ */

static int test_retention_rules(void) {
  shredkv_retention_t* rules = shredkv_retention_create();
  CHECK(rules != NULL);
  CHECK_EQ_INT(shredkv_retention_event_count(rules), 0);
  CHECK_EQ_INT(shredkv_retention_collection_count(rules), 0);
  CHECK_EQ_INT(shredkv_retention_analytics(rules), 0);
  CHECK_EQ_INT(shredkv_retention_feed(rules), 0);
  shredkv_retention_set_event(rules, "visit", 2 * DAY_MS);
  shredkv_retention_set_event(rules, "click", 1 * DAY_MS);
  shredkv_retention_set_event(rules, "visit", 3 * DAY_MS); /* replaces */
  shredkv_retention_set_collection(rules, "notes", 5 * DAY_MS);
  shredkv_retention_set_collection(rules, "carts", 4 * DAY_MS);
  shredkv_retention_set_analytics(rules, 7 * DAY_MS);
  shredkv_retention_set_feed(rules, 30 * DAY_MS);

  /* Accessors in name order. */
  int64_t age = 0;
  CHECK_EQ_INT(shredkv_retention_event_count(rules), 2);
  CHECK_STR(shredkv_retention_event(rules, 0, &age), "click");
  CHECK_EQ_INT(age, 1 * DAY_MS);
  CHECK_STR(shredkv_retention_event(rules, 1, &age), "visit");
  CHECK_EQ_INT(age, 3 * DAY_MS);
  CHECK_EQ_INT(shredkv_retention_collection_count(rules), 2);
  CHECK_STR(shredkv_retention_collection(rules, 0, &age), "carts");
  CHECK_EQ_INT(age, 4 * DAY_MS);
  CHECK_STR(shredkv_retention_collection(rules, 1, &age), "notes");
  CHECK_EQ_INT(age, 5 * DAY_MS);
  CHECK_EQ_INT(shredkv_retention_analytics(rules), 7 * DAY_MS);

  /* Stored in a store and read back. */
  char dir[256];
  CHECK(c_test_mkdtemp(dir) == 0);
  char* err = NULL;
  shredkv_store_t* store = NULL;
  CHECK_OK(open_store(dir, 1, &store, &err), err);
  shredkv_retention_t* stored = NULL;
  CHECK_OK(shredkv_get_retention(store, &stored, &err), err);
  CHECK_EQ_INT(shredkv_retention_event_count(stored), 0); /* a new store has none */
  CHECK_EQ_INT(shredkv_retention_collection_count(stored), 0);
  shredkv_retention_destroy(stored);

  CHECK_OK(shredkv_set_retention(store, rules, &err), err);
  CHECK_OK(shredkv_get_retention(store, &stored, &err), err);
  CHECK_EQ_INT(shredkv_retention_event_count(stored), 2);
  CHECK_STR(shredkv_retention_event(stored, 1, &age), "visit");
  CHECK_EQ_INT(age, 3 * DAY_MS);
  CHECK_EQ_INT(shredkv_retention_collection_count(stored), 2);
  CHECK_STR(shredkv_retention_collection(stored, 0, &age), "carts");
  CHECK_EQ_INT(age, 4 * DAY_MS);
  CHECK_EQ_INT(shredkv_retention_analytics(stored), 7 * DAY_MS);
  CHECK_EQ_INT(shredkv_retention_feed(stored), 30 * DAY_MS);
  shredkv_retention_destroy(stored);

  /* A max age <= 0 is refused and changes nothing. */
  shredkv_retention_set_event(rules, "visit", 0);
  CHECK_CODE(shredkv_set_retention(store, rules, &err), SHREDKV_INVALID_ARGUMENT, err);
  CHECK_OK(shredkv_get_retention(store, &stored, &err), err);
  CHECK_STR(shredkv_retention_event(stored, 1, &age), "visit");
  CHECK_EQ_INT(age, 3 * DAY_MS);
  shredkv_retention_destroy(stored);
  shredkv_retention_destroy(rules);
  CHECK_OK(shredkv_close(store, &err), err);

  /* The stored rules outlive the open (options without rules). */
  shredkv_options_t* options = test_options(dir, 1);
  shredkv_options_set_retention(options, NULL);
  CHECK_OK(shredkv_open(options, &store, &err), err);
  shredkv_options_destroy(options);
  CHECK_OK(shredkv_get_retention(store, &stored, &err), err);
  CHECK_EQ_INT(shredkv_retention_event_count(stored), 2);
  shredkv_retention_destroy(stored);
  CHECK_OK(shredkv_close(store, &err), err);
  CHECK(c_test_rmtree(dir) == 0);
  return 0;
}

/* Outside audit 32a, F4: collection names are data (any byte), but the
 * retention and category setters took C strings, so a collection whose
 * name holds a NUL or non-UTF-8 bytes could be written and never given a
 * rule or a category. The _n calls take pointer + length. */
static int test_collections_named_by_any_bytes(void) {
  static const char kNul[] = "orders\0eu"; /* 9 bytes */
  static const char kRaw[] = "b\xff" "ad";  /* 4 bytes, not UTF-8 */
  char dir[256];
  CHECK(c_test_mkdtemp(dir) == 0);
  int64_t now = T0_MS;
  size_t len = 99;
  int64_t age = 0;
  shredkv_retention_t* rules = shredkv_retention_create();
  shredkv_retention_set_collection_n(rules, NULL, 0, 5 * DAY_MS); /* the empty name (a store refuses it) */
  CHECK(shredkv_retention_collection_n(rules, 0, &len, &age) != NULL);
  CHECK_EQ_INT(len, 0);
  CHECK_EQ_INT(age, 5 * DAY_MS);
  shredkv_retention_destroy(rules);
  rules = shredkv_retention_create();
  shredkv_retention_set_collection_n(rules, kNul, 9, DAY_MS);
  shredkv_retention_set_collection_n(rules, kRaw, 4, 3 * DAY_MS);
  CHECK_EQ_INT(shredkv_retention_collection_count(rules), 2);
  const char* name = shredkv_retention_collection_n(rules, 0, &len, &age); /* byte order: 'b' < 'o' */
  CHECK(len == 4 && memcmp(name, kRaw, 4) == 0);
  CHECK_EQ_INT(age, 3 * DAY_MS);
  name = shredkv_retention_collection_n(rules, 1, &len, &age);
  CHECK(len == 9 && memcmp(name, kNul, 9) == 0);
  CHECK_EQ_INT(age, DAY_MS);
  CHECK_STR(shredkv_retention_collection(rules, 1, &age), "orders"); /* the C-string accessor cuts it short */
  CHECK(shredkv_retention_collection_n(rules, 2, &len, &age) == NULL);
  CHECK(shredkv_retention_collection_n(rules, 1, NULL, NULL) != NULL); /* out-parameters optional */

  shredkv_options_t* options = test_options(dir, 1);
  shredkv_options_set_clock(options, test_clock, &now);
  shredkv_options_set_retention(options, rules);
  shredkv_options_add_category(options, "health");
  shredkv_options_set_collection_category_n(options, kNul, 9, "health");
  shredkv_retention_destroy(rules);
  char* err = NULL;
  shredkv_store_t* store = NULL;
  CHECK_OK(shredkv_open(options, &store, &err), err);
  shredkv_options_destroy(options);
  shredkv_person_id_t ann;
  CHECK_OK(create_person(store, "ann@example.org", "Ann", &ann, &err), err);
  CHECK_OK(shredkv_put(store, &ann, kNul, 9, "k", 1, "v", 1, &err), err);
  CHECK_OK(shredkv_put(store, &ann, "orders", 6, "k", 1, "v", 1, &err), err); /* its prefix: no rule */
  shredkv_record_t* record = NULL;
  CHECK_OK(shredkv_get_record(store, &ann, kNul, 9, "k", 1, &record, &err), err);
  CHECK_STR(shredkv_record_category(record), "health");
  shredkv_record_destroy(record);
  CHECK_OK(shredkv_get_record(store, &ann, "orders", 6, "k", 1, &record, &err), err);
  CHECK_STR(shredkv_record_category(record), "general");
  shredkv_record_destroy(record);

  /* Stored and read back whole. */
  shredkv_retention_t* stored = NULL;
  CHECK_OK(shredkv_get_retention(store, &stored, &err), err);
  name = shredkv_retention_collection_n(stored, 1, &len, &age);
  CHECK(len == 9 && memcmp(name, kNul, 9) == 0);
  CHECK_EQ_INT(age, DAY_MS);
  shredkv_retention_destroy(stored);

  /* Two days on, the rule of "orders\0eu" expires its record, not the
   * record of "orders". */
  now += 2 * DAY_MS;
  CHECK_CODE(shredkv_get_record(store, &ann, kNul, 9, "k", 1, &record, &err), SHREDKV_NOT_FOUND, err);
  shredkv_sweep_result_t result;
  CHECK_OK(shredkv_sweep(store, 1000, &result, &err), err);
  CHECK_EQ_INT(result.records_deleted, 1);
  CHECK_OK(shredkv_get_record(store, &ann, "orders", 6, "k", 1, &record, &err), err);
  shredkv_record_destroy(record);
  CHECK_OK(shredkv_close(store, &err), err);
  CHECK(c_test_rmtree(dir) == 0);
  return 0;
}

static int test_sweep_with_clock(void) {
  char dir[256];
  CHECK(c_test_mkdtemp(dir) == 0);
  int64_t now = T0_MS;
  shredkv_retention_t* rules = shredkv_retention_create();
  shredkv_retention_set_event(rules, "visit", DAY_MS);
  shredkv_options_t* options = test_options(dir, 1);
  shredkv_options_set_clock(options, test_clock, &now);
  shredkv_options_set_retention(options, rules); /* copied */
  shredkv_retention_destroy(rules);
  char* err = NULL;
  shredkv_store_t* store = NULL;
  CHECK_OK(shredkv_open(options, &store, &err), err);
  shredkv_options_destroy(options);

  /* Rules given at open are stored. */
  shredkv_retention_t* stored = NULL;
  CHECK_OK(shredkv_get_retention(store, &stored, &err), err);
  CHECK_EQ_INT(shredkv_retention_event_count(stored), 1);
  shredkv_retention_destroy(stored);

  shredkv_person_id_t ann;
  CHECK_OK(create_person(store, "ann@example.org", "Ann", &ann, &err), err);
  shredkv_person_info_t* info = NULL;
  CHECK_OK(shredkv_get_person(store, &ann, &info, &err), err);
  CHECK_EQ_INT(shredkv_person_info_created_ms(info), T0_MS); /* the injected clock */
  shredkv_person_info_destroy(info);

  for (int i = 1; i <= 3; ++i) CHECK_OK(append_event(store, &ann, "visit", now - i * 1000, NULL, &err), err);
  CHECK_OK(append_event(store, &ann, "click", now - 500, NULL, &err), err); /* no rule: kept */
  CHECK_EQ_INT(count_events(store, &ann), 4);

  /* Nothing expired yet: the sweep removes nothing. */
  shredkv_sweep_result_t result;
  memset(&result, 0xff, sizeof result);
  CHECK_OK(shredkv_sweep(store, 1000, &result, &err), err);
  CHECK_EQ_INT(result.events_deleted, 0);
  CHECK_EQ_INT(result.pending, 0);

  /* Two days later the visits are past their day: invisible, then swept. */
  now += 2 * DAY_MS;
  CHECK_EQ_INT(count_events(store, &ann), 1);
  memset(&result, 0xff, sizeof result);
  CHECK_OK(shredkv_sweep(store, 1000, &result, &err), err);
  CHECK_EQ_INT(result.events_deleted, 3);
  CHECK_EQ_INT(result.records_deleted, 0);
  CHECK_EQ_INT(result.pending, 0);
  CHECK(result.batches >= 1);
  CHECK(result.entries_read >= 3);
  CHECK(result.seeks >= 1);
  CHECK_EQ_INT(count_events(store, &ann), 1);

  shredkv_stats_t* stats = NULL;
  uint64_t removed = 0;
  CHECK_OK(shredkv_get_stats(store, &stats, &err), err);
  CHECK_EQ_INT(shredkv_stats_get(stats, "expired_removed", &removed), SHREDKV_OK);
  CHECK_EQ_INT(removed, 3);
  shredkv_stats_destroy(stats);

  /* Swept once: a second sweep finds nothing. */
  CHECK_OK(shredkv_sweep(store, 1000, &result, &err), err);
  CHECK_EQ_INT(result.events_deleted, 0);

  /* A feed rule (stop 30): a notice a day old is swept, counted by
   * shredkv_sweep2 (shredkv_sweep_result_t's layout is frozen). */
  CHECK_OK(shredkv_set_consent(store, &ann, 1, "marketing", 1, NULL, &err), err);
  rules = shredkv_retention_create();
  shredkv_retention_set_event(rules, "visit", DAY_MS);
  shredkv_retention_set_feed(rules, DAY_MS);
  CHECK_OK(shredkv_set_retention(store, rules, &err), err);
  shredkv_retention_destroy(rules);
  now += DAY_MS;
  uint64_t notices = 99;
  memset(&result, 0xff, sizeof result);
  CHECK_OK(shredkv_sweep2(store, 1000, &result, &notices, &err), err);
  CHECK_EQ_INT(notices, 1);
  CHECK_EQ_INT(result.events_deleted, 0);
  CHECK_EQ_INT(result.pending, 0);
  CHECK_OK(shredkv_sweep2(store, 1000, NULL, NULL, &err), err);
  CHECK_OK(shredkv_close(store, &err), err);
  CHECK(c_test_rmtree(dir) == 0);
  return 0;
}

/* ---- options --------------------------------------------------------------------- */

/* Options with every setter called: two purposes and two categories
 * replacing the defaults, declared categories, a custom identifier type. */
static shredkv_options_t* full_options(const char* dir) {
  shredkv_options_t* o = test_options(dir, 3);
  shredkv_options_set_error_if_exists(o, 0);
  shredkv_options_set_read_only(o, 0);
  shredkv_options_set_max_map_size(o, UINT64_C(1) << 32);
  shredkv_options_set_dek_cache_capacity(o, 16);
  shredkv_options_set_custody(o, NULL);
  shredkv_options_set_cipher(o, SHREDKV_CIPHER_XCHACHA20_POLY1305);
  shredkv_options_add_identifier_type(o, "member_no", SHREDKV_NORMALIZE_LOWER_TRIM);
  shredkv_options_set_iterator_batch_size(o, 2);
  shredkv_options_set_clock(o, NULL, NULL);
  shredkv_options_set_progress(o, NULL, NULL);
  shredkv_options_set_logger(o, NULL, NULL, SHREDKV_LOG_WARN);
  shredkv_options_set_unlink_time_granularity_ms(o, 3600 * 1000);
  shredkv_options_set_analytics_time_granularity_ms(o, 60 * 1000);
  shredkv_options_set_rotate_after_erasures(o, 1);
  shredkv_options_set_rotate_after_ms(o, 0);
  shredkv_options_set_rotation_batch_size(o, 2);
  shredkv_options_set_background_maintenance_ms(o, 0);
  shredkv_options_set_purge_budget_rows(o, 100000);
  shredkv_options_set_retention(o, NULL);
  shredkv_options_set_sweep_budget_rows(o, 100000);
  shredkv_options_add_purpose(o, "product", SHREDKV_BASIS_LEGITIMATE_INTEREST);
  shredkv_options_add_purpose(o, "newsletter", SHREDKV_BASIS_CONSENT);
  shredkv_options_add_category(o, "health");
  shredkv_options_add_category(o, "location");
  shredkv_options_set_event_category(o, "visit", "health");
  shredkv_options_set_collection_category(o, "notes", "health");
  shredkv_options_set_attribute_category(o, "blood_type", "health");
  shredkv_options_set_tracking_purpose(o, "product");
  shredkv_options_set_tracking_policy(o, SHREDKV_TRACKING_DROP);
  shredkv_options_set_lease_drain_timeout_ms(o, 100);
  shredkv_options_set_audit_processing_reads(o, 1);
  return o;
}

static int test_options_setters(void) {
  char dir[256];
  CHECK(c_test_mkdtemp(dir) == 0);
  shredkv_options_t* options = full_options(dir);
  char* err = NULL;
  shredkv_store_t* store = NULL;
  CHECK_OK(shredkv_open(options, &store, &err), err);
  shredkv_options_destroy(options);

  /* The custom identifier type, normalised by its rule. */
  shredkv_identifier_t ids[2] = {email_id("ann@example.org"), {"member_no", " AB-12 ", 7}};
  shredkv_attrs_t* profile = shredkv_attrs_create();
  shredkv_attrs_set_string(profile, "name", "Ann", 3);
  shredkv_attrs_set_string(profile, "blood_type", "AB", 2);
  shredkv_person_id_t ann, found;
  CHECK_OK(shredkv_create_person(store, ids, 2, profile, &ann, &err), err);
  shredkv_attrs_destroy(profile);
  shredkv_identifier_t member = {"member_no", "ab-12", 5};
  CHECK_OK(shredkv_resolve(store, &member, &found, &err), err);
  CHECK(memcmp(found.bytes, ann.bytes, 16) == 0);

  /* Declared categories: the event's and the collection's. */
  const int64_t ts = T0_MS + 12345;
  shredkv_attrs_t* props = shredkv_attrs_create();
  shredkv_attrs_set_string(props, "where", "clinic", 6);
  const char* fields[] = {"where"};
  CHECK_OK(shredkv_append_event(store, &ann, "visit", ts, props, fields, 1, NULL, &err), err);
  shredkv_attrs_destroy(props);
  shredkv_iterator_t* it = shredkv_scan_events(store, &ann, INT64_MIN, INT64_MAX);
  CHECK(shredkv_iter_valid(it));
  CHECK_STR(shredkv_event_category(shredkv_iter_event(it)), "health");
  shredkv_iter_destroy(it);
  CHECK_OK(shredkv_put(store, &ann, "notes", 5, "n1", 2, "fine", 4, &err), err);
  shredkv_record_t* record = NULL;
  CHECK_OK(shredkv_get_record(store, &ann, "notes", 5, "n1", 2, &record, &err), err);
  CHECK_STR(shredkv_record_category(record), "health");
  shredkv_record_destroy(record);

  /* Scans cross iterator batches of 2 rows. */
  for (int i = 0; i < 4; ++i) CHECK_OK(append_event(store, &ann, "click", ts + 1 + i, NULL, &err), err);
  CHECK_EQ_INT(count_events(store, &ann), 5);

  /* The analytics row's time is floored to the 1-minute granularity. */
  it = shredkv_scan_analytics(store, INT64_MIN, INT64_MAX, "visit");
  CHECK(shredkv_iter_valid(it));
  CHECK_EQ_INT(shredkv_analytics_ts_ms(shredkv_iter_analytics(it)), ts - ts % 60000);
  shredkv_iter_next(it);
  CHECK(!shredkv_iter_valid(it));
  CHECK_OK(shredkv_iter_status(it, &err), err);
  shredkv_iter_destroy(it);

  /* The purposes replaced the defaults. */
  shredkv_lease_t* lease = NULL;
  CHECK_CODE(shredkv_acquire_lease(store, &ann, "marketing", &lease, &err), SHREDKV_INVALID_ARGUMENT, err);
  CHECK_OK(shredkv_acquire_lease(store, &ann, "product", &lease, &err), err);

  /* A restriction waits for this thread's own lease for the drain timeout
   * (100 ms, not the default 5 s), then fails naming the lease and the time
   * it waited. (The message shows the setter took; timing the call under
   * 4 s did too, but a loaded sanitizer run may stall for as long.) */
  const char* health[] = {"health"};
  const int restricted = shredkv_restrict(store, &ann, 1, 0, NULL, 0, health, 1, "test", &err);
  const int named = err != NULL && strstr(err, "lease") != NULL && strstr(err, "waited 100 ms") != NULL;
  if (restricted != SHREDKV_FAILED_PRECONDITION || !named) {
    fprintf(stderr, "%s:%d: shredkv_restrict under the own lease returned %s: %s\n", __FILE__, __LINE__,
            shredkv_code_name(restricted), err != NULL ? err : "(no message)");
    shredkv_free(err);
    return 1;
  }
  shredkv_free(err);
  err = NULL;
  shredkv_lease_release(lease);

  /* Processing reads are audited: the lease's purpose and the subject. */
  char* subject = NULL;
  CHECK_OK(shredkv_audit_subject_of(store, &ann, &subject, &err), err);
  shredkv_audit_list_t* audit = NULL;
  CHECK_OK(shredkv_read_audit(store, 0, 1000, &audit, &err), err);
  int reads = 0;
  for (size_t i = 0; i < shredkv_audit_list_count(audit); ++i) {
    if (shredkv_audit_action(audit, i) != SHREDKV_AUDIT_PROCESSING_READ) continue;
    ++reads;
    CHECK_STR(shredkv_audit_purpose(audit, i), "product");
    CHECK_STR(shredkv_audit_subject(audit, i), subject);
  }
  CHECK_EQ_INT(reads, 1);
  shredkv_audit_list_destroy(audit);
  shredkv_free(subject);

  /* The attribute's declared category: a lease leaves it out once the
   * person restricted "health". */
  CHECK_OK(shredkv_restrict(store, &ann, 1, 0, NULL, 0, health, 1, "test", &err), err);
  CHECK_OK(shredkv_acquire_lease(store, &ann, "product", &lease, &err), err);
  shredkv_attrs_t* seen = NULL;
  CHECK_OK(shredkv_lease_get_profile(lease, &seen, &err), err);
  CHECK(shredkv_attrs_find(seen, "name") >= 0);
  CHECK_EQ_INT(shredkv_attrs_find(seen, "blood_type"), -1);
  shredkv_attrs_destroy(seen);
  shredkv_lease_release(lease);

  /* Tracking for "product" with the DROP policy: a restricted person's
   * new event is skipped, not refused. */
  CHECK_OK(shredkv_restrict(store, &ann, 1, 1, NULL, 0, NULL, 0, NULL, &err), err);
  CHECK_OK(append_event(store, &ann, "click", ts + 100, NULL, &err), err);
  CHECK_EQ_INT(count_events(store, &ann), 5);
  shredkv_stats_t* stats = NULL;
  uint64_t dropped = 0;
  CHECK_OK(shredkv_get_stats(store, &stats, &err), err);
  CHECK_EQ_INT(shredkv_stats_get(stats, "tracking_dropped", &dropped), SHREDKV_OK);
  CHECK_EQ_INT(dropped, 1);
  shredkv_stats_destroy(stats);

  CHECK_OK(shredkv_close(store, &err), err);
  CHECK(c_test_rmtree(dir) == 0);
  return 0;
}

static int test_options_rotation_policy(void) {
  char dir[256];
  CHECK(c_test_mkdtemp(dir) == 0);
  shredkv_options_t* options = full_options(dir);
  char* err = NULL;
  shredkv_store_t* store = NULL;
  CHECK_OK(shredkv_open(options, &store, &err), err);
  shredkv_options_destroy(options);

  shredkv_person_id_t people[6];
  const char* emails[6] = {"a@example.org", "b@example.org", "c@example.org",
                           "d@example.org", "e@example.org", "dana@example.org"};
  for (int i = 0; i < 6; ++i) CHECK_OK(create_person(store, emails[i], "P", &people[i], &err), err);
  const shredkv_person_id_t dana = people[5];
  const int64_t ts = T0_MS + 12345;
  const int64_t minute = ts - ts % 60000, hour = ts - ts % 3600000;
  CHECK(minute != hour);
  shredkv_attrs_t* props = shredkv_attrs_create();
  shredkv_attrs_set_string(props, "where", "park", 4);
  const char* fields[] = {"where"};
  CHECK_OK(shredkv_append_event(store, &dana, "walk", ts, props, fields, 1, NULL, &err), err);
  shredkv_attrs_destroy(props);

  /* One erasure with UNLINK; rotate_after_erasures = 1 makes the next
   * maintenance round rotate, so the erasure becomes cryptographic. */
  shredkv_receipt_t* receipt = NULL;
  CHECK_OK(shredkv_erase(store, &dana, 1, "req-unlink", 0, SHREDKV_ANALYTICS_UNLINK, &receipt, &err), err);
  CHECK_EQ_INT(shredkv_receipt_cryptographic(receipt), 0);
  shredkv_receipt_destroy(receipt);
  CHECK_OK(shredkv_run_maintenance(store, &err), err);
  CHECK_OK(shredkv_get_erasure(store, "req-unlink", &receipt, &err), err);
  CHECK_EQ_INT(shredkv_receipt_cryptographic(receipt), 1);
  CHECK_EQ_INT(shredkv_receipt_level(receipt), SHREDKV_ERASURE_PURGED);
  shredkv_receipt_destroy(receipt);

  /* The unlinked row's time is coarsened to the 1-hour unlink granularity. */
  shredkv_iterator_t* it = shredkv_scan_analytics(store, INT64_MIN, INT64_MAX, "walk");
  CHECK(shredkv_iter_valid(it));
  CHECK_EQ_INT(shredkv_analytics_ts_ms(shredkv_iter_analytics(it)), hour);
  shredkv_iter_destroy(it);

  /* Five live keys re-wrapped two per batch. */
  shredkv_rotation_result_t rotation;
  memset(&rotation, 0, sizeof rotation);
  CHECK_OK(shredkv_rotate_epoch(store, &rotation, &err), err);
  CHECK(rotation.rewrapped_keys >= 5);
  CHECK(rotation.batches >= (rotation.rewrapped_keys + 1) / 2);
  CHECK_OK(shredkv_close(store, &err), err);
  CHECK(c_test_rmtree(dir) == 0);
  return 0;
}

static int test_max_map_size(void) {
  char dir[256];
  CHECK(c_test_mkdtemp(dir) == 0);
  shredkv_options_t* options = test_options(dir, 1);
  shredkv_options_set_initial_map_size(options, 1u << 20);
  shredkv_options_set_max_map_size(options, 4u << 20);
  char* err = NULL;
  shredkv_store_t* store = NULL;
  CHECK_OK(shredkv_open(options, &store, &err), err);
  shredkv_options_destroy(options);
  shredkv_person_id_t ann;
  CHECK_OK(create_person(store, "ann@example.org", "Ann", &ann, &err), err);
  const size_t len = 64u << 10;
  char* value = malloc(len);
  CHECK(value != NULL);
  memset(value, 'x', len);
  int rc = SHREDKV_OK, written = 0;
  for (int i = 0; i < 200 && rc == SHREDKV_OK; ++i) {
    char key[16];
    snprintf(key, sizeof key, "k%d", i);
    rc = shredkv_put(store, &ann, "blobs", 5, key, strlen(key), value, len, &err);
    if (rc == SHREDKV_OK) ++written;
  }
  free(value);
  CHECK_CODE(rc, SHREDKV_STORE_FULL, err);
  CHECK(written > 0);
  CHECK_EQ_INT(profile_code(store, &ann), SHREDKV_OK); /* earlier data intact */
  CHECK_OK(shredkv_close(store, &err), err);
  CHECK(c_test_rmtree(dir) == 0);
  return 0;
}

static int test_open_error_if_exists_and_read_only(void) {
  char dir[256];
  CHECK(c_test_mkdtemp(dir) == 0);
  char* err = NULL;
  shredkv_store_t* store = NULL;
  shredkv_person_id_t ann, found;
  CHECK_OK(open_store(dir, 1, &store, &err), err);
  CHECK_OK(create_person(store, "ann@example.org", "Ann", &ann, &err), err);
  CHECK_OK(shredkv_close(store, &err), err);

  shredkv_options_t* options = test_options(dir, 1);
  shredkv_options_set_error_if_exists(options, 1);
  store = NULL;
  CHECK_CODE(shredkv_open(options, &store, &err), SHREDKV_ALREADY_EXISTS, err);
  shredkv_options_set_error_if_exists(options, 0);

  /* read_only requires !create_if_missing. */
  shredkv_options_set_read_only(options, 1);
  CHECK_CODE(shredkv_open(options, &store, &err), SHREDKV_INVALID_ARGUMENT, err);
  shredkv_options_set_create_if_missing(options, 0);
  CHECK_OK(shredkv_open(options, &store, &err), err);
  shredkv_options_destroy(options);
  shredkv_identifier_t id = email_id("ann@example.org");
  CHECK_OK(shredkv_resolve(store, &id, &found, &err), err);
  CHECK(memcmp(found.bytes, ann.bytes, 16) == 0);
  shredkv_person_id_t bob;
  CHECK_CODE(create_person(store, "bob@example.org", "Bob", &bob, &err), SHREDKV_READ_ONLY, err);
  CHECK_OK(shredkv_close(store, &err), err);
  CHECK(c_test_rmtree(dir) == 0);
  return 0;
}

/* ---- callbacks: progress, logger, listener ------------------------------------------ */

typedef struct progress_seen {
  int rotate_calls, verify_calls, bad;
} progress_seen;

static void on_progress(void* ctx, const char* operation, uint64_t done, uint64_t total) {
  progress_seen* seen = ctx;
  if (done > total) ++seen->bad;
  if (strcmp(operation, "rotate-keys") == 0) ++seen->rotate_calls;
  if (strcmp(operation, "verify") == 0) ++seen->verify_calls;
}

static int test_progress_callback(void) {
  char dir[256];
  CHECK(c_test_mkdtemp(dir) == 0);
  progress_seen seen = {0, 0, 0};
  shredkv_options_t* options = test_options(dir, 1);
  shredkv_options_set_progress(options, on_progress, &seen);
  char* err = NULL;
  shredkv_store_t* store = NULL;
  CHECK_OK(shredkv_open(options, &store, &err), err);
  shredkv_options_destroy(options);
  shredkv_person_id_t p;
  CHECK_OK(create_person(store, "a@example.org", "A", &p, &err), err);
  CHECK_OK(create_person(store, "b@example.org", "B", &p, &err), err);
  CHECK_EQ_INT(seen.rotate_calls + seen.verify_calls, 0);

  shredkv_rotation_result_t rotation;
  CHECK_OK(shredkv_rotate_epoch(store, &rotation, &err), err);
  CHECK(seen.rotate_calls > 0);
  shredkv_verify_report_t* report = NULL;
  CHECK_OK(shredkv_verify(store, &report, &err), err);
  CHECK(shredkv_verify_report_ok(report));
  shredkv_verify_report_destroy(report);
  CHECK(seen.verify_calls > 0);
  CHECK_EQ_INT(seen.bad, 0);
  CHECK_OK(shredkv_close(store, &err), err);
  CHECK(c_test_rmtree(dir) == 0);
  return 0;
}

typedef struct log_seen {
  int lines, below_min, opened_info, closed_info;
} log_seen;

static void on_log(void* ctx, int level, const char* message) {
  log_seen* seen = ctx;
  ++seen->lines;
  if (level < SHREDKV_LOG_INFO) ++seen->below_min;
  if (level == SHREDKV_LOG_INFO && strstr(message, "opened") != NULL) ++seen->opened_info;
  if (level == SHREDKV_LOG_INFO && strstr(message, "closed") != NULL) ++seen->closed_info;
}

static int test_logger_callback(void) {
  char dir[256];
  CHECK(c_test_mkdtemp(dir) == 0);
  log_seen seen = {0, 0, 0, 0};
  shredkv_options_t* options = test_options(dir, 1);
  shredkv_options_set_logger(options, on_log, &seen, SHREDKV_LOG_INFO);
  char* err = NULL;
  shredkv_store_t* store = NULL;
  CHECK_OK(shredkv_open(options, &store, &err), err);
  shredkv_options_destroy(options);
  CHECK_EQ_INT(seen.opened_info, 1);
  CHECK_EQ_INT(seen.closed_info, 0);
  CHECK_OK(shredkv_close(store, &err), err);
  CHECK_EQ_INT(seen.closed_info, 1);
  CHECK(seen.lines >= 2);
  CHECK_EQ_INT(seen.below_min, 0); /* nothing below min_level */
  CHECK_STR(shredkv_log_level_name(SHREDKV_LOG_INFO), "info");
  CHECK_STR(shredkv_log_level_name(SHREDKV_LOG_DEBUG), "debug");
  CHECK_STR(shredkv_log_level_name(SHREDKV_LOG_ERROR), "error");
  CHECK(c_test_rmtree(dir) == 0);
  return 0;
}

typedef struct listener_seen {
  int committed, purges, purge_failures, max_level, other_errors;
  char request_id[80];
  uint64_t purged_rows;
} listener_seen;

static void on_erasure_committed(void* ctx, const shredkv_receipt_t* receipt) {
  listener_seen* seen = ctx;
  ++seen->committed;
  snprintf(seen->request_id, sizeof seen->request_id, "%s", shredkv_receipt_request_id(receipt));
  if (shredkv_receipt_level(receipt) != SHREDKV_ERASURE_LOGICAL) ++seen->other_errors;
}

static void on_level_reached(void* ctx, const shredkv_receipt_t* receipt) {
  listener_seen* seen = ctx;
  if (shredkv_receipt_level(receipt) > seen->max_level) seen->max_level = shredkv_receipt_level(receipt);
}

static void on_maintenance(void* ctx, int job, unsigned char background, int code, int64_t duration_us,
                           uint64_t done, uint64_t pending) {
  listener_seen* seen = ctx;
  (void)pending;
  if (job != SHREDKV_JOB_PURGE) return;
  ++seen->purges;
  if (code != SHREDKV_OK || background || duration_us < 0) ++seen->purge_failures;
  seen->purged_rows += done;
}

static void on_background_error(void* ctx, int code, const char* message) {
  listener_seen* seen = ctx;
  (void)code;
  (void)message;
  ++seen->other_errors;
}

static int test_listener_callbacks(void) {
  char dir[256];
  CHECK(c_test_mkdtemp(dir) == 0);
  listener_seen seen;
  memset(&seen, 0, sizeof seen);
  shredkv_listener_callbacks_t callbacks = {on_erasure_committed, on_level_reached, on_maintenance,
                                            on_background_error};
  shredkv_options_t* options = test_options(dir, 1);
  shredkv_options_add_listener(options, &callbacks, &seen);
  memset(&callbacks, 0, sizeof callbacks); /* copied by the options */
  char* err = NULL;
  shredkv_store_t* store = NULL;
  CHECK_OK(shredkv_open(options, &store, &err), err);
  shredkv_options_destroy(options);
  shredkv_person_id_t ann;
  CHECK_OK(create_person(store, "ann@example.org", "Ann", &ann, &err), err);
  CHECK_OK(append_event(store, &ann, "visit", T0_MS, NULL, &err), err);

  CHECK_OK(shredkv_erase(store, &ann, 1, "req-listener", 0, SHREDKV_ANALYTICS_KEEP, NULL, &err), err);
  CHECK_EQ_INT(seen.committed, 1);
  CHECK_STR(seen.request_id, "req-listener");
  CHECK_EQ_INT(seen.purges, 0);

  shredkv_purge_result_t purge;
  CHECK_OK(shredkv_purge(store, 100000, &purge, &err), err);
  CHECK(purge.rows_deleted > 0);
  CHECK_EQ_INT(seen.purges, 1);
  CHECK_EQ_INT(seen.purge_failures, 0);
  CHECK_EQ_INT(seen.purged_rows, purge.rows_deleted);

  /* Rotation after the purge: the erasure reaches PURGED. */
  CHECK_OK(shredkv_rotate_epoch(store, NULL, &err), err);
  CHECK_EQ_INT(seen.max_level, SHREDKV_ERASURE_PURGED);
  CHECK_EQ_INT(seen.other_errors, 0);
  CHECK_OK(shredkv_close(store, &err), err);
  CHECK(c_test_rmtree(dir) == 0);
  return 0;
}

/* ---- opening and closing ------------------------------------------------------------ */

static char* malloc_message(const char* text) {
  char* copy = malloc(strlen(text) + 1);
  if (copy != NULL) memcpy(copy, text, strlen(text) + 1);
  return copy;
}

static int test_open_missing_store(void) {
  char dir[256], missing[256];
  CHECK(c_test_mkdtemp(dir) == 0);
  sub_path(missing, dir, "missing");
  shredkv_options_t* options = test_options(missing, 1);
  shredkv_options_set_create_if_missing(options, 0);
  shredkv_store_t* store = NULL;
  char* err = NULL;
  CHECK_EQ_INT(shredkv_open(options, &store, &err), SHREDKV_NOT_FOUND);
  CHECK(err != NULL);
  CHECK(strncmp(err, "NotFound", 8) == 0);

  /* A message already in *errptr is freed and replaced (the leak checker
   * sees the first one otherwise). */
  shredkv_free(err);
  err = malloc_message("a stale message");
  CHECK(err != NULL);
  CHECK_EQ_INT(shredkv_open(options, &store, &err), SHREDKV_NOT_FOUND);
  CHECK(err != NULL && strncmp(err, "NotFound", 8) == 0);
  shredkv_free(err);
  err = NULL;

  /* A NULL errptr is accepted: the code alone. */
  CHECK_EQ_INT(shredkv_open(options, &store, NULL), SHREDKV_NOT_FOUND);

  /* On success *errptr is left alone. */
  shredkv_options_set_create_if_missing(options, 1);
  err = malloc_message("kept");
  CHECK_EQ_INT(shredkv_open(options, &store, &err), SHREDKV_OK);
  CHECK_STR(err, "kept");
  shredkv_free(err);
  err = NULL;
  shredkv_options_destroy(options);
  CHECK_OK(shredkv_close(store, NULL), err);
  CHECK(c_test_rmtree(dir) == 0);
  return 0;
}

static int test_open_wrong_key(void) {
  char dir[256];
  CHECK(c_test_mkdtemp(dir) == 0);
  char* err = NULL;
  shredkv_store_t* store = NULL;
  CHECK_OK(open_store(dir, 1, &store, &err), err);
  CHECK_OK(shredkv_close(store, &err), err);
  store = NULL;
  CHECK_EQ_INT(open_store(dir, 2, &store, &err), SHREDKV_WRONG_KEY);
  CHECK(err != NULL && strncmp(err, "WrongKey", 8) == 0);
  shredkv_free(err);
  err = NULL;
  CHECK_OK(open_store(dir, 1, &store, &err), err); /* the right key still opens it */
  CHECK_OK(shredkv_close(store, &err), err);
  CHECK(c_test_rmtree(dir) == 0);
  return 0;
}

static int test_open_twice_in_process(void) {
  char dir[256];
  CHECK(c_test_mkdtemp(dir) == 0);
  char* err = NULL;
  shredkv_store_t* first = NULL;
  shredkv_store_t* second = NULL;
  CHECK_OK(open_store(dir, 1, &first, &err), err);
  CHECK_CODE(open_store(dir, 1, &second, &err), SHREDKV_FAILED_PRECONDITION, err);
  CHECK_OK(shredkv_close(first, &err), err);
  /* Closed: the directory can be opened again. */
  CHECK_OK(open_store(dir, 1, &second, &err), err);
  CHECK_OK(shredkv_close(second, &err), err);
  CHECK(c_test_rmtree(dir) == 0);
  return 0;
}

static int test_close_null(void) {
  char* err = NULL;
  CHECK_OK(shredkv_close(NULL, &err), err);
  CHECK(err == NULL);
  CHECK_EQ_INT(shredkv_close(NULL, NULL), SHREDKV_OK);
  return 0;
}

/* ---- identifier normalisation ------------------------------------------------------- */

static int test_normalize_identifier(void) {
  char* err = NULL;
  char* out = NULL;
  size_t len = 0;
  shredkv_identifier_t email = email_id("  Ann.Smith@Example.ORG \t");
  CHECK_OK(shredkv_normalize_identifier(NULL, &email, &out, &len, &err), err);
  CHECK_EQ_INT(len, strlen("ann.smith@example.org"));
  CHECK_STR(out, "ann.smith@example.org"); /* NUL-terminated beyond len */
  shredkv_free(out);
  out = NULL;

  shredkv_identifier_t bad = email_id("not-an-email");
  CHECK_CODE(shredkv_normalize_identifier(NULL, &bad, &out, &len, &err), SHREDKV_INVALID_ARGUMENT, err);

  shredkv_identifier_t phone = {"phone", "+1 (555) 010-9999", 17};
  CHECK_OK(shredkv_normalize_identifier(NULL, &phone, &out, &len, &err), err);
  CHECK_STR(out, "+15550109999");
  shredkv_free(out);
  out = NULL;

  /* An application type is known only through the options that add it. */
  shredkv_identifier_t member = {"member_no", " AB-12 ", 7};
  CHECK_CODE(shredkv_normalize_identifier(NULL, &member, &out, &len, &err), SHREDKV_INVALID_ARGUMENT, err);
  shredkv_options_t* options = shredkv_options_create();
  shredkv_options_add_identifier_type(options, "member_no", SHREDKV_NORMALIZE_LOWER_TRIM);
  CHECK_OK(shredkv_normalize_identifier(options, &member, &out, &len, &err), err);
  CHECK_EQ_INT(len, 5);
  CHECK_STR(out, "ab-12");
  shredkv_free(out);
  shredkv_options_destroy(options);
  return 0;
}

/* shredkv_check_new_identifier refuses what normalises but may not become
 * anyone's (a zero-width space in an address, a control character), accepts
 * the ordinary, and knows an application type only through its options. */
static int test_check_new_identifier(void) {
  char* err = NULL;
  char* out = NULL;
  size_t len = 0;
  shredkv_identifier_t fine = email_id("  Ann.Smith@Example.ORG ");
  CHECK_OK(shredkv_check_new_identifier(NULL, &fine, &err), err);
  CHECK(err == NULL);

  shredkv_identifier_t hidden = email_id("ann\xE2\x80\x8B@example.org"); /* U+200B ZERO WIDTH SPACE */
  CHECK_OK(shredkv_normalize_identifier(NULL, &hidden, &out, &len, &err), err);
  shredkv_free(out);
  out = NULL;
  CHECK_EQ_INT(shredkv_check_new_identifier(NULL, &hidden, &err), SHREDKV_INVALID_ARGUMENT);
  CHECK(err != NULL && strstr(err, "invisible") != NULL);
  shredkv_free(err);
  err = NULL;

  shredkv_identifier_t control = {"customer_id", "c-1\x01", 4};
  CHECK_EQ_INT(shredkv_check_new_identifier(NULL, &control, &err), SHREDKV_INVALID_ARGUMENT);
  CHECK(err != NULL && strstr(err, "control character") != NULL);
  shredkv_free(err);
  err = NULL;

  shredkv_identifier_t bad = email_id("not-an-email");
  CHECK_CODE(shredkv_check_new_identifier(NULL, &bad, &err), SHREDKV_INVALID_ARGUMENT, err);

  shredkv_identifier_t member = {"member_no", " AB-12 ", 7};
  CHECK_CODE(shredkv_check_new_identifier(NULL, &member, &err), SHREDKV_INVALID_ARGUMENT, err);
  shredkv_options_t* options = shredkv_options_create();
  shredkv_options_add_identifier_type(options, "member_no", SHREDKV_NORMALIZE_LOWER_TRIM);
  CHECK_OK(shredkv_check_new_identifier(options, &member, &err), err);
  shredkv_options_destroy(options);
  return 0;
}

/* ---- erasure ------------------------------------------------------------------------ */

/* Opens a store in `dir` whose clock reads *now. */
static int open_clocked(const char* dir, int64_t* now, shredkv_store_t** out, char** err) {
  shredkv_options_t* options = test_options(dir, 1);
  shredkv_options_set_clock(options, test_clock, now);
  const int rc = shredkv_open(options, out, err);
  shredkv_options_destroy(options);
  return rc;
}

static int test_erase_receipt(void) {
  char dir[256];
  CHECK(c_test_mkdtemp(dir) == 0);
  int64_t now = T0_MS;
  char* err = NULL;
  shredkv_store_t* store = NULL;
  CHECK_OK(open_clocked(dir, &now, &store, &err), err);
  shredkv_person_id_t ann, bob, carl, dave;
  CHECK_OK(create_person(store, "ann@example.org", "Ann", &ann, &err), err);
  CHECK_OK(create_person(store, "bob@example.org", "Bob", &bob, &err), err);
  CHECK_OK(create_person(store, "carl@example.org", "Carl", &carl, &err), err);
  CHECK_OK(create_person(store, "dave@example.org", "Dave", &dave, &err), err);
  now += 1000;

  shredkv_receipt_t* receipt = NULL;
  CHECK_OK(shredkv_erase(store, &ann, 1, "req-ann-1", 0, SHREDKV_ANALYTICS_UNLINK, &receipt, &err), err);
  CHECK_STR(shredkv_receipt_request_id(receipt), "req-ann-1");
  CHECK_EQ_INT(shredkv_receipt_erased_at_ms(receipt), T0_MS + 1000);
  CHECK_EQ_INT(shredkv_receipt_people(receipt), 1);
  CHECK_EQ_INT(shredkv_receipt_analytics(receipt), SHREDKV_ANALYTICS_UNLINK);
  CHECK_STR(shredkv_analytics_on_erase_name(shredkv_receipt_analytics(receipt)), "unlink");
  CHECK_EQ_INT(shredkv_receipt_suppressed(receipt), 0);
  CHECK_EQ_INT(shredkv_receipt_level(receipt), SHREDKV_ERASURE_LOGICAL);
  CHECK_STR(shredkv_erasure_level_name(shredkv_receipt_level(receipt)), "logical");
  CHECK_EQ_INT(shredkv_receipt_cryptographic(receipt), 0);
  CHECK_EQ_INT(shredkv_receipt_purged(receipt), 0);
  CHECK(shredkv_receipt_key_epoch(receipt) >= 1);
  const char* hash = shredkv_receipt_audit_hash(receipt);
  CHECK(hash != NULL && strlen(hash) > 0 && is_hex(hash, strlen(hash)));
  CHECK_STR(shredkv_receipt_category(receipt), ""); /* a whole person */
  shredkv_receipt_destroy(receipt);

  /* The erased person reads as erased; erasing again is refused. */
  CHECK_EQ_INT(profile_code(store, &ann), SHREDKV_ERASED);
  CHECK_CODE(shredkv_erase(store, &ann, 1, "req-ann-2", 0, SHREDKV_ANALYTICS_KEEP, NULL, &err), SHREDKV_ERASED, err);

  /* A reused request id: AlreadyExists, and nobody is erased. */
  CHECK_CODE(shredkv_erase(store, &bob, 1, "req-ann-1", 0, SHREDKV_ANALYTICS_KEEP, NULL, &err),
             SHREDKV_ALREADY_EXISTS, err);
  CHECK_EQ_INT(profile_code(store, &bob), SHREDKV_OK);

  /* GetErasure finds the request by its id. */
  CHECK_OK(shredkv_get_erasure(store, "req-ann-1", &receipt, &err), err);
  CHECK_STR(shredkv_receipt_request_id(receipt), "req-ann-1");
  CHECK_EQ_INT(shredkv_receipt_people(receipt), 1);
  shredkv_receipt_destroy(receipt);
  CHECK_CODE(shredkv_get_erasure(store, "req-unknown", &receipt, &err), SHREDKV_NOT_FOUND, err);

  /* Two people in one request; no request id: a random one. */
  const shredkv_person_id_t pair[2] = {bob, carl};
  CHECK_OK(shredkv_erase(store, pair, 2, NULL, 0, SHREDKV_ANALYTICS_DELETE, &receipt, &err), err);
  CHECK_EQ_INT(shredkv_receipt_people(receipt), 2);
  CHECK(strlen(shredkv_receipt_request_id(receipt)) > 0);
  CHECK_EQ_INT(shredkv_receipt_analytics(receipt), SHREDKV_ANALYTICS_DELETE);
  shredkv_receipt_destroy(receipt);
  CHECK_EQ_INT(profile_code(store, &bob), SHREDKV_ERASED);
  CHECK_EQ_INT(profile_code(store, &carl), SHREDKV_ERASED);
  /* out may be NULL. */
  CHECK_OK(shredkv_erase(store, &dave, 1, "", 0, SHREDKV_ANALYTICS_KEEP, NULL, &err), err);
  CHECK_EQ_INT(profile_code(store, &dave), SHREDKV_ERASED);
  CHECK_OK(shredkv_close(store, &err), err);
  CHECK(c_test_rmtree(dir) == 0);
  return 0;
}

static int test_erase_by_identifier_suppress(void) {
  char dir[256];
  CHECK(c_test_mkdtemp(dir) == 0);
  char* err = NULL;
  shredkv_store_t* store = NULL;
  CHECK_OK(open_store(dir, 1, &store, &err), err);
  shredkv_person_id_t carl, found, again;
  CHECK_OK(create_person(store, "carl@example.org", "Carl", &carl, &err), err);
  shredkv_identifier_t id = email_id("carl@example.org");
  shredkv_identifier_t unknown = email_id("nobody@example.org");
  CHECK_CODE(shredkv_erase_by_identifier(store, &unknown, "req-nobody", 1, SHREDKV_ANALYTICS_KEEP, NULL, &err),
             SHREDKV_NOT_FOUND, err);

  shredkv_receipt_t* receipt = NULL;
  CHECK_OK(shredkv_erase_by_identifier(store, &id, "req-carl", 1, SHREDKV_ANALYTICS_KEEP, &receipt, &err), err);
  CHECK_STR(shredkv_receipt_request_id(receipt), "req-carl");
  CHECK_EQ_INT(shredkv_receipt_people(receipt), 1);
  CHECK_EQ_INT(shredkv_receipt_suppressed(receipt), 1);
  shredkv_receipt_destroy(receipt);
  CHECK_EQ_INT(profile_code(store, &carl), SHREDKV_ERASED);

  /* Suppressed: the identifier resolves to nobody and cannot come back,
   * also not spelt differently. */
  CHECK_CODE(shredkv_resolve(store, &id, &found, &err), SHREDKV_SUPPRESSED, err);
  CHECK_CODE(shredkv_create_person(store, &id, 1, NULL, &again, &err), SHREDKV_SUPPRESSED, err);
  shredkv_identifier_t shouted = email_id(" CARL@Example.org");
  CHECK_CODE(shredkv_create_person(store, &shouted, 1, NULL, &again, &err), SHREDKV_SUPPRESSED, err);
  shredkv_stats_t* stats = NULL;
  uint64_t suppressed = 0;
  CHECK_OK(shredkv_get_stats(store, &stats, &err), err);
  CHECK_EQ_INT(shredkv_stats_get(stats, "suppressed", &suppressed), SHREDKV_OK);
  CHECK_EQ_INT(suppressed, 1);
  /* The store ID (stop 28): 32 hex digits, not among the numeric fields. */
  const char* store_id = shredkv_stats_store_id(stats);
  CHECK(store_id != NULL && strlen(store_id) == 32 && strspn(store_id, "0123456789abcdef") == 32);
  CHECK_EQ_INT(shredkv_stats_get(stats, "store_id", &suppressed), SHREDKV_NOT_FOUND);
  shredkv_stats_destroy(stats);

  /* Unsuppressed: free again, for a new person. */
  CHECK_OK(shredkv_unsuppress(store, &id, &err), err);
  const int resolved = shredkv_resolve(store, &id, &found, &err); /* the erased person's entry may remain */
  shredkv_free(err);
  err = NULL;
  CHECK(resolved == SHREDKV_NOT_FOUND || resolved == SHREDKV_ERASED);
  CHECK_OK(shredkv_create_person(store, &id, 1, NULL, &again, &err), err);
  CHECK(memcmp(again.bytes, carl.bytes, 16) != 0);
  CHECK_OK(shredkv_resolve(store, &id, &found, &err), err);
  CHECK(memcmp(found.bytes, again.bytes, 16) == 0);
  CHECK_CODE(shredkv_unsuppress(store, &id, &err), SHREDKV_NOT_FOUND, err); /* not suppressed now */
  CHECK_OK(shredkv_close(store, &err), err);
  CHECK(c_test_rmtree(dir) == 0);
  return 0;
}

static int test_erase_category(void) {
  char dir[256];
  CHECK(c_test_mkdtemp(dir) == 0);
  char* err = NULL;
  shredkv_store_t* store = NULL;
  CHECK_OK(open_store(dir, 1, &store, &err), err);
  shredkv_person_id_t ann;
  CHECK_OK(create_person(store, "ann@example.org", "Ann", &ann, &err), err);
  shredkv_receipt_t* receipt = NULL;
  /* Nothing held in the category yet. */
  CHECK_CODE(shredkv_erase_category(store, &ann, "location", "req-loc-0", SHREDKV_ANALYTICS_KEEP, NULL, &err),
             SHREDKV_NOT_FOUND, err);
  CHECK_OK(append_event(store, &ann, "checkin", T0_MS, "location", &err), err);
  CHECK_OK(append_event(store, &ann, "click", T0_MS + 1, NULL, &err), err);
  CHECK_EQ_INT(count_events(store, &ann), 2);

  CHECK_OK(shredkv_erase_category(store, &ann, "location", "req-loc", SHREDKV_ANALYTICS_DELETE, &receipt, &err),
           err);
  CHECK_STR(shredkv_receipt_category(receipt), "location");
  CHECK_STR(shredkv_receipt_request_id(receipt), "req-loc");
  CHECK_EQ_INT(shredkv_receipt_level(receipt), SHREDKV_ERASURE_LOGICAL);
  CHECK_EQ_INT(shredkv_receipt_analytics(receipt), SHREDKV_ANALYTICS_DELETE);
  CHECK_EQ_INT(shredkv_receipt_suppressed(receipt), 0);
  shredkv_receipt_destroy(receipt);

  /* The location event is gone, the rest of the person is intact. */
  shredkv_iterator_t* it = shredkv_scan_events(store, &ann, INT64_MIN, INT64_MAX);
  CHECK(shredkv_iter_valid(it));
  CHECK_STR(shredkv_event_name(shredkv_iter_event(it)), "click");
  shredkv_iter_next(it);
  CHECK(!shredkv_iter_valid(it));
  CHECK_OK(shredkv_iter_status(it, &err), err);
  shredkv_iter_destroy(it);
  CHECK_EQ_INT(profile_code(store, &ann), SHREDKV_OK);

  CHECK_CODE(shredkv_erase_category(store, &ann, "location", "req-loc-2", SHREDKV_ANALYTICS_KEEP, NULL, &err),
             SHREDKV_ERASED, err);
  CHECK_CODE(shredkv_erase_category(store, &ann, "general", "req-gen", SHREDKV_ANALYTICS_KEEP, NULL, &err),
             SHREDKV_INVALID_ARGUMENT, err);
  CHECK_CODE(shredkv_erase_category(store, &ann, "no_such_category", "req-x", SHREDKV_ANALYTICS_KEEP, NULL, &err),
             SHREDKV_INVALID_ARGUMENT, err);
  /* A new location item gets a new key; a reused request id is refused
   * and erases nothing. */
  CHECK_OK(append_event(store, &ann, "checkin", T0_MS + 2, "location", &err), err);
  CHECK_CODE(shredkv_erase_category(store, &ann, "location", "req-loc", SHREDKV_ANALYTICS_KEEP, NULL, &err),
             SHREDKV_ALREADY_EXISTS, err);
  CHECK_EQ_INT(count_events(store, &ann), 2);
  CHECK_OK(shredkv_get_erasure(store, "req-loc", &receipt, &err), err);
  CHECK_STR(shredkv_receipt_category(receipt), "location");
  shredkv_receipt_destroy(receipt);
  CHECK_OK(shredkv_close(store, &err), err);
  CHECK(c_test_rmtree(dir) == 0);
  return 0;
}

static int test_erasure_reaches_purged(void) {
  char dir[256];
  CHECK(c_test_mkdtemp(dir) == 0);
  char* err = NULL;
  shredkv_store_t* store = NULL;
  CHECK_OK(open_store(dir, 1, &store, &err), err);
  shredkv_person_id_t ann, bob;
  CHECK_OK(create_person(store, "ann@example.org", "Ann", &ann, &err), err);
  CHECK_OK(create_person(store, "bob@example.org", "Bob", &bob, &err), err);
  for (int i = 0; i < 3; ++i) CHECK_OK(append_event(store, &ann, "visit", T0_MS + i, NULL, &err), err);
  CHECK_OK(shredkv_put(store, &ann, "notes", 5, "n1", 2, "hello", 5, &err), err);
  shredkv_receipt_t* receipt = NULL;
  CHECK_OK(shredkv_erase(store, &ann, 1, "req-purge", 0, SHREDKV_ANALYTICS_KEEP, &receipt, &err), err);
  const uint64_t epoch = shredkv_receipt_key_epoch(receipt);
  shredkv_receipt_destroy(receipt);

  /* Purged, not yet cryptographic: the level waits for both. */
  shredkv_purge_result_t purge;
  CHECK_OK(shredkv_purge(store, 100000, &purge, &err), err);
  CHECK(purge.rows_deleted > 0);
  CHECK_EQ_INT(purge.people_purged, 1);
  CHECK_EQ_INT(purge.people_pending, 0);
  CHECK_OK(shredkv_get_erasure(store, "req-purge", &receipt, &err), err);
  CHECK_EQ_INT(shredkv_receipt_purged(receipt), 1);
  CHECK_EQ_INT(shredkv_receipt_cryptographic(receipt), 0);
  CHECK(shredkv_receipt_level(receipt) < SHREDKV_ERASURE_PURGED);
  shredkv_receipt_destroy(receipt);

  shredkv_rotation_result_t rotation;
  CHECK_OK(shredkv_rotate_epoch(store, &rotation, &err), err);
  CHECK(rotation.new_epoch > epoch);
  CHECK_OK(shredkv_get_erasure(store, "req-purge", &receipt, &err), err);
  CHECK_EQ_INT(shredkv_receipt_level(receipt), SHREDKV_ERASURE_PURGED);
  CHECK_STR(shredkv_erasure_level_name(shredkv_receipt_level(receipt)), "purged");
  CHECK_EQ_INT(shredkv_receipt_cryptographic(receipt), 1);
  CHECK_EQ_INT(shredkv_receipt_purged(receipt), 1);
  CHECK_EQ_INT(shredkv_receipt_key_epoch(receipt), epoch);
  shredkv_receipt_destroy(receipt);
  CHECK_EQ_INT(profile_code(store, &bob), SHREDKV_OK); /* the others keep their data */
  CHECK_OK(shredkv_close(store, &err), err);
  CHECK(c_test_rmtree(dir) == 0);
  return 0;
}

/* ---- housekeeping ----------------------------------------------------------------------- */

static int test_housekeeping_results(void) {
  char dir[256];
  CHECK(c_test_mkdtemp(dir) == 0);
  char* err = NULL;
  shredkv_store_t* store = NULL;
  CHECK_OK(open_store(dir, 1, &store, &err), err);
  shredkv_person_id_t ann, bob;
  CHECK_OK(create_person(store, "ann@example.org", "Ann", &ann, &err), err);
  CHECK_OK(create_person(store, "bob@example.org", "Bob", &bob, &err), err);
  for (int i = 0; i < 20; ++i) CHECK_OK(append_event(store, &ann, "visit", T0_MS + i, NULL, &err), err);
  CHECK_OK(shredkv_erase(store, &ann, 1, "req-hk", 0, SHREDKV_ANALYTICS_DELETE, NULL, &err), err);

  /* Purge: a budget of 1 row leaves work pending; the rest finishes it. */
  shredkv_purge_result_t purge;
  memset(&purge, 0, sizeof purge);
  CHECK_OK(shredkv_purge(store, 1, &purge, &err), err);
  CHECK_EQ_INT(purge.people_purged, 0);
  CHECK_EQ_INT(purge.people_pending, 1);
  CHECK_OK(shredkv_purge(store, 100000, &purge, &err), err);
  CHECK(purge.rows_deleted > 0);
  CHECK_EQ_INT(purge.people_purged, 1);
  CHECK_EQ_INT(purge.people_pending, 0);
  CHECK_OK(shredkv_purge(store, 100000, &purge, &err), err);
  CHECK_EQ_INT(purge.rows_deleted, 0);
  CHECK_OK(shredkv_purge(store, 100000, NULL, &err), err); /* out may be NULL */

  /* Rotation: a new epoch, the old ones destroyed. */
  shredkv_stats_t* stats = NULL;
  uint64_t epoch_before = 0;
  CHECK_OK(shredkv_get_stats(store, &stats, &err), err);
  CHECK_EQ_INT(shredkv_stats_get(stats, "key_epoch", &epoch_before), SHREDKV_OK);
  shredkv_stats_destroy(stats);
  shredkv_rotation_result_t rotation;
  memset(&rotation, 0, sizeof rotation);
  CHECK_OK(shredkv_rotate_epoch(store, &rotation, &err), err);
  CHECK(rotation.new_epoch > epoch_before);
  CHECK(rotation.destroyed_epochs >= 1);
  CHECK(rotation.rewrapped_keys >= 1); /* bob's */
  CHECK(rotation.batches >= 1);
  CHECK(rotation.keys_file_bytes_before > 0);
  CHECK(rotation.keys_file_bytes_after > 0);
  CHECK_OK(shredkv_get_stats(store, &stats, &err), err);
  uint64_t epoch_after = 0;
  CHECK_EQ_INT(shredkv_stats_get(stats, "key_epoch", &epoch_after), SHREDKV_OK);
  CHECK_EQ_INT(epoch_after, rotation.new_epoch);
  shredkv_stats_destroy(stats);

  /* Compaction: both sizes reported. */
  uint64_t before = 0, after = 0;
  CHECK_OK(shredkv_compact_data(store, &before, &after, &err), err);
  CHECK(before > 0);
  CHECK(after > 0);
  CHECK_OK(shredkv_compact_data(store, NULL, NULL, &err), err);

  CHECK_OK(shredkv_run_maintenance(store, &err), err);
  CHECK_EQ_INT(profile_code(store, &bob), SHREDKV_OK);
  CHECK_STR(shredkv_maintenance_job_name(SHREDKV_JOB_PURGE), "purge");
  CHECK_STR(shredkv_maintenance_job_name(SHREDKV_JOB_ORPHAN_KEYS), "orphan_keys");
  CHECK_STR(shredkv_maintenance_job_name(99), "unknown");
  CHECK_OK(shredkv_close(store, &err), err);
  CHECK(c_test_rmtree(dir) == 0);
  return 0;
}

/* ---- stats --------------------------------------------------------------------------------- */

static long find_operation(const shredkv_stats_t* stats, const char* name) {
  for (size_t i = 0; i < shredkv_stats_operation_count(stats); ++i) {
    if (strcmp(shredkv_stats_operation_name(stats, i), name) == 0) return (long)i;
  }
  return -1;
}

static int test_stats(void) {
  char dir[256];
  CHECK(c_test_mkdtemp(dir) == 0);
  char* err = NULL;
  shredkv_store_t* store = NULL;
  CHECK_OK(open_store(dir, 1, &store, &err), err);
  shredkv_person_id_t p, found;
  CHECK_OK(create_person(store, "a@example.org", "A", &p, &err), err);
  CHECK_OK(create_person(store, "b@example.org", "B", &p, &err), err);
  CHECK_OK(create_person(store, "c@example.org", "C", &p, &err), err);
  shredkv_identifier_t id = email_id("c@example.org");
  shredkv_identifier_t unknown = email_id("nobody@example.org");
  CHECK_OK(shredkv_resolve(store, &id, &found, &err), err);
  CHECK_OK(shredkv_resolve(store, &id, &found, &err), err);
  CHECK_CODE(shredkv_resolve(store, &unknown, &found, &err), SHREDKV_NOT_FOUND, err);

  shredkv_stats_t* stats = NULL;
  CHECK_OK(shredkv_get_stats(store, &stats, &err), err);
  const size_t n = shredkv_stats_field_count(stats);
  CHECK(n > 0);
  int people_listed = 0;
  for (size_t i = 0; i < n; ++i) {
    const char* name = shredkv_stats_field_name(stats, i);
    CHECK(name != NULL && name[0] != '\0');
    uint64_t value = 0;
    CHECK_EQ_INT(shredkv_stats_get(stats, name, &value), SHREDKV_OK);
    CHECK_EQ_INT(value, shredkv_stats_field_value(stats, i));
    if (strcmp(name, "people") == 0) {
      ++people_listed;
      CHECK_EQ_INT(shredkv_stats_field_value(stats, i), 3);
    }
  }
  CHECK_EQ_INT(people_listed, 1);
  uint64_t value = 0;
  CHECK_EQ_INT(shredkv_stats_get(stats, "people", &value), SHREDKV_OK);
  CHECK_EQ_INT(value, 3);
  CHECK_EQ_INT(shredkv_stats_get(stats, "identifiers", &value), SHREDKV_OK);
  CHECK_EQ_INT(value, 3);
  CHECK_EQ_INT(shredkv_stats_get(stats, "no_such_field", &value), SHREDKV_NOT_FOUND);

  /* Operations: names, calls, errors (NotFound counts), latencies. */
  CHECK(shredkv_stats_operation_count(stats) > 0);
  for (size_t i = 0; i < shredkv_stats_operation_count(stats); ++i) {
    const char* name = shredkv_stats_operation_name(stats, i);
    CHECK(name != NULL && name[0] != '\0');
    CHECK(shredkv_stats_operation_errors(stats, i) <= shredkv_stats_operation_calls(stats, i));
  }
  CHECK(find_operation(stats, "write") >= 0);
  const long resolve = find_operation(stats, "resolve");
  CHECK(resolve >= 0);
  CHECK_EQ_INT(shredkv_stats_operation_calls(stats, (size_t)resolve), 3);
  CHECK_EQ_INT(shredkv_stats_operation_errors(stats, (size_t)resolve), 1);
  const uint64_t total = shredkv_stats_operation_total_us(stats, (size_t)resolve);
  const uint64_t median = shredkv_stats_operation_quantile_us(stats, (size_t)resolve, 0.5);
  const uint64_t max = shredkv_stats_operation_quantile_us(stats, (size_t)resolve, 1.0);
  CHECK(median > 0);
  CHECK(median <= max);
  CHECK(max <= 2 * total + 2); /* an upper bound within a factor of two */
  /* The histogram: every call in one bucket. */
  const size_t buckets = shredkv_latency_bucket_count();
  CHECK(buckets > 1);
  uint64_t bucketed = 0;
  for (size_t b = 0; b < buckets; ++b) bucketed += shredkv_stats_operation_bucket(stats, (size_t)resolve, b);
  CHECK_EQ_INT(bucketed, 3);
  const long verify = find_operation(stats, "verify");
  CHECK(verify >= 0);
  CHECK_EQ_INT(shredkv_stats_operation_calls(stats, (size_t)verify), 0);
  CHECK_EQ_INT(shredkv_stats_operation_total_us(stats, (size_t)verify), 0);
  CHECK_EQ_INT(shredkv_stats_operation_quantile_us(stats, (size_t)verify, 0.99), 0); /* no calls */
  shredkv_stats_destroy(stats);
  CHECK_OK(shredkv_close(store, &err), err);
  CHECK(c_test_rmtree(dir) == 0);
  return 0;
}

/* ---- audit and verification ---------------------------------------------------------------- */

static int test_audit_log(void) {
  char dir[256];
  CHECK(c_test_mkdtemp(dir) == 0);
  int64_t now = T0_MS;
  char* err = NULL;
  shredkv_store_t* store = NULL;
  CHECK_OK(open_clocked(dir, &now, &store, &err), err);
  shredkv_person_id_t ann, bob;
  CHECK_OK(create_person(store, "ann@example.org", "Ann", &ann, &err), err);
  CHECK_OK(create_person(store, "bob@example.org", "Bob", &bob, &err), err);

  /* The audit subject: 32 hex digits, stable, only while the person exists. */
  char* subject = NULL;
  char* subject_again = NULL;
  CHECK_OK(shredkv_audit_subject_of(store, &ann, &subject, &err), err);
  CHECK(is_hex(subject, 32));
  CHECK_OK(shredkv_audit_subject_of(store, &ann, &subject_again, &err), err);
  CHECK_STR(subject, subject_again);
  shredkv_free(subject_again);
  CHECK_OK(shredkv_audit_subject_of(store, &bob, &subject_again, &err), err);
  CHECK(is_hex(subject_again, 32));
  CHECK(strcmp(subject, subject_again) != 0);
  shredkv_free(subject_again);
  shredkv_free(subject);

  now += 5000;
  shredkv_receipt_t* receipt = NULL;
  CHECK_OK(shredkv_erase(store, &ann, 1, "req-audit", 0, SHREDKV_ANALYTICS_UNLINK, &receipt, &err), err);
  char erase_hash[200];
  snprintf(erase_hash, sizeof erase_hash, "%s", shredkv_receipt_audit_hash(receipt));
  shredkv_receipt_destroy(receipt);
  CHECK_CODE(shredkv_audit_subject_of(store, &ann, &subject, &err), SHREDKV_ERASED, err);
  CHECK_OK(shredkv_rotate_epoch(store, NULL, &err), err);

  uint64_t entries = 0;
  unsigned char intact = 0;
  char* head = NULL;
  char* problem = NULL;
  CHECK_OK(shredkv_verify_audit_log(store, &entries, &intact, &head, &problem, &err), err);
  CHECK(entries >= 2); /* the erasure and the rotation */
  CHECK_EQ_INT(intact, 1);
  CHECK(head != NULL && strlen(head) > 0 && is_hex(head, strlen(head)));
  CHECK_STR(problem, "");
  shredkv_free(problem);
  CHECK_OK(shredkv_verify_audit_log(store, NULL, &intact, NULL, NULL, &err), err); /* may be NULL */
  CHECK_EQ_INT(intact, 1);

  shredkv_audit_list_t* list = NULL;
  CHECK_OK(shredkv_read_audit(store, 0, 1000, &list, &err), err);
  const size_t count = shredkv_audit_list_count(list);
  CHECK_EQ_INT(count, entries);
  int erases = 0, others = 0;
  for (size_t i = 0; i < count; ++i) {
    CHECK_EQ_INT(shredkv_audit_seq(list, i), i + 1);
    CHECK(shredkv_audit_time_ms(list, i) >= T0_MS);
    const char* hash = shredkv_audit_hash(list, i);
    CHECK(hash != NULL && strlen(hash) > 0 && is_hex(hash, strlen(hash)));
    const int action = shredkv_audit_action(list, i);
    if (action == SHREDKV_AUDIT_ERASE) {
      ++erases;
      CHECK_STR(shredkv_audit_action_name(action), "erase");
      CHECK_STR(shredkv_audit_request_id(list, i), "req-audit");
      CHECK_EQ_INT(shredkv_audit_time_ms(list, i), T0_MS + 5000);
      CHECK_EQ_INT(shredkv_audit_count1(list, i), 1); /* people */
      CHECK_EQ_INT(shredkv_audit_count2(list, i), 0); /* not suppressed */
      CHECK_EQ_INT(shredkv_audit_analytics(list, i), SHREDKV_ANALYTICS_UNLINK);
      CHECK_STR(shredkv_audit_purpose(list, i), "");
      CHECK_STR(shredkv_audit_subject(list, i), "");
      CHECK_STR(hash, erase_hash); /* the receipt's audit hash */
    } else {
      ++others;
      CHECK_EQ_INT(shredkv_audit_analytics(list, i), -1); /* not an erasure */
      CHECK_STR(shredkv_audit_request_id(list, i), "");
      if (action == SHREDKV_AUDIT_ROTATION) CHECK_STR(shredkv_audit_action_name(action), "rotation");
    }
  }
  CHECK_EQ_INT(erases, 1);
  CHECK(others >= 1);
  CHECK_STR(shredkv_audit_hash(list, count - 1), head); /* the head of the chain */
  shredkv_audit_list_destroy(list);
  shredkv_free(head);

  /* Paging: after the first entry, one entry. */
  CHECK_OK(shredkv_read_audit(store, 1, 1, &list, &err), err);
  CHECK_EQ_INT(shredkv_audit_list_count(list), 1);
  CHECK_EQ_INT(shredkv_audit_seq(list, 0), 2);
  shredkv_audit_list_destroy(list);
  CHECK_STR(shredkv_audit_action_name(SHREDKV_AUDIT_ERASE_CATEGORY), "erase_category");
  CHECK_STR(shredkv_audit_action_name(0), "unknown");
  CHECK_OK(shredkv_close(store, &err), err);
  CHECK(c_test_rmtree(dir) == 0);
  return 0;
}

static int test_verify_report(void) {
  char dir[256];
  CHECK(c_test_mkdtemp(dir) == 0);
  char* err = NULL;
  shredkv_store_t* store = NULL;
  CHECK_OK(open_store(dir, 1, &store, &err), err);
  shredkv_person_id_t a, b, c;
  CHECK_OK(create_person(store, "a@example.org", "A", &a, &err), err);
  CHECK_OK(create_person(store, "b@example.org", "B", &b, &err), err);
  CHECK_OK(create_person(store, "c@example.org", "C", &c, &err), err);
  CHECK_OK(append_event(store, &a, "visit", T0_MS, NULL, &err), err);
  CHECK_OK(append_event(store, &b, "visit", T0_MS, NULL, &err), err);
  CHECK_OK(shredkv_put(store, &c, "notes", 5, "n1", 2, "v", 1, &err), err);

  shredkv_verify_report_t* report = NULL;
  CHECK_OK(shredkv_verify(store, &report, &err), err);
  CHECK_EQ_INT(shredkv_verify_report_ok(report), 1);
  CHECK_EQ_INT(shredkv_verify_report_problem_count(report), 0);
  for (size_t i = 0; i < shredkv_verify_report_problem_count(report); ++i) {
    fprintf(stderr, "unexpected problem: %s\n", shredkv_verify_report_problem(report, i));
  }
  uint64_t value = 99;
  CHECK_EQ_INT(shredkv_verify_report_get(report, "people", &value), SHREDKV_OK);
  CHECK_EQ_INT(value, 3);
  CHECK_EQ_INT(shredkv_verify_report_get(report, "identifiers", &value), SHREDKV_OK);
  CHECK_EQ_INT(value, 3);
  CHECK_EQ_INT(shredkv_verify_report_get(report, "events", &value), SHREDKV_OK);
  CHECK_EQ_INT(value, 2);
  CHECK_EQ_INT(shredkv_verify_report_get(report, "records", &value), SHREDKV_OK);
  CHECK_EQ_INT(value, 1);
  CHECK_EQ_INT(shredkv_verify_report_get(report, "pages", &value), SHREDKV_OK);
  CHECK(value > 0);
  CHECK_EQ_INT(shredkv_verify_report_get(report, "problem_count", &value), SHREDKV_OK);
  CHECK_EQ_INT(value, 0);
  const char* names[] = {"analytics_rows", "audit_entries", "orphan_keys"};
  for (size_t i = 0; i < 3; ++i) CHECK_EQ_INT(shredkv_verify_report_get(report, names[i], &value), SHREDKV_OK);
  CHECK_EQ_INT(shredkv_verify_report_get(report, "no_such_count", &value), SHREDKV_NOT_FOUND);
  shredkv_verify_report_destroy(report);
  CHECK_OK(shredkv_close(store, &err), err);
  CHECK(c_test_rmtree(dir) == 0);
  return 0;
}

/* ---- backups, the erasure log, restores ------------------------------------------------------ */

static int same_person(const shredkv_person_id_t* a, const shredkv_person_id_t* b) {
  return memcmp(a->bytes, b->bytes, 16) == 0;
}

static int test_backup_info(void) {
  char dir[256], live[256], backup[256];
  CHECK(c_test_mkdtemp(dir) == 0);
  sub_path(live, dir, "live");
  sub_path(backup, dir, "backup");
  int64_t now = T0_MS;
  char* err = NULL;
  shredkv_store_t* store = NULL;
  CHECK_OK(open_clocked(live, &now, &store, &err), err);
  shredkv_person_id_t p;
  CHECK_OK(create_person(store, "a@example.org", "A", &p, &err), err);
  CHECK_OK(create_person(store, "b@example.org", "B", &p, &err), err);
  now += 60000;

  shredkv_backup_info_t* info = NULL;
  CHECK_OK(shredkv_backup(store, backup, &info, &err), err);
  CHECK_STR(shredkv_backup_info_directory(info), backup);
  CHECK(is_hex(shredkv_backup_info_store_id(info), 32));
  CHECK_EQ_INT(shredkv_backup_info_created_ms(info), T0_MS + 60000);
  CHECK(shredkv_backup_info_current_epoch(info) >= 1);
  CHECK(shredkv_backup_info_oldest_epoch(info) >= 1);
  CHECK(shredkv_backup_info_oldest_epoch(info) <= shredkv_backup_info_current_epoch(info));
  CHECK_EQ_INT(shredkv_backup_info_people(info), 2);
  CHECK(shredkv_backup_info_keys_bytes(info) > 0);
  CHECK(shredkv_backup_info_data_bytes(info) > 0);
  CHECK_EQ_INT(shredkv_backup_info_custody_label_count(info), 0); /* no custody */
  for (size_t i = 0; i < shredkv_backup_info_custody_label_count(info); ++i) {
    CHECK(shredkv_backup_info_custody_label(info, i) != NULL);
  }

  /* The MANIFEST says the same. */
  shredkv_backup_info_t* read = NULL;
  CHECK_OK(shredkv_read_backup_info(backup, &read, &err), err);
  CHECK_STR(shredkv_backup_info_store_id(read), shredkv_backup_info_store_id(info));
  CHECK_EQ_INT(shredkv_backup_info_created_ms(read), shredkv_backup_info_created_ms(info));
  CHECK_EQ_INT(shredkv_backup_info_current_epoch(read), shredkv_backup_info_current_epoch(info));
  CHECK_EQ_INT(shredkv_backup_info_oldest_epoch(read), shredkv_backup_info_oldest_epoch(info));
  CHECK_EQ_INT(shredkv_backup_info_people(read), 2);
  CHECK_EQ_INT(shredkv_backup_info_keys_bytes(read), shredkv_backup_info_keys_bytes(info));
  CHECK_EQ_INT(shredkv_backup_info_data_bytes(read), shredkv_backup_info_data_bytes(info));
  CHECK_EQ_INT(shredkv_backup_info_custody_label_count(read), 0);
  shredkv_backup_info_destroy(read);
  shredkv_backup_info_destroy(info);

  /* Not into a directory that holds something; out may be NULL. */
  CHECK_CODE(shredkv_backup(store, backup, NULL, &err), SHREDKV_ALREADY_EXISTS, err);
  char second[256];
  CHECK_OK(shredkv_backup(store, sub_path(second, dir, "backup2"), NULL, &err), err);
  char nothing[256];
  CHECK_CODE(shredkv_read_backup_info(sub_path(nothing, dir, "nothing"), &read, &err), SHREDKV_NOT_FOUND, err);
  CHECK_OK(shredkv_close(store, &err), err);
  CHECK(c_test_rmtree(dir) == 0);
  return 0;
}

/* The erasure log of a store where, after a backup of ann, bob and carl,
 * bob was erased, ann's "location" category erased, and carl erased by
 * identifier with suppression. */
typedef struct backup_fixture {
  char dir[256], live[256], backup[256];
  shredkv_store_t* store;
  shredkv_person_id_t ann, bob, carl;
  char store_id[33];
} backup_fixture;

static int make_backup_fixture(backup_fixture* f) {
  memset(f, 0, sizeof *f);
  CHECK(c_test_mkdtemp(f->dir) == 0);
  sub_path(f->live, f->dir, "live");
  sub_path(f->backup, f->dir, "backup");
  char* err = NULL;
  CHECK_OK(open_store(f->live, 1, &f->store, &err), err);
  CHECK_OK(create_person(f->store, "ann@example.org", "Ann", &f->ann, &err), err);
  CHECK_OK(create_person(f->store, "bob@example.org", "Bob", &f->bob, &err), err);
  CHECK_OK(create_person(f->store, "carl@example.org", "Carl", &f->carl, &err), err);
  CHECK_OK(append_event(f->store, &f->ann, "checkin", T0_MS, "location", &err), err);
  CHECK_OK(append_event(f->store, &f->ann, "click", T0_MS + 1, NULL, &err), err);
  shredkv_backup_info_t* info = NULL;
  CHECK_OK(shredkv_backup(f->store, f->backup, &info, &err), err);
  snprintf(f->store_id, sizeof f->store_id, "%s", shredkv_backup_info_store_id(info));
  shredkv_backup_info_destroy(info);

  CHECK_OK(shredkv_erase(f->store, &f->bob, 1, "req-bob", 0, SHREDKV_ANALYTICS_KEEP, NULL, &err), err);
  CHECK_OK(shredkv_erase_category(f->store, &f->ann, "location", "req-ann-loc", SHREDKV_ANALYTICS_UNLINK, NULL, &err),
           err);
  shredkv_identifier_t carl = email_id("carl@example.org");
  CHECK_OK(shredkv_erase_by_identifier(f->store, &carl, "req-carl", 1, SHREDKV_ANALYTICS_DELETE, NULL, &err), err);
  return 0;
}

/* WriteBatch::SetProgress / Store::ReadProgress: committed with the batch,
 * read back after a reopen; a bad name is refused at commit. */
static int test_progress(void) {
  char dir[256];
  CHECK(c_test_mkdtemp(dir) == 0);
  char* err = NULL;
  shredkv_store_t* store = NULL;
  CHECK_OK(open_store(dir, 1, &store, &err), err);
  uint64_t position = 7;
  CHECK_CODE(shredkv_read_progress(store, "orders.ingest", &position, &err), SHREDKV_NOT_FOUND, err);
  CHECK_EQ_INT(position, 7);

  shredkv_writebatch_t* batch = shredkv_writebatch_create();
  shredkv_identifier_t id = email_id("dora@example.org");
  shredkv_person_id_t dora;
  shredkv_writebatch_create_person(batch, &id, 1, NULL, &dora);
  shredkv_writebatch_set_progress(batch, "orders.ingest", 41);
  shredkv_writebatch_set_progress(batch, "orders.ingest", 42);
  CHECK_EQ_INT(shredkv_writebatch_count(batch), 1);
  CHECK_OK(shredkv_write(store, batch, &err), err);
  CHECK_OK(shredkv_read_progress(store, "orders.ingest", &position, &err), err);
  CHECK_EQ_INT(position, 42);

  /* A position alone commits. */
  shredkv_writebatch_clear(batch);
  shredkv_writebatch_set_progress(batch, "orders.ingest", 43);
  CHECK_OK(shredkv_write(store, batch, &err), err);

  /* A name that could hold an identifier is refused, and nothing of the batch is written. */
  shredkv_writebatch_clear(batch);
  shredkv_writebatch_set_progress(batch, "dora@example.org", 1);
  CHECK_CODE(shredkv_write(store, batch, &err), SHREDKV_INVALID_ARGUMENT, err);
  CHECK_CODE(shredkv_read_progress(store, "dora@example.org", &position, &err), SHREDKV_INVALID_ARGUMENT, err);
  shredkv_writebatch_destroy(batch);
  CHECK_OK(shredkv_close(store, &err), err);

  store = NULL;
  CHECK_OK(open_store(dir, 1, &store, &err), err);
  CHECK_OK(shredkv_read_progress(store, "orders.ingest", &position, &err), err);
  CHECK_EQ_INT(position, 43);
  CHECK_OK(shredkv_close(store, &err), err);
  CHECK(c_test_rmtree(dir) == 0);
  return 0;
}

static int test_erasure_log(void) {
  backup_fixture f;
  if (make_backup_fixture(&f) != 0) return 1;
  char* err = NULL;
  shredkv_erasure_log_t* log = NULL;
  CHECK_OK(shredkv_read_erasure_log(f.store, &log, &err), err);
  CHECK_STR(shredkv_erasure_log_store_id(log), f.store_id);
  CHECK_EQ_INT(shredkv_erasure_log_people_count(log), 2);
  CHECK_EQ_INT(shredkv_erasure_log_category_count(log), 1);
  CHECK_EQ_INT(shredkv_erasure_log_suppressed_count(log), 1);

  int seen_bob = 0, seen_carl = 0;
  for (size_t i = 0; i < 2; ++i) {
    shredkv_person_id_t person;
    int64_t at = 0;
    int analytics = -1;
    const char* request = shredkv_erasure_log_person(log, i, &person, &at, &analytics);
    CHECK(request != NULL);
    CHECK(at > 0);
    if (same_person(&person, &f.bob)) {
      ++seen_bob;
      CHECK_STR(request, "req-bob");
      CHECK_EQ_INT(analytics, SHREDKV_ANALYTICS_KEEP);
    } else {
      CHECK(same_person(&person, &f.carl));
      ++seen_carl;
      CHECK_STR(request, "req-carl");
      CHECK_EQ_INT(analytics, SHREDKV_ANALYTICS_DELETE);
    }
    shredkv_person_id_t again;
    CHECK_STR(shredkv_erasure_log_person(log, i, &again, NULL, NULL), request); /* time, analytics may be NULL */
    CHECK(same_person(&again, &person));
  }
  CHECK_EQ_INT(seen_bob, 1);
  CHECK_EQ_INT(seen_carl, 1);

  shredkv_person_id_t person;
  const char* request = NULL;
  int64_t at = 0;
  int analytics = -1;
  CHECK_STR(shredkv_erasure_log_category(log, 0, &person, &request, &at, &analytics), "location");
  CHECK(same_person(&person, &f.ann));
  CHECK_STR(request, "req-ann-loc");
  CHECK(at > 0);
  CHECK_EQ_INT(analytics, SHREDKV_ANALYTICS_UNLINK);
  CHECK_STR(shredkv_erasure_log_category(log, 0, NULL, NULL, NULL, NULL), "location");

  uint8_t hash[16];
  memset(hash, 0, sizeof hash);
  at = 0;
  CHECK_STR(shredkv_erasure_log_suppressed(log, 0, hash, &at), "req-carl");
  CHECK(at > 0);
  int nonzero = 0;
  for (int i = 0; i < 16; ++i) nonzero |= hash[i];
  CHECK(nonzero != 0);
  CHECK_STR(shredkv_erasure_log_suppressed(log, 0, hash, NULL), "req-carl");

  /* NDJSON round trip. */
  char* text = NULL;
  size_t len = 0;
  CHECK_OK(shredkv_erasure_log_to_ndjson(log, &text, &len, &err), err);
  CHECK(len > 0);
  CHECK_EQ_INT(strlen(text), len);
  CHECK(text[len - 1] == '\n');
  CHECK(strstr(text, "req-bob") != NULL);
  CHECK(strstr(text, "bob@example.org") == NULL); /* no identifier */
  shredkv_erasure_log_t* parsed = NULL;
  CHECK_OK(shredkv_erasure_log_from_ndjson(text, len, &parsed, &err), err);
  CHECK_STR(shredkv_erasure_log_store_id(parsed), f.store_id);
  CHECK_EQ_INT(shredkv_erasure_log_people_count(parsed), 2);
  CHECK_EQ_INT(shredkv_erasure_log_category_count(parsed), 1);
  CHECK_EQ_INT(shredkv_erasure_log_suppressed_count(parsed), 1);
  CHECK_STR(shredkv_erasure_log_category(parsed, 0, NULL, NULL, NULL, NULL), "location");
  char* text2 = NULL;
  size_t len2 = 0;
  CHECK_OK(shredkv_erasure_log_to_ndjson(parsed, &text2, &len2, &err), err);
  CHECK_EQ_INT(len2, len);
  CHECK(memcmp(text, text2, len) == 0);
  shredkv_free(text2);
  shredkv_erasure_log_destroy(parsed);

  /* Read after the backup was taken: a restore may use it. */
  shredkv_backup_info_t* info = NULL;
  CHECK_OK(shredkv_read_backup_info(f.backup, &info, &err), err);
  CHECK(shredkv_erasure_log_read_at_ms(log) >= shredkv_backup_info_created_ms(info));
  CHECK_OK(shredkv_check_erasure_log_read_after(log, info, &err), err);
  /* The same log, its header saying it was read at 1 ms and without its
     position (as a log of a build before stop 39: since then the store's
     position, not the clock, orders a log that carries one): refused. */
  const char* field = strstr(text, "\"read_at_ms\":");
  CHECK(field != NULL);
  const size_t number_at = (size_t)(field - text) + strlen("\"read_at_ms\":");
  size_t number_end = number_at;
  while (text[number_end] >= '0' && text[number_end] <= '9') ++number_end;
  CHECK(number_end > number_at);
  char* early = malloc(len + 1);
  CHECK(early != NULL);
  memcpy(early, text, number_at);
  early[number_at] = '1';
  memcpy(early + number_at + 1, text + number_end, len - number_end);
  size_t early_len = number_at + 1 + (len - number_end);
  early[early_len] = '\0';
  char* position = strstr(early, ",\"position\":{");
  CHECK(position != NULL);
  char* position_end = strchr(position, '}');
  CHECK(position_end != NULL);
  memmove(position, position_end + 1, strlen(position_end + 1) + 1);
  early_len = strlen(early);
  parsed = NULL;
  CHECK_OK(shredkv_erasure_log_from_ndjson(early, early_len, &parsed, &err), err);
  free(early);
  CHECK_EQ_INT(shredkv_erasure_log_read_at_ms(parsed), 1);
  CHECK_EQ_INT(shredkv_check_erasure_log_read_after(parsed, info, &err), SHREDKV_INVALID_ARGUMENT);
  CHECK(err != NULL && strstr(err, "before the backup was taken") != NULL);
  shredkv_free(err);
  err = NULL;
  shredkv_erasure_log_destroy(parsed);
  shredkv_backup_info_destroy(info);

  /* Cut short: without its last line the log is refused. */
  size_t cut = len - 1;
  while (cut > 0 && text[cut - 1] != '\n') --cut;
  CHECK(cut > 0 && cut < len);
  parsed = NULL;
  CHECK_EQ_INT(shredkv_erasure_log_from_ndjson(text, cut, &parsed, &err), SHREDKV_INVALID_ARGUMENT);
  CHECK(err != NULL && strncmp(err, "InvalidArgument", 15) == 0);
  CHECK(strstr(err, "line") != NULL);
  shredkv_free(err);
  err = NULL;
  shredkv_free(text);
  shredkv_erasure_log_destroy(log);
  CHECK_OK(shredkv_close(f.store, &err), err);
  CHECK(c_test_rmtree(f.dir) == 0);
  return 0;
}

/* Options to restore into / open `dir` (it must not exist yet). */
static shredkv_options_t* restore_options(const char* dir) {
  shredkv_options_t* options = test_options(dir, 1);
  shredkv_options_set_create_if_missing(options, 0);
  return options;
}

static int test_restore_backup(void) {
  backup_fixture f;
  if (make_backup_fixture(&f) != 0) return 1;
  char* err = NULL;
  shredkv_erasure_log_t* log = NULL;
  CHECK_OK(shredkv_read_erasure_log(f.store, &log, &err), err);
  CHECK_OK(shredkv_close(f.store, &err), err);

  char restored[256];
  sub_path(restored, f.dir, "restored");
  shredkv_options_t* options = restore_options(restored);
  shredkv_backup_info_t* info = NULL;
  shredkv_erasure_log_applied_t applied;
  memset(&applied, 0xff, sizeof applied);
  CHECK_OK(shredkv_restore_backup(f.backup, options, log, 0, SHREDKV_CUSTODY_KEYS_UNSPECIFIED, &info, &applied,
                                  &err),
           err);
  CHECK_STR(shredkv_backup_info_store_id(info), f.store_id);
  CHECK_EQ_INT(shredkv_backup_info_people(info), 3);
  shredkv_backup_info_destroy(info);
  CHECK(applied.people_erased >= 1);
  CHECK_EQ_INT(applied.people_erased, 2);
  CHECK_EQ_INT(applied.categories_erased, 1);
  CHECK_EQ_INT(applied.suppressions_added, 1);
  CHECK_EQ_INT(applied.already_erased, 0);
  CHECK_EQ_INT(applied.not_present, 0);

  /* Restoring again into the now full directory: refused. */
  CHECK_CODE(shredkv_restore_backup(f.backup, options, log, 0, SHREDKV_CUSTODY_KEYS_UNSPECIFIED, NULL, NULL, &err),
             SHREDKV_ALREADY_EXISTS, err);
  /* Neither a log nor without_erasure_log: refused. */
  char other[256];
  shredkv_options_t* other_options = restore_options(sub_path(other, f.dir, "other"));
  CHECK_CODE(shredkv_restore_backup(f.backup, other_options, NULL, 0, SHREDKV_CUSTODY_KEYS_UNSPECIFIED, NULL, NULL,
                                    &err),
             SHREDKV_INVALID_ARGUMENT, err);
  /* Stop 37: the log carries the store's tag. Without it (a log of an
     earlier build) it is refused, and taken once the options accept it. */
  {
    char* text = NULL;
    size_t len = 0;
    CHECK_OK(shredkv_erasure_log_to_ndjson(log, &text, &len, &err), err);
    char* tag = strstr(text, ",\"tag\":\"");
    CHECK(tag != NULL);
    char* close = strchr(tag, '}');
    memmove(tag, close, strlen(close) + 1);
    shredkv_erasure_log_t* untagged = NULL;
    CHECK_OK(shredkv_erasure_log_from_ndjson(text, strlen(text), &untagged, &err), err);
    shredkv_free(text);
    CHECK_CODE(shredkv_restore_backup(f.backup, other_options, untagged, 0, SHREDKV_CUSTODY_KEYS_UNSPECIFIED, NULL,
                                      NULL, &err),
               SHREDKV_INVALID_ARGUMENT, err);
    shredkv_options_set_restore_accept_untagged(other_options, 0, 1);
    CHECK_OK(shredkv_restore_backup(f.backup, other_options, untagged, 0, SHREDKV_CUSTODY_KEYS_UNSPECIFIED, NULL,
                                    NULL, &err),
             err);
    shredkv_erasure_log_destroy(untagged);
  }
  shredkv_options_destroy(other_options);

  /* The restored store: the erasures made after the backup hold. */
  shredkv_store_t* store = NULL;
  CHECK_OK(shredkv_open(options, &store, &err), err);
  shredkv_options_destroy(options);
  const int bob = profile_code(store, &f.bob);
  CHECK(bob == SHREDKV_ERASED || bob == SHREDKV_NOT_FOUND);
  shredkv_attrs_t* profile = NULL;
  CHECK_CODE(shredkv_get_profile(store, &f.bob, &profile, &err), bob, err);
  const int carl = profile_code(store, &f.carl);
  CHECK(carl == SHREDKV_ERASED || carl == SHREDKV_NOT_FOUND);
  shredkv_identifier_t carl_id = email_id("carl@example.org");
  shredkv_person_id_t found;
  CHECK_CODE(shredkv_resolve(store, &carl_id, &found, &err), SHREDKV_SUPPRESSED, err);
  CHECK_EQ_INT(profile_code(store, &f.ann), SHREDKV_OK);
  shredkv_iterator_t* it = shredkv_scan_events(store, &f.ann, INT64_MIN, INT64_MAX);
  CHECK(shredkv_iter_valid(it));
  CHECK_STR(shredkv_event_name(shredkv_iter_event(it)), "click"); /* the location event is gone */
  shredkv_iter_next(it);
  CHECK(!shredkv_iter_valid(it));
  shredkv_iter_destroy(it);
  shredkv_receipt_t* receipt = NULL;
  CHECK_OK(shredkv_get_erasure(store, "req-bob", &receipt, &err), err);
  CHECK_EQ_INT(shredkv_receipt_people(receipt), 1);
  shredkv_receipt_destroy(receipt);
  CHECK_OK(shredkv_close(store, &err), err);
  shredkv_erasure_log_destroy(log);
  CHECK(c_test_rmtree(f.dir) == 0);
  return 0;
}

static int test_apply_erasure_log(void) {
  backup_fixture f;
  if (make_backup_fixture(&f) != 0) return 1;
  char* err = NULL;
  shredkv_erasure_log_t* log = NULL;
  CHECK_OK(shredkv_read_erasure_log(f.store, &log, &err), err);
  CHECK_OK(shredkv_close(f.store, &err), err);

  /* Restored without the log: bob is back (what the log is for). */
  char restored[256];
  sub_path(restored, f.dir, "restored");
  shredkv_options_t* options = restore_options(restored);
  shredkv_erasure_log_applied_t applied;
  memset(&applied, 0xff, sizeof applied);
  CHECK_OK(shredkv_restore_backup(f.backup, options, NULL, 1, SHREDKV_CUSTODY_KEYS_UNSPECIFIED, NULL, &applied,
                                  &err),
           err);
  CHECK_EQ_INT(applied.people_erased, 0);
  shredkv_store_t* store = NULL;
  CHECK_OK(shredkv_open(options, &store, &err), err);
  shredkv_options_destroy(options);
  CHECK_EQ_INT(profile_code(store, &f.bob), SHREDKV_OK);
  CHECK_EQ_INT(count_events(store, &f.ann), 2);

  /* Applied: bob and carl erased again, ann's location gone, carl suppressed. */
  memset(&applied, 0xff, sizeof applied);
  CHECK_OK(shredkv_apply_erasure_log(store, log, &applied, &err), err);
  CHECK_EQ_INT(applied.people_erased, 2);
  CHECK_EQ_INT(applied.categories_erased, 1);
  CHECK_EQ_INT(applied.suppressions_added, 1);
  CHECK_EQ_INT(applied.already_erased, 0);
  CHECK_EQ_INT(applied.not_present, 0);
  CHECK_EQ_INT(profile_code(store, &f.bob), SHREDKV_ERASED);
  CHECK_EQ_INT(profile_code(store, &f.carl), SHREDKV_ERASED);
  CHECK_EQ_INT(count_events(store, &f.ann), 1);
  shredkv_person_id_t again;
  shredkv_identifier_t carl_id = email_id("carl@example.org");
  CHECK_CODE(shredkv_create_person(store, &carl_id, 1, NULL, &again, &err), SHREDKV_SUPPRESSED, err);

  /* Again: nothing new; out may be NULL. */
  memset(&applied, 0xff, sizeof applied);
  CHECK_OK(shredkv_apply_erasure_log(store, log, &applied, &err), err);
  CHECK_EQ_INT(applied.people_erased, 0);
  CHECK_EQ_INT(applied.already_erased, 3);
  CHECK_EQ_INT(applied.suppressions_added, 0);
  CHECK_OK(shredkv_apply_erasure_log(store, log, NULL, &err), err);

  /* Another store's log is refused. */
  char other_dir[256];
  shredkv_store_t* other = NULL;
  CHECK_OK(open_store(sub_path(other_dir, f.dir, "other"), 1, &other, &err), err);
  shredkv_erasure_log_t* other_log = NULL;
  CHECK_OK(shredkv_read_erasure_log(other, &other_log, &err), err);
  CHECK(strcmp(shredkv_erasure_log_store_id(other_log), f.store_id) != 0);
  CHECK_CODE(shredkv_apply_erasure_log(store, other_log, NULL, &err), SHREDKV_INVALID_ARGUMENT, err);
  shredkv_erasure_log_destroy(other_log);
  CHECK_OK(shredkv_close(other, &err), err);
  CHECK_OK(shredkv_close(store, &err), err);
  shredkv_erasure_log_destroy(log);
  CHECK(c_test_rmtree(f.dir) == 0);
  return 0;
}

/* Stop 39 (outside audit 39b, F5): the live store's log re-applied to a
   closed store put back by other means (here: a restore without the log,
   standing in for a volume snapshot). */
static int test_reapply_erasure_log(void) {
  backup_fixture f;
  if (make_backup_fixture(&f) != 0) return 1;
  char* err = NULL;
  shredkv_erasure_log_t* log = NULL;
  CHECK_OK(shredkv_read_erasure_log(f.store, &log, &err), err);
  CHECK_OK(shredkv_close(f.store, &err), err);
  char put_back[256];
  sub_path(put_back, f.dir, "put-back");
  shredkv_options_t* options = restore_options(put_back);
  CHECK_OK(shredkv_restore_backup(f.backup, options, NULL, 1, SHREDKV_CUSTODY_KEYS_UNSPECIFIED, NULL, NULL, &err),
           err);
  CHECK_CODE(shredkv_reapply_erasure_log(options, NULL, NULL, &err), SHREDKV_INVALID_ARGUMENT, err);
  CHECK_CODE(shredkv_reapply_erasure_log(NULL, log, NULL, &err), SHREDKV_INVALID_ARGUMENT, err);
  shredkv_erasure_log_applied_t applied;
  memset(&applied, 0xff, sizeof applied);
  CHECK_OK(shredkv_reapply_erasure_log(options, log, &applied, &err), err);
  CHECK_EQ_INT(applied.people_erased, 2);
  CHECK_EQ_INT(applied.categories_erased, 1);
  CHECK_EQ_INT(applied.suppressions_added, 1);
  memset(&applied, 0xff, sizeof applied);
  CHECK_OK(shredkv_reapply_erasure_log(options, log, &applied, &err), err); /* again: nothing new */
  CHECK_EQ_INT(applied.people_erased, 0);
  CHECK_EQ_INT(applied.already_erased, 3);
  /* The variant with custody keys (ignored for a store without custody);
     a value outside the enum is refused. */
  CHECK_CODE(shredkv_reapply_erasure_log2(options, log, 7, NULL, &err), SHREDKV_INVALID_ARGUMENT, err);
  CHECK_OK(shredkv_reapply_erasure_log2(options, log, SHREDKV_CUSTODY_KEYS_NEW, &applied, &err), err);
  CHECK_EQ_INT(applied.people_erased, 0);
  shredkv_store_t* store = NULL;
  CHECK_OK(shredkv_open(options, &store, &err), err);
  shredkv_options_destroy(options);
  CHECK_EQ_INT(profile_code(store, &f.bob), SHREDKV_ERASED);
  CHECK_EQ_INT(profile_code(store, &f.carl), SHREDKV_ERASED);
  CHECK_EQ_INT(count_events(store, &f.ann), 1);
  shredkv_receipt_t* receipt = NULL;
  CHECK_OK(shredkv_get_erasure(store, "req-bob", &receipt, &err), err);
  CHECK(shredkv_receipt_cryptographic(receipt));
  shredkv_receipt_destroy(receipt);
  CHECK_OK(shredkv_close(store, &err), err);
  shredkv_erasure_log_destroy(log);
  CHECK(c_test_rmtree(f.dir) == 0);
  return 0;
}

/* ---- root keys ------------------------------------------------------------------------------ */

static int test_rotate_root_key(void) {
  char dir[256];
  CHECK(c_test_mkdtemp(dir) == 0);
  char* err = NULL;
  shredkv_store_t* store = NULL;
  CHECK_OK(open_store(dir, 1, &store, &err), err);
  shredkv_person_id_t ann, found;
  CHECK_OK(create_person(store, "ann@example.org", "Ann", &ann, &err), err);

  char key[32];
  make_key(key, 1);
  shredkv_key_provider_t* same = shredkv_key_provider_raw(key, sizeof key);
  CHECK_CODE(shredkv_rotate_root_key(store, same, &err), SHREDKV_INVALID_ARGUMENT, err); /* the current key */
  shredkv_key_provider_destroy(same);
  make_key(key, 2);
  shredkv_key_provider_t* fresh = shredkv_key_provider_raw(key, sizeof key);
  CHECK_OK(shredkv_rotate_root_key(store, fresh, &err), err);
  shredkv_key_provider_destroy(fresh);
  shredkv_identifier_t id = email_id("ann@example.org");
  CHECK_OK(shredkv_resolve(store, &id, &found, &err), err); /* the open store goes on */
  CHECK_OK(shredkv_close(store, &err), err);

  CHECK_CODE(open_store(dir, 1, &store, &err), SHREDKV_WRONG_KEY, err);
  CHECK_OK(open_store(dir, 2, &store, &err), err);
  CHECK_OK(shredkv_resolve(store, &id, &found, &err), err);
  CHECK(same_person(&found, &ann));
  CHECK_EQ_INT(profile_code(store, &ann), SHREDKV_OK);
  CHECK_OK(shredkv_close(store, &err), err);
  CHECK(c_test_rmtree(dir) == 0);
  return 0;
}

/* ---- names and versions ------------------------------------------------------------------- */

static int test_names_and_version(void) {
  CHECK_STR(shredkv_code_name(SHREDKV_OK), "OK");
  CHECK_STR(shredkv_code_name(SHREDKV_NOT_FOUND), "NotFound");
  CHECK_STR(shredkv_code_name(SHREDKV_WRONG_KEY), "WrongKey");
  CHECK_STR(shredkv_code_name(-1), "Unknown");
  CHECK_STR(shredkv_code_name(1000), "Unknown");
  int major = -1, minor = -1, patch = -1;
  shredkv_version_numbers(&major, &minor, &patch);
  char expected[64];
  snprintf(expected, sizeof expected, "%d.%d.%d", major, minor, patch);
  CHECK_STR(shredkv_version(), expected);
  CHECK_STR(shredkv_analytics_on_erase_name(SHREDKV_ANALYTICS_KEEP), "keep");
  CHECK_STR(shredkv_analytics_on_erase_name(SHREDKV_ANALYTICS_DELETE), "delete");
  CHECK_STR(shredkv_erasure_level_name(SHREDKV_ERASURE_CRYPTOGRAPHIC), "cryptographic");
  CHECK_STR(shredkv_erasure_level_name(0), "unknown");
  CHECK_STR(shredkv_notice_kind_name(SHREDKV_NOTICE_RECTIFICATION), "rectification");
  CHECK_STR(shredkv_audit_action_name(SHREDKV_AUDIT_PURGE), "purge");
  CHECK_STR(shredkv_maintenance_job_name(SHREDKV_JOB_ROTATION), "rotation");
  return 0;
}

static const c_test tests[] = {
  {"key_file", test_key_file},
  {"key_passphrase", test_key_passphrase},
  {"key_raw", test_key_raw},
  {"key_callback", test_key_callback},
  {"custody_pkcs11_missing_module", test_custody_pkcs11_missing_module},
  {"retention_rules", test_retention_rules},
  {"collections_named_by_any_bytes", test_collections_named_by_any_bytes},
  {"sweep_with_clock", test_sweep_with_clock},
  {"options_setters", test_options_setters},
  {"options_rotation_policy", test_options_rotation_policy},
  {"max_map_size", test_max_map_size},
  {"open_error_if_exists_and_read_only", test_open_error_if_exists_and_read_only},
  {"progress_callback", test_progress_callback},
  {"logger_callback", test_logger_callback},
  {"listener_callbacks", test_listener_callbacks},
  {"open_missing_store", test_open_missing_store},
  {"open_wrong_key", test_open_wrong_key},
  {"open_twice_in_process", test_open_twice_in_process},
  {"close_null", test_close_null},
  {"normalize_identifier", test_normalize_identifier},
  {"check_new_identifier", test_check_new_identifier},
  {"erase_receipt", test_erase_receipt},
  {"erase_by_identifier_suppress", test_erase_by_identifier_suppress},
  {"erase_category", test_erase_category},
  {"erasure_reaches_purged", test_erasure_reaches_purged},
  {"housekeeping_results", test_housekeeping_results},
  {"stats", test_stats},
  {"audit_log", test_audit_log},
  {"verify_report", test_verify_report},
  {"backup_info", test_backup_info},
  {"progress", test_progress},
  {"erasure_log", test_erasure_log},
  {"restore_backup", test_restore_backup},
  {"apply_erasure_log", test_apply_erasure_log},
  {"reapply_erasure_log", test_reapply_erasure_log},
  {"rotate_root_key", test_rotate_root_key},
  {"names_and_version", test_names_and_version},
};

int main(int argc, char** argv) { return c_test_main(argc, argv, tests, sizeof tests / sizeof tests[0]); }
