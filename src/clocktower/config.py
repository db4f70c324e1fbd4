"""Settings from `clocktower.toml` and `CLOCKTOWER_*` environment variables.

Precedence, lowest first: built-in defaults, the file, the environment
(`CLOCKTOWER_<KEY>` for each `[server]` key, or `CLOCKTOWER_<KEY>_FILE` naming
a file that holds the value, for secrets).

A config is applied whole or not at all: `load_config` checks everything (every
setting, every job) and raises one `ConfigError` listing every problem of the
settings and the first of each job, each naming its file, job and field, so
that a broken file changes nothing.
"""

from __future__ import annotations

import dataclasses
import os
import re
import socket
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from clocktower.model import CommandTarget, InvalidSpec, JobSpec, Policies
from clocktower.spec import parse_job, policies_from_mapping
from clocktower.units import (
    expect_int,
    expect_str,
    expect_table,
    one_of,
    parse_duration,
    parse_positive_duration,
    parse_timezone,
    suggest,
)

__all__ = [
    "ENV_PREFIX",
    "ENV_VARS",
    "Config",
    "ConfigError",
    "ServerSettings",
    "load_config",
    "parse_bind",
    "parse_database",
    "redact_url",
    "settings_from_env",
]

ENV_PREFIX = "CLOCKTOWER_"
SECTIONS = ("server", "defaults", "jobs", "notify")
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
DATABASE_SCHEMES = ("sqlite", "postgresql", "postgres")


def _default_node_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


def _default_max_concurrent_runs() -> int:
    return 4 * (os.cpu_count() or 1)


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """The `[server]` table, after defaults and the environment are applied."""

    database: str = field(default="sqlite:///clocktower.db", repr=False)  # may hold a password
    bind: str = "127.0.0.1:8700"
    timezone: str = "UTC"  # the zone of triggers that name none
    node_id: str = field(default_factory=_default_node_id)
    max_concurrent_runs: int = field(default_factory=_default_max_concurrent_runs)
    shutdown_grace: float = 30.0  # seconds running work gets to finish on SIGTERM
    lease: float = 30.0  # seconds a run's lease lasts; renewed every lease / 3
    lookahead: float = 2.0  # seconds ahead runs are created, then started on a timer
    artifacts_dir: Path = Path("clocktower-artifacts")
    retention_runs: int = 1000  # runs kept per job (0: no limit)
    retention_days: int = 30  # days runs are kept (0: no limit)
    log_level: str = "info"

    @property
    def host(self) -> str:
        return self.bind.rpartition(":")[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.bind.rpartition(":")[2])

    @property
    def lease_renew_interval(self) -> float:
        return self.lease / 3

    @property
    def database_display(self) -> str:
        """The database URL with its password hidden, for logs and status pages."""
        return redact_url(self.database)

    @staticmethod
    def env_var(name: str) -> str:
        """The environment variable that sets `name`: "bind" -> "CLOCKTOWER_BIND"."""
        if name not in _SETTINGS:
            raise KeyError(f"no server setting {name!r}")
        return ENV_PREFIX + name.upper()


def redact_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


@dataclass(frozen=True, slots=True)
class Config:
    """A whole, valid configuration."""

    server: ServerSettings
    defaults: Policies = field(default_factory=Policies)
    jobs: dict[str, JobSpec] = field(default_factory=dict)
    paused: set[str] = field(default_factory=set)  # jobs declared paused = true / enabled = false
    enabled: set[str] = field(default_factory=set)  # jobs declared paused = false / enabled = true
    notify: dict[str, Any] = field(default_factory=dict)  # [notify], kept as written
    path: Path | None = None

    @property
    def source(self) -> str | None:
        """The `source` of this file's jobs ("file:/abs/path"), to reconcile them by."""
        return file_source(self.path) if self.path is not None else None


def file_source(path: str | Path) -> str:
    """One file, one source, however its path was typed (`..`, a symlink)."""
    return f"file:{Path(path).resolve()}"


class ConfigError(InvalidSpec):
    """Everything wrong with a config, each problem naming its file, job and field."""

    def __init__(self, problems: Iterable[InvalidSpec]) -> None:
        self.problems = tuple(problems)
        if not self.problems:
            raise ValueError("a ConfigError needs at least one problem")
        first = self.problems[0]
        super().__init__(first.message, field=first.field, job=first.job, file=first.file)

    def __str__(self) -> str:
        if len(self.problems) == 1:
            return str(self.problems[0])
        lines = [f"{len(self.problems)} problems:"]
        lines.extend(f"  {problem}" for problem in self.problems)
        return "\n".join(lines)


