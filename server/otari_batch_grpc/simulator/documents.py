"""What the simulator answers, as the real gateway's JSON: the OpenAI batch object (plus `provider`) and the results
document, each item an any-llm ChatCompletion that echoes its request (or the failure the request asked for)."""

from __future__ import annotations

from array import array
from dataclasses import dataclass

from cachetools import LRUCache

from otari_batch_grpc.simulator.state import SimBatch, SimState
from otari_batch_grpc.simulator.state_file import JSON


def batch_object(state: SimState, batch: SimBatch, provider_echo: str) -> JSON:
    """The OpenAI batch object the gateway returns: every field present, nulls included."""
    status, stamps = state.status_of(batch)
    total = len(batch.requests)
    tally = _tally(batch)
    done = _progress(state, batch, status)
    finished = round(total * done)
    failed = min(tally.failing, finished)
    completed = finished - failed
    counts = {"completed": completed, "failed": failed, "total": total if status != "validating" else 0}
    # The batch's usage is its completed requests' usage, as their results report it.
    used = min(completed, len(tally.prompt) - 1)
    prompt, completion = tally.prompt[used], tally.completion[used]
    has_output = status == "completed" and completed > 0
    has_errors = status == "completed" and failed > 0
    return {
        "id": batch.id,
        "completion_window": batch.completion_window,
        "created_at": int(batch.created_at),
        "endpoint": "/v1/chat/completions",
        "input_file_id": f"file-in-{batch.id[6:18]}",
        "object": "batch",
        "status": status,
        "cancelled_at": stamps.get("cancelled_at"),
        "cancelling_at": stamps.get("cancelling_at"),
        "completed_at": stamps.get("completed_at"),
        "error_file_id": f"file-err-{batch.id[6:18]}" if has_errors else None,
        "errors": None,
        "expired_at": stamps.get("expired_at"),
        "expires_at": int(batch.created_at) + 86400,
        "failed_at": stamps.get("failed_at"),
        "finalizing_at": stamps.get("finalizing_at"),
        "in_progress_at": stamps.get("in_progress_at"),
        "metadata": dict(batch.metadata),
        "model": batch.model,
        "output_file_id": f"file-out-{batch.id[6:18]}" if has_output else None,
        "request_counts": counts,
        "usage": {
            "input_tokens": prompt,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": completion,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": prompt + completion,
        },
        "provider": provider_echo,
    }


def results_document(batch: SimBatch) -> list[JSON]:
    """The results document of a completed batch. Items whose failure went to the provider's error file only
    are missing, as on the real gateway."""
    out: list[JSON] = []
    for index, request in enumerate(batch.requests):
        failure = _failure_of(request)
        if failure is None:
            out.append(
                {
                    "custom_id": request["custom_id"],
                    "result": _completion(batch, request, index),
                    "error": None,
                }
            )
        elif not failure.get("error_file_only"):
            error = {"code": failure.get("code", "unknown"), "message": failure.get("message", "failed")}
            out.append({"custom_id": request["custom_id"], "result": None, "error": error})
    return out


def _progress(state: SimState, batch: SimBatch, status: str) -> float:
    stage = state.stage_of(batch)
    if status in ("completed", "finalizing"):
        return 1.0
    if status == "in_progress":
        return min(1.0, (state.clock() - batch.created_at - stage) / max(stage, 1e-9))
    if status in ("cancelling", "cancelled") and batch.cancel_at is not None:
        elapsed = batch.cancel_at - batch.created_at - stage
        return max(0.0, min(1.0, elapsed / max(stage, 1e-9)))
    return 0.0


@dataclass(frozen=True)
class _Tally:
    """What a batch's requests add up to: how many fail, and the running sums of the tokens the others use, in
    order (`prompt[k]`: the first k's). Read once per batch, since its requests never change after create: a read of
    a batch's state costs the gateway nothing per request, and so costs none here (10,000 requests took 10 ms a
    read, and every StreamResults reads its batch first)."""

    failing: int
    prompt: array[int]
    completion: array[int]


_TALLIES: LRUCache[str, _Tally] = LRUCache(maxsize=256)


def _tally(batch: SimBatch) -> _Tally:
    if (found := _TALLIES.get(batch.id)) is not None:
        return found
    prompt, completion = array("q", [0]), array("q", [0])
    failing = 0
    for request in batch.requests:
        if _failure_of(request) is not None:
            failing += 1
            continue
        used = _usage_of(request)
        prompt.append(prompt[-1] + used[0])
        completion.append(completion[-1] + used[1])
    _TALLIES[batch.id] = tally = _Tally(failing, prompt, completion)
    return tally


def _failure_of(request: JSON) -> JSON | None:
    simulate = request.get("body", {}).get("simulate")
    if isinstance(simulate, dict) and isinstance(simulate.get("fail"), dict):
        return {**simulate["fail"], "error_file_only": bool(simulate.get("error_file_only"))}
    return None


def _last_message(request: JSON) -> str:
    messages = request.get("body", {}).get("messages") or []
    return str(messages[-1].get("content", "")) if messages and isinstance(messages[-1], dict) else ""


def _usage_of(request: JSON) -> tuple[int, int]:
    """A request's (prompt, completion) tokens: about four characters a token, of its last message and the echo."""
    last = _last_message(request)
    return max(1, len(last) // 4), max(1, len(f"Echo: {last}") // 4)


def _completion(batch: SimBatch, request: JSON, index: int) -> JSON:
    """An any-llm ChatCompletion: OpenAI's chat.completion plus any-llm's extra nullable fields."""
    content = f"Echo: {_last_message(request)}"
    prompt_tokens, completion_tokens = _usage_of(request)
    return {
        "id": f"chatcmpl-{batch.id[6:14]}-{index}",
        "object": "chat.completion",
        "created": int(batch.created_at),
        "model": batch.model,
        "choices": [
            {
                "index": 0,
                "finish_reason": "stop",
                "logprobs": None,
                "message": {
                    "role": "assistant",
                    "content": content,
                    "refusal": None,
                    "tool_calls": None,
                    "function_call": None,
                    "annotations": [],
                    "audio": None,
                    "reasoning": None,
                    "images": None,
                    "extra_content": None,
                },
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "prompt_tokens_details": {
                "cached_tokens": 0,
                "audio_tokens": None,
                "text_tokens": None,
                "image_tokens": None,
                "cache_write_tokens": None,
            },
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "audio_tokens": None,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
                "text_tokens": None,
                "image_tokens": None,
            },
            "cache_creation_token_details": None,
        },
        "system_fingerprint": "fp_sim",
        "service_tier": "default",
        "moderation": None,
        "metadata": None,
    }
