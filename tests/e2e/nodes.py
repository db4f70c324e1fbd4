"""Real `clocktower` processes for end-to-end tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

BIN = Path(sys.executable).parent / "clocktower"
T = TypeVar("T")


def cli(
    *args: str,
    database: str,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(BIN), *args],
        env={**os.environ, "CLOCKTOWER_DATABASE": database, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"clocktower {' '.join(args)} failed: {result.stderr}")
    return result


class Node:
    """One `clocktower serve` process, its log in a file."""

    def __init__(
        self,
        database: str,
        log: Path,
        *,
        name: str,
        config: Path | None = None,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        args = [str(BIN), "serve", "--no-http"]
        if config is not None:
            args += ["--config", str(config)]
        self.log_path = log
        self._log = log.open("w")
        self.proc = subprocess.Popen(
            args,
            env={
                **os.environ,
                "CLOCKTOWER_DATABASE": database,
                "CLOCKTOWER_NODE_ID": name,
                "CLOCKTOWER_LEASE": "3",
                "CLOCKTOWER_ARTIFACTS_DIR": str(log.parent / f"artifacts-{name}"),
                **(env or {}),
            },
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=cwd,
        )

    def log(self) -> str:
        return self.log_path.read_text()

    def signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(10)

    def wait(self, timeout: float = 60) -> int:
        return self.proc.wait(timeout)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._log.close()


def eventually(check: Callable[[], T | None], *, timeout: float = 30, what: str = "") -> T:
    """Poll `check` until it returns something truthy (bounded)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or check}")
        time.sleep(0.1)


def nodes_cleanup(nodes: list[Node]) -> None:
    for node in nodes:
        node.stop()


def dump(nodes: list[Node]) -> Any:
    return "\n".join(f"--- {n.log_path.name}\n{n.log()}" for n in nodes)
