"""Operator-side SDK of the npc clearinghouse: a typed client, resumable subscriptions and
simulated operators."""

from npc_clients.client import OperatorClient, Subscription
from npc_clients.positions import FilePositionStore, PositionStore, SqlitePositionStore

__all__ = [
    "FilePositionStore",
    "OperatorClient",
    "PositionStore",
    "SqlitePositionStore",
    "Subscription",
]
