"""Python targets, in a thread (sync), on the loop (async) and in a child process."""

from __future__ import annotations

import asyncio
import gc
import threading
import time
from typing import Any

import pytest

from clocktower.executors.base import FireContext, Outcome
from clocktower.executors.python import PythonExecutor
from clocktower.model import PythonTarget, RunState

from . import pytargets
from .conftest import MakeFire, RecordingSink
from .procs import live_in_group, running

MODES = ["thread", "process"]
TIMEOUT = 0.5
GRACE = 0.3


def call(name: str) -> str:
    return f"{pytargets.__name__}:{name}"


async def run(
    target: str | PythonTarget,
    fire: FireContext,
    sink: RecordingSink,
    mode: str = "thread",
    limit: float = 10,
) -> Outcome:
    if isinstance(target, str):
        target = PythonTarget(call(target), isolation=mode)  # type: ignore[arg-type]
    return await PythonExecutor().execute(target, fire, sink, timeout=limit, kill_grace=GRACE)


# --------------------------------------------------------------------------- finding the callable


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("target", "error"),
    [
        ("no_colon", "invalid call 'no_colon': expected 'package.module:function'"),
        (
            "clocktower_no_such_module:f",
            "cannot import 'clocktower_no_such_module:f': ModuleNotFoundError: "
            "No module named 'clocktower_no_such_module'",
        ),
        (
            call("missing"),
            f"cannot import {call('missing')!r}: AttributeError: "
            f"module {pytargets.__name__!r} has no attribute 'missing'",
        ),
        (call("NOT_CALLABLE"), f"{call('NOT_CALLABLE')!r} is a int, not a callable"),
    ],
)
async def test_a_callable_that_cannot_be_found_fails_permanently(
    fire: FireContext, sink: RecordingSink, mode: str, target: str, error: str
) -> None:
    outcome = await run(PythonTarget(target, isolation=mode), fire, sink)  # type: ignore[arg-type]
    assert outcome.state is RunState.FAILED
    assert outcome.permanent
    assert outcome.error == error


@pytest.mark.parametrize("mode", MODES)
async def test_arguments(fire: FireContext, sink: RecordingSink, mode: str) -> None:
    target = PythonTarget(call("add"), args=(2,), kwargs={"b": 3}, isolation=mode)  # type: ignore[arg-type]
    outcome = await run(target, fire, sink)
    assert outcome.state is RunState.SUCCEEDED
    assert outcome.result == 5


@pytest.mark.parametrize("mode", MODES)
async def test_arguments_that_do_not_fit_fail_permanently(
    fire: FireContext, sink: RecordingSink, mode: str
) -> None:
    target = PythonTarget(call("add"), kwargs={"c": 1}, isolation=mode)  # type: ignore[arg-type]
    outcome = await run(target, fire, sink)
    assert outcome.state is RunState.FAILED
    assert outcome.permanent
    assert outcome.error == (
        "arguments do not match add(a: 'int', b: 'int' = 0) -> 'int': "
        "missing a required argument: 'a'"
    )


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("name", "result"),
    [("by_annotation", "nightly"), ("Jobs.ping", "pong"), ("hello_async", "hi")],
)
async def test_callables(
    fire: FireContext, sink: RecordingSink, mode: str, name: str, result: str
) -> None:
    outcome = await run(name, fire, sink, mode)
    assert outcome.state is RunState.SUCCEEDED
    assert outcome.result == result


# --------------------------------------------------------------------------- context and results


