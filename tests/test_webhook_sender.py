"""One webhook sent (#32): signed as Standard Webhooks has it and verified with its library, to a real receiver on
loopback (allowed here, as for development); no redirect followed, reads bounded in time and size."""

from __future__ import annotations

import asyncio
import email.utils
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiohttp import web
from standardwebhooks.webhooks import Webhook

from otari_batch_grpc.server.webhooks.sender import NotDelivered, Sender, SenderLimits
from otari_batch_grpc.server.webhooks.signing import new_secret, signed_headers
from otari_batch_grpc.server.webhooks.targets import TargetPolicy
from tests.conftest import Receiver

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
DEVELOPMENT = TargetPolicy(loopback=True)
QUICK = SenderLimits(connect_seconds=1.0, read_seconds=0.3, max_response_bytes=1024)


@pytest.fixture
async def sender() -> AsyncIterator[Sender]:
    made = Sender(DEVELOPMENT, limits=QUICK)
    try:
        yield made
    finally:
        await made.aclose()


async def test_a_webhook_arrives_signed_and_verifies_with_the_specs_library(sender: Sender, receiver: Receiver) -> None:
    old, new = new_secret(), new_secret()
    body = json.dumps({"type": "batch.completed", "timestamp": "2026-12-06T10:00:00Z", "data": {"id": "b"}}).encode()
    at = time.time()
    answer = await sender.send(receiver.url, body, signed_headers([new, old], "msg_1", at, body))
    assert answer.status == 204 and answer.retry_after is None
    ((path, headers, got),) = receiver.got
    assert path == "/hooks/otari" and got == body
    for secret in (old, new):  # while a secret is rotated, a receiver that knows either one verifies
        assert Webhook(secret).verify(got, headers)["type"] == "batch.completed"
    assert (headers["webhook-id"], headers["webhook-timestamp"]) == ("msg_1", str(int(at)))
    with pytest.raises(Exception, match="No matching signature"):
        Webhook(new_secret()).verify(got, headers)


async def test_a_redirect_is_answered_not_followed(sender: Sender, receiver: Receiver) -> None:
    async def redirect(_request: web.Request) -> web.StreamResponse:
        return web.Response(status=307, headers={"Location": "http://169.254.169.254/latest/meta-data"})

    receiver.answer = redirect
    answer = await sender.send(receiver.url, b"{}", {})
    assert answer.status == 307 and len(receiver.got) == 1


async def test_a_slow_or_long_answer_is_not_waited_for_or_read_whole(sender: Sender, receiver: Receiver) -> None:
    async def slow(_request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(2)
        return web.Response(status=200)

    async def long(_request: web.Request) -> web.StreamResponse:
        return web.Response(status=200, body=b"x" * 5000)

    receiver.answer = slow
    with pytest.raises(NotDelivered, match="took too long") as caught:
        await sender.send(receiver.url, b"{}", {})
    assert "s3cret" not in str(caught.value) and not caught.value.refused  # the URL's query is never shown
    receiver.answer = long
    with pytest.raises(NotDelivered, match="more than 1024 bytes"):
        await sender.send(receiver.url, b"{}", {})


@pytest.mark.parametrize(("header", "seconds"), [("7", 7.0), ("(in 60 s, as a date)", 60.0), ("soon", None)])
async def test_retry_after_is_read_as_seconds(
    sender: Sender, receiver: Receiver, header: str, seconds: float | None
) -> None:
    if header.startswith("("):
        header = email.utils.formatdate(time.time() + 60, usegmt=True)

    async def busy(_request: web.Request) -> web.StreamResponse:
        return web.Response(status=503, headers={"Retry-After": header})

    receiver.answer = busy
    answer = await sender.send(receiver.url, b"{}", {})
    assert answer.status == 503
    if seconds is None:
        assert answer.retry_after is None
    else:
        assert answer.retry_after is not None and abs(answer.retry_after - seconds) < 2


async def test_a_target_refused_is_not_connected_to() -> None:
    resolved: list[str] = []

    async def resolver(host: str, port: int) -> list[str]:
        resolved.append(host)
        return ["10.0.0.7"]

    sender = Sender(TargetPolicy(), limits=QUICK, resolver=resolver)
    with pytest.raises(NotDelivered, match="not public") as caught:
        await sender.send("https://hooks.example.com/x?token=s3cret", b"{}", {})
    assert caught.value.refused and "s3cret" not in str(caught.value) and resolved == ["hooks.example.com"]
    assert "10.0.0.7" not in str(caught.value)  # (what the service's resolver said is not the caller's to learn)
    with pytest.raises(NotDelivered, match="must be https") as caught:  # loopback not allowed here
        await sender.send("http://127.0.0.1:9/x", b"{}", {})
    assert caught.value.refused


async def test_connections_to_a_receiver_are_kept_and_used_again(sender: Sender, receiver: Receiver) -> None:
    peers: list[object] = []

    async def noted(request: web.Request) -> web.StreamResponse:
        assert request.transport is not None
        peers.append(request.transport.get_extra_info("peername"))
        return web.Response(status=204)

    receiver.answer = noted
    for _ in range(3):
        assert (await sender.send(receiver.url, b"{}", {})).status == 204
    assert len(peers) == 3 and len(set(peers)) == 1  # one connection, kept alive
    await sender.aclose()
    assert (await sender.send(receiver.url, b"{}", {})).status == 204  # closed: a new one, to the address checked
    assert len(set(peers)) == 2


async def test_an_internationalized_host_is_connected_to_at_the_address_checked() -> None:
    """aiohttp asks for the host in its xn-- form: the address checked for it is the one connected to."""
    asked: list[str] = []
    accepted: list[object] = []

    async def resolver(host: str, port: int) -> list[str]:
        asked.append(host)
        return ["127.0.0.1"]

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer.get_extra_info("peername"))
        writer.close()  # (no TLS here: the try fails once connected, which is all this asks)

    listener = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    sender = Sender(TargetPolicy(loopback=True), limits=QUICK, resolver=resolver)
    try:
        with pytest.raises(NotDelivered):
            await sender.send(f"https://Bücher.example:{port}/hooks", b"{}", {})
    finally:
        await sender.aclose()
        listener.close()
        await listener.wait_closed()
    assert asked == ["xn--bcher-kva.example"] and len(accepted) == 1  # (resolved as it is sent, IDNA 2008)


async def test_a_host_written_with_its_trailing_dot_is_sent_to(sender: Sender, receiver: Receiver) -> None:
    url = receiver.url.replace("127.0.0.1", "localhost.")
    assert (await sender.send(url, b"{}", {})).status == 204
