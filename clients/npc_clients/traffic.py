"""National traffic profiles: how many port requests a country files, when, between whom, and how
each operator's systems behave.

A `TrafficProfile` holds a daily volume, a daily curve (24 hourly weights in local time), a weekend
factor (national holidays count as weekend days: shops close), and the operators with their market share and behaviour (an `OperatorProfile`). Arrivals
are a Poisson process whose rate follows the curve; they are a pure function of the seed and of the
clearinghouse instants asked about: each UTC hour has its own random stream, so asking for a day at
once or minute by minute gives the same requests, and nothing reads the wall clock.

Behaviour delays in a traffic profile are in clearinghouse seconds (what the regulation measures: a
donor answering in 40 s, a tail past the 5-minute limit); `OperatorTraffic.wall_profile(speed)`
turns them into the wall-clock delays a `SimulatedOperator` sleeps on a clock running `speed`
times faster.

Presets (`PROFILES`):

* ``peru-2024``: 6.3 million mobile ports in 2024 (OSIPTEL), about 17,000 a day;
* ``colombia-2023``: about 20,000 port requests a day in 2023 (CRC).

The market shares and behaviour figures of the presets are approximate (rounded shares of mobile
lines from the regulators' public dashboards) and only meant to give a realistic shape; every
field is configurable: build a `TrafficProfile` of your own, or `dataclasses.replace` a preset.
"""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from statistics import NormalDist
from typing import Any
from zoneinfo import ZoneInfo

import holidays

from npc_clients.simulator import Delay, OperatorProfile, SimulatedOperator

__all__ = [
    "PROFILES",
    "Arrival",
    "OperatorTraffic",
    "TrafficGenerator",
    "TrafficProfile",
    "arrivals",
    "drive",
    "expected_requests",
    "profile_named",
    "rate_at",
]

HOUR = timedelta(hours=1)
ANSWER_LIMIT = timedelta(minutes=5)  # the donor's time to answer a port request (rule 3)


@dataclass(frozen=True)
class OperatorTraffic:
    """One operator of a national market.

    `share` weighs it as recipient (the operator filing) and as donor (the operator losing the
    number, among the others); `behaviour` delays are in clearinghouse seconds.
    """

    operator: str
    share: float
    behaviour: OperatorProfile = field(default_factory=OperatorProfile)

    def wall_profile(self, speed: float) -> OperatorProfile:
        """The behaviour with every delay in wall seconds on a clock `speed` times faster."""
        if speed <= 0:
            raise ValueError("speed must be positive")
        profile = self.behaviour
        changes: dict[str, Any] = {
            name: Delay(value.median / speed, value.sigma, value.low / speed, value.high / speed)
            for name, value in vars(profile).items()
            if isinstance(value, Delay)
        }
        return replace(profile, **changes)


@dataclass(frozen=True)
class TrafficProfile:
    """A country's port requests: volume, daily curve, weekly shape, operators."""

    name: str
    jurisdiction: str  # "PE", "CO": the business calendar and rules of the clearinghouse
    timezone: str  # the daily curve's local time
    daily_requests: float  # average over the days of a week
    hourly_weights: tuple[float, ...]  # 24 relative weights, local hours 0..23
    weekend_factor: float  # a Saturday's or Sunday's volume relative to a weekday's
    operators: tuple[OperatorTraffic, ...]
    source: str = ""

    def __post_init__(self) -> None:
        if len(self.hourly_weights) != 24 or min(self.hourly_weights) < 0:
            raise ValueError("hourly_weights needs 24 non-negative weights")
        if sum(self.hourly_weights) <= 0:
            raise ValueError("hourly_weights must not all be zero")
        if len(self.operators) < 2:
            raise ValueError("a market needs at least two operators")
        if min(o.share for o in self.operators) <= 0:
            raise ValueError("shares must be positive")
        if self.daily_requests < 0 or self.weekend_factor < 0:
            raise ValueError("volumes must not be negative")

    @property
    def zone(self) -> ZoneInfo:
        """The time zone of the daily curve."""
        return ZoneInfo(self.timezone)

    @property
    def names(self) -> list[str]:
        """The operators' ids."""
        return [o.operator for o in self.operators]

    def operator(self, name: str) -> OperatorTraffic:
        """The operator called `name`."""
        for candidate in self.operators:
            if candidate.operator == name:
                return candidate
        raise KeyError(name)

    def shares(self) -> dict[str, float]:
        """Operator -> share, normalised to sum 1."""
        total = sum(o.share for o in self.operators)
        return {o.operator: o.share / total for o in self.operators}

    def quiet_day(self, day: date) -> bool:
        """True on a Saturday, a Sunday or a national holiday of the jurisdiction."""
        return day.weekday() >= 5 or day in _holidays(self.jurisdiction, day.year)

    def day_volume(self, weekend: bool) -> float:
        """Expected requests on a weekday or a weekend day (a week averages `daily_requests`)."""
        weekday = 7 * self.daily_requests / (5 + 2 * self.weekend_factor)
        return weekday * self.weekend_factor if weekend else weekday


