"""Generic fuzzing of the gRPC API: every RPC found in the generated descriptors, requests built
from their message descriptors, and the properties the clearinghouse must keep whatever it is sent.

Nothing here names a flow: a new `.proto` service or RPC is fuzzed as soon as it is generated.
Field values are chosen by type (and, for strings, by a hint from the field's name) among the
awkward ones — empty, very long, odd Unicode, wrong-length digits, out-of-range numbers,
instants and dates, unknown enum values, oversized lists — and the plausible ones taken from the live
database, so that requests also reach existing cases in the wrong state.
"""

from __future__ import annotations

import asyncio
import importlib
import pkgutil
import random
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, cast

import grpc
from google.protobuf import message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from google.rpc import error_details_pb2, status_pb2
from google.type.date_pb2 import Date
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import strategies as st

import npc.v1
from npc.core.verify import verify_log
from npc.store.database import Database

# What the suite's summary reports (see conftest.py).
COUNTS: Counter[str] = Counter()
# Answers by status, and by RPC and status: shows which paths the fuzzing reached.
CODES: Counter[str] = Counter()
PATHS: Counter[tuple[str, str]] = Counter()
VIOLATED: Counter[tuple[str, str]] = Counter()
FAILURES: list[str] = []

# Statuses that mean the server failed rather than the request: never acceptable.
FORBIDDEN = {
    grpc.StatusCode.INTERNAL,
    grpc.StatusCode.UNKNOWN,
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.DATA_LOSS,
}

# Callers: the Peruvian demo operators and regulator, the Colombian providers and the SIC, a
# token nobody holds, and no token at all.
TOKENS: list[str | None] = [
    "dev-token-claro",
    "dev-token-movistar",
    "dev-token-entel",
    "dev-token-bitel",
    "dev-token-osiptel",
    "dev-token-claro-co",
    "dev-token-movistar-co",
    "dev-token-tigo",
    "dev-token-sic",
    "dev-token-nobody",
    None,
]

# One more than the largest list an RPC accepts (10,000 numbers per request or lookup).
OVER_MAX_ITEMS = 10_001
# Lengths around the limits of the validators, and far beyond them (100 KB).
LONG_LENGTHS = [64, 65, 200, 201, 300, 301, 918, 919, 4000, 4001, 100_000, 100_001]
ODD_PIECES = [
    "\x00",
    "\u202e",  # right-to-left override
    "\u200f",  # right-to-left mark
    "\u200b",  # zero-width space
    "\ufeff",
    "\uffff",
    "😀",
    "👩🏽‍💻",
    "e\u0301\u0301\u0301",  # stacked combining accents
    "٩٤٠١٢٣٤٥٦",  # Arabic-Indic digits (str.isdigit() is True)
    "９４０００００００",  # full-width digits
    "𝟗𝟒𝟎𝟎𝟎𝟎𝟎𝟎𝟏",  # mathematical digits
    "\n\t\r",
    "'; DROP TABLE events; --",
    "%s%n{0}",
    " ",
]
INT32 = [0, 1, -1, 2**31 - 1, -(2**31)]
INT64 = [*INT32, 2**63 - 1, -(2**63), 10**12]
UINT32 = [0, 1, 2**32 - 1, 2**31]
UINT64 = [0, 1, 2**64 - 1, 2**63]
# Timestamp seconds: the epoch, the proto limits and one beyond, the extremes of int64.
SECONDS = [0, -62135596800, 253402300799, -62135596801, 253402300800, 2**63 - 1, -(2**63)]
NANOS = [0, 999_999_999, 1_000_000_000, -1, 2**31 - 1, -(2**31)]
# google.type.Date: no day of the calendar (month 13, February 30, a partial or empty date, the
# edges of int32), and the first and last days a date holds.
ODD_DATES = [
    Date(year=2026, month=13, day=1),
    Date(year=2026, month=2, day=30),
    Date(year=2026, month=11),
    Date(month=11, day=23),
    Date(),
    Date(year=-1, month=1, day=1),
    Date(year=2**31 - 1, month=2**31 - 1, day=-(2**31)),
    Date(year=1, month=1, day=1),
    Date(year=9999, month=12, day=31),
]
DATE = "google.type.Date"


