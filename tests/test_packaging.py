"""The two distributions as a user installs them: each into a fresh venv, not editable, run from outside the
checkout. The client brings only what calling takes; the service installs beside PyPI's `otari` (mozilla-ai's SDK,
which owns that top-level name) and serves from its installed files."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

# Every test here starts processes (venvs, pip, the service): minutes on a cold machine.
pytestmark = [pytest.mark.subprocess, pytest.mark.slow, pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parent.parent
CLIENT_REQUIRES = {"grpcio", "grpcio-status", "googleapis-common-protos", "protobuf"}
# What serves: none of it may come with the client.
SERVING = {"fastapi", "uvicorn", "asyncpg", "aiohttp", "httpx", "msgspec", "prometheus-client"}


def _venv(path: Path, *requirements: str) -> Path:
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
    pip = [str(path / "bin/python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, *requirements], check=True, cwd=path)
    return path / "bin"


def _run(bin_dir: Path, *argv: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(cwd), **env}
    command = [str(bin_dir / argv[0]), *argv[1:]]
    return subprocess.run(command, cwd=cwd, env=environment, capture_output=True, text=True, timeout=120)


def _installed(bin_dir: Path, cwd: Path) -> dict[str, list[str]]:
    """Each installed distribution (normalized name) and its requirements without markers."""
    script = (
        "import json, importlib.metadata as m, re\n"
        "norm = lambda n: re.sub(r'[-_.]+', '-', n).lower()\n"
        "print(json.dumps({norm(d.metadata['Name']): [r for r in (d.requires or []) if ';' not in r]"
        " for d in m.distributions()}))"
    )
    return json.loads(_run(bin_dir, "python", "-c", script, cwd=cwd).stdout)  # type: ignore[no-any-return]


def _names(requirements: list[str]) -> set[str]:
    return {re.split(r"[\s<>=!~\[;]", r, maxsplit=1)[0].lower() for r in requirements}


def _copy_of_the_checkout(dest: Path) -> Path:
    """The checkout's files (tracked, and new ones not ignored) in `dest`: pip builds there, not in the checkout."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    return dest


@pytest.mark.skipif(os.environ.get("OTARI_SKIP_INSTALL_TESTS") == "1", reason="OTARI_SKIP_INSTALL_TESTS=1")
def test_the_client_installs_alone_with_only_what_calling_takes(tmp_path: Path) -> None:
    checkout = _copy_of_the_checkout(tmp_path / "checkout")  # (pip builds there, not in the developer's tree)
    bin_dir = _venv(tmp_path / "venv", str(checkout / "clients/python"))
    installed = _installed(bin_dir, tmp_path)
    assert _names(installed["otari-batch-grpc-client"]) == CLIENT_REQUIRES
    assert not SERVING & installed.keys(), sorted(SERVING & installed.keys())
    assert "otari-batch-grpc" not in installed
    probe = "import otari_batch_grpc.client, otari_batch_grpc.cli, otari_batch_grpc.v1.batch_service_pb2_grpc"
    assert _run(bin_dir, "python", "-c", probe, cwd=tmp_path).returncode == 0
    missing = _run(bin_dir, "python", "-c", "import otari_batch_grpc.server", cwd=tmp_path)
    assert "No module named 'otari_batch_grpc.server'" in missing.stderr
    assert "submit" in _run(bin_dir, "otari-batch", "--help", cwd=tmp_path).stdout


