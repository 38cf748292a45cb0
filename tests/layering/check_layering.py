#!/usr/bin/env python3
"""Checks the layering of ARCHITECTURE.md on the sources.

Every C++ file under server/ and adapters/ belongs to one layer; each layer may include the
project headers of the layers listed for it, and none of the third-party headers forbidden to
it. Only the composition layers (main.cpp, server/wiring, server/cli) may name the adapters.

  check_layering.py ROOT              check the tree at ROOT; exit 1 and list every violation
  check_layering.py --self-test ROOT  first prove on a scratch tree that violations are caught
"""
import os
import re
import sys
import tempfile

# Layer name -> path prefix (a file, or a folder ending in '/'). Longest prefix wins.
LAYERS = {
    "core": "server/core/",
    "config": "server/config/",
    "http": "server/http/",
    "handlers": "server/handlers/",
    "auth": "server/auth/",
    "wiring": "server/wiring/",
    "cli": "server/cli/",
    "main": "server/main.cpp",
    "http_client": "adapters/http_client/",
    "prometheus": "adapters/prometheus/",
    "kubernetes": "adapters/kubernetes/",
}
ADAPTERS = {"http_client", "prometheus", "kubernetes"}
COMPOSITION = {"wiring", "cli", "main"}

# Which layers' headers each layer may include (its own is always allowed).
MAY_INCLUDE = {
    "core": set(),
    "config": {"core"},
    "http": {"core"},
    "handlers": {"core", "http"},
    "auth": {"core", "http"},
    "http_client": {"core"},
    "prometheus": {"core", "http_client"},
    "kubernetes": {"core", "http_client"},
    "wiring": set(LAYERS) - {"cli", "main"},
    "cli": set(LAYERS) - {"main"},
    "main": set(LAYERS),
}

# Third-party headers a layer must not include: the core has no sockets, TLS or HTTP.
SOCKETS = [r"boost/beast", r"boost/asio/ip/", r"boost/asio/ssl", r"boost/asio\.hpp",
           r"boost/asio/local/", r"boost/asio/generic/", r"boost/asio/(basic_)?(stream_)?socket",
           r"sys/socket\.h", r"netinet/", r"arpa/inet\.h", r"openssl/"]
FORBIDDEN_SYSTEM = {
    "core": SOCKETS + [r"prometheus/", r"yaml-cpp/", r"re2/"],
    "config": [r"boost/beast", r"boost/asio/ip/", r"boost/asio/ssl", r"openssl/"],
    "handlers": [r"boost/beast", r"boost/asio/ip/", r"boost/asio/ssl", r"openssl/"],
}

INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^">]+)[">]', re.M)
# adapters:: in code, and `using namespace gma::adapters` / namespace aliases that hide it.
NAMES_ADAPTER = re.compile(r"\badapters\s*::|\busing\s+namespace\s+(::)?(gma\s*::\s*)?adapters\b"
                           r"|\bnamespace\s+\w+\s*=\s*(::)?(gma\s*::\s*)?adapters\b")
# String and character literals (with escapes), so that "pods/*" does not open a comment.
LITERAL = re.compile(r'"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\'')
SOURCE = re.compile(r"\.(cpp|hpp|h|cc)$|\.cpp\.in$")


def layer_of(path):
    best = None
    for name, prefix in LAYERS.items():
        if (path == prefix or (prefix.endswith("/") and path.startswith(prefix))) and (
                best is None or len(prefix) > len(LAYERS[best])):
            best = name
    return best


def strip_comments(text):
    """Removes comments but keeps #include lines whole: literals are blanked before comments
    are looked for, except the quoted name of an #include."""
    out = []
    for line in text.split("\n"):
        if INCLUDE.match(line):
            out.append(line)
        else:
            out.append(LITERAL.sub('""', line))
    text = "\n".join(out)
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


def resolve(header, kind, path, root):
    """The repository path an include names, or None for a third-party header. Project
    headers are found the way the compiler finds them: relative to the including file for
    quoted includes, then from the repository root (which is on the include path) for both."""
    if kind == '"':
        relative = os.path.normpath(os.path.join(os.path.dirname(path), header)).replace(os.sep, "/")
        if not relative.startswith("..") and os.path.exists(os.path.join(root, relative)):
            return relative
    normal = os.path.normpath(header).replace(os.sep, "/")
    return normal if normal.startswith(("server/", "adapters/")) else None


