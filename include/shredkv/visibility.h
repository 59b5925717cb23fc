// shredkv — SHREDKV_EXPORT marks what the shared library exports: the C API
// (c.h) and the C++ API (the other public headers). The library is compiled
// with hidden visibility, so nothing else (the layers under lib/, LMDB,
// libsodium, nlohmann-json) is visible to programs linking libshredkv.so.
// In C++ it is a standard attribute, so it combines with [[nodiscard]].
#ifndef SHREDKV_VISIBILITY_H_
#define SHREDKV_VISIBILITY_H_

#if defined(__cplusplus) && (defined(__GNUC__) || defined(__clang__))
#define SHREDKV_EXPORT [[gnu::visibility("default")]]
#elif defined(__GNUC__) || defined(__clang__)
#define SHREDKV_EXPORT __attribute__((visibility("default")))
#else
#define SHREDKV_EXPORT
#endif

#endif  // SHREDKV_VISIBILITY_H_
