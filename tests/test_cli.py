"""The `otari-batch` command line, run as a real process against a real server and gateway simulator."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from otari_batch_grpc.server.app import BatchServer
from tests.conftest import Sim, make_settings

pytestmark = pytest.mark.subprocess  # every test here starts a process

CLI = Path(sys.executable).parent / "otari-batch"
MODEL = "openai:gpt-4o-mini"
# The first line as OpenAI's batch input file has it; the second as the contract's BatchRequestItem.
LINES: list[dict[str, object]] = [
    {
        "custom_id": "q1",
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hello"}], "max_tokens": 20},
    },
    {"custom_id": "q2", "body": {"messages": [{"role": "user", "content": "Bye"}]}},
]


@dataclass
class Ran:
    code: int
    out: str
    err: str


@dataclass
class Cli:
    """Runs `otari-batch` with a clean environment: PATH, HOME and the OTARI_* variables a test sets, no more."""

    target: str
    home: Path
    started: list[asyncio.subprocess.Process] = field(default_factory=list)

    def env(self, key: str | None, extra: dict[str, str]) -> dict[str, str]:
        env = {"PATH": f"{CLI.parent}{os.pathsep}/usr/bin:/bin", "HOME": str(self.home)}
        env["OTARI_BATCH_TARGET"] = self.target
        if key is not None:
            env["OTARI_API_KEY"] = key
        return {**env, **extra}

    async def start(
        self, *args: str, key: str | None = "sim-key-alice", env: dict[str, str] | None = None
    ) -> asyncio.subprocess.Process:
        process = await asyncio.create_subprocess_exec(
            str(CLI),
            *args,
            env=self.env(key, env or {}),
            cwd=self.home,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        self.started.append(process)
        return process

    async def finish(self, process: asyncio.subprocess.Process, stdin: bytes | None = None) -> Ran:
        out, err = await asyncio.wait_for(process.communicate(stdin), timeout=60)
        assert process.returncode is not None
        return Ran(process.returncode, out.decode(), err.decode())

    async def run(
        self,
        *args: str,
        key: str | None = "sim-key-alice",
        env: dict[str, str] | None = None,
        stdin: bytes | None = None,
    ) -> Ran:
        return await self.finish(await self.start(*args, key=key, env=env), stdin)

    async def submit(self, path: Path, *more: str) -> str:
        ran = await self.run("submit", str(path), "--model", MODEL, *more)
        assert ran.code == 0, ran.err
        return ran.out.strip()


def write_jsonl(path: Path, lines: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return path


@pytest.fixture
async def fast_server(sim: Sim, tmp_path: Path) -> AsyncIterator[BatchServer]:
    """A server that notices the simulator's status changes within a tenth of a second."""
    settings = make_settings(sim.url, tmp_path, watch_poll_min=0.05, watch_poll_max=0.1)
    async with BatchServer(settings, gateway_url=sim.url) as running:
        yield running


@pytest.fixture
async def cli(fast_server: BatchServer, tmp_path: Path) -> AsyncIterator[Cli]:
    home = tmp_path / "home"
    home.mkdir()
    runner = Cli(f"127.0.0.1:{fast_server.port}", home)
    yield runner
    for process in runner.started:  # only what this test started, by its own handle
        if process.returncode is None:
            process.kill()
            await process.wait()


@pytest.fixture
def requests_file(tmp_path: Path) -> Path:
    return write_jsonl(tmp_path / "requests.jsonl", LINES)


async def read_line(process: asyncio.subprocess.Process) -> str:
    assert process.stdout is not None
    return (await asyncio.wait_for(process.stdout.readline(), timeout=30)).decode()


async def test_submit_prints_the_batch_id(cli: Cli, sim: Sim, requests_file: Path) -> None:
    batch_id = await cli.submit(requests_file, "--metadata", "team=search", "--metadata", "stage=dev")
    made = sim.state.batches[batch_id]
    assert [line["custom_id"] for line in made.requests] == ["q1", "q2"]
    assert made.metadata["team"] == "search" and made.metadata["stage"] == "dev"


