"""Whole `clocktower serve` processes: SIGKILL, SIGTERM, several nodes, live changes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from clocktower.model import Run, RunState, TriggerKind
from clocktower.store import Store

from .nodes import BIN, Node, cli, dump, eventually

pytestmark = pytest.mark.slow


@pytest.fixture
def nodes() -> Iterator[list[Node]]:
    started: list[Node] = []
    yield started
    for node in started:
        node.stop()


@pytest.fixture
def db(store: Store) -> Store:
    """The test's store (migrated), shared with the node processes."""
    return store


def start(nodes: list[Node], db: Store, tmp_path: Path, name: str, **kw: object) -> Node:
    node = Node(db.url, tmp_path / f"{name}.log", name=name, **kw)  # type: ignore[arg-type]
    nodes.append(node)
    return node


def test_a_job_added_from_another_process_runs_without_restart(
    db: Store, tmp_path: Path, nodes: list[Node]
) -> None:
    start(nodes, db, tmp_path, "a")
    eventually(db.list_nodes, what="node heartbeat")
    cli("jobs", "add", "tick", "--command", "echo tick", "--every", "1s", database=db.url)
    run = eventually(
        lambda: [r for r in db.list_runs(job_id="tick") if r.state is RunState.SUCCEEDED],
        what="a run of the new job",
    )[0]
    assert run.started_at is not None and run.started_at >= run.scheduled_for


def test_edits_pauses_and_deletes_from_another_process_reach_a_running_node(
    db: Store, tmp_path: Path, nodes: list[Node]
) -> None:
    """Each change made by the CLI in its own process reaches a node that is
    already running. A second job, `witness`, runs every second throughout: a
    run of it for a later fire time shows the node has gone past that moment."""
    start(nodes, db, tmp_path, "a")
    eventually(db.list_nodes, what="node heartbeat")
    cli("jobs", "add", "witness", "--command", "true", "--every", "1s", database=db.url)
    cli("jobs", "add", "tick", "--command", "echo old", "--every", "1s", database=db.url)

    def ran(text: str) -> list[Run]:
        return [
            r
            for r in db.list_runs(job_id="tick", states=[RunState.SUCCEEDED], limit=20)
            if "\n".join(t for c in db.read_output(r.id)[0] for _, _, t in c.lines) == text
        ]

    def node_passed(instant: datetime) -> bool:
        done = db.list_runs(job_id="witness", states=[RunState.SUCCEEDED], limit=1)
        return bool(done) and done[0].scheduled_for > instant + timedelta(seconds=2)

    eventually(lambda: ran("old"), what="a run of the job as added")
    cli("jobs", "edit", "tick", "--set", "command=echo new", database=db.url)
    eventually(lambda: ran("new"), what="a run of the job as edited")

    cli("jobs", "pause", "tick", database=db.url)
    paused_at = db.get_job("tick").paused_at
    assert paused_at is not None
    eventually(lambda: node_passed(paused_at), what="fire times after the pause")
    fired = [
        r
        for r in db.list_runs(job_id="tick", limit=50)
        if r.scheduled_for >= paused_at and r.state is not RunState.SKIPPED
    ]
    assert fired == [], "a paused job fired"  # runs created ahead are skipped

    cli("jobs", "resume", "tick", database=db.url)
    eventually(
        lambda: [r for r in ran("new") if r.scheduled_for > paused_at],
        what="a run after resuming",
    )
    cli("jobs", "rm", "tick", database=db.url)
    removed_at = datetime.now(UTC)
    eventually(lambda: node_passed(removed_at), what="fire times after the removal")
    fired = [
        r
        for r in db.list_runs(job_id="tick", limit=50)
        if r.scheduled_for > removed_at and r.state is not RunState.CANCELLED
    ]
    assert fired == [], "a removed job fired"  # runs created ahead are cancelled


