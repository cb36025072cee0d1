"""Settings: flags over environment over defaults; a bad value is a clear error at start."""

from __future__ import annotations

from pathlib import Path

import pytest

from otari_batch_grpc.server.config import ConfigError, Settings, load


def test_flags_win_over_environment_over_defaults() -> None:
    settings = load(["--upstream-timeout", "2.5"], {"UPSTREAM_TIMEOUT": "9", "GRPC_LISTEN": "127.0.0.1:6000"})
    assert settings.upstream_timeout == 2.5
    assert settings.grpc_listen == "127.0.0.1:6000"
    assert settings.state_db == Path("state/otari-batch-grpc.db")


def test_the_service_key_never_shows_in_repr() -> None:
    assert "sk-secret" not in repr(load([], {"SERVICE_KEY": "sk-secret"}))


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"GATEWAY_URL": "localhost:8000"}, "GATEWAY_URL must start with"),
        ({"UPSTREAM_TIMEOUT": "0"}, "upstream_timeout must be greater than 0"),
        ({"UPSTREAM_TIMEOUT": "soon"}, "upstream_timeout must be a number"),
        ({"GRPC_LISTEN": "50051"}, "grpc_listen must be host:port"),
        ({"TLS_CERT": "/nonexistent.pem"}, "tls_cert and tls_key go together"),
        ({"TLS_CERT": "/nonexistent.pem", "TLS_KEY": "/nonexistent.key"}, "tls_cert: no file"),
        ({"MAX_MESSAGE_BYTES": "1000"}, "at least 1 MiB"),
        ({"LOG_LEVEL": "chatty"}, "log_level must be"),
        ({"EVENT_LOOP": "trio"}, "event_loop must be uvloop or asyncio"),
        ({"METRICS_ADDRESS": "9464"}, "metrics_address must be host:port"),
        ({"METRICS_ADDRESS": "127.0.0.1:99999"}, "metrics_address must be host:port"),
    ],
)
def test_bad_settings_are_refused(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load([], env)


def test_metrics_are_off_unless_an_address_is_set() -> None:
    assert load([], {}).metrics_host_port is None
    assert load([], {"METRICS_ADDRESS": ""}).metrics_host_port is None
    assert load([], {"METRICS_ADDRESS": "127.0.0.1:9464"}).metrics_host_port == ("127.0.0.1", 9464)
    assert load(["--metrics-address", "[::1]:0"], {}).metrics_host_port == ("::1", 0)


def test_a_postgresql_url_in_state_db_or_database_url_selects_postgresql() -> None:
    url = "postgresql://otari:hunter2@db:5432/state"
    for env in ({"STATE_DB": url}, {"DATABASE_URL": url}, {"STATE_DB": url, "DATABASE_URL": url}):
        settings = load([], env)
        assert (settings.database_url, settings.store_target) == (url, url), env
        assert settings.state_db == Path("state/otari-batch-grpc.db")  # still where local files go
        assert "hunter2" not in repr(settings)
    beside = load([], {"DATABASE_URL": "postgres://db/state", "STATE_DB": "/srv/otari/state.db"})
    assert (beside.store_target, beside.state_db) == ("postgres://db/state", Path("/srv/otari/state.db"))
    assert load(["--state-db", url], {}).store_target == url
    assert load([], {"STATE_DB": "/srv/otari/state.db"}).store_target == Path("/srv/otari/state.db")
    assert Settings(state_db=url).store_target == url  # type: ignore[arg-type]  # as tests build settings
    assert Settings(state_db="x/state.db").store_target == Path("x/state.db")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DATABASE_URL": "mysql://db/state"}, "DATABASE_URL must start with postgresql://"),
        (
            {"STATE_DB": "postgresql://db/one", "DATABASE_URL": "postgresql://db/two"},
            "STATE_DB and DATABASE_URL name two different databases",
        ),
    ],
)
def test_bad_database_settings_are_refused(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load([], env)
