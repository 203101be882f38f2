"""Settings from LIVESHOP_* variables: typed, validated with the variable named, and a
typo'd variable reported with the closest real name instead of silently ignored."""

from __future__ import annotations

import pytest

from liveshop.core.config import load, unknown_variables
from liveshop.core.errors import ConfigError


def test_a_typo_names_the_closest_setting() -> None:
    env = {"LIVESHOP_PROT": "9000", "LIVESHOP_PORT": "8000", "LIVESHOP_DATABSE_URL": "x"}
    assert unknown_variables(env) == [
        "LIVESHOP_DATABSE_URL is not a liveshop setting; did you mean LIVESHOP_DATABASE_URL?",
        "LIVESHOP_PROT is not a liveshop setting; did you mean LIVESHOP_PORT?",
    ]


def test_known_and_unrelated_variables_are_not_reported() -> None:
    env = {"LIVESHOP_SECRET": "s", "LIVESHOP_TEST_REDIS_URL": "r", "PATH": "/bin", "HOME": "/"}
    assert unknown_variables(env) == []
    assert unknown_variables({"LIVESHOP_ZZZZZZZZZZ": "1"}) == [
        "LIVESHOP_ZZZZZZZZZZ is not a liveshop setting"
    ]


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"LIVESHOP_PORT": "eighty"}, "LIVESHOP_PORT"),
        ({"LIVESHOP_DATABASE_URL": "mysql://x/y"}, "LIVESHOP_DATABASE_URL"),
        ({"LIVESHOP_SECRET": "short"}, "LIVESHOP_SECRET"),
        ({"LIVESHOP_DURABILITY": "sometimes"}, "LIVESHOP_DURABILITY"),
    ],
)
def test_a_bad_value_is_refused_naming_its_variable(env: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        load(env)


def test_the_database_defaults_to_sqlite_in_the_data_dir() -> None:
    assert load({"LIVESHOP_DATA_DIR": "/srv/shop"}).database == "sqlite:////srv/shop/liveshop.db"
    url = "postgresql://app@db:5432/orders"
    assert load({"LIVESHOP_DATABASE_URL": url}).database == url
