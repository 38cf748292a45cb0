#include "server/core/json_stream.hpp"

// boost::json in header-only form (Debian ships no compiled library): its sources are compiled
// here, once for the program.
#include <boost/json/basic_parser_impl.hpp>
#include <boost/json/src.hpp>
#include <cmath>

namespace gma::core {

bool json_reader::enter(bool array) {
  ++depth_;
  if (keys_.size() < depth_) {
    keys_.emplace_back();
    arrays_.push_back(array);
  } else {
    keys_[depth_ - 1].clear();
    arrays_[depth_ - 1] = array;
  }
  return on_enter(array);
}

bool json_reader::leave() {
  const bool go_on = on_leave();
  --depth_;
  return go_on;
}

void json_reader::set_key(std::string_view key) { keys_[depth_ - 1].assign(key); }

/// boost::json's handler: assembles keys and strings that arrive in parts and forwards every
/// event to the reader.
class json_event_sink {
 public:
  static constexpr std::size_t max_array_size = -1;
  static constexpr std::size_t max_object_size = -1;
  static constexpr std::size_t max_string_size = -1;
  static constexpr std::size_t max_key_size = -1;

  json_event_sink(json_reader& reader, std::size_t max_string_bytes)
      : reader_(reader), max_string_bytes_(max_string_bytes) {}

  bool stopped_by_reader = false;

  bool on_document_begin(boost::json::error_code&) { return true; }
  bool on_document_end(boost::json::error_code&) { return true; }
  bool on_array_begin(boost::json::error_code& ec) { return go_on(reader_.enter(true), ec); }
  bool on_array_end(std::size_t, boost::json::error_code& ec) { return go_on(reader_.leave(), ec); }
  bool on_object_begin(boost::json::error_code& ec) { return go_on(reader_.enter(false), ec); }
  bool on_object_end(std::size_t, boost::json::error_code& ec) {
    return go_on(reader_.leave(), ec);
  }
  bool on_string_part(boost::json::string_view s, std::size_t, boost::json::error_code& ec) {
    return append(s, ec);
  }
  bool on_string(boost::json::string_view s, std::size_t, boost::json::error_code& ec) {
    if (parts_.empty()) {
      // Whole in one piece: bounded all the same, whatever the pieces.
      if (!within_bound(s.size(), ec)) return false;
      return go_on(reader_.on_string(std::string_view(s.data(), s.size())), ec);
    }
    if (!append(s, ec)) return false;
    const bool ok = reader_.on_string(parts_);
    parts_.clear();
    return go_on(ok, ec);
  }
  bool on_key_part(boost::json::string_view s, std::size_t, boost::json::error_code& ec) {
    return append(s, ec);
  }
  bool on_key(boost::json::string_view s, std::size_t, boost::json::error_code& ec) {
    if (parts_.empty()) {
      if (!within_bound(s.size(), ec)) return false;
      reader_.set_key(std::string_view(s.data(), s.size()));
      return true;
    }
    if (!append(s, ec)) return false;
    reader_.set_key(parts_);
    parts_.clear();
    return true;
  }
  bool on_number_part(boost::json::string_view, boost::json::error_code&) { return true; }
  bool on_int64(std::int64_t i, boost::json::string_view, boost::json::error_code& ec) {
    return go_on(reader_.on_number(static_cast<double>(i)), ec);
  }
  bool on_uint64(std::uint64_t u, boost::json::string_view, boost::json::error_code& ec) {
    return go_on(reader_.on_number(static_cast<double>(u)), ec);
  }
  bool on_double(double d, boost::json::string_view, boost::json::error_code& ec) {
    // 1e400 overflows to infinity: refused, as Go's and nlohmann's parsers refuse it, so no
    // reader meets a number it cannot convert.
    if (!std::isfinite(d)) {
      ec = boost::json::make_error_code(boost::json::error::exponent_overflow);
      return false;
    }
    return go_on(reader_.on_number(d), ec);
  }
  bool on_bool(bool, boost::json::error_code& ec) { return go_on(reader_.on_other(), ec); }
  bool on_null(boost::json::error_code& ec) { return go_on(reader_.on_other(), ec); }
  bool on_comment_part(boost::json::string_view, boost::json::error_code&) { return true; }
  bool on_comment(boost::json::string_view, boost::json::error_code&) { return true; }

 private:
  bool go_on(bool ok, boost::json::error_code& ec) {
    if (!ok) {
      stopped_by_reader = true;
      ec = boost::json::make_error_code(boost::json::error::exception);
    }
    return ok;
  }
  bool within_bound(std::size_t size, boost::json::error_code& ec) const {
    if (size <= max_string_bytes_) return true;
    ec = boost::json::make_error_code(boost::json::error::string_too_large);
    return false;
  }
  bool append(boost::json::string_view s, boost::json::error_code& ec) {
    if (!within_bound(parts_.size() + s.size(), ec)) return false;
    parts_.append(s.data(), s.size());
    return true;
  }

  json_reader& reader_;
  std::size_t max_string_bytes_;
  std::string parts_;  // a key or string that arrives in parts
};

struct json_push_parser::impl {
  impl(json_reader& reader, std::size_t max_string_bytes, std::size_t max_depth)
      : parser(options(max_depth), reader, max_string_bytes) {}

  static boost::json::parse_options options(std::size_t max_depth) {
    boost::json::parse_options o;
    o.max_depth = max_depth;
    return o;
  }

  /// Writes `piece`; what follows a whole value may only be whitespace.
  bool write(bool more, std::string_view piece) {
    if (failed) return false;
    try {
      if (parser.done()) {
        failed = piece.find_first_not_of(" \t\r\n") != std::string_view::npos;
        if (failed) ec = boost::json::make_error_code(boost::json::error::extra_data);
        return !failed;
      }
      const std::size_t used = parser.write_some(more, piece.data(), piece.size(), ec);
      if (!ec && used < piece.size()) return write(more, piece.substr(used));
    } catch (const std::exception&) {
      ec = boost::json::make_error_code(boost::json::error::exception);
    }
    failed = static_cast<bool>(ec);
    return !failed;
  }

  boost::json::basic_parser<json_event_sink> parser;
  boost::json::error_code ec;
  bool failed = false;
};

json_push_parser::json_push_parser(json_reader& reader, std::size_t max_string_bytes,
                                   std::size_t max_depth)
    : impl_(std::make_unique<impl>(reader, max_string_bytes, max_depth)) {}

json_push_parser::~json_push_parser() = default;

bool json_push_parser::feed(std::string_view piece) { return impl_->write(true, piece); }

bool json_push_parser::finish() {
  if (!impl_->write(false, {})) return false;
  if (!impl_->parser.done()) {
    impl_->failed = true;
    impl_->ec = boost::json::make_error_code(boost::json::error::incomplete);
  }
  return !impl_->failed;
}

std::string json_push_parser::error() const {
  if (!impl_->failed || impl_->parser.handler().stopped_by_reader) return {};
  return impl_->ec.message();
}

bool parse_json(std::string_view text, json_reader& reader) {
  json_push_parser parser(reader);
  return parser.feed(text) && parser.finish();
}

}  // namespace gma::core