@dataclass(frozen=True)
class Rpc:
    """One method of one service, as the descriptors describe it."""

    service: str
    name: str
    request: Descriptor
    response: Descriptor
    client_streaming: bool
    server_streaming: bool

    @property
    def path(self) -> str:
        """The HTTP/2 path of the method."""
        return f"/{self.service}/{self.name}"

    @property
    def mutating(self) -> bool:
        """True when the request carries a request id (an idempotent command)."""
        return "request_id" in self.request.fields_by_name


def discover() -> list[Rpc]:
    """Every RPC of every service declared in the generated `npc.v1.*_pb2` modules."""
    found: list[Rpc] = []
    for info in sorted(pkgutil.iter_modules(npc.v1.__path__), key=lambda i: i.name):
        if not info.name.endswith("_pb2"):
            continue
        module = importlib.import_module(f"npc.v1.{info.name}")
        for service in module.DESCRIPTOR.services_by_name.values():
            for method in service.methods:
                found.append(
                    Rpc(
                        service.full_name,
                        method.name,
                        method.input_type,
                        method.output_type,
                        method.client_streaming,
                        method.server_streaming,
                    )
                )
    return found


def message_class(descriptor: Descriptor) -> type[Message]:
    """The generated class of a message descriptor."""
    return message_factory.GetMessageClass(descriptor)


# ---------------------------------------------------------------------------
# Plausible values from the live database
# ---------------------------------------------------------------------------


@dataclass
class Pools:
    """Values taken from the live database, refreshed as the fuzzing creates cases."""

    operators: list[str] = field(default_factory=lambda: ["claro", "movistar"])
    numbers: list[str] = field(default_factory=lambda: ["940000001"])
    ids: list[str] = field(default_factory=lambda: ["SP-1"])
    request_ids: list[str] = field(default_factory=lambda: ["req-1"])
    ranges: list[tuple[int, int]] = field(default_factory=lambda: [(940000000, 949999999)])
    columns: dict[str, list[str]] = field(default_factory=dict)  # "table.column" -> values
    now: datetime | None = None

    async def refresh(self, db: Database, now: datetime) -> None:
        """Reload operators, numbers, and every text id/code/number column of every table."""
        self.now = now
        async with db.pool.acquire() as conn:
            self.operators = [r["id"] for r in await conn.fetch("SELECT id FROM operators")]
            numbers: set[str] = set()
            ranges = await conn.fetch(
                "SELECT lower(numbers) AS lo, upper(numbers) - 1 AS hi FROM number_ranges"
            )
            self.ranges = [(int(r["lo"]), int(r["hi"])) for r in ranges] or self.ranges
            for r in ranges:
                numbers.update({str(r["lo"]), str(r["lo"] + 1), str(r["hi"]), str(r["hi"] + 1)})
            ids: set[str] = set()
            self.columns = {}
            columns = await conn.fetch(
                """SELECT table_name, column_name FROM information_schema.columns
                   WHERE table_schema = 'public' AND data_type = 'text'
                     AND (column_name IN ('id', 'number', 'code', 'cun')
                          OR column_name LIKE '%\\_id' OR column_name LIKE '%\\_code')"""
            )
            for column in columns:
                rows = await conn.fetch(
                    f'SELECT DISTINCT "{column["column_name"]}" AS v FROM "{column["table_name"]}"'
                    f' WHERE "{column["column_name"]}" IS NOT NULL LIMIT 40'
                )
                found = [str(r["v"]) for r in rows]
                if found:
                    self.columns[f"{column['table_name']}.{column['column_name']}"] = found
                target = numbers if column["column_name"] == "number" else ids
                target.update(found)
            self.request_ids = [
                r["request_id"]
                for r in await conn.fetch(
                    "SELECT request_id FROM command_results ORDER BY created_at DESC LIMIT 40"
                )
            ] or ["req-1"]
        self.numbers = sorted(numbers) or ["940000001"]
        self.ids = sorted(ids - set(self.operators)) or ["SP-1"]

    def for_field(self, name: str) -> list[str]:
        """Values of the columns this field names: a column of the same name, or the ids of the
        tables named after it (`suspension_id`: the ids of `suspensions`). All ids otherwise."""
        stem = name.removesuffix("_id").removesuffix("_code")
        found = [
            value
            for key, values in self.columns.items()
            for value in values
            if key.split(".")[1] == name
            or (key.split(".")[1] in {"id", "code"} and stem in key.split(".")[0])
        ]
        return found or self.ids