@pytest.mark.parametrize("mode", MODES)
async def test_context_carries_payload_and_expanded_env(
    make_fire: MakeFire, sink: RecordingSink, mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CT_TEST_SECRET", "s3cret")
    fire = make_fire(payload={"days": 7}, env={"TOKEN": "${CT_TEST_SECRET}"})
    outcome = await run("describe_ctx", fire, sink, mode)
    assert outcome.result["payload"] == {"days": 7}
    assert outcome.result["env"] == {"TOKEN": "s3cret"}
    assert outcome.result["artifacts_dir"] == str(fire.artifacts_dir)


@pytest.mark.parametrize("mode", MODES)
async def test_artifacts(fire: FireContext, sink: RecordingSink, mode: str) -> None:
    outcome = await run("write_artifact", fire, sink, mode)
    assert outcome.state is RunState.SUCCEEDED
    assert (fire.artifacts_dir / "report.txt").read_text() == "done"


@pytest.mark.parametrize("mode", MODES)
async def test_a_function_that_keeps_no_files_gets_no_artifacts_folder(
    fire: FireContext, sink: RecordingSink, mode: str
) -> None:
    outcome = await run("hello", fire, sink, mode)
    assert outcome.state is RunState.SUCCEEDED
    assert not fire.artifacts_dir.exists()


@pytest.mark.parametrize("mode", MODES)
async def test_a_result_that_is_not_json_is_dropped(
    fire: FireContext, sink: RecordingSink, mode: str
) -> None:
    outcome = await run("unserializable", fire, sink, mode)
    assert outcome.state is RunState.SUCCEEDED
    assert outcome.result is None
    assert sink.text("log")[0].startswith("the return value (object) is not kept")


@pytest.mark.parametrize(
    ("value", "kept"),
    [(1.5, 1.5), (-0.0, 0.0), (7, 7), ("x", "x"), ([1, {"a": None}], [1, {"a": None}])],
)
async def test_a_json_result_is_kept(
    fire: FireContext, sink: RecordingSink, value: Any, kept: Any
) -> None:
    target = PythonTarget(call("echo"), kwargs={"value": value})
    outcome = await run(target, fire, sink)
    assert outcome.state is RunState.SUCCEEDED
    assert outcome.result == kept
    assert sink.text("log") == []


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
async def test_a_float_that_json_cannot_spell_is_dropped(
    fire: FireContext, sink: RecordingSink, value: float
) -> None:
    target = PythonTarget(call("echo"), kwargs={"value": value})
    outcome = await run(target, fire, sink)
    assert outcome.state is RunState.SUCCEEDED
    assert outcome.result is None
    assert sink.text("log")[0].startswith("the return value (float) is not kept")


@pytest.mark.parametrize("name", ["raise_timeout", "raise_timeout_async"])
async def test_a_timeout_error_of_the_function_itself_is_a_failure(
    fire: FireContext, sink: RecordingSink, name: str
) -> None:
    outcome = await run(name, fire, sink)
    assert outcome.state is RunState.FAILED
    assert outcome.error == "TimeoutError: upstream was slow"


async def test_a_stop_asked_before_waiting_ends_the_wait_at_once(
    fire: FireContext, sink: RecordingSink
) -> None:
    outcome = await run("stop_then_wait", fire, sink)
    assert outcome.result == [True, True]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("name", "state", "error"),
    [("exit_clean", RunState.SUCCEEDED, None), ("exit_3", RunState.FAILED, "SystemExit: 3")],
)
async def test_sys_exit(
    fire: FireContext, sink: RecordingSink, mode: str, name: str, state: RunState, error: Any
) -> None:
    outcome = await run(name, fire, sink, mode)
    assert outcome.state is state
    assert outcome.error == error


# --------------------------------------------------------------------------- thread mode


async def test_a_timed_out_thread_is_asked_to_stop_and_abandoned(
    fire: FireContext, sink: RecordingSink
) -> None:
    outcome = await run("wait_for_stop", fire, sink, limit=TIMEOUT)
    assert outcome.state is RunState.TIMED_OUT
    assert sink.text("log")[-1].startswith("timed out: the function runs in a thread")
    await _thread_ends("clocktower-nightly-42")


async def test_an_abandoned_thread_does_not_hold_up_the_next_call(
    make_fire: MakeFire, sink: RecordingSink
) -> None:
    stuck = make_fire(run_id=1)
    release = threading.Event()
    target = PythonTarget(call("wait_for_event"), kwargs={"name": "test-release"})
    pytargets.EVENTS["test-release"] = release
    try:
        outcome = await run(target, stuck, sink, limit=TIMEOUT)
        assert outcome.state is RunState.TIMED_OUT
        # The first call still holds its thread; the next one runs all the same.
        follower = await run("hello", make_fire(run_id=2), sink)
        assert follower.state is RunState.SUCCEEDED
    finally:
        release.set()


async def test_a_sync_function_runs_in_a_thread_named_after_its_run(
    make_fire: MakeFire, sink: RecordingSink
) -> None:
    for run_id in range(1, 6):
        outcome = await run("which_thread", make_fire(run_id=run_id), sink)
        name, _ = outcome.result
        assert name == f"clocktower-nightly-{run_id}"  # named after the run it serves


async def test_an_async_function_is_cancelled_on_timeout(
    fire: FireContext, sink: RecordingSink
) -> None:
    outcome = await run("sleep_async", fire, sink, limit=TIMEOUT)
    assert outcome.state is RunState.TIMED_OUT
    assert outcome.error == "timed out after 0.5s"
    assert not any("thread" in line for line in sink.text("log"))


