"""Settings: read once at start from flags, then environment variables, then defaults; validated, then frozen.

Declared with pydantic-settings: a setting's environment variable is its name in capitals (the otari SDKs' names
are read too, after ours), its bounds are its constraints, its help is its `--help` and README text. A bad value is
a ConfigError whose message names the setting and what it must be.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Self

from pydantic import AfterValidator, AliasChoices, Field, ValidationError, ValidationInfo, model_validator
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)
from pydantic_settings.sources.utils import parse_env_vars

from otari_batch_grpc.server.domain.tokens import TokenKeys, TokenKeysError
from otari_batch_grpc.server.store.base import is_database_url
from otari_batch_grpc.server.webhooks.targets import TargetPolicy

_MIB = 1024 * 1024


def _opt(default: object, help_text: str, *, secret: bool = False, names: Sequence[str] = (), **bounds: Any) -> Any:
    """A setting: its default, its help; a secret never shows in repr; `names`, its own and the SDKs' (in order)."""
    alias = AliasChoices(*names) if names else None
    return Field(default, description=help_text, repr=not secret, validation_alias=alias, **bounds)


class ConfigError(ValueError):
    """A setting has a value the service cannot start with."""


# -- what a value must be --------------------------------------------------------------------------------------
def _one_of(label: str, allowed: tuple[str, ...], *, fold: bool = False) -> AfterValidator:
    said = f"{', '.join(allowed[:-1])} or {allowed[-1]}"

    def check(value: str) -> str:
        if (value.upper() if fold else value) not in allowed:
            raise ConfigError(f"{label} must be {said}, got {value!r}")
        return value

    return AfterValidator(check)


def _http_origin(value: str) -> str:
    if not value.startswith(("http://", "https://")):
        raise ConfigError(f"GATEWAY_URL must start with http:// or https://, got {value!r}")
    return value


def _database_url(value: str) -> str:
    if not is_database_url(value):
        raise ConfigError("DATABASE_URL must start with postgresql:// or postgres://")
    return value


def _keyring(value: str) -> str:
    try:
        TokenKeys.parse(value)
    except TokenKeysError as exc:
        raise ConfigError(f"token_keys: {exc}") from None
    return value


def _host_port(value: str, info: ValidationInfo) -> str:
    _split_host_port(value, str(info.field_name))
    return value


def _host_port_or_empty(value: str, info: ValidationInfo) -> str:
    return _host_port(value, info) if value else value  # empty: off


HttpOrigin = Annotated[str, AfterValidator(_http_origin)]
ApiRoot = Annotated[str, _one_of("GATEWAY_API_ROOT", ("auto", "/v1", "/api/v1"))]
DatabaseUrl = Annotated[str, AfterValidator(_database_url)]
Keyring = Annotated[str, AfterValidator(_keyring)]
HostPort = Annotated[str, AfterValidator(_host_port)]
HostPortOrEmpty = Annotated[str, AfterValidator(_host_port_or_empty)]


def _webhook_allow(value: str) -> str:
    try:
        webhook_targets(value)
    except ValueError as exc:
        raise ConfigError(f"WEBHOOK_ALLOW: {exc}") from None
    return value


def webhook_targets(allow: str) -> TargetPolicy:
    """WEBHOOK_ALLOW read: hosts and networks (CIDR) webhooks may go to beside public addresses, and `loopback`."""
    entries = [entry.strip() for entry in allow.split(",") if entry.strip()]
    loopback = "loopback" in entries
    return TargetPolicy.parse([e for e in entries if e != "loopback"], loopback=loopback)


WebhookAllow = Annotated[str, AfterValidator(_webhook_allow)]
LogLevel = Annotated[str, _one_of("log_level", ("DEBUG", "INFO", "WARNING", "ERROR"), fold=True)]
EventLoop = Annotated[str, _one_of("event_loop", ("uvloop", "asyncio"))]