# ---------------------------------------------------------------------------
# Strategies
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Mood:
    """How awkward one example is: `awkward` is the percentage of values chosen among the awkward
    ones (0: a request that may well be valid; 100: nothing plausible). `small` keeps values short
    (items of an oversized list)."""

    pools: Pools
    awkward: int = 50
    small: bool = False

    def smaller(self) -> Mood:
        """The same mood, with short values only."""
        return Mood(self.pools, self.awkward, True)


moods_awkwardness = st.sampled_from([0, 0, 5, 15, 40, 100])


def pick(pool: list[Any]) -> st.SearchStrategy[Any]:
    """One value of a pool that changes between examples. The choice is an index of fixed bounds,
    so that replaying an example (when shrinking) draws the same way whatever the pool holds."""
    return st.integers(0, 1023).map(lambda k: pool[k % len(pool)])


odd_text = st.text(st.characters(blacklist_categories=["Cs"]), max_size=24)
wrong_digits = st.text("0123456789", max_size=20)
prose = st.sampled_from(
    [
        "Me cobraron dos veces el plan de noviembre.",
        "Rosa Quispe Mamani",
        "Av. Arequipa 1234, Lima",
        "Sin servicio desde ayer",
        "ok",
    ]
)


def _fresh_number(pools: Pools) -> st.SearchStrategy[str]:
    """A number inside a range of the plan, near its start (most of them were never used)."""
    return st.tuples(pick(pools.ranges), st.integers(0, 5000)).map(
        lambda rk: str(min(rk[0][0] + rk[1], rk[0][1]))
    )


def _plausible(name: str, pools: Pools) -> st.SearchStrategy[str]:
    """A value that fits what a field of this name usually holds."""
    now = pools.now or datetime(2026, 11, 23)
    if name == "request_id":
        return st.integers(0, 4).flatmap(
            lambda k: (
                pick(pools.request_ids)
                if k == 0
                else st.from_regex(r"fz-[a-z0-9]{6,12}", fullmatch=True)
            )
        )
    if "operator" in name or name in {"donor", "recipient", "provider", "holder", "sender"}:
        return pick([*pools.operators, "nobody"])
    if "email" in name:
        return st.sampled_from(["rosa@example.pe", "luz@example.co", "a@b", "@"])
    if name.endswith("date") or name in {"month", "from_date", "to_date"}:
        base = now.date()
        return st.one_of(
            st.integers(-60, 60).map(lambda d: (base + timedelta(days=d)).isoformat()),
            st.integers(-12, 2).map(
                lambda m: (
                    f"{now.year + (now.month + m - 1) // 12:04d}-{(now.month + m - 1) % 12 + 1:02d}"
                )
            ),
            st.sampled_from(["2026-02-30", "2026-13-01", "0000-00-00", "23/11/2026"]),
        )
    if "document" in name:
        return st.sampled_from(["44556677", "20100047218", "52123456", "4455667", "A1234567"])
    if (
        "number" in name
        or name in {"first", "last", "msisdn", "phone", "numbers"}
        or name.endswith("_phone")
    ):
        return st.one_of(pick(pools.numbers), _fresh_number(pools), _fresh_number(pools))
    if name.endswith("_id") or name.endswith("code") or name in {"id", "cun", "ids", "codes"}:
        return st.one_of(pick(pools.for_field(name)), pick(pools.for_field(name)), pick(pools.ids))
    if name in {"token", "page_token"}:
        return st.sampled_from(["", "0", "abc", "-1"])
    return st.one_of(prose, pick(pools.ids), pick(pools.operators))


@st.composite
def strings(draw: st.DrawFn, name: str, mood: Mood) -> str:
    """A string for a field named `name`: plausible, or awkward as often as the mood says."""
    if draw(st.integers(0, 99)) >= mood.awkward:
        return draw(_plausible(name, mood.pools))
    kind = draw(st.integers(0, 5))
    if kind == 0:
        return ""
    if kind == 1:
        return draw(odd_text)
    if kind == 2:
        return draw(wrong_digits)
    if kind == 3:
        # A plausible value made awkward: padded, upper-cased, with NUL or RTL marks inside.
        value = draw(_plausible(name, mood.pools))
        piece = draw(st.sampled_from(ODD_PIECES))
        return draw(
            st.sampled_from([f" {value} ", value.upper(), value + piece, piece + value, value * 2])
        )
    if kind == 4 or mood.small:
        return draw(st.sampled_from(ODD_PIECES)) * draw(st.integers(1, 3))
    length = draw(st.sampled_from(LONG_LENGTHS))
    unit = draw(st.sampled_from(["9", "a", "é", "😀", "\u202e", "x "]))
    return (unit * length)[:length]


