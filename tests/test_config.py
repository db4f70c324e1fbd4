"""clocktower.toml and CLOCKTOWER_* variables: precedence, secrets, and errors that say where."""

from __future__ import annotations

import dataclasses
import os
import textwrap
from pathlib import Path

import pytest

from clocktower.config import (
    ENV_VARS,
    Config,
    ConfigError,
    ServerSettings,
    load_config,
    settings_from_env,
)
from clocktower.model import (
    InvalidSpec,
    Overlap,
    Policies,
    TriggerSpec,
)


def write(tmp_path: Path, text: str, name: str = "clocktower.toml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def load(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> Config:
    return load_config(write(tmp_path, text), env=env or {})


def problems(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> list[str]:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path, env=env or {})
    return [str(problem) for problem in info.value.problems]


# --------------------------------------------------------------------------- server settings


def test_built_in_defaults_without_a_file() -> None:
    config = load_config(None, env={})
    server = config.server
    assert server.database == "sqlite:///clocktower.db"
    assert server.bind == "127.0.0.1:8700"
    assert (server.host, server.port) == ("127.0.0.1", 8700)
    assert server.timezone == "UTC"
    assert server.node_id.endswith(f"-{os.getpid()}")
    assert server.max_concurrent_runs == 4 * (os.cpu_count() or 1)
    assert server.shutdown_grace == 30.0
    assert server.lease == 30.0
    assert server.lease_renew_interval == 10.0
    assert server.lookahead == 2.0
    assert server.artifacts_dir == Path("clocktower-artifacts")
    assert (server.retention_runs, server.retention_days) == (1000, 30)
    assert server.log_level == "info"
    assert config.defaults == Policies()
    assert config.jobs == {}
    assert config.source is None


def test_every_setting_has_an_environment_variable() -> None:
    names = {f.name for f in dataclasses.fields(ServerSettings)}
    assert set(ENV_VARS) == names
    assert ServerSettings.env_var("database") == "CLOCKTOWER_DATABASE"
    assert ServerSettings.env_var("max_concurrent_runs") == "CLOCKTOWER_MAX_CONCURRENT_RUNS"
    with pytest.raises(KeyError):
        ServerSettings.env_var("databse")


FILE = """
    [server]
    database = "sqlite:////var/lib/clocktower/ct.db"
    bind = "0.0.0.0:9000"
    timezone = "Europe/Paris"
    node_id = "web-1"
    max_concurrent_runs = 16
    shutdown_grace = "1m"
    lease = "45s"
    lookahead = 0.5
    artifacts_dir = "/var/lib/clocktower/artifacts"
    retention_runs = 50
    retention_days = 7
    log_level = "DEBUG"
"""


def test_file_overrides_defaults(tmp_path: Path) -> None:
    server = load(tmp_path, FILE).server
    assert server == ServerSettings(
        database="sqlite:////var/lib/clocktower/ct.db",
        bind="0.0.0.0:9000",
        timezone="Europe/Paris",
        node_id="web-1",
        max_concurrent_runs=16,
        shutdown_grace=60.0,
        lease=45.0,
        lookahead=0.5,
        artifacts_dir=Path("/var/lib/clocktower/artifacts"),
        retention_runs=50,
        retention_days=7,
        log_level="debug",
    )
    assert server.lease_renew_interval == 15.0


@pytest.mark.parametrize(
    ("var", "text", "name", "value"),
    [
        ("CLOCKTOWER_DATABASE", "postgresql://ct@db/ct", "database", "postgresql://ct@db/ct"),
        ("CLOCKTOWER_BIND", "[::1]:8800", "bind", "[::1]:8800"),
        ("CLOCKTOWER_TIMEZONE", "America/New_York", "timezone", "America/New_York"),
        ("CLOCKTOWER_NODE_ID", "worker-7", "node_id", "worker-7"),
        ("CLOCKTOWER_MAX_CONCURRENT_RUNS", "3", "max_concurrent_runs", 3),
        ("CLOCKTOWER_SHUTDOWN_GRACE", "90", "shutdown_grace", 90.0),
        ("CLOCKTOWER_LEASE", "2m", "lease", 120.0),
        ("CLOCKTOWER_LOOKAHEAD", "1s", "lookahead", 1.0),
        ("CLOCKTOWER_ARTIFACTS_DIR", "/data/a", "artifacts_dir", Path("/data/a")),
        ("CLOCKTOWER_RETENTION_RUNS", "0", "retention_runs", 0),
        ("CLOCKTOWER_RETENTION_DAYS", "90", "retention_days", 90),
        ("CLOCKTOWER_LOG_LEVEL", "warning", "log_level", "warning"),
    ],
)
def test_environment_overrides_the_file(
    tmp_path: Path, var: str, text: str, name: str, value: object
) -> None:
    from_file = load(tmp_path, FILE).server
    from_env = load(tmp_path, FILE, env={var: text}).server
    assert getattr(from_env, name) == value
    assert getattr(from_env, name) != getattr(from_file, name)
    assert dataclasses.replace(from_env, **{name: getattr(from_file, name)}) == from_file


def test_settings_from_env_alone() -> None:
    server = settings_from_env({"CLOCKTOWER_BIND": "0.0.0.0:80", "CLOCKTOWER_LOOKAHEAD": "5s"})
    assert server.bind == "0.0.0.0:80"
    assert server.lookahead == 5.0
    assert server.database == "sqlite:///clocktower.db"


def test_an_empty_variable_counts_as_unset() -> None:
    assert settings_from_env({"CLOCKTOWER_BIND": ""}).bind == "127.0.0.1:8700"


def test_unrelated_clocktower_variables_are_ignored() -> None:
    assert settings_from_env({"CLOCKTOWER_JOB": "x", "CLOCKTOWER_CONFIG": "/x.toml"}).bind


def test_secret_from_a_file(tmp_path: Path) -> None:
    secret = tmp_path / "db-url"
    secret.write_text("postgresql://ct:s3cret@db/ct\n", encoding="utf-8")
    config = load(tmp_path, FILE, env={"CLOCKTOWER_DATABASE_FILE": str(secret)})
    assert config.server.database == "postgresql://ct:s3cret@db/ct"
    assert config.server.database_display == "postgresql://ct:***@db/ct"
    assert "s3cret" not in repr(config.server)


def test_secret_file_for_any_setting(tmp_path: Path) -> None:
    (tmp_path / "runs").write_text("12", encoding="utf-8")
    env = {"CLOCKTOWER_MAX_CONCURRENT_RUNS_FILE": str(tmp_path / "runs")}
    assert settings_from_env(env).max_concurrent_runs == 12


def test_secret_file_and_variable_together_are_refused(tmp_path: Path) -> None:
    (tmp_path / "db").write_text("sqlite:///x.db", encoding="utf-8")
    env = {
        "CLOCKTOWER_DATABASE": "sqlite:///y.db",
        "CLOCKTOWER_DATABASE_FILE": str(tmp_path / "db"),
    }
    with pytest.raises(ConfigError) as info:
        settings_from_env(env)
    assert str(info.value) == (
        "environment variable CLOCKTOWER_DATABASE: "
        "set CLOCKTOWER_DATABASE or CLOCKTOWER_DATABASE_FILE, not both"
    )


def test_unreadable_and_empty_secret_files(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(ConfigError) as info:
        settings_from_env({"CLOCKTOWER_DATABASE_FILE": str(missing)})
    assert str(info.value) == (
        f"environment variable CLOCKTOWER_DATABASE_FILE: cannot read {missing}: "
        "No such file or directory"
    )
    (tmp_path / "empty").write_text("\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="empty is empty"):
        settings_from_env({"CLOCKTOWER_DATABASE_FILE": str(tmp_path / "empty")})


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"CLOCKTOWER_MAX_CONCURRENT_RUNS": "lots"},
            "environment variable CLOCKTOWER_MAX_CONCURRENT_RUNS: expected an integer, got 'lots'",
        ),
        (
            {"CLOCKTOWER_MAX_CONCURRENT_RUNS": "0"},
            "environment variable CLOCKTOWER_MAX_CONCURRENT_RUNS: must be at least 1, got 0",
        ),
        (
            {"CLOCKTOWER_LEASE": "0"},
            "environment variable CLOCKTOWER_LEASE: must be more than 0 seconds, got '0'",
        ),
        (
            {"CLOCKTOWER_TIMEZONE": "Europe/Pari"},
            "environment variable CLOCKTOWER_TIMEZONE: unknown time zone 'Europe/Pari': use an "
            "IANA name such as 'Europe/Paris' or 'UTC'; did you mean 'Europe/Paris' or "
            "'Europe/Madrid' or 'Europe/Riga'?",
        ),
        (
            {"CLOCKTOWER_LOG_LEVEL": "loud"},
            "environment variable CLOCKTOWER_LOG_LEVEL: 'loud' is not one of 'debug', 'info', "
            "'warning', 'error', 'critical'",
        ),
        (
            {"CLOCKTOWER_BIND": "8700"},
            "environment variable CLOCKTOWER_BIND: '8700' is not host:port "
            "(like 127.0.0.1:8700 or 0.0.0.0:8700)",
        ),
        (
            {"CLOCKTOWER_BIND": "0.0.0.0:70000"},
            "environment variable CLOCKTOWER_BIND: port 70000 is not between 1 and 65535",
        ),
    ],
)
def test_environment_errors_name_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        settings_from_env(env)
    assert str(info.value) == message