async def test_submit_json_from_stdin_with_a_request_id_is_idempotent(cli: Cli, sim: Sim) -> None:
    request_id = str(uuid.uuid4())
    text = "".join(json.dumps(line) + "\n" for line in LINES).encode()
    args = ("submit", "-", "--model", MODEL, "--request-id", request_id, "--json")
    first, again = await cli.run(*args, stdin=text), await cli.run(*args, stdin=text)
    assert first.code == again.code == 0, first.err + again.err
    batch, same = json.loads(first.out), json.loads(again.out)
    assert batch["id"] == same["id"] and list(sim.state.batches) == [batch["id"]]
    assert batch["status"] == "BATCH_STATUS_VALIDATING" and batch["requestId"] == request_id


async def test_get_list_and_cancel(cli: Cli, requests_file: Path) -> None:
    batch_id = await cli.submit(requests_file)

    shown = await cli.run("get", batch_id)
    rows = dict(line.split(None, 1) for line in shown.out.splitlines())
    assert shown.code == 0 and rows["id"] == batch_id and rows["status"] == "validating"
    assert rows["provider"] == "openai" and rows["user"] == "alice" and "metadata" not in rows  # none was set
    as_json = await cli.run("--json", "get", batch_id)
    assert json.loads(as_json.out)["id"] == batch_id and len(as_json.out.splitlines()) == 1

    listed = await cli.run("list", "--provider", "openai", "--limit", "5")
    assert listed.code == 0 and listed.out.split()[0] == batch_id
    lines = (await cli.run("list", "--provider", "openai", "--json")).out.splitlines()
    assert [json.loads(line)["id"] for line in lines] == [batch_id]

    cancelled = await cli.run("cancel", batch_id)
    assert cancelled.code == 0 and cancelled.out.split()[0] == batch_id
    status = json.loads((await cli.run("get", batch_id, "--json")).out)["status"]
    assert status in ("BATCH_STATUS_CANCELLING", "BATCH_STATUS_CANCELLED")


async def test_results_to_a_file_once_completed(cli: Cli, sim: Sim, requests_file: Path, tmp_path: Path) -> None:
    batch_id = await cli.submit(requests_file)
    await sim.force(batch_id, "completed")
    out = tmp_path / "out.jsonl"
    ran = await cli.run("results", batch_id, "-o", str(out))
    assert ran.code == 0 and ran.out == "" and f"wrote 2 results to {out}" in ran.err
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["custom_id"] for line in lines] == ["q1", "q2"]
    first = lines[0]
    assert first["error"] is None and first["response"]["status_code"] == 200
    body = first["response"]["body"]
    assert body["object"] == "chat.completion" and body["choices"][0]["message"]["content"] == "Echo: Hello"
    assert isinstance(body["created"], int) and body["usage"]["total_tokens"] == 3  # numbers, not proto3's strings
    assert "extra" not in body  # fields without a typed home are back where the gateway had them

    to_stdout = await cli.run("results", batch_id)
    assert [json.loads(line) for line in to_stdout.out.splitlines()] == lines


async def test_results_wait_for_completion(cli: Cli, sim: Sim, requests_file: Path, tmp_path: Path) -> None:
    batch_id = await cli.submit(requests_file)
    out = tmp_path / "out.jsonl"
    process = await cli.start("results", batch_id, "--wait", "-o", str(out))
    await asyncio.sleep(0.5)  # whether it is already waiting or not, it must end with the results
    await sim.force(batch_id, "completed")
    ran = await cli.finish(process)
    assert ran.code == 0, ran.err
    assert "2/2" in ran.err  # the progress bar's last state
    assert len(out.read_text().splitlines()) == 2


async def test_watch_prints_events_until_terminal(cli: Cli, sim: Sim, requests_file: Path) -> None:
    batch_id = await cli.submit(requests_file)
    process = await cli.start("watch", batch_id)
    snapshot = await read_line(process)
    assert snapshot.split()[1:4] == ["snapshot", batch_id, "validating"]
    await sim.force(batch_id, "completed")
    ran = await cli.finish(process)
    assert ran.code == 0, ran.err
    assert ran.out.splitlines()[-1].split()[1:4] == ["change", batch_id, "completed"]