class _SettingsBase(BaseSettings):
    """How settings are read and checked (the fields are Settings')."""

    model_config = SettingsConfigDict(frozen=True, extra="forbid", validate_by_name=True, env_ignore_empty=True)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """The values given, alone: `load` adds the flags and the environment (a Settings a test builds reads no
        environment variable of the developer's)."""
        return (init_settings,)

    # -- what each value must be -------------------------------------------------------------------------------
    @model_validator(mode="before")
    @classmethod
    def _a_url_in_state_db(cls, data: Any) -> Any:
        """A postgresql:// URL in STATE_DB is DATABASE_URL (STATE_DB keeps its default: local files go there)."""
        if isinstance(data, dict) and is_database_url(data.get("state_db", "")):
            url = data.pop("state_db")
            if data.get("database_url") not in (None, url):
                raise ConfigError("STATE_DB and DATABASE_URL name two different databases: set one")
            data["database_url"] = url
        return data

    @model_validator(mode="after")
    def _together(self) -> Self:
        _check_together(self)  # type: ignore[arg-type]  # (always a Settings)
        return self


class Settings(_SettingsBase):
    """Everything the service can be told. Each field has a flag and an environment variable."""

    gateway_url: HttpOrigin | None = _opt(
        None,
        "Base URL (origin) of the otari gateway or platform, e.g. https://api.otari.ai (also read from the SDK's "
        "GATEWAY_API_BASE). Unset: start the built-in gateway simulator (the simulator extra) and proxy that.",
        names=("gateway_url", "GATEWAY_API_BASE"),
    )
    gateway_api_root: ApiRoot = _opt(
        "auto",
        "Where the batch routes live: /v1 (the self-hosted gateway), /api/v1 (the otari platform, newer "
        "gateways), or auto: ask the gateway at start.",
    )
    grpc_listen: HostPort = _opt("127.0.0.1:50051", "host:port the gRPC server binds.")
    state_db: Path = _opt(
        Path("state/otari-batch-grpc.db"),
        "SQLite database holding the service's state. A postgresql:// URL here is taken as DATABASE_URL.",
    )
    database_url: DatabaseUrl | None = _opt(
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
        names=("service_key", "GATEWAY_API_KEY"),
    )
    platform_token: str | None = _opt(
        None,
        "An otari platform token (also read from the SDK's OTARI_AI_TOKEN, or the legacy GATEWAY_PLATFORM_TOKEN): "
        "sent as Authorization: Bearer on every call, the caller's API key then going in Otari-Key.",
        secret=True,
        names=("platform_token", "OTARI_AI_TOKEN", "GATEWAY_PLATFORM_TOKEN"),
    )
    owner_secret: str | None = _opt(
        None,
        "Server secret keying the hash that stands for a caller's credential in the state database. "
        "Unset: a random one kept in a file beside STATE_DB, or in the PostgreSQL database.",
        secret=True,
        min_length=16,
    )
    token_keys: Keyring | None = _opt(
        None,
        "Keys that seal page and resume tokens: comma-separated generation:secret pairs (secrets of 32 characters or "
        "more), e.g. 2:<new>,1:<old>. The highest generation seals, every one given opens; a token of a generation "
        "dropped is expired. Unset: one generated key kept beside STATE_DB, or in the PostgreSQL database (set it in "
        "production, so that reading the database is not enough to make tokens).",
        secret=True,
    )
    key_encryption_keys: Keyring | None = _opt(
        None,
        "Keys that encrypt what the service keeps of callers' secrets (a key delegated for a batch's re-runs), as "
        "TOKEN_KEYS: generation:secret pairs, the highest seals. Unset: one generated key kept beside STATE_DB, or in "
        "the PostgreSQL database (set it in production, so that reading the database is not enough to read them).",
        secret=True,
    )
    owner_trust_seconds: float = _opt(
        300.0,
        "Seconds the service serves what it keeps of a batch (its state, results, a replayed create) to a caller "
        "the gateway showed that batch to, without asking the gateway again; also the bound within which a key the "
        "gateway revoked is refused everywhere. 0: every such call asks the gateway.",
        ge=0,
    )
    providers: str = _opt(
        "",
        "Providers asked, after those a caller has batches with, for a batch id given without its provider "
        "(comma-separated, e.g. openai,anthropic); then those the gateway has models for (GET /models, read once "
        "in 5 minutes), at most 4 more.",
    )
    results_cache_max_bytes: int = _opt(1024**3, "Bytes of cached results kept at most; the oldest go first.", ge=0)
    results_cache_max_age: float = _opt(7 * 86400.0, "Seconds cached results are kept at most.", gt=0)
    watch_poll_min: float = _opt(1.0, "Seconds between polls of a watched batch right after it changed.", gt=0)
    watch_poll_max: float = _opt(15.0, "Seconds between polls of a watched batch unchanged for a while.", gt=0)
    watch_heartbeat: float = _opt(
        15.0, "Seconds without a change after which a watch stream gets a heartbeat event.", gt=0
    )
    watch_lease_seconds: float = _opt(
        30.0,
        "Replicas on one PostgreSQL: one of them polls each live batch, under a lease it renews at each poll; when it "
        "stops (killed, say), another takes over within this many seconds and one poll interval. More than "
        "WATCH_POLL_MAX.",
    )
    watch_failure_limit: float = _opt(
        120.0,
        "Seconds the gateway may keep failing for a watched batch before its watch streams end (UNAVAILABLE).",
        gt=0,
    )
    watch_revisions_kept: int = _opt(100, "Revisions kept per batch for resuming watches (older: start over).", ge=1)
    wait_default_timeout: float = _opt(60.0, "Seconds WaitBatch waits when the request sets no timeout.", gt=0)
    state_keep_seconds: float = _opt(
        30 * 86400.0,
        "Seconds the service keeps a batch (its registry entry, access, revisions, cached results) after the "
        "gateway last showed it to anyone through this service.",
        gt=0,
    )
    idempotency_keep_seconds: float = _opt(
        7 * 86400.0, "Seconds a CreateBatch request_id is honoured: a retry within them returns the first batch.", gt=0
    )
    idempotency_claim_seconds: float = _opt(
        3600.0,
        "Seconds a request_id whose create got no reply (so its outcome is unknown) stays blocked before a retry "
        "may create anew.",
        gt=0,
    )
    sweep_interval: float = _opt(3600.0, "Seconds between retention sweeps of the state database.", gt=0)
    upstream_timeout: float = _opt(
        30.0,
        "Seconds an upstream call may take (create, get, list, cancel); the caller's deadline can shorten it.",
        gt=0,
    )
    results_timeout: float = _opt(
        300.0, "Seconds the results download may take; the caller's deadline can shorten it.", gt=0
    )
    upstream_max_connections: int = _opt(100, "Connections the shared HTTP client keeps to the gateway at most.", ge=1)
    max_message_bytes: int = _opt(
        64 * _MIB, "Largest gRPC message received or sent: 64 MiB holds 50,000 requests of 1 KiB.", ge=_MIB
    )
    part_max_requests: int = _opt(
        10_000, "Requests one upstream batch (a part of a larger batch) holds at most; the gateway's limit.", ge=1
    )
    part_max_bytes: int = _opt(100 * _MIB, "Bytes of requests one part of a batch holds at most.", ge=1024)
    part_creates_at_once: int = _opt(4, "Parts of one batch the service creates upstream at once.", ge=1)
    tls_cert: Path | None = _opt(None, "PEM certificate chain of the server; with tls_key, the server speaks TLS.")
    tls_key: Path | None = _opt(None, "PEM private key of the server.")
    tls_client_ca: Path | None = _opt(
        None, "PEM CA bundle: when set, clients must present a certificate it signed (mTLS)."
    )
    grpc_max_concurrent_streams: int = _opt(1000, "Calls (HTTP/2 streams) open at once on one client connection.", ge=1)
    grpc_keepalive_time: float = _opt(
        30.0,
        "Seconds a connection may be silent before the server pings it: keeps load balancers' idle timers "
        "(often 60 s) from closing quiet watch streams, and finds clients that are gone.",
        gt=0,
    )
    grpc_keepalive_timeout: float = _opt(
        20.0, "Seconds the server waits for a ping's answer before it drops the connection.", gt=0
    )
    grpc_min_ping_interval: float = _opt(
        10.0,
        "Seconds a client must leave between its keepalive pings (idle connections included); one that pings "
        "more often gets strikes, then GOAWAY too_many_pings.",
        gt=0,
    )
    grpc_max_ping_strikes: int = _opt(
        2, "Too-early client pings tolerated before the connection is closed (0: no limit).", ge=0
    )
    grpc_max_connection_age: float = _opt(
        1800.0,
        "Seconds after which the server asks a client connection to go (GOAWAY; give or take a tenth), so long-lived "
        "clients reconnect and spread over the replicas behind a load balancer. 0: no limit.",
        ge=0,
    )
    grpc_max_connection_age_grace: float = _opt(
        300.0,
        "Seconds calls still open on a connection asked to go may take to finish; a stream still open after them "
        "is cut with UNAVAILABLE (clients resume).",
        ge=0,
    )
    limit_streams_per_caller: int = _opt(
        1000,
        "Streaming calls (StreamResults, WatchBatch, WatchBatches) one caller may have open at once; past it, "
        "RESOURCE_EXHAUSTED.",
        ge=1,
    )
    limit_streams_total: int = _opt(
        10_000, "Streaming calls open at once on the whole server; past it, RESOURCE_EXHAUSTED.", ge=1
    )
    limit_watched_per_caller: int = _opt(
        2000, "Batches one caller may watch at once, over all of its watch streams (each live one is polled).", ge=1
    )
    limit_upstream_per_caller: int = _opt(
        8, "Gateway calls one caller may have in flight at once; more wait in the caller's own queue.", ge=1
    )
    limit_upstream_queue_per_caller: int = _opt(
        256, "Gateway calls of one caller that may wait for a slot; past it, RESOURCE_EXHAUSTED.", ge=0
    )
    limit_batch_requests: int = _opt(1_000_000, "Requests one batch may hold; past it, RESOURCE_EXHAUSTED.", ge=1)
    limit_spooled_bytes_per_caller: int = _opt(
        2 * 1024**3,
        "Bytes of one caller's uploads (UploadBatch) being received at once; past it, RESOURCE_EXHAUSTED.",
        ge=1,
    )
    limit_spooled_bytes_total: int = _opt(8 * 1024**3, "Bytes of all uploads being received at once, in all.", ge=1)
    limit_parts_in_flight_per_caller: int = _opt(
        100, "Parts of one caller's batches being made upstream at once; past it, RESOURCE_EXHAUSTED.", ge=1
    )
    limit_endpoints_per_caller: int = _opt(20, "Webhook endpoints per caller; past it, RESOURCE_EXHAUSTED.", ge=1)
    webhook_allow: WebhookAllow = _opt(
        "",
        "Where webhooks may go beside public addresses: host names and networks (CIDR), comma-separated, and "
        "`loopback` to allow localhost (plain http:// too), for development. Private, link-local, CGNAT and other "
        "non-public addresses are refused unless listed.",
    )
    webhook_retry_window: float = _opt(86_400.0, "Seconds a webhook is tried for, from its first try.", gt=0)
    webhook_backoff_first: float = _opt(5.0, "Seconds: most wait after a first failed try (doubling, jittered).", gt=0)
    webhook_backoff_cap: float = _opt(3600.0, "Seconds: most wait between tries (and most Retry-After kept).", gt=0)
    webhook_deliveries_per_endpoint: int = _opt(4, "Webhooks tried at once for one endpoint, fleet-wide.", ge=1)
    webhook_deliveries_per_caller: int = _opt(16, "Webhooks tried at once for a caller's endpoints, per replica.", ge=1)
    webhook_deliveries_total: int = _opt(100, "Webhook deliveries tried at once by this replica.", ge=1)
    shutdown_grace: float = _opt(10.0, "Seconds in-flight calls get to finish after SIGTERM.", gt=0)
    health_interval: float = _opt(5.0, "Seconds between probes of the gateway for the health service.", gt=0)
    log_level: LogLevel = _opt("INFO", "Logging level: DEBUG, INFO, WARNING or ERROR.")
    metrics_address: HostPortOrEmpty = _opt(
        "",
        "host:port of the Prometheus metrics listener (GET /metrics), e.g. 127.0.0.1:9464 (port 0 picks a free "
        "one). Empty: no listener.",
    )
    event_loop: EventLoop = _opt(
        "uvloop", "The asyncio event loop: uvloop (faster per call) or asyncio (the standard one)."
    )
    simulator_listen: HostPort = _opt(
        "127.0.0.1:0", "host:port of the built-in gateway simulator, when it runs (port 0 picks a free one)."
    )
    simulator_stage_seconds: float = _opt(
        5.0, "Seconds the simulator keeps a batch in each of validating, in_progress and finalizing.", ge=0
    )

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as exc:
            raise ConfigError("; ".join(_message(error) for error in exc.errors())) from None

    # -- what the service reads --------------------------------------------------------------------------------
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