def test_database_errors_never_show_the_password() -> None:
    with pytest.raises(ConfigError) as info:
        settings_from_env({"CLOCKTOWER_DATABASE": "mysql://ct:hunter2@db/ct"})
    assert "hunter2" not in str(info.value)
    assert "unsupported database 'mysql': use sqlite:///" in str(info.value)


# --------------------------------------------------------------------------- file errors


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "clocktower.toml"
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    assert str(info.value) == f"{path}: no such file"
    assert info.value.file == str(path)


def test_directory_instead_of_a_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is a directory, not a config file"):
        load_config(tmp_path, env={})


def test_toml_syntax_error_gives_line_and_column(tmp_path: Path) -> None:
    text = """
        [jobs.cleanup]
        command = "x"
        cron = 0 3 * * *
    """
    [found] = problems(tmp_path, text)
    assert found.startswith(f"{tmp_path / 'clocktower.toml'}: invalid TOML: ")
    assert found.endswith("(at line 4, column 10)")


def test_file_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "clocktower.toml"
    path.write_bytes(b'[server]\nnode_id = "caf\xe9"\n')
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    assert str(info.value) == f"{path}: is not UTF-8 text"


def test_every_problem_is_listed_with_file_job_and_field(tmp_path: Path) -> None:
    text = """
        [server]
        bind = "localhost"
        databse = "sqlite:///x.db"

        [defaults]
        timeout = "forever"

        [jobs.good]
        command = "true"

        [jobs.typo]
        command = "true"
        timout = "5m"

        [jobs.worse]
        url = "https://example.com"
        retries = -1

        [jobs.Bad-Id]
        command = "true"

        [jobs.steps]
        steps = [{ job = "good" }, { job = "NOPE" }]
    """
    file = str(tmp_path / "clocktower.toml")
    found = problems(tmp_path, text, env={"CLOCKTOWER_LEASE": "soon"})
    assert found == [
        f"{file}, field 'server.bind': 'localhost' is not host:port "
        "(like 127.0.0.1:8700 or 0.0.0.0:8700)",
        f"{file}, field 'server.databse': unknown setting 'databse'; did you mean 'database'?",
        "environment variable CLOCKTOWER_LEASE: 'soon' is not a duration: use a number of "
        'seconds or units ms, s, m, h, d, w ("90s", "10m", "1h30m", "2d")',
        f"{file}, field 'defaults.timeout': 'forever' is not a duration: use a number of "
        'seconds or units ms, s, m, h, d, w ("90s", "10m", "1h30m", "2d")',
        f"{file}, job 'typo', field 'timout': unknown field 'timout'; did you mean 'timeout'?",
        f"{file}, job 'worse', field 'retries': must be at least 0, got -1",
        f"{file}, job 'Bad-Id', field 'id': 'Bad-Id' is not a valid job id: use lowercase "
        "letters, digits, '-', '_' and '.', starting and ending with a letter or digit "
        "(at most 128 characters)",
        f"{file}, job 'steps', field 'steps[1].job': 'NOPE' is not a valid job id: use "
        "lowercase letters, digits, '-', '_' and '.', starting and ending with a letter or "
        "digit (at most 128 characters)",
    ]


