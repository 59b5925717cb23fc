// Built-in KeyProviders: key file, passphrase (Argon2id), raw bytes.
#include "shredkv/key_provider.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "crypto/secure_memory.h"

namespace shredkv {
namespace {

std::string Errno(const std::string& what, const std::string& path) {
  return what + " '" + path + "': " + std::strerror(errno);
}

class FileKeyProvider final : public KeyProvider {
 public:
  explicit FileKeyProvider(std::string path) : path_(std::move(path)) {}

  Result<RootKey> GetRootKey(const KeyRequest&) override {
    int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      if (errno == ENOENT) return Status::NotFound("root key file '" + path_ + "' does not exist");
      return Status::IOError(Errno("cannot open root key file", path_));
    }
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
      ::close(fd);
      return Status::IOError(Errno("cannot stat root key file", path_));
    }
    if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
      ::close(fd);
      return Status::InvalidArgument("root key file '" + path_ +
                                     "' is readable by group or others; chmod 600 it");
    }
    if (st.st_size != static_cast<off_t>(RootKey::kSize)) {
      ::close(fd);
      return Status::InvalidArgument("root key file '" + path_ + "' must hold exactly 32 bytes, has " +
                                     std::to_string(st.st_size));
    }
    auto buf = crypto::SecretKey::FromBytes(std::string(RootKey::kSize, '\0'));
    if (!buf.ok()) {
      ::close(fd);
      return buf.status();
    }
    auto* dst = const_cast<std::uint8_t*>(buf->data());
    std::size_t got = 0;
    while (got < RootKey::kSize) {
      ssize_t n = ::read(fd, dst + got, RootKey::kSize - got);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        ::close(fd);
        return Status::IOError(Errno("cannot read root key file", path_));
      }
      got += static_cast<std::size_t>(n);
    }
    ::close(fd);
    return RootKey::FromBytes(buf->view());
  }

  std::string Describe() const override { return "file:" + path_; }

 private:
  std::string path_;
};

class PassphraseKeyProvider final : public KeyProvider {
 public:
  PassphraseKeyProvider(std::string_view passphrase, PassphraseOptions options)
      : options_(options), length_(passphrase.size()) {
    (void)crypto::Init();
    // Guarded copy of the passphrase (at least one byte so the pointer is valid).
    passphrase_ = static_cast<char*>(sodium_malloc(length_ + 1));
    if (passphrase_ != nullptr) std::memcpy(passphrase_, passphrase.data(), length_);
  }
  ~PassphraseKeyProvider() override {
    if (passphrase_ != nullptr) sodium_free(passphrase_);
  }
  PassphraseKeyProvider(const PassphraseKeyProvider&) = delete;
  PassphraseKeyProvider& operator=(const PassphraseKeyProvider&) = delete;

  Result<RootKey> GetRootKey(const KeyRequest& request) override {
    if (passphrase_ == nullptr) return Status::Internal("guarded memory exhausted");
    if (length_ == 0) return Status::InvalidArgument("empty passphrase");
    if (request.store_salt.size() != crypto_pwhash_SALTBYTES) {
      return Status::InvalidArgument("store salt must be 16 bytes");
    }
    const unsigned long long ops = options_.interactive_limits ? crypto_pwhash_OPSLIMIT_INTERACTIVE
                                                               : crypto_pwhash_OPSLIMIT_MODERATE;
    const std::size_t mem = options_.interactive_limits ? crypto_pwhash_MEMLIMIT_INTERACTIVE
                                                        : crypto_pwhash_MEMLIMIT_MODERATE;
    auto out = crypto::SecretKey::FromBytes(std::string(RootKey::kSize, '\0'));
    if (!out.ok()) return out.status();
    if (crypto_pwhash(const_cast<std::uint8_t*>(out->data()), RootKey::kSize, passphrase_,
                      length_,
                      reinterpret_cast<const unsigned char*>(request.store_salt.data()), ops, mem,
                      crypto_pwhash_ALG_ARGON2ID13) != 0) {
      return Status::Internal("Argon2id ran out of memory");
    }
    return RootKey::FromBytes(out->view());
  }

  std::string Describe() const override { return "passphrase (Argon2id)"; }

 private:
  PassphraseOptions options_;
  std::size_t length_;
  char* passphrase_ = nullptr;
};

class RawKeyProvider final : public KeyProvider {
 public:
  explicit RawKeyProvider(std::string_view bytes) : key_(crypto::SecretKey::FromBytes(bytes)) {}

  Result<RootKey> GetRootKey(const KeyRequest&) override {
    if (!key_.ok()) return key_.status();
    return RootKey::FromBytes(key_->view());
  }
  std::string Describe() const override { return "raw key"; }

 private:
  Result<crypto::SecretKey> key_;
};

}  // namespace

std::shared_ptr<KeyProvider> NewFileKeyProvider(std::string path) {
  return std::make_shared<FileKeyProvider>(std::move(path));
}

std::shared_ptr<KeyProvider> NewPassphraseKeyProvider(std::string_view passphrase,
                                                      PassphraseOptions options) {
  return std::make_shared<PassphraseKeyProvider>(passphrase, options);
}

std::shared_ptr<KeyProvider> NewRawKeyProvider(std::string_view key_bytes) {
  return std::make_shared<RawKeyProvider>(key_bytes);
}

Status CreateKeyFile(const std::string& path) {
  if (Status s = crypto::Init(); !s.ok()) return s;
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    if (errno == EEXIST) return Status::AlreadyExists("key file '" + path + "' already exists");
    return Status::IOError(Errno("cannot create key file", path));
  }
  auto key = crypto::SecretKey::Random();
  if (!key.ok()) {
    ::close(fd);
    ::unlink(path.c_str());
    return key.status();
  }
  std::size_t written = 0;
  while (written < RootKey::kSize) {
    ssize_t n = ::write(fd, key->data() + written, RootKey::kSize - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      Status s = Status::IOError(Errno("cannot write key file", path));
      ::close(fd);
      ::unlink(path.c_str());
      return s;
    }
    written += static_cast<std::size_t>(n);
  }
  if (::fchmod(fd, 0600) != 0 || ::fsync(fd) != 0) {
    Status s = Status::IOError(Errno("cannot sync key file", path));
    ::close(fd);
    ::unlink(path.c_str());
    return s;
  }
  ::close(fd);
  // The new directory entry must survive power loss too.
  const auto slash = path.find_last_of('/');
  const std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
  int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd >= 0) {
    const int rc = ::fsync(dir_fd);
    ::close(dir_fd);
    if (rc != 0) return Status::IOError(Errno("cannot sync the directory of", path));
  }
  return Status::OK();
}

}  // namespace shredkv
