// EpochKeyCustody over a PKCS#11 token (include/shredkv/key_custody.h).
//
// The module is loaded with dlopen and initialised once a process (C_Initialize
// with OS locking); several custodies over one module share it, and the last
// one to go finalises it. Each custody keeps one logged-in read-write session
// and serialises its calls on it (PKCS#11 sessions are not thread-safe).
#include <dlfcn.h>
#include <p11-kit/pkcs11.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <mutex>
#include <optional>
#include <vector>

#include "crypto/random.h"
#include "crypto/secure_memory.h"
#include "shredkv/key_custody.h"

namespace shredkv {
namespace {

constexpr std::size_t kIvBytes = 12;
constexpr std::size_t kTagBytes = 16;
constexpr std::size_t kMaxLabel = 64;

std::string Rv(CK_RV rv) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "CKR 0x%lx", static_cast<unsigned long>(rv));
  return buf;
}

// One loaded and initialised module, shared by every custody over it.
struct Module {
  void* handle = nullptr;
  CK_FUNCTION_LIST* fns = nullptr;
  int users = 0;
  // False if someone else in the process (the application, an OpenSSL
  // provider) had initialised the module: then it is theirs to finalise.
  bool initialised_here = true;
};

std::mutex& ModulesMutex() {
  static std::mutex mu;
  return mu;
}
std::map<std::string, Module>& Modules() {
  static std::map<std::string, Module> modules;
  return modules;
}

Result<CK_FUNCTION_LIST*> AcquireModule(const std::string& path) {
  std::lock_guard lock(ModulesMutex());
  auto& modules = Modules();
  auto it = modules.find(path);
  if (it != modules.end()) {
    ++it->second.users;
    return it->second.fns;
  }
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return Status::NotFound("PKCS#11 module '" + path + "' does not exist");
  void* handle = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* err = ::dlerror();
    return Status::IOError("cannot load PKCS#11 module '" + path + "': " + (err ? err : "dlopen failed"));
  }
  auto get_list = reinterpret_cast<CK_C_GetFunctionList>(::dlsym(handle, "C_GetFunctionList"));
  CK_FUNCTION_LIST* fns = nullptr;
  if (get_list == nullptr || get_list(&fns) != CKR_OK || fns == nullptr) {
    ::dlclose(handle);
    return Status::IOError("'" + path + "' is not a PKCS#11 module (no C_GetFunctionList)");
  }
  CK_C_INITIALIZE_ARGS args{};
  args.flags = CKF_OS_LOCKING_OK;
  CK_RV rv = fns->C_Initialize(&args);
  if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED) {
    ::dlclose(handle);
    return Status::IOError("PKCS#11 module '" + path + "' failed to initialise: " + Rv(rv));
  }
  modules.emplace(path, Module{handle, fns, 1, rv == CKR_OK});
  return fns;
}

void ReleaseModule(const std::string& path) {
  std::lock_guard lock(ModulesMutex());
  auto& modules = Modules();
  auto it = modules.find(path);
  if (it == modules.end() || --it->second.users > 0) return;
  if (it->second.initialised_here) it->second.fns->C_Finalize(nullptr);
  // The module stays mapped: some modules (OpenSSL-based ones among them)
  // register exit handlers that must still find their code at exit.
  modules.erase(it);
}

std::string TrimmedLabel(const unsigned char (&label)[32]) {
  std::string s(reinterpret_cast<const char*>(label), sizeof label);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\0')) s.pop_back();
  return s;
}

class Pkcs11Custody final : public EpochKeyCustody {
 public:
  Pkcs11Custody(Pkcs11Options options, CK_FUNCTION_LIST* fns)
      : options_(std::move(options)), fns_(fns) {}

  ~Pkcs11Custody() override {
    // No C_Logout: a PKCS#11 login belongs to the whole process, and logging
    // out here would log out every other custody over this token (their
    // searches would then miss the private keys). The login ends with the
    // process's last session.
    if (session_ != CK_INVALID_HANDLE) fns_->C_CloseSession(session_);
    ReleaseModule(options_.module_path);
  }

