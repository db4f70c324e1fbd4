"""Running a child process in its own process group, and stopping all of it.

A job's command may start children of its own (`cmd &`, a worker pool, a
daemon). Signalling only the shell would leave those behind, so every child
starts a new session (hence a new process group whose id is its pid) and is
stopped with `killpg`: SIGTERM, `kill_grace` seconds, then SIGKILL.

Output goes through pipes this module creates and closes itself, rather than
asyncio's subprocess pipes: a process that escapes the group (`setsid cmd &`)
and keeps the pipe open must not leave a transport open, or the run waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import resource
import signal
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from clocktower.executors._output import MAX_LINE, LineReader, LinesHandler

Notice = Callable[[str], None]

# How long to wait for the last output once every process of the group is gone.
# Longer only if a process escaped the group and still holds the pipe.
DRAIN_TIMEOUT = 2.0
# How long SIGKILLed processes get to disappear (they may be in uninterruptible sleep).
KILL_WAIT = 5.0


def format_seconds(seconds: float) -> str:
    return f"{seconds:g}s"


def describe_exit(returncode: int) -> str:
    """`exited with status 3` or `killed by signal SIGKILL`."""
    if returncode >= 0:
        return f"exited with status {returncode}"
    try:
        name = signal.Signals(-returncode).name
    except ValueError:
        name = f"signal {-returncode}"
    return f"killed by signal {name}"


def prepare_artifacts(path: Path) -> str | None:
    """Create the run's artifacts directory; the reason if that fails."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return f"cannot create the artifacts directory: {exc}"
    return None


def _proc_group_has_live_member(pgid: int) -> bool:
    """Whether /proc lists a process of group `pgid` that is not a zombie.

    `killpg(pgid, 0)` also succeeds for zombies, which linger until their parent
    (often init, which may be slow or absent in a container) reaps them, yet
    they hold no resources and cannot be killed.
    """
    try:
        entries = os.listdir("/proc")
    except OSError:
        return True  # no /proc: trust killpg
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            stat = Path("/proc", entry, "stat").read_text()
        except OSError:
            continue
        fields = stat.rpartition(")")[2].split()
        if len(fields) > 2 and fields[2] == str(pgid) and fields[0] not in ("Z", "X"):
            return True
    return False