@st.composite
def timestamps(draw: st.DrawFn, mood: Mood) -> Timestamp:
    """Mostly instants around now; else the epoch, the proto limits and beyond, bad nanos."""
    now = mood.pools.now or datetime(2026, 11, 23)
    if draw(st.integers(0, 99)) >= mood.awkward:
        offset = draw(
            st.one_of(st.integers(-3 * 86400, 30 * 86400), st.integers(-400 * 86400, 400 * 86400))
        )
        stamp = Timestamp()
        stamp.FromDatetime(now + timedelta(seconds=offset))
        return stamp
    return Timestamp(seconds=draw(st.sampled_from(SECONDS)), nanos=draw(st.sampled_from(NANOS)))


def _date(day: date) -> Date:
    return Date(year=day.year, month=day.month, day=day.day)


@st.composite
def calendar_dates(draw: st.DrawFn, mood: Mood) -> Date:
    """Mostly days around today (due dates, report dates); else ones no calendar has."""
    today = (mood.pools.now or datetime(2026, 11, 23)).date()
    if draw(st.integers(0, 99)) >= mood.awkward:
        return _date(today + timedelta(days=draw(st.integers(-400, 60))))
    return draw(st.sampled_from(ODD_DATES))


def _integers(kind: int, mood: Mood) -> st.SearchStrategy[int]:
    if kind in (FieldDescriptor.TYPE_UINT32, FieldDescriptor.TYPE_FIXED32):
        extremes = UINT32
    elif kind in (FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_FIXED64):
        extremes = UINT64
    elif kind in (
        FieldDescriptor.TYPE_INT32,
        FieldDescriptor.TYPE_SINT32,
        FieldDescriptor.TYPE_SFIXED32,
    ):
        extremes = INT32
    else:
        extremes = INT64
    if mood.awkward == 0:
        return st.integers(0, 100)
    return st.one_of(st.sampled_from(extremes), st.integers(0, 100), st.integers(-10, 10**6))


@st.composite
def enums(draw: st.DrawFn, fd: FieldDescriptor, mood: Mood) -> int:
    """A known value (never the unspecified one when plausible), else any, else an unknown."""
    assert fd.enum_type is not None
    known = [v.number for v in fd.enum_type.values]
    if draw(st.integers(0, 99)) >= mood.awkward:
        return int(draw(st.sampled_from([n for n in known if n != 0] or known)))
    return int(draw(st.sampled_from([*known, -1, 99, 2**31 - 1, -(2**31)])))


def values(fd: FieldDescriptor, mood: Mood, depth: int) -> st.SearchStrategy[Any]:
    """A strategy for one (non-repeated) value of the field `fd`."""
    kind = fd.type
    if kind == FieldDescriptor.TYPE_STRING:
        return strings(fd.name, mood)
    if kind == FieldDescriptor.TYPE_BYTES:
        return st.binary(max_size=32)
    if kind == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if kind in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        return st.floats(width=64 if kind == FieldDescriptor.TYPE_DOUBLE else 32)
    if kind == FieldDescriptor.TYPE_ENUM:
        return enums(fd, mood)
    if kind == FieldDescriptor.TYPE_MESSAGE:
        assert fd.message_type is not None
        return messages(fd.message_type, mood, depth + 1)
    return _integers(kind, mood)


