"""Configuration that explains itself: each bad setting stops `npc serve` before anything starts
with one line naming the variable (exit 2); partial TLS is refused; the variable table is
complete; `npc admin` finds the embedded database `npc serve` recorded."""

from __future__ import annotations

import os
import re
import socket
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from npc.cli import main, version
from npc.cli.record import ServeRecord, read_record, remove_record, write_record
from npc.config import VARIABLES
from npc.embedded import free_port

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No NPC_* variable from the outside; NPC_VAR_DIR a directory that does not exist yet, so
    a test sees whether anything started (embedded servers create it)."""
    for name in list(os.environ):
        if name.startswith("NPC_"):
            monkeypatch.delenv(name)
    var = tmp_path / "var"
    monkeypatch.setenv("NPC_VAR_DIR", str(var))
    return var


@pytest.fixture
def listening() -> Iterator[int]:
    """A port something listens on."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        yield int(taken.getsockname()[1])


def refused(capsys: pytest.CaptureFixture[str], argv: list[str], var: Path) -> str:
    """Run `npc ARGV`, expect exit 2 with one line on stderr and nothing started; the line."""
    code = main(argv)
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert not var.exists(), "something started before the setting was refused"
    return lines[0]


@pytest.mark.parametrize(
    ("variable", "value", "problem"),
    [
        ("NPC_GRPC_PORT", "abc", "'abc' is not a whole number"),
        ("NPC_HTTP_PORT", "70000", "70000 is out of range (0 to 65535)"),
        ("NPC_CHANGE_WINDOW", "25:00-03:00", "'25:00' is not a time of day"),
        ("NPC_CHANGE_WINDOW", "00:00", "'00:00' is not a window HH:MM-HH:MM"),
        ("NPC_RATE_LIMIT", "fast", "'fast' is not a number"),
        ("NPC_DEV_MODE", "maybe", "'maybe' is not 1/0"),
        ("NPC_REDIS_URL", "localhost:6379", "not a URL redis://"),
        ("NPC_CLOCK", "tomorrow", "<start ISO 8601"),
    ],
)
def test_a_bad_value_is_one_line_naming_the_variable(
    variable: str,
    value: str,
    problem: str,
    clean_env: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(variable, value)
    line = refused(capsys, ["serve"], clean_env)
    assert line.startswith(f"npc serve: {variable}: ")
    assert problem in line


def test_a_missing_tls_file_is_named(
    clean_env: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (tmp_path / "server.key").write_text("key")
    (tmp_path / "ca.crt").write_text("ca")
    monkeypatch.setenv("NPC_TLS_CERT", str(tmp_path / "server.crt"))
    monkeypatch.setenv("NPC_TLS_KEY", str(tmp_path / "server.key"))
    monkeypatch.setenv("NPC_TLS_CLIENT_CA", str(tmp_path / "ca.crt"))
    line = refused(capsys, ["serve"], clean_env)
    assert line == f"npc serve: NPC_TLS_CERT: no such file: {tmp_path / 'server.crt'}"


def test_partial_tls_settings_are_refused_not_served_in_plaintext(
    clean_env: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (tmp_path / "server.crt").write_text("cert")
    monkeypatch.setenv("NPC_TLS_CERT", str(tmp_path / "server.crt"))
    line = refused(capsys, ["serve"], clean_env)
    assert line.startswith("npc serve: NPC_TLS_KEY: unset while NPC_TLS_CERT is set")
    (tmp_path / "server.key").write_text("key")
    monkeypatch.setenv("NPC_TLS_KEY", str(tmp_path / "server.key"))
    line = refused(capsys, ["serve"], clean_env)
    assert line.startswith("npc serve: NPC_TLS_CLIENT_CA: unset while NPC_TLS_CERT, NPC_TLS_KEY")


def test_an_unreachable_database_is_refused_before_anything_starts(
    clean_env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NPC_DATABASE_URL", f"postgresql://npc@127.0.0.1:{free_port()}/npc")
    monkeypatch.setenv("NPC_DEV_MODE", "1")
    monkeypatch.setenv("NPC_GRPC_PORT", "0")
    monkeypatch.setenv("NPC_HTTP_PORT", "0")
    line = refused(capsys, ["serve"], clean_env)
    assert line.startswith("npc serve: NPC_DATABASE_URL: cannot connect: ")


def test_a_port_in_use_is_reported_before_the_embedded_databases_start(
    clean_env: Path,
    listening: int,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("NPC_HTTP_PORT", str(listening))
    line = refused(capsys, ["serve", "--grpc-port", "0"], clean_env)
    assert line.startswith(f"npc serve: NPC_HTTP_PORT: cannot listen on 127.0.0.1:{listening}: ")


def test_a_port_out_of_range_on_the_command_line_is_refused(
    clean_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["serve", "--grpc-port", "99999"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "argument --grpc-port: 99999 is out of range (0 to 65535)" in err
    assert not clean_env.exists()


def test_version_and_serve_help_listing_every_variable(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == f"npc {version()}"
    assert re.fullmatch(r"\d+\.\d+\.\d+.*", version())
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    out = capsys.readouterr().out
    missing = [v.name for v in VARIABLES if f"  {v.name} " not in out]
    assert not missing, missing


def test_the_variable_table_names_every_variable_the_server_reads() -> None:
    read = set()
    for path in (ROOT / "server" / "npc").rglob("*.py"):
        read |= set(re.findall(r"\"(NPC_[A-Z0-9_]+)\"", path.read_text()))
    listed = {v.name for v in VARIABLES}
    assert read - listed == set()
    readme = (ROOT / "README.md").read_text()
    undocumented = [name for name in sorted(listed) if f"`{name}`" not in readme]
    assert not undocumented, undocumented


def test_admin_uses_the_database_npc_serve_recorded(
    clean_env: Path,
    database_url: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert main(["admin", "verify-log"]) == 2  # nothing recorded, nothing configured
    assert "start `npc serve`" in capsys.readouterr().err
    record = ServeRecord(
        pid=os.getpid(),
        grpc="127.0.0.1:1",
        http="127.0.0.1:2",
        metrics=["127.0.0.1:2"],
        database_url=database_url,
        owner_database_url=database_url,
    )
    path = write_record(clean_env, record)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read_record(clean_env) == record
    assert main(["admin", "migrate"]) == 0
    assert main(["admin", "verify-log"]) == 0
    captured = capsys.readouterr()
    assert "log intact" in captured.out
    assert f"embedded PostgreSQL of npc serve (pid {os.getpid()})" in captured.err
    remove_record(clean_env, os.getpid() + 1)  # another process's removal leaves it
    assert read_record(clean_env) == record
    remove_record(clean_env, os.getpid())
    assert read_record(clean_env) is None
