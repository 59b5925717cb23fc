// Keyed BLAKE2b (libsodium crypto_generichash) for values an attacker must
// not be able to guess or confirm: identifier index entries, suppression
// entries, record-key hashes, the audit chain.
// Thread safety: stateless.
#ifndef SHREDKV_CRYPTO_KEYED_HASH_H_
#define SHREDKV_CRYPTO_KEYED_HASH_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "crypto/secure_memory.h"
#include "shredkv/status.h"

namespace shredkv::crypto {

// BLAKE2b of the concatenation of `parts`, keyed with `key`, `out_size` bytes
// (16..64). Each part is length-prefixed, so ("ab","c") ≠ ("a","bc").
std::string KeyedHash(const SecretKey& key, std::size_t out_size,
                      std::initializer_list<std::string_view> parts);

// One-shot keyed BLAKE2b of `message` (no length prefixes: the caller gives
// it a fixed layout) under the 32-byte key `key`, `out_size` bytes (16..64)
// into `out`. For per-row derivations on hot paths, where `key` is a derived
// key held on the caller's stack (wiped by the caller).
void KeyedHashRaw(std::string_view key, std::string_view message, unsigned char* out, std::size_t out_size);

// SipHash-2-4 (libsodium crypto_shorthash_siphash24) of `message` under the
// 16-byte key `key` (REQUIRES: key.size() == 16): a 64-bit pseudo-random
// function, about ten times cheaper than BLAKE2b on short inputs, for
// per-row identifiers that must look random without the key and need no
// more than 64 bits (analytics row ids within a group, format.md §5.4).
std::uint64_t ShortKeyedHash(std::string_view key, std::string_view message);

// Unkeyed BLAKE2b-256 of `data` (for the audit hash chain).
std::string Hash256(std::string_view data);
// Unkeyed BLAKE2b-256 of the file at `path`, read in 1 MiB pieces: a digest
// an authenticated MANIFEST can name (a backup's files; XXH3 detects damage
// only). NotFound if it does not exist; IOError if it cannot be read.
Result<std::string> FileHash256(const std::string& path);

}  // namespace shredkv::crypto

#endif  // SHREDKV_CRYPTO_KEYED_HASH_H_
