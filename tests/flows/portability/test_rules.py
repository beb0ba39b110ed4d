"""The portability timeline and the business calendar as pure functions (no database, no server).

Every expected instant is derived by hand from the rule it checks (DOMAIN.md §3 and the docstrings
of rules.Timeline) and written in Lima wall time; Lima is UTC-5 all year.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from npc.config import PortabilitySettings
from npc.core.calendar import COLOMBIA, PERU, BusinessCalendar, calendar_for, utc
from npc.flows.portability import rules as R

LIMA = ZoneInfo("America/Lima")


def lima(y: int, m: int, d: int, hh: int = 0, mm: int = 0, ss: int = 0) -> datetime:
    """A Lima wall-clock instant, as UTC."""
    return datetime(y, m, d, hh, mm, ss, tzinfo=LIMA).astimezone(UTC)


@pytest.fixture
def timeline() -> R.Timeline:
    return R.Timeline(PERU, PortabilitySettings())


def short_window() -> R.Timeline:
    """Peru's 2025 change window, 00:00-03:00."""
    settings = replace(
        PortabilitySettings(), change_window_start=time(0, 0), change_window_end=time(3, 0)
    )
    return R.Timeline(PERU, settings)


# ----------------------------------------------------------------------------- calendar


def test_calendar_converts_lima_wall_time_to_utc_and_back():
    instant = PERU.at(date(2026, 11, 23), time(10, 0))
    assert instant == datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
    assert instant.tzinfo == UTC
    assert PERU.local(instant).hour == 10
    # 21:30 in Lima is already the next day in UTC: the local date is still the 23rd.
    late = datetime(2026, 11, 24, 2, 30, tzinfo=UTC)
    assert PERU.local_date(late) == date(2026, 11, 23)
    assert utc(datetime(2026, 11, 23, 10, 0, tzinfo=LIMA)) == instant


def test_calendar_holidays_come_from_the_holidays_package():
    assert PERU.is_holiday(date(2027, 7, 28))  # Independence Day
    assert PERU.holiday_name(date(2027, 7, 28))
    assert PERU.is_holiday(date(2027, 6, 7))  # Battle of Arica and Flag Day, a Monday
    assert not PERU.is_holiday(date(2027, 6, 8))
    assert PERU.holiday_name(date(2027, 6, 8)) is None
    # Colombia has its own calendar: 20 July is Colombia's Independence Day, not Peru's.
    assert COLOMBIA.is_holiday(date(2027, 7, 20))
    assert not PERU.is_holiday(date(2027, 7, 20))


def test_business_days_skip_weekends_and_holidays():
    assert PERU.is_business_day(date(2026, 11, 23))  # Monday
    assert not PERU.is_business_day(date(2026, 11, 28))  # Saturday
    assert not PERU.is_business_day(date(2026, 11, 29))  # Sunday
    assert not PERU.is_business_day(date(2026, 12, 8))  # Immaculate Conception, a Tuesday
    # Friday 27 Nov + 1 business day = Monday 30 Nov.
    assert PERU.add_business_days(date(2026, 11, 27), 1) == date(2026, 11, 30)
    # Monday 7 Dec + 1 = Thursday 10 Dec (the 8th and the 9th are holidays).
    assert PERU.add_business_days(date(2026, 12, 7), 1) == date(2026, 12, 10)
    # Monday 23 Nov + 5 = Monday 30 Nov.
    assert PERU.add_business_days(date(2026, 11, 23), 5) == date(2026, 11, 30)
    # Counting from a Saturday: the next business day is Monday.
    assert PERU.add_business_days(date(2026, 11, 28), 1) == date(2026, 11, 30)
    assert PERU.add_business_days(date(2026, 11, 28), 0) == date(2026, 11, 28)
    # A week with two holidays (Wed 28 and Thu 29 July 2027).
    assert PERU.add_business_days(date(2027, 7, 27), 1) == date(2027, 7, 30)


