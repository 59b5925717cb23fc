// shredkv sample: a generated, deterministic NDJSON sample for `ingest` —
// people with several identifier types, profiles, events whose non-personal
// fields go to analytics, and order records. For demos and tests; the
// values are made up (example.org addresses, +49 555 phone numbers).
#include <array>
#include <cstdint>
#include <iostream>
#include <string>

#include <nlohmann/json.hpp>

#include "cli.h"

namespace shredkv::cli {
namespace {

using OJson = nlohmann::ordered_json;

// SplitMix64: small, fast and the same on every platform (unlike the
// standard distributions).
class Rng {
 public:
  explicit Rng(std::uint64_t seed) : state_(seed) {}
  std::uint64_t Next() {
    std::uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  std::uint64_t Below(std::uint64_t n) { return Next() % n; }
  bool Chance(unsigned percent) { return Below(100) < percent; }
  template <typename T, std::size_t N>
  const T& Pick(const std::array<T, N>& a) {
    return a[static_cast<std::size_t>(Below(N))];
  }

 private:
  std::uint64_t state_;
};

constexpr std::array<const char*, 24> kFirst = {
    "Ann", "Ben", "Clara", "David", "Eva", "Felix", "Greta", "Hugo", "Ida", "Jonas", "Karla", "Leo",
    "Mia", "Noah", "Olga", "Paul", "Quinn", "Rosa", "Sami", "Tara", "Uwe", "Vera", "Wim", "Yara"};
constexpr std::array<const char*, 16> kLast = {"Adler", "Berg", "Cruz", "Dietz", "Engel", "Fischer",
                                               "Garcia", "Hansen", "Ivanova", "Jansen", "Koch", "Lund",
                                               "Meyer", "Novak", "Okafor", "Petit"};
constexpr std::array<const char*, 10> kCities = {"Berlin", "Hamburg", "Munich", "Cologne", "Leipzig",
                                                 "Vienna", "Zurich", "Amsterdam", "Lyon", "Porto"};
constexpr std::array<const char*, 3> kPlans = {"free", "plus", "pro"};
constexpr std::array<const char*, 8> kProducts = {"kettle", "lamp", "backpack", "headphones",
                                                  "notebook", "teapot", "umbrella", "bicycle-bell"};
constexpr std::array<double, 8> kPrices = {39.90, 24.50, 59.00, 89.99, 4.95, 19.90, 14.99, 7.50};
constexpr std::array<const char*, 5> kPaths = {"/", "/shop", "/shop/new", "/help", "/account"};
constexpr std::array<const char*, 3> kChannels = {"email", "chat", "phone"};
constexpr std::array<const char*, 4> kCampaigns = {"spring-sale", "new-arrivals", "loyalty", "winter-sale"};

constexpr std::int64_t kStartMs = 1704067200000;          // 2024-01-01T00:00:00Z
constexpr std::int64_t kSpanMs = 182ll * 24 * 3600 * 1000;  // half a year

std::string Lower(std::string s) {
  for (char& c : s) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return s;
}

std::string Digits(Rng& rng, int n) {
  std::string s;
  for (int i = 0; i < n; ++i) s.push_back(static_cast<char>('0' + rng.Below(10)));
  return s;
}

std::string Hex(Rng& rng, int n) {
  static const char kHex[] = "0123456789abcdef";
  std::string s;
  for (int i = 0; i < n; ++i) s.push_back(kHex[rng.Below(16)]);
  return s;
}

void Emit(const OJson& j) { PrintLine(j.dump()); }

}  // namespace

int CmdSample(const GlobalOptions&, const ParsedArgs& args) {
  const std::uint64_t people = args.GetUint("people").value_or(3000);
  const std::uint64_t seed = args.GetUint("seed").value_or(42);
  if (people > 10'000'000) UsageError("sample: --people is limited to 10000000");
  Rng rng(seed);
  std::uint64_t order_no = 100000;
  for (std::uint64_t i = 0; i < people; ++i) {
    const std::string first = rng.Pick(kFirst);
    const std::string last = rng.Pick(kLast);
    OJson ids = OJson::object();
    ids["email"] = Lower(first) + "." + Lower(last) + "." + std::to_string(i + 1) + "@example.org";
    // Distinct for every i below 10^7 (7919 is coprime with 10^7).
    if (rng.Chance(70)) {
      const std::string digits = std::to_string(10000000 + (i * 7919 + 1234567) % 10000000).substr(1);
      ids["phone"] = "+49 555 " + digits;
    }
    const bool has_customer = rng.Chance(60);
    if (has_customer) ids["customer_id"] = "C" + std::to_string(500000 + i);
    const bool has_device = rng.Chance(40);
    std::string device = has_device ? "dev-" + Hex(rng, 12) : "";
    if (has_device) ids["device_id"] = device;

    // Some people browse anonymously first: events under the device only,
    // linked to the person when the profile arrives.
    std::int64_t ts = kStartMs + static_cast<std::int64_t>(rng.Below(static_cast<std::uint64_t>(kSpanMs)));
    if (has_device && rng.Chance(50)) {
      OJson ev = {{"op", "event"},
                  {"ids", {{"device_id", device}}},
                  {"name", "page_view"},
                  {"ts", ts},
                  {"props", {{"path", rng.Pick(kPaths)}, {"ip", "203.0.113." + std::to_string(rng.Below(254) + 1)}}},
                  {"analytics", {"path"}}};
      Emit(ev);
      ts += static_cast<std::int64_t>(rng.Below(3600000));
    }

    OJson attrs = {{"name", first + " " + last},
                   {"city", rng.Pick(kCities)},
                   {"birth_year", 1950 + static_cast<int>(rng.Below(56))},
                   {"newsletter", rng.Chance(45)},
                   {"plan", rng.Pick(kPlans)}};
    Emit(OJson{{"op", "profile"}, {"ids", ids}, {"attrs", attrs}});

    // Events refer to the person by one of their identifiers.
    const int events = 1 + static_cast<int>(rng.Below(6));
    for (int e = 0; e < events; ++e) {
      ts += static_cast<std::int64_t>(rng.Below(5 * 24 * 3600000ull));
      OJson by = OJson::object();
      if (has_customer && rng.Chance(50)) {
        by["customer_id"] = ids["customer_id"];
      } else {
        by["email"] = ids["email"];
      }
      const std::uint64_t kind = rng.Below(10);
      OJson ev = {{"op", "event"}, {"ids", by}};
      if (kind < 4) {
        ev["name"] = "page_view";
        ev["ts"] = ts;
        ev["props"] = {{"path", rng.Pick(kPaths)}, {"ip", "198.51.100." + std::to_string(rng.Below(254) + 1)}};
        ev["analytics"] = {"path"};
        Emit(ev);
      } else if (kind < 6) {
        const std::size_t p = static_cast<std::size_t>(rng.Below(kProducts.size()));
        ev["name"] = "add_to_cart";
        ev["ts"] = ts;
        ev["props"] = {{"product", kProducts[p]}, {"price", kPrices[p]}};
        ev["analytics"] = {"product", "price"};
        Emit(ev);
      } else if (kind < 8) {
        const std::size_t p = static_cast<std::size_t>(rng.Below(kProducts.size()));
        const int items = 1 + static_cast<int>(rng.Below(3));
        const double amount = static_cast<double>(static_cast<long long>(kPrices[p] * items * 100 + 0.5)) / 100;
        const std::string order = std::to_string(++order_no);
        ev["name"] = "purchase";
        ev["ts"] = ts;
        ev["props"] = {{"order", order}, {"product", kProducts[p]}, {"items", items},
                       {"amount", amount},  {"currency", "EUR"},     {"card_last4", Digits(rng, 4)}};
        ev["analytics"] = {"product", "items", "amount", "currency"};
        Emit(ev);
        OJson value = {{"product", kProducts[p]},
                       {"items", items},
                       {"amount", amount},
                       {"ship_to", attrs["name"].get<std::string>() + ", " + std::to_string(rng.Below(200) + 1) +
                                       " Example Street, " + attrs["city"].get<std::string>()}};
        Emit(OJson{{"op", "put"}, {"ids", by}, {"collection", "orders"}, {"key", order}, {"value", value.dump()}});
      } else if (kind < 9) {
        ev["name"] = "support_ticket";
        ev["ts"] = ts;
        ev["props"] = {{"channel", rng.Pick(kChannels)}, {"subject", "Question about my order"}};
        ev["analytics"] = {"channel"};
        Emit(ev);
      } else {
        ev["name"] = "newsletter_open";
        ev["ts"] = ts;
        ev["props"] = {{"campaign", rng.Pick(kCampaigns)}};
        ev["analytics"] = {"campaign"};
        Emit(ev);
      }
    }
  }
  return 0;
}

}  // namespace shredkv::cli
