#include "server/config/options.hpp"

#include <gtest/gtest.h>

#include <cstdlib>

namespace gma::config {
namespace {

/// The help text with every run of spaces and line breaks as one space: descriptions wrap.
std::string help_words() {
  std::string out;
  for (const char c : help_text()) {
    const bool space = c == ' ' || c == '\n';
    if (!space || (!out.empty() && out.back() != ' ')) out += space ? ' ' : c;
  }
  return out;
}

TEST(ParseOptions, DefaultsAndBothFlagForms) {
  const auto defaults = parse_options({});
  EXPECT_EQ(defaults.secure_port, 6443);
  EXPECT_EQ(defaults.metrics_relist_interval, std::chrono::seconds(60));
  EXPECT_FALSE(defaults.insecure_skip_auth);
  const auto o = parse_options({"--secure-port=7443", "--prometheus-url", "http://p:9090",
                                "--metrics-relist-interval=1m30s", "--insecure-skip-auth", "-v=3",
                                "--lister-kubeconfig=/k"});
  EXPECT_EQ(o.secure_port, 7443);
  EXPECT_EQ(o.prometheus_url, "http://p:9090");
  EXPECT_EQ(o.metrics_relist_interval, std::chrono::seconds(90));
  EXPECT_TRUE(o.insecure_skip_auth);
  EXPECT_EQ(o.verbosity, 3);
  EXPECT_EQ(o.lister_kubeconfig, "/k");
}

TEST(ParseOptions, BadInputFailsWithAOneLineReason) {
  const std::vector<std::vector<std::string>> bad = {{"--no-such-flag"},
                                                     {"--secure-port=0"},
                                                     {"--secure-port=http"},
                                                     {"--metrics-relist-interval=soon"},
                                                     {"--metrics-relist-interval=0"},
                                                     {"--v"},
                                                     {"positional"},
                                                     {"--insecure-skip-auth=maybe"},
                                                     {"--prometheus-query-timeout=-1s"}};
  for (const auto& args : bad) {
    SCOPED_TRACE(args[0]);
    try {
      parse_options(args);
      ADD_FAILURE() << "accepted";
    } catch (const usage_error& e) {
      const std::string what = e.what();
      EXPECT_FALSE(what.empty());
      EXPECT_EQ(what.find('\n'), std::string::npos);
    }
  }
}

TEST(ParseOptions, PrometheusAdapterFlags) {
  const auto o = parse_options(
      {"--config=/etc/adapter/config.yaml", "--prometheus-verb=POST",
       "--prometheus-header=X-Scope-OrgID=tenant-1", "--prometheus-header", "X-Empty",
       "--metrics-relist-interval=1m", "--metrics-max-age=10m", "--prometheus-token-file=/t",
       "--prometheus-client-tls-cert-file=/c", "--prometheus-client-tls-key-file=/k"});
  EXPECT_EQ(o.config_file, "/etc/adapter/config.yaml");
  EXPECT_EQ(o.prometheus_verb, "POST");
  const std::vector<std::pair<std::string, std::string>> headers = {{"X-Scope-OrgID", "tenant-1"},
                                                                    {"X-Empty", ""}};
  EXPECT_EQ(o.prometheus_headers, headers);
  EXPECT_EQ(o.metrics_max_age, std::chrono::minutes(10));
  EXPECT_THROW(parse_options({"--prometheus-verb=PUT"}), usage_error);
  EXPECT_EQ(o.prometheus_partial_response, "deny");  // an HPA must not scale on partial data
  EXPECT_EQ(parse_options({"--prometheus-partial-response=allow"}).prometheus_partial_response,
            "allow");
  EXPECT_EQ(parse_options({"--prometheus-partial-response", "deny"}).prometheus_partial_response,
            "deny");
  EXPECT_EQ(parse_options({"--prometheus-partial-response=none"}).prometheus_partial_response,
            "none");
  EXPECT_THROW(parse_options({"--prometheus-partial-response=true"}), usage_error);
  EXPECT_THROW(parse_options({"--metrics-relist-interval=10m", "--metrics-max-age=1m"}),
               usage_error);
  EXPECT_THROW(parse_options({"--prometheus-client-tls-cert-file=/c"}), usage_error);
}

/// Each of `refused`'s argument lists fails with a usage_error whose message holds the string
/// paired with it.
void expect_refused(const std::vector<std::pair<std::vector<std::string>, std::string>>& refused) {
  for (const auto& [args, message] : refused) {
    SCOPED_TRACE(args.back());
    try {
      parse_options(args);
      ADD_FAILURE() << "accepted";
    } catch (const usage_error& e) {
      EXPECT_NE(std::string(e.what()).find(message), std::string::npos) << e.what();
    }
  }
}

TEST(ParseOptions, SigV4FlagsAndTheCombinationsTheyRefuse) {
  EXPECT_TRUE(parse_options({}).prometheus_sigv4_region.empty());
  const auto o = parse_options({"--prometheus-sigv4-region=eu-west-1",
                                "--prometheus-sigv4-sts-endpoint=https://sts.example:8443",
                                "--prometheus-header=X-Scope-OrgID=t"});
  EXPECT_EQ(o.prometheus_sigv4_region, "eu-west-1");
  EXPECT_EQ(o.prometheus_sigv4_service, "aps");
  EXPECT_EQ(o.prometheus_sigv4_sts_endpoint, "https://sts.example:8443");
  EXPECT_EQ(parse_options({"--prometheus-sigv4-region=us-east-1", "--prometheus-sigv4-service=s3"})
                .prometheus_sigv4_service,
            "s3");
  const std::vector<std::pair<std::vector<std::string>, std::string>> refused = {
      {{"--prometheus-sigv4-service=aps"}, "--prometheus-sigv4-service needs"},
      {{"--prometheus-sigv4-sts-endpoint=https://sts"}, "--prometheus-sigv4-sts-endpoint needs"},
      {{"--prometheus-sigv4-region=us-east-1", "--prometheus-token-file=/t"}, "excludes"},
      {{"--prometheus-sigv4-region=us-east-1", "--prometheus-auth-incluster"}, "excludes"},
      {{"--prometheus-sigv4-region=us-east-1", "--prometheus-auth-config=/k"}, "excludes"},
      {{"--prometheus-sigv4-region=us-east-1", "--prometheus-header=authorization=x"},
       "conflicts with --prometheus-sigv4-region"},
      {{"--prometheus-sigv4-region=us-east-1", "--prometheus-header=X-Amz-Date=x"},
       "conflicts with --prometheus-sigv4-region"},
      {{"--prometheus-sigv4-region=US East"}, "invalid value"},
      {{"--prometheus-sigv4-region="}, "invalid value"},
      {{"--prometheus-sigv4-region=us-east-1", "--prometheus-sigv4-sts-endpoint=sts"},
       "invalid value"},
  };
  expect_refused(refused);
  for (const char* flag : {"--prometheus-sigv4-region", "--prometheus-sigv4-service",
                           "--prometheus-sigv4-sts-endpoint"})
    EXPECT_NE(help_words().find(flag), std::string::npos) << flag;
}

TEST(ParseOptions, CloudAuthProviderIsTheOnlySourceOfPrometheusCredentials) {
  EXPECT_EQ(parse_options({}).prometheus_auth_provider, "");
  const auto gcp = parse_options({"--prometheus-auth-provider=gcp"});
  EXPECT_EQ(gcp.prometheus_auth_provider, "gcp");
  EXPECT_EQ(gcp.prometheus_gcp_metadata_url,
            "http://metadata.google.internal/computeMetadata/v1/instance/service-accounts/default/"
            "token");
  const auto azure = parse_options(
      {"--prometheus-auth-provider=azure", "--prometheus-azure-authority-host=http://127.0.0.1:1/",
       "--prometheus-client-tls-cert-file=/c", "--prometheus-client-tls-key-file=/k",
       "--prometheus-header=X-Scope-OrgID=t"});
  EXPECT_EQ(azure.prometheus_auth_provider, "azure");
  EXPECT_EQ(azure.prometheus_azure_authority_host, "http://127.0.0.1:1/");
  EXPECT_EQ(parse_options({"--prometheus-auth-provider=none"}).prometheus_auth_provider, "");
  const std::vector<std::pair<std::vector<std::string>, std::string>> refused = {
      {{"--prometheus-auth-provider=aws"}, "expected gcp, azure or none"},
      {{"--prometheus-auth-provider=gcp", "--prometheus-token-file=/t"},
       "--prometheus-auth-provider and --prometheus-token-file exclude each other"},
      {{"--prometheus-auth-provider=azure", "--prometheus-auth-incluster"},
       "--prometheus-auth-provider and --prometheus-auth-incluster exclude each other"},
      {{"--prometheus-auth-config=/k", "--prometheus-auth-provider=gcp"},
       "--prometheus-auth-provider and --prometheus-auth-config exclude each other"},
      {{"--prometheus-auth-provider=gcp", "--prometheus-header=authorization=Bearer x"},
       "--prometheus-header=Authorization=... exclude each other"},
      {{"--prometheus-auth-provider=gcp", "--prometheus-sigv4-region=us-east-1"},
       "--prometheus-auth-provider and --prometheus-sigv4-region exclude each other"},
      {{"--prometheus-sigv4-region=eu-west-1", "--prometheus-auth-provider=azure"},
       "--prometheus-auth-provider and --prometheus-sigv4-region exclude each other"},
  };
  expect_refused(refused);
}

TEST(ParseOptions, GoRuntimeFlagsAreAcceptedAndIgnored) {
  const auto o = parse_options({"--profiling", "--vmodule", "x=2", "--log-flush-frequency=5s",
                                "--audit-log-path", "/var/log/audit", "--secure-port=7443",
                                "--disable-http2=true"});
  EXPECT_EQ(o.secure_port, 7443);  // a value flag consumed its argument, the next flag still parses
  const std::vector<std::string> ignored = {"--profiling", "--vmodule", "--log-flush-frequency",
                                            "--audit-log-path", "--disable-http2"};
  EXPECT_EQ(o.ignored_flags, ignored);
}

// prometheus-adapter's own deploy/manifests/deployment.yaml arguments start unchanged.
TEST(ParseOptions, ReferenceDeploymentArguments) {
  const auto o = parse_options(
      {"--cert-dir=/var/run/serving-cert", "--config=/etc/adapter/config.yaml",
       "--metrics-relist-interval=1m", "--prometheus-url=https://prometheus.monitoring.svc:9090/",
       "--secure-port=6443",
       "--tls-cipher-suites=TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305,TLS_ECDHE_ECDSA_WITH_CHACHA20_"
       "POLY1305,"
       "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,"
       "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,"
       "TLS_RSA_WITH_AES_128_GCM_SHA256,TLS_RSA_WITH_AES_256_GCM_SHA384,TLS_RSA_WITH_AES_128_CBC_"
       "SHA,"
       "TLS_RSA_WITH_AES_256_CBC_SHA,TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA,"
       "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA,TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA,"
       "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA"});
  EXPECT_EQ(o.config_file, "/etc/adapter/config.yaml");
  EXPECT_EQ(o.tls_cipher_suites.size(), 14u);
  EXPECT_EQ(o.prometheus_url, "https://prometheus.monitoring.svc:9090/");
  EXPECT_TRUE(o.ignored_flags.empty());
}

// --threads: 0 (the default) leaves the choice to the CPUs this process may use.
TEST(ParseOptions, Threads) {
  EXPECT_EQ(parse_options({}).threads, 0u);
  EXPECT_EQ(parse_options({"--threads=4"}).threads, 4u);
  EXPECT_EQ(parse_options({"--threads", "1"}).threads, 1u);
  for (const char* bad : {"--threads=0", "--threads=-2", "--threads=many", "--threads=100000"})
    EXPECT_THROW(parse_options({bad}), usage_error) << bad;
  EXPECT_NE(help_words().find("the CPUs this process may use, at least 2"), std::string::npos);
}

// The bounds on one seriesQuery's discovery: byte counts with Kubernetes' binary suffixes.
TEST(ParseOptions, DiscoveryBounds) {
  const auto defaults = parse_options({});
  EXPECT_EQ(defaults.discovery_max_reply_bytes, std::uint64_t{1} << 30);
  EXPECT_EQ(defaults.discovery_max_series_shapes, 10000);
  EXPECT_EQ(parse_options({"--discovery-max-reply-bytes=512Mi"}).discovery_max_reply_bytes,
            std::uint64_t{512} << 20);
  EXPECT_EQ(parse_options({"--discovery-max-reply-bytes=4Gi"}).discovery_max_reply_bytes,
            std::uint64_t{4} << 30);
  EXPECT_EQ(parse_options({"--discovery-max-reply-bytes=65536"}).discovery_max_reply_bytes, 65536u);
  EXPECT_EQ(parse_options({"--discovery-max-reply-bytes=5000000000"}).discovery_max_reply_bytes,
            5000000000u);
  EXPECT_EQ(parse_options({"--discovery-max-series-shapes=20"}).discovery_max_series_shapes, 20);
  for (const char* bad :
       {"--discovery-max-reply-bytes=1G",
        "--discovery-max-reply-bytes=", "--discovery-max-reply-bytes=Mi",
        "--discovery-max-reply-bytes=-1Mi", "--discovery-max-reply-bytes=100",
        "--discovery-max-reply-bytes=99999999999Gi", "--discovery-max-series-shapes=0"})
    EXPECT_THROW(parse_options({bad}), usage_error) << bad;
}

TEST(ParseDuration, GoSyntax) {
  EXPECT_EQ(parse_duration("500ms"), std::chrono::milliseconds(500));
  EXPECT_EQ(parse_duration("2h"), std::chrono::hours(2));
  EXPECT_EQ(parse_duration("1.5s"), std::chrono::milliseconds(1500));
  EXPECT_THROW(parse_duration("5 s"), usage_error);
  EXPECT_THROW(parse_duration("5"), usage_error);
  // Malformed numbers are a usage error, never an exception that aborts the process.
  for (const char* bad :
       {".s", "1.2.3s", "..s", "1.s", "s", "1e3s", "-1s", "99999999999999999999h"})
    EXPECT_THROW(parse_duration(bad), usage_error) << bad;
  EXPECT_EQ(parse_duration(".5s"), std::chrono::milliseconds(500));
}

TEST(HelpText, ListsEveryFlag) {
  const auto help = help_text();
  for (const char* flag :
       {"--secure-port", "--bind-address", "--tls-cert-file", "--tls-private-key-file",
        "--cert-dir", "--prometheus-url", "--metrics-relist-interval", "--lister-kubeconfig",
        "--v ", "--insecure-skip-auth", "--help", "--explain", "--filename", "--hpa", "--selector",
        "--current-replicas", "--tolerance", "--output", "explain-hpa"})
    EXPECT_NE(help.find(flag), std::string::npos) << flag;
}

TEST(ParseOptions, CheckCommandTakesExplainThroughTheSameParser) {
  const auto o = parse_options({"check", "--config=/r.yaml", "--explain", "namespaces/a/m",
                                "--prometheus-url=http://p:9090", "--explain=namespaces/b/m"});
  EXPECT_EQ(o.cmd, command::check);
  EXPECT_EQ(o.config_file, "/r.yaml");
  EXPECT_EQ(o.explain, (std::vector<std::string>{"namespaces/a/m", "namespaces/b/m"}));
  EXPECT_TRUE(o.given.contains("prometheus-url"));
  EXPECT_FALSE(parse_options({"check", "--config=/r.yaml"}).given.contains("prometheus-url"));
  EXPECT_EQ(parse_options({}).cmd, command::serve);
}

TEST(ParseOptions, ExplainIsRefusedOutsideCheck) {
  try {
    parse_options({"--explain=namespaces/a/m"});
    FAIL() << "--explain was accepted by the server";
  } catch (const usage_error& e) {
    EXPECT_NE(std::string(e.what()).find("check command"), std::string::npos) << e.what();
  }
  EXPECT_THROW(parse_options({"--config=/r.yaml", "check"}), usage_error);
}

TEST(ParseOptions, ExplainHpaTakesKubectlShortFormsAndItsOwnFlags) {
  auto o = parse_options({"explain-hpa", "-f", "hpa.yaml", "-o=json", "--selector=app=x",
                          "--current-replicas=3", "--tolerance=0.2"});
  EXPECT_EQ(o.cmd, command::explain_hpa);
  EXPECT_EQ(o.hpa_file, "hpa.yaml");
  EXPECT_EQ(o.output, "json");
  EXPECT_EQ(o.pod_selector, "app=x");
  EXPECT_EQ(o.current_replicas, 3);
  EXPECT_DOUBLE_EQ(o.tolerance, 0.2);
  o = parse_options({"explain-hpa", "--hpa", "ml/triton", "--lister-kubeconfig=/k"});
  EXPECT_EQ(o.hpa_name, "ml/triton");
  EXPECT_EQ(o.output, "table");
  EXPECT_DOUBLE_EQ(o.tolerance, 0.1);
  const auto refused = [](std::vector<std::string> args, const std::string& why) {
    try {
      parse_options(args);
      ADD_FAILURE() << "accepted: " << args.back();
    } catch (const usage_error& e) {
      EXPECT_NE(std::string(e.what()).find(why), std::string::npos) << e.what();
    }
  };
  refused({"explain-hpa"}, "explain-hpa needs one of -f FILE and --hpa NAMESPACE/NAME");
  refused({"explain-hpa", "-f", "a", "--hpa", "n/x"}, "needs one of");
  refused({"explain-hpa", "--hpa", "triton"}, "expected NAMESPACE/NAME");
  refused({"explain-hpa", "--hpa", "a/b/c"}, "expected NAMESPACE/NAME");
  refused({"explain-hpa", "-f", "a", "-o", "yaml"}, "expected table or json");
  refused({"explain-hpa", "-f", "a", "--tolerance=1.5"}, "expected a number from 0 to 1");
  refused({"explain-hpa", "-f", "a", "--current-replicas=-1"}, "--current-replicas");
  refused({"--hpa=a/b"}, "--hpa is a flag of the explain-hpa command");
  refused({"check", "--config=c", "-f", "a"}, "--filename is a flag of the explain-hpa command");
  refused({"explain-hpa", "-f", "a", "--explain=x"}, "--explain is a flag of the check command");
}

// prometheus-adapter's Helm chart (4.x) renders its args starting with the binary's path, as
// the upstream walkthrough does: "replace the image, keep the arguments" must start.
TEST(ParseOptions, HelmChartArgumentsStartingWithTheReferenceBinary) {
  const std::vector<std::string> chart_args = {
      "/adapter",
      "--secure-port=6443",
      "--cert-dir=/tmp/cert",
      "--prometheus-url=http://prometheus.default.svc:9090/",
      "--metrics-relist-interval=1m",
      "--v=4",
      "--config=/etc/adapter/config.yaml"};
  const auto o = parse_options(chart_args);
  EXPECT_EQ(o.reference_binary_argument, "/adapter");
  EXPECT_EQ(o.cmd, command::serve);
  EXPECT_EQ(o.cert_dir, "/tmp/cert");
  EXPECT_EQ(o.prometheus_url, "http://prometheus.default.svc:9090/");
  EXPECT_EQ(o.verbosity, 4);
  EXPECT_EQ(o.config_file, "/etc/adapter/config.yaml");
  EXPECT_EQ(parse_options({"adapter", "--v=1"}).reference_binary_argument, "adapter");
  EXPECT_EQ(parse_options({"/adapter", "check", "--config=/r.yaml"}).cmd, command::check);
  EXPECT_TRUE(parse_options({"--v=1"}).reference_binary_argument.empty());
  // A flag whose value ends in /adapter is a flag, not the binary's name.
  const auto flag = parse_options({"--config=/etc/adapter"});
  EXPECT_TRUE(flag.reference_binary_argument.empty());
  EXPECT_EQ(flag.config_file, "/etc/adapter");
  // Only first: anywhere else it is still an unexpected argument.
  EXPECT_THROW(parse_options({"--v=1", "/adapter"}), usage_error);
  EXPECT_THROW(parse_options({"/bin/other"}), usage_error);
}

TEST(ParseOptions, ShortHelpAndVersion) {
  EXPECT_TRUE(parse_options({"-h"}).help);
  EXPECT_TRUE(parse_options({"--help"}).help);
  EXPECT_TRUE(parse_options({"--version"}).version);
  EXPECT_FALSE(parse_options({}).version);
}

std::string usage_error_of(const std::vector<std::string>& args) {
  try {
    parse_options(args);
  } catch (const usage_error& e) {
    return e.what();
  }
  return "(accepted)";
}

TEST(ParseOptions, UnknownFlagsGetTheClosestKnownOne) {
  EXPECT_EQ(usage_error_of({"--promethus-url=http://p"}),
            "unknown flag: --promethus-url (did you mean --prometheus-url?)");
  EXPECT_EQ(usage_error_of({"--metrics-relist-intreval=1m"}),
            "unknown flag: --metrics-relist-intreval (did you mean --metrics-relist-interval?)");
  EXPECT_EQ(usage_error_of({"--secure-prot", "1"}),
            "unknown flag: --secure-prot (did you mean --secure-port?)");
  EXPECT_EQ(usage_error_of({"--lister-kubeconfig-file=/k"}),
            "unknown flag: --lister-kubeconfig-file (did you mean --lister-kubeconfig?)");
  // Nothing close: no guess; nor for a name every letter of which would change.
  EXPECT_EQ(usage_error_of({"--frobnicate"}), "unknown flag: --frobnicate (see --help)");
  EXPECT_EQ(usage_error_of({"--x"}), "unknown flag: --x (see --help)");
}

TEST(HelpText, DescriptionsStartInOneColumnAndLinesStayNarrow) {
  const auto help = help_text();
  const auto flags_start = help.find("Flags:\n");
  ASSERT_NE(flags_start, std::string::npos);
  std::size_t column = 0;
  std::size_t lines = 0;
  for (std::size_t pos = 0; pos < flags_start;) {  // the usage part is as narrow
    const auto end = help.find('\n', pos);
    EXPECT_LE(end - pos, 100u) << help.substr(pos, end - pos);
    pos = end + 1;
  }
  std::size_t pos = flags_start + 7;
  while (pos < help.size()) {
    const auto end = help.find('\n', pos);
    const std::string line = help.substr(pos, end - pos);
    pos = end + 1;
    EXPECT_LE(line.size(), 100u) << line;
    // A description starts after the flag and at least two spaces, or continues one; a flag too
    // long for the first column stands alone on its line.
    const bool has_flag = line.starts_with("  --");
    if (has_flag && line.find("  ", 4) == std::string::npos) continue;
    const auto text = has_flag ? line.find("  ", 4) : 0;
    const auto start = line.find_first_not_of(' ', text);
    ASSERT_NE(start, std::string::npos) << line;
    if (column == 0) column = start;
    EXPECT_EQ(start, column) << line;
    ++lines;
  }
  EXPECT_GT(lines, 50u);
  // The verbosity levels are the README's.
  EXPECT_NE(help_words().find("1 refused requests, readiness failures, pod cache syncs and why an "
                              "answer is empty; 2 connection errors and discovery sizes; 3 every "
                              "request; 4 every PromQL query."),
            std::string::npos);
}

TEST(DefaultCertDir, OutsideAPodItIsTheUsersCacheDirectory) {
  const auto restore = [](const char* name, const char* old) {
    if (old) {
      setenv(name, old, 1);
    } else {
      unsetenv(name);
    }
  };
  const char* old_host = std::getenv("KUBERNETES_SERVICE_HOST");
  const std::string old_xdg = std::getenv("XDG_CACHE_HOME") ? std::getenv("XDG_CACHE_HOME") : "";
  const bool had_xdg = std::getenv("XDG_CACHE_HOME") != nullptr;
  const std::string host = old_host ? old_host : "";
  unsetenv("KUBERNETES_SERVICE_HOST");
  setenv("XDG_CACHE_HOME", "/home/u/.cache-x", 1);
  EXPECT_EQ(default_cert_dir(), "/home/u/.cache-x/gpu-metrics-adapter/certificates");
  EXPECT_EQ(parse_options({}).cert_dir, "/home/u/.cache-x/gpu-metrics-adapter/certificates");
  EXPECT_EQ(parse_options({"--cert-dir=/c"}).cert_dir, "/c");
  setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1", 1);
  EXPECT_EQ(default_cert_dir(), "apiserver.local.config/certificates");
  restore("KUBERNETES_SERVICE_HOST", old_host ? host.c_str() : nullptr);
  restore("XDG_CACHE_HOME", had_xdg ? old_xdg.c_str() : nullptr);
}

}  // namespace
}  // namespace gma::config