@pytest.mark.parametrize(("ending", "code"), [("completed", 0), ("cancelled", 1)])
async def test_submit_wait_follows_the_batch_to_its_end(
    cli: Cli, sim: Sim, requests_file: Path, ending: str, code: int
) -> None:
    process = await cli.start("submit", str(requests_file), "--model", MODEL, "--wait")
    batch_id = (await read_line(process)).strip()  # printed at once, before the wait
    await sim.force(batch_id, ending)
    ran = await cli.finish(process)
    assert ran.code == code, ran.err
    assert f"batch {batch_id} {'completed' if code == 0 else 'ended cancelled'}" in ran.err


async def test_without_rich_the_wait_says_so_and_goes_on(
    cli: Cli, sim: Sim, requests_file: Path, tmp_path: Path
) -> None:
    shadow = tmp_path / "shadow" / "rich"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text('raise ImportError("rich is not installed")\n')
    process = await cli.start(
        "submit", str(requests_file), "--model", MODEL, "--wait", env={"PYTHONPATH": str(shadow.parent)}
    )
    batch_id = (await read_line(process)).strip()
    await sim.force(batch_id, "completed")
    ran = await cli.finish(process)
    assert ran.code == 0, ran.err
    assert "the 'rich' package is not installed" in ran.err and "'otari-batch-grpc-client[cli]'" in ran.err
    assert f"{batch_id} completed 2/2" in ran.err


async def test_bad_input_exits_2(cli: Cli, sim: Sim, tmp_path: Path) -> None:
    broken = tmp_path / "broken.jsonl"
    broken.write_text(json.dumps(LINES[0]) + "\n{not json\n")
    ran = await cli.run("submit", str(broken), "--model", MODEL)
    assert ran.code == 2 and f"{broken}:2: not a JSON line" in ran.err

    wrong_url = write_jsonl(tmp_path / "embeddings.jsonl", [{**LINES[0], "url": "/v1/embeddings"}])
    ran = await cli.run("submit", str(wrong_url), "--model", MODEL)
    assert ran.code == 2 and "only /v1/chat/completions" in ran.err

    ran = await cli.run("submit", str(tmp_path / "missing.jsonl"), "--model", MODEL)
    assert ran.code == 2 and "cannot read" in ran.err

    ran = await cli.run("submit", str(write_jsonl(tmp_path / "ok.jsonl", LINES)), "--model", MODEL, "--metadata", "x")
    assert ran.code == 2 and "key=value" in ran.err

    no_id = write_jsonl(tmp_path / "no_id.jsonl", [{"body": LINES[0]["body"]}])
    ran = await cli.run("submit", str(no_id), "--model", MODEL)
    assert ran.code == 2 and f"{no_id}:1: custom_id is missing" in ran.err
    number_id = write_jsonl(tmp_path / "number_id.jsonl", [{**LINES[0], "custom_id": 7}])
    ran = await cli.run("submit", str(number_id), "--model", MODEL)
    assert ran.code == 2 and f"{number_id}:1: custom_id must be a string, not int" in ran.err

    ran = await cli.run("frobnicate")
    assert ran.code == 2 and "usage:" in ran.err
    assert not sim.state.batches


async def test_help_lists_every_exit_code(cli: Cli) -> None:
    ran = await cli.run("--help")
    text = " ".join(ran.out.split())  # argparse wraps the epilog to the terminal
    for code in ("0 ok", "1 anything else", "2 bad usage", "3 not found", "4 not allowed", "5 failed precondition"):
        assert code in text
    assert "6 unavailable" in text and "130 interrupted (Ctrl-C)" in text


async def test_another_users_batch_exits_3_for_a_user_with_no_batches_yet(cli: Cli, requests_file: Path) -> None:
    batch_id = await cli.submit(requests_file)
    for asked in (batch_id, "batch_madeup0000000000000000"):
        ran = await cli.run("get", asked, key="sim-key-bob")
        assert ran.code == 3 and "NOT_FOUND BATCH_NOT_FOUND" in ran.err, ran.err


