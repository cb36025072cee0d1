"""The gateway's model list, `GET {api_root}/models`: one entry per configured model, `provider:model`, as the real
gateway answers it (GATEWAY-CONTRACT.md); what the service reads to know which providers there are to ask."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from otari_batch_grpc.simulator.routes.gate import Auth, Sim, answer, authenticate, before
from otari_batch_grpc.simulator.state import BATCH_PROVIDERS, PROVIDERS_WITHOUT_BATCH

router = APIRouter()

MODELS = {"openai": "gpt-4o-mini", "anthropic": "claude-3-5-haiku", "mistral": "mistral-small", "groq": "llama-3"}


@router.get("/models", response_model=None)
async def list_models(request: Request, auth: Auth, state: Sim) -> Response:
    if (early := await before(state, "models", request)) is not None:
        return early
    authenticate(state, auth)
    data = [
        {"id": f"{provider}:{MODELS[provider]}", "object": "model", "created": 0, "owned_by": provider}
        for provider in (*BATCH_PROVIDERS, *PROVIDERS_WITHOUT_BATCH)
    ]
    return await answer(request, {"object": "list", "data": data})
