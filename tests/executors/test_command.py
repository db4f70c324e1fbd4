"""Command targets: process groups, environment, output and limits, with real processes."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest

from clocktower.executors import _process
from clocktower.executors.base import FireContext, Outcome
from clocktower.executors.command import CommandExecutor
from clocktower.model import CommandTarget, HttpTarget, RunState

from .conftest import MakeFire, RecordingSink
from .procs import exists, live_in_group, running, wait_gone

GRACE = 0.3


async def run(
    command: str, fire: FireContext, sink: RecordingSink, *, limit: float = 10, **options: object
) -> Outcome:
    target = CommandTarget(command, **options)  # type: ignore[arg-type]
    return await CommandExecutor().execute(target, fire, sink, timeout=limit, kill_grace=GRACE)


def first_pid(sink: RecordingSink) -> int:
    return int(sink.text("stdout")[0])


# --------------------------------------------------------------------------- process group


async def test_timeout_kills_children_that_ignore_sigterm(
    fire: FireContext, sink: RecordingSink
) -> None:
    command = 'echo $$; trap "" TERM; sleep 1000 & echo $!; sleep 1000; wait'
    outcome = await run(command, fire, sink, limit=0.3)
    assert outcome.state is RunState.TIMED_OUT
    assert outcome.error == "timed out after 0.3s"
    assert outcome.exit_code == -signal.SIGKILL
    shell, child = (int(pid) for pid in sink.text("stdout"))
    assert live_in_group(shell) == []
    assert not running(child)
    assert sink.text("log") == [
        "timed out after 0.3s: sending SIGTERM to the group",
        "still running 0.3s after SIGTERM: sending SIGKILL",
    ]


async def test_a_group_that_obeys_sigterm_is_not_sigkilled(
    fire: FireContext, sink: RecordingSink
) -> None:
    outcome = await run("echo $$; sleep 1000 & sleep 1000", fire, sink, limit=0.3)
    assert outcome.state is RunState.TIMED_OUT
    assert outcome.exit_code == -signal.SIGTERM
    assert live_in_group(first_pid(sink)) == []
    assert not any("SIGKILL" in line for line in sink.text("log"))


async def test_processes_left_behind_after_exit_are_stopped(
    fire: FireContext, sink: RecordingSink
) -> None:
    command = 'echo $$; sleep 1000 & (trap "" TERM; exec sleep 1000) & echo started'
    outcome = await run(command, fire, sink)
    assert outcome.state is RunState.SUCCEEDED
    assert live_in_group(first_pid(sink)) == []
    assert sink.text("log")[0] == (
        "the process exited but left processes running in its group: stopping them"
    )


async def test_cancellation_stops_the_group_then_propagates(
    fire: FireContext, sink: RecordingSink
) -> None:
    target = CommandTarget('echo $$; trap "" TERM; sleep 1000 & sleep 1000; wait')
    task = asyncio.create_task(
        CommandExecutor().execute(target, fire, sink, timeout=60, kill_grace=GRACE)
    )
    pgid = int(await sink.wait_for_line(""))
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert live_in_group(pgid) == []
    assert sink.text("log")[0] == "cancelled: sending SIGTERM to the group"


async def test_a_second_cancellation_during_the_grace_kills_at_once(
    fire: FireContext, sink: RecordingSink
) -> None:
    target = CommandTarget('echo $$; trap "" TERM; sleep 1000')
    task = asyncio.create_task(
        CommandExecutor().execute(target, fire, sink, timeout=60, kill_grace=60)
    )
    pgid = int(await sink.wait_for_line(""))
    task.cancel()
    await sink.wait_for_line("cancelled")
    task.cancel()
    async with asyncio.timeout(5):  # not the 60 s grace
        with pytest.raises(asyncio.CancelledError):
            await task
    assert not exists(pgid)  # the shell was reaped, not left a zombie
    assert await wait_gone(pgid) == []


async def test_a_process_escaping_the_group_does_not_hold_up_the_run(
    fire: FireContext, sink: RecordingSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_process, "DRAIN_TIMEOUT", 0.2)
    escape = (
        "import subprocess; print(subprocess.Popen(['sleep', '1000'], start_new_session=True).pid)"
    )
    outcome = await run(f'{sys.executable} -c "{escape}"', fire, sink)
    escaped = first_pid(sink)
    try:
        assert outcome.state is RunState.SUCCEEDED
        assert sink.text("log") == [
            "output pipes are held open by a process outside the group: not reading them"
        ]
    finally:
        os.kill(escaped, signal.SIGKILL)


# --------------------------------------------------------------------------- exit status


async def test_killed_by_a_signal(fire: FireContext, sink: RecordingSink) -> None:
    outcome = await run("kill -KILL $$", fire, sink)
    assert outcome.state is RunState.FAILED
    assert outcome.exit_code == -signal.SIGKILL
    assert outcome.error == "killed by signal SIGKILL"


async def test_stdin_is_empty(fire: FireContext, sink: RecordingSink) -> None:
    outcome = await run("cat; echo done", fire, sink)
    assert outcome.state is RunState.SUCCEEDED
    assert sink.text("stdout") == ["done"]


async def test_working_directory(fire: FireContext, sink: RecordingSink, tmp_path: Path) -> None:
    outcome = await run("pwd", fire, sink, cwd=str(tmp_path))
    assert outcome.state is RunState.SUCCEEDED
    assert sink.text("stdout") == [str(tmp_path)]


async def test_missing_working_directory_is_permanent(
    fire: FireContext, sink: RecordingSink, tmp_path: Path
) -> None:
    missing = str(tmp_path / "nowhere")
    outcome = await run("pwd", fire, sink, cwd=missing)
    assert outcome.state is RunState.FAILED
    assert outcome.permanent
    assert outcome.error == f"working directory {missing!r} does not exist"


async def test_wrong_target_kind_is_a_programming_error(fire: FireContext) -> None:
    with pytest.raises(TypeError):
        await CommandExecutor().execute(
            HttpTarget("http://x"), fire, RecordingSink(), timeout=1, kill_grace=1
        )


# --------------------------------------------------------------------------- environment


async def test_environment_layers_and_expansion(
    make_fire: MakeFire, sink: RecordingSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CT_TEST_SERVER", "server")
    monkeypatch.setenv("CT_TEST_SECRET", "s3cret")
    fire = make_fire(env={"B": "job", "CLOCKTOWER_JOB": "spoofed", "C": "${CT_TEST_SECRET}"})
    env = {"A": "target", "B": "target", "TOKEN": "Bearer ${CT_TEST_SECRET}"}
    outcome = await run(
        'echo "$CT_TEST_SERVER|$A|$B|$C|$TOKEN|$CLOCKTOWER_JOB"', fire, sink, env=env
    )
    assert outcome.state is RunState.SUCCEEDED
    assert sink.text("stdout") == ["server|target|job|s3cret|Bearer s3cret|nightly"]


async def test_the_command_line_is_left_to_the_shell(
    fire: FireContext, sink: RecordingSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CT_TEST_UNSET", raising=False)
    outcome = await run('echo "[${CT_TEST_UNSET}]"', fire, sink)
    assert outcome.state is RunState.SUCCEEDED
    assert sink.text("stdout") == ["[]"]


async def test_an_unset_variable_fails_permanently_before_starting(
    fire: FireContext, sink: RecordingSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CT_TEST_UNSET", raising=False)
    outcome = await run("touch started", fire, sink, env={"TOKEN": "${CT_TEST_UNSET}"})
    assert outcome.state is RunState.FAILED
    assert outcome.permanent
    assert outcome.error == (
        "environment variable 'CT_TEST_UNSET' is not set on the server (used in env 'TOKEN')"
    )
    assert not fire.artifacts_dir.exists()


async def test_artifacts_directory_is_created(fire: FireContext, sink: RecordingSink) -> None:
    outcome = await run('echo data > "$CLOCKTOWER_ARTIFACTS/report.txt"', fire, sink)
    assert outcome.state is RunState.SUCCEEDED
    assert (fire.artifacts_dir / "report.txt").read_text() == "data\n"


# --------------------------------------------------------------------------- output


async def test_stdout_and_stderr_are_captured_line_by_line(
    fire: FireContext, sink: RecordingSink
) -> None:
    outcome = await run("echo one; echo two >&2; printf 'three\\r\\nfour'", fire, sink)
    assert outcome.state is RunState.SUCCEEDED
    assert sink.text("stdout") == ["one", "three", "four"]
    assert sink.text("stderr") == ["two"]


async def test_a_very_long_line_is_split(fire: FireContext, sink: RecordingSink) -> None:
    outcome = await run("head -c 200000 /dev/zero | tr '\\0' x; echo; echo end", fire, sink)
    assert outcome.state is RunState.SUCCEEDED
    lengths = [len(line) for line in sink.text("stdout")]
    assert lengths == [65536, 65536, 65536, 200000 - 3 * 65536, 3]


async def test_progress_lines(fire: FireContext, sink: RecordingSink) -> None:
    command = (
        "echo '::progress 40%'; echo '::progress 2.5 / 10'; echo '::progress soon'; "
        "echo '::progress 7' >&2"
    )
    outcome = await run(command, fire, sink)
    assert outcome.state is RunState.SUCCEEDED
    assert sink.progress_updates == [(40, 100), (2.5, 10)]
    assert sink.text("stdout") == ["::progress soon"]
    assert sink.text("stderr") == ["::progress 7"]


# --------------------------------------------------------------------------- memory


async def test_memory_limit(fire: FireContext, sink: RecordingSink) -> None:
    limit = 512 * 1024 * 1024
    allocate = f"{sys.executable} -c 'bytearray({{}})'"
    small = await run(allocate.format(16 * 1024 * 1024), fire, sink, memory_limit=limit)
    assert small.state is RunState.SUCCEEDED
    big = await run(allocate.format(2 * limit), fire, sink, memory_limit=limit)
    assert big.state is RunState.FAILED
    assert big.exit_code == 1
    assert sink.text("stderr")[-1] == "MemoryError"
