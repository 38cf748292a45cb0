#pragma once
/// @file The serving certificate: loaded from files, or a self-signed one for
/// localhost/127.0.0.1 generated into --cert-dir. Start-up code: throws std::runtime_error.

#include <boost/asio/ssl/context.hpp>
#include <memory>
#include <string>

namespace gma::http {

struct certificate_files {
  std::string cert_file;
  std::string key_file;
};

/// Returns the files to serve: the given pair, or <cert_dir>/apiserver.{crt,key}, generated
/// (EC P-256, one year, SAN localhost and 127.0.0.1) when they do not exist yet.
certificate_files ensure_serving_certificate(const std::string& cert_file,
                                             const std::string& key_file,
                                             const std::string& cert_dir);

/// A TLS 1.2+ server context serving the given certificate chain and key.
std::shared_ptr<boost::asio::ssl::context> make_server_context(const certificate_files& files);

}  // namespace gma::http
