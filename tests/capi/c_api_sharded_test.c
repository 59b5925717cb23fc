/* The C API suite, part 4 (since stop 40): sharded stores through the store
 * handle — shredkv_open_sharded, the calls the sharded store routes, the
 * calls it does not (FAILED_PRECONDITION, and the same calls on a shard's
 * view), erasure receipts of requests over several shards, export and
 * import, backups and restores of the whole store, and root-key rotation.
 * Each test works in a fresh temporary directory, removed at its end. */
#include "c_test.h"
#include "c_store_helpers.h"

/* ---- helpers --------------------------------------------------------------- */

static int open_sharded(const char* dir, int fill, uint32_t shards, shredkv_store_t** out, char** err) {
  shredkv_options_t* options = test_options(dir, fill);
  const int rc = shredkv_open_sharded(options, shards, out, err);
  shredkv_options_destroy(options);
  return rc;
}

/* The profile's "name" into out (64 bytes); "" if absent or unreadable. */
static const char* profile_name(shredkv_store_t* store, const shredkv_person_id_t* person, char out[64]) {
  char* err = NULL;
  shredkv_attrs_t* attrs = NULL;
  out[0] = '\0';
  if (shredkv_get_profile(store, person, &attrs, &err) == SHREDKV_OK) {
    const long i = shredkv_attrs_find(attrs, "name");
    if (i >= 0) {
      size_t len = 0;
      const char* data = shredkv_attrs_data(attrs, (size_t)i, &len);
      if (data != NULL && len < 64) {
        memcpy(out, data, len);
        out[len] = '\0';
      }
    }
  }
  shredkv_attrs_destroy(attrs);
  shredkv_free(err);
  return out;
}

/* Creates people "<prefix>N@example.org" until one lands in shard `want`
 * of `store` (at most 64 tries); 0 on success. */
static int create_in_shard(shredkv_store_t* store, const char* prefix, uint32_t want, shredkv_person_id_t* out,
                           char email[64], char** err) {
  for (int i = 0; i < 64; ++i) {
    snprintf(email, 64, "%s%d@example.org", prefix, i);
    shredkv_person_id_t p;
    const int rc = create_person(store, email, prefix, &p, err);
    if (rc != SHREDKV_OK) return rc;
    uint32_t shard = 99;
    const int so = shredkv_shard_of(store, &p, &shard, err);
    if (so != SHREDKV_OK) return so;
    if (shard == want) {
      *out = p;
      return SHREDKV_OK;
    }
  }
  return SHREDKV_INTERNAL;
}

static int same_person(const shredkv_person_id_t* a, const shredkv_person_id_t* b) {
  return memcmp(a->bytes, b->bytes, sizeof a->bytes) == 0;
}

/* A growing buffer for shredkv_export_person. */
typedef struct sink {
  char data[1 << 16];
  size_t len;
} sink;

static int sink_write(void* ctx, const char* data, size_t len) {
  sink* s = (sink*)ctx;
  if (s->len + len > sizeof s->data) return 1;
  memcpy(s->data + s->len, data, len);
  s->len += len;
  return 0;
}

/* ---- tests ------------------------------------------------------------------ */

/* One handle, two shards: people land in both, every read by ID or
 * identifier finds them, the counts sum over the shards, and the shard
 * count is fixed at creation. */
