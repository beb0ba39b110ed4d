"""Operator-side SDK of the npc clearinghouse: a typed client and simulated operators."""

from npc_clients.client import OperatorClient

__all__ = ["OperatorClient"]
