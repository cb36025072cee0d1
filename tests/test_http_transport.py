"""What a broken gateway connection means to a caller, through the gateway client (httpx's API over aiohttp's
pool, see http_transport): nothing listening is unreachable (UNAVAILABLE), a gateway that never answers is a timeout
(DEADLINE_EXCEEDED), and a body cut short is neither a timeout nor a success. Each gateway here is a raw socket
server that misbehaves on purpose."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from otari_batch_grpc.server.gateway.client import GatewayClient
from otari_batch_grpc.server.gateway.errors import UpstreamBadResponse, UpstreamTimeout, UpstreamUnreachable
from otari_batch_grpc.server.gateway.results_document import JSON, ResultsParser, plain

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _serve(handler: Handler) -> AsyncIterator[str]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()
        await server.wait_closed()


def _client(url: str, timeout: float = 5.0) -> GatewayClient:
    return GatewayClient(url, timeout=timeout, results_timeout=timeout, max_connections=4)


def _cut_short(head: bytes) -> Handler:
    """A gateway that promises 1,000 bytes of body, sends `head` of them and hangs up."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n" + head)
        await writer.drain()
        writer.close()

    return handler


async def test_a_refused_connection_is_unreachable_not_a_timeout() -> None:
    with socket.socket() as sock:  # a loopback port with nothing listening
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    client = _client(url)
    try:
        with pytest.raises(UpstreamUnreachable) as caught:
            await client.get_batch("k", "b", "openai", time_left=None)
    finally:
        await client.aclose()
    assert caught.value.cause == "ConnectError"


async def test_a_gateway_that_never_answers_is_a_timeout() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        await asyncio.sleep(5)
        writer.close()

    async for url in _serve(silent):
        client = _client(url, timeout=0.2)
        try:
            with pytest.raises(UpstreamTimeout):
                await client.get_batch("k", "b", "openai", time_left=None)
        finally:
            await client.aclose()


async def test_an_answer_cut_short_is_a_bad_response() -> None:
    async for url in _serve(_cut_short(b'{"id": "b", "status"')):
        client = _client(url)
        try:
            with pytest.raises(UpstreamBadResponse) as caught:
                await client.get_batch("k", "b", "openai", time_left=None)
        finally:
            await client.aclose()
    assert caught.value.problem.startswith("cut short")


async def test_results_cut_short_are_unreachable_not_a_timeout() -> None:
    parser: ResultsParser[JSON] = ResultsParser(plain, lambda item: item)
    async for url in _serve(_cut_short(b'{"results": [{"custom_id": "r0", "result": {}}, ')):
        client = _client(url)
        try:
            with pytest.raises(UpstreamUnreachable):
                async with client.stream_results("k", "b", "openai", parser, time_left=None) as items:
                    async for _ in items:
                        pass
        finally:
            await client.aclose()


async def test_an_answer_is_passed_through_whole() -> None:
    body = b'{"id": "b", "object": "batch", "status": "in_progress"}'
    seen: list[bytes] = []

    async def ok(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await reader.readuntil(b"\r\n\r\n"))
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\notari-attempt-id: a1\r\n\r\n%s" % (len(body), body))
        await writer.drain()
        writer.close()

    async for url in _serve(ok):
        client = _client(url)
        try:
            batch = await client.get_batch("k", "b", "openai", time_left=None)
        finally:
            await client.aclose()
    assert batch == {"id": "b", "object": "batch", "status": "in_progress"}
    assert b"authorization: bearer k" in seen[0].lower()
