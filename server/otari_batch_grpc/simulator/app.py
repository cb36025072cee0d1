"""The otari gateway simulator as one ASGI app over a SimState: the gateway's batch routes and its key and user
management (under the state's `api_root`: `/v1` or `/api/v1`; the other root answers 404), the simulator's own
controls under /_simulator, and the pace every batch route keeps.

Same paths, `provider` query parameter, auth headers, status codes and FastAPI error bodies as the real gateway,
including its oddities. A development and test tool: never expose it beyond loopback.
"""

from __future__ import annotations

import functools

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from otari_batch_grpc.simulator.routes import accounts, batches, controls, models
from otari_batch_grpc.simulator.routes.gate import SIM_STATE, DropConnection, dropped
from otari_batch_grpc.simulator.state import SimState


def create_app(state: SimState) -> ASGIApp:
    """The simulator serving `state`, as slow as its pace says. The routes are one FastAPI app per api_root, made
    once per process (FastAPI analyses each route on its first request, tens of milliseconds an app: a test suite
    that starts a simulator per test paid it each time); each request carries the state it is served from."""
    routed = _routes(state.api_root)

    async def bound(scope: Scope, receive: Receive, send: Send) -> None:
        scope[SIM_STATE] = state
        await routed(scope, receive, send)

    return _Paced(bound, state=state, prefix=f"{state.api_root}/batches")


@functools.cache
def _routes(api_root: str) -> FastAPI:
    app = FastAPI(title="otari gateway simulator (development and test tool)", docs_url=None, redoc_url=None)
    app.include_router(batches.router, prefix=api_root)
    app.include_router(accounts.router, prefix=api_root)
    app.include_router(models.router, prefix=api_root)
    app.include_router(controls.router)
    app.add_exception_handler(DropConnection, dropped)  # type: ignore[arg-type]  # Starlette's handler type is wide
    return app


class _Paced:
    """Every batch route as slow, and as few at once, as the state's pace says (see SimState.latency). Plain ASGI,
    not Starlette's BaseHTTPMiddleware, so a request goes on when its client goes away, as a gateway's does: a create
    whose client was killed still makes its batch."""

    def __init__(self, app: ASGIApp, *, state: SimState, prefix: str) -> None:
        self.app, self.state, self.prefix = app, state, prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        paced = self.state.latency or self.state.concurrency
        if not paced or scope["type"] != "http" or not str(scope["path"]).startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        body: list[Message] = []  # the request, read at once while its client is there
        while not body or (body[-1]["type"] == "http.request" and body[-1].get("more_body", False)):
            body.append(await receive())

        async def replay() -> Message:
            return body.pop(0) if body else await receive()

        async with self.state.paced():
            await self.app(scope, replay, send)
