"""The transport under the gateway client: httpx's API over aiohttp's HTTP/1.1 connection pool.

httpx's own transport (httpcore on anyio) spends about 0.7 ms of CPU on a small GET here, more than the gRPC call it
serves; aiohttp's C-accelerated client does the same request in about 0.45 ms (measured for #12). The adapter is
`httpx-aiohttp`, the one the OpenAI SDK ships as its aiohttp backend. Its own error mapping names a refused
connection a timeout, so failures are renamed here, from the aiohttp exception, into the httpx exception that
means the same thing: the gateway client keeps telling "the gateway took too long" from "nothing answered".
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

# First match wins: aiohttp's timeouts are also TimeoutError, its connect failures also OSError.
_AS_HTTPX: tuple[tuple[type[BaseException], type[httpx.TransportError]], ...] = (
    (aiohttp.ConnectionTimeoutError, httpx.ConnectTimeout),
    (aiohttp.ServerTimeoutError, httpx.ReadTimeout),
    (TimeoutError, httpx.ReadTimeout),
    (aiohttp.ClientConnectorError, httpx.ConnectError),
    (aiohttp.ServerDisconnectedError, httpx.RemoteProtocolError),
    (aiohttp.ClientPayloadError, httpx.ReadError),
    (aiohttp.ClientError, httpx.NetworkError),
)


def _renamed(exc: BaseException) -> httpx.TransportError | None:
    origin = exc.__cause__ if isinstance(exc, httpx.TransportError) and exc.__cause__ is not None else exc
    for foreign, own in _AS_HTTPX:
        if isinstance(origin, foreign):
            return own(str(origin) or type(origin).__name__)
    return None


@contextlib.contextmanager
def _httpx_errors() -> Iterator[None]:
    try:
        yield
    except (httpx.TransportError, aiohttp.ClientError, TimeoutError) as exc:
        renamed = _renamed(exc)
        if renamed is None:
            raise
        raise renamed from exc


class _Body(httpx.AsyncByteStream):
    """A response body whose read failures carry httpx's names too."""

    def __init__(self, inner: httpx.AsyncByteStream) -> None:
        self._inner = inner

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _httpx_errors():
            async for chunk in self._inner:
                yield chunk

    async def aclose(self) -> None:
        with _httpx_errors():
            await self._inner.aclose()


class GatewayTransport(AiohttpTransport):
    """aiohttp under httpx, failures named as httpx names them."""

    def __init__(self, *, max_connections: int) -> None:
        super().__init__(
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
            trust_env=False,
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        with _httpx_errors():
            response = await super().handle_async_request(request)
        assert isinstance(response.stream, httpx.AsyncByteStream)
        response.stream = _Body(response.stream)
        return response