static int test_open_routes_calls_to_the_person_s_shard(void) {
  char dir[256];
  CHECK(c_test_mkdtemp(dir) == 0);
  char path[256];
  sub_path(path, dir, "db");
  char* err = NULL;
  shredkv_store_t* store = NULL;
  CHECK_OK(open_sharded(path, 1, 2, &store, &err), err);
  CHECK_EQ_INT(shredkv_shard_count(store), 2);

  shredkv_person_id_t a, b;
  char email_a[64], email_b[64];
  CHECK_OK(create_in_shard(store, "ann", 0, &a, email_a, &err), err);
  CHECK_OK(create_in_shard(store, "bob", 1, &b, email_b, &err), err);

  char name[64];
  CHECK_STR(profile_name(store, &a, name), "ann");
  CHECK_STR(profile_name(store, &b, name), "bob");
  shredkv_identifier_t id_b = email_id(email_b);
  shredkv_person_id_t found;
  CHECK_OK(shredkv_resolve(store, &id_b, &found, &err), err);
  CHECK(same_person(&found, &b));
  shredkv_attrs_t* attrs = NULL;
  CHECK_OK(shredkv_lookup_profile(store, &id_b, &found, &attrs, &err), err);
  CHECK(same_person(&found, &b));
  shredkv_attrs_destroy(attrs);

  CHECK_OK(shredkv_put(store, &b, "notes", 5, "k", 1, "value-b", 7, &err), err);
  char* value = NULL;
  size_t value_len = 0;
  CHECK_OK(shredkv_get(store, &b, "notes", 5, "k", 1, &value, &value_len, &err), err);
  CHECK_EQ_INT(value_len, 7);
  CHECK(memcmp(value, "value-b", 7) == 0);
  shredkv_free(value);

  /* An iterator over one person's data goes to their shard. */
  shredkv_iterator_t* it = shredkv_scan_records(store, &b, "notes", 5, "", 0);
  int records = 0;
  for (; shredkv_iter_valid(it); shredkv_iter_next(it)) ++records;
  CHECK_OK(shredkv_iter_status(it, &err), err);
  shredkv_iter_destroy(it);
  CHECK_EQ_INT(records, 1);

  shredkv_stats_t* stats = NULL;
  CHECK_OK(shredkv_get_stats(store, &stats, &err), err);
  uint64_t people = 0;
  CHECK_OK(shredkv_stats_get(stats, "people", &people), err);
  shredkv_stats_destroy(stats);
  /* create_in_shard may have made others on the way; at least the two. */
  CHECK(people >= 2);
  shredkv_verify_report_t* report = NULL;
  CHECK_OK(shredkv_verify(store, &report, &err), err);
  CHECK_EQ_INT(shredkv_verify_report_ok(report), 1);
  shredkv_verify_report_destroy(report);
  CHECK_OK(shredkv_close(store, &err), err);

  /* Reopened: the stored count (0), or the same count; another is refused. */
  CHECK_CODE(open_sharded(path, 1, 3, &store, &err), SHREDKV_INVALID_ARGUMENT, err);
  CHECK_OK(open_sharded(path, 1, 0, &store, &err), err);
  CHECK_EQ_INT(shredkv_shard_count(store), 2);
  CHECK_STR(profile_name(store, &b, name), "bob");
  CHECK_OK(shredkv_close(store, &err), err);
  CHECK(c_test_rmtree(dir) == 0);
  return 0;
}

/* An identifier held in one shard cannot be given to a person of another
 * (the sharded store's check across shards), while a shard's view, which
 * skips that check as C++'s shard() does, is not used for it here. */
static int test_identifiers_stay_unique_across_shards(void) {
  char dir[256];
  CHECK(c_test_mkdtemp(dir) == 0);
  char* err = NULL;
  shredkv_store_t* store = NULL;
  CHECK_OK(open_sharded(dir, 2, 2, &store, &err), err);
  shredkv_person_id_t a, b;
  char email_a[64], email_b[64];
  CHECK_OK(create_in_shard(store, "ann", 0, &a, email_a, &err), err);
  CHECK_OK(create_in_shard(store, "bob", 1, &b, email_b, &err), err);
  shredkv_identifier_t id_a = email_id(email_a);
  CHECK_CODE(shredkv_link_identifier(store, &b, &id_a, &err), SHREDKV_ALREADY_EXISTS, err);
  shredkv_identifier_t again = email_id(email_a);
  shredkv_person_id_t c;
  CHECK_CODE(shredkv_create_person(store, &again, 1, NULL, &c, &err), SHREDKV_ALREADY_EXISTS, err);
  CHECK_OK(shredkv_close(store, &err), err);
  CHECK(c_test_rmtree(dir) == 0);
  return 0;
}

/* One erasure request over people of both shards: one receipt for the
 * whole request (people summed, no single shard's key epoch or audit hash),
 * GetErasure finds it by its id on the sharded handle, and each shard's
 * view holds its part with the shard's own epoch and audit hash. */
