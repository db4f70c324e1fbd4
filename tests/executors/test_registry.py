"""Finding the executor for a target kind."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import clocktower.executors as registry
from clocktower.executors import EXECUTORS, UnknownExecutor, get_executor, register_executor
from clocktower.executors.base import Executor, FireContext, Outcome, OutputSink
from clocktower.executors.command import CommandExecutor
from clocktower.executors.http import HttpExecutor
from clocktower.executors.python import PythonExecutor
from clocktower.model import RunState, Target


@pytest.mark.parametrize(
    ("kind", "cls"),
    [("command", CommandExecutor), ("http", HttpExecutor), ("python", PythonExecutor)],
)
def test_builtin_kinds(kind: str, cls: type) -> None:
    executor = get_executor(kind)
    assert isinstance(executor, cls)
    assert executor.kind == kind
    assert get_executor(kind) is executor
    assert EXECUTORS[kind] is executor


def test_unknown_kind() -> None:
    with pytest.raises(UnknownExecutor, match=r"no executor for target kind 'ftp' \(known: "):
        get_executor("ftp")
    with pytest.raises(KeyError):
        EXECUTORS["ftp"]


class _Workflow:
    kind = "workflow"

    async def execute(
        self,
        target: Target,
        ctx: FireContext,
        sink: OutputSink,
        *,
        timeout: float,  # noqa: ASYNC109 -- the protocol's name
        kill_grace: float,
    ) -> Outcome:
        return Outcome(RunState.SUCCEEDED)


@pytest.fixture
def workflow() -> Iterator[Executor]:
    executor = _Workflow()
    register_executor(executor)
    yield executor
    registry._loaded.pop("workflow")


def test_register_an_executor(workflow: Executor) -> None:
    assert get_executor("workflow") is workflow
    assert sorted(EXECUTORS) == ["command", "http", "python", "workflow"]
    assert len(EXECUTORS) == 4
