"""Traffic profiles: daily volume, curve and shares of the seeded arrivals, and the operator
behaviour each profile gives; pure functions of a seed and clearinghouse instants."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from npc.cli import PROFILE_NAMES
from npc_clients.simulator import Delay, OperatorProfile
from npc_clients.traffic import (
    ANSWER_LIMIT,
    COLOMBIA_2023,
    PERU_2024,
    PROFILES,
    TrafficGenerator,
    arrivals,
    expected_requests,
    profile_named,
    rate_at,
)

LIMA = ZoneInfo("America/Lima")
BOGOTA = ZoneInfo("America/Bogota")


def local_day(zone: ZoneInfo, year: int, month: int, day: int) -> tuple[datetime, datetime]:
    start = datetime(year, month, day, tzinfo=zone).astimezone(UTC)
    return start, start + timedelta(days=1)


def test_presets_have_the_documented_national_volumes() -> None:
    assert set(PROFILES) == set(PROFILE_NAMES)  # what `npc demo --profile` offers
    # Peru: 6.3 million mobile ports in 2024, about 17,000 a day.
    assert 16_500 <= PERU_2024.daily_requests <= 17_500
    assert PERU_2024.daily_requests * 366 == pytest.approx(6_300_000)
    assert COLOMBIA_2023.daily_requests == 20_000
    for profile in PROFILES.values():
        assert sum(profile.shares().values()) == pytest.approx(1.0)
        # A week of days averages the daily volume.
        week = 5 * profile.day_volume(False) + 2 * profile.day_volume(True)
        assert week / 7 == pytest.approx(profile.daily_requests)


def test_a_simulated_weekday_files_the_expected_volume() -> None:
    start, end = local_day(LIMA, 2026, 11, 23)  # a Monday
    found = list(arrivals(PERU_2024, start, end, seed=11))
    expected = PERU_2024.day_volume(weekend=False)
    assert expected_requests(PERU_2024, start, end) == pytest.approx(expected)
    # Poisson: one standard deviation is about 0.7 % of a day's 20,000.
    assert abs(len(found) - expected) <= 0.03 * expected
    assert all(start <= a.at < end for a in found)
    assert [a.at for a in found] == sorted(a.at for a in found)


def test_weekends_file_the_weekend_factor_of_a_weekday() -> None:
    monday = list(arrivals(PERU_2024, *local_day(LIMA, 2026, 11, 23), seed=5))
    sunday = list(arrivals(PERU_2024, *local_day(LIMA, 2026, 11, 29), seed=5))
    assert len(sunday) / len(monday) == pytest.approx(PERU_2024.weekend_factor, rel=0.05)


def test_national_holidays_are_as_quiet_as_a_weekend() -> None:
    # 8 December 2026, a Tuesday: the Immaculate Conception is a holiday in Peru.
    holiday = list(arrivals(PERU_2024, *local_day(LIMA, 2026, 12, 8), seed=5))
    tuesday = list(arrivals(PERU_2024, *local_day(LIMA, 2026, 12, 1), seed=5))
    assert PERU_2024.quiet_day(datetime(2026, 12, 8).date())
    assert not PERU_2024.quiet_day(datetime(2026, 12, 1).date())
    assert len(holiday) / len(tuesday) == pytest.approx(PERU_2024.weekend_factor, rel=0.05)


def test_scale_files_a_share_of_the_volume() -> None:
    start, end = local_day(BOGOTA, 2023, 6, 7)  # a Wednesday
    found = list(arrivals(COLOMBIA_2023, start, end, seed=2, scale=0.1))
    expected = COLOMBIA_2023.day_volume(False) * 0.1
    assert abs(len(found) - expected) <= 0.06 * expected


def test_arrivals_follow_the_daily_curve() -> None:
    start, end = local_day(LIMA, 2026, 11, 24)
    by_hour = Counter(a.at.astimezone(LIMA).hour for a in arrivals(PERU_2024, start, end, seed=3))
    weights = PERU_2024.hourly_weights
    total = sum(by_hour.values())
    for hour in (3, 11, 17, 22):
        assert by_hour[hour] / total == pytest.approx(weights[hour] / sum(weights), abs=0.005)
    assert by_hour[11] > 20 * by_hour[3]  # shop hours, not the small hours
    # The rate is constant inside a local hour and follows the weights between hours.
    eleven = datetime(2026, 11, 24, 11, tzinfo=LIMA)
    assert rate_at(PERU_2024, eleven) == rate_at(PERU_2024, eleven + timedelta(minutes=59))
    assert rate_at(PERU_2024, eleven) / rate_at(PERU_2024, eleven.replace(hour=3)) == (
        pytest.approx(weights[11] / weights[3])
    )


def test_recipients_and_donors_follow_the_market_shares() -> None:
    found = list(arrivals(COLOMBIA_2023, *local_day(BOGOTA, 2023, 6, 7), seed=9))
    shares = COLOMBIA_2023.shares()
    recipients = Counter(a.recipient for a in found)
    for name, share in shares.items():
        assert recipients[name] / len(found) == pytest.approx(share, abs=0.015)
    assert all(a.donor != a.recipient for a in found)
    # Claro's requests take numbers from the others in proportion to their shares.
    from_claro = Counter(a.donor for a in found if a.recipient == "claro")
    others = {name: share for name, share in shares.items() if name != "claro"}
    total = sum(from_claro.values())
    for name, share in others.items():
        assert from_claro[name] / total == pytest.approx(share / sum(others.values()), abs=0.02)


def test_arrivals_are_a_pure_function_of_seed_and_clock() -> None:
    start = datetime(2026, 11, 23, 9, 30, tzinfo=LIMA)
    end = start + timedelta(hours=3)
    whole = list(arrivals(PERU_2024, start, end, seed=4))
    assert whole == list(arrivals(PERU_2024, start, end, seed=4))
    # The same requests whatever the steps of the clock that asks for them.
    generator = TrafficGenerator(PERU_2024, start, seed=4)
    stepped = []
    now = start
    step = random.Random(0)
    while now < end:
        now = min(end, now + timedelta(seconds=step.uniform(1, 400)))
        stepped.extend(generator.due(now))
    assert stepped == whole
    assert generator.due(start) == []  # a clock going back gets nothing twice
    assert list(arrivals(PERU_2024, start, end, seed=5)) != whole


def test_profiles_must_be_well_formed() -> None:
    with pytest.raises(ValueError, match="24"):
        replace(PERU_2024, hourly_weights=(1.0,) * 23)
    with pytest.raises(ValueError, match="two operators"):
        replace(PERU_2024, operators=PERU_2024.operators[:1])
    with pytest.raises(ValueError, match="peru-2024"):
        profile_named("atlantis-1999")
    assert profile_named("peru-2024") is PERU_2024
    with pytest.raises(ValueError, match="aware"):
        list(arrivals(PERU_2024, datetime(2026, 1, 1), datetime(2026, 1, 2), seed=1))


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_each_operator_answers_as_its_profile_says(name: str) -> None:
    limit = ANSWER_LIMIT.total_seconds()
    for operator in PROFILES[name].operators:
        behaviour = operator.behaviour
        rng = random.Random(operator.operator)
        answers = [behaviour.donor_answer(rng) for _ in range(20_000)]
        kinds = Counter(a.kind for a in answers)
        assert kinds["silent"] / len(answers) == pytest.approx(behaviour.silence_rate, abs=0.005)
        assert kinds["object"] / len(answers) == pytest.approx(behaviour.objection_rate, abs=0.01)
        answered = [a.delay for a in answers if a.kind != "silent"]
        median = sorted(answered)[len(answered) // 2]
        assert median == pytest.approx(behaviour.answer_delay.median, rel=0.1)
        # A small tail answers past the donor's 5 minutes: between 0.5 % and 5 %.
        late = sum(delay > limit for delay in answered) / len(answered)
        assert 0.005 <= late <= 0.05


def test_silence_rate_is_the_share_of_requests_never_answered() -> None:
    rng = random.Random(1)
    quiet = OperatorProfile(silence_rate=0.25, objection_rate=0.1)
    answers = [quiet.donor_answer(rng) for _ in range(10_000)]
    silent = [a for a in answers if a.kind == "silent"]
    assert len(silent) / len(answers) == pytest.approx(0.25, abs=0.015)
    assert all(a.delay == 0 for a in silent)
    never = OperatorProfile(silence_rate=1.0)
    assert {never.donor_answer(rng).kind for _ in range(100)} == {"silent"}


def test_wall_profile_compresses_clearinghouse_seconds() -> None:
    claro = PERU_2024.operator("claro")
    fast = claro.wall_profile(600)
    assert fast.answer_delay == Delay(
        claro.behaviour.answer_delay.median / 600,
        claro.behaviour.answer_delay.sigma,
        claro.behaviour.answer_delay.low / 600,
        claro.behaviour.answer_delay.high / 600,
    )
    assert fast.enable_delay.median == pytest.approx(claro.behaviour.enable_delay.median / 600)
    assert fast.silence_rate == claro.behaviour.silence_rate
    assert fast.schedule_lead == claro.behaviour.schedule_lead  # a clearinghouse duration already
    with pytest.raises(ValueError):
        claro.wall_profile(0)
