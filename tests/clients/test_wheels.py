"""The three wheels, built from the tracked sources, install into a fresh virtual environment
and carry a whole port through the installed SDK."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

from npc.v1 import portability_pb2 as pb
from tests.helpers import advance_to

ROOT = Path(__file__).resolve().parents[2]


def _run(*command: str | Path, timeout: float = 300) -> str:
    # No PYTHONPATH: what runs in the fresh environment finds only what the wheels installed.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(
        [str(part) for part in command],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd="/",
        check=False,
    )
    assert done.returncode == 0, f"{command}: {done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.mark.slow
@pytest.mark.timeout(600)
async def test_the_wheels_install_into_a_fresh_environment_and_carry_a_port(app, clock, tmp_path):
    dist = tmp_path / "dist"
    built = await asyncio.to_thread(
        _run, sys.executable, ROOT / "scripts/build_wheels.py", "--out", dist
    )
    wheels = [Path(line) for line in built.split() if line.endswith(".whl")]
    assert sorted(w.name.split("-")[0] for w in wheels) == ["npc", "npc_clients", "npc_protocol"]

    venv = tmp_path / "venv"
    await asyncio.to_thread(_run, sys.executable, "-m", "venv", "--without-pip", venv)
    python = venv / "bin" / "python"
    # uv (which `./dev setup` installs) reads the same wheel metadata as pip and installs their
    # dependencies in a few seconds where pip spends twenty; pip when uv is not there.
    uv = Path(sys.executable).parent / "uv"
    installer = (
        [uv, "pip", "install"]  # uv compiles no bytecode unless asked
        if uv.exists()
        else [sys.executable, "-m", "pip", "install", "--no-compile"]
    )
    await asyncio.to_thread(_run, *installer, "--python", python, "-q", *wheels)
    assert _run(venv / "bin" / "npc", "--version").strip().startswith("npc ")
    # The SDK ships its type information, and the generated code its stubs and .proto sources.
    located = _run(
        python,
        "-I",
        "-c",
        "import npc_clients, npc.v1, pathlib;"
        "print(pathlib.Path(npc_clients.__file__).parent);"
        "print(pathlib.Path(list(npc.v1.__path__)[0]))",
    ).split()
    sdk, protocol = Path(located[0]), Path(located[1])
    assert venv in sdk.parents and venv in protocol.parents
    assert (sdk / "py.typed").exists() and (protocol / "py.typed").exists()
    assert (protocol / "portability_pb2.pyi").exists() and (protocol / "portability.proto").exists()

    script = Path(__file__).with_name("wheel_port.py")
    target = f"127.0.0.1:{app.grpc_port}"
    filed = json.loads(
        await asyncio.to_thread(_run, python, "-I", script, "file", target, clock.now().isoformat())
    )
    assert filed["state"] == "PORT_REQUEST_STATE_SCHEDULED"
    assert venv in Path(filed["sdk"]).parents
    await advance_to(
        app, clock, datetime.fromisoformat(filed["window"]).replace(tzinfo=clock.now().tzinfo)
    )
    finished = json.loads(
        await asyncio.to_thread(_run, python, "-I", script, "finish", target, filed["id"])
    )
    assert finished["state"] == pb.PortRequestState.Name(pb.PORT_REQUEST_STATE_COMPLETED)
