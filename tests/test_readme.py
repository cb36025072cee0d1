"""The README, run (#21): every sh and python block, as written, against a real server started as `make run` starts
it (the built-in simulator, SQLite), its address put in for 127.0.0.1:50051. A block that cannot run here says so
in an HTML comment above its fence, `<!-- readme-test: skip|fails|elsewhere — why -->`; a line whose comment ends
"until Ctrl-C" is stopped after a few seconds, as a reader would stop it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import port_to_bind_later

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
README = ROOT / "README.md"
ADDRESS = "127.0.0.1:50051"
_FENCE = re.compile(r"^(?P<indent> *)```(?P<lang>\w*)\n(?P<body>.*?)^(?P=indent)```$", re.M | re.S)
_MARK = re.compile(r"<!-- readme-test: (?P<kind>skip|fails|elsewhere) — (?P<why>.+?) -->\s*$")
CODE = {"sh", "python", "js", "go"}  # what a reader runs; json, yaml and plain blocks are there to read
UNTIL_CTRL_C = re.compile(r"^(?P<command>.*?)\s+#.*until Ctrl-C\s*$", re.M)


@dataclass(frozen=True)
class Block:
    line: int
    lang: str
    body: str
    mark: str  # "" (run it), skip, fails or elsewhere

    @property
    def name(self) -> str:
        return f"README.md:{self.line}:{self.lang}"


def blocks() -> list[Block]:
    text = README.read_text()
    found = []
    for match in _FENCE.finditer(text):
        if match.group("lang") not in CODE:
            continue
        before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        mark = _MARK.search(before)
        body = "\n".join(line.removeprefix(match.group("indent")) for line in match.group("body").splitlines())
        line = text.count("\n", 0, match.start()) + 1
        found.append(Block(line, match.group("lang"), body + "\n", mark.group("kind") if mark else ""))
    return found


def test_every_code_block_runs_or_says_why_not() -> None:
    every = blocks()
    assert len(every) >= 8
    unmarked = [b.name for b in every if not b.mark and b.lang not in ("sh", "python")]
    assert unmarked == [], "a block of a language this test cannot run needs a readme-test comment"
    assert sum(1 for b in every if not b.mark) >= 5


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The service as `make run` runs it: no GATEWAY_URL, so the built-in simulator (with short stages, so the
    walk-through's batches complete in seconds) and SQLite."""
    home = tmp_path_factory.mktemp("served")
    address = f"127.0.0.1:{port_to_bind_later()}"
    env = {
        "PATH": f"{BIN}:/usr/bin:/bin",
        "HOME": str(home),
        "STATE_DB": str(home / "state.db"),
        "GRPC_LISTEN": address,
        "SIMULATOR_STAGE_SECONDS": "0.3",
        "WATCH_POLL_MIN": "0.2",
        "WATCH_POLL_MAX": "0.5",
        "SHUTDOWN_GRACE": "1",
    }
    server = subprocess.Popen([str(BIN / "otari-batch-grpc")], env=env, stderr=subprocess.PIPE, text=True)
    try:
        assert server.stderr is not None
        for line in server.stderr:
            if "serving on" in line:
                break
        else:
            pytest.fail("the server did not start")
        yield address
    finally:
        server.terminate()
        server.wait(30)


@pytest.mark.parametrize("block", [b for b in blocks() if b.mark in ("", "fails")], ids=lambda b: b.name)
@pytest.mark.subprocess
def test_the_readme_block_runs_as_written(block: Block, served: str, tmp_path: Path) -> None:
    code = block.body.replace(ADDRESS, served)
    if block.lang == "sh":
        code = UNTIL_CTRL_C.sub(lambda m: f"{{ timeout -s INT 5 {m.group('command')} || [ $? -eq 124 ]; }}", code)
        script = tmp_path / "block.sh"
        script.write_text("set -euo pipefail\n" + code)
        command = ["bash", str(script)]
    else:
        script = tmp_path / "block.py"
        script.write_text(code)
        command = [str(BIN / "python"), str(script)]
    env = {"PATH": f"{BIN}:/usr/bin:/bin", "HOME": str(tmp_path), "LANG": os.environ.get("LANG", "C.UTF-8")}
    ran = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180)
    said = f"{block.name} exited {ran.returncode}\n--- stdout\n{ran.stdout[-3000:]}\n--- stderr\n{ran.stderr[-3000:]}"
    if block.mark == "fails":
        assert ran.returncode != 0, said
    else:
        assert ran.returncode == 0, said
    for marker, shown in SHOWS.items():  # what the block's comments promise, where it is that block
        if marker in block.body:
            assert all(text in ran.stdout + ran.stderr for text in shown), (shown, said)
    if '"startIndex": 1' in block.body:  # the whole stream shows q2, and so does the resume from result 1
        assert ran.stdout.count('"customId": "q2"') == 2, said
    if "big-output.jsonl" in block.body:  # 25,000 results, in the order of the requests, resumed near the end
        lines = (tmp_path / "big-output.jsonl").read_text().splitlines()
        assert [line.split('"custom_id": "')[1].split('"')[0] for line in lines] == [f"r{i}" for i in range(25_000)]
        assert ran.stdout.count('"customId": "r2499') == 2 and "obatch_" in ran.stdout, said
    if "results $ID -o output.jsonl" in block.body:
        lines = (tmp_path / "output.jsonl").read_text().splitlines()
        assert [line.split('"custom_id": "')[1].split('"')[0] for line in lines] == ["q1", "q2"]


# What a block shows (in its output), by a text that marks the block.
SHOWS = {
    "WatchBatches": ["ServerReflectionInfo", "BATCH_STATUS_COMPLETED", "Echo: Hello", "BATCH_STATUS_CANCELLING"],
    "print(error.code)": ["StatusCode.INVALID_ARGUMENT", "INVALID_REQUEST batch.otari.mozilla.ai", "model"],
    "async for event in client.watch": ["completed", "Echo: Hi"],
    "with SyncBatchClient": ["completed", "q1 Echo: Hi", "BATCH_NOT_FOUND"],
    '"page_size": -1': ["Code: InvalidArgument", "google.rpc.BadRequest"],
}


def test_the_settings_table_is_the_one_settings_makes() -> None:
    """The README's settings table is `Settings`, as `make generate` writes it: every field, its default, its help."""
    from otari_batch_grpc.server import config

    text = README.read_text()
    begin, end = text.index(config.README_TABLE_BEGIN), text.index(config.README_TABLE_END)
    table = text[begin : end + len(config.README_TABLE_END)]
    assert table == config.readme_table(), "the README's settings table is stale: run `make generate` and commit it"
    for name in config.Settings.model_fields:
        assert f"| `{name.upper()}`" in table
