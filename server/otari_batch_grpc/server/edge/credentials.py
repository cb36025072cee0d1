"""The caller's otari key, read from gRPC call metadata. It is forwarded per call and never logged."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from otari_batch_grpc.server.domain.errors import Code, ServiceError

_BEARER = "bearer "


@dataclass(frozen=True)
class Credential:
    """An otari API key. Its repr hides the key, so it cannot leak through a log or a traceback."""

    key: str = field(repr=False)
    source: str

    def __str__(self) -> str:
        return f"Credential(from {self.source})"


def credential_from_metadata(
    metadata: Iterable[tuple[str, str | bytes]] | None, *, service_key: str | None
) -> Credential:
    """The key the call carries, or the operator's service key, or UNAUTHENTICATED.

    Accepted, as the gateway accepts them: `authorization: Bearer <key>`, `otari-key: <key>` (a `Bearer ` prefix
    is accepted there too) and `x-api-key: <key>`.
    """
    headers: dict[str, str] = {}
    for name, value in metadata or ():
        if isinstance(value, str):
            headers.setdefault(name.lower(), value.strip())
    if "authorization" in headers:
        value = headers["authorization"]
        if not value.lower().startswith(_BEARER) or not value[len(_BEARER) :].strip():
            raise _unauthenticated("The 'authorization' metadata must be 'Bearer <otari key>'.", "MALFORMED_CREDENTIAL")
        return Credential(value[len(_BEARER) :].strip(), "authorization")
    if "otari-key" in headers:
        value = headers["otari-key"]
        if value.lower().startswith(_BEARER):
            value = value[len(_BEARER) :].strip()
        if not value:
            raise _unauthenticated("The 'otari-key' metadata is empty.", "MALFORMED_CREDENTIAL")
        return Credential(value, "otari-key")
    if headers.get("x-api-key"):
        return Credential(headers["x-api-key"], "x-api-key")
    if service_key:
        return Credential(service_key, "service-key")
    raise _unauthenticated(
        "No otari key: send it as call metadata 'authorization: Bearer <key>', 'otari-key: <key>' "
        "or 'x-api-key: <key>'.",
        "MISSING_CREDENTIAL",
    )


def _unauthenticated(message: str, reason: str) -> ServiceError:
    return ServiceError(Code.UNAUTHENTICATED, reason, message)