def test_end_of_business_days_is_local_midnight_after_the_last_one():
    # Friday 27 Nov 2026 16:00 Lima + 2 business days = Tuesday 1 Dec; ends at Wed 00:00 Lima.
    end = PERU.end_of_business_days(lima(2026, 11, 27, 16), 2)
    assert end == lima(2026, 12, 2, 0, 0)
    # Instant given in UTC that is still the previous local day in Lima.
    end = PERU.end_of_business_days(datetime(2026, 11, 28, 3, 0, tzinfo=UTC), 1)
    assert end == lima(2026, 12, 1, 0, 0)  # Friday 27 (local) + 1 = Monday 30


def test_calendar_for_known_and_unknown_jurisdictions():
    assert calendar_for("pe") is PERU
    assert calendar_for("CO") is COLOMBIA
    with pytest.raises(ValueError):
        calendar_for("XX")
    assert isinstance(PERU, BusinessCalendar)
    assert PERU.zone == LIMA


# ----------------------------------------------------------------------------- donor deadline


def test_donor_has_five_minutes(timeline):
    sent = lima(2026, 11, 23, 10, 0)
    assert timeline.donor_deadline(sent) == sent + timedelta(minutes=5)


def test_special_client_is_more_than_ten_numbers(timeline):
    assert not timeline.is_special_client(1)
    assert not timeline.is_special_client(10)
    assert timeline.is_special_client(11)
    assert timeline.is_special_client(500)


# ----------------------------------------------------------------------------- scheduling limits


@pytest.mark.parametrize(
    ("admissible", "deadline"),
    [
        (lima(2026, 11, 23, 10, 1), lima(2026, 11, 23, 22, 0)),
        (lima(2026, 11, 23, 0, 30), lima(2026, 11, 23, 22, 0)),  # 05:30 UTC, same local day
        (lima(2026, 11, 23, 21, 30), lima(2026, 11, 23, 22, 0)),  # next day in UTC
        (lima(2026, 11, 23, 21, 59, 59), lima(2026, 11, 23, 22, 0)),
        (lima(2026, 11, 23, 22, 0), lima(2026, 11, 24, 22, 0)),  # could never comply today
        (lima(2026, 11, 23, 23, 45), lima(2026, 11, 24, 22, 0)),
    ],
)
def test_mobile_schedule_deadline_is_2200_of_the_admissible_day(timeline, admissible, deadline):
    assert timeline.mobile_schedule_deadline(admissible) == deadline


def test_fixed_schedule_deadline_is_2200_of_the_day_after_installation(timeline):
    assert timeline.fixed_schedule_deadline(date(2026, 11, 23)) == lima(2026, 11, 24, 22, 0)
    # Across a month end.
    assert timeline.fixed_schedule_deadline(date(2026, 11, 30)) == lima(2026, 12, 1, 22, 0)


# ----------------------------------------------------------------------------- change windows


def test_change_window_is_0000_to_0600_lima(timeline):
    assert timeline.window_start_on(date(2026, 11, 24)) == lima(2026, 11, 24, 0, 0)
    start = lima(2026, 11, 24, 0, 0)
    assert timeline.window_end_for(start) == lima(2026, 11, 24, 6, 0)
    assert timeline.window_containing(lima(2026, 11, 24, 0, 0)) == (start, lima(2026, 11, 24, 6))
    assert timeline.window_containing(lima(2026, 11, 24, 2, 30)) == (
        start,
        lima(2026, 11, 24, 6),
    )
    assert timeline.window_containing(lima(2026, 11, 24, 5, 59, 59)) is not None
    assert timeline.window_containing(lima(2026, 11, 24, 6, 0)) is None  # end is exclusive
    assert timeline.window_containing(lima(2026, 11, 23, 23, 59)) is None
    assert timeline.window_containing(lima(2026, 11, 23, 12, 0)) is None


def test_change_window_is_configurable_to_0000_0300():
    timeline = short_window()
    start = lima(2026, 11, 24, 0, 0)
    assert timeline.window_end_for(start) == lima(2026, 11, 24, 3, 0)
    assert timeline.window_containing(lima(2026, 11, 24, 2, 59)) == (start, lima(2026, 11, 24, 3))
    assert timeline.window_containing(lima(2026, 11, 24, 3, 0)) is None
    assert timeline.window_containing(lima(2026, 11, 24, 4, 0)) is None


