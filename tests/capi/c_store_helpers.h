/* Store helpers the C API suites share (C11): keys, options, paths,
 * identifiers and people of a test store. Static functions: each suite
 * includes it once, after c_test.h. */
#ifndef SHREDKV_TESTS_CAPI_C_STORE_HELPERS_H_
#define SHREDKV_TESTS_CAPI_C_STORE_HELPERS_H_

#include "c_test.h"

/* 32 key bytes derived from `fill` (distinct fills: distinct keys). */
static inline void make_key(char key[32], int fill) {
  for (int i = 0; i < 32; ++i) key[i] = (char)(fill + i * 7);
}

/* Options of a test store in `dir`: created if missing, raw key from
 * `fill`, no fsync, a small first map. */
static inline shredkv_options_t* test_options(const char* dir, int fill) {
  char key[32];
  make_key(key, fill);
  shredkv_key_provider_t* provider = shredkv_key_provider_raw(key, sizeof key);
  shredkv_options_t* options = shredkv_options_create();
  shredkv_options_set_directory(options, dir);
  shredkv_options_set_create_if_missing(options, 1);
  shredkv_options_set_durability(options, SHREDKV_DURABILITY_NO_SYNC);
  shredkv_options_set_initial_map_size(options, 4u << 20);
  shredkv_options_set_key_provider(options, provider);
  shredkv_key_provider_destroy(provider); /* the options keep their own reference */
  return options;
}

/* Opens (creating) the store in `dir` with the key of `fill`. */
static inline int open_store(const char* dir, int fill, shredkv_store_t** out, char** err) {
  shredkv_options_t* options = test_options(dir, fill);
  const int rc = shredkv_open(options, out, err);
  shredkv_options_destroy(options);
  return rc;
}

/* `sub` under `dir` into `out` (256 bytes). */
static inline const char* sub_path(char out[256], const char* dir, const char* sub) {
  const int n = snprintf(out, 256, "%s/%s", dir, sub);
  if (n < 0 || n >= 256) out[0] = '\0'; /* too long: an empty path, which every call refuses */
  return out;
}

static inline shredkv_identifier_t email_id(const char* email) {
  shredkv_identifier_t id = {"email", email, strlen(email)};
  return id;
}

/* Creates a person with one email and a profile {"name": name}. */
static inline int create_person(shredkv_store_t* store, const char* email, const char* name, shredkv_person_id_t* out,
                         char** err) {
  shredkv_identifier_t id = email_id(email);
  shredkv_attrs_t* profile = shredkv_attrs_create();
  shredkv_attrs_set_string(profile, "name", name, strlen(name));
  const int rc = shredkv_create_person(store, &id, 1, profile, out, err);
  shredkv_attrs_destroy(profile);
  return rc;
}

/* The code of GetProfile for `person` (the message is dropped). */
static inline int profile_code(shredkv_store_t* store, const shredkv_person_id_t* person) {
  shredkv_attrs_t* profile = NULL;
  char* err = NULL;
  const int rc = shredkv_get_profile(store, person, &profile, &err);
  shredkv_free(err);
  shredkv_attrs_destroy(profile);
  return rc;
}

#endif /* SHREDKV_TESTS_CAPI_C_STORE_HELPERS_H_ */
