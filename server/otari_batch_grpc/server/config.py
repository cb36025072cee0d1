"""Settings: read once at start from flags and environment variables, validated, then frozen."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from otari_batch_grpc.server.domain.tokens import TokenKeys, TokenKeysError
from otari_batch_grpc.server.store.base import is_database_url

_MIB = 1024 * 1024


def _opt(default: object, help_text: str, *, secret: bool = False) -> Any:
    return field(default=default, repr=not secret, metadata={"help": help_text, "secret": secret})


class ConfigError(ValueError):
    """A setting has a value the service cannot start with."""


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Everything the service can be told. Each field has a flag and an environment variable."""

    gateway_url: str | None = _opt(
        None,
        "Base URL (origin) of the otari gateway or platform, e.g. https://api.otari.ai (also read from the SDK's "
        "GATEWAY_API_BASE). Unset: start the built-in gateway simulator and proxy that.",
    )
    gateway_api_root: str = _opt(
        "auto",
        "Where the batch routes live: /v1 (the self-hosted gateway), /api/v1 (the otari platform, newer "
        "gateways), or auto: ask the gateway at start.",
    )
    grpc_listen: str = _opt("127.0.0.1:50051", "host:port the gRPC server binds.")
    state_db: Path = _opt(
        Path("state/otari-batch-grpc.db"),
        "SQLite database holding the service's state. A postgresql:// URL here is taken as DATABASE_URL.",
    )
    database_url: str | None = _opt(
        None,
        "PostgreSQL database holding the service's state instead (postgresql://user:password@host:5432/db), shared "
        "by replicas. STATE_DB's directory still holds the built-in simulator's state.",
        secret=True,
    )
    service_key: str | None = _opt(
        None,
        "An otari API key used for calls that bring no credential of their own (also read from the SDK's "
        "GATEWAY_API_KEY). Unset: such calls are refused.",
        secret=True,
    )
    platform_token: str | None = _opt(
        None,
        "An otari platform token (also read from the SDK's OTARI_AI_TOKEN, or the legacy GATEWAY_PLATFORM_TOKEN): "
        "sent as Authorization: Bearer on every call, the caller's API key then going in Otari-Key.",
        secret=True,
    )
    owner_secret: str | None = _opt(
        None,
        "Server secret keying the hash that stands for a caller's credential in the state database. "
        "Unset: a random one kept in a file beside STATE_DB, or in the PostgreSQL database.",
        secret=True,
    )
    token_keys: str | None = _opt(
        None,
        "Keys that seal page and resume tokens: comma-separated generation:secret pairs (secrets of 32 characters or "
        "more), e.g. 2:<new>,1:<old>. The highest generation seals, every one given opens; a token of a generation "
        "dropped is expired. Unset: one generated key kept beside STATE_DB, or in the PostgreSQL database (set it in "
        "production, so that reading the database is not enough to make tokens).",
        secret=True,
    )
    owner_trust_seconds: float = _opt(
        300.0,
        "Seconds the service serves what it keeps of a batch (its state, results, a replayed create) to a caller "
        "the gateway showed that batch to, without asking the gateway again; also the bound within which a key the "
        "gateway revoked is refused everywhere. 0: every such call asks the gateway.",
    )
    providers: str = _opt(
        "",
        "Providers asked, after those a caller has batches with, for a batch id given without its provider "
        "(comma-separated, e.g. openai,anthropic). Empty: only those.",
    )
    results_cache_max_bytes: int = _opt(1024**3, "Bytes of cached results kept at most; the oldest go first.")
    results_cache_max_age: float = _opt(7 * 86400.0, "Seconds cached results are kept at most.")
    watch_poll_min: float = _opt(1.0, "Seconds between polls of a watched batch right after it changed.")
    watch_poll_max: float = _opt(15.0, "Seconds between polls of a watched batch that has not changed for a while.")
    watch_heartbeat: float = _opt(15.0, "Seconds without a change after which a watch stream gets a heartbeat event.")
    watch_lease_seconds: float = _opt(
        30.0,
        "Replicas on one PostgreSQL: one of them polls each live batch, under a lease it renews at each poll; when it "
        "stops (killed, say), another takes over within this many seconds and one poll interval. More than "
        "WATCH_POLL_MAX.",
    )
    watch_failure_limit: float = _opt(
        120.0, "Seconds the gateway may keep failing for a watched batch before its watch streams end (UNAVAILABLE)."
    )
    watch_revisions_kept: int = _opt(100, "Revisions kept per batch for resuming watches; older tokens start over.")
    wait_default_timeout: float = _opt(60.0, "Seconds WaitBatch waits when the request sets no timeout.")
    state_keep_seconds: float = _opt(
        30 * 86400.0,
        "Seconds the service keeps a batch (its registry entry, access, revisions, cached results) after the "
        "gateway last showed it to anyone through this service.",
    )
    idempotency_keep_seconds: float = _opt(
        7 * 86400.0, "Seconds a CreateBatch request_id is honoured: a retry within them returns the first batch."
    )
    idempotency_claim_seconds: float = _opt(
        3600.0,
        "Seconds a request_id whose create got no reply (so its outcome is unknown) stays blocked before a retry "
        "may create anew.",
    )
    sweep_interval: float = _opt(3600.0, "Seconds between retention sweeps of the state database.")
    upstream_timeout: float = _opt(
        30.0,
        "Seconds an upstream call may take (create, get, list, cancel); the caller's deadline can shorten it.",
    )
    results_timeout: float = _opt(300.0, "Seconds the results download may take; the caller's deadline can shorten it.")
    upstream_max_connections: int = _opt(100, "Connections the shared HTTP client keeps to the gateway at most.")
    max_message_bytes: int = _opt(
        64 * _MIB,
        "Largest gRPC message received or sent. The default admits 10,000 requests with 1 KiB bodies.",
    )
    tls_cert: Path | None = _opt(None, "PEM certificate chain of the server; with tls_key, the server speaks TLS.")
    tls_key: Path | None = _opt(None, "PEM private key of the server.")
    tls_client_ca: Path | None = _opt(
        None, "PEM CA bundle: when set, clients must present a certificate it signed (mTLS)."
    )
    grpc_max_concurrent_streams: int = _opt(1000, "Calls (HTTP/2 streams) open at once on one client connection.")
    grpc_keepalive_time: float = _opt(
        30.0,
        "Seconds a connection may be silent before the server pings it: keeps load balancers' idle timers "
        "(often 60 s) from closing quiet watch streams, and finds clients that are gone.",
    )
    grpc_keepalive_timeout: float = _opt(
        20.0, "Seconds the server waits for a ping's answer before it drops the connection."
    )
    grpc_min_ping_interval: float = _opt(
        10.0,
        "Seconds a client must leave between its keepalive pings (idle connections included); one that pings "
        "more often gets strikes, then GOAWAY too_many_pings.",
    )
    grpc_max_ping_strikes: int = _opt(
        2, "Too-early client pings tolerated before the connection is closed (0: no limit)."
    )
    grpc_max_connection_age: float = _opt(
        1800.0,
        "Seconds after which the server asks a client connection to go (GOAWAY; give or take a tenth), so long-lived "
        "clients reconnect and spread over the replicas behind a load balancer. 0: no limit.",
    )
    grpc_max_connection_age_grace: float = _opt(
        300.0,
        "Seconds calls still open on a connection asked to go may take to finish; a stream still open after them "
        "is cut with UNAVAILABLE (clients resume).",
    )
    limit_streams_per_caller: int = _opt(
        1000,
        "Streaming calls (StreamResults, WatchBatch, WatchBatches) one caller may have open at once; past it, "
        "RESOURCE_EXHAUSTED.",
    )
    limit_streams_total: int = _opt(
        10_000, "Streaming calls open at once on the whole server; past it, RESOURCE_EXHAUSTED."
    )
    limit_watched_per_caller: int = _opt(
        2000, "Batches one caller may watch at once, over all of its watch streams (each live one is polled)."
    )
    limit_upstream_per_caller: int = _opt(
        8, "Gateway calls one caller may have in flight at once; more wait in the caller's own queue."
    )
    limit_upstream_queue_per_caller: int = _opt(
        256, "Gateway calls of one caller that may wait for a slot; past it, RESOURCE_EXHAUSTED."
    )
    shutdown_grace: float = _opt(10.0, "Seconds in-flight calls get to finish after SIGTERM.")
    health_interval: float = _opt(5.0, "Seconds between probes of the gateway for the health service.")
    log_level: str = _opt("INFO", "Logging level: DEBUG, INFO, WARNING or ERROR.")
    metrics_address: str = _opt(
        "",
        "host:port of the Prometheus metrics listener (GET /metrics), e.g. 127.0.0.1:9464 (port 0 picks a free "
        "one). Empty: no listener.",
    )
    event_loop: str = _opt("uvloop", "The asyncio event loop: uvloop (faster per call) or asyncio (the standard one).")
    simulator_listen: str = _opt(
        "127.0.0.1:0", "host:port of the built-in gateway simulator, when it runs (port 0 picks a free one)."
    )
    simulator_stage_seconds: float = _opt(
        5.0, "Seconds the simulator keeps a batch in each of validating, in_progress and finalizing."
    )

    def __post_init__(self) -> None:
        state_db: Path | str = self.state_db
        if isinstance(state_db, str):  # given as text (a URL, or a path not made a Path)
            if is_database_url(state_db):
                if self.database_url is not None and self.database_url != state_db:
                    raise ConfigError("STATE_DB and DATABASE_URL name two different databases: set one")
                object.__setattr__(self, "database_url", state_db)
                object.__setattr__(self, "state_db", Settings.state_db)
            else:
                object.__setattr__(self, "state_db", Path(state_db))
        if self.database_url is not None and not is_database_url(self.database_url):
            raise ConfigError("DATABASE_URL must start with postgresql:// or postgres://")
        if self.gateway_api_root not in ("auto", "/v1", "/api/v1"):
            raise ConfigError(f"GATEWAY_API_ROOT must be auto, /v1 or /api/v1, got {self.gateway_api_root!r}")
        if self.gateway_url is not None and not self.gateway_url.startswith(("http://", "https://")):
            raise ConfigError(f"GATEWAY_URL must start with http:// or https://, got {self.gateway_url!r}")
        for name in (
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
        ):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be greater than 0")
        if self.simulator_stage_seconds < 0:
            raise ConfigError("simulator_stage_seconds must be 0 or more")
        if self.watch_poll_min > self.watch_poll_max:
            raise ConfigError("watch_poll_min must not be more than watch_poll_max")
        if self.watch_lease_seconds <= self.watch_poll_max:
            raise ConfigError("watch_lease_seconds must be more than watch_poll_max (the holder renews at each poll)")
        if self.watch_revisions_kept < 1:
            raise ConfigError("watch_revisions_kept must be at least 1")
        if self.owner_trust_seconds < 0 or self.results_cache_max_bytes < 0:
            raise ConfigError("owner_trust_seconds and results_cache_max_bytes must be 0 or more")
        if self.owner_secret is not None and len(self.owner_secret) < 16:
            raise ConfigError("owner_secret must be at least 16 characters")
        if self.token_keys is not None:
            try:
                TokenKeys.parse(self.token_keys)
            except TokenKeysError as exc:
                raise ConfigError(f"token_keys: {exc}") from None
        if self.max_message_bytes < _MIB:
            raise ConfigError("max_message_bytes must be at least 1 MiB")
        if self.upstream_max_connections < 1:
            raise ConfigError("upstream_max_connections must be at least 1")
        if self.grpc_max_concurrent_streams < 1:
            raise ConfigError("grpc_max_concurrent_streams must be at least 1")
        for name in (
            "limit_streams_per_caller",
            "limit_streams_total",
            "limit_watched_per_caller",
            "limit_upstream_per_caller",
        ):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1")
        if self.limit_upstream_queue_per_caller < 0:
            raise ConfigError("limit_upstream_queue_per_caller must be 0 or more")
        for name in ("grpc_max_ping_strikes", "grpc_max_connection_age", "grpc_max_connection_age_grace"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be 0 or more")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ConfigError("tls_cert and tls_key go together: set both or neither")
        if self.tls_client_ca is not None and self.tls_cert is None:
            raise ConfigError("tls_client_ca needs tls_cert and tls_key")
        for name in ("tls_cert", "tls_key", "tls_client_ca"):
            path = getattr(self, name)
            if path is not None and not path.is_file():
                raise ConfigError(f"{name}: no file at {path}")
        if self.event_loop not in ("uvloop", "asyncio"):
            raise ConfigError(f"event_loop must be uvloop or asyncio, got {self.event_loop!r}")
        if self.log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise ConfigError(f"log_level must be DEBUG, INFO, WARNING or ERROR, got {self.log_level!r}")
        _split_host_port(self.grpc_listen, "grpc_listen")
        _split_host_port(self.simulator_listen, "simulator_listen")
        if self.metrics_address:
            _split_host_port(self.metrics_address, "metrics_address")

    @property
    def store_target(self) -> str | Path:
        """Where the state lives: the PostgreSQL URL if one is set, else the SQLite file."""
        return self.database_url if self.database_url is not None else self.state_db

    @property
    def tls(self) -> bool:
        return self.tls_cert is not None

    @property
    def metrics_host_port(self) -> tuple[str, int] | None:
        """Where the metrics listener binds; None when it is off."""
        return _split_host_port(self.metrics_address, "metrics_address") if self.metrics_address else None

    @property
    def simulator_host_port(self) -> tuple[str, int]:
        return _split_host_port(self.simulator_listen, "simulator_listen")


def _split_host_port(value: str, name: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(f"{name} must be host:port, got {value!r}")
    return host.strip("[]"), int(port)


def _env_name(field_name: str) -> str:
    return field_name.upper()


# The names the otari SDKs read, accepted after ours (ours win; among these, the first set wins).
SDK_NAMES: dict[str, tuple[str, ...]] = {
    "gateway_url": ("GATEWAY_API_BASE",),
    "service_key": ("GATEWAY_API_KEY",),
    "platform_token": ("OTARI_AI_TOKEN", "GATEWAY_PLATFORM_TOKEN"),
}


def load(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Settings from flags, then environment variables, then defaults. Raises ConfigError or exits on --help."""
    environ = os.environ if environ is None else environ
    parser = argparse.ArgumentParser(
        prog="otari-batch-grpc",
        description="otari-batch-grpc: the otari gateway's Batch API as a gRPC service.",
        epilog="Every flag can also be set by the environment variable named in brackets.",
    )
    defaults = Settings()
    for setting in fields(Settings):
        parser.add_argument(
            "--" + setting.name.replace("_", "-"),
            dest=setting.name,
            default=None,
            metavar=setting.name.upper(),
            help=f"{setting.metadata['help']} [{_env_name(setting.name)}] "
            f"(default: {'unset' if setting.metadata['secret'] else getattr(defaults, setting.name)})",
        )
    args = vars(parser.parse_args(argv))
    values: dict[str, object] = {}
    for setting in fields(Settings):
        raw = args[setting.name]
        for name in (_env_name(setting.name), *SDK_NAMES.get(setting.name, ())):
            if raw is None:
                raw = environ.get(name) or None
        if raw is None:
            continue
        values[setting.name] = _parse(setting.name, raw, getattr(defaults, setting.name))
    return Settings(**values)  # type: ignore[arg-type]


def _parse(name: str, raw: str, default: object) -> object:
    try:
        if isinstance(default, bool):
            return raw.lower() in ("1", "true", "yes", "on")
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from exc
    if name == "state_db" and is_database_url(raw):
        return raw  # a URL stays text (a Path would fold its "//"); __post_init__ takes it as database_url
    if name in ("state_db", "tls_cert", "tls_key", "tls_client_ca"):
        return Path(raw)
    return raw


# -- the README's settings table -------------------------------------------------------------------------------
README_TABLE_BEGIN = "<!-- settings table: made from Settings by `make generate`; do not edit by hand -->"
README_TABLE_END = "<!-- end of settings table -->"


def readme_table() -> str:
    """The README's table of settings, one row per field of Settings: its variable, default and help."""
    defaults = Settings()
    rows = [README_TABLE_BEGIN, "| variable | default | meaning |", "|---|---|---|"]
    for setting in fields(Settings):
        names = ", ".join(f"`{name}`" for name in (_env_name(setting.name), *SDK_NAMES.get(setting.name, ())))
        value = getattr(defaults, setting.name)
        shown = "unset" if value is None else "empty" if value == "" else f"`{_plain(value)}`"
        rows.append(f"| {names} | {shown} | {setting.metadata['help'].replace('|', '/')} |")
    return "\n".join([*rows, README_TABLE_END])


def _plain(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