def violations(root):
    found = []
    for top in ("server", "adapters"):
        for folder, _, files in os.walk(os.path.join(root, top)):
            for file in files:
                if not SOURCE.search(file) or file == "CMakeLists.txt":
                    continue
                full = os.path.join(folder, file)
                path = os.path.relpath(full, root).replace(os.sep, "/")
                layer = layer_of(path)
                if layer is None:
                    found.append(f"{path}: in no layer; add its folder to ARCHITECTURE.md and {__file__}")
                    continue
                with open(full, encoding="utf-8", errors="replace") as f:
                    text = strip_comments(f.read())
                for kind, header in INCLUDE.findall(text):
                    resolved = resolve(header, kind, path, root)
                    target = layer_of(resolved) if resolved else None
                    if target is not None and target != layer and target not in MAY_INCLUDE[layer]:
                        found.append(f"{path}: layer {layer} includes {header} (layer {target})")
                    for pattern in FORBIDDEN_SYSTEM.get(layer, []):
                        if re.match(pattern, header):
                            found.append(f"{path}: layer {layer} includes {header}, which it must not use")
                if layer not in COMPOSITION and layer not in ADAPTERS and NAMES_ADAPTER.search(text):
                    found.append(f"{path}: layer {layer} names adapters::; only wiring, cli and main.cpp may")
    return sorted(found)


def self_test():
    """A scratch tree with one clean file and one violation of each kind."""
    files = {
        "server/core/ok.hpp": '#include "server/core/error.hpp"\n#include <boost/asio/awaitable.hpp>\n',
        "server/core/bad_layer.cpp": '#include "adapters/prometheus/api_client.hpp"\n',
        "server/core/bad_socket.cpp": "#include <boost/asio/ip/tcp.hpp>\n",
        "server/http/bad_up.cpp": '#include "server/handlers/api_handler.hpp"\n',
        "server/auth/bad_handlers.cpp": '#include "server/handlers/route.hpp"\n',
        "server/handlers/bad_name.cpp": "int x = gma::adapters::prometheus::thing;\n",
        "adapters/kubernetes/bad_server.cpp": '#include "server/auth/authenticator.hpp"\n',
        "adapters/prometheus/bad_sibling.cpp": '#include "adapters/kubernetes/pod_cache.hpp"\n',
        "server/wiring/ok.cpp": '#include "adapters/prometheus/api_client.hpp"\n',
        "server/stray/file.cpp": "\n",
        "server/core/commented.cpp": '// #include "adapters/prometheus/api_client.hpp"\n',
        "server/core/bad_angle.cpp": "#include <adapters/prometheus/api_client.hpp>\n",
        "server/auth/bad_relative.cpp": '#include "../handlers/route.hpp"\n',
        "server/handlers/route.hpp": "\n",
        "server/core/bad_literal.cpp": 'const char* a = "pods/*";\n#include "server/http/server.hpp"\n'
                                       'const char* b = "*/";\n',
        "server/core/ok_literal.cpp": 'const char* url = "http://x"; int adapters_count = 0;\n',
        "server/http/bad_using.cpp": "using namespace gma::adapters;\n",
        "server/auth/bad_alias.cpp": "namespace prom = gma::adapters::prometheus;\n",
        "server/core/bad_posix.cpp": "#include <sys/socket.h>\n",
    }
    with tempfile.TemporaryDirectory() as root:
        for path, text in files.items():
            os.makedirs(os.path.dirname(os.path.join(root, path)), exist_ok=True)
            with open(os.path.join(root, path), "w") as f:
                f.write(text)
        caught = {line.split(":")[0] for line in violations(root)}
    expected = {p for p in files if "/bad_" in p or "/stray/" in p}
    if caught != expected:
        print(f"self-test FAILED: expected violations in {sorted(expected)}, got {sorted(caught)}")
        return False
    print(f"self-test: all {len(expected)} planted violations caught, no false positive")
    return True


def main(argv):
    args = [a for a in argv if a != "--self-test"]
    root = args[0] if args else os.path.join(os.path.dirname(__file__), "..", "..")
    if "--self-test" in argv and not self_test():
        return 1
    found = violations(root)
    for line in found:
        print(line)
    print(f"layering: {len(found)} violations")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
