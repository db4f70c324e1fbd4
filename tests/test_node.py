"""What a node does when it starts: the stored jobs it checks, how it logs."""

from __future__ import annotations

import errno
import importlib
import io
import logging
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from clocktower.node import _Lines, _Listener, mark_broken_jobs
from clocktower.service import Service
from clocktower.store import Store


def test_a_python_job_that_no_longer_imports_is_kept_and_marked_broken(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    module = tmp_path / "ct_nightly_tasks.py"
    module.write_text("def run():\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    service = Service(store)
    service.create_job(
        {"call": "ct_nightly_tasks:run", "cron": "0 3 * * *"}, job_id="py", actor="t"
    )
    service.create_job({"command": "true", "cron": "0 3 * * *"}, job_id="sh", actor="t")
    assert store.get_job("py").broken is None

    module.unlink()  # a deploy removed the module, and the server restarted
    restart(monkeypatch, "ct_nightly_tasks")
    with caplog.at_level(logging.ERROR, logger="clocktower"):
        mark_broken_jobs(service)
    broken = store.get_job("py")
    why = (
        "cannot import 'ct_nightly_tasks:run': "
        "ModuleNotFoundError: No module named 'ct_nightly_tasks'"
    )
    assert broken.broken == why
    reported = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert reported == [f"job py is broken: {why}"]
    assert [j.id for j in store.list_jobs()] == ["py", "sh"]  # kept, never deleted
    assert store.get_job("sh").broken is None

    module.write_text("def run():\n    pass\n")  # and the next deploy brought it back
    restart(monkeypatch, "ct_nightly_tasks")
    mark_broken_jobs(service)
    assert store.get_job("py").broken is None


def restart(monkeypatch: pytest.MonkeyPatch, module: str) -> None:
    """Forget `module`, as a server started afresh has not imported it."""
    monkeypatch.delitem(sys.modules, module, raising=False)
    importlib.invalidate_caches()


@pytest.mark.parametrize(
    ("source", "why"),
    [
        (
            "import ct_not_installed\n\ndef run():\n    pass\n",
            "cannot import 'ct_tasks_{n}:run': "
            "ModuleNotFoundError: No module named 'ct_not_installed'",
        ),
        ("def build():\n    pass\n", "cannot import 'ct_tasks_{n}:run': AttributeError: "),
    ],
    ids=["its-dependency-is-gone", "its-function-was-renamed"],
)
def test_a_python_job_whose_module_exists_but_does_not_import_is_marked_broken(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: str, why: str
) -> None:
    n = len(why)  # a module name of its own for each case
    module = tmp_path / f"ct_tasks_{n}.py"
    module.write_text("def run():\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    service = Service(store)
    service.create_job({"call": f"ct_tasks_{n}:run"}, job_id="py", actor="t")
    assert store.get_job("py").broken is None

    module.write_text(source)
    restart(monkeypatch, f"ct_tasks_{n}")
    mark_broken_jobs(service)
    broken = store.get_job("py").broken
    assert broken is not None and broken.startswith(why.format(n=n))


def test_a_process_that_does_not_check_imports_never_marks_a_job_broken(
    store: Store, tmp_path: Path
) -> None:
    """A CLI command, started from any folder, cannot tell what the server
    can import: a job it adds is left for the server to judge."""
    service = Service(store, checks_imports=False)
    service.create_job({"call": "ct_only_on_the_server:run"}, job_id="py", actor="t")
    assert store.get_job("py").broken is None
    assert Service(store).broken_reason(store.get_job("py").spec) == (
        "cannot import 'ct_only_on_the_server:run': "
        "ModuleNotFoundError: No module named 'ct_only_on_the_server'"
    )


LOGS = """
import logging
from clocktower.node import configure_logging

configure_logging("info")
log = logging.getLogger("clocktower.engine")
pending = [1, 2]
log.info("runs waiting: %s", pending)
pending.append(3)  # after the call: the line says what was true when it was logged
log.debug("not shown at info")
try:
    1 / 0
except ZeroDivisionError:
    log.exception("run 7 of nightly failed inside the engine")
"""


def test_serve_logs_each_line_as_it_was_when_logged_with_tracebacks() -> None:
    done = subprocess.run([sys.executable, "-c", LOGS], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert lines[0].endswith("INFO    clocktower.engine: runs waiting: [1, 2]")
    assert lines[1].endswith("ERROR   clocktower.engine: run 7 of nightly failed inside the engine")
    assert lines[-1] == "ZeroDivisionError: division by zero"
    assert "not shown" not in done.stderr


LOG_THEN_WAIT = """
import logging, sys
from clocktower.node import configure_logging

configure_logging("info")
log = logging.getLogger("clocktower.engine")
for n in range(5000):
    log.info("run %d succeeded", n)
log.info("waiting")
sys.stdin.readline()  # the lines above must be out before this returns
log.info("last")
"""


def test_serve_writes_log_lines_while_it_runs_in_order_and_all_at_exit() -> None:
    with subprocess.Popen(
        [sys.executable, "-c", LOG_THEN_WAIT],
        stdin=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        assert proc.stdin is not None and proc.stderr is not None
        watchdog = threading.Timer(30, proc.kill)  # lines held back would block the reads
        watchdog.start()
        try:
            seen = [proc.stderr.readline() for _ in range(5001)]
            assert [line.rsplit(": ", 1)[1] for line in seen] == [
                *(f"run {n} succeeded\n" for n in range(5000)),
                "waiting\n",
            ]
            proc.stdin.write("go\n")
            proc.stdin.close()
            assert proc.stderr.read().endswith("clocktower.engine: last\n")
            assert proc.wait(60) == 0
        finally:
            watchdog.cancel()
            proc.kill()


class _FullDisk(io.StringIO):
    """A stream whose first write fails, as on a full disk."""

    def __init__(self) -> None:
        super().__init__()
        self.failures = 1

    def write(self, text: str) -> int:
        if self.failures:
            self.failures -= 1
            raise OSError(errno.ENOSPC, "No space left on device")
        return super().write(text)


def test_serve_keeps_logging_after_a_write_fails() -> None:
    records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    lines = _Lines()
    stream = _FullDisk()
    lines.setStream(stream)
    lines.setFormatter(logging.Formatter("%(message)s"))
    listener = _Listener(records, lines)
    listener.start()
    try:
        records.put(logging.makeLogRecord({"msg": "lost"}))
        deadline = time.monotonic() + 30
        while stream.failures:  # until the failed write
            assert time.monotonic() < deadline, "the log thread never wrote"
            time.sleep(0.01)
        records.put(logging.makeLogRecord({"msg": "written"}))
    finally:
        listener.stop()  # writes what is left, from a thread that is still there
    assert stream.getvalue() == "written\n"
