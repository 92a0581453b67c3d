"""Time references in a recall query ("in May 2023", "on 7 July, 2023", "last week", "two days ago").

Rule-based and pure: no model on the recall path. :func:`find_time_window` turns the query's dates into
one window of time (the hull of every date it names); :func:`time_fit` says how well a memory's
``created_at`` (when it was said or happened) falls in it. People talk about an event on the day or
after it, rarely long before, so the fit decays slowly after the window and fast before it.

Absolute dates win over relative ones (a question "what did she do last weekend before April 10, 2023"
is about what was said around April 10). A month or day without a year is its latest occurrence that
has started by ``now``. A bare month name counts only capitalised or after a preposition ("in may"),
so the verb "may" is never a date.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo

__all__ = ["DAY", "TimeWindow", "find_time_window", "time_fit", "window_range"]

DAY = 86400.0

_MONTHS = {name.lower(): i for i, name in enumerate(calendar.month_name) if name}
_MONTHS.update({name.lower(): i for i, name in enumerate(calendar.month_abbr) if name})
_MONTHS["sept"] = 9
_MONTH = r"(?P<month>" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + r")\.?"
_ORD = r"(?:st|nd|rd|th)?"
_YEAR = r"(?P<year>(?:19|20)\d\d)"
_NUMBERS = {
    "a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "a few": 3, "a couple of": 2,
    "couple of": 2, "several": 3,
}  # fmt: skip
_AMOUNT = r"(?P<n>\d{1,3}|" + "|".join(sorted(_NUMBERS, key=len, reverse=True)) + r")"

_ISO = re.compile(r"\b(?P<year>\d{4})-(?P<mon>\d{1,2})-(?P<day>\d{1,2})\b")
_DAY_MONTH = re.compile(rf"\b(?P<day>\d{{1,2}}){_ORD}\s+(?:of\s+)?{_MONTH}\b(?:,?\s*{_YEAR}\b)?", re.I)
_MONTH_DAY = re.compile(rf"\b{_MONTH}\s+(?P<day>\d{{1,2}}){_ORD}\b(?:,?\s*{_YEAR}\b)?", re.I)
_MONTH_YEAR = re.compile(rf"\b{_MONTH},?\s+(?:of\s+)?{_YEAR}\b", re.I)
_MONTH_ALONE = re.compile(
    rf"\b(?P<lead>(?:in|during|since|of|last|this|early|late|mid|by|until|before|after|between|from|to)\s+)?{_MONTH}(?![\w-])",
    re.I,
)
_YEAR_ALONE = re.compile(rf"\b{_YEAR}\b")
_AGO = re.compile(rf"\b{_AMOUNT}\s+(?P<unit>day|week|month|year)s?\s+ago\b", re.I)
_LAST = re.compile(r"\b(?P<which>last|past|previous|this)\s+(?P<unit>weekend|week|month|year)\b", re.I)
_DAYWORD = re.compile(
    r"\b(?P<word>the day before yesterday|yesterday|last night|today|tonight|this morning|this evening)\b",
    re.I,
)


@dataclass(frozen=True, slots=True)
class TimeWindow:
    """A span of time a query refers to: ``start`` inclusive, ``end`` exclusive (Unix seconds)."""

    start: float
    end: float
    text: str  # the expressions it came from, as written


def _ts(d: date, tz: tzinfo) -> float:
    return datetime(d.year, d.month, d.day, tzinfo=tz).timestamp()


def _month_span(year: int, month: int) -> tuple[date, date]:
    start = date(year, month, 1)
    end = date(year + 1, 1, 1) if month == 12 else date(year, month + 1, 1)
    return start, end


def _shift_month(d: date, months: int) -> tuple[int, int]:
    index = d.year * 12 + (d.month - 1) - months
    return index // 12, index % 12 + 1


def _latest_year(today: date, month: int, day: int = 1) -> int:
    """The year of the latest ``month``/``day`` that has started by ``today``."""
    year = today.year
    if (month, day) > (today.month, today.day):
        year -= 1
    return year


def _valid_day(year: int, month: int, day: int) -> bool:
    return 1 <= month <= 12 and 1 <= day <= calendar.monthrange(year, month)[1]


def _absolute(query: str, today: date) -> list[tuple[date, date, str]]:
    spans: list[tuple[date, date, str]] = []
    taken: list[tuple[int, int]] = []

    def free(m: re.Match[str]) -> bool:
        return all(m.end() <= a or m.start() >= b for a, b in taken)

    def add(m: re.Match[str], start: date, end: date) -> None:
        spans.append((start, end, m.group(0)))
        taken.append((m.start(), m.end()))

    for m in _ISO.finditer(query):
        year, month, day = int(m["year"]), int(m["mon"]), int(m["day"])
        if _valid_day(year, month, day):
            add(m, date(year, month, day), date(year, month, day) + timedelta(days=1))
    for pattern in (_DAY_MONTH, _MONTH_DAY):
        for m in pattern.finditer(query):
            if not free(m):
                continue
            month, day = _MONTHS[m["month"].lower()], int(m["day"])
            year = int(m["year"]) if m["year"] else _latest_year(today, month, min(day, 28))
            if _valid_day(year, month, day):
                add(m, date(year, month, day), date(year, month, day) + timedelta(days=1))
    for m in _MONTH_YEAR.finditer(query):
        if free(m):
            add(m, *_month_span(int(m["year"]), _MONTHS[m["month"].lower()]))
    for m in _MONTH_ALONE.finditer(query):
        word = m["month"]
        if not free(m) or not (m["lead"] or word[0].isupper()) or (word.lower() == "may" and not m["lead"]):
            continue
        month = _MONTHS[word.lower()]
        lead = (m["lead"] or "").strip().lower()
        year = _latest_year(today, month)
        if lead == "last" and month == today.month:
            year -= 1  # "last June", said in June: the previous year's
        if lead == "this":
            year = today.year
        add(m, *_month_span(year, month))
    for m in _YEAR_ALONE.finditer(query):
        if free(m):
            year = int(m["year"])
            add(m, date(year, 1, 1), date(year + 1, 1, 1))
    return spans


def _relative(query: str, today: date) -> list[tuple[date, date, str]]:
    spans: list[tuple[date, date, str]] = []
    for m in _DAYWORD.finditer(query):
        word = m["word"].lower()
        back = 2 if word.startswith("the day before") else 1 if word in ("yesterday", "last night") else 0
        day = today - timedelta(days=back)
        spans.append((day, day + timedelta(days=1), m.group(0)))
    for m in _LAST.finditer(query):
        unit, this = m["unit"].lower(), m["which"].lower() == "this"
        monday = today - timedelta(days=today.weekday())
        if unit == "week":
            start = monday if this else monday - timedelta(days=7)
            spans.append((start, start + timedelta(days=7), m.group(0)))
        elif unit == "weekend":  # the latest Saturday-Sunday that has started (this) or ended (last)
            saturday = monday + timedelta(days=5)
            if saturday > today or (not this and today < saturday + timedelta(days=2)):
                saturday -= timedelta(days=7)
            spans.append((saturday, saturday + timedelta(days=2), m.group(0)))
        elif unit == "month":
            year, month = (today.year, today.month) if this else _shift_month(today, 1)
            spans.append((*_month_span(year, month), m.group(0)))
        else:
            year = today.year if this else today.year - 1
            spans.append((date(year, 1, 1), date(year + 1, 1, 1), m.group(0)))
    for m in _AGO.finditer(query):
        raw = m["n"].lower()
        n = int(raw) if raw.isdigit() else _NUMBERS[raw]
        unit = m["unit"].lower()
        if unit == "day":
            day = today - timedelta(days=n)
            spans.append((day, day + timedelta(days=1), m.group(0)))
        elif unit == "week":  # the week around that day
            day = today - timedelta(days=7 * n)
            spans.append((day - timedelta(days=3), day + timedelta(days=4), m.group(0)))
        elif unit == "month":
            spans.append((*_month_span(*_shift_month(today, n)), m.group(0)))
        elif today.year - n >= 1:
            spans.append((date(today.year - n, 1, 1), date(today.year - n + 1, 1, 1), m.group(0)))
    return spans


def find_time_window(query: str, now: float, tz: tzinfo) -> TimeWindow | None:
    """The window of time ``query`` names, relative to ``now`` in time zone ``tz``; ``None``: none.

    Several dates give the span from the earliest to the latest ("between May and July 2023").
    """
    today = datetime.fromtimestamp(now, tz).date()
    spans = _absolute(query, today) or _relative(query, today)
    if not spans:
        return None
    start = min(s for s, _, _ in spans)
    end = max(e for _, e, _ in spans)
    return TimeWindow(_ts(start, tz), _ts(end, tz), "; ".join(text for _, _, text in spans))


def time_fit(created_at: float, window: TimeWindow) -> float:
    """How well a memory created at ``created_at`` fits ``window``, in ``[0, 1]`` (1: inside it).

    After the window it halves every window length (at least a day): an event is talked about on the
    day and after. Before the window it halves four times as fast.
    """
    if window.start <= created_at < window.end:
        return 1.0
    span = max(window.end - window.start, DAY)
    if created_at >= window.end:
        return float(0.5 ** ((created_at - window.end) / span))
    return float(0.5 ** (4 * (window.start - created_at) / span))


def window_range(window: TimeWindow) -> tuple[float, float]:
    """The ``created_at`` range whose memories join recall's candidates.

    The window and, after it, twice its length (at least two days), where :func:`time_fit` is still at
    least a quarter.
    """
    return window.start, window.end + 2 * max(window.end - window.start, DAY)
