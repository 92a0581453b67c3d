"""The query-time parser: which dates a recall query names, and how a memory's time fits them."""

from __future__ import annotations

from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from agentmem_core._timeref import DAY, TimeWindow, find_time_window, time_fit, window_range

UTC = timezone.utc
NOW = datetime(2023, 10, 20, 12, tzinfo=UTC).timestamp()  # a Friday


def span(query: str, now: float = NOW, tz: timezone | ZoneInfo = UTC) -> tuple[date, date] | None:
    window = find_time_window(query, now, tz)
    if window is None:
        return None
    return (datetime.fromtimestamp(window.start, tz).date(), datetime.fromtimestamp(window.end, tz).date())


@pytest.mark.parametrize(
    ("query", "start", "end"),
    [
        ("What painting did she show on October 13, 2023?", date(2023, 10, 13), date(2023, 10, 14)),
        ("What did Gina find on 1 February, 2023?", date(2023, 2, 1), date(2023, 2, 2)),
        ("the 3rd of June 2023", date(2023, 6, 3), date(2023, 6, 4)),
        ("on 2023-05-07", date(2023, 5, 7), date(2023, 5, 8)),
        ("What setback did she face in October 2023?", date(2023, 10, 1), date(2023, 11, 1)),
        ("on 31 February 2023", date(2023, 2, 1), date(2023, 3, 1)),  # no such day: the month it names
        ("in Dec. 2022", date(2022, 12, 1), date(2023, 1, 1)),
        ("How many times at the beach in 2023?", date(2023, 1, 1), date(2024, 1, 1)),
        # no year: the latest one that has started by now
        ("When did she go camping in June?", date(2023, 6, 1), date(2023, 7, 1)),
        ("in December", date(2022, 12, 1), date(2023, 1, 1)),
        ("Jan 5", date(2023, 1, 5), date(2023, 1, 6)),
        ("Nov 2", date(2022, 11, 2), date(2022, 11, 3)),
        ("in may", date(2023, 5, 1), date(2023, 6, 1)),
        ("last October", date(2022, 10, 1), date(2022, 11, 1)),  # said in October: the year before
        ("this October", date(2023, 10, 1), date(2023, 11, 1)),
        # several dates: their hull
        ("between May and July 2023", date(2023, 5, 1), date(2023, 8, 1)),
        # an absolute date wins over a relative one
        ("What did she do last weekend before April 10, 2023?", date(2023, 4, 10), date(2023, 4, 11)),
        # relative to now
        ("what did I eat yesterday", date(2023, 10, 19), date(2023, 10, 20)),
        ("last night", date(2023, 10, 19), date(2023, 10, 20)),
        ("the day before yesterday", date(2023, 10, 18), date(2023, 10, 19)),
        ("today", date(2023, 10, 20), date(2023, 10, 21)),
        ("what did we plan last week", date(2023, 10, 9), date(2023, 10, 16)),
        ("this week", date(2023, 10, 16), date(2023, 10, 23)),
        ("last weekend", date(2023, 10, 14), date(2023, 10, 16)),
        ("last month", date(2023, 9, 1), date(2023, 10, 1)),
        ("this year", date(2023, 1, 1), date(2024, 1, 1)),
        ("last year", date(2022, 1, 1), date(2023, 1, 1)),
        ("3 days ago", date(2023, 10, 17), date(2023, 10, 18)),
        ("two weeks ago", date(2023, 10, 3), date(2023, 10, 10)),
        ("a couple of months ago", date(2023, 8, 1), date(2023, 9, 1)),
        ("4 years ago", date(2019, 1, 1), date(2020, 1, 1)),
    ],
)
def test_dates_a_query_names(query: str, start: date, end: date) -> None:
    assert span(query) == (start, end)


@pytest.mark.parametrize(
    "query",
    [
        "May I ask what she likes?",  # the verb
        "what may she like",
        "where does she live",
        "the 2 of us",
        "room 12 on floor 30",
        "february31",  # not a word boundary
        "in the marching band",  # "march" inside a word
    ],
)
def test_no_date(query: str) -> None:
    assert find_time_window(query, NOW, UTC) is None


def test_a_capitalised_bare_month_counts() -> None:
    assert span("what happened around August") == (date(2023, 8, 1), date(2023, 9, 1))


def test_the_window_is_read_in_the_time_zone() -> None:
    tokyo = ZoneInfo("Asia/Tokyo")
    window = find_time_window("on 7 July, 2023", NOW, tokyo)
    assert window is not None
    assert window.start == datetime(2023, 7, 7, tzinfo=tokyo).timestamp()
    assert window.end - window.start == DAY
    # "yesterday" in Tokyo at 2023-10-20 23:30 UTC is 20 October there
    late = datetime(2023, 10, 20, 23, 30, tzinfo=UTC).timestamp()
    assert span("yesterday", late, tokyo) == (date(2023, 10, 20), date(2023, 10, 21))


def test_the_text_names_the_expressions() -> None:
    window = find_time_window("between May and July 2023", NOW, UTC)
    assert window is not None and "July 2023" in window.text


def test_fit_is_one_inside_and_decays_slower_after_than_before() -> None:
    window = TimeWindow(10 * DAY, 11 * DAY, "a day")
    assert time_fit(10 * DAY, window) == 1.0
    assert time_fit(11 * DAY - 1, window) == 1.0
    assert time_fit(12 * DAY, window) == pytest.approx(0.5)  # one window length after: a half
    assert time_fit(9 * DAY, window) == pytest.approx(0.5**4)  # before: four times as fast
    assert time_fit(40 * DAY, window) < 1e-6
    month = TimeWindow(0.0, 30 * DAY, "a month")
    assert time_fit(45 * DAY, month) == pytest.approx(0.5**0.5)


def test_the_candidate_range_covers_the_window_and_what_follows() -> None:
    window = TimeWindow(10 * DAY, 11 * DAY, "a day")
    lo, hi = window_range(window)
    assert (lo, hi) == (10 * DAY, 13 * DAY)
    assert time_fit(hi - 1, window) >= 0.25
    assert window_range(TimeWindow(0.0, 30 * DAY, "m")) == (0.0, 90 * DAY)


def test_a_month_without_a_year_rolls_back_a_year_when_not_yet_started() -> None:
    jan = datetime(2024, 1, 3, tzinfo=UTC).timestamp()
    assert span("in June", jan) == (date(2023, 6, 1), date(2023, 7, 1))
    assert span("last week", jan) == (date(2023, 12, 25), date(2024, 1, 1))
    assert span("last month", jan) == (date(2023, 12, 1), date(2024, 1, 1))
    assert span("last weekend", jan - 2 * DAY) == (date(2023, 12, 30), date(2024, 1, 1))
    sunday = datetime(2023, 10, 22, 9, tzinfo=UTC).timestamp()
    assert span("this weekend", sunday) == (date(2023, 10, 21), date(2023, 10, 23))
    assert span("last weekend", sunday) == (date(2023, 10, 14), date(2023, 10, 16))
