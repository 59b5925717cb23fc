/* A small test harness for the C API suite (C11, no C++): each test is a
 * `static int test_<name>(void)` returning 0 on success; CHECK* macros print
 * file:line (and the errptr message) and return 1. Each executable lists its
 * tests in a `static const c_test tests[]` table and calls c_test_main, which
 * runs the test named in argv[1] (all with no argument, the names with
 * --list); an unknown name is a failure. */
#ifndef SHREDKV_TESTS_CAPI_C_TEST_H_
#define SHREDKV_TESTS_CAPI_C_TEST_H_

#define _XOPEN_SOURCE 700

#include <ftw.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shredkv/c.h"

typedef struct c_test {
  const char* name;
  int (*fn)(void);
} c_test;

#define CHECK(cond)                                                      \
  do {                                                                   \
    if (!(cond)) {                                                       \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      return 1;                                                          \
    }                                                                    \
  } while (0)

#define CHECK_EQ_INT(a, b)                                                         \
  do {                                                                             \
    long long va_ = (long long)(a), vb_ = (long long)(b);                          \
    if (va_ != vb_) {                                                              \
      fprintf(stderr, "%s:%d: CHECK_EQ failed: %s == %s (%lld vs %lld)\n", __FILE__, \
              __LINE__, #a, #b, va_, vb_);                                         \
      return 1;                                                                    \
    }                                                                              \
  } while (0)

#define CHECK_STR(a, b)                                                             \
  do {                                                                              \
    const char* sa_ = (a);                                                          \
    const char* sb_ = (b);                                                          \
    if (sa_ == NULL || sb_ == NULL || strcmp(sa_, sb_) != 0) {                       \
      fprintf(stderr, "%s:%d: CHECK_STR failed: %s == %s (\"%s\" vs \"%s\")\n",        \
              __FILE__, __LINE__, #a, #b, sa_ ? sa_ : "(null)", sb_ ? sb_ : "(null)"); \
      return 1;                                                                     \
    }                                                                               \
  } while (0)

/* rc must be SHREDKV_OK; prints and frees *err otherwise. */
#define CHECK_OK(rc_expr, err)                                                     \
  do {                                                                             \
    int rc_ = (rc_expr);                                                           \
    if (rc_ != SHREDKV_OK) {                                                       \
      fprintf(stderr, "%s:%d: %s returned %s: %s\n", __FILE__, __LINE__, #rc_expr, \
              shredkv_code_name(rc_), (err) != NULL ? (err) : "(no message)");     \
      shredkv_free(err);                                                           \
      (err) = NULL;                                                                \
      return 1;                                                                    \
    }                                                                              \
  } while (0)

/* rc must be `code`; the message (if any) is freed. */
#define CHECK_CODE(rc_expr, code, err)                                               \
  do {                                                                               \
    int rc_ = (rc_expr);                                                             \
    if (rc_ != (code)) {                                                             \
      fprintf(stderr, "%s:%d: %s returned %s, wanted %s: %s\n", __FILE__, __LINE__,  \
              #rc_expr, shredkv_code_name(rc_), shredkv_code_name(code),             \
              (err) != NULL ? (err) : "(no message)");                               \
      shredkv_free(err);                                                             \
      (err) = NULL;                                                                  \
      return 1;                                                                      \
    }                                                                                \
    shredkv_free(err);                                                               \
    (err) = NULL;                                                                    \
  } while (0)

static int c_test_rm_entry(const char* path, const struct stat* sb, int flag, struct FTW* ftw) {
  (void)sb;
  (void)flag;
  (void)ftw;
  return remove(path);
}

/* Removes a directory tree; 0 on success. */
static inline int c_test_rmtree(const char* dir) {
  return nftw(dir, c_test_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* A fresh directory under $TMPDIR (or /tmp) in `out` (256 bytes). */
static inline int c_test_mkdtemp(char out[256]) {
  const char* base = getenv("TMPDIR");
  snprintf(out, 256, "%s/shredkv-capi-XXXXXX", base != NULL && base[0] != '\0' ? base : "/tmp");
  return mkdtemp(out) != NULL ? 0 : -1;
}

static inline int c_test_main(int argc, char** argv, const c_test* tests, size_t n) {
  if (argc > 1 && strcmp(argv[1], "--list") == 0) {
    for (size_t i = 0; i < n; ++i) printf("%s\n", tests[i].name);
    return 0;
  }
  int failed = 0, ran = 0;
  for (size_t i = 0; i < n; ++i) {
    if (argc > 1 && strcmp(argv[1], tests[i].name) != 0) continue;
    ++ran;
    printf("[ RUN  ] %s\n", tests[i].name);
    fflush(stdout);
    const int rc = tests[i].fn();
    printf("[ %s ] %s\n", rc == 0 ? " OK " : "FAIL", tests[i].name);
    if (rc != 0) ++failed;
  }
  if (ran == 0) {
    fprintf(stderr, "no test named %s\n", argc > 1 ? argv[1] : "(none)");
    return 1;
  }
  return failed == 0 ? 0 : 1;
}

#endif /* SHREDKV_TESTS_CAPI_C_TEST_H_ */