# --------------------------------------------------------------------------- settings


def parse_database(value: object, field: str) -> str:
    """A database URL of a kind the store supports (also checks `--database`)."""
    url = expect_str(value, field).strip()
    scheme, sep, _ = url.partition("://")
    if not sep:
        raise InvalidSpec(
            "expected a database URL such as sqlite:///clocktower.db or "
            "postgresql://user:password@host/dbname",
            field=field,
        )
    if scheme.split("+")[0].lower() not in DATABASE_SCHEMES:
        raise InvalidSpec(
            f"unsupported database {scheme!r}: use sqlite:///path/to/file.db or "
            "postgresql://user:password@host/dbname",
            field=field,
        )
    return url


def parse_bind(value: object, field: str) -> str:
    """host:port with a port that exists (also checks `serve --bind`)."""
    bind = expect_str(value, field).strip()
    host, sep, port = bind.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise InvalidSpec(
            f"{bind!r} is not host:port (like 127.0.0.1:8700 or 0.0.0.0:8700)", field=field
        )
    if not 1 <= int(port) <= 65535:
        raise InvalidSpec(f"port {port} is not between 1 and 65535", field=field)
    return bind


def _node_id(value: object, field: str) -> str:
    node_id = expect_str(value, field)
    if len(node_id) > 200 or any(ch.isspace() for ch in node_id):
        raise InvalidSpec("a node id has no spaces and at most 200 characters", field=field)
    return node_id


def _path(value: object, field: str) -> Path:
    return Path(expect_str(value, field))


def _count(minimum: int) -> Callable[[object, str], int]:
    return lambda value, field: expect_int(value, field, minimum=minimum)


_SETTINGS: dict[str, Callable[[object, str], object]] = {
    "database": parse_database,
    "bind": parse_bind,
    "timezone": parse_timezone,
    "node_id": _node_id,
    "max_concurrent_runs": _count(1),
    "shutdown_grace": parse_duration,
    "lease": parse_positive_duration,
    "lookahead": parse_duration,
    "artifacts_dir": _path,
    "retention_runs": _count(0),
    "retention_days": _count(0),
    "log_level": lambda value, field: one_of(value, LOG_LEVELS, field),
}
_INTEGER_SETTINGS = frozenset({"max_concurrent_runs", "retention_runs", "retention_days"})

# Every [server] key's environment variable, for --help texts and the docs.
ENV_VARS: Mapping[str, str] = {name: ENV_PREFIX + name.upper() for name in _SETTINGS}


def _from_text(name: str, text: str) -> object:
    """An environment variable's text as the value the file would hold."""
    if name not in _INTEGER_SETTINGS:
        return text
    if not re.fullmatch(r"\s*[+-]?\d+\s*", text):
        raise InvalidSpec(f"expected an integer, got {text!r}")
    return int(text)


def _server_from_file(
    section: Mapping[str, Any], file: str, problems: list[InvalidSpec]
) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for key, value in section.items():
        where = f"server.{key}"
        if key not in _SETTINGS:
            hint = suggest(key, _SETTINGS)
            problems.append(InvalidSpec(f"unknown setting {key!r}{hint}", field=where, file=file))
            continue
        try:
            values[key] = _SETTINGS[key](value, where)
        except InvalidSpec as exc:
            problems.append(exc.located(file=file))
    return values


