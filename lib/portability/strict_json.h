// Strict JSON parsing for untrusted input (import documents, ingest lines):
// nlohmann-json's SAX parser feeding a DOM builder of our own that
//   - bounds nesting depth (kMaxJsonDepth): the parser is iterative, but deep
//     values break recursive code that walks or prints them (issue 16: a
//     200,000-deep line crashed the process);
//   - rejects duplicate object keys (nlohmann keeps the last one silently),
//     in O(n log n) for n keys: an ordered set of each open object's keys
//     (not a hash set, which colliding keys make quadratic again: review of
//     stop 36, R2), and members appended without ordered_json's linear
//     search (outside audit 36a, F2: 160,000 keys in one object took 98 s);
//   - rejects integer literals outside uint64 (nlohmann turns 2^64 into a
//     double while 2^64 − 1 stays an integer; callers then range-check
//     integers, so every out-of-range integer is refused the same way).
// Header-only; used by lib/portability and the CLI's ingest parser.
// Thread safety: stateless functions.
#ifndef SHREDKV_PORTABILITY_STRICT_JSON_H_
#define SHREDKV_PORTABILITY_STRICT_JSON_H_

#include <nlohmann/json.hpp>

#include <cstddef>
#include <istream>
#include <string>
#include <set>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace shredkv::portability {

// A caller's name (a key, a field) for an error message: at most its first
// 64 bytes, cut at a character boundary, as a JSON string — quotes, control
// characters and NUL escaped, invalid UTF-8 replaced. Messages reach C
// callers as C strings: a raw NUL cut them short, a cut character or a
// megabyte-long name made them unreadable (outside audit 37b, F5).
inline std::string QuotedForMessage(std::string_view name) {
  constexpr std::size_t kMax = 64;
  std::string_view cut = name.substr(0, kMax);
  if (name.size() > kMax) {
    std::size_t end = cut.size();
    while (end > 0 && (static_cast<unsigned char>(name[end]) & 0xC0) == 0x80) --end;
    cut = cut.substr(0, end);
  }
  std::string out = nlohmann::json(std::string(cut)).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  if (name.size() > cut.size()) out += "...";
  return out;
}

// Deepest nesting of arrays and objects accepted (documented in
// docs/export-format.md and docs/cli.md).
inline constexpr std::size_t kMaxJsonDepth = 64;

template <typename BasicJson>
class StrictJsonBuilder {
 public:
  using number_integer_t = typename BasicJson::number_integer_t;
  using number_unsigned_t = typename BasicJson::number_unsigned_t;
  using number_float_t = typename BasicJson::number_float_t;
  using string_t = typename BasicJson::string_t;
  using binary_t = typename BasicJson::binary_t;

  explicit StrictJsonBuilder(BasicJson* root) : root_(root) {}

  bool null() { return Add(BasicJson(nullptr)); }
  bool boolean(bool v) { return Add(BasicJson(v)); }
  bool number_integer(number_integer_t v) { return Add(BasicJson(v)); }
  bool number_unsigned(number_unsigned_t v) { return Add(BasicJson(v)); }
  bool number_float(number_float_t v, const string_t& literal) {
    if (literal.find_first_of(".eE") == string_t::npos) {
      // Named by its key, never its digits: a value may be personal data (an
      // account number written as a JSON number) and messages reach logs
      // (outside audit 31, F8).
      // The key as a JSON string (escaped, invalid UTF-8 replaced).
      if (stack_.empty() || !stack_.back()->is_object()) return Fail("an integer is out of range (beyond 64 bits)");
      return Fail("the integer of key " + QuotedForMessage(key_) + " is out of range (beyond 64 bits)");
    }
    return Add(BasicJson(v));
  }
  bool string(string_t& v) { return Add(BasicJson(std::move(v))); }
  bool binary(binary_t&) { return Fail("binary values are not JSON"); }
  bool start_object(std::size_t) { return Open(BasicJson::object()); }
  bool key(string_t& k) {
    if (!seen_.back().insert(k).second) return Fail("duplicate key " + QuotedForMessage(k));
    key_ = std::move(k);
    return true;
  }
  bool end_object() { return Close(); }
  bool start_array(std::size_t) { return Open(BasicJson::array()); }
  bool end_array() { return Close(); }
  template <typename Exception>
  bool parse_error(std::size_t position, const std::string&, const Exception&) {
    return Fail("not valid JSON (at byte " + std::to_string(position) + ")");
  }

  // Empty unless the input was refused.
  const std::string& error() const { return error_; }

 private:
  bool Fail(std::string why) {
    if (error_.empty()) error_ = std::move(why);
    return false;  // stops the parser
  }
  BasicJson* Place(BasicJson v) {
    if (stack_.empty()) {
      *root_ = std::move(v);
      return root_;
    }
    BasicJson& top = *stack_.back();
    if (top.is_array()) {
      top.push_back(std::move(v));
      return &top.back();
    }
    // A new key (key() checked it): appended. ordered_json's operator[]
    // would search its vector of members first, for every key.
    auto& members = top.template get_ref<typename BasicJson::object_t&>();
    if constexpr (requires { typename BasicJson::object_t::Container; }) {
      auto& in_order = static_cast<typename BasicJson::object_t::Container&>(members);
      in_order.emplace_back(std::move(key_), std::move(v));
      return &in_order.back().second;
    } else {
      return &members.emplace(std::move(key_), std::move(v)).first->second;
    }
  }
  bool Add(BasicJson v) {
    Place(std::move(v));
    return true;
  }
  bool Open(BasicJson container) {
    if (stack_.size() >= kMaxJsonDepth) {
      return Fail("nested deeper than " + std::to_string(kMaxJsonDepth) + " levels");
    }
    stack_.push_back(Place(std::move(container)));
    seen_.emplace_back();
    return true;
  }
  bool Close() {
    stack_.pop_back();
    seen_.pop_back();
    return true;
  }

  BasicJson* root_;
  std::vector<BasicJson*> stack_;  // the open containers, outermost first
  std::vector<std::set<string_t, std::less<>>> seen_;  // the keys of each open container (none in arrays)
  string_t key_;
  std::string error_;
};

// Parses `input` (a string, or a std::istream) into *out: the whole input
// must be one JSON value. On refusal returns false with *error set and *out
// unspecified. A NUL byte is refused: nlohmann's lexer takes it for the end
// of the input, so "[A]\0[B]" parsed as [A] and B was dropped without an
// error (outside audit 37b, F2); of a stream, anything left unread after
// the value is refused too.
template <typename BasicJson, typename Input>
bool StrictParse(Input&& input, BasicJson* out, std::string* error) {
  using Bare = std::remove_cvref_t<Input>;
  if constexpr (std::is_convertible_v<const Bare&, std::string_view>) {
    const std::string_view text(input);
    if (const std::size_t nul = text.find('\0'); nul != std::string_view::npos) {
      *error = "a NUL byte at offset " + std::to_string(nul) + " (JSON text holds none)";
      return false;
    }
  }
  StrictJsonBuilder<BasicJson> builder(out);
  const bool ok = BasicJson::sax_parse(std::forward<Input>(input), &builder);
  if (ok && builder.error().empty()) {
    if constexpr (std::is_base_of_v<std::istream, Bare>) {
      if (input.peek() != std::char_traits<char>::eof()) {
        *error = "bytes after the JSON value (a NUL byte ends what the parser reads)";
        return false;
      }
    }
    return true;
  }
  *error = builder.error().empty() ? std::string("not valid JSON") : builder.error();
  return false;
}

}  // namespace shredkv::portability

#endif  // SHREDKV_PORTABILITY_STRICT_JSON_H_
