// Which sanitizer a test binary is built with, for tests that must skip or
// scale down under one. GCC defines __SANITIZE_ADDRESS__ and
// __SANITIZE_THREAD__; clang 14 does not and answers __has_feature instead
// (the ASan+UBSan tree of scripts/test.sh is built with clang).
#ifndef SHREDKV_TESTS_SANITIZERS_H_
#define SHREDKV_TESTS_SANITIZERS_H_

#if defined(__SANITIZE_ADDRESS__)
#define SHREDKV_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SHREDKV_TEST_ASAN 1
#endif
#endif

#if defined(__SANITIZE_THREAD__)
#define SHREDKV_TEST_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define SHREDKV_TEST_TSAN 1
#endif
#endif

#endif  // SHREDKV_TESTS_SANITIZERS_H_