class ProcessGroup:
    """The process group a child leads; signalled as a whole."""

    def __init__(self, pgid: int) -> None:
        self.pgid = pgid
        self._gone = False  # once gone, never signal again: the id may be reused

    def signal(self, sig: signal.Signals) -> bool:
        """Send `sig` to every process of the group; False if none is left."""
        if self._gone:
            return False
        try:
            os.killpg(self.pgid, sig)
        except ProcessLookupError:
            self._gone = True
            return False
        return True

    def alive(self) -> bool:
        """Whether a process of the group is still running (zombies do not count)."""
        if self._gone:
            return False
        try:
            os.killpg(self.pgid, 0)
        except ProcessLookupError:
            self._gone = True
            return False
        except PermissionError:
            return True
        return _proc_group_has_live_member(self.pgid)

    async def wait_empty(self, within: float) -> bool:
        """Wait up to `within` seconds for the group to empty; True if it did.

        Polls, with a short back-off: there is no event for "a process I did
        not start has exited".
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        delay = 0.005
        while self.alive():
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            await asyncio.sleep(min(delay, remaining))
            delay = min(delay * 2, 0.1)
        return True

    async def terminate(self, grace: float, notice: Notice) -> None:
        """SIGTERM the group, then SIGKILL whatever is left after `grace` seconds.

        If the waiting is cancelled, SIGKILL at once and re-raise: a second
        cancellation (a shutdown, say) must not leave processes behind.
        """
        if not self.signal(signal.SIGTERM):
            return
        try:
            if await self.wait_empty(grace):
                return
            notice(f"still running {format_seconds(grace)} after SIGTERM: sending SIGKILL")
            self.signal(signal.SIGKILL)
            if not await self.wait_empty(KILL_WAIT):
                notice(f"processes of group {self.pgid} are still present after SIGKILL")
        except asyncio.CancelledError:
            self.signal(signal.SIGKILL)
            raise


def _memory_limiter(limit: int | None) -> Callable[[], None] | None:
    """A preexec_fn capping the child's address space (RLIMIT_AS) at `limit` bytes.

    It only calls setrlimit with arguments prepared here: code that runs between
    fork and exec must not take locks (import, allocate) that another thread
    of the server might have held at fork time.
    """
    if limit is None:
        return None
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    return functools.partial(resource.setrlimit, resource.RLIMIT_AS, (limit, limit))


async def _connect(
    file: BinaryIO, handler: LinesHandler, max_line: int
) -> tuple[asyncio.BaseTransport, LineReader]:
    return await asyncio.get_running_loop().connect_read_pipe(
        functools.partial(LineReader, handler, max_line), file
    )


@dataclass(frozen=True, slots=True)
class Ending:
    returncode: int | None  # None: the child would not go away, even after SIGKILL
    timed_out: bool = False


class Child:
    """A started child process, its process group and the pipes it writes to.

    Use `start()`, then `run()`, and always `close()` (in a `finally`).
    """

    def __init__(
        self,
        proc: asyncio.subprocess.Process,
        readers: list[tuple[asyncio.BaseTransport, LineReader]],
    ) -> None:
        self.proc = proc
        self.group = ProcessGroup(proc.pid)
        self._readers = readers

    @classmethod
    async def start(
        cls,
        argv: Sequence[str],
        *,
        env: Mapping[str, str],
        cwd: str | None,
        stdout: LinesHandler,
        stderr: LinesHandler,
        channel: LinesHandler | None = None,
        channel_max_line: int = MAX_LINE,
        memory_limit: int | None = None,
        with_stdin: bool = False,
    ) -> tuple[Child, int | None]:
        """Start `argv` in a new session; returns the child and, with `channel`, the
        number of an extra pipe's write end, inherited by the child under that number."""
        handlers = [(stdout, MAX_LINE), (stderr, MAX_LINE)]
        if channel is not None:
            handlers.append((channel, channel_max_line))
        pipes = [os.pipe() for _ in handlers]
        channel_fd = pipes[2][1] if channel is not None else None
        # The pipes are read before the child starts, so that once it runs there
        # is nothing left to await here: a cancellation from now on reaches `run()`,
        # which stops the whole group properly.
        files = [os.fdopen(read_end, "rb", buffering=0) for read_end, _ in pipes]
        readers: list[tuple[asyncio.BaseTransport, LineReader]] = []
        try:
            for file, (handler, max_line) in zip(files, handlers, strict=True):
                readers.append(await _connect(file, handler, max_line))
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.PIPE if with_stdin else asyncio.subprocess.DEVNULL,
                stdout=pipes[0][1],
                stderr=pipes[1][1],
                pass_fds=() if channel_fd is None else (channel_fd,),
                cwd=cwd,
                env=dict(env),
                start_new_session=True,
                preexec_fn=_memory_limiter(memory_limit),
            )
        except BaseException:
            for transport, _ in readers:
                transport.close()
            for file in files:
                file.close()
            raise
        finally:
            for _, write_end in pipes:
                os.close(write_end)
        return cls(proc, readers), channel_fd

    async def run(self, time_limit: float, kill_grace: float, notice: Notice) -> Ending:
        """Wait for the child; stop its whole group on timeout or cancellation.

        After a normal exit, processes it left running in its group are stopped
        too: a job must not leave daemons behind.
        """
        timer = asyncio.timeout(time_limit)
        try:
            async with timer:
                returncode: int | None = await self.proc.wait()
        except TimeoutError:
            if not timer.expired():
                raise
            notice(f"timed out after {format_seconds(time_limit)}: sending SIGTERM to the group")
            await self.group.terminate(kill_grace, notice)
            ending = Ending(await self._reap(), timed_out=True)
        except asyncio.CancelledError:
            notice("cancelled: sending SIGTERM to the group")
            try:
                await self.group.terminate(kill_grace, notice)
            finally:
                # Even after a second cancellation (terminate then SIGKILLs at once):
                # a child nobody waits for stays a zombie and its transport open.
                await self._reap()
            raise
        else:
            ending = Ending(returncode)
            if self.group.alive():
                notice("the process exited but left processes running in its group: stopping them")
                await self.group.terminate(kill_grace, notice)
        await self._drain(notice)
        return ending

    async def _reap(self) -> int | None:
        """The exit status of the (signalled) child, unless it will not go away."""
        try:
            return await asyncio.wait_for(self.proc.wait(), KILL_WAIT)
        except TimeoutError:
            return None

    async def _drain(self, notice: Notice) -> None:
        pending = [reader.done for _, reader in self._readers if not reader.done.done()]
        if not pending:
            return
        _, still_open = await asyncio.wait(pending, timeout=DRAIN_TIMEOUT)
        if still_open:
            notice("output pipes are held open by a process outside the group: not reading them")

    async def send_stdin(self, data: bytes) -> None:
        """Write `data` to the child's stdin and close it; a child that exited early is ignored."""
        stdin = self.proc.stdin
        if stdin is None:
            return
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            stdin.write(data)
            await stdin.drain()
        stdin.close()

    def close(self) -> None:
        """Kill what is left of the group and close every pipe. Safe to call twice."""
        self.group.signal(signal.SIGKILL)
        for transport, reader in self._readers:
            reader.detach()
            transport.close()
        self._readers.clear()
        if self.proc.stdin is not None:
            self.proc.stdin.close()
