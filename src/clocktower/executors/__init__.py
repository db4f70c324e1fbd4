"""Executors: the code that runs one target once and reports how it went.

`get_executor(kind)` returns the executor for a target's `kind`. Modules are
imported on first use, so a process that only needs one kind (the child of a
Python target, say) does not pay for the others (httpx, for one).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping

from clocktower.executors.base import Executor
from clocktower.model import ClocktowerError

__all__ = ["EXECUTORS", "Executor", "UnknownExecutor", "get_executor", "register_executor"]

_BUILTIN = {
    "command": "clocktower.executors.command:CommandExecutor",
    "http": "clocktower.executors.http:HttpExecutor",
    "python": "clocktower.executors.python:PythonExecutor",
}
_loaded: dict[str, Executor] = {}


class UnknownExecutor(ClocktowerError, LookupError):
    def __init__(self, kind: str) -> None:
        self.kind = kind
        known = ", ".join(sorted(_BUILTIN.keys() | _loaded.keys()))
        super().__init__(f"no executor for target kind {kind!r} (known: {known})")


def register_executor(executor: Executor) -> None:
    """Make `executor` the one for `executor.kind` (a workflow executor, a test double)."""
    _loaded[executor.kind] = executor


def get_executor(kind: str) -> Executor:
    """The executor for targets of `kind`. Raises UnknownExecutor."""
    executor = _loaded.get(kind)
    if executor is not None:
        return executor
    path = _BUILTIN.get(kind)
    if path is None:
        raise UnknownExecutor(kind)
    module_name, _, class_name = path.partition(":")
    loaded: Executor = getattr(importlib.import_module(module_name), class_name)()
    _loaded[kind] = loaded
    return loaded


class _Registry(Mapping[str, Executor]):
    """`EXECUTORS["command"]`: the registry seen as a read-only mapping."""

    def __getitem__(self, kind: str) -> Executor:
        try:
            return get_executor(kind)
        except UnknownExecutor:
            raise KeyError(kind) from None

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(_BUILTIN.keys() | _loaded.keys()))

    def __len__(self) -> int:
        return len(_BUILTIN.keys() | _loaded.keys())


EXECUTORS: Mapping[str, Executor] = _Registry()
