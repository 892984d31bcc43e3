#!/usr/bin/env python3
"""Lets a fresh clone reuse the cargo cache of an earlier one (used by .ci/run only).

Cargo decides whether a workspace crate is fresh by comparing its sources' mtimes with the
time it was last built. Every clone writes every file "now", so a shared target dir still
rebuilt all workspace crates in all three profiles in each new clone (about 3 of the 4 minutes
of a warm run). This gives each tracked file back the mtime it had in the previous run when,
and only when, its content (git blob id) is the same; a changed or new file keeps "now", so
cargo rebuilds exactly what changed.

  ci_mtimes.py restore MANIFEST TARGET_DIR   before building: restore, remember what to save
  ci_mtimes.py save MANIFEST                 after the run (even a failed one)

The manifest is only trusted while the target dir was built by these runs alone: if any cargo
fingerprint there is newer than the manifest, someone built other sources into it since, and
nothing is restored (a cold-for-the-workspace but correct build).
"""

import hashlib
import os
import subprocess
import sys


def tracked():
    """(path, content id) of every tracked file, then of every directory holding one.

    A file's id is its git blob id. A directory's is a hash of its entries' names, so it counts
    as changed when a file is added or removed (build scripts watch directories)."""
    out = subprocess.run(
        ["git", "ls-files", "-s", "-z"], check=True, capture_output=True
    ).stdout
    entries = {}
    for entry in out.split(b"\0"):
        if not entry:
            continue
        meta, path = entry.split(b"\t", 1)
        _mode, blob, _stage = meta.split(b" ")
        path = path.decode()
        yield path, blob.decode()
        parts = path.split("/")
        for depth in range(len(parts) - 1):
            entries.setdefault("/".join(parts[: depth + 1]), set()).add(parts[depth + 1])
    # Deepest first, so that setting a directory's mtime is the last write inside its parent.
    for directory in sorted(entries, key=lambda d: -d.count("/")):
        names = "\0".join(sorted(entries[directory])).encode()
        yield directory + "/", hashlib.sha1(names).hexdigest()


def load(manifest):
    known = {}
    try:
        with open(manifest, encoding="utf-8") as f:
            for line in f:
                blob, mtime_ns, path = line.rstrip("\n").split("\t", 2)
                known[path] = (blob, int(mtime_ns))
    except FileNotFoundError:
        pass
    return known


def foreign_build(manifest, target):
    """A fingerprint in TARGET newer than MANIFEST: a build this script did not see."""
    try:
        since = os.stat(manifest).st_mtime_ns
    except FileNotFoundError:
        return False
    for profile_root, dirs, _files in os.walk(target):
        depth = profile_root[len(target) :].count(os.sep)
        if os.path.basename(profile_root) == ".fingerprint":
            for unit in dirs:
                unit_dir = os.path.join(profile_root, unit)
                for name in os.listdir(unit_dir):
                    if os.stat(os.path.join(unit_dir, name)).st_mtime_ns > since:
                        return True
            dirs[:] = []
        elif depth >= 3:
            dirs[:] = []
    return False


def restore(manifest, target):
    pending = manifest + ".pending"
    known = {} if foreign_build(manifest, target) else load(manifest)
    if not known and os.path.exists(manifest):
        print("ci_mtimes: the target dir was built outside .ci/run since the last run; "
              "workspace crates rebuild", file=sys.stderr)
    restored = changed = 0
    with open(pending, "w", encoding="utf-8") as out:
        for path, blob in tracked():
            try:
                mtime_ns = os.lstat(path).st_mtime_ns
            except FileNotFoundError:
                continue  # deleted in the working tree
            previous = known.get(path)
            if previous is not None and previous[0] == blob:
                mtime_ns = previous[1]
                os.utime(path, ns=(mtime_ns, mtime_ns), follow_symlinks=False)
                restored += 1
            else:
                changed += 1
            out.write(f"{blob}\t{mtime_ns}\t{path}\n")
    print(f"ci_mtimes: {restored} files keep their earlier mtime, {changed} are new or changed",
          file=sys.stderr)


def save(manifest):
    pending = manifest + ".pending"
    if os.path.exists(pending):
        os.replace(pending, manifest)
        os.utime(manifest)  # its mtime marks the end of this run's builds


def main(argv):
    if len(argv) == 4 and argv[1] == "restore":
        restore(argv[2], argv[3])
    elif len(argv) == 3 and argv[1] == "save":
        save(argv[2])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
