"""Finding and calling a Python target; shared by the thread and process modes."""

from __future__ import annotations

import functools
import importlib
import inspect
import json
import math
import traceback
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from clocktower.executors._context import RunContext
from clocktower.model import ClocktowerError

CONTEXT_PARAMETER = "ctx"
TRACEBACK_LINES = 30  # the end of a traceback written to the run's stderr

_OWN_DIR = str(Path(__file__).resolve().parent)
_JSON_AS_IS = (bool, int, str)  # values a JSON round-trip returns unchanged


class TargetError(ClocktowerError):
    """The callable cannot be found or called as configured: retrying will not help."""


def resolve(call: str) -> Callable[..., Any]:
    """The callable named by `package.module:function` (or `module:Class.method`)."""
    module_name, colon, qualname = call.partition(":")
    if not colon or not module_name or not qualname:
        raise TargetError(f"invalid call {call!r}: expected 'package.module:function'")
    try:
        found: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            found = getattr(found, part)
    except Exception as exc:
        raise TargetError(f"cannot import {call!r}: {describe(exc)}") from exc
    if not callable(found):
        raise TargetError(f"{call!r} is a {type(found).__name__}, not a callable")
    return found  # type: ignore[no-any-return]


def _wants_context(parameter: inspect.Parameter) -> bool:
    annotation = parameter.annotation
    if parameter.name == CONTEXT_PARAMETER or annotation is RunContext:
        return True
    # postponed annotations (`from __future__ import annotations`) are strings
    return isinstance(annotation, str) and annotation.rpartition(".")[2] == "RunContext"


@functools.lru_cache(maxsize=1024)
def _signature(fn: Callable[..., Any]) -> inspect.Signature:
    return inspect.signature(fn)


def arguments(
    fn: Callable[..., Any], args: tuple[Any, ...], kwargs: Mapping[str, Any], ctx: RunContext
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """`args` and `kwargs`, plus the context if `fn` asks for it; checked against `fn`'s
    signature so a mismatch is reported before anything runs."""
    kwargs = dict(kwargs)
    context = _kept(_context_parameter, fn, len(args), tuple(kwargs))
    if context is not None:
        kwargs[context] = ctx
    return args, kwargs


@functools.lru_cache(maxsize=1024)
def _context_parameter(
    fn: Callable[..., Any], positional: int, names: tuple[str, ...]
) -> str | None:
    """The parameter that receives the context, if any; raises TargetError when
    `positional` arguments and keyword arguments `names` do not fit `fn`. The
    answer depends on the shape of the arguments only, so it is kept."""
    try:
        signature = _signature(fn)
    except (TypeError, ValueError):  # some builtins have none: call as configured
        return None
    context = None
    for parameter in signature.parameters.values():
        if _wants_context(parameter) and parameter.name not in names:
            context = parameter.name
            break
    placeholders = dict.fromkeys(names) | ({context: None} if context else {})
    try:
        signature.bind(*([None] * positional), **placeholders)
    except TypeError as exc:
        raise TargetError(f"arguments do not match {fn.__qualname__}{signature}: {exc}") from exc
    return context


@functools.lru_cache(maxsize=1024)
def _is_async(fn: Callable[..., Any]) -> bool:
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004 -- an instance with an async __call__
    )


def is_async(fn: Callable[..., Any]) -> bool:
    return bool(_kept(_is_async, fn))


def _kept(cached: Any, fn: Callable[..., Any], *args: Any) -> Any:
    """`cached(fn, *args)`, worked out afresh for a callable that cannot be a
    cache key (an unhashable instance with `__call__`)."""
    try:
        return cached(fn, *args)
    except TypeError:
        return cached.__wrapped__(fn, *args)


def describe(exc: BaseException) -> str:
    """`ValueError: bad input` (just the type when the message is empty)."""
    message = str(exc)
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def traceback_tail(exc: BaseException) -> str:
    """The last lines of `exc`'s traceback, without Clocktower's own frames."""
    info = traceback.TracebackException.from_exception(exc)
    info.stack = traceback.StackSummary.from_list(
        [frame for frame in info.stack if not frame.filename.startswith(_OWN_DIR)]
    )
    lines = "".join(info.format()).splitlines()
    return "\n".join(lines[-TRACEBACK_LINES:])


def is_clean_exit(exc: BaseException) -> bool:
    """`sys.exit()` / `sys.exit(0)` from a target means success, as for a command."""
    return isinstance(exc, SystemExit) and exc.code in (0, None)


def json_result(value: Any) -> tuple[Any, str | None]:
    """`value` as it will be stored (JSON round-trip), or None and why it cannot be."""
    if value is None or type(value) in _JSON_AS_IS:  # most functions return None
        return value, None
    if type(value) is float and math.isfinite(value):  # NaN and infinities are not JSON
        return value, None
    try:
        return json.loads(json.dumps(value, allow_nan=False)), None
    except (TypeError, ValueError) as exc:
        return None, f"the return value ({type(value).__name__}) is not kept: {exc}"