@st.composite
def messages(draw: st.DrawFn, descriptor: Descriptor, mood: Mood, depth: int = 0) -> Message:
    """A message of `descriptor`: each field absent or set, lists of 0..3 items or one too many."""
    if descriptor.full_name == "google.protobuf.Timestamp":
        return draw(timestamps(mood))
    if descriptor.full_name == DATE:
        return draw(calendar_dates(mood))
    message = message_class(descriptor)()
    if depth > 4 or descriptor.full_name.startswith("google.protobuf."):
        return message
    absent = 3 if mood.awkward == 0 else 20  # percent of fields left unset
    for fd in descriptor.fields:
        if draw(st.integers(0, 99)) < absent:
            continue
        if fd.is_repeated:
            if fd.message_type is not None and fd.message_type.GetOptions().map_entry:
                continue
            sizes = [1, 1, 2, 3] if mood.awkward == 0 else [0, 1, 1, 2, 3, OVER_MAX_ITEMS]
            count = draw(st.sampled_from(sizes))
            if count == OVER_MAX_ITEMS:
                if mood.small or depth > 1:
                    continue
                item = draw(values(fd, mood.smaller(), depth))
                items: list[Any] = [item] * count
                if fd.type == FieldDescriptor.TYPE_STRING and draw(st.booleans()):
                    # Distinct consecutive numbers from a range: what a large valid list holds.
                    start = draw(pick(mood.pools.numbers))
                    base = int(start) if start.isascii() and start.isdigit() else 940000000
                    items = [str(base + k) for k in range(count)]
            else:
                items = [draw(values(fd, mood, depth)) for _ in range(count)]
            getattr(message, fd.name).extend(items)
        elif fd.type == FieldDescriptor.TYPE_MESSAGE:
            getattr(message, fd.name).CopyFrom(draw(values(fd, mood, depth)))
        else:
            setattr(message, fd.name, draw(values(fd, mood, depth)))
    return message


# Mutants of accepted requests. Which request and which fields depend on what the server accepted
# so far, so they are chosen with a `random.Random` seeded by Hypothesis: its own choices must not
# depend on state outside the example.


def random_plausible(name: str, pools: Pools, rng: random.Random) -> str:
    """A plausible value for a field named `name` (the random twin of `_plausible`)."""
    if name == "request_id":
        return f"fz-{rng.getrandbits(48):x}"
    if "operator" in name or name in {"donor", "recipient", "provider", "holder", "sender"}:
        return rng.choice([*pools.operators, "nobody"])
    if "number" in name or name in {"first", "last", "msisdn", "phone"} or name.endswith("phone"):
        low, high = rng.choice(pools.ranges)
        return rng.choice([rng.choice(pools.numbers), str(min(low + rng.randrange(5000), high))])
    if name.endswith("_id") or name.endswith("code") or name in {"id", "cun"}:
        return rng.choice(pools.for_field(name))
    if name.endswith("date"):
        now = pools.now or datetime(2026, 11, 23)
        return (now.date() + timedelta(days=rng.randint(-60, 60))).isoformat()
    return rng.choice([*pools.ids, "Sin servicio desde ayer", "Rosa Quispe Mamani"])


def random_value(fd: FieldDescriptor, mood: Mood, rng: random.Random, depth: int = 1) -> Any:
    """One value for the field `fd`, awkward as often as the mood says."""
    odd = rng.randrange(100) < mood.awkward
    kind = fd.type
    if kind == FieldDescriptor.TYPE_STRING:
        if not odd:
            return random_plausible(fd.name, mood.pools, rng)
        return rng.choice(
            [
                "",
                rng.choice(ODD_PIECES) * rng.randint(1, 3),
                "".join(rng.choice("0123456789") for _ in range(rng.randint(0, 20))),
                f" {random_plausible(fd.name, mood.pools, rng)}{rng.choice(ODD_PIECES)}",
                rng.choice(["9", "é", "😀"]) * rng.choice(LONG_LENGTHS),
            ]
        )
    if kind == FieldDescriptor.TYPE_BOOL:
        return rng.random() < 0.5
    if kind == FieldDescriptor.TYPE_BYTES:
        return rng.randbytes(rng.randint(0, 16))
    if kind in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        return rng.choice([0.0, -1.5, 1e300 if kind == FieldDescriptor.TYPE_DOUBLE else 1e30])
    if kind == FieldDescriptor.TYPE_ENUM:
        assert fd.enum_type is not None
        known = [v.number for v in fd.enum_type.values]
        return rng.choice([*known, -1, 99, 2**31 - 1] if odd else [n for n in known if n] or known)
    if kind == FieldDescriptor.TYPE_MESSAGE:
        assert fd.message_type is not None
        if fd.message_type.full_name == "google.protobuf.Timestamp":
            if odd:
                return Timestamp(seconds=rng.choice(SECONDS), nanos=rng.choice(NANOS))
            stamp = Timestamp()
            now = mood.pools.now or datetime(2026, 11, 23)
            stamp.FromDatetime(now + timedelta(seconds=rng.randint(-3 * 86400, 30 * 86400)))
            return stamp
        if fd.message_type.full_name == DATE:
            if odd:
                return rng.choice(ODD_DATES)
            today = (mood.pools.now or datetime(2026, 11, 23)).date()
            return _date(today + timedelta(days=rng.randint(-400, 60)))
        message = message_class(fd.message_type)()
        if depth < 4 and not fd.message_type.full_name.startswith("google.protobuf."):
            for sub in fd.message_type.fields:
                if sub.is_repeated or rng.random() < 0.2:
                    continue
                value = random_value(sub, mood, rng, depth + 1)
                if sub.type == FieldDescriptor.TYPE_MESSAGE:
                    getattr(message, sub.name).CopyFrom(value)
                else:
                    setattr(message, sub.name, value)
        return message
    if kind in (FieldDescriptor.TYPE_UINT32, FieldDescriptor.TYPE_FIXED32):
        extremes = UINT32
    elif kind in (FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_FIXED64):
        extremes = UINT64
    elif kind in (FieldDescriptor.TYPE_INT32, FieldDescriptor.TYPE_SINT32):
        extremes = INT32
    else:
        extremes = INT64
    return rng.choice(extremes) if odd else rng.randint(0, 100)