def test_sigkilled_node_run_is_lost_then_retried_elsewhere(
    db: Store, tmp_path: Path, nodes: list[Node]
) -> None:
    cli(
        "jobs",
        "add",
        "fragile",
        "--command",
        'test "$CLOCKTOWER_ATTEMPT" = 2 || sleep 4',
        "--set",
        "retries=1",
        "--set",
        "retry_delay=1s",
        database=db.url,
    )
    a = start(nodes, db, tmp_path, "a")
    cli("trigger", "fragile", database=db.url)
    first = eventually(
        lambda: [r for r in db.list_runs(job_id="fragile") if r.state is RunState.RUNNING],
        what="the run to start on node a",
    )[0]
    assert first.node == "a"
    a.kill()  # SIGKILL: no goodbye, no lease release
    start(nodes, db, tmp_path, "b")
    lost = eventually(
        lambda: (r := db.get_run(first.id)).state is RunState.LOST and r,
        timeout=30,
        what="the run to be declared lost",
    )
    assert "stopped renewing its lease" in (lost.error or "")
    retry = eventually(
        lambda: [
            r
            for r in db.list_runs(job_id="fragile", trigger=TriggerKind.RETRY)
            if r.state is RunState.SUCCEEDED
        ],
        timeout=30,
        what="the retry to succeed on node b",
    )[0]
    assert (retry.attempt, retry.retry_of, retry.node) == (2, first.id, "b")


def test_a_run_longer_than_its_lease_lives_while_its_node_renews_it(
    db: Store, tmp_path: Path, nodes: list[Node]
) -> None:
    """The nodes here hold leases of 3 s; a run of 7 s is renewed, not lost."""
    cli("jobs", "add", "long", "--command", "sleep 7; echo done", database=db.url)
    start(nodes, db, tmp_path, "a")
    cli("trigger", "long", database=db.url)
    running = eventually(
        lambda: [r for r in db.list_runs(job_id="long") if r.state is RunState.RUNNING],
        what="the run to start",
    )[0]
    assert running.lease_until is not None
    renewed = eventually(
        lambda: (
            (r := db.get_run(running.id)).lease_until is not None
            and running.lease_until < r.lease_until
            and r
        ),
        what="the lease to be renewed",
    )
    assert renewed.state is RunState.RUNNING
    done = eventually(
        lambda: (r := db.get_run(running.id)).state.final and r,
        timeout=30,
        what="the run to end",
    )
    assert done.state is RunState.SUCCEEDED, dump(nodes)
    assert done.finished_at is not None and running.lease_until < done.finished_at


def test_sigterm_lets_a_running_run_finish(db: Store, tmp_path: Path, nodes: list[Node]) -> None:
    cli("jobs", "add", "report", "--command", "sleep 2; echo done", database=db.url)
    a = start(nodes, db, tmp_path, "a")
    run_id = int(
        cli("trigger", "report", "--json", database=db.url).stdout.split('"id": ')[1].split(",")[0]
    )
    eventually(lambda: db.get_run(run_id).state is RunState.RUNNING, what="run started")
    a.signal(signal.SIGTERM)
    assert a.wait(30) == 0, dump(nodes)
    run = db.get_run(run_id)
    assert run.state is RunState.SUCCEEDED, dump(nodes)


def test_sigterm_interrupts_after_the_grace_and_the_retry_policy_applies(
    db: Store, tmp_path: Path, nodes: list[Node]
) -> None:
    cli(
        "jobs",
        "add",
        "long",
        "--command",
        "sleep 60",
        "--set",
        "retries=1",
        "--set",
        "kill_grace=1s",
        database=db.url,
    )
    a = start(nodes, db, tmp_path, "a", env={"CLOCKTOWER_SHUTDOWN_GRACE": "1"})
    cli("trigger", "long", database=db.url)
    run = eventually(
        lambda: [r for r in db.list_runs(job_id="long") if r.state is RunState.RUNNING],
        what="run started",
    )[0]
    a.signal(signal.SIGTERM)
    assert a.wait(30) == 0, dump(nodes)
    ended = db.get_run(run.id)
    assert ended.state is RunState.FAILED and "interrupted" in (ended.error or "")
    (retry,) = db.list_runs(job_id="long", trigger=TriggerKind.RETRY)
    assert retry.state is RunState.SCHEDULED and retry.attempt == 2