static int test_erase_over_two_shards_gives_one_receipt_and_a_part_a_shard(void) {
  char dir[256];
  CHECK(c_test_mkdtemp(dir) == 0);
  char* err = NULL;
  shredkv_store_t* store = NULL;
  CHECK_OK(open_sharded(dir, 3, 2, &store, &err), err);
  shredkv_person_id_t people[2];
  char email[2][64];
  CHECK_OK(create_in_shard(store, "ann", 0, &people[0], email[0], &err), err);
  CHECK_OK(create_in_shard(store, "bob", 1, &people[1], email[1], &err), err);

  shredkv_receipt_t* receipt = NULL;
  CHECK_OK(shredkv_erase(store, people, 2, "req-both", 1, SHREDKV_ANALYTICS_UNLINK, &receipt, &err), err);
  CHECK_STR(shredkv_receipt_request_id(receipt), "req-both");
  CHECK_EQ_INT(shredkv_receipt_people(receipt), 2);
  CHECK_EQ_INT(shredkv_receipt_suppressed(receipt), 1);
  CHECK_EQ_INT(shredkv_receipt_analytics(receipt), SHREDKV_ANALYTICS_UNLINK);
  CHECK_EQ_INT(shredkv_receipt_level(receipt), SHREDKV_ERASURE_LOGICAL);
  CHECK_EQ_INT(shredkv_receipt_key_epoch(receipt), 0);
  CHECK_STR(shredkv_receipt_audit_hash(receipt), "");
  CHECK(shredkv_receipt_erased_at_ms(receipt) > 0);
  shredkv_receipt_destroy(receipt);
  CHECK_EQ_INT(profile_code(store, &people[0]), SHREDKV_ERASED);
  CHECK_EQ_INT(profile_code(store, &people[1]), SHREDKV_ERASED);
  shredkv_identifier_t id = email_id(email[1]);
  shredkv_person_id_t found;
  CHECK_CODE(shredkv_resolve(store, &id, &found, &err), SHREDKV_SUPPRESSED, err);

  CHECK_OK(shredkv_get_erasure(store, "req-both", &receipt, &err), err);
  CHECK_EQ_INT(shredkv_receipt_people(receipt), 2);
  shredkv_receipt_destroy(receipt);
  for (uint32_t i = 0; i < 2; ++i) {
    shredkv_store_t* view = NULL;
    CHECK_OK(shredkv_shard(store, i, &view, &err), err);
    CHECK_EQ_INT(shredkv_shard_count(view), 0);
    CHECK_OK(shredkv_get_erasure(view, "req-both", &receipt, &err), err);
    CHECK_EQ_INT(shredkv_receipt_people(receipt), 1);
    CHECK(shredkv_receipt_key_epoch(receipt) >= 1);
    CHECK(strlen(shredkv_receipt_audit_hash(receipt)) > 0);
    shredkv_receipt_destroy(receipt);
    CHECK_OK(shredkv_close(view, &err), err);
  }

  /* A request of one part carries that shard's epoch and audit hash. */
  shredkv_person_id_t carl;
  char email_c[64];
  CHECK_OK(create_in_shard(store, "carl", 1, &carl, email_c, &err), err);
  CHECK_OK(shredkv_erase(store, &carl, 1, "req-carl", 0, SHREDKV_ANALYTICS_KEEP, &receipt, &err), err);
  CHECK_EQ_INT(shredkv_receipt_people(receipt), 1);
  CHECK(shredkv_receipt_key_epoch(receipt) >= 1);
  CHECK(strlen(shredkv_receipt_audit_hash(receipt)) > 0);
  shredkv_receipt_destroy(receipt);

  /* Rotation and purge over every shard make the first request whole. */
  CHECK_OK(shredkv_rotate_epoch(store, NULL, &err), err);
  shredkv_purge_result_t purged;
  CHECK_OK(shredkv_purge(store, 100000, &purged, &err), err);
  CHECK_OK(shredkv_get_erasure(store, "req-both", &receipt, &err), err);
  CHECK_EQ_INT(shredkv_receipt_cryptographic(receipt), 1);
  CHECK_EQ_INT(shredkv_receipt_purged(receipt), 1);
  CHECK_EQ_INT(shredkv_receipt_level(receipt), SHREDKV_ERASURE_PURGED);
  shredkv_receipt_destroy(receipt);
  CHECK_OK(shredkv_close(store, &err), err);
  CHECK(c_test_rmtree(dir) == 0);
  return 0;
}