def test_config_error_reads_as_a_list(tmp_path: Path) -> None:
    path = write(tmp_path, '[jobs.a]\ncommand = 5\n[jobs.b]\nurl = "x"\n')
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    error = info.value
    assert isinstance(error, InvalidSpec)
    assert isinstance(error, ValueError)
    assert (error.file, error.job, error.field) == (str(path), "a", "command")
    assert str(error) == (
        "2 problems:\n"
        f"  {path}, job 'a', field 'command': expected a string, got integer 5\n"
        f"  {path}, job 'b', field 'url': 'x' is not an http:// or https:// URL with a host"
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[sever]\nbind = 'x'\n", "field 'sever': unknown section 'sever'; did you mean 'server'?"),
        (
            "[cleanup]\ncommand = 'x'\n",
            "field 'cleanup': unknown section 'cleanup'; a job is written [jobs.cleanup]",
        ),
        ("server = 5\n", "field 'server': expected a table, got integer 5"),
        ("notify = 'slack'\n", "field 'notify': expected a table, got string 'slack'"),
        (
            "[jobs]\ncleanup = 'ls'\n",
            "job 'cleanup': expected a table of the job's fields, got string 'ls'",
        ),
        ("[defaults]\ncommand = 'x'\n", "field 'defaults.command': unknown field 'command'"),
        (
            "[defaults]\nretry = 3\n",
            "field 'defaults.retry': unknown field 'retry'; did you mean 'retries'?",
        ),
        ("[server]\nlease = 0\n", "field 'server.lease': must be more than 0 seconds, got 0"),
        (
            "[server]\nmax_concurrent_runs = '4'\n",
            "field 'server.max_concurrent_runs': expected an integer, got string '4'",
        ),
    ],
)
def test_structure_errors(tmp_path: Path, text: str, message: str) -> None:
    [found] = problems(tmp_path, text)
    assert found == f"{tmp_path / 'clocktower.toml'}, {message}"


