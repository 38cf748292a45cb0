// The streaming JSON reader: the same events whatever the pieces, paths for each event, and
// bounds that fail rather than grow.
#include "server/core/json_stream.hpp"

#include <gtest/gtest.h>

namespace gma::core {
namespace {

/// Writes every event as "path=value" lines.
class recorder final : public json_reader {
 public:
  std::string out;

 private:
  std::string path() const { return path(depth()); }
  std::string path(std::size_t levels) const {
    std::string p;
    for (std::size_t level = 1; level <= levels; ++level)
      p += "/" + (array_at(level) ? std::string("[]") : std::string(key_at(level)));
    return p;
  }
  bool on_string(std::string_view value) override {
    out += path() + "=\"" + std::string(value) + "\"\n";
    return true;
  }
  bool on_number(double value) override {
    out += path() + "=" + std::to_string(value) + "\n";
    return true;
  }
  bool on_other() override {
    out += path() + "=other\n";
    return true;
  }
  bool on_enter(bool array) override {
    out += path(depth() - 1) + (array ? " [\n" : " {\n");
    return true;
  }
};

std::string events(std::string_view text, std::size_t piece) {
  recorder r;
  json_push_parser parser(r);
  for (std::size_t at = 0; at < text.size(); at += piece)
    if (!parser.feed(text.substr(at, piece))) return "error: " + parser.error();
  if (!parser.finish()) return "error: " + parser.error();
  return r.out;
}

TEST(JsonPushParser, SameEventsWhateverThePieces) {
  const std::string text =
      R"({"status":"success","data":[{"__name__":"a\"b","long":"0123456789abcdef"},)"
      R"({"n":1.5e3,"t":true,"z":null}],"k\u00e9y":[[1]]}  )";
  const std::string whole = events(text, text.size());
  EXPECT_EQ(whole,
            " {\n/status=\"success\"\n/data [\n/data/[] {\n/data/[]/__name__=\"a\"b\"\n"
            "/data/[]/long=\"0123456789abcdef\"\n/data/[] {\n/data/[]/n=1500.000000\n"
            "/data/[]/t=other\n/data/[]/z=other\n/k\xc3\xa9y [\n/k\xc3\xa9y/[] [\n"
            "/k\xc3\xa9y/[]/[]=1.000000\n");
  for (std::size_t piece = 1; piece < 20; ++piece) EXPECT_EQ(events(text, piece), whole) << piece;
}

TEST(JsonPushParser, RefusesWhatIsNotOneJsonValue) {
  EXPECT_TRUE(events(R"({"a":)", 2).starts_with("error: ")) << "cut short";
  EXPECT_TRUE(events(R"({"a":1} {})", 3).starts_with("error: ")) << "two values";
  EXPECT_TRUE(events(R"({"a":1,})", 3).starts_with("error: ")) << "trailing comma";
  EXPECT_TRUE(events("<html>", 3).starts_with("error: "));
  // Found by fuzzing: a number that overflows a double is refused, not read as infinity.
  EXPECT_TRUE(events(R"([1732701e4005,"2"])", 5).starts_with("error: "));
  EXPECT_TRUE(events("[-1e400]", 100).starts_with("error: "));
}

TEST(JsonPushParser, BoundsDepthAndStringLength) {
  recorder r;
  json_push_parser deep(r, 1 << 20, 8);
  EXPECT_FALSE(deep.feed(std::string(9, '[') + std::string(9, ']')));
  EXPECT_FALSE(deep.error().empty());
  json_push_parser shallow(r, 1 << 20, 8);
  EXPECT_TRUE(shallow.feed(std::string(7, '[') + std::string(7, ']')) && shallow.finish());

  recorder s;
  json_push_parser bounded(s, 10);
  const std::string long_string = "[\"" + std::string(11, 'x') + "\"]";
  // In pieces, so the string arrives in parts and is assembled here, within the bound.
  bool ok = true;
  for (char c : long_string) ok = ok && bounded.feed(std::string_view(&c, 1));
  EXPECT_FALSE(ok);
  // Whole in one piece: the same bound.
  recorder whole;
  json_push_parser at_once(whole, 10);
  EXPECT_FALSE(at_once.feed(long_string));
  json_push_parser key(whole, 10);
  EXPECT_FALSE(key.feed("{\"" + std::string(11, 'k') + "\":1}"));
  json_push_parser fits(whole, 10);
  EXPECT_TRUE(fits.feed("[\"" + std::string(10, 'x') + "\"]") && fits.finish());
}

TEST(JsonPushParser, AReaderCanStopTheParse) {
  class stopper final : public json_reader {
    bool on_string(std::string_view) override { return false; }
  } reader;
  json_push_parser parser(reader);
  EXPECT_FALSE(parser.feed(R"(["stop here", 1])"));
  EXPECT_EQ(parser.error(), "");
  EXPECT_FALSE(parse_json(R"(["x"])", reader));
}

}  // namespace
}  // namespace gma::core
