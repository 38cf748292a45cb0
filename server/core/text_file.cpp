#include "server/core/text_file.hpp"

#include <fstream>
#include <sstream>
#include <stdexcept>

#include "server/core/log.hpp"

namespace gma::core {

std::optional<std::string> read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::string read_text_file_or_throw(const std::string& path) {
  auto text = read_text_file(path);
  if (!text) throw std::runtime_error("cannot read " + path);
  return std::move(*text);
}

std::optional<std::string> read_files_fingerprint(const std::vector<std::string>& paths,
                                                  std::string_view what) {
  std::string all;
  for (const auto& path : paths) {
    const auto text = read_text_file(path);
    if (!text) {
      log::warning(std::string(what) + ": cannot read " + path + "; keeping the one in force");
      return std::nullopt;
    }
    if (&path != &paths.front()) all += '\0';
    all += *text;
  }
  return all;
}

}  // namespace gma::core
