#include "adapters/kubernetes/cluster_access.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <stdexcept>
#include <string>

namespace gma::adapters::kubernetes {
namespace {

/// A kubeconfig whose current user is `user_yaml` (indented under `user:`).
std::string kubeconfig_with_user(const std::string& user_yaml) {
  return "apiVersion: v1\n"
         "kind: Config\n"
         "current-context: c\n"
         "contexts:\n- name: c\n  context: {cluster: k, user: u}\n"
         "clusters:\n- name: k\n  cluster: {server: 'http://127.0.0.1:1'}\n"
         "users:\n- name: u\n  user:\n" +
         user_yaml;
}

std::string error_of(const std::string& text) {
  try {
    parse_kubeconfig(text, "/home/me/.kube/config");
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "(accepted)";
}

// EKS, GKE and AKS kubeconfigs authenticate through plugins the adapter does not run: starting
// would send every request without credentials, so they are refused, with what to do instead.
TEST(Kubeconfig, ExecPluginUsersAreRefusedWithTheReasonAndASuggestion) {
  const auto eks =
      error_of(kubeconfig_with_user("    exec:\n"
                                    "      apiVersion: client.authentication.k8s.io/v1beta1\n"
                                    "      command: aws\n"
                                    "      args: [eks, get-token, --cluster-name, prod]\n"));
  EXPECT_NE(eks.find("kubeconfig /home/me/.kube/config: the user \"u\" authenticates with an exec "
                     "plugin (aws), which gpu-metrics-adapter does not run"),
            std::string::npos)
      << eks;
  EXPECT_NE(eks.find("kubectl create token"), std::string::npos) << eks;
  EXPECT_NE(eks.find("Run it in the cluster"), std::string::npos) << eks;
}

TEST(Kubeconfig, AuthProviderUsersAreRefused) {
  const auto gke =
      error_of(kubeconfig_with_user("    auth-provider:\n"
                                    "      name: gcp\n"
                                    "      config: {cmd-path: gcloud}\n"));
  EXPECT_NE(gke.find("authenticates with an auth-provider (gcp)"), std::string::npos) << gke;
}

TEST(Kubeconfig, PluginsBesideATokenAreNotNeeded) {
  // A user that also has its own credentials is served with those.
  const auto access = parse_kubeconfig(kubeconfig_with_user("    token: abc\n"
                                                            "    exec: {command: aws}\n"),
                                       "/k");
  ASSERT_EQ(access.client_options.headers.size(), 1u);
  EXPECT_EQ(access.client_options.headers[0].second, "Bearer abc");
  EXPECT_EQ(error_of(kubeconfig_with_user("    token: abc\n")), "(accepted)");
}

TEST(Kubeconfig, AMissingFileIsNamedAsSuch) {
  const auto missing =
      (std::filesystem::temp_directory_path() / "gma-no-such-kubeconfig-4711").string();
  try {
    load_kubeconfig(missing);
    FAIL() << "a missing kubeconfig loaded";
  } catch (const std::runtime_error& e) {
    EXPECT_EQ(std::string(e.what()), "kubeconfig " + missing + ": no such file");
  }
}

}  // namespace
}  // namespace gma::adapters::kubernetes