/* The calls the sharded store does not route are FAILED_PRECONDITION on
 * its handle, naming what to call instead, and work on a shard's view; a
 * view outlives its store's close (its calls then fail) and bad shard
 * arguments are INVALID_ARGUMENT. */
static int test_shard_only_calls_are_refused_on_the_whole_and_work_on_a_view(void) {
  char dir[256];
  CHECK(c_test_mkdtemp(dir) == 0);
  char path[256];
  sub_path(path, dir, "db");
  char* err = NULL;
  shredkv_store_t* store = NULL;
  CHECK_OK(open_sharded(path, 4, 2, &store, &err), err);
  shredkv_person_id_t a;
  char email_a[64];
  CHECK_OK(create_in_shard(store, "ann", 1, &a, email_a, &err), err);
  CHECK_OK(shredkv_put(store, &a, "notes", 5, "k", 1, "v", 1, &err), err); /* a change-feed notice in shard 1 */

  shredkv_notice_list_t* notices = NULL;
  CHECK_EQ_INT(shredkv_read_feed(store, 10, &notices, &err), SHREDKV_FAILED_PRECONDITION);
  CHECK(err != NULL && strstr(err, "shredkv_shard") != NULL);
  shredkv_free(err);
  err = NULL;
  CHECK_CODE(shredkv_ack_feed(store, 1, &err), SHREDKV_FAILED_PRECONDITION, err);
  shredkv_audit_list_t* audit = NULL;
  CHECK_CODE(shredkv_read_audit(store, 0, 10, &audit, &err), SHREDKV_FAILED_PRECONDITION, err);
  shredkv_erasure_log_t* log = NULL;
  CHECK_CODE(shredkv_read_erasure_log(store, &log, &err), SHREDKV_FAILED_PRECONDITION, err);
  char backup[256];
  sub_path(backup, dir, "backup");
  CHECK_EQ_INT(shredkv_backup(store, backup, NULL, &err), SHREDKV_FAILED_PRECONDITION);
  CHECK(err != NULL && strstr(err, "shredkv_backup_sharded") != NULL);
  shredkv_free(err);
  err = NULL;
  char new_key[32];
  make_key(new_key, 40);
  shredkv_key_provider_t* provider = shredkv_key_provider_raw(new_key, sizeof new_key);
  CHECK_EQ_INT(shredkv_rotate_root_key(store, provider, &err), SHREDKV_FAILED_PRECONDITION);
  CHECK(err != NULL && strstr(err, "shredkv_rotate_root_key_sharded") != NULL);
  shredkv_free(err);
  err = NULL;
  shredkv_key_provider_destroy(provider);
  shredkv_iterator_t* it = shredkv_scan_analytics(store, 0, INT64_MAX, NULL);
  CHECK_EQ_INT(shredkv_iter_valid(it), 0);
  CHECK_CODE(shredkv_iter_status(it, &err), SHREDKV_FAILED_PRECONDITION, err);
  shredkv_iter_destroy(it);

  /* The same calls on the shard's view. */
  shredkv_store_t* view = NULL;
  CHECK_OK(shredkv_shard(store, 1, &view, &err), err);
  CHECK_OK(shredkv_read_feed(view, 10, &notices, &err), err);
  CHECK(shredkv_notice_list_count(notices) >= 1);
  shredkv_notice_list_destroy(notices);
  CHECK_OK(shredkv_read_audit(view, 0, 10, &audit, &err), err);
  shredkv_audit_list_destroy(audit);
  CHECK_OK(shredkv_read_erasure_log(view, &log, &err), err);
  shredkv_erasure_log_destroy(log);
  char name[64];
  CHECK_STR(profile_name(view, &a, name), "ann");
  /* What would skip the checks across shards is refused on a view (outside
     audit 40b, F1, F5): people and identifiers, erasures, root keys. */
  shredkv_identifier_t other = email_id("other@example.org");
  shredkv_person_id_t made;
  CHECK_CODE(shredkv_create_person(view, &other, 1, NULL, &made, &err), SHREDKV_FAILED_PRECONDITION, err);
  CHECK_CODE(shredkv_link_identifier(view, &a, &other, &err), SHREDKV_FAILED_PRECONDITION, err);
  CHECK_CODE(shredkv_erase(view, &a, 1, "via-view", 0, SHREDKV_ANALYTICS_KEEP, NULL, &err),
             SHREDKV_FAILED_PRECONDITION, err);
  shredkv_identifier_t id_a = email_id(email_a);
  CHECK_CODE(shredkv_erase_by_identifier(view, &id_a, "via-view", 0, SHREDKV_ANALYTICS_KEEP, NULL, &err),
             SHREDKV_FAILED_PRECONDITION, err);
  CHECK_CODE(shredkv_erase_category(view, &a, "general", "via-view", SHREDKV_ANALYTICS_KEEP, NULL, &err),
             SHREDKV_FAILED_PRECONDITION, err);
  shredkv_writebatch_t* batch = shredkv_writebatch_create();
  CHECK_CODE(shredkv_write(view, batch, &err), SHREDKV_FAILED_PRECONDITION, err);
  shredkv_writebatch_destroy(batch);
  shredkv_rectification_t* fix = shredkv_rectification_create();
  CHECK_CODE(shredkv_rectify(view, &a, fix, &err), SHREDKV_FAILED_PRECONDITION, err);
  shredkv_rectification_destroy(fix);
  CHECK_CODE(shredkv_import_person(view, "{}", 2, SHREDKV_EXPORT_JSON, &made, NULL, NULL, NULL, &err),
             SHREDKV_FAILED_PRECONDITION, err);
  CHECK_CODE(shredkv_import_person2(view, "{}", 2, SHREDKV_EXPORT_JSON, SHREDKV_IMPORTED_ANALYTICS_ANONYMOUS, &made,
                                    NULL, NULL, NULL, &err),
             SHREDKV_FAILED_PRECONDITION, err);
  shredkv_key_provider_t* view_key = shredkv_key_provider_raw(new_key, sizeof new_key);
  CHECK_EQ_INT(shredkv_rotate_root_key(view, view_key, &err), SHREDKV_FAILED_PRECONDITION);
  CHECK(err != NULL && strstr(err, "shredkv_rotate_root_key_sharded") != NULL);
  shredkv_free(err);
  err = NULL;
  shredkv_key_provider_destroy(view_key);
  CHECK_STR(profile_name(store, &a, name), "ann"); /* nothing erased */

  /* Bad arguments. */
  shredkv_store_t* bad = NULL;
  CHECK_CODE(shredkv_shard(store, 2, &bad, &err), SHREDKV_INVALID_ARGUMENT, err);
  CHECK_CODE(shredkv_shard(view, 0, &bad, &err), SHREDKV_INVALID_ARGUMENT, err);
  uint32_t shard = 0;
  CHECK_CODE(shredkv_shard_of(view, &a, &shard, &err), SHREDKV_INVALID_ARGUMENT, err);
  CHECK_EQ_INT(shredkv_shard_count(NULL), 0);
  CHECK_CODE(shredkv_backup_sharded(view, backup, NULL, 0, &err), SHREDKV_INVALID_ARGUMENT, err);
  shredkv_backup_info_t* infos[3] = {NULL, NULL, NULL};
  CHECK_CODE(shredkv_backup_sharded(store, backup, infos, 3, &err), SHREDKV_INVALID_ARGUMENT, err);

  /* Closing the store closes the shard under the view; the view stays a
   * valid handle whose calls fail, released after. */
  CHECK_OK(shredkv_close(store, &err), err);
  CHECK_CODE(shredkv_get_profile(view, &a, &(shredkv_attrs_t*){NULL}, &err), SHREDKV_FAILED_PRECONDITION, err);
  CHECK_OK(shredkv_close(view, &err), err);

  /* A view released first leaves its store open. */
  CHECK_OK(open_sharded(path, 4, 0, &store, &err), err);
  CHECK_OK(shredkv_shard(store, 0, &view, &err), err);
  CHECK_OK(shredkv_close(view, &err), err);
  CHECK_STR(profile_name(store, &a, name), "ann");
  CHECK_OK(shredkv_close(store, &err), err);
  CHECK(c_test_rmtree(dir) == 0);
  return 0;
}

