"""Settings: flags over environment over defaults; a bad value is a clear error at start."""

from __future__ import annotations

import importlib.util
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
    assert Settings(state_db=url).store_target == url  # as tests build settings
    assert Settings(state_db="x/state.db").store_target == Path("x/state.db")


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


# Every message a bad setting gets today, whole: settings are declared with a library now (#30), and a changed
# message is a decision, not an accident.
_POSITIVE = [
    "upstream_timeout",
    "results_timeout",
    "shutdown_grace",
    "health_interval",
    "results_cache_max_age",
    "watch_poll_min",
    "watch_poll_max",
    "watch_heartbeat",
    "watch_failure_limit",
    "wait_default_timeout",
    "state_keep_seconds",
    "idempotency_keep_seconds",
    "idempotency_claim_seconds",
    "sweep_interval",
    "grpc_keepalive_time",
    "grpc_keepalive_timeout",
    "grpc_min_ping_interval",
]
_AT_LEAST_ONE = [
    "watch_revisions_kept",
    "upstream_max_connections",
    "grpc_max_concurrent_streams",
    "limit_streams_per_caller",
    "limit_streams_total",
    "limit_watched_per_caller",
    "limit_upstream_per_caller",
]
_NOT_NEGATIVE = [
    "limit_upstream_queue_per_caller",
    "grpc_max_ping_strikes",
    "grpc_max_connection_age",
    "grpc_max_connection_age_grace",
]
PINNED: list[tuple[dict[str, str], str]] = [
    *(({name.upper(): "0"}, f"{name} must be greater than 0") for name in _POSITIVE),
    *(({name.upper(): "0"}, f"{name} must be at least 1") for name in _AT_LEAST_ONE),
    *(({name.upper(): "-1"}, f"{name} must be 0 or more") for name in _NOT_NEGATIVE),
    ({"UPSTREAM_TIMEOUT": "soon"}, "upstream_timeout must be a number, got 'soon'"),
    ({"LIMIT_STREAMS_TOTAL": "many"}, "limit_streams_total must be a number, got 'many'"),
    ({"SIMULATOR_STAGE_SECONDS": "-1"}, "simulator_stage_seconds must be 0 or more"),
    # Changed on purpose (#30): each message names the one setting that is wrong (it named both of these).
    ({"OWNER_TRUST_SECONDS": "-1"}, "owner_trust_seconds must be 0 or more"),
    ({"RESULTS_CACHE_MAX_BYTES": "-1"}, "results_cache_max_bytes must be 0 or more"),
    ({"WATCH_POLL_MIN": "20"}, "watch_poll_min must not be more than watch_poll_max"),
    (
        {"WATCH_LEASE_SECONDS": "15"},
        "watch_lease_seconds must be more than watch_poll_max (the holder renews at each poll)",
    ),
    ({"OWNER_SECRET": "short"}, "owner_secret must be at least 16 characters"),
    ({"TOKEN_KEYS": "nope"}, "token_keys: write each key as <generation>:<secret>, e.g. 2:<secret>,1:<older secret>"),
    ({"MAX_MESSAGE_BYTES": "1000"}, "max_message_bytes must be at least 1 MiB"),
    ({"GATEWAY_URL": "localhost:8000"}, "GATEWAY_URL must start with http:// or https://, got 'localhost:8000'"),
    ({"GATEWAY_API_ROOT": "/v2"}, "GATEWAY_API_ROOT must be auto, /v1 or /api/v1, got '/v2'"),
    ({"DATABASE_URL": "mysql://db/state"}, "DATABASE_URL must start with postgresql:// or postgres://"),
    (
        {"STATE_DB": "postgresql://db/one", "DATABASE_URL": "postgresql://db/two"},
        "STATE_DB and DATABASE_URL name two different databases: set one",
    ),
    ({"TLS_KEY": "/nonexistent.key"}, "tls_cert and tls_key go together: set both or neither"),
    ({"TLS_CLIENT_CA": "/nonexistent.pem"}, "tls_client_ca needs tls_cert and tls_key"),
    ({"TLS_CERT": "/nonexistent.pem", "TLS_KEY": "/nonexistent.key"}, "tls_cert: no file at /nonexistent.pem"),
    ({"EVENT_LOOP": "trio"}, "event_loop must be uvloop or asyncio, got 'trio'"),
    ({"LOG_LEVEL": "chatty"}, "log_level must be DEBUG, INFO, WARNING or ERROR, got 'chatty'"),
    ({"GRPC_LISTEN": "50051"}, "grpc_listen must be host:port, got '50051'"),
    ({"SIMULATOR_LISTEN": "host"}, "simulator_listen must be host:port, got 'host'"),
    ({"METRICS_ADDRESS": "127.0.0.1:99999"}, "metrics_address must be host:port, got '127.0.0.1:99999'"),
]


@pytest.mark.parametrize(
    ("env", "message"), PINNED, ids=[next(iter(env)) + "=" + v for env, _ in PINNED for v in [next(iter(env.values()))]]
)
def test_each_bad_setting_gets_its_message_whole(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load([], env)
    assert str(caught.value) == message


def test_every_bad_setting_is_named_at_once() -> None:
    """A person fixing their settings sees all that is wrong in one start, not one per attempt."""
    with pytest.raises(ConfigError) as caught:
        load(["--log-level", "chatty"], {"UPSTREAM_TIMEOUT": "0", "OWNER_SECRET": "short"})
    assert str(caught.value).split("; ") == [
        "owner_secret must be at least 16 characters",
        "upstream_timeout must be greater than 0",
        "log_level must be DEBUG, INFO, WARNING or ERROR, got 'chatty'",
    ]


def test_an_unknown_setting_is_refused_by_name() -> None:
    with pytest.raises(ConfigError, match="upstream_timout"):
        Settings(upstream_timout=3)


def test_load_reads_the_process_environment_and_settings_built_in_code_read_none(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("UPSTREAM_TIMEOUT", "9")
    monkeypatch.setenv("GATEWAY_API_KEY", "sk-sdk")
    assert (load([]).upstream_timeout, load([]).service_key) == (9.0, "sk-sdk")
    assert (Settings().upstream_timeout, Settings().service_key) == (30.0, None)  # as tests build theirs


def test_without_a_gateway_and_without_the_simulator_the_start_says_what_to_do(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from otari_batch_grpc.server import __main__ as entry

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "uvicorn" else real(name, *a))
    simulated = Settings(state_db=tmp_path / "state.db")
    assert "set GATEWAY_URL" in (entry.simulator_missing(simulated) or "")
    assert "'.[simulator]'" in (entry.simulator_missing(simulated) or "")
    assert entry.simulator_missing(Settings(state_db=tmp_path / "s.db", gateway_url="http://127.0.0.1:1")) is None
    monkeypatch.setattr(importlib.util, "find_spec", real)
    assert entry.simulator_missing(simulated) is None  # installed here: it starts
