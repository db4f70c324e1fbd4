"""`${VAR}` expansion from the server's environment."""

from __future__ import annotations

import pytest

from clocktower.executors._env import ExpansionError, UndefinedVariable, expand, expand_env

ENVIRON = {"TOKEN": "s3cret", "EMPTY": "", "HOST": "db"}


@pytest.mark.parametrize(
    ("value", "expanded"),
    [
        ("plain", "plain"),
        ("Bearer ${TOKEN}", "Bearer s3cret"),
        ("${HOST}:${TOKEN}", "db:s3cret"),
        ("${MISSING:-fallback}", "fallback"),
        ("${EMPTY:-fallback}", "fallback"),
        ("${TOKEN:-fallback}", "s3cret"),
        ("${MISSING:-}", ""),
        ("${EMPTY}", ""),
        ("$${TOKEN}", "${TOKEN}"),
        ("$TOKEN and $", "$TOKEN and $"),
        ("price: 5$", "price: 5$"),
    ],
)
def test_expand(value: str, expanded: str) -> None:
    assert expand(value, ENVIRON, where="env 'X'") == expanded


def test_an_unset_variable_is_an_error_naming_it() -> None:
    with pytest.raises(UndefinedVariable) as caught:
        expand("Bearer ${MISSING}", ENVIRON, where="header 'Authorization'")
    assert caught.value.name == "MISSING"
    assert str(caught.value) == (
        "environment variable 'MISSING' is not set on the server (used in header 'Authorization')"
    )
    assert isinstance(caught.value, LookupError)


@pytest.mark.parametrize("value", ["${1ABC}", "${TOKEN", "${}", "${A-B}"])
def test_a_malformed_reference_is_an_error(value: str) -> None:
    with pytest.raises(ExpansionError, match="invalid reference"):
        expand(value, ENVIRON, where="env 'X'")


def test_expand_env_names_the_key() -> None:
    assert expand_env({"A": "${HOST}"}, ENVIRON) == {"A": "db"}
    with pytest.raises(UndefinedVariable, match=r"used in env 'B'"):
        expand_env({"B": "${NOPE}"}, ENVIRON)
