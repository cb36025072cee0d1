"""Settings: flags over environment over defaults; a bad value is a clear error at start."""

from __future__ import annotations

from pathlib import Path

import pytest

from otari_batch_grpc.server.config import ConfigError, load


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
