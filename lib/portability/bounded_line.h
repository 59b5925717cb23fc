// Reading lines of untrusted input with a bound on what is held: a line
// longer than the bound is not kept (issue 16: a 120 MB line was held whole
// and parsed). Used by the NDJSON importer and the CLI's ingest.
// Header-only, like strict_json.h (the CLI includes it without linking the
// library's internals). Thread safety: stateless functions.
#ifndef SHREDKV_PORTABILITY_BOUNDED_LINE_H_
#define SHREDKV_PORTABILITY_BOUNDED_LINE_H_

#include <cstddef>
#include <istream>
#include <string>

namespace shredkv::portability {

// The longest line of NDJSON input read (ingest and import; docs/cli.md): a
// record value is at most 16 MiB, and its JSON form (escapes, base64) may be
// larger.
inline constexpr std::size_t kMaxLineBytes = 32u << 20;

// How ReadBoundedLine treats the rest of a line longer than `max`.
enum class OverlongLine {
  kSkip,  // consumed and dropped, so reading can go on at the next line
  kStop,  // left unread: the caller gives up on the input
};

// Reads one line (without its newline) into *line, holding at most `max`
// bytes of it. For a longer line, *line is emptied, *too_long set, and the
// rest of the line skipped or left per `rest`. False at the end of the
// input with nothing read.
inline bool ReadBoundedLine(std::istream& in, std::string* line, std::size_t max, bool* too_long,
                            OverlongLine rest = OverlongLine::kSkip) {
  line->clear();
  *too_long = false;
  bool any = false;
  char buf[1 << 16];
  for (;;) {
    in.get(buf, sizeof buf, '\n');
    const auto n = static_cast<std::size_t>(in.gcount());
    if (n > 0) {
      any = true;
      if (!*too_long && line->size() + n > max) {
        *too_long = true;
        std::string().swap(*line);
        if (rest == OverlongLine::kStop) return true;
      }
      if (!*too_long) line->append(buf, n);
    }
    if (in.bad()) return any;
    if (in.fail() && !in.eof()) in.clear();  // get() extracted nothing: the newline is next
    const int c = in.get();
    if (c == '\n') return true;
    if (c == std::char_traits<char>::eof()) {
      if (!in.bad()) in.clear(std::ios::eofbit);
      return any;
    }
    in.unget();  // the buffer was full: more of this line follows
  }
}

}  // namespace shredkv::portability

#endif  // SHREDKV_PORTABILITY_BOUNDED_LINE_H_