@lru_cache(maxsize=64)
def _holidays(country: str, year: int) -> frozenset[date]:
    return frozenset(holidays.country_holidays(country, years=year))


@dataclass(frozen=True, order=True)
class Arrival:
    """One port request to file: at `at` (UTC), by `recipient`, for a number of `donor`."""

    at: datetime
    recipient: str
    donor: str


def rate_at(profile: TrafficProfile, instant: datetime, *, scale: float = 1.0) -> float:
    """Expected requests per clearinghouse second at `instant` (constant within a local hour)."""
    local = instant.astimezone(profile.zone)
    volume = profile.day_volume(profile.quiet_day(local.date())) * scale
    weight = profile.hourly_weights[local.hour] / sum(profile.hourly_weights)
    return volume * weight / 3600.0


def _hour_start(instant: datetime) -> datetime:
    return instant.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def _hours(start: datetime, end: datetime) -> Iterator[datetime]:
    hour = _hour_start(start)
    while hour < end:
        yield hour
        hour += HOUR


def expected_requests(
    profile: TrafficProfile, start: datetime, end: datetime, *, scale: float = 1.0
) -> float:
    """Expected requests in [start, end): the integral of `rate_at`."""
    total = 0.0
    for hour in _hours(start, end):
        covered = min(end, hour + HOUR) - max(start, hour)
        total += rate_at(profile, hour, scale=scale) * covered.total_seconds()
    return total


def _hour_arrivals(
    profile: TrafficProfile, hour: datetime, seed: int, scale: float
) -> list[Arrival]:
    """The arrivals of one UTC hour, from that hour's own random stream."""
    rate = rate_at(profile, hour, scale=scale)
    if rate <= 0:
        return []
    rng = random.Random(f"{profile.name}:{seed}:{int(hour.timestamp())}")
    shares = profile.shares()
    names = list(shares)
    weights = [shares[name] for name in names]
    found: list[Arrival] = []
    offset = rng.expovariate(rate)
    while offset < 3600.0:
        recipient = rng.choices(names, weights)[0]
        others = [n for n in names if n != recipient]
        donor = rng.choices(others, [shares[n] for n in others])[0]
        found.append(Arrival(hour + timedelta(seconds=offset), recipient, donor))
        offset += rng.expovariate(rate)
    return found


def arrivals(
    profile: TrafficProfile,
    start: datetime,
    end: datetime,
    *,
    seed: int,
    scale: float = 1.0,
) -> Iterator[Arrival]:
    """The port requests arriving in [start, end), in time order.

    A pure function of its arguments: the same seed gives the same requests however the span is
    cut into calls. `scale` multiplies the volume (0.01 files a hundredth of the country's).
    """
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("instants must be timezone-aware")
    for hour in _hours(start, end):
        for arrival in _hour_arrivals(profile, hour, seed, scale):
            if start <= arrival.at < end:
                yield arrival


class TrafficGenerator:
    """Arrivals handed out as a clock moves: `due(now)` gives those since the previous call."""

    def __init__(
        self, profile: TrafficProfile, start: datetime, *, seed: int, scale: float = 1.0
    ) -> None:
        """Start handing out arrivals at `start` (a clearinghouse instant)."""
        self.profile = profile
        self.seed = seed
        self.scale = scale
        self.cursor = start

    def due(self, now: datetime) -> list[Arrival]:
        """Arrivals in [previous cursor, now); the cursor moves to `now` (never backwards)."""
        if now <= self.cursor:
            return []
        found = list(arrivals(self.profile, self.cursor, now, seed=self.seed, scale=self.scale))
        self.cursor = now
        return found


async def drive(
    generator: TrafficGenerator,
    operators: Mapping[str, SimulatedOperator],
    now: Callable[[], datetime],
    *,
    poll: float = 0.05,
) -> None:
    """File each arrival through its recipient's simulated operator as the clock reaches it.

    Runs until cancelled. `now` is the clearinghouse's clock; arrivals are filed at most `poll`
    wall seconds late. An arrival whose recipient is not simulated, or that the market has no
    slot for, is counted as declined.
    """
    while True:
        for arrival in generator.due(now()):
            simulator = operators.get(arrival.recipient)
            if simulator is None:
                if operators:
                    stats = next(iter(operators.values())).stats
                    stats.offered += 1
                    stats.declined += 1
                continue
            simulator.file_to(arrival.donor)
        await asyncio.sleep(poll)


# ------------------------------------------------------------------------------ presets


