"""The gateway client's transport (aiohttp under httpx) names failures as httpx does: a refused connection is not a
timeout, a silent server is, and a body cut short is a read failure."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest

from otari_batch_grpc.server.http_transport import GatewayTransport

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _serve(handler: Handler) -> AsyncIterator[str]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()
        await server.wait_closed()


def _client(url: str, timeout: float = 5.0) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=url, transport=GatewayTransport(max_connections=4), timeout=timeout)


async def test_a_refused_connection_is_a_connect_error_not_a_timeout() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    async with _client(url) as client:
        with pytest.raises(httpx.ConnectError):
            await client.get("/v1/batches")


async def test_a_server_that_never_answers_is_a_read_timeout() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        await asyncio.sleep(5)
        writer.close()

    async for url in _serve(silent):
        async with _client(url, timeout=0.2) as client:
            with pytest.raises(httpx.TimeoutException):
                await client.get("/v1/batches")


async def test_a_body_cut_short_is_a_read_failure_not_a_timeout() -> None:
    async def truncated(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{"results": [')
        await writer.drain()
        writer.close()

    async for url in _serve(truncated):
        async with _client(url) as client:
            with pytest.raises(httpx.TransportError) as caught:
                async with client.stream("GET", "/v1/batches/b/results") as response:
                    async for _ in response.aiter_bytes():
                        pass
            assert not isinstance(caught.value, httpx.TimeoutException)


async def test_an_answer_is_passed_through_whole() -> None:
    body = b'{"data": []}'

    async def ok(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        assert b"authorization: bearer k" in head.lower()
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\notari-attempt-id: a1\r\n\r\n%s" % (len(body), body))
        await writer.drain()
        writer.close()

    async for url in _serve(ok):
        async with _client(url) as client:
            response = await client.get("/v1/batches", headers={"authorization": "Bearer k"})
    assert response.status_code == 200
    assert response.json() == {"data": []}
    assert response.headers["otari-attempt-id"] == "a1"
