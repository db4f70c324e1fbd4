"""Looking at real processes from the tests (Linux /proc)."""

from __future__ import annotations

import asyncio
from pathlib import Path


def _stat(pid: str) -> tuple[str, int] | None:
    try:
        text = Path("/proc", pid, "stat").read_text()
    except OSError:
        return None
    fields = text.rpartition(")")[2].split()
    return fields[0], int(fields[2])


def live_in_group(pgid: int) -> list[int]:
    """Pids of processes in group `pgid` that are running (not zombies)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            stat = _stat(entry.name)
            if stat is not None and stat[1] == pgid and stat[0] not in ("Z", "X"):
                found.append(int(entry.name))
    return found


def running(pid: int) -> bool:
    stat = _stat(str(pid))
    return stat is not None and stat[0] not in ("Z", "X")


async def wait_gone(pgid: int) -> list[int]:
    """Wait (at most 5 s) for group `pgid` to have no running process; what is left, if any.

    For the cases where the code under test sends SIGKILL and does not wait:
    delivery is asynchronous.
    """
    async with asyncio.timeout(5):
        while left := live_in_group(pgid):  # noqa: ASYNC110 -- no event for another's exit
            await asyncio.sleep(0.01)
    return left


def exists(pid: int) -> bool:
    """Whether `pid` is in the process table at all (a zombie counts)."""
    return Path("/proc", str(pid)).exists()