@pytest.mark.skipif(os.environ.get("OTARI_SKIP_INSTALL_TESTS") == "1", reason="OTARI_SKIP_INSTALL_TESTS=1")
def test_the_service_installs_beside_pypis_otari_and_serves(tmp_path: Path) -> None:
    checkout = _copy_of_the_checkout(tmp_path / "checkout")
    bin_dir = _venv(tmp_path / "venv", str(checkout / "clients/python"), f"{checkout}[simulator]", "otari")
    site = next((tmp_path / "venv/lib").glob("python3*/site-packages"))
    ours = {p.name for p in site.iterdir() if not p.name.endswith((".dist-info", ".pth")) and p.name != "__pycache__"}
    assert {"otari", "otari_batch_grpc"} <= ours and not {"server", "clients", "generated"} & ours
    probe = "import otari, otari_batch_grpc.server.app, otari_batch_grpc.v1; print(otari.__file__)"
    assert _run(bin_dir, "python", "-c", probe, cwd=tmp_path).stdout.strip() == str(site / "otari/__init__.py")

    # The installed service on its embedded default (the simulator, SQLite), called by the installed CLI.
    env = {"GRPC_LISTEN": "127.0.0.1:0", "STATE_DB": str(tmp_path / "state.db"), "SHUTDOWN_GRACE": "1"}
    environment = {"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(tmp_path), **env}
    server = subprocess.Popen(
        [str(bin_dir / "otari-batch-grpc")], cwd=tmp_path, env=environment, stderr=subprocess.PIPE, text=True
    )
    try:
        assert server.stderr is not None
        port = 0
        for line in server.stderr:
            if match := re.search(r"\(port (\d+)\)", line):
                port = int(match.group(1))
                break
        assert port, "the installed server did not start"
        (tmp_path / "in.jsonl").write_text(json.dumps({"custom_id": "q1", "body": {"messages": []}}) + "\n")
        cli = ("otari-batch", "--target", f"127.0.0.1:{port}")
        key = {"OTARI_API_KEY": "sim-key-alice"}
        submitted = _run(bin_dir, *cli, "submit", "in.jsonl", "--model", "openai:gpt-4o-mini", cwd=tmp_path, **key)
        assert submitted.returncode == 0, submitted.stderr
        got = _run(bin_dir, *cli, "get", submitted.stdout.strip(), "--json", cwd=tmp_path, **key)
        assert json.loads(got.stdout)["id"] == submitted.stdout.strip()
    finally:
        server.terminate()
        server.wait(30)


def test_make_run_installs_what_serving_needs_and_make_test_the_rest(tmp_path: Path) -> None:
    """Asked of make itself (-n: what it would run) for a checkout with no .venv yet."""

    def would(target: str) -> str:
        ran = subprocess.run(
            ["make", "-n", target, f"VENV={tmp_path / 'venv'}"], cwd=ROOT, capture_output=True, text=True, check=True
        )
        return ran.stdout

    run = would("run")
    assert "'.[simulator,tracing]'" in run and "[dev]" not in run and "[tools]" not in run
    assert "'.[dev]'" in would("test")


def _readme_install_block() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Installing it elsewhere", 1)[1]
    block = section.split("```sh\n", 1)[1].split("```", 1)[0]
    return [line.split("#", 1)[0].strip() for line in block.splitlines() if line.strip()]


def _files_of(bin_dir: Path, cwd: Path, name: str) -> set[str]:
    script = f"import importlib.metadata as m; print('\\n'.join(str(f) for f in m.files({name!r})))"
    listed = _run(bin_dir, "python", "-c", script, cwd=cwd).stdout.split()
    return {f for f in listed if ".dist-info/" not in f and "__pycache__" not in f and not f.startswith("..")}


@pytest.mark.skipif(os.environ.get("OTARI_SKIP_INSTALL_TESTS") == "1", reason="OTARI_SKIP_INSTALL_TESTS=1")
def test_the_readmes_pip_commands_install_both_apart_and_build_both_wheels(tmp_path: Path) -> None:
    source = _copy_of_the_checkout(tmp_path / "checkout")
    commands = _readme_install_block()
    assert commands[0] == "pip install ./clients/python ."
    subprocess.run([sys.executable, "-m", "venv", str(tmp_path / "venv")], check=True)
    bin_dir = tmp_path / "venv/bin"
    environment = {"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(tmp_path), "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    for command in commands:
        ran = subprocess.run(
            ["bash", "-c", command], cwd=source, env=environment, capture_output=True, text=True, timeout=600
        )
        assert ran.returncode == 0, f"{command}\n{ran.stderr[-3000:]}"

    service, client = (
        _files_of(bin_dir, tmp_path, "otari-batch-grpc"),
        _files_of(bin_dir, tmp_path, "otari-batch-grpc-client"),
    )
    assert any(f.startswith("otari_batch_grpc/server/") for f in service)
    assert any(f.startswith("otari_batch_grpc/v1/") for f in client)
    assert not service & client, sorted(service & client)  # no file belongs to both
    assert "usage" in _run(bin_dir, "otari-batch-grpc", "--help", cwd=tmp_path).stdout

    wheels = sorted(p.name for p in (source / "dist").glob("*.whl"))
    assert [w.split("-")[0] for w in wheels] == ["otari_batch_grpc", "otari_batch_grpc_client"], wheels

    # Either may go: with the service uninstalled, the client and its command line still work.
    removed = subprocess.run(
        [str(bin_dir / "pip"), "uninstall", "-y", "otari-batch-grpc"], env=environment, capture_output=True
    )
    assert removed.returncode == 0
    probe = "import otari_batch_grpc.client, otari_batch_grpc.sync_client, otari_batch_grpc.v1.batch_service_pb2"
    assert _run(bin_dir, "python", "-c", probe, cwd=tmp_path).returncode == 0
    assert "submit" in _run(bin_dir, "otari-batch", "--help", cwd=tmp_path).stdout