def _behaviour(
    *,
    answer_median: float,
    late_share: float,
    objection_rate: float,
    silence_rate: float,
    schedule_median: float = 45.0,
    confirm_median: float = 20.0,
) -> OperatorProfile:
    """Behaviour in clearinghouse seconds, with `late_share` of answers past the 5 minutes.

    The answer time is log-normal around `answer_median`; its sigma is chosen so that the share
    `late_share` of answers falls past the limit (those answers are refused and count as silence).
    """
    limit = ANSWER_LIMIT.total_seconds()
    z = NormalDist().inv_cdf(1.0 - late_share)
    sigma = math.log(limit / answer_median) / z
    return OperatorProfile(
        answer_delay=Delay(answer_median, sigma, 2.0, 3 * limit),
        objection_rate=objection_rate,
        silence_rate=silence_rate,
        disable_delay=Delay(confirm_median, 0.7, 1.0, 1800.0),
        enable_delay=Delay(confirm_median * 1.5, 0.7, 1.0, 1800.0),
        debt_proof_delay=Delay(90.0, 0.6, 10.0, 240.0),
        schedule_delay=Delay(schedule_median, 0.8, 1.0, 1800.0),
        fixed_share=0.02,
        schedule_lead=timedelta(minutes=10),
        # A day's demand waits for the night's change window: no cap of our own.
        max_in_flight=1_000_000,
    )


# Retail hours: little at night, a morning ramp, peaks late morning and early evening.
_RETAIL_DAY = (
    0.3, 0.2, 0.1, 0.1, 0.1, 0.2, 0.5, 1.5, 3.5, 5.5, 7.0, 7.5,
    7.0, 6.5, 6.5, 7.0, 7.5, 7.5, 7.0, 6.0, 4.5, 3.0, 1.5, 0.7,
)  # fmt: skip

PERU_2024 = TrafficProfile(
    name="peru-2024",
    jurisdiction="PE",
    timezone="America/Lima",
    daily_requests=6_300_000 / 366,  # 2024 was a leap year: about 17,200 a day
    hourly_weights=_RETAIL_DAY,
    weekend_factor=0.6,
    operators=(
        # Approximate shares of mobile lines (OSIPTEL, 2024); configurable.
        OperatorTraffic("claro", 0.29, _behaviour(answer_median=30, late_share=0.01,
                                                  objection_rate=0.07, silence_rate=0.01)),
        OperatorTraffic("movistar", 0.27, _behaviour(answer_median=45, late_share=0.02,
                                                     objection_rate=0.10, silence_rate=0.02)),
        OperatorTraffic("entel", 0.21, _behaviour(answer_median=25, late_share=0.01,
                                                  objection_rate=0.06, silence_rate=0.01)),
        OperatorTraffic("bitel", 0.23, _behaviour(answer_median=60, late_share=0.03,
                                                  objection_rate=0.08, silence_rate=0.03)),
    ),
    source="OSIPTEL: 6.3 million mobile ports in 2024; shares approximate",
)  # fmt: skip

COLOMBIA_2023 = TrafficProfile(
    name="colombia-2023",
    jurisdiction="CO",
    timezone="America/Bogota",
    daily_requests=20_000,
    hourly_weights=_RETAIL_DAY,
    weekend_factor=0.55,
    operators=(
        # Approximate shares of mobile lines (CRC / MinTIC, 2023); configurable.
        OperatorTraffic("claro", 0.47, _behaviour(answer_median=40, late_share=0.02,
                                                  objection_rate=0.09, silence_rate=0.02)),
        OperatorTraffic("movistar", 0.22, _behaviour(answer_median=45, late_share=0.02,
                                                     objection_rate=0.08, silence_rate=0.02)),
        OperatorTraffic("tigo", 0.22, _behaviour(answer_median=50, late_share=0.02,
                                                 objection_rate=0.08, silence_rate=0.02)),
        OperatorTraffic("wom", 0.09, _behaviour(answer_median=35, late_share=0.01,
                                                objection_rate=0.05, silence_rate=0.01)),
    ),
    source="CRC: about 20,000 port requests a day in 2023; shares approximate",
)  # fmt: skip

PROFILES: dict[str, TrafficProfile] = {p.name: p for p in (PERU_2024, COLOMBIA_2023)}


def profile_named(name: str) -> TrafficProfile:
    """The preset called `name` (ValueError listing the presets otherwise)."""
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(
            f"unknown traffic profile {name!r}; presets: {', '.join(PROFILES)}"
        ) from None


def market_mix(arrivals_seen: Sequence[Arrival]) -> dict[str, float]:
    """Share of the arrivals filed by each recipient (for reports and tests)."""
    total = len(arrivals_seen) or 1
    counts: dict[str, int] = {}
    for arrival in arrivals_seen:
        counts[arrival.recipient] = counts.get(arrival.recipient, 0) + 1
    return {name: count / total for name, count in counts.items()}
