#!/usr/bin/env python3
"""Configures the project from exactly the files the Dockerfile's build stage copies, honouring
.dockerignore, so a build input the image lacks fails here instead of in `docker build`.

  check_dockerfile.py REPO_ROOT
"""
import fnmatch
import os
import shutil
import subprocess
import sys
import tempfile


def build_stage_copies(dockerfile):
    """(source, destination) of every COPY in the first stage (the builder)."""
    copies = []
    with open(dockerfile) as f:
        stages = 0
        for line in f:
            words = line.split()
            if not words:
                continue
            if words[0].upper() == "FROM":
                stages += 1
                if stages > 1:
                    break
            elif words[0].upper() == "COPY" and not any(w.startswith("--from") for w in words):
                args = [w for w in words[1:] if not w.startswith("--")]
                copies += [(src, args[-1]) for src in args[:-1]]
    return copies


def ignore_rules(root):
    path = os.path.join(root, ".dockerignore")
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [line.strip() for line in f if line.strip() and not line.startswith("#")]


def ignored(relative, rules):
    """Docker's rule: the last matching pattern wins; '!' re-includes. A pattern also matches
    everything below a matching folder."""
    verdict = False
    for rule in rules:
        negate = rule.startswith("!")
        pattern = rule[1:] if negate else rule
        parts = relative.split("/")
        if any(fnmatch.fnmatch("/".join(parts[:i]), pattern) for i in range(1, len(parts) + 1)):
            verdict = not negate
    return verdict


def copy_context(root, source, destination, rules, workdir):
    """COPY `source` `destination` from the build context, with WORKDIR `workdir`: a folder's
    contents go into the destination folder; a file goes into it when the destination ends
    with '/' (or is '.'), else to the destination path."""
    full = os.path.join(root, source)
    if not os.path.exists(full) or ignored(source, rules):
        raise SystemExit(f"the Dockerfile copies {source}, which is not in the build context")
    target = os.path.normpath(os.path.join(workdir, destination))
    if os.path.isfile(full):
        into_folder = destination.endswith("/") or destination in (".", "./")
        pairs = [(source, os.path.join(target, os.path.basename(source)) if into_folder else target)]
    else:
        pairs = []
        for folder, _, names in os.walk(full):
            for name in names:
                relative = os.path.relpath(os.path.join(folder, name), root)
                pairs.append((relative, os.path.join(target, os.path.relpath(relative, source))))
    for relative, to in pairs:
        if ignored(relative, rules):
            continue
        os.makedirs(os.path.dirname(to), exist_ok=True)
        shutil.copy2(os.path.join(root, relative), to)


def main(root):
    rules = ignore_rules(root)
    with tempfile.TemporaryDirectory() as work:
        src = os.path.join(work, "src")
        os.makedirs(src)
        for source, destination in build_stage_copies(os.path.join(root, "Dockerfile")):
            copy_context(root, source, destination, rules, src)  # the Dockerfile's WORKDIR /src
        result = subprocess.run(["cmake", "-S", src, "-B", os.path.join(work, "build"),
                                 "-DCMAKE_BUILD_TYPE=Release", "-DGMA_BUILD_TESTS=OFF"],
                                capture_output=True, text=True)
        if result.returncode != 0:
            print(result.stdout[-2000:], result.stderr[-4000:])
            print("the project does not configure from the files the Dockerfile copies")
            return 1
    print("the project configures from exactly the files the Dockerfile copies")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "..")))
