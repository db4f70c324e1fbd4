"""Python targets for the engine tests (imported by the python executor)."""

from __future__ import annotations

import asyncio
import time
from typing import Any


def flaky(ctx: Any) -> str:
    if ctx.attempt == 1:
        raise RuntimeError("first attempt fails")
    print(f"attempt {ctx.attempt} for {ctx.scheduled_for:%H:%M}")
    return "ok"


async def slow_async(ctx: Any) -> None:
    await asyncio.sleep(60)


def slow_sync(ctx: Any) -> None:
    time.sleep(60)


class Concurrency:
    """How many `overlapping` calls run at once, and the most seen."""

    now = 0
    most = 0


async def overlapping(ctx: Any) -> int:
    Concurrency.now += 1
    Concurrency.most = max(Concurrency.most, Concurrency.now)
    try:
        await asyncio.sleep(0.02)
    finally:
        Concurrency.now -= 1
    return ctx.run_id  # type: ignore[no-any-return]


async def naps(ctx: Any, seconds: float) -> int:
    await asyncio.sleep(seconds)
    return ctx.run_id  # type: ignore[no-any-return]


def payload(ctx: Any) -> Any:
    return ctx.payload


def shouts(ctx: Any) -> None:
    ctx.log.info("é" * 100_000)  # 200,000 bytes on one line
