"""Tools above the clearinghouse and its SDK: `npc demo` and `npc bench`.

They run a clearinghouse (`npc`) and drive it with the operator SDK (`npc_clients`), so they sit
above both; the server package never imports them (the `npc` command loads them only when one of
their commands runs).
"""