def test_a_second_signal_stops_at_once(db: Store, tmp_path: Path, nodes: list[Node]) -> None:
    cli("jobs", "add", "long", "--command", "sleep 60", "--set", "kill_grace=1s", database=db.url)
    a = start(nodes, db, tmp_path, "a")  # shutdown grace: 30 s
    cli("trigger", "long", database=db.url)
    eventually(
        lambda: [r for r in db.list_runs(job_id="long") if r.state is RunState.RUNNING],
        what="run started",
    )
    a.signal(signal.SIGTERM)
    eventually(lambda: "draining" in a.log(), what="drain to begin")
    a.signal(signal.SIGINT)
    assert a.wait(20) == 0, dump(nodes)
    (run,) = db.list_runs(job_id="long")
    assert run.state is RunState.FAILED and "interrupted" in (run.error or "")


def test_a_broken_config_names_its_field_and_changes_nothing(
    db: Store, tmp_path: Path, nodes: list[Node]
) -> None:
    good = tmp_path / "clocktower.toml"
    good.write_text('[jobs.nightly]\ncommand = "true"\ncron = "0 3 * * *"\n')
    cli("check", str(good), database=db.url)
    node = start(nodes, db, tmp_path, "a", config=good)  # the deployed config
    applied = eventually(lambda: db.list_jobs(), what="the config's job")
    node.signal(signal.SIGTERM)
    assert node.wait(30) == 0, dump(nodes)
    bad = tmp_path / "broken.toml"
    bad.write_text(  # the next deploy: one job edited, two broken ones added
        '[jobs.nightly]\ncommand = "true"\ncron = "0 4 * * *"\n'
        '[jobs.other]\ncommand = "true"\ncron = "61 * * * *"\n'
        '[jobs.third]\ncommand = "true"\ntimout = "5m"\n'
    )
    checked = cli("check", str(bad), database=db.url, check=False)
    assert checked.returncode == 1
    assert "job 'other', field 'cron': minute: 61 is out of range 0-59" in checked.stderr
    assert "unknown field 'timout'; did you mean 'timeout'?" in checked.stderr
    served = cli("serve", "--no-http", "--config", str(bad), database=db.url, check=False)
    assert served.returncode == 2
    assert str(bad) in served.stderr and "'other'" in served.stderr
    assert db.list_jobs() == applied  # nothing half-applied: the edit is not in either


@pytest.mark.postgres
def test_two_nodes_share_an_every_second_job_exactly_once(
    postgres_url: str, tmp_path: Path, nodes: list[Node]
) -> None:
    store_url = postgres_url
    db = Store(store_url)
    try:
        db.upgrade()
        seconds = int(os.environ.get("CLOCKTOWER_SOAK_SECONDS", "120"))
        # overlap = allow: every fire time must run, even when a node is slow to
        # record the previous outcome on a loaded machine.
        cli(
            "jobs",
            "add",
            "pulse",
            "--command",
            "true",
            "--every",
            "1s",
            "--set",
            "overlap=allow",
            "--set",
            "max_concurrency=5",
            database=store_url,
        )
        start(nodes, db, tmp_path, "a")
        start(nodes, db, tmp_path, "b")
        first = eventually(
            lambda: db.list_runs(job_id="pulse", states=[RunState.SUCCEEDED], limit=1),
            what="a run",
        )[0]
        end = first.scheduled_for + timedelta(seconds=seconds)
        eventually(
            lambda: any(
                r.scheduled_for >= end and r.state.final
                for r in db.list_runs(job_id="pulse", limit=5)
            ),
            timeout=seconds + 60,
            what="the soak to finish",
        )
        runs = {
            r.scheduled_for: r
            for r in db.list_runs(job_id="pulse", limit=100_000)
            if first.scheduled_for <= r.scheduled_for <= end
        }
        per_fire_time = Counter(
            r.scheduled_for
            for r in db.list_runs(job_id="pulse", limit=100_000)
            if first.scheduled_for <= r.scheduled_for <= end
        )
        assert set(per_fire_time.values()) == {1}, "a fire time ran twice"
        assert len(per_fire_time) == seconds + 1, "a fire time was missed"
        failed = [r for r in runs.values() if r.state is not RunState.SUCCEEDED]
        assert failed == [], dump(nodes)  # every fire time ran, and succeeded
        assert {r.node for r in runs.values()} == {"a", "b"}  # both nodes took work
    finally:
        db.close()