def _server_from_env(env: Mapping[str, str], problems: list[InvalidSpec]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, var in ENV_VARS.items():
        try:
            text = _env_value(env, var)
            if text is not None:
                values[name] = _SETTINGS[name](_from_text(name, text), name)
        except InvalidSpec as exc:
            problems.append(
                InvalidSpec(exc.message, file=exc.file or f"environment variable {var}")
            )
    return values


def _env_value(env: Mapping[str, str], var: str) -> str | None:
    """`var`'s value, or the content of the file `var_FILE` names; None when neither is set.

    An empty variable counts as unset.
    """
    direct, file_var = env.get(var, ""), env.get(var + "_FILE", "")
    if direct and file_var:
        raise InvalidSpec(f"set {var} or {var}_FILE, not both", file=f"environment variable {var}")
    if not file_var:
        return direct or None
    where = f"environment variable {var}_FILE"
    try:
        text = Path(file_var).read_text(encoding="utf-8").rstrip("\r\n")
    except OSError as exc:
        raise InvalidSpec(f"cannot read {file_var}: {exc.strerror}", file=where) from None
    except UnicodeDecodeError:
        raise InvalidSpec(f"{file_var} is not UTF-8 text", file=where) from None
    if not text.strip():
        raise InvalidSpec(f"{file_var} is empty", file=where)
    return text


def settings_from_env(env: Mapping[str, str] | None = None) -> ServerSettings:
    """Server settings from built-in defaults and the environment alone (no file)."""
    problems: list[InvalidSpec] = []
    values = _server_from_env(os.environ if env is None else env, problems)
    if problems:
        raise ConfigError(problems)
    return ServerSettings(**values)


# --------------------------------------------------------------------------- the file


def load_config(path: str | Path | None, env: Mapping[str, str] | None = None) -> Config:
    """The whole config from `path` (None: no file) and `env` (default: os.environ).

    Raises `ConfigError` listing every problem found (a job's first only);
    nothing is half-applied.
    """
    env = os.environ if env is None else env
    if path is None:
        return Config(server=settings_from_env(env))
    file = str(path)
    document = _read_toml(Path(path), file)
    problems: list[InvalidSpec] = []
    sections = _sections(document, file, problems)
    server_values = _server_from_file(sections["server"], file, problems)
    server_values.update(_server_from_env(env, problems))
    server = ServerSettings(**server_values)
    defaults = _defaults(sections["defaults"], file, problems)
    source = file_source(path)
    jobs, paused = _jobs(sections["jobs"], file, source, server, defaults, problems)
    if problems:
        raise ConfigError(problems)
    return Config(
        server=server,
        defaults=defaults,
        jobs=jobs,
        paused={job_id for job_id, state in paused.items() if state},
        enabled={job_id for job_id, state in paused.items() if not state},
        notify=dict(sections["notify"]),
        path=Path(path),
    )


def _read_toml(path: Path, file: str) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        message = "no such file"
    except IsADirectoryError:
        message = "is a directory, not a config file"
    except OSError as exc:
        message = f"cannot read it: {exc.strerror}"
    except UnicodeDecodeError:
        message = "is not UTF-8 text"
    except tomllib.TOMLDecodeError as exc:
        message = f"invalid TOML: {exc}"
    raise ConfigError([InvalidSpec(message, file=file)])


def _sections(
    document: Mapping[str, Any], file: str, problems: list[InvalidSpec]
) -> dict[str, Mapping[str, Any]]:
    sections: dict[str, Mapping[str, Any]] = {name: {} for name in SECTIONS}
    for key, value in document.items():
        if key not in SECTIONS:
            hint = suggest(key, SECTIONS)
            if not hint and isinstance(value, Mapping) and "command" in value:
                hint = f"; a job is written [jobs.{key}]"
            problems.append(InvalidSpec(f"unknown section {key!r}{hint}", field=key, file=file))
            continue
        try:
            sections[key] = expect_table(value, key)
        except InvalidSpec as exc:
            problems.append(exc.located(file=file))
    return sections


def _defaults(section: Mapping[str, Any], file: str, problems: list[InvalidSpec]) -> Policies:
    valid: dict[str, Any] = {}
    for key, value in section.items():
        try:
            policies_from_mapping({key: value})
        except InvalidSpec as exc:
            problems.append(exc.located(file=file, field_prefix="defaults"))
        else:
            valid[key] = value
    return policies_from_mapping(valid)


def _anchor_cwd(spec: JobSpec, base: Path) -> JobSpec:
    """A command from a config file runs in the file's folder unless its `cwd`
    says otherwise; a relative `cwd` is relative to that folder, not to wherever
    the server was started."""
    target = spec.target
    if not isinstance(target, CommandTarget):
        return spec
    cwd = base / target.cwd if target.cwd else base
    return spec.replace(target=dataclasses.replace(target, cwd=str(cwd)))


def _jobs(
    section: Mapping[str, Any],
    file: str,
    source: str,
    server: ServerSettings,
    defaults: Policies,
    problems: list[InvalidSpec],
) -> tuple[dict[str, JobSpec], dict[str, bool]]:
    jobs: dict[str, JobSpec] = {}
    paused: dict[str, bool] = {}
    for job_id, table in section.items():
        try:
            job = parse_job(
                table, job_id=job_id, defaults=defaults, source=source, default_tz=server.timezone
            )
        except InvalidSpec as exc:
            problems.append(exc.located(file=file, job=job_id))
            continue
        jobs[job_id] = _anchor_cwd(job.spec, Path(file).resolve().parent)
        if job.paused is not None:
            paused[job_id] = job.paused
    return jobs, paused