def test_change_window_crossing_midnight():
    settings = replace(
        PortabilitySettings(), change_window_start=time(23, 0), change_window_end=time(2, 0)
    )
    timeline = R.Timeline(PERU, settings)
    start = lima(2026, 11, 23, 23, 0)
    assert timeline.window_end_for(start) == lima(2026, 11, 24, 2, 0)
    # 01:00 on the 24th belongs to the window that opened on the 23rd.
    assert timeline.window_containing(lima(2026, 11, 24, 1, 0)) == (start, lima(2026, 11, 24, 2))
    assert timeline.window_containing(lima(2026, 11, 23, 23, 30)) == (
        start,
        lima(2026, 11, 24, 2),
    )
    assert timeline.window_containing(lima(2026, 11, 24, 2, 0)) is None


# ----------------------------------------------------------------------------- 24-hour rule


def test_exception_days_are_sundays_holidays_and_the_day_before(timeline):
    assert not timeline.is_exception_day(date(2026, 11, 23))  # ordinary Monday
    assert not timeline.is_exception_day(date(2026, 11, 27))  # ordinary Friday
    assert timeline.is_exception_day(date(2026, 11, 28))  # Saturday: day before Sunday
    assert timeline.is_exception_day(date(2026, 11, 29))  # Sunday
    assert timeline.is_exception_day(date(2026, 12, 7))  # Monday before the 8 Dec holiday
    assert timeline.is_exception_day(date(2026, 12, 8))  # the holiday
    assert timeline.is_exception_day(date(2026, 12, 9))  # Battle of Ayacucho
    assert not timeline.is_exception_day(date(2026, 12, 10))


def test_execution_limit_ordinary_monday_is_tuesday_0600(timeline):
    # Monday 10:00 + 24 h = Tuesday 10:00; the last window opening at or before that is Tuesday
    # 00:00, which closes at 06:00.
    limit = timeline.execution_limit(lima(2026, 11, 23, 10, 0), 1)
    assert limit == lima(2026, 11, 24, 6, 0)


@pytest.mark.parametrize(
    ("submitted", "limit"),
    [
        (lima(2026, 11, 23, 0, 30), lima(2026, 11, 24, 6, 0)),
        (lima(2026, 11, 23, 5, 59), lima(2026, 11, 24, 6, 0)),
        (lima(2026, 11, 23, 23, 30), lima(2026, 11, 24, 6, 0)),  # 04:30 UTC on the 24th
        (lima(2026, 11, 24, 0, 0), lima(2026, 11, 25, 6, 0)),  # 24 h later a window opens
        (lima(2026, 11, 27, 10, 0), lima(2026, 11, 28, 6, 0)),  # ordinary Friday
    ],
)
def test_execution_limit_ordinary_days(timeline, submitted, limit):
    assert timeline.execution_limit(submitted, 1) == limit


def test_execution_limit_with_the_short_window():
    limit = short_window().execution_limit(lima(2026, 11, 23, 10, 0), 1)
    assert limit == lima(2026, 11, 24, 3, 0)


def test_execution_limit_saturday_before_a_monday_holiday(timeline):
    # Monday 7 June 2027 is a holiday (Battle of Arica and Flag Day). Saturday 5 June is the day
    # before a Sunday, Sunday 6 is a Sunday (and the day before the holiday), Monday 7 is the
    # holiday. Tuesday 8 is the first day that is none of these: the 24 hours run from Tuesday
    # 00:00 to Wednesday 00:00, when the Wednesday window opens; it closes at 06:00.
    assert PERU.is_holiday(date(2027, 6, 7)) and date(2027, 6, 7).weekday() == 0
    saturday = lima(2027, 6, 5, 10, 0)
    assert timeline.execution_limit(saturday, 1) == lima(2027, 6, 9, 6, 0)
    # The Sunday itself, at any hour, gives the same limit.
    assert timeline.execution_limit(lima(2027, 6, 6, 23, 59), 1) == lima(2027, 6, 9, 6, 0)
    # And the holiday.
    assert timeline.execution_limit(lima(2027, 6, 7, 8, 0), 1) == lima(2027, 6, 9, 6, 0)