def mutant(base: Message, mood: Mood, rng: random.Random) -> Message:
    """`base` (a request the server accepted) under a fresh request id, with up to three fields,
    at any depth, replaced: plausible values point it at other cases, in other states; awkward
    ones probe the validation of an otherwise valid request."""
    message = type(base)()
    message.CopyFrom(base)
    if "request_id" in message.DESCRIPTOR.fields_by_name:
        message.request_id = random_plausible("request_id", mood.pools, rng)  # type: ignore[attr-defined]
    for _ in range(rng.randint(0, 3)):
        target = message
        if not target.DESCRIPTOR.fields:
            break
        fd = cast(FieldDescriptor, rng.choice(target.DESCRIPTOR.fields))
        # Descend into set sub-messages now and then, to reach nested fields.
        while (
            fd.type == FieldDescriptor.TYPE_MESSAGE
            and not fd.is_repeated
            and fd.message_type is not None
            and fd.message_type.full_name != "google.protobuf.Timestamp"
            and fd.message_type.fields
            and target.HasField(fd.name)
            and rng.random() < 0.5
        ):
            target = getattr(target, fd.name)
            fd = rng.choice(target.DESCRIPTOR.fields)
        if fd.is_repeated:
            if fd.message_type is not None and fd.message_type.GetOptions().map_entry:
                continue
            items = [random_value(fd, mood, rng) for _ in range(rng.choice([0, 1, 2]))]
            target.ClearField(fd.name)
            getattr(target, fd.name).extend(items)
        elif fd.type == FieldDescriptor.TYPE_MESSAGE:
            if rng.random() < 0.25:
                target.ClearField(fd.name)
            else:
                getattr(target, fd.name).CopyFrom(random_value(fd, mood, rng))
        else:
            setattr(target, fd.name, random_value(fd, mood, rng))
    return message


# The single-field sweep: each field of an accepted request takes each of these values in turn.
SWEEP_STRINGS = [
    "",
    "\x00",
    "9" * 100_001,
    "٩٤٠٠٠٠٠٠١",
    "９４０００００００",
    " 940000001",
    "e\u0301",
    "😀",
    "-1",
    "99999999999999999999",
    "2026-02-29",
    "9999-12-31",
    "0001-01-01",
    "NaN",
]
SWEEP_SECONDS = [253402300799, -62135596800, 0, 253402300799 - 400 * 86400]