  Status Connect(const crypto::SecretBytes& pin) {
    CK_ULONG count = 0;
    CK_RV rv = fns_->C_GetSlotList(CK_TRUE, nullptr, &count);
    if (rv != CKR_OK) return Status::IOError(Where("listing slots") + Rv(rv));
    std::vector<CK_SLOT_ID> slots(count);
    if (count > 0 && (rv = fns_->C_GetSlotList(CK_TRUE, slots.data(), &count)) != CKR_OK) {
      return Status::IOError(Where("listing slots") + Rv(rv));
    }
    slots.resize(count);
    std::optional<CK_SLOT_ID> found;
    for (CK_SLOT_ID slot : slots) {
      CK_TOKEN_INFO info{};
      if (fns_->C_GetTokenInfo(slot, &info) == CKR_OK && TrimmedLabel(info.label) == options_.token_label) {
        found = slot;
        break;
      }
    }
    if (!found) return Status::NotFound(Describe() + ": no token with that label");
    rv = fns_->C_OpenSession(*found, CKF_SERIAL_SESSION | CKF_RW_SESSION, nullptr, nullptr, &session_);
    if (rv != CKR_OK) return Status::IOError(Where("opening a session") + Rv(rv));
    rv = fns_->C_Login(session_, CKU_USER, const_cast<CK_UTF8CHAR*>(pin.data()), pin.size());
    if (rv == CKR_PIN_INCORRECT || rv == CKR_PIN_INVALID || rv == CKR_PIN_LEN_RANGE || rv == CKR_PIN_LOCKED) {
      return Status::WrongKey(Describe() + ": the token refused the PIN (" + Rv(rv) + ")");
    }
    if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN) return Status::IOError(Where("logging in") + Rv(rv));
    return Status::OK();
  }

  Status CreateKey(std::string_view label) override {
    if (Status v = CheckLabel(label); !v.ok()) return v;
    std::lock_guard lock(mu_);
    auto existing = Find(label);
    if (!existing.ok()) return existing.status();
    if (!existing->empty()) return Status::AlreadyExists(Describe() + ": a key labelled '" + std::string(label) + "' exists");
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE type = CKK_AES;
    CK_ULONG len = 32;
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    std::string l(label);
    CK_ATTRIBUTE tmpl[] = {
        {CKA_CLASS, &cls, sizeof cls},         {CKA_KEY_TYPE, &type, sizeof type},
        {CKA_VALUE_LEN, &len, sizeof len},     {CKA_TOKEN, &yes, sizeof yes},
        {CKA_PRIVATE, &yes, sizeof yes},       {CKA_SENSITIVE, &yes, sizeof yes},
        {CKA_EXTRACTABLE, &no, sizeof no},     {CKA_ENCRYPT, &yes, sizeof yes},
        {CKA_DECRYPT, &yes, sizeof yes},       {CKA_WRAP, &no, sizeof no},
        {CKA_UNWRAP, &no, sizeof no},          {CKA_LABEL, l.data(), l.size()},
        {CKA_ID, l.data(), l.size()},
    };
    CK_MECHANISM mech{CKM_AES_KEY_GEN, nullptr, 0};
    CK_OBJECT_HANDLE key = CK_INVALID_HANDLE;
    CK_RV rv = fns_->C_GenerateKey(session_, &mech, tmpl, sizeof tmpl / sizeof tmpl[0], &key);
    if (rv != CKR_OK) return Status::IOError(Where("generating key '" + l + "'") + Rv(rv));
    return Status::OK();
  }

  Result<std::string> Wrap(std::string_view label, std::string_view epoch_key) override {
    if (Status v = CheckLabel(label); !v.ok()) return v;
    if (epoch_key.size() != RootKey::kSize) return Status::InvalidArgument("an epoch key is 32 bytes");
    std::lock_guard lock(mu_);
    auto key = FindOne(label);
    if (!key.ok()) return key.status();
    auto iv = crypto::RandomArray<kIvBytes>();
    std::string l(label);
    CK_GCM_PARAMS params{};
    params.iv_ptr = iv.data();
    params.iv_len = iv.size();
    params.iv_bits = iv.size() * 8;
    params.aad_ptr = reinterpret_cast<unsigned char*>(l.data());
    params.aad_len = l.size();
    params.tag_bits = kTagBytes * 8;
    CK_MECHANISM mech{CKM_AES_GCM, &params, sizeof params};
    CK_RV rv = fns_->C_EncryptInit(session_, &mech, *key);
    if (rv != CKR_OK) return Status::IOError(Where("encrypting under '" + l + "'") + Rv(rv));
    std::string out(kIvBytes + epoch_key.size() + kTagBytes, '\0');
    std::memcpy(out.data(), iv.data(), kIvBytes);
    CK_ULONG out_len = out.size() - kIvBytes;
    rv = fns_->C_Encrypt(session_, reinterpret_cast<CK_BYTE*>(const_cast<char*>(epoch_key.data())), epoch_key.size(),
                         reinterpret_cast<CK_BYTE*>(out.data() + kIvBytes), &out_len);
    if (rv != CKR_OK) return Status::IOError(Where("encrypting under '" + l + "'") + Rv(rv));
    out.resize(kIvBytes + out_len);
    return out;
  }

  Result<RootKey> Unwrap(std::string_view label, std::string_view wrapped) override {
    if (Status v = CheckLabel(label); !v.ok()) return v;
    if (wrapped.size() != kIvBytes + RootKey::kSize + kTagBytes) {
      return Status::Corruption(Describe() + ": a wrapped epoch key has the wrong length");
    }
    std::lock_guard lock(mu_);
    auto key = FindOne(label);
    if (!key.ok()) return key.status();
    std::string l(label);
    CK_GCM_PARAMS params{};
    params.iv_ptr = reinterpret_cast<unsigned char*>(const_cast<char*>(wrapped.data()));
    params.iv_len = kIvBytes;
    params.iv_bits = kIvBytes * 8;
    params.aad_ptr = reinterpret_cast<unsigned char*>(l.data());
    params.aad_len = l.size();
    params.tag_bits = kTagBytes * 8;
    CK_MECHANISM mech{CKM_AES_GCM, &params, sizeof params};
    // The plaintext lands in guarded memory only (allocated first: a failed
    // call must not leave a decryption active on the session).
    auto plain = crypto::SecretBytes::Allocate(RootKey::kSize + kTagBytes);
    if (!plain.ok()) return plain.status();
    CK_RV rv = fns_->C_DecryptInit(session_, &mech, *key);
    if (rv != CKR_OK) return Status::IOError(Where("decrypting under '" + l + "'") + Rv(rv));
    CK_ULONG plain_len = plain->size();
    const std::string_view body = wrapped.substr(kIvBytes);
    rv = fns_->C_Decrypt(session_, reinterpret_cast<CK_BYTE*>(const_cast<char*>(body.data())), body.size(),
                         plain->mutable_data(), &plain_len);
    // A GCM tag mismatch is CKR_ENCRYPTED_DATA_INVALID by the standard;
    // SoftHSM2 reports CKR_GENERAL_ERROR for it.
    if (rv == CKR_ENCRYPTED_DATA_INVALID || rv == CKR_ENCRYPTED_DATA_LEN_RANGE || rv == CKR_GENERAL_ERROR) {
      return Status::AuthenticationFailed(Describe() + ": the wrapped epoch key does not open under '" + l + "' (" +
                                          Rv(rv) + ")");
    }
    if (rv != CKR_OK) return Status::IOError(Where("decrypting under '" + l + "'") + Rv(rv));
    if (plain_len != RootKey::kSize) return Status::Corruption(Describe() + ": an unwrapped epoch key has the wrong length");
    return RootKey::FromBytes(std::string_view(reinterpret_cast<const char*>(plain->data()), RootKey::kSize));
  }

  Status DestroyKey(std::string_view label) override {
    if (Status v = CheckLabel(label); !v.ok()) return v;
    std::lock_guard lock(mu_);
    auto keys = Find(label);
    if (!keys.ok()) return keys.status();
    for (CK_OBJECT_HANDLE k : *keys) {
      CK_RV rv = fns_->C_DestroyObject(session_, k);
      if (rv != CKR_OK && rv != CKR_OBJECT_HANDLE_INVALID) {
        return Status::IOError(Where("destroying key '" + std::string(label) + "'") + Rv(rv));
      }
    }
    return Status::OK();
  }

  Result<bool> HasKey(std::string_view label) override {
    if (Status v = CheckLabel(label); !v.ok()) return v;
    std::lock_guard lock(mu_);
    auto keys = Find(label);
    if (!keys.ok()) return keys.status();
    return !keys->empty();
  }

  std::string Describe() const override {
    return "pkcs11:" + options_.module_path + " token '" + options_.token_label + "'";
  }

 private:
  std::string Where(const std::string& what) const { return Describe() + ": " + what + ": "; }

  static Status CheckLabel(std::string_view label) {
    if (label.empty() || label.size() > kMaxLabel ||
        !std::all_of(label.begin(), label.end(), [](char c) { return c >= 0x21 && c <= 0x7e; })) {
      return Status::InvalidArgument("a custody key label is 1..64 printable ASCII characters");
    }
    return Status::OK();
  }

  // The secret keys labelled `label`. REQUIRES: mu_ held. The session must
  // be logged in: private objects are invisible to a public session, and an
  // empty search there would read as "destroyed".
  Result<std::vector<CK_OBJECT_HANDLE>> Find(std::string_view label) {
    CK_SESSION_INFO info{};
    CK_RV state_rv = fns_->C_GetSessionInfo(session_, &info);
    if (state_rv != CKR_OK) return Status::IOError(Where("reading the session state") + Rv(state_rv));
    if (info.state != CKS_RW_USER_FUNCTIONS) {
      return Status::FailedPrecondition(Describe() + ": the session is no longer logged in to the token");
    }
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    std::string l(label);
    CK_ATTRIBUTE tmpl[] = {{CKA_CLASS, &cls, sizeof cls}, {CKA_LABEL, l.data(), l.size()}};
    CK_RV rv = fns_->C_FindObjectsInit(session_, tmpl, 2);
    if (rv != CKR_OK) return Status::IOError(Where("searching for '" + l + "'") + Rv(rv));
    std::vector<CK_OBJECT_HANDLE> found;
    CK_OBJECT_HANDLE batch[16];
    CK_ULONG n = 0;
    while ((rv = fns_->C_FindObjects(session_, batch, 16, &n)) == CKR_OK && n > 0) {
      found.insert(found.end(), batch, batch + n);
    }
    fns_->C_FindObjectsFinal(session_);
    if (rv != CKR_OK) return Status::IOError(Where("searching for '" + l + "'") + Rv(rv));
    return found;
  }

  // The one key labelled `label`: KeyDestroyed if there is none.
  Result<CK_OBJECT_HANDLE> FindOne(std::string_view label) {
    auto keys = Find(label);
    if (!keys.ok()) return keys.status();
    if (keys->empty()) {
      return Status::KeyDestroyed(Describe() + ": custody key '" + std::string(label) +
                                  "' does not exist (destroyed by a key rotation)");
    }
    if (keys->size() > 1) {
      return Status::Corruption(Describe() + ": " + std::to_string(keys->size()) + " keys are labelled '" +
                                std::string(label) + "'");
    }
    return keys->front();
  }

  Pkcs11Options options_;
  CK_FUNCTION_LIST* fns_;
  std::mutex mu_;
  CK_SESSION_HANDLE session_ = CK_INVALID_HANDLE;
};

}  // namespace

Result<std::shared_ptr<EpochKeyCustody>> NewPkcs11Custody(const Pkcs11Options& options) {
  if (options.module_path.empty()) return Status::InvalidArgument("PKCS#11 custody needs a module path");
  if (options.token_label.empty()) return Status::InvalidArgument("PKCS#11 custody needs a token label");
  if (options.pin.empty()) return Status::InvalidArgument("PKCS#11 custody needs a PIN");
  auto pin = crypto::SecretBytes::Copy(options.pin);
  if (!pin.ok()) return pin.status();
  auto fns = AcquireModule(options.module_path);
  if (!fns.ok()) return fns.status();
  Pkcs11Options kept = options;
  crypto::Wipe(kept.pin.data(), kept.pin.size());
  kept.pin.clear();
  auto custody = std::make_shared<Pkcs11Custody>(std::move(kept), *fns);
  if (Status s = custody->Connect(*pin); !s.ok()) return s;
  return std::shared_ptr<EpochKeyCustody>(std::move(custody));
}

}  // namespace shredkv
