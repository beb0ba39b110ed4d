#!/usr/bin/env python3
"""Build npc's three wheels from the sources git tracks: npc-protocol, npc-clients and npc.

    python scripts/build_wheels.py [--out dist]

- **npc-protocol**: the .proto files and the Python code generated from them here (messages,
  gRPC stubs, type stubs), as the `npc.v1` portion of the `npc` namespace;
- **npc-clients**: the operator SDK (`npc_clients`), depending on npc-protocol;
- **npc**: the server and its command (`npc`, and the tools `npc_tools` that drive it through the
  SDK), depending on both.

Each distribution is staged in a temporary directory from the files git tracks (what a clean
checkout holds: nothing generated in the working tree is taken), with its pyproject from
`packaging/<name>/pyproject.toml.in`, and built by pip with the current environment's
setuptools (no network).
The runtime floors of protobuf and grpcio are read from the generated code, which refuses to
import under an older runtime. Prints one wheel path per line.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

from gen_protos import generate  # noqa: E402

# The third-party packages whose floors come from the generated code, not from pyproject.toml.
GENERATED_FLOORS = (
    "protobuf",
    "grpcio",
    "grpcio-status",
    "grpcio-health-checking",
    "grpcio-reflection",
)


def tracked_files() -> list[Path]:
    """The files git tracks under the repository (as they are in the working tree)."""
    out = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, check=True, capture_output=True
    ).stdout.decode()
    return [Path(name) for name in out.split("\0") if name and (ROOT / name).is_file()]


def copy_tree(files: list[Path], source: str, target: Path) -> None:
    """Copy the tracked files under `source` (a directory of the repository) into `target`."""
    prefix = Path(source)
    for rel in files:
        if prefix in rel.parents:
            destination = target / rel.relative_to(prefix)
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, destination)


def version() -> str:
    """npc's version, defined once in server/npc/__init__.py."""
    text = (ROOT / "server/npc/__init__.py").read_text()
    found = re.search(r'^__version__ = "([^"]+)"', text, re.MULTILINE)
    if found is None:
        raise SystemExit("build_wheels: no __version__ in server/npc/__init__.py")
    return found.group(1)


def generated_floors(package: Path) -> dict[str, str]:
    """The protobuf and grpcio versions the generated code in `package` checks at import."""
    floors: dict[str, str] = {}
    for module in sorted(package.glob("*_pb2.py")):
        runtime = re.search(
            r"ValidateProtobufRuntimeVersion\(\s*_runtime_version\.Domain\.PUBLIC,\s*"
            r"(\d+),\s*(\d+),\s*(\d+),",
            module.read_text(),
        )
        if runtime:
            floors["protobuf"] = ".".join(runtime.groups())
    for module in sorted(package.glob("*_pb2_grpc.py")):
        grpc = re.search(r"GRPC_GENERATED_VERSION = '([^']+)'", module.read_text())
        if grpc:
            floors["grpcio"] = grpc.group(1)
    if set(floors) != {"protobuf", "grpcio"}:
        raise SystemExit(f"build_wheels: no runtime versions in the generated code ({floors})")
    return floors


def stage_protocol(files: list[Path], stage: Path) -> dict[str, str]:
    """Generate npc.v1 into `stage` from the tracked protos; return the runtime floors."""
    protos = stage / "_proto"
    copy_tree(files, "proto", protos)
    if generate(protos, stage, force=True, quiet=True) != 0:
        raise SystemExit("build_wheels: generating the protocol code failed")
    shutil.rmtree(protos)
    (stage / "npc" / "__init__.py").unlink()  # a namespace portion: the server owns npc/
    package = stage / "npc" / "v1"
    copy_tree(files, "proto/npc/v1", package)  # the sources travel with the code
    (package / "py.typed").touch()
    return generated_floors(package)


def server_dependencies(floors: dict[str, str]) -> str:
    """pyproject.toml's runtime dependencies, with the floors the generated code needs."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lines = []
    for requirement in project["dependencies"]:
        name = re.split(r"[<>=!\[ ]", requirement, maxsplit=1)[0]
        if name in GENERATED_FLOORS:
            floor = floors["protobuf" if name == "protobuf" else "grpcio"]
            requirement = f"{name}>={floor}"
        lines.append(f'    "{requirement}",')
    return "\n".join(lines)


def write_pyproject(stage: Path, name: str, **values: str) -> None:
    template = (ROOT / "packaging" / name / "pyproject.toml.in").read_text()
    (stage / "pyproject.toml").write_text(template.format(**values))


def build(stage: Path, out: Path) -> Path:
    """Build the wheel of the distribution staged in `stage` into `out`; return its path."""
    before = set(out.glob("*.whl"))
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--wheel-dir",
            str(out),
            str(stage),
        ],
        check=True,
    )
    built = sorted(set(out.glob("*.whl")) - before)
    if len(built) != 1:
        raise SystemExit(f"build_wheels: expected one wheel from {stage}, found {built}")
    return built[0]


def main(argv: list[str] | None = None) -> int:
    """Stage and build the three wheels into --out; print their paths."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=ROOT / "dist")
    args = parser.parse_args(argv)
    out: Path = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    files = tracked_files()
    values = {"version": version()}
    with tempfile.TemporaryDirectory(prefix="npc-wheels-") as tmp:
        staging = Path(tmp)
        protocol = staging / "protocol"
        floors = stage_protocol(files, protocol)
        values |= {"protobuf_floor": floors["protobuf"], "grpcio_floor": floors["grpcio"]}
        write_pyproject(protocol, "protocol", **values)

        clients = staging / "clients"
        copy_tree(files, "clients/npc_clients", clients / "npc_clients")
        write_pyproject(clients, "clients", **values)

        server = staging / "server"
        copy_tree(files, "server/npc", server / "npc")
        copy_tree(files, "clients/npc_tools", server / "npc_tools")
        write_pyproject(server, "server", **values, server_dependencies=server_dependencies(floors))
        for stage in (protocol, clients, server):
            print(build(stage, out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
