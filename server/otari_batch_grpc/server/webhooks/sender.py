"""One webhook POSTed to its receiver: the URL's host resolved and checked (targets), the connection made to the
address checked and to no other (aiohttp asked for the host gets that address alone, TLS still verifying the
host's name), no redirect followed, connect and read bounded, and at most `max_response_bytes` of the answer read.
What came back (`Answer`) or why nothing did (`NotDelivered`) is the caller's to judge: a 2xx ends a delivery, a
410 disables its endpoint, anything else is tried again (honouring Retry-After)."""

from __future__ import annotations

import asyncio
import email.utils
import logging
import socket
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from otari_batch_grpc.server.webhooks.targets import Resolver, TargetPolicy, TargetRefused, redacted, resolve

log = logging.getLogger("otari_batch_grpc.webhooks")


@dataclass(frozen=True)
class Answer:
    """The receiver's answer: its status, Retry-After in seconds (None when it sent none, or one not understood),
    and the start of its body (for the endpoint's delivery log)."""

    status: int
    retry_after: float | None
    excerpt: str


class NotDelivered(Exception):
    """Nothing came back: the target refused (`refused`: a URL or address a webhook may not go to), or the
    connection failed, timed out, or the answer was too large. The message says which, for the caller, naming no URL."""

    def __init__(self, message: str, *, refused: bool = False) -> None:
        super().__init__(message)
        self.refused = refused


@dataclass(frozen=True)
class SenderLimits:
    connect_seconds: float = 5.0  # to resolve the host, and again to connect
    read_seconds: float = 10.0  # between two reads of the answer
    total_seconds: float = 30.0  # the whole try, however the receiver drips its answer
    max_response_bytes: int = 64 * 1024


class Sender:
    def __init__(
        self, policy: TargetPolicy, *, limits: SenderLimits | None = None, resolver: Resolver | None = None
    ) -> None:
        self._policy = policy
        self._limits = limits or SenderLimits()
        self._resolver = resolver
        self._tls = ssl.create_default_context()
        self._pins: dict[tuple[str, int], str] = {}  # (host, port): the address last checked for it
        self._session: aiohttp.ClientSession | None = None  # made at the first send (it needs the running loop)

    async def aclose(self) -> None:
        """Close the connections kept (a send after this opens new ones)."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _client(self) -> aiohttp.ClientSession:
        """One session for every send: its connections kept alive and used again, to the same receiver. A new
        connection goes to the address the send checked (see _Pinned); one kept was made to a checked address."""
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(resolver=_Pinned(self._pins), use_dns_cache=False, limit=0, ssl=self._tls)
            # No cookie jar: what one receiver sets must never ride on a delivery (another caller's, say).
            self._session = aiohttp.ClientSession(
                connector=connector, trust_env=False, cookie_jar=aiohttp.DummyCookieJar()
            )
        return self._session

    async def send(self, url: str, body: bytes, headers: Mapping[str, str]) -> Answer:
        limits = self._limits
        try:
            async with asyncio.timeout(limits.connect_seconds):
                target = await resolve(url, self._policy, self._resolver)
        except TargetRefused as exc:
            log.info("webhook to %s refused: %s", redacted(url), exc.detail)
            raise NotDelivered(f"the URL {exc}", refused=True) from None
        except TimeoutError:
            raise NotDelivered("its host took too long to resolve") from None
        timeout = aiohttp.ClientTimeout(
            total=limits.total_seconds, sock_connect=limits.connect_seconds, sock_read=limits.read_seconds
        )
        # Keyed as aiohttp will ask: the host as the URL encodes it (an IDN in its xn-- form), lower case.
        self._pins[(target.host, target.port)] = target.address  # (the host as aiohttp will ask: see targets)
        session = self._client()
        try:
            async with session.post(
                url, data=body, headers=dict(headers), allow_redirects=False, timeout=timeout
            ) as response:
                excerpt = b""  # (read until past the bound or the end: one read gives what one chunk held)
                while len(excerpt) <= limits.max_response_bytes:
                    chunk = await response.content.read(limits.max_response_bytes + 1 - len(excerpt))
                    if not chunk:
                        break
                    excerpt += chunk
                if len(excerpt) > limits.max_response_bytes:
                    raise NotDelivered(f"the receiver answered more than {limits.max_response_bytes} bytes")
                retry_after = _retry_after(response.headers.get("Retry-After"))
                return Answer(response.status, retry_after, excerpt[:512].decode("utf-8", "replace"))
        except TimeoutError:
            raise NotDelivered("the receiver took too long to answer") from None
        except aiohttp.ClientError as exc:
            raise NotDelivered(f"the receiver could not be reached ({type(exc).__name__})") from None


class _Pinned(AbstractResolver):
    """For a host, the address a send checked last, and no other (nothing else is resolved)."""

    def __init__(self, pins: dict[tuple[str, int], str]) -> None:
        self._pins = pins

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        address = self._pins.get((host.rstrip(".").lower(), port))
        if address is None:  # (never: every send pins its host before it connects)
            raise OSError(f"no address checked for {host}:{port}")
        address_family = socket.AF_INET6 if ":" in address else socket.AF_INET
        return [
            ResolveResult(
                hostname=host, host=address, port=port, family=address_family, proto=0, flags=socket.AI_NUMERICHOST
            )
        ]

    async def close(self) -> None:
        return None


def _retry_after(value: str | None) -> float | None:
    """Retry-After as seconds from now: a number of seconds, or an HTTP date."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