def sweep_values(fd: FieldDescriptor) -> list[Any]:
    """The awkward values the sweep gives the field `fd`."""
    kind = fd.type
    if kind == FieldDescriptor.TYPE_STRING:
        return SWEEP_STRINGS
    if kind == FieldDescriptor.TYPE_ENUM:
        return [99, -1]
    if kind == FieldDescriptor.TYPE_MESSAGE:
        assert fd.message_type is not None
        if fd.message_type.full_name == "google.protobuf.Timestamp":
            return [Timestamp(seconds=s) for s in SWEEP_SECONDS]
        if fd.message_type.full_name == DATE:
            return ODD_DATES
        return []
    if kind in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        return [float("nan"), float("inf"), -1.0]
    if kind == FieldDescriptor.TYPE_BOOL or kind == FieldDescriptor.TYPE_BYTES:
        return []
    if kind in (FieldDescriptor.TYPE_UINT32, FieldDescriptor.TYPE_FIXED32):
        return [2**32 - 1]
    if kind in (FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_FIXED64):
        return [2**64 - 1]
    if kind in (FieldDescriptor.TYPE_INT32, FieldDescriptor.TYPE_SINT32):
        return [-1, 2**31 - 1]
    return [-1, 2**63 - 1]


def field_paths(
    descriptor: Descriptor, prefix: tuple[FieldDescriptor, ...] = ()
) -> Iterator[tuple[FieldDescriptor, ...]]:
    """Paths to the singular fields of a message, two levels of sub-messages deep."""
    for fd in descriptor.fields:
        if fd.is_repeated:
            continue
        yield (*prefix, fd)
        if (
            fd.type == FieldDescriptor.TYPE_MESSAGE
            and fd.message_type is not None
            and fd.message_type.full_name not in ("google.protobuf.Timestamp", DATE)
            and len(prefix) < 2
        ):
            yield from field_paths(fd.message_type, (*prefix, fd))


def with_value(base: Message, path: tuple[FieldDescriptor, ...], value: Any) -> Message:
    """A copy of `base` with the field at `path` set to `value`."""
    message = type(base)()
    message.CopyFrom(base)
    target = message
    for fd in path[:-1]:
        target = getattr(target, fd.name)
    last = path[-1]
    if last.type == FieldDescriptor.TYPE_MESSAGE:
        getattr(target, last.name).CopyFrom(value)
    else:
        setattr(target, last.name, value)
    return message


def metadata(token: str | None) -> tuple[tuple[str, str], ...]:
    """The call metadata presenting `token` (none at all when None)."""
    return () if token is None else (("authorization", f"Bearer {token}"),)


# ---------------------------------------------------------------------------
# Calling any RPC
# ---------------------------------------------------------------------------


@dataclass
class Outcome:
    """How one call ended."""

    code: grpc.StatusCode
    response: Message | None = None
    details: status_pb2.Status | None = None
    received: int = 0
    # grpc aio's client reports INTERNAL "Internal error from Core" in place of the server's
    # status when the server ends a client-streaming call before the client is done writing
    # (grpc/grpc#36066): the server's answer is lost on the client's side, not wrong.
    client_write_race: bool = False


def _status(error: grpc.aio.AioRpcError) -> status_pb2.Status | None:
    for key, value in error.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            status = status_pb2.Status()
            status.ParseFromString(value)
            return status
    return None


def field_violations(status: status_pb2.Status | None) -> list[str]:
    """The fields named by the BadRequest detail of a status."""
    found: list[str] = []
    for detail in status.details if status is not None else ():
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            found.extend(v.field for v in bad.field_violations)
    return found


async def invoke(
    channel: grpc.aio.Channel,
    rpc: Rpc,
    requests: list[Message],
    token: str | None,
    *,
    timeout: float = 30.0,
    stream_wait: float = 0.2,
) -> Outcome:
    """Call `rpc` with `requests` (one unless the client streams). A server stream is read for a
    few messages or `stream_wait` seconds, then cancelled."""
    outcome = await _invoke(channel, rpc, requests, token, timeout, stream_wait)
    CODES[outcome.code.name] += 1
    PATHS[(rpc.path, outcome.code.name)] += 1
    for name in field_violations(outcome.details):
        VIOLATED[(rpc.name, name)] += 1
    return outcome


