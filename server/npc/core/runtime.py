"""The core: time, storage, events, deadlines and fan-out, shared by every flow."""

from __future__ import annotations

import logging
from collections.abc import Iterable

import redis.asyncio as aioredis
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from npc.core.anchor import AnchorPublisher
from npc.core.calendar import BusinessCalendar, calendar_for
from npc.core.clock import Clock
from npc.core.deadlines import DeadlineScheduler
from npc.core.fanout import EventHub
from npc.core.flow import Flow
from npc.core.health import HealthMonitor
from npc.core.holidays import HolidayDecrees
from npc.core.loop_lag import LoopLag
from npc.core.notify import Notifier
from npc.core.ports import NoPortRecords, PortRecords
from npc.core.sampler import Sampler
from npc.core.sequencer import Sequencer
from npc.core.supervision import Supervisor
from npc.store.database import Database, Txn

log = logging.getLogger(__name__)

# Connections of the background loops (`Database.background`), besides NPC_DB_POOL_SIZE: one per
# deadline firing at once and the scheduler's own reads.
BACKGROUND_CONNECTIONS = DeadlineScheduler.CONCURRENCY + 1
# The sequencer's own (`Database.sequencing`): its passes run one at a time.
SEQUENCING_CONNECTIONS = 1
# The hub's reads of the log (`Database.log_reads`): its refresh, and streams reading back.
LOG_READ_CONNECTIONS = 2


class Core:
    """Owns the clock, the database, the deadline scheduler and the event fan-out."""

    def __init__(
        self,
        db: Database,
        redis: aioredis.Redis,
        clock: Clock,
        *,
        redis_prefix: str = "npc",
        anchor_key: Ed25519PrivateKey | None = None,
        anchor_interval: float = 300.0,
    ) -> None:
        self.db = db
        self.redis = redis
        self.redis_prefix = redis_prefix
        self.clock = clock
        self.notifier = Notifier(redis, redis_prefix)
        # What delivers committed work runs on connections of its own (`Database.background`).
        delivery = db.background()
        self.hub = EventHub(db.log_reads())
        self.sequencer = Sequencer(
            db.sequencing(), on_sequenced=self._sequenced, on_batch=self.hub.accept
        )
        # The regulator's decreed holidays reach this process's calendars through the log.
        self.holidays = HolidayDecrees(delivery)
        self.hub.add_hook(self.holidays.on_events)
        self.deadlines = DeadlineScheduler(delivery, clock)
        self.sampler = Sampler(db, redis, clock)
        # Without a key the log is not anchored (a warning says so at start).
        self.anchors = (
            AnchorPublisher(db, clock, anchor_key, interval=anchor_interval)
            if anchor_key is not None
            else None
        )
        # Every background loop of the process runs under this supervisor (see
        # npc.core.supervision); the health monitor reports on them and on the storage.
        self.supervisor = Supervisor()
        self.health = HealthMonitor(db, redis, clock, self.supervisor)
        self.flows: dict[str, Flow] = {}
        # The portability flow replaces it at setup; returns and suspensions ask it about ports.
        self.ports: PortRecords = NoPortRecords()
        db.on_commit(self._committed)
        self.notifier.on("events.appended", lambda _: self.sequencer.wake())
        self.notifier.on("events.head", lambda head: self.hub.wake(int(head)))
        self.notifier.on("deadlines.changed", lambda _: None)

    def calendar(self, jurisdiction: str) -> BusinessCalendar:
        """The business calendar of a jurisdiction."""
        return calendar_for(jurisdiction)

    def add_flows(self, flows: Iterable[Flow]) -> None:
        """Plug flows in."""
        for flow in flows:
            if flow.name in self.flows:
                raise ValueError(f"flow {flow.name!r} registered twice")
            flow.setup(self)
            self.flows[flow.name] = flow

    def _committed(self, txn: Txn) -> None:
        if txn.events:
            self.sequencer.wake()
            self.notifier.publish("events.appended", "1")
        for deadline in txn.deadlines:
            self.deadlines.notice(deadline.due_at)

    def _sequenced(self, head: int) -> None:
        self.hub.wake(head)
        self.notifier.publish("events.head", str(head))

    async def start(self, *, background: bool = True) -> None:
        """Check the flows' deadline kinds, apply migrations, position the hub and start the
        background loops.

        Raises `npc.core.deadlines.DeadlineKindMismatch` when a flow declares a deadline kind
        without a handler, or registers a handler for a kind it does not declare.
        """
        for flow in self.flows.values():
            # Before anything runs: a kind without a handler would fail each time it falls due.
            self.deadlines.check_kinds(flow.name, flow.deadline_kinds or ())
            self.deadlines.declare(flow.name, flow.deadline_kinds or ())
            self.sampler.declare(flow.name, flow.deadline_kinds or ())
        await self.db.migrate()
        await self.hub.start()
        # After the hub took its position: a decree logged past it reaches the hook, one before
        # it is in the table already.
        await self.holidays.load()
        for flow in self.flows.values():
            await flow.start(background=background)
        await self.health.probe()  # the first verdict before anything asks
        # Every gauge has its value before the first scrape, not a slow pass later.
        await self.sampler.sample()
        if background:
            supervisor = self.supervisor
            supervisor.start("notifier", self.notifier.run)
            supervisor.start("sequencer", self.sequencer.run)
            supervisor.start("event-hub", self.hub.run)
            supervisor.start("deadlines", self.deadlines.run)
            supervisor.start("metrics-sampler", self.sampler.run)
            supervisor.start("health", self.health.run)
            supervisor.start("loop-lag", LoopLag().run)
            if self.anchors is not None:
                supervisor.start("anchors", self.anchors.run)

    async def settle(self) -> None:
        """Fire what is due, sequence every committed event and bring the hub to the head.

        Tests call this after moving a fake clock; production never needs it.
        """
        await self.deadlines.fire_due()
        await self.sequencer.catch_up()
        await self.hub.refresh()

    async def stop(self) -> None:
        """Stop the flows' and the core's background loops."""
        for flow in self.flows.values():
            await flow.stop()
        await self.supervisor.stop()
        await self.health.close()
