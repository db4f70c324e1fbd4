"""`${VAR}` references in stored values, filled in from the server's environment.

Secrets such as `Authorization: Bearer ${CRON_SECRET}` stay out of the store:
the reference is stored, the value is read when the run starts. An unset
variable is an error rather than an empty string, because an empty token or
password usually fails later in a way that is much harder to read.

Syntax: `${NAME}`, `${NAME:-default}` (default when unset or empty) and
`$${` for a literal `${`. A bare `$NAME` is left alone.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from clocktower.model import ClocktowerError

_REFERENCE = re.compile(
    r"""
      (?P<escaped>\$\$\{)
    | \$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?\}
    | (?P<malformed>\$\{[^}]*\}?)
    """,
    re.VERBOSE,
)


class ExpansionError(ClocktowerError, ValueError):
    """A value's `${...}` reference cannot be filled in."""


class UndefinedVariable(ExpansionError, LookupError):
    def __init__(self, name: str, where: str) -> None:
        self.name = name
        self.where = where
        super().__init__(
            f"environment variable {name!r} is not set on the server (used in {where})"
        )


def expand(value: str, environ: Mapping[str, str], *, where: str) -> str:
    """`value` with every `${VAR}` replaced from `environ`.

    `where` names the value in error messages ("env 'TOKEN'", "header 'Authorization'").
    """

    def replace(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "${"
        if match["malformed"]:
            raise ExpansionError(
                f"invalid reference {match['malformed']!r} in {where}: "
                "use ${NAME} or ${NAME:-default}, or $${ for a literal '${'"
            )
        name = match["name"]
        found = environ.get(name)
        if match["default"] is not None and not found:
            return match["default"]
        if found is None:
            raise UndefinedVariable(name, where)
        return found

    return _REFERENCE.sub(replace, value)


def expand_env(
    values: Mapping[str, str], environ: Mapping[str, str], *, what: str = "env"
) -> dict[str, str]:
    """Each value of `values` expanded; keys are kept as they are."""
    return {key: expand(value, environ, where=f"{what} {key!r}") for key, value in values.items()}