def _check_together(settings: Settings) -> None:
    """What settings must be of one another."""
    if settings.webhook_backoff_first > settings.webhook_backoff_cap:
        raise ConfigError("webhook_backoff_first must not be more than webhook_backoff_cap")
    if settings.watch_poll_min > settings.watch_poll_max:
        raise ConfigError("watch_poll_min must not be more than watch_poll_max")
    if settings.watch_lease_seconds <= settings.watch_poll_max:
        raise ConfigError("watch_lease_seconds must be more than watch_poll_max (the holder renews at each poll)")
    if (settings.tls_cert is None) != (settings.tls_key is None):
        raise ConfigError("tls_cert and tls_key go together: set both or neither")
    if settings.tls_client_ca is not None and settings.tls_cert is None:
        raise ConfigError("tls_client_ca needs tls_cert and tls_key")
    for name in ("tls_cert", "tls_key", "tls_client_ca"):
        path = getattr(settings, name)
        if path is not None and not path.is_file():
            raise ConfigError(f"{name}: no file at {path}")


def _split_host_port(value: str, name: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(f"{name} must be host:port, got {value!r}")
    return host.strip("[]"), int(port)


def _message(error: ErrorDetails) -> str:
    """One bad value's message, as a person fixing it reads it: the setting, and what it must be."""
    name = str(error["loc"][0]) if error["loc"] else "settings"
    context = error.get("ctx", {})
    kind = error["type"]
    if kind == "value_error":  # a ConfigError from a validator above: its message is whole
        return str(context["error"])
    if kind in ("float_parsing", "int_parsing", "int_from_float"):
        return f"{name} must be a number, got {error['input']!r}"
    if kind == "greater_than":
        return f"{name} must be greater than {_plain(context['gt'])}"
    if kind == "greater_than_equal":
        least = _plain(context["ge"])
        return f"{name} must be " + (
            "0 or more" if least == "0" else "at least 1 MiB" if least == str(_MIB) else f"at least {least}"
        )
    if kind == "string_too_short":
        return f"{name} must be at least {context['min_length']} characters"
    return f"{name}: {error['msg']}"


def env_names(name: str, setting: FieldInfo) -> list[str]:
    """The environment variables a setting is read from, in order: ours, then the SDKs'."""
    alias = setting.validation_alias
    if isinstance(alias, AliasChoices):
        return [str(choice).upper() for choice in alias.choices]
    return [name.upper()]


class _Environment(EnvSettingsSource):
    """Environment variables from a mapping: the process's, or those a test gives `load`."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        self._environ = environ
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:  # as pydantic-settings' own DotEnvSettingsSource does
        return parse_env_vars(self._environ, self.case_sensitive, self.env_ignore_empty, self.env_parse_none_str)


def load(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Settings from flags, then environment variables, then defaults. Raises ConfigError or exits on --help."""
    parser = argparse.ArgumentParser(
        prog="otari-batch-grpc",
        description="otari-batch-grpc: the otari gateway's Batch API as a gRPC service.",
        epilog="Every flag can also be set by the environment variable named in brackets.",
    )
    for name, setting in Settings.model_fields.items():
        shown = "unset" if not setting.repr else setting.default
        parser.add_argument(
            "--" + name.replace("_", "-"),
            dest=name,
            default=None,
            metavar=name.upper(),
            help=f"{setting.description} [{env_names(name, setting)[0]}] (default: {shown})",
        )
    flags = {name: value for name, value in vars(parser.parse_args(argv)).items() if value is not None}
    environment = _Environment(Settings, os.environ if environ is None else environ)
    return Settings(_build_sources=((InitSettingsSource(Settings, init_kwargs=flags), environment), flags))


# -- the README's settings table -------------------------------------------------------------------------------
README_TABLE_BEGIN = "<!-- settings table: made from Settings by `make generate`; do not edit by hand -->"
README_TABLE_END = "<!-- end of settings table -->"


def readme_table() -> str:
    """The README's table of settings, one row per field of Settings: its variable, default and help."""
    rows = [README_TABLE_BEGIN, "| variable | default | meaning |", "|---|---|---|"]
    for name, setting in Settings.model_fields.items():
        names = ", ".join(f"`{env}`" for env in env_names(name, setting))
        value = setting.default
        shown = "unset" if value is None else "empty" if value == "" else f"`{_plain(value)}`"
        rows.append(f"| {names} | {shown} | {str(setting.description).replace('|', '/')} |")
    return "\n".join([*rows, README_TABLE_END])


def _plain(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