async def test_an_abandoned_thread_cannot_write_into_the_ended_run(
    fire: FireContext, sink: RecordingSink
) -> None:
    outcome = await run("log_after_stop", fire, sink, limit=TIMEOUT)
    assert outcome.state is RunState.TIMED_OUT
    await _thread_ends("clocktower-nightly-42")
    await asyncio.sleep(0)  # let anything the thread queued on the loop be delivered
    assert "INFO late" not in sink.text("log")


async def _thread_ends(name: str) -> None:
    """Wait until the abandoned call returns: its worker thread then goes idle
    under another name (or ends)."""
    deadline = time.monotonic() + 5
    while any(thread.name == name for thread in threading.enumerate()):
        assert time.monotonic() < deadline, f"the call in thread {name!r} did not return"
        await asyncio.sleep(0.01)


# --------------------------------------------------------------------------- process mode


async def test_process_mode_kills_a_function_that_ignores_sigterm(
    fire: FireContext, sink: RecordingSink
) -> None:
    outcome = await run("ignore_sigterm", fire, sink, "process", limit=TIMEOUT)
    assert outcome.state is RunState.TIMED_OUT
    pid = int(sink.text("log")[0].split()[-1])
    assert live_in_group(pid) == []
    assert sink.text("log")[-1] == "still running 0.3s after SIGTERM: sending SIGKILL"


async def test_process_mode_sigterm_lets_the_function_clean_up(
    fire: FireContext, sink: RecordingSink
) -> None:
    outcome = await run("clean_up_when_stopped", fire, sink, "process", limit=TIMEOUT)
    assert outcome.state is RunState.TIMED_OUT
    assert (fire.artifacts_dir / "cleanup.txt").read_text() == "stop requested: True"
    assert sink.text("stderr")[-1] == (
        "SystemExit: stopped by SIGTERM (the run timed out or was cancelled)"
    )
    assert not any("SIGKILL" in line for line in sink.text("log"))


async def test_process_mode_captures_prints(fire: FireContext, sink: RecordingSink) -> None:
    outcome = await run("prints", fire, sink, "process")
    assert outcome.state is RunState.SUCCEEDED
    assert sink.text("stdout") == ["to stdout"]
    assert sink.text("stderr") == ["to stderr"]


async def test_process_mode_environment(fire: FireContext, sink: RecordingSink) -> None:
    target = PythonTarget(call("environment"), args=("CLOCKTOWER_JOB",), isolation="process")
    outcome = await run(target, fire, sink)
    assert outcome.result == "nightly"


async def test_process_mode_stdin_is_empty(fire: FireContext, sink: RecordingSink) -> None:
    outcome = await run("read_stdin", fire, sink, "process")
    assert outcome.result == ""


async def test_process_mode_stops_processes_left_behind(
    fire: FireContext, sink: RecordingSink
) -> None:
    outcome = await run("leave_child", fire, sink, "process")
    assert outcome.state is RunState.SUCCEEDED
    assert not running(outcome.result)


async def test_process_mode_a_crash(fire: FireContext, sink: RecordingSink) -> None:
    outcome = await run("crash", fire, sink, "process")
    assert outcome.state is RunState.FAILED
    assert not outcome.permanent
    assert outcome.error == "the python process killed by signal SIGKILL before returning"


async def test_process_mode_needs_json_arguments(fire: FireContext, sink: RecordingSink) -> None:
    target = PythonTarget(call("add"), args=(object(),), isolation="process")
    outcome = await run(target, fire, sink)
    assert outcome.state is RunState.FAILED
    assert outcome.permanent
    assert outcome.error is not None
    assert outcome.error.startswith('args must be JSON with isolation = "process"')


async def test_process_mode_memory_limit(fire: FireContext, sink: RecordingSink) -> None:
    limit = 512 * 1024 * 1024

    def target(size: int) -> PythonTarget:
        return PythonTarget(call("allocate"), args=(size,), isolation="process", memory_limit=limit)

    small = await run(target(16 * 1024 * 1024), fire, sink)
    assert small.state is RunState.SUCCEEDED
    big = await run(target(2 * limit), fire, sink)
    assert big.state is RunState.FAILED
    assert big.error == "MemoryError"


def test_an_event_loop_that_ran_sync_targets_is_not_kept_alive(
    make_fire: MakeFire, sink: RecordingSink
) -> None:
    """Applications embedding Clocktower may run and close many loops."""
    from clocktower.executors import python

    def one_loop() -> None:
        async def main() -> Outcome:
            return await run("hello", make_fire(run_id=7), sink)

        assert asyncio.run(main()).state is RunState.SUCCEEDED

    before = len(python._RETURNS)
    for _ in range(3):
        one_loop()
    gc.collect()
    assert len(python._RETURNS) <= before
