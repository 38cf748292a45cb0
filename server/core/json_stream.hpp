#pragma once
/// @file Reading JSON as it arrives, without building a document of it, so that memory follows
/// what the reader keeps rather than the size of the text: an HTTP body of any size is read
/// piece by piece by boost::json's incremental parser, and a json_reader picks out the fields
/// it needs by where they are.
///
/// @par Thread safety
/// A parser and its reader are used by one thread at a time; the parser borrows the reader,
/// which must outlive it.

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace gma::core {

/// The events of one JSON text, with the path to each. Readers override the hooks they need;
/// a hook that returns false stops the parse.
class json_reader {
 public:
  virtual ~json_reader() = default;

  /// Nesting of the current value: 1 for the members (or elements) of the outermost value.
  std::size_t depth() const noexcept { return depth_; }
  /// The key under which the container at `level` (1-based) holds its current value; "" when
  /// that container is an array or the level is deeper than depth().
  std::string_view key_at(std::size_t level) const noexcept {
    return level == 0 || level > depth_ || arrays_[level - 1] ? std::string_view{}
                                                              : std::string_view(keys_[level - 1]);
  }
  /// Whether the current value is directly in an object at `level` under `key`.
  bool at(std::size_t level, std::string_view key) const noexcept {
    return level > 0 && depth_ == level && !arrays_[level - 1] && keys_[level - 1] == key;
  }
  /// Whether the container at `level` is an array.
  bool array_at(std::size_t level) const noexcept {
    return level > 0 && level <= depth_ && arrays_[level - 1];
  }

 protected:
  virtual bool on_string(std::string_view /*value*/) { return true; }
  virtual bool on_number(double /*value*/) { return true; }
  /// A boolean or null.
  virtual bool on_other() { return true; }
  /// An object or array begins: depth() is already the level of its members, so its own key
  /// is key_at(depth() - 1).
  virtual bool on_enter(bool /*array*/) { return true; }
  /// An object or array ends: depth() is still the level of its members.
  virtual bool on_leave() { return true; }

 private:
  friend class json_event_sink;
  bool enter(bool array);
  bool leave();
  void set_key(std::string_view key);

  std::size_t depth_ = 0;
  std::vector<std::string> keys_;  // reused from value to value: their capacity stays
  std::vector<bool> arrays_;
};

/// Feeds a JSON text to a json_reader piece by piece. Keys and strings longer than
/// `max_string_bytes` and nesting deeper than `max_depth` are errors, so memory stays bounded
/// whatever the text.
class json_push_parser {
 public:
  explicit json_push_parser(json_reader& reader, std::size_t max_string_bytes = 1 << 20,
                            std::size_t max_depth = 64);
  ~json_push_parser();
  json_push_parser(const json_push_parser&) = delete;
  json_push_parser& operator=(const json_push_parser&) = delete;

  /// The next piece; false once the text is not JSON or the reader stopped (later calls then
  /// change nothing).
  bool feed(std::string_view piece);
  /// After the last piece: whether the text was one whole JSON value.
  bool finish();
  /// Why the parse failed; empty while it has not, or when the reader stopped it.
  std::string error() const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

/// Reads a whole text: false when it is not one JSON value or the reader stopped. Never throws.
bool parse_json(std::string_view text, json_reader& reader);

}  // namespace gma::core