/* Export from one sharded store and import into another: the person
 * arrives in the shard their new ID routes to, an identifier already held
 * in any shard of the target is refused. */
static int test_export_and_import_across_sharded_stores(void) {
  char dir[256];
  CHECK(c_test_mkdtemp(dir) == 0);
  char src[256], dst[256];
  sub_path(src, dir, "src");
  sub_path(dst, dir, "dst");
  char* err = NULL;
  shredkv_store_t* from = NULL;
  shredkv_store_t* to = NULL;
  CHECK_OK(open_sharded(src, 5, 2, &from, &err), err);
  CHECK_OK(open_sharded(dst, 6, 3, &to, &err), err);
  shredkv_person_id_t a;
  char email_a[64];
  CHECK_OK(create_in_shard(from, "ann", 1, &a, email_a, &err), err);

  static sink out;
  out.len = 0;
  CHECK_OK(shredkv_export_person(from, &a, SHREDKV_EXPORT_NDJSON, sink_write, &out, &err), err);
  CHECK(out.len > 0);
  shredkv_iterator_t* it = shredkv_export(from, &a);
  int items = 0;
  for (; shredkv_iter_valid(it); shredkv_iter_next(it)) ++items;
  CHECK_OK(shredkv_iter_status(it, &err), err);
  shredkv_iter_destroy(it);
  CHECK(items >= 2);

  shredkv_person_id_t imported;
  uint64_t identifiers = 0;
  CHECK_OK(shredkv_import_person(to, out.data, out.len, SHREDKV_EXPORT_NDJSON, &imported, &identifiers, NULL, NULL,
                                 &err),
           err);
  CHECK_EQ_INT(identifiers, 1);
  char name[64];
  CHECK_STR(profile_name(to, &imported, name), "ann");
  shredkv_identifier_t id = email_id(email_a);
  shredkv_person_id_t found;
  CHECK_OK(shredkv_resolve(to, &id, &found, &err), err);
  CHECK(same_person(&found, &imported));
  /* The same file again: its identifier is held (in whichever shard). */
  CHECK_CODE(shredkv_import_person(to, out.data, out.len, SHREDKV_EXPORT_NDJSON, &imported, NULL, NULL, NULL, &err),
             SHREDKV_ALREADY_EXISTS, err);
  CHECK_OK(shredkv_close(from, &err), err);
  CHECK_OK(shredkv_close(to, &err), err);
  CHECK(c_test_rmtree(dir) == 0);
  return 0;
}

