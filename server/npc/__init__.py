"""npc: a national number portability clearinghouse."""

__version__ = "0.1.0"
