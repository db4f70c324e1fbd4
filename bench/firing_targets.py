"""The targets the firing benchmark schedules: the same functions for every peer.

Each returns the instant it started (epoch seconds). Clocktower stores the
return value as the run's result and APScheduler hands it to its
`EVENT_JOB_EXECUTED` listeners, so lateness is measured inside the target
for both: its actual start minus the fire time it served.
"""

from __future__ import annotations

import time


def noop() -> float:
    return time.time()


async def anoop() -> float:
    return time.time()
