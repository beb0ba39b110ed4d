"""`python -m npc` is the `npc` command."""

from npc.cli import main

raise SystemExit(main())
