/* Uses an installed shredkv through its C API (include/shredkv/c.h) from a C11
 * program linked against the shared library: opens a store in a temporary
 * directory, creates a person, resolves them by email, erases them and checks
 * the identifier no longer resolves. Prints OK; exit status 0 on success. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shredkv/c.h"

static int fail(const char* what, int code, char* err) {
  fprintf(stderr, "c_consumer: %s: %s (%s)\n", what, err != NULL ? err : "", shredkv_code_name(code));
  shredkv_free(err);
  return 1;
}

int main(void) {
  char dir[] = "/tmp/shredkv-c-consumer-XXXXXX";
  if (mkdtemp(dir) == NULL) return 1;
  char path[256];
  snprintf(path, sizeof path, "%s/store", dir);

  char key[32];
  memset(key, 0x5a, sizeof key);
  shredkv_key_provider_t* provider = shredkv_key_provider_raw(key, sizeof key);
  shredkv_options_t* options = shredkv_options_create();
  shredkv_options_set_directory(options, path);
  shredkv_options_set_create_if_missing(options, 1);
  shredkv_options_set_durability(options, SHREDKV_DURABILITY_NO_SYNC);
  shredkv_options_set_key_provider(options, provider);
  shredkv_key_provider_destroy(provider);

  char* err = NULL;
  shredkv_store_t* store = NULL;
  int rc = shredkv_open(options, &store, &err);
  shredkv_options_destroy(options);
  if (rc != SHREDKV_OK) return fail("open", rc, err);

  const char* email = "c-consumer@example.org";
  shredkv_identifier_t id = {"email", email, strlen(email)};
  shredkv_person_id_t person, found;
  rc = shredkv_create_person(store, &id, 1, NULL, &person, &err);
  if (rc != SHREDKV_OK) return fail("create_person", rc, err);
  rc = shredkv_resolve(store, &id, &found, &err);
  if (rc != SHREDKV_OK) return fail("resolve", rc, err);
  if (memcmp(person.bytes, found.bytes, sizeof person.bytes) != 0) return fail("resolve: another person", 0, NULL);
  rc = shredkv_erase(store, &person, 1, NULL, 0, SHREDKV_ANALYTICS_KEEP, NULL, &err);
  if (rc != SHREDKV_OK) return fail("erase", rc, err);
  rc = shredkv_resolve(store, &id, &found, &err);
  if (rc == SHREDKV_OK) return fail("resolve after erase succeeded", rc, NULL);
  shredkv_free(err);
  err = NULL;
  rc = shredkv_close(store, &err);
  if (rc != SHREDKV_OK) return fail("close", rc, err);

  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0) return 1;
  printf("c_consumer: OK (libshredkv %s)\n", shredkv_version());
  return 0;
}