async def test_one_result_is_one_result(cli: Cli, sim: Sim, tmp_path: Path) -> None:
    batch_id = await cli.submit(write_jsonl(tmp_path / "one.jsonl", LINES[:1]))
    await sim.force(batch_id, "completed")
    out = tmp_path / "out.jsonl"
    ran = await cli.run("results", batch_id, "-o", str(out))
    assert ran.code == 0 and f"wrote 1 result to {out}" in ran.err


async def test_invalid_argument_exits_2_with_the_field_violations(cli: Cli, sim: Sim, tmp_path: Path) -> None:
    ran = await cli.run("submit", str(write_jsonl(tmp_path / "r.jsonl", LINES)), "--model", "gpt-4o-mini")
    assert ran.code == 2
    assert ran.err.startswith("otari-batch: INVALID_ARGUMENT INVALID_REQUEST: --model: must be 'provider:model'")
    assert len(ran.err.splitlines()) == 1

    twice = write_jsonl(tmp_path / "twice.jsonl", [LINES[0], LINES[1], LINES[0]])
    ran = await cli.run("submit", str(twice), "--model", MODEL)
    assert ran.code == 2 and "requests[2].custom_id: 'q1' is already used" in ran.err
    assert f"({twice} line 3)" in ran.err  # the violation points at the file's line
    assert not sim.state.batches


async def test_an_unknown_batch_exits_3(cli: Cli, requests_file: Path) -> None:
    ran = await cli.run("get", "batch_doesnotexist", "--provider", "openai")
    assert ran.code == 3 and "NOT_FOUND BATCH_NOT_FOUND" in ran.err

    batch_id = await cli.submit(requests_file)
    ran = await cli.run("cancel", batch_id, "--provider", "openai", key="sim-key-bob")  # alice's, not bob's
    assert ran.code == 3 and "NOT_FOUND" in ran.err


async def test_a_wrong_key_exits_4_and_is_never_echoed(cli: Cli) -> None:
    secret = "sim-key-not-a-real-one-1234"
    ran = await cli.run("list", "--provider", "openai", key=secret)
    assert ran.code == 4 and "UNAUTHENTICATED" in ran.err
    ran_flag = await cli.run("--api-key", secret, "get", "batch_x", "--provider", "openai", key=None)
    assert ran_flag.code == 4
    helped = await cli.run("--help", key=secret)
    assert helped.code == 0
    assert all(secret not in text for text in (ran.out, ran.err, ran_flag.out, ran_flag.err, helped.out, helped.err))


async def test_results_of_a_batch_not_completed_exit_5(cli: Cli, requests_file: Path, tmp_path: Path) -> None:
    batch_id = await cli.submit(requests_file)
    out = tmp_path / "out.jsonl"
    ran = await cli.run("results", batch_id, "-o", str(out))
    assert ran.code == 5 and "FAILED_PRECONDITION BATCH_NOT_COMPLETED" in ran.err
    names = os.listdir(tmp_path)
    assert "out.jsonl" not in names and not [n for n in names if n.endswith(".partial")]  # nothing half-written


