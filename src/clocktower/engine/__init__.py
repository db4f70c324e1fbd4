"""The scheduling engine: fire due jobs, claim and start runs, leases, retries,
overlap and catch-up, graceful shutdown."""

from clocktower.engine.engine import Engine, EngineSettings, utcnow
from clocktower.engine.loop import Loop, LoopSettings

__all__ = ["Engine", "EngineSettings", "Loop", "LoopSettings", "utcnow"]