def test_execution_limit_friday_before_a_saturday_holiday(timeline):
    # Saturday 25 December 2027 is Christmas: Friday 24 is the day before a holiday, Saturday 25
    # is the holiday (and the day before Sunday), Sunday 26 is a Sunday. Monday 27 is the first
    # ordinary day: 24 h from Monday 00:00 ends Tuesday 00:00, window closes Tuesday 06:00.
    assert PERU.is_holiday(date(2027, 12, 25)) and date(2027, 12, 24).weekday() == 4
    friday = lima(2027, 12, 24, 10, 0)
    assert timeline.execution_limit(friday, 1) == lima(2027, 12, 28, 6, 0)


def test_execution_limit_tuesday_before_two_holidays(timeline):
    # Tuesday 27 July 2027 precedes Independence Day (Wed 28) and the Military Parade (Thu 29).
    # Friday 30 is ordinary (Saturday is not a closed day): Friday 00:00 + 24 h = Saturday 00:00.
    assert PERU.is_holiday(date(2027, 7, 28)) and PERU.is_holiday(date(2027, 7, 29))
    assert timeline.execution_limit(lima(2027, 7, 27, 15, 0), 1) == lima(2027, 7, 31, 6, 0)


def test_execution_limit_of_a_special_client_counts_business_days(timeline):
    # Monday 23 Nov 2026 + 5 business days = Monday 30 Nov; the window opening after it is
    # Tuesday 1 Dec 00:00, closing 06:00.
    assert timeline.execution_limit(lima(2026, 11, 23, 10, 0), 11) == lima(2026, 12, 1, 6, 0)
    # Ten numbers is not special: the 24-hour rule applies.
    assert timeline.execution_limit(lima(2026, 11, 23, 10, 0), 10) == lima(2026, 11, 24, 6, 0)


def test_execution_limit_of_a_special_client_skips_holidays(timeline):
    # Thursday 22 July 2027: Fri 23 (Air Force Day), Wed 28 and Thu 29 are holidays. Business
    # days: Mon 26, Tue 27, Fri 30, Mon 2 Aug, Tue 3 Aug -> window of Wed 4 Aug closes 06:00.
    assert PERU.is_holiday(date(2027, 7, 23))
    limit = timeline.execution_limit(lima(2027, 7, 22, 12, 0), 11)
    assert limit == lima(2027, 8, 4, 6, 0)


def test_execution_limit_of_a_special_client_uses_the_setting():
    settings = replace(PortabilitySettings(), special_client_business_days=3)
    timeline = R.Timeline(PERU, settings)
    # Monday + 3 business days = Thursday; window of Friday 00:00 closes 06:00.
    assert timeline.execution_limit(lima(2026, 11, 23, 10, 0), 11) == lima(2026, 11, 27, 6, 0)


# ----------------------------------------------------------------------------- confirmations


def test_donor_disables_at_the_scheduled_instant_within_its_tolerance(timeline):
    # Infraction 27: "en la fecha y hora establecida", with the configured tolerance (15 min).
    scheduled = lima(2026, 11, 24, 1, 0)
    assert timeline.donor_disable_deadline(scheduled) == lima(2026, 11, 24, 1, 15)
    strict = R.Timeline(PERU, replace(PortabilitySettings(), donor_disable_tolerance=timedelta()))
    assert strict.donor_disable_deadline(scheduled) == scheduled
    # Never past the end of the window: 02:55 in the 00:00-03:00 window is due at 03:00.
    assert short_window().donor_disable_deadline(lima(2026, 11, 24, 2, 55)) == lima(
        2026, 11, 24, 3, 0
    )


@pytest.mark.parametrize(
    ("scheduled", "due"),
    [
        (lima(2026, 11, 24, 1, 0), lima(2026, 11, 24, 4, 0)),  # 3 hours
        (lima(2026, 11, 24, 3, 0), lima(2026, 11, 24, 6, 0)),  # 3 hours, to the window's end
        (lima(2026, 11, 24, 3, 0, 1), lima(2026, 11, 24, 6, 0)),  # the window ends first
        (lima(2026, 11, 24, 5, 0), lima(2026, 11, 24, 6, 0)),  # not 08:00
    ],
)
def test_recipient_enables_within_three_hours_inside_the_window(timeline, scheduled, due):
    assert timeline.recipient_enable_deadline(scheduled) == due