async def test_no_server_exits_6_saying_nothing_answers_there(cli: Cli) -> None:
    """At once (within the connect wait), not after every retry's backoff."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        target = f"127.0.0.1:{sock.getsockname()[1]}"
    ran = await cli.run("get", "batch_x", env={"OTARI_BATCH_TARGET": target})
    assert ran.code == 6 and f"nothing answers at {target}" in ran.err and "--target" in ran.err


# -- the first hour (#21): what a new user types works, and every mistake is loud ----------------------------------
async def test_submit_with_the_master_key_names_the_user(cli: Cli, requests_file: Path) -> None:
    args = ("submit", str(requests_file), "--model", MODEL, "--json")
    refused = await cli.run(*args, key="sim-master-key")
    assert refused.code == 2 and "user" in refused.err
    made = await cli.run(*args, "--user", "bob", key="sim-master-key")
    assert made.code == 0, made.err
    assert json.loads(made.out)["user"] == "bob"


async def test_a_create_past_its_deadline_prints_the_request_id_and_the_safe_retry(
    cli: Cli, requests_file: Path, sim: Sim
) -> None:
    await sim.fault(op="create", delay=6.0, times=1)  # past the server's UPSTREAM_TIMEOUT (5 s here)
    ran = await cli.run("submit", str(requests_file), "--model", MODEL, "--retries", "0")
    assert ran.code == 6, ran.err
    request_id = ran.err.split("--request-id ")[1].split()[0]
    assert str(uuid.UUID(request_id)) == request_id
    assert f"otari-batch submit {requests_file} --model {MODEL} --retries 0 --request-id {request_id}" in ran.err


async def test_ctrl_c_during_submit_wait_says_the_batch_runs_on_and_how_to_follow_it(
    cli: Cli, requests_file: Path
) -> None:
    process = await cli.start("submit", str(requests_file), "--model", MODEL, "--wait")
    assert process.stdout is not None
    batch_id = (await asyncio.wait_for(process.stdout.readline(), 30)).decode().strip()
    await asyncio.sleep(0.5)
    process.send_signal(signal.SIGINT)
    ran = await cli.finish(process)
    assert ran.code == 130
    assert f"batch {batch_id} runs on" in ran.err and f"otari-batch watch {batch_id}" in ran.err


async def test_one_metadata_pair_per_flag_so_the_file_is_not_taken_for_one(cli: Cli, requests_file: Path) -> None:
    ran = await cli.run("submit", "--metadata", "team=search", str(requests_file), "--model", MODEL, "--json")
    assert ran.code == 0, ran.err
    assert json.loads(ran.out)["metadata"] == {"team": "search"}


async def test_a_reader_that_goes_away_ends_the_command_quietly(cli: Cli, requests_file: Path) -> None:
    batch_id = await cli.submit(requests_file)
    process = await asyncio.create_subprocess_exec(
        "bash", "-c", f"'{CLI}' get {batch_id} | true",
        env=cli.env("sim-key-alice", {}), stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await asyncio.wait_for(process.communicate(), 30)
    assert err.decode() == ""


async def test_errors_name_the_flag_to_use(cli: Cli, sim: Sim, requests_file: Path) -> None:
    batch_id = await cli.submit(requests_file)
    waiting = await cli.run("results", batch_id)
    assert waiting.code == 5 and "add --wait" in waiting.err and "wait=true" not in waiting.err
    await sim.fault(op="models", status=404, detail="Not Found", times=1)  # a gateway with no model list
    unknown = await cli.run("get", "batch_not_here", key="sim-key-bob")  # bob has no batch: nothing to ask
    assert unknown.code == 2 and "--provider" in unknown.err and "Batch.provider" not in unknown.err


async def test_a_body_naming_another_model_is_refused_with_its_line(cli: Cli, tmp_path: Path) -> None:
    lines: list[dict[str, object]] = [*LINES, {"custom_id": "q3", "body": {"model": "gpt-4o", "messages": []}}]
    ran = await cli.run("submit", str(write_jsonl(tmp_path / "in.jsonl", lines)), "--model", MODEL)
    assert ran.code == 2 and "in.jsonl:3: body.model is 'gpt-4o'" in ran.err


async def test_a_wrong_key_is_said_and_exits_4_even_with_nothing_to_list(cli: Cli) -> None:
    ran = await cli.run("list", key="sim-key-alicd")
    assert ran.code == 4 and "UNAUTHENTICATED" in ran.err and "Invalid API key" in ran.err and ran.out == ""


@pytest.mark.slow
async def test_submit_of_a_file_larger_than_one_message_uploads_it_in_chunks(
    cli: Cli, sim: Sim, tmp_path: Path
) -> None:
    """20,001 requests of ~1 KiB (20 MiB): uploaded in chunks with progress, split upstream at 10,000, one id."""
    body = {"messages": [{"role": "user", "content": "x" * 1000}], "max_tokens": 8}
    big = write_jsonl(tmp_path / "big.jsonl", [{"custom_id": f"r{i}", "body": body} for i in range(20_001)])
    ran = await cli.run("submit", str(big), "--model", MODEL, "--max-attempts", "2")
    assert ran.code == 0, ran.err
    batch_id = ran.out.strip()
    assert batch_id.startswith("obatch_")
    assert "uploading requests" in ran.err and "20001/20001" in ran.err.replace(",", "")
    sizes = sorted(len(b.requests) for b in sim.state.batches.values())
    assert sizes == [1, 10_000, 10_000]
