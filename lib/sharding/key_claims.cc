#include "sharding/key_claims.h"

#include <algorithm>
#include <utility>

namespace shredkv::sharding {

KeyClaims::Held::Held(Held&& other) noexcept
    : owner_(std::exchange(other.owner_, nullptr)),
      keys_(std::move(other.keys_)),
      mode_(other.mode_),
      holder_(other.holder_) {}

KeyClaims::Held& KeyClaims::Held::operator=(Held&& other) noexcept {
  if (this != &other) {
    Release();
    owner_ = std::exchange(other.owner_, nullptr);
    keys_ = std::move(other.keys_);
    mode_ = other.mode_;
    holder_ = other.holder_;
  }
  return *this;
}

void KeyClaims::Held::Release() {
  if (owner_ == nullptr) return;
  std::exchange(owner_, nullptr)->Release(keys_, mode_, holder_);
  keys_.clear();
}

KeyClaims::Outcome KeyClaims::Check(const std::vector<std::string>& keys, Mode mode, std::thread::id self) const {
  const bool holds_some = holding_.count(self) != 0;
  Outcome outcome = Outcome::kFree;
  for (const std::string& k : keys) {
    auto it = keys_.find(k);
    if (it == keys_.end()) continue;
    const KeyState& st = it->second;
    const bool self_shared = std::find(st.shared.begin(), st.shared.end(), self) != st.shared.end();
    if (st.exclusive == self || (mode == Mode::kExclusive && self_shared)) return Outcome::kNeverFree;
    if (st.exclusive.has_value()) {
      outcome = Outcome::kTaken;
    } else if (mode == Mode::kExclusive) {
      if (!st.shared.empty()) outcome = Outcome::kTaken;
    } else if (st.exclusive_waiting != 0 && !holds_some) {
      outcome = Outcome::kTaken;  // behind the waiting erasure
    }
  }
  return outcome;
}

KeyClaims::Held KeyClaims::Take(std::vector<std::string> keys, Mode mode, std::thread::id self) {
  for (const std::string& k : keys) {
    KeyState& st = keys_[k];
    if (mode == Mode::kExclusive) {
      st.exclusive = self;
    } else {
      st.shared.push_back(self);
    }
  }
  holding_[self] += keys.size();
  return Held(this, std::move(keys), mode, self);
}

Result<std::optional<KeyClaims::Held>> KeyClaims::ClaimImpl(std::vector<std::string> keys, Mode mode,
                                                            std::string_view what, bool wait) {
  std::sort(keys.begin(), keys.end());
  keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
  const std::thread::id self = std::this_thread::get_id();
  std::unique_lock lock(mu_);
  bool registered = false;  // counted in exclusive_waiting of each key
  auto unregister = [&] {
    if (!registered) return;
    for (const std::string& k : keys) {
      auto it = keys_.find(k);
      --it->second.exclusive_waiting;
      if (it->second.exclusive_waiting == 0 && it->second.shared.empty() && !it->second.exclusive) keys_.erase(it);
    }
    --exclusive_waiters_;
    registered = false;
  };
  for (;;) {
    const Outcome outcome = Check(keys, mode, self);
    if (outcome == Outcome::kNeverFree) {
      unregister();
      return Status::FailedPrecondition("this thread is in a call that holds " + std::string(what) +
                                        " already (a listener calling back on the same people or request)");
    }
    if (outcome == Outcome::kFree) break;
    if (!wait) return std::optional<Held>();
    if (mode == Mode::kExclusive && !registered) {
      for (const std::string& k : keys) ++keys_[k].exclusive_waiting;
      ++exclusive_waiters_;
      registered = true;
    }
    freed_.wait(lock);
  }
  if (registered) {
    unregister();
    // Shared claims that waited behind this one wait for it to release now.
  }
  return std::optional<Held>(Take(std::move(keys), mode, self));
}

Result<KeyClaims::Held> KeyClaims::Claim(std::vector<std::string> keys, Mode mode, std::string_view what) {
  auto r = ClaimImpl(std::move(keys), mode, what, /*wait=*/true);
  if (!r.ok()) return r.status();
  return std::move(**r);
}

Result<std::optional<KeyClaims::Held>> KeyClaims::TryClaim(std::vector<std::string> keys, Mode mode,
                                                           std::string_view what) {
  return ClaimImpl(std::move(keys), mode, what, /*wait=*/false);
}

std::size_t KeyClaims::exclusive_waiters() const {
  std::lock_guard lock(mu_);
  return exclusive_waiters_;
}

void KeyClaims::Release(const std::vector<std::string>& keys, Mode mode, std::thread::id holder) {
  {
    std::lock_guard lock(mu_);
    for (const std::string& k : keys) {
      auto it = keys_.find(k);
      if (it == keys_.end()) continue;
      KeyState& st = it->second;
      if (mode == Mode::kExclusive) {
        st.exclusive.reset();
      } else {
        auto s = std::find(st.shared.begin(), st.shared.end(), holder);
        if (s != st.shared.end()) st.shared.erase(s);
      }
      if (st.shared.empty() && !st.exclusive && st.exclusive_waiting == 0) keys_.erase(it);
    }
    auto h = holding_.find(holder);
    if (h != holding_.end()) {
      h->second -= std::min(h->second, keys.size());
      if (h->second == 0) holding_.erase(h);
    }
  }
  freed_.notify_all();
}

}  // namespace shredkv::sharding