def test_recipient_outage_ends_with_the_short_window():
    timeline = short_window()
    assert timeline.recipient_enable_deadline(lima(2026, 11, 24, 0, 0)) == lima(2026, 11, 24, 3)
    assert timeline.recipient_enable_deadline(lima(2026, 11, 24, 1, 0)) == lima(2026, 11, 24, 3)


# ----------------------------------------------------------------------------- terms of admissibility


def mobile_terms(timeline: R.Timeline, received: datetime, admissible: datetime):
    """The limits of a one-number mobile request presented at `received`."""
    terms = timeline.scheduling_terms(
        R.Service.MOBILE, admissible, None, timeline.execution_limit(received, 1), 1
    )
    assert terms is not None
    return terms


@pytest.mark.parametrize(
    ("received", "admissible", "deadline", "limit"),
    [
        # Ordinary Monday, admissible by day: 22:00 today, Tuesday's window.
        (
            lima(2026, 11, 23, 10),
            lima(2026, 11, 23, 10, 5),
            lima(2026, 11, 23, 22),
            lima(2026, 11, 24, 6),
        ),
        # One second before 22:00: still today's 22:00, still Tuesday's window.
        (
            lima(2026, 11, 23, 21, 50),
            lima(2026, 11, 23, 21, 59, 59),
            lima(2026, 11, 23, 22),
            lima(2026, 11, 24, 6),
        ),
        # At 22:00: 22:00 of Tuesday, so the limit is Wednesday's window (was Tuesday 06:00).
        (
            lima(2026, 11, 23, 21, 55),
            lima(2026, 11, 23, 22),
            lima(2026, 11, 24, 22),
            lima(2026, 11, 25, 6),
        ),
        # Weekend: an ordinary Friday presentation, admissible at 23:00; schedule by Saturday
        # 22:00, so Sunday's window must be executable (the 24 hours alone end Saturday 06:00).
        (
            lima(2026, 11, 27, 21, 58),
            lima(2026, 11, 27, 23),
            lima(2026, 11, 28, 22),
            lima(2026, 11, 29, 6),
        ),
        # Holiday: a debt objection on Monday 26 July 2027 lifted at 22:30; schedule by Tuesday
        # 22:00, executable in the window of Wednesday 28 (Independence Day).
        (
            lima(2027, 7, 26, 10),
            lima(2027, 7, 26, 22, 30),
            lima(2027, 7, 27, 22),
            lima(2027, 7, 28, 6),
        ),
        # Presented on a Saturday: the 24 hours start Monday, later than what scheduling needs.
        (
            lima(2026, 11, 28, 21, 50),
            lima(2026, 11, 28, 22),
            lima(2026, 11, 29, 22),
            lima(2026, 12, 1, 6),
        ),
    ],
)
def test_late_evening_admissibility_keeps_both_limits_consistent(
    timeline, received, admissible, deadline, limit
):
    terms = mobile_terms(timeline, received, admissible)
    assert (terms.schedule_deadline, terms.execution_limit) == (deadline, limit)


def test_schedulable_until_is_the_end_of_the_first_window_closing_after(timeline):
    assert timeline.schedulable_until(lima(2026, 11, 23, 22)) == lima(2026, 11, 24, 6)
    assert timeline.schedulable_until(lima(2026, 11, 24, 5, 59, 59)) == lima(2026, 11, 24, 6)
    assert timeline.schedulable_until(lima(2026, 11, 24, 6)) == lima(2026, 11, 25, 6)
    assert short_window().schedulable_until(lima(2026, 11, 24, 22)) == lima(2026, 11, 25, 3)


def _windows() -> list[R.Timeline]:
    """Today's window, Peru's 2025 window and one crossing midnight."""
    late = replace(
        PortabilitySettings(), change_window_start=time(21, 0), change_window_end=time(2, 0)
    )
    return [R.Timeline(PERU, PortabilitySettings()), short_window(), R.Timeline(PERU, late)]


