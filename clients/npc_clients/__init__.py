"""Operator-side SDK of the npc clearinghouse: a typed client, resumable subscriptions and
simulated operators."""

from npc_clients.client import OperatorClient, Subscription
from npc_clients.positions import FilePositionStore, PositionStore, SqlitePositionStore
from npc_clients.session import CommandError, Session, SessionClosed
from npc_clients.sync import SyncOperatorClient

__all__ = [
    "CommandError",
    "FilePositionStore",
    "OperatorClient",
    "PositionStore",
    "Session",
    "SessionClosed",
    "SqlitePositionStore",
    "Subscription",
    "SyncOperatorClient",
]