async def _invoke(
    channel: grpc.aio.Channel,
    rpc: Rpc,
    requests: list[Message],
    token: str | None,
    timeout: float,
    stream_wait: float,
) -> Outcome:
    serialize = message_class(rpc.request).SerializeToString
    deserialize = message_class(rpc.response).FromString
    md = metadata(token)
    COUNTS["rpc calls"] += 1

    async def chunks() -> AsyncIterator[Message]:
        for request in requests:
            yield request

    try:
        if not rpc.server_streaming:
            if rpc.client_streaming:
                call = channel.stream_unary(
                    rpc.path, request_serializer=serialize, response_deserializer=deserialize
                )
                response = await call(chunks(), metadata=md, timeout=timeout)
            else:
                call = channel.unary_unary(
                    rpc.path, request_serializer=serialize, response_deserializer=deserialize
                )
                response = await call(requests[0], metadata=md, timeout=timeout)
            return Outcome(grpc.StatusCode.OK, response)
        if rpc.client_streaming:
            stream = channel.stream_stream(
                rpc.path, request_serializer=serialize, response_deserializer=deserialize
            )(chunks(), metadata=md, timeout=timeout)
        else:
            stream = channel.unary_stream(
                rpc.path, request_serializer=serialize, response_deserializer=deserialize
            )(requests[0], metadata=md, timeout=timeout)
        received = 0
        try:
            while received < 3:
                item = await asyncio.wait_for(stream.read(), stream_wait)
                if item is grpc.aio.EOF:
                    break
                received += 1
        except TimeoutError:
            pass
        if stream.done():
            details = None
            for key, value in await stream.trailing_metadata() or ():
                if key == "grpc-status-details-bin":
                    details = status_pb2.Status.FromString(value)
            code = await stream.code()
            race = (
                rpc.client_streaming
                and code == grpc.StatusCode.INTERNAL
                and details is None
                and await stream.details() == "Internal error from Core"
            )
            return Outcome(code, None, details, received, client_write_race=race)
        stream.cancel()
        return Outcome(grpc.StatusCode.OK, None, None, received)
    except grpc.aio.AioRpcError as error:
        details = _status(error)
        race = (
            rpc.client_streaming
            and error.code() == grpc.StatusCode.INTERNAL
            and details is None
            and error.details() == "Internal error from Core"
        )
        return Outcome(error.code(), None, details, client_write_race=race)


async def healthy(channel: grpc.aio.Channel) -> bool:
    """True when the server answers SERVING on grpc.health.v1."""
    reply = await health_pb2_grpc.HealthStub(channel).Check(
        health_pb2.HealthCheckRequest(), timeout=10
    )
    return reply.status == health_pb2.HealthCheckResponse.SERVING


# ---------------------------------------------------------------------------
# Invariants of the stored state
# ---------------------------------------------------------------------------


async def broken_invariants(db: Database, *, chain: bool = True) -> list[str]:
    """What is wrong with the stored state (empty when every invariant holds). Call after
    `core.settle()`, so that every committed event has its position."""
    problems: list[str] = []
    async with db.pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT number FROM ported_numbers WHERE serving_operator = range_holder"
            " OR number !~ '^[0-9]{1,18}$' LIMIT 5"
        )
        if rows:
            problems.append(f"ported numbers served by their range holder or malformed: {rows}")
        rows = await conn.fetch(
            """SELECT p.number FROM ported_numbers p
               WHERE NOT EXISTS (SELECT 1 FROM number_ranges r
                                 WHERE r.operator_id = p.range_holder
                                   AND r.numbers @> p.number::bigint) LIMIT 5"""
        )
        if rows:
            problems.append(f"ported numbers outside their range holder's ranges: {rows}")
        rows = await conn.fetch(
            "SELECT number, count(*) FROM port_request_numbers WHERE live"
            " GROUP BY number HAVING count(*) > 1 LIMIT 5"
        )
        if rows:
            problems.append(f"numbers with two live port requests: {rows}")
        log = await conn.fetchrow(
            """SELECT (SELECT count(*) FROM events WHERE position IS NOT NULL) AS positioned,
                      (SELECT coalesce(max(position), 0) FROM events) AS last,
                      (SELECT count(*) FROM events WHERE position IS NULL) AS unsequenced,
                      (SELECT position FROM event_head) AS head"""
        )
        assert log is not None
        if not log["positioned"] == log["last"] == log["head"] or log["unsequenced"]:
            problems.append(f"event log positions not gap-free up to the head: {dict(log)}")
    if chain:
        verification = await verify_log(db)
        if not verification.intact:
            problems.append(f"event log chain broken: {verification}")
    return problems
