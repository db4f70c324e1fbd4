"""Which wall times a cron expression matches, in integer arithmetic.

A wall time here is "naive local seconds": day number (days since 1970-01-01
on the local calendar) * 86400 + seconds since local midnight, with no zone
attached. `CronSchedule.next_wall` finds the first matching wall time at or
after a given one; time zones are the caller's business (see `cron.py`).

Why integers rather than stepping a datetime field by field (as cronsim and
croniter do): a fire time is found with a handful of bit operations. Each
time field is a bitmask (bit v set: value v allowed), so "the next allowed
minute at or after m" is the lowest set bit of `mask >> m`. Each (year,
month) gets a 32-bit mask of its matching days, computed once from the day
fields (with L, W and # resolved for that month) and cached, so the next
matching day is again a lowest-set-bit away. Nothing loops over minutes or
days; the only `date` objects built split a day number into year, month and
day, or find the weekday of a month's 1st. Expressions whose days depend only
on the weekday (`0 6 * * 1`) or match every day skip even that.
"""

from __future__ import annotations

from datetime import date

from clocktower.triggers.cronparse import WEEK, CronFields, DaysOfMonth, DaysOfWeek

DAY = 86400
EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
LAST_DAY = date(9998, 12, 31).toordinal() - EPOCH_ORDINAL
_DAYS_IN_MONTH = (0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_ALL_DAYS = (1 << 32) - 2  # bits 1-31
_ALL_MONTHS = (1 << 13) - 2  # bits 1-12
_WEEKS = sum(1 << (7 * k) for k in range(5))  # repeats a 7-bit week pattern five times
_MASK_CACHE_LIMIT = 4096


def lowest_bit(mask: int) -> int:
    """The index of the lowest set bit of a non-zero mask."""
    return (mask & -mask).bit_length() - 1


def days_in_month(year: int, month: int) -> int:
    if month == 2 and year % 4 == 0 and (year % 100 != 0 or year % 400 == 0):
        return 29
    return _DAYS_IN_MONTH[month]


def nearest_weekday(day: int, length: int, first: int) -> int:
    """The weekday (Monday-Friday) nearest `day` in a month of `length` days whose
    1st falls on weekday `first` (0 = Sunday), never leaving the month."""
    weekday = (first + day - 1) % 7
    if weekday == 6:  # Saturday: the Friday before, or Monday the 3rd
        return 3 if day == 1 else day - 1
    if weekday == 0:  # Sunday: the Monday after, or the Friday before the last day
        return day - 2 if day == length else day + 1
    return day


def dom_mask(dom: DaysOfMonth, length: int, first: int) -> int:
    """Days of one month the day-of-month field allows (bit d: day d)."""
    mask = dom.days
    for n in dom.before_last:
        if n < length:
            mask |= 1 << (length - n)
    for day in dom.nearest_weekday:
        if day <= length:
            mask |= 1 << nearest_weekday(day, length, first)
    if dom.last_weekday:
        mask |= 1 << nearest_weekday(length, length, first)
    return mask


def dow_mask(dow: DaysOfWeek, length: int, first: int) -> int:
    """Days of one month the day-of-week field allows (bit d: day d)."""
    week = dow.days
    rotated = ((week >> first) | (week << (7 - first))) & 0x7F  # bit j: weekday of day j + 1
    mask = (rotated << 1) * _WEEKS
    for weekday, n in dow.nth:
        day = (weekday - first) % 7 + 1  # its first occurrence
        if n < 0:
            day += 7 * ((length - day) // 7 + n + 1)
        else:
            day += 7 * (n - 1)
        if 1 <= day <= length:
            mask |= 1 << day
    return mask


EVERY_DAY, WEEKLY, MONTHLY = 0, 1, 2  # how a schedule picks its days


class CronSchedule:
    """The wall times a parsed expression matches, and the next one after a given one."""

    __slots__ = (
        "_day_or",
        "_days",
        "_dom",
        "_dow",
        "_first_month",
        "_first_tod",
        "_hours",
        "_masks",
        "_min0",
        "_minutes",
        "_months",
        "_sec0",
        "_seconds",
        "_week",
        "fields",
    )

    def __init__(self, fields: CronFields) -> None:
        self.fields = fields
        self._seconds = seconds = fields.second_bits
        self._minutes = minutes = fields.minute_bits
        self._hours = hours = fields.hour_bits
        self._months = months = fields.month_bits
        self._first_month = (months & -months).bit_length() - 1  # lowest_bit, inlined
        self._sec0 = (seconds & -seconds).bit_length() - 1
        self._min0 = (minutes & -minutes).bit_length() - 1
        first_hour = (hours & -hours).bit_length() - 1
        self._first_tod = first_hour * 3600 + self._min0 * 60 + self._sec0
        self._dom, self._dow, self._day_or = fields.dom, fields.dow, fields.day_or
        self._week = fields.dow.days * 0x81  # two weeks side by side, for wrapping
        self._days = self._day_kind()
        self._masks: dict[int, int] = {}

    def _day_kind(self) -> int:
        """EVERY_DAY, WEEKLY (only the weekday matters) or MONTHLY (per-month masks)."""
        if self._months != _ALL_MONTHS:
            return MONTHLY
        dom_all = self._dom.days & _ALL_DAYS == _ALL_DAYS
        dow_all = self._dow.days == WEEK
        if (dom_all or dow_all) if self._day_or else (dom_all and dow_all):
            return EVERY_DAY
        if dom_all and not self._day_or and not self._dow.nth:
            return WEEKLY
        return MONTHLY

    # ----------------------------------------------------------------- days

    def month_mask(self, year: int, month: int) -> int:
        """The days of a month that match (bit d: day d), cached."""
        key = year * 16 + month
        mask = self._masks.get(key)
        if mask is None:
            if len(self._masks) >= _MASK_CACHE_LIMIT:
                self._masks.clear()
            mask = self._masks[key] = self._compute_month_mask(year, month)
        return mask

    def _compute_month_mask(self, year: int, month: int) -> int:
        if not self._months >> month & 1:
            return 0
        length = days_in_month(year, month)
        in_month = (1 << (length + 1)) - 2
        dom, dow = self._dom, self._dow
        first = -1  # weekday of the 1st (0 = Sunday), found only if a field needs it
        by_dom = dom.days
        if dom.before_last or dom.nearest_weekday or dom.last_weekday:
            first = date(year, month, 1).toordinal() % 7
            by_dom = dom_mask(dom, length, first)
        by_dow = in_month
        if dow.days != WEEK:
            first = first if first >= 0 else date(year, month, 1).toordinal() % 7
            by_dow = dow_mask(dow, length, first)
        if self._day_or:
            return (by_dom | by_dow) & in_month
        return by_dom & by_dow & in_month

    def day_matches(self, day: int) -> bool:
        """Whether day number `day` (days since 1970-01-01) matches."""
        if self._days == EVERY_DAY:
            return True
        if self._days == WEEKLY:
            return bool(self._week >> (day + 4) % 7 & 1)  # 1970-01-01 was a Thursday
        d = date.fromordinal(day + EPOCH_ORDINAL)
        return bool(self.month_mask(d.year, d.month) >> d.day & 1)

    def next_day(self, day: int, limit: int) -> int | None:
        """The first matching day number >= `day` and <= `limit`, or None."""
        if self._days == WEEKLY:
            day += lowest_bit(self._week >> (day + 4) % 7)
        elif self._days == MONTHLY:
            d = date.fromordinal(day + EPOCH_ORDINAL)
            return self._next_day_by_month(day, d.year, d.month, d.day, limit)
        return day if day <= limit else None

    def _next_day_by_month(
        self, day: int, year: int, month: int, mday: int, limit: int
    ) -> int | None:
        """`next_day` through month masks, from `day` = (year, month, mday)."""
        while day <= limit:
            mask = self.month_mask(year, month) >> mday
            if mask:
                found = day + lowest_bit(mask)
                return found if found <= limit else None
            year, month = self._following_month(year, month)
            if year > 9998:
                return None
            day, mday = date(year, month, 1).toordinal() - EPOCH_ORDINAL, 1
        return None

    def _following_month(self, year: int, month: int) -> tuple[int, int]:
        """The next month after (year, month) that the month field allows."""
        later = self._months >> (month + 1)
        if later:
            return year, month + 1 + lowest_bit(later)
        return year + 1, self._first_month

    # ----------------------------------------------------------------- times

    def next_time_of_day(self, second: int) -> int:
        """The first matching second of the day >= `second`, or -1."""
        hour, rest = divmod(second, 3600)
        minute, sec = divmod(rest, 60)
        if self._hours >> hour & 1:
            if self._minutes >> minute & 1:
                later = self._seconds >> sec
                if later:
                    return second + lowest_bit(later)
            later = self._minutes >> (minute + 1)
            if later:
                return hour * 3600 + (minute + 1 + lowest_bit(later)) * 60 + self._sec0
        later = self._hours >> (hour + 1)
        if later:
            return (hour + 1 + lowest_bit(later)) * 3600 + self._min0 * 60 + self._sec0
        return -1

    def next_wall(self, wall: int, limit: int) -> int | None:
        """The first matching wall time >= `wall` on a day <= `limit`, or None."""
        day, second = divmod(wall, DAY)
        if day > limit:
            return None
        if self._days == MONTHLY:
            return self._next_wall_by_month(day, second, limit)
        if self._days == EVERY_DAY or self._week >> (day + 4) % 7 & 1:
            tod = self.next_time_of_day(second)
            if tod >= 0:
                return day * DAY + tod
        found = self.next_day(day + 1, limit)
        return None if found is None else found * DAY + self._first_tod

    def _next_wall_by_month(self, day: int, second: int, limit: int) -> int | None:
        d = date.fromordinal(day + EPOCH_ORDINAL)
        if self.month_mask(d.year, d.month) >> d.day & 1:
            tod = self.next_time_of_day(second)
            if tod >= 0:
                return day * DAY + tod
        found = self._next_day_by_month(day + 1, d.year, d.month, d.day + 1, limit)
        return None if found is None else found * DAY + self._first_tod

    def can_match(self) -> bool:
        """Whether any day ever matches: a day field of `30` with month `2` never does.

        The calendar repeats every 400 years and any 28 consecutive years of
        1901-2099 hold every kind of year (leap or not, starting on any weekday),
        so 28 years settle it.
        """
        if self._days != MONTHLY or self._day_or or self._plainly_possible():
            return True  # every weekday and every nth weekday exist in every month, some year
        years = range(2024, 2052)
        return any(self.month_mask(year, month) for year in years for month in range(1, 13))

    def _plainly_possible(self) -> bool:
        """Cheap cases: a day every month has, on any weekday, or any weekday on any day."""
        dom, dow = self._dom, self._dow
        if dow.days == WEEK:
            return bool(
                dom.days & ((1 << 29) - 2)  # a day from 1 to 28
                or dom.last_weekday
                or any(n <= 27 for n in dom.before_last)
                or any(day <= 28 for day in dom.nearest_weekday)
            )
        return dom.days & _ALL_DAYS == _ALL_DAYS and dow.days != 0
