"""A flow's case table: the locking, updating and party-checked reading every flow needs.

Every command and deadline on a case takes the case lock first and then the row lock, so the two
never deadlock (see `Txn.lock_case`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from asyncpg import Record

from npc.core.errors import DomainError, NotFound, PermissionDenied
from npc.core.identity import Caller
from npc.store.database import CaseBusy, Database, Txn, case_lock_key, case_lock_sql


def refusal(
    caller: Caller, parties: Iterable[str], kind: str, case_id: str, message: str
) -> DomainError:
    """The error for a caller who may not act on a case: PERMISSION_DENIED (`message`) for one of
    its `parties` in the wrong role and for the regulator, who may know every case; for anyone
    else exactly the NOT_FOUND of a case that does not exist, so that an operator cannot learn
    that another operator's case exists."""
    if caller.is_regulator or caller.operator in parties:
        return PermissionDenied(message)
    return NotFound(kind, case_id)


class CaseTable:
    """One table of cases (`id` primary key) whose parties are operator columns."""

    def __init__(
        self,
        flow: str,
        table: str,
        kind: str,
        parties: Sequence[str],
        *,
        deferred_updates: bool = False,
    ) -> None:
        self.flow = flow
        self.table = table
        self.kind = kind
        self.parties = tuple(parties)
        # Updates of a locked row wait for the commit and travel with the flush (one round trip
        # less per command; see `Txn.defer_update`): only for tables whose commands never read
        # the row back by SQL after changing it, nor change it inside a savepoint they may roll
        # back (the waiting update is the transaction's, not the savepoint's).
        self.deferred_updates = deferred_updates

    async def lock(self, txn: Txn, case_id: str) -> Record | None:
        """The case row, locked for the rest of the transaction (None if there is no such case).

        One statement takes the case lock, then the row lock: the uncorrelated EXISTS is a
        one-time filter evaluated before the row is read, so the order of `Txn.lock_case` holds
        without a round trip of its own. None at all when the statement that began the
        transaction locked and read the row already (`Txn.preload_case_row`). A transaction that
        may not wait for the case lock (`Txn.waits`) tries it, and raises `CaseBusy` when it is
        taken.
        """
        row: Record | None = txn.preloaded.pop((self.table, case_id), None)
        if row is None:
            if txn.waits:
                lock, taken = case_lock_sql("$2"), "EXISTS (SELECT FROM locked)"
            else:
                lock, taken = (
                    f"{case_lock_sql('$2', wait=False)} AS taken",
                    "(SELECT taken FROM locked)",
                )
            row = await txn.conn.fetchrow(
                f"WITH locked AS MATERIALIZED ({lock})"
                f" SELECT * FROM {self.table} WHERE id = $1 AND {taken} FOR UPDATE",
                case_id,
                case_lock_key(self.flow, case_id),
            )
            if row is None and not txn.waits:
                # The lock is taken, or there is no such case: where it may wait, it learns which.
                raise CaseBusy(case_lock_key(self.flow, case_id))
        if row is not None and self.deferred_updates:
            txn.case_rows[(self.table, case_id)] = dict(row.items())
        return row

    async def lock_for(self, txn: Txn, case_id: str, caller: Caller, *roles: str) -> Record:
        """The locked case row, when `caller` acts in one of `roles` on it (see `refusal`)."""
        row = await self.lock(txn, case_id)
        if row is None:
            raise NotFound(self.kind, case_id)
        if not any(row[role] == caller.operator for role in roles):
            raise refusal(
                caller,
                (row[p] for p in self.parties),
                self.kind,
                case_id,
                f"only the {' or '.join(roles)} of {case_id} may do this",
            )
        return row

    async def update(self, txn: Txn, case_id: str, changes: dict[str, Any]) -> Record:
        """Apply `changes` to the case row and return the new row (with the commit, when the
        table defers its updates and this transaction locked the row: `Txn.defer_update`)."""
        if self.deferred_updates:
            deferred = txn.defer_update(self.table, case_id, changes)
            if deferred is not None:
                return deferred
            await txn.write_deferred(self.table, case_id)  # in order, before this one
        columns = list(changes)
        assignments = ", ".join(f"{name} = ${i + 2}" for i, name in enumerate(columns))
        row: Record | None = await txn.conn.fetchrow(
            f"UPDATE {self.table} SET {assignments} WHERE id = $1 RETURNING *",
            case_id,
            *(changes[c] for c in columns),
        )
        assert row is not None
        if (self.table, case_id) in txn.case_rows:
            txn.case_rows[(self.table, case_id)] = dict(row.items())
        return row

    async def read_for(
        self, db: Database, case_id: str, operator: str, *, sees_all: bool
    ) -> Record:
        """The case row, for one of its parties (or for a reader who `sees_all`); anyone else
        gets the NOT_FOUND of a missing case."""
        async with db.pool.acquire() as conn:
            row: Record | None = await conn.fetchrow(
                f"SELECT * FROM {self.table} WHERE id = $1", case_id
            )
        if row is None:
            raise NotFound(self.kind, case_id)
        if not sees_all and operator not in (row[p] for p in self.parties):
            raise NotFound(self.kind, case_id)
        return row