@pytest.mark.parametrize("timeline", _windows(), ids=["00-06", "00-03", "21-02"])
def test_what_may_be_scheduled_by_the_deadline_is_executable(timeline):
    """Whatever the recipient may still schedule by its deadline must be executable: one second
    before the scheduling limit some instant of a change window is still ahead and within the
    execution limit. Swept every 47 minutes over ten days with a weekend and two holidays (8 and 9
    December 2026), presented at admissibility or 20 hours before."""
    admissible = lima(2026, 12, 3, 0, 0)
    while admissible < lima(2026, 12, 13):
        for received in (admissible, admissible - timedelta(hours=20)):
            terms = mobile_terms(timeline, received, admissible)
            last_chance = terms.schedule_deadline - timedelta(seconds=1)
            window = timeline.window_containing(terms.execution_limit - timedelta(seconds=1))
            assert window is not None and window[1] == terms.execution_limit
            assert max(window[0], last_chance + timedelta(seconds=1)) < terms.execution_limit
        admissible += timedelta(minutes=47)


def test_fixed_terms_wait_for_the_installation(timeline):
    received = lima(2026, 11, 23, 10)
    registered = timeline.execution_limit(received, 1)
    assert timeline.scheduling_terms(R.Service.FIXED, received, None, registered, 1) is None
    terms = timeline.scheduling_terms(
        R.Service.FIXED, lima(2026, 11, 23, 10, 5), date(2026, 11, 25), registered, 1
    )
    assert terms == R.SchedulingTerms(lima(2026, 11, 26, 22), lima(2026, 11, 27, 6))


# ----------------------------------------------------------------------------- presentation


@pytest.mark.parametrize(
    ("received", "registered", "limit"),
    [
        # Weekend: presented Friday 23:50 (an ordinary day), registered Saturday 00:10 (the day
        # before a Sunday). From the presentation: Saturday 06:00, not Tuesday 06:00.
        (lima(2026, 11, 27, 23, 50), lima(2026, 11, 28, 0, 10), lima(2026, 11, 28, 6)),
        # Holiday: presented Monday 26 July 2027 23:55, registered Tuesday 00:20 (the day before
        # Independence Day): Tuesday 06:00, not Saturday 31 July 06:00.
        (lima(2027, 7, 26, 23, 55), lima(2027, 7, 27, 0, 20), lima(2027, 7, 27, 6)),
    ],
)
def test_the_24_hours_run_from_the_presentation(timeline, received, registered, limit):
    assert timeline.execution_limit(received, 1) == limit
    assert timeline.execution_limit(registered, 1) > limit  # what counting from registration gave


@pytest.mark.parametrize(
    ("received", "limit"),
    [
        # Weekend: Friday 23:59:59 is an ordinary day, its 24 hours end in Saturday's window. At
        # Saturday 00:00 (the day before a Sunday) they start on Monday 00:00: Tuesday's window.
        (lima(2026, 11, 27, 23, 59, 59), lima(2026, 11, 28, 6)),
        (lima(2026, 11, 28), lima(2026, 12, 1, 6)),
        # Holiday: Monday 26 July 2027 23:59:59 ends in Tuesday's window. At Tuesday 00:00 (the
        # day before Independence Day and the Military Parade) they start on Friday 30 00:00.
        (lima(2027, 7, 26, 23, 59, 59), lima(2027, 7, 27, 6)),
        (lima(2027, 7, 27), lima(2027, 7, 31, 6)),
    ],
)
def test_the_24_hours_of_a_presentation_at_the_first_instant_of_an_exception_day(
    timeline, received, limit
):
    assert timeline.execution_limit(received, 1) == limit


# ----------------------------------------------------------------------------- rule catalogue


@pytest.mark.parametrize(
    ("key", "infraction", "severity", "party"),
    [
        ("registration", 20, "leve", "recipient"),
        ("consultation_donor_answer", 18, "grave", "donor"),
        ("request_donor_answer", 21, "grave", "donor"),
        ("improper_objection", 23, "muy_grave", "donor"),
        ("mobile_schedule", 24, "leve", "recipient"),
        ("fixed_schedule", 25, "leve", "recipient"),
        ("donor_disable", 27, "grave", "donor"),
        ("recipient_enable", 28, "grave", "recipient"),
    ],
)
def test_rules_match_the_infraction_table(key, infraction, severity, party):
    rule = R.RULES[key]
    assert (rule.infraction, rule.severity, rule.party) == (infraction, severity, party)
