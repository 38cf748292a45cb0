#include "server/core/text_file.hpp"

#include <fstream>
#include <sstream>
#include <stdexcept>

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

}  // namespace gma::core