def test_a_long_output_keeps_its_head_and_tail_within_the_default_cap(
    db: Store, tmp_path: Path, nodes: list[Node]
) -> None:
    """`seq 1 200000` prints 1.3 MB; the default cap is 1 MiB: `clocktower logs`
    shows how it started, marks the cut, and shows how it ended."""
    cli("jobs", "add", "chatty", "--command", "seq 1 200000", database=db.url)
    start(nodes, db, tmp_path, "a")
    cli("trigger", "chatty", database=db.url)
    run = eventually(
        lambda: [r for r in db.list_runs(job_id="chatty") if r.state.final],
        timeout=60,
        what="the run to end",
    )[0]
    assert run.state is RunState.SUCCEEDED, dump(nodes)
    shown = cli("logs", str(run.id), database=db.url).stdout.splitlines()
    (cut,) = [i for i, line in enumerate(shown) if "bytes of output omitted" in line]
    head, tail = shown[:cut], shown[cut + 1 :]
    assert head[:3] == ["1", "2", "3"] and tail[-3:] == ["199998", "199999", "200000"]
    kept = sum(len(line) + 1 for line in head + tail)
    omitted = int(shown[cut].split()[1])
    assert kept + omitted == sum(len(str(n)) + 1 for n in range(1, 200001))  # nothing else lost
    assert kept <= 1 << 20
    assert [int(n) for n in head] == list(range(1, len(head) + 1))  # the head, unbroken
    assert [int(n) for n in tail] == list(range(200001 - len(tail), 200001))  # the tail


def test_a_second_signal_ends_a_node_stuck_in_start_up(tmp_path: Path) -> None:
    """The store does not answer (a server that accepts and never speaks):
    start-up waits; one SIGTERM asks for a clean stop after start-up, a second
    one ends the process at once."""
    silent = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    threading.Thread(target=lambda: accepted.append(silent.accept()[0]), daemon=True).start()
    url = f"postgresql+psycopg://postgres@127.0.0.1:{silent.getsockname()[1]}/test"
    with (tmp_path / "node.log").open("w") as log:
        proc = subprocess.Popen(
            [str(BIN), "serve", "--no-http", "--database", url],
            env={**os.environ, "CLOCKTOWER_NODE_ID": "stuck"},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            eventually(lambda: accepted, what="the node to connect")
            proc.send_signal(signal.SIGTERM)
            eventually(  # handled (two pending SIGTERMs would be delivered as one)
                lambda: "SIGTERM received" in (tmp_path / "node.log").read_text(),
                what="the first signal to be handled",
            )
            assert proc.poll() is None  # start-up is still waiting for the store
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(30) == -signal.SIGTERM
        finally:
            proc.kill()
            proc.wait(10)
            for connection in accepted:
                connection.close()
            silent.close()


def test_logs_follow_marks_every_cut_while_the_run_prints(
    db: Store, tmp_path: Path, nodes: list[Node]
) -> None:
    cli(
        "jobs",
        "add",
        "chatty",
        "--command",
        "for i in 1 2 3 4; do seq 1 20000; sleep 0.7; done; echo end",
        "--set",
        "output_cap=10KiB",
        database=db.url,
    )
    start(nodes, db, tmp_path, "a")
    cli("trigger", "chatty", database=db.url)
    run = eventually(
        lambda: db.list_runs(job_id="chatty", states=[RunState.RUNNING]), what="the run to start"
    )[0]
    followed = cli("logs", str(run.id), "--follow", database=db.url).stdout.splitlines()
    marks = [line for line in followed if "bytes of output omitted" in line]
    assert len(marks) >= 2, followed[-20:]  # cut again while it kept printing
    assert followed[-1] == "end"
    assert followed[:2] == ["1", "2"]  # the head, from the start
    # Every byte was shown or counted as cut (a follower may see a tail chunk
    # that is cut later, so a byte may be both).
    total = db.get_run(run.id).output_bytes
    shown = sum(len(line) + 1 for line in followed if line not in marks)
    assert shown + sum(int(m.split()[1]) for m in marks) >= total
