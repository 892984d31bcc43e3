#!/usr/bin/env python3
"""Summarize a synthesized cloud assembly: stacks, resources by type, and each Lambda
function's asset (the ELF architecture of its `bootstrap` and its zipped size).

    python3 scripts/synth_summary.py cdk/cdk.out

Exits non-zero if a function's asset is missing or is not an ELF `bootstrap` for Linux:
that is a broken build, not something to deploy.
"""

import collections
import io
import json
import pathlib
import sys
import zipfile

ELF_MACHINES = {0x3E: "x86_64", 0xB7: "arm64"}


def stacks(outdir: pathlib.Path):
    """Yields (stack name, template path) for every stack, nested stages included."""
    manifest = json.loads((outdir / "manifest.json").read_text())
    for artifact in manifest.get("artifacts", {}).values():
        if artifact["type"] == "aws:cloudformation:stack":
            props = artifact["properties"]
            yield props.get("stackName", artifact.get("displayName")), outdir / props["templateFile"]
        elif artifact["type"] == "cdk:cloud-assembly":
            yield from stacks(outdir / artifact["properties"]["directoryName"])


def elf_arch(path: pathlib.Path) -> str | None:
    head = path.read_bytes()[:20]
    if head[:4] != b"\x7fELF" or head[4] != 2:  # 64-bit ELF
        return None
    return ELF_MACHINES.get(int.from_bytes(head[18:20], "little"), f"machine {head[18]:#x}")


def zipped_size(directory: pathlib.Path) -> int:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for file in sorted(p for p in directory.rglob("*") if p.is_file()):
            archive.write(file, file.relative_to(directory))
    return buffer.tell()


def main(outdir: pathlib.Path) -> int:
    problems = []
    root = outdir
    # Functions share an asset only when they run one binary (tag eventfabric:binary): two
    # binaries on one asset means one function runs the other's code (CDK caches a bundling
    # by source directory and options, which once gave every binary of one crate the first
    # one's bootstrap).
    binary_of_asset = {}
    for name, template_path in stacks(outdir):
        template = json.loads(template_path.read_text())
        resources = template.get("Resources", {})
        by_type = collections.Counter(r["Type"] for r in resources.values())
        print(f"\n{name}: {len(resources)} resources")
        for kind, count in sorted(by_type.items()):
            print(f"  {count:3d}  {kind}")
        for logical_id, resource in sorted(resources.items()):
            if resource["Type"] != "AWS::Lambda::Function":
                continue
            props = resource["Properties"]
            key = props.get("Code", {}).get("S3Key", "")
            asset = root / f"asset.{key.removesuffix('.zip')}"
            label = props.get("FunctionName", logical_id)
            tags = {t["Key"]: t["Value"] for t in props.get("Tags", [])}
            binary = tags.get("eventfabric:binary", label)
            first = binary_of_asset.setdefault(key, (binary, label))
            if first[0] != binary:
                problems.append(
                    f"{label} (binary {binary}) deploys the asset of {first[1]} (binary {first[0]}): {key}"
                )
            bootstrap = asset / "bootstrap"
            if not bootstrap.is_file():
                problems.append(f"{label}: no bootstrap in {asset} (was bundling skipped?)")
                continue
            arch = elf_arch(bootstrap)
            declared = (props.get("Architectures") or ["x86_64"])[0]
            if arch is None:
                problems.append(f"{label}: {bootstrap} is not a 64-bit ELF executable")
            elif arch != declared:
                problems.append(f"{label}: bootstrap is {arch} but the function declares {declared}")
            size = zipped_size(asset)
            print(
                f"  function {label}: {props.get('Runtime')} {declared}, bootstrap ELF {arch}, "
                f"{bootstrap.stat().st_size / 1e6:.1f} MB, zipped {size / 1e6:.1f} MB"
            )
    for p in problems:
        print(f"error: {p}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: synth_summary.py <cdk.out directory>")
    sys.exit(main(pathlib.Path(sys.argv[1])))