/* A backup of the whole store, an erasure after it, and a restore with the
 * live store's erasure logs (one a shard, read through the views): the
 * person erased after the backup stays erased in the restored store, the
 * others come back; a restore without logs and without saying so is
 * refused. */
static int test_backup_and_restore_keep_later_erasures(void) {
  char dir[256];
  CHECK(c_test_mkdtemp(dir) == 0);
  char live[256], backup[256], restored[256];
  sub_path(live, dir, "live");
  sub_path(backup, dir, "backup");
  sub_path(restored, dir, "restored");
  char* err = NULL;
  shredkv_store_t* store = NULL;
  CHECK_OK(open_sharded(live, 7, 2, &store, &err), err);
  shredkv_person_id_t a, b;
  char email_a[64], email_b[64];
  CHECK_OK(create_in_shard(store, "ann", 0, &a, email_a, &err), err);
  CHECK_OK(create_in_shard(store, "bob", 1, &b, email_b, &err), err);

  shredkv_backup_info_t* infos[2] = {NULL, NULL};
  CHECK_OK(shredkv_backup_sharded(store, backup, infos, 2, &err), err);
  CHECK(infos[0] != NULL && infos[1] != NULL);
  CHECK(strcmp(shredkv_backup_info_store_id(infos[0]), shredkv_backup_info_store_id(infos[1])) != 0);
  shredkv_backup_info_destroy(infos[0]);
  shredkv_backup_info_destroy(infos[1]);

  CHECK_OK(shredkv_erase(store, &b, 1, "after-backup", 0, SHREDKV_ANALYTICS_KEEP, NULL, &err), err);
  shredkv_erasure_log_t* logs[2] = {NULL, NULL};
  for (uint32_t i = 0; i < 2; ++i) {
    shredkv_store_t* view = NULL;
    CHECK_OK(shredkv_shard(store, i, &view, &err), err);
    CHECK_OK(shredkv_read_erasure_log(view, &logs[i], &err), err);
    CHECK_OK(shredkv_close(view, &err), err);
  }
  CHECK_OK(shredkv_close(store, &err), err);

  shredkv_options_t* options = test_options(restored, 7);
  CHECK_CODE(shredkv_restore_sharded(backup, options, NULL, 0, 0, SHREDKV_CUSTODY_KEYS_UNSPECIFIED, NULL, NULL, &err),
             SHREDKV_INVALID_ARGUMENT, err);
  shredkv_erasure_log_applied_t applied;
  memset(&applied, 0xff, sizeof applied);
  CHECK_OK(shredkv_restore_sharded(backup, options, (const shredkv_erasure_log_t* const*)logs, 2, 0,
                                   SHREDKV_CUSTODY_KEYS_UNSPECIFIED, NULL, &applied, &err),
           err);
  CHECK_EQ_INT(applied.people_erased, 1);
  CHECK_EQ_INT(applied.categories_erased, 0);
  shredkv_erasure_log_destroy(logs[0]);
  shredkv_erasure_log_destroy(logs[1]);
  CHECK_OK(shredkv_open_sharded(options, 0, &store, &err), err);
  shredkv_options_destroy(options);
  CHECK_EQ_INT(shredkv_shard_count(store), 2);
  char name[64];
  CHECK_STR(profile_name(store, &a, name), "ann");
  CHECK_EQ_INT(profile_code(store, &b), SHREDKV_ERASED);
  CHECK_OK(shredkv_close(store, &err), err);
  CHECK(c_test_rmtree(dir) == 0);
  return 0;
}

