#!/usr/bin/env python3
"""Compile proto/**/*.proto into Python modules, gRPC stubs and type stubs.

Run with the project venv's interpreter (``.venv/bin/python scripts/gen_protos.py``);
``./dev setup`` does so. Output goes to ``server/`` mirroring the proto package
layout (``proto/npc/v1/x.proto`` -> ``server/npc/v1/x_pb2.py`` etc.). Generation is
skipped when every output is newer than every input; ``--force`` overrides.
"""

from __future__ import annotations

import argparse
import importlib.resources
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py", "_pb2_grpc.pyi")
PLUGINS = ("protoc-gen-mypy", "protoc-gen-mypy_grpc")


def _outputs_for(proto: Path, proto_dir: Path, out_dir: Path) -> list[Path]:
    rel = proto.relative_to(proto_dir).with_suffix("")
    return [out_dir / rel.parent / f"{rel.name}{suffix}" for suffix in GENERATED_SUFFIXES]


def _is_generated(path: Path) -> bool:
    return path.name.endswith(GENERATED_SUFFIXES)


def _up_to_date(protos: list[Path], proto_dir: Path, out_dir: Path) -> bool:
    # Directories count as inputs too: deleting or renaming a proto bumps their mtime.
    dirs = [proto_dir, *(d for d in proto_dir.rglob("*") if d.is_dir())]
    inputs = [*protos, *dirs, Path(__file__).resolve()]
    newest_input = max(p.stat().st_mtime for p in inputs)
    outputs: list[Path] = []
    for proto in protos:
        expected = _outputs_for(proto, proto_dir, out_dir)
        # The message module and its stub are always produced; the grpc ones may
        # legitimately be absent for service-less files with some plugin versions.
        if not all(p.exists() for p in expected[:2]):
            return False
        outputs += [p for p in expected if p.exists()]
    return min(p.stat().st_mtime for p in outputs) >= newest_input


def _tool_path() -> str:
    """PATH with the venv's bin dirs first, so protoc finds the mypy plugins."""
    dirs = [str(Path(sys.executable).parent), str(ROOT / ".venv" / "bin")]
    return os.pathsep.join([*dirs, os.environ.get("PATH", "")])


def generate(proto_dir: Path, out_dir: Path, *, force: bool = False, quiet: bool = False) -> int:
    """Compile every ``*.proto`` under ``proto_dir`` into ``out_dir``; return an exit code.

    With ``quiet`` only actual work and errors are reported.
    """
    proto_dir = proto_dir.resolve()
    out_dir = out_dir.resolve()
    protos = sorted(proto_dir.rglob("*.proto")) if proto_dir.is_dir() else []
    # proto/google/ holds copies of Google's protos for buf; their Python code is
    # googleapis-common-protos', so they are only an import path here.
    protos = [p for p in protos if p.relative_to(proto_dir).parts[0] != "google"]
    if not protos:
        if not quiet:
            print(f"gen_protos: no .proto files under {proto_dir}; nothing to do")
        return 0
    if not force and _up_to_date(protos, proto_dir, out_dir):
        if not quiet:
            print("gen_protos: generated code is up to date")
        return 0

    path = _tool_path()
    missing = [p for p in PLUGINS if shutil.which(p, path=path) is None]
    if missing:
        print(
            f"gen_protos: {', '.join(missing)} not found; install mypy-protobuf "
            "(pip install -e '.[dev]')",
            file=sys.stderr,
        )
        return 1
    wkt_include = importlib.resources.files("grpc_tools") / "_proto"

    out_dir.mkdir(parents=True, exist_ok=True)
    package_dirs = sorted({out_dir / p.relative_to(proto_dir).parent for p in protos})
    created_dirs: set[Path] = set()
    for pkg in package_dirs:
        for d in [*reversed(pkg.relative_to(out_dir).parents), pkg.relative_to(out_dir)]:
            target = out_dir / d
            if target != out_dir and not target.exists():
                created_dirs.add(target)
        pkg.mkdir(parents=True, exist_ok=True)

    cmd = [
        sys.executable,
        "-m",
        "grpc_tools.protoc",
        f"-I{proto_dir}",
        f"-I{wkt_include}",
        f"--python_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        f"--mypy_out={out_dir}",
        f"--mypy_grpc_out={out_dir}",
        *[str(p) for p in protos],
    ]
    env = {**os.environ, "PATH": path}
    proc = subprocess.run(cmd, env=env, check=False, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout + proc.stderr)
        print(f"gen_protos: protoc failed with exit code {proc.returncode}", file=sys.stderr)
        return proc.returncode

    # Packages: every directory holding generated code, plus any directory this run
    # created on the way to one. Existing __init__.py files are never touched.
    for d in sorted({*package_dirs, *created_dirs}):
        init = d / "__init__.py"
        if not init.exists():
            init.touch()

    # Drop outputs of protos that no longer exist (in any directory mirroring proto/).
    expected = {o for p in protos for o in _outputs_for(p, proto_dir, out_dir)}
    mirrored = {out_dir / d.relative_to(proto_dir) for d in proto_dir.rglob("*") if d.is_dir()}
    for pkg in sorted(mirrored | set(package_dirs)):
        if not pkg.is_dir():
            continue
        for f in pkg.iterdir():
            if f.is_file() and _is_generated(f) and f not in expected:
                f.unlink()

    # Stamp every output after the fact so the up-to-date check is reliable.
    for o in expected:
        if o.exists():
            o.touch()
    print(f"gen_protos: compiled {len(protos)} proto file(s) into {out_dir}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--proto-dir", type=Path, default=ROOT / "proto")
    parser.add_argument("--out-dir", type=Path, default=ROOT / "server")
    parser.add_argument("--force", action="store_true", help="regenerate even if up to date")
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="say nothing when there is nothing to do"
    )
    args = parser.parse_args(argv)
    return generate(args.proto_dir, args.out_dir, force=args.force, quiet=args.quiet)


if __name__ == "__main__":
    sys.exit(main())