def test_one_broken_job_means_nothing_is_applied(tmp_path: Path) -> None:
    text = """
        [jobs.fine]
        command = "true"
        [jobs.broken]
        command = "true"
        overlap = "sometimes"
    """
    [found] = problems(tmp_path, text)
    assert "job 'broken', field 'overlap': 'sometimes' is not one of 'skip', 'queue'" in found


# --------------------------------------------------------------------------- jobs and defaults


def test_defaults_apply_to_jobs_that_leave_a_policy_out(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        """
        [defaults]
        timeout = "15m"
        retries = 2
        overlap = "queue"

        [jobs.a]
        command = "true"

        [jobs.b]
        command = "true"
        retries = 0
        """,
    )
    expected = Policies(timeout=900.0, retries=2, overlap=Overlap.QUEUE)
    assert config.defaults == expected
    assert config.jobs["a"].policies == expected
    assert config.jobs["b"].policies == dataclasses.replace(expected, retries=0)


def test_server_zone_is_the_default_zone_of_triggers(tmp_path: Path) -> None:
    text = """
        [server]
        timezone = "Europe/Paris"
        [jobs.a]
        command = "true"
        cron = "0 18 5 * *"
        [jobs.b]
        command = "true"
        cron = "0 3 * * *"
        tz = "UTC"
    """
    config = load(tmp_path, text)
    assert config.jobs["a"].trigger == TriggerSpec("cron", "0 18 5 * *", tz="Europe/Paris")
    assert config.jobs["b"].trigger == TriggerSpec("cron", "0 3 * * *", tz="UTC")
    from_env = load(tmp_path, text, env={"CLOCKTOWER_TIMEZONE": "Asia/Tokyo"})
    assert from_env.jobs["a"].trigger == TriggerSpec("cron", "0 18 5 * *", tz="Asia/Tokyo")


def test_jobs_know_their_file_and_state(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        """
        [jobs.a]
        command = "true"
        paused = true
        [jobs.b]
        command = "true"
        enabled = false
        [jobs.c]
        command = "true"
        enabled = true
        [jobs.d]
        command = "true"
        """,
    )
    assert config.paused == {"a", "b"}
    assert config.enabled == {"c"}
    source = f"file:{(tmp_path / 'clocktower.toml').absolute()}"
    assert config.source == source
    assert {spec.source for spec in config.jobs.values()} == {source}


def test_notify_is_kept_as_written(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        """
        [notify]
        urls = ["slack://T000/B000/XXX"]
        [notify.rules]
        on = "failure"
        """,
    )
    assert config.notify == {"urls": ["slack://T000/B000/XXX"], "rules": {"on": "failure"}}


def test_commands_run_in_the_config_files_folder(tmp_path: Path) -> None:
    path = tmp_path / "conf" / "clocktower.toml"
    path.parent.mkdir()
    path.write_text(
        '[jobs.a]\ncommand = "true"\n\n[jobs.b]\ncommand = "true"\ncwd = "scripts"\n'
        '\n[jobs.c]\ncommand = "true"\ncwd = "/srv"\n'
    )
    jobs = load_config(path, env={}).jobs
    cwds = {job_id: getattr(spec.target, "cwd", None) for job_id, spec in jobs.items()}
    assert cwds == {
        "a": str(path.parent.absolute()),
        "b": str(path.parent.absolute() / "scripts"),
        "c": "/srv",
    }