/* The closed store moved to a new root key: the old key no longer opens
 * it, the new one does and reads the data. */
static int test_rotate_root_key_of_a_closed_sharded_store(void) {
  char dir[256];
  CHECK(c_test_mkdtemp(dir) == 0);
  char* err = NULL;
  shredkv_store_t* store = NULL;
  CHECK_OK(open_sharded(dir, 8, 2, &store, &err), err);
  shredkv_person_id_t a;
  char email_a[64];
  CHECK_OK(create_in_shard(store, "ann", 1, &a, email_a, &err), err);
  CHECK_OK(shredkv_close(store, &err), err);

  shredkv_options_t* options = test_options(dir, 8);
  char new_key[32];
  make_key(new_key, 9);
  shredkv_key_provider_t* provider = shredkv_key_provider_raw(new_key, sizeof new_key);
  CHECK_OK(shredkv_rotate_root_key_sharded(options, provider, &err), err);
  shredkv_key_provider_destroy(provider);
  CHECK_CODE(shredkv_open_sharded(options, 0, &store, &err), SHREDKV_WRONG_KEY, err);
  shredkv_options_destroy(options);
  CHECK_OK(open_sharded(dir, 9, 0, &store, &err), err);
  char name[64];
  CHECK_STR(profile_name(store, &a, name), "ann");
  CHECK_OK(shredkv_close(store, &err), err);
  CHECK(c_test_rmtree(dir) == 0);
  return 0;
}

static const c_test tests[] = {
    {"open_routes_calls_to_the_person_s_shard", test_open_routes_calls_to_the_person_s_shard},
    {"identifiers_stay_unique_across_shards", test_identifiers_stay_unique_across_shards},
    {"erase_over_two_shards_gives_one_receipt_and_a_part_a_shard", test_erase_over_two_shards_gives_one_receipt_and_a_part_a_shard},
    {"shard_only_calls_are_refused_on_the_whole_and_work_on_a_view", test_shard_only_calls_are_refused_on_the_whole_and_work_on_a_view},
    {"export_and_import_across_sharded_stores", test_export_and_import_across_sharded_stores},
    {"backup_and_restore_keep_later_erasures", test_backup_and_restore_keep_later_erasures},
    {"rotate_root_key_of_a_closed_sharded_store", test_rotate_root_key_of_a_closed_sharded_store},
};

int main(int argc, char** argv) { return c_test_main(argc, argv, tests, sizeof tests / sizeof tests[0]); }
