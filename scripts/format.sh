#!/usr/bin/env bash
# Formats the C++ sources with .clang-format; --check only reports files that would change
# (exit 1), which is what the lint test runs.
set -euo pipefail
cd "$(dirname "$0")/.."
# Tracked files and new ones git does not ignore, so a file is formatted before its first commit.
mapfile -t files < <(git ls-files --cached --others --exclude-standard \
                       'server/*.cpp' 'server/*.hpp' 'adapters/*.cpp' 'adapters/*.hpp' \
                       'tests/*.cpp' 'tests/*.hpp' 'third_party/*.cpp')
if [[ "${1:-}" == "--check" ]]; then
  clang-format --dry-run --Werror "${files[@]}"
else
  clang-format -i "${files[@]}"
fi
