"""The layering of the packages and the `npc` command's parsers, checked without running a server.

The server package (`npc`) never imports the operator SDK (`npc_clients`) or the tools above both
(`npc_tools`); only the `npc` command does, inside the handlers of the commands that need them, so
`npc --help` and `npc serve` load neither. Every command group's parser builds and its help exits 0.
"""

from __future__ import annotations

import argparse
import ast
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from npc.cli import build_parser, main

ROOT = Path(__file__).resolve().parent.parent
SERVER = ROOT / "server" / "npc"
CLI = SERVER / "cli"
GENERATED = SERVER / "v1"  # protoc's output, importing nothing of ours
ABOVE_THE_SERVER = ("npc_clients", "npc_tools")


def _imports(tree: ast.AST) -> Iterator[tuple[ast.stmt, str]]:
    """Every import statement in `tree` (nested ones too) with the module it names."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node, alias.name
        elif isinstance(node, ast.ImportFrom) and node.module is not None and node.level == 0:
            yield node, node.module


def _above(module: str) -> bool:
    return module.split(".")[0] in ABOVE_THE_SERVER


def test_the_server_package_imports_neither_the_sdk_nor_the_tools() -> None:
    checked = 0
    offenders = []
    for path in sorted(SERVER.rglob("*.py")):
        if CLI in path.parents or GENERATED in path.parents:
            continue
        checked += 1
        text = path.read_text(encoding="utf-8")
        if not any(name in text for name in ABOVE_THE_SERVER):
            continue  # cannot import them; parsing every file would cost a second
        tree = ast.parse(text, filename=str(path))
        offenders += [
            f"{path.relative_to(ROOT)}:{node.lineno} imports {module}"
            for node, module in _imports(tree)
            if _above(module)
        ]
    assert checked > 40  # the walk found the package, not an empty directory
    assert offenders == []


def test_the_command_imports_the_sdk_and_the_tools_only_inside_handlers() -> None:
    lazy: list[str] = []
    eager: list[str] = []
    for path in sorted(CLI.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        module_level = {id(node) for node in tree.body}
        for node, module in _imports(tree):
            if _above(module):
                where = f"{path.relative_to(CLI)}:{node.lineno} {module}"
                (eager if id(node) in module_level else lazy).append(where)
    assert eager == []
    # demo and bench do run the tools: the walk above sees their imports.
    assert any("npc_tools.demo" in where for where in lazy)
    assert any("npc_tools.bench" in where for where in lazy)


def _groups(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """The sub-parsers of `parser`, by name."""
    found: dict[str, argparse.ArgumentParser] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            found.update(action.choices)
    return found


def _commands() -> list[list[str]]:
    """`npc`, each command group and each of their subcommands, as argument lists."""
    commands: list[list[str]] = [[]]
    for name, group in _groups(build_parser()).items():
        commands.append([name])
        commands += [[name, sub] for sub in _groups(group)]
    return commands


def test_every_command_has_a_parser() -> None:
    commands = _commands()
    assert {tuple(c) for c in commands if len(c) == 1} == {
        ("serve",),
        ("demo",),
        ("admin",),
        ("bench",),
        ("ops",),
    }
    assert ["admin", "verify-log"] in commands
    assert ["ops", "up"] in commands
    assert ["bench", "all"] in commands


@pytest.mark.parametrize("command", _commands(), ids=lambda c: " ".join(["npc", *c]))
def test_help_exits_zero(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit:
        main([*command, "--help"])
    assert exit.value.code == 0
    shown = capsys.readouterr().out
    assert shown.startswith(f"usage: {' '.join(['npc', *command])}")


def test_version_is_the_project_version(capsys: pytest.CaptureFixture[str]) -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    with pytest.raises(SystemExit) as exit:
        main(["--version"])
    assert exit.value.code == 0
    assert capsys.readouterr().out == f"npc {project['version']}\n"
