"""Where an operator's system keeps the last event position it has processed.

An event stream is resumed from a position: after a restart, the subscription starts right after
the last event the operator's system *processed* (not merely received), so nothing is missed and,
as long as processing and saving the position are done together, nothing is handled twice. A
store is anything with `load` and `save`; two come with the SDK: a small file, written atomically,
and a row in a SQLite database (handy when the operator's system already keeps its state there,
so the position can be saved in the same transaction as the work it records).
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
from pathlib import Path
from typing import Protocol


class PositionStore(Protocol):
    """The last processed position of one subscription."""

    def load(self) -> int:
        """The last position saved; 0 when none was (the stream then starts from the beginning)."""
        ...

    def save(self, position: int) -> None:
        """Record that every event up to `position` was processed. Durable when it returns."""
        ...


class FilePositionStore:
    """The position as a decimal number in one file, replaced atomically on each save."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def load(self) -> int:
        """The saved position, or 0 when the file does not exist yet."""
        try:
            text = self.path.read_text().strip()
        except FileNotFoundError:
            return 0
        return int(text) if text else 0

    def save(self, position: int) -> None:
        """Write to a temporary file, fsync it, rename it over the old one, fsync the directory:
        a crash leaves either the old position or the new one, never a torn file."""
        if position < 0:
            raise ValueError("a position is never negative")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(f"{position}\n")
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        directory = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)


class SqlitePositionStore:
    """The position as a row of table `npc_positions` (one row per subscription `name`)."""

    def __init__(self, path: str | Path, name: str = "events") -> None:
        self.name = name
        self.db = sqlite3.connect(str(path), isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS npc_positions"
            " (name TEXT PRIMARY KEY, position INTEGER NOT NULL)"
        )

    def load(self) -> int:
        """The saved position, or 0."""
        row = self.db.execute(
            "SELECT position FROM npc_positions WHERE name = ?", (self.name,)
        ).fetchone()
        return int(row[0]) if row else 0

    def save(self, position: int) -> None:
        """Upsert the row (committed when this returns)."""
        if position < 0:
            raise ValueError("a position is never negative")
        self.db.execute(
            "INSERT INTO npc_positions (name, position) VALUES (?, ?)"
            " ON CONFLICT (name) DO UPDATE SET position = excluded.position",
            (self.name, position),
        )

    def close(self) -> None:
        """Close the database."""
        self.db.close()
