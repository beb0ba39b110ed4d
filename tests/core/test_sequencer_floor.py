"""The sequencer's floor as a pure rule: an id is settled only once a snapshot proves every
transaction that could have drawn it has ended, and only up to what the read returned."""

from __future__ import annotations

from npc.core.sequencer import Floor


def seen(xmin: int, xid: int, last_id: int) -> dict[str, int]:
    """What a read reports: its snapshot's xmin, its own transaction id, the last id drawn."""
    return {"xmin": xmin, "xid": xid, "last_id": last_id}


def test_an_id_is_settled_once_a_later_snapshot_passes_the_transaction_of_the_read_after_it():
    floor = Floor()
    # Read 1: ids up to 100 drawn; transaction 10 still runs.
    assert floor.observe(floor.begin(), seen(10, 12, 100), [], limit=5) is None
    # Read 2 (transaction 15) began after read 1: whoever drew id 100 has a lower id. Transaction
    # 11 still runs (xmin 11), so id 100 is not settled yet.
    assert floor.observe(floor.begin(), seen(11, 15, 120), [], limit=5) is None
    # Read 3: every transaction below 15 has ended; whoever drew 120 is below 17.
    assert floor.observe(floor.begin(), seen(15, 17, 130), [], limit=5) == 100
    assert floor.settled == 0  # not before the read's events are positioned
    floor.rise(100)
    assert floor.settled == 100
    # Read 4: transaction 16 still runs; read 5: those below 17 have ended too.
    assert floor.observe(floor.begin(), seen(16, 18, 140), [], limit=5) is None
    assert floor.observe(floor.begin(), seen(17, 19, 150), [], limit=5) == 120


def test_a_read_cut_by_its_limit_settles_only_up_to_the_last_event_it_returned():
    floor = Floor()
    floor.observe(floor.begin(), seen(10, 10, 100), [], limit=3)
    assert floor.observe(floor.begin(), seen(10, 10, 100), [91, 95, 97], limit=3) == 97
    assert floor.observe(floor.begin(), seen(10, 10, 100), [98], limit=3) == 100


def test_a_read_that_began_before_another_completed_does_not_vouch_for_its_ids():
    floor = Floor()
    first, second = floor.begin(), floor.begin()
    floor.observe(first, seen(10, 12, 100), [], limit=5)
    # The second read's snapshot may predate the transaction that drew id 100: no pairing.
    assert floor.observe(second, seen(20, 20, 100), [], limit=5) is None
    # A read begun after the first one completed pairs it, and a later one settles it.
    assert floor.observe(floor.begin(), seen(20, 21, 100), [], limit=5) is None
    assert floor.observe(floor.begin(), seen(21, 21, 100), [], limit=5) == 100


def test_the_floor_never_falls():
    floor = Floor()
    floor.rise(50)
    floor.rise(None)
    floor.rise(40)
    assert floor.settled == 50
    floor.observe(floor.begin(), seen(5, 5, 30), [], limit=5)
    assert floor.observe(floor.begin(), seen(6, 6, 30), [], limit=5) is None  # 30 is below 50


def test_a_transaction_left_open_holds_the_floor_without_the_floor_growing():
    floor = Floor()
    for read in range(1_000):  # transaction 5 stays open through every read
        assert floor.observe(floor.begin(), seen(5, 10 + read, 100 + read), [], limit=5) is None
    assert len(floor._pending) <= Floor.PENDING_KEPT
    # Once it ends, the floor reaches the id the next-to-last read saw drawn (the last read's is
    # paired with this read's own transaction, still running).
    assert floor.observe(floor.begin(), seen(2_000, 2_001, 1_200), [], limit=5) == 1_098
