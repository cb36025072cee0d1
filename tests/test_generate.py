"""tools/generate.py, behind `make generate` and `make check-generated`: every language's part of generated/ is
compared, so a stale, missing or extra file of any of them is named."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tools import generate


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("fresh")
    generate.build(out)
    return out


@pytest.fixture
def committed(fresh: Path, tmp_path: Path) -> Path:
    """A copy of what the generator makes now, standing for a generated/ that is up to date."""
    shutil.copytree(fresh, tmp_path / "generated")
    return tmp_path / "generated"


def test_what_is_committed_is_what_the_generator_makes(fresh: Path) -> None:
    assert generate.stale(fresh) == []


@pytest.mark.parametrize(
    "name",
    [
        "python/otari_batch_grpc/v1/batch_pb2.py",
        "python/otari_batch_grpc/v1/descriptors.binpb",
        "go/otari/batch/v1/batch_service_grpc.pb.go",
        "node/otari/batch/v1/Batch.ts",
    ],
)
def test_a_stale_file_of_any_language_is_named(fresh: Path, committed: Path, name: str) -> None:
    assert generate.stale(fresh, committed) == []
    with (committed / name).open("ab") as file:
        file.write(b"\n")
    assert generate.stale(fresh, committed) == [f"generated/{name}"]


def test_a_missing_or_an_extra_file_is_named(fresh: Path, committed: Path) -> None:
    (committed / "go/otari/batch/v1/watch.pb.go").unlink()
    (committed / "node/otari/batch/v1/Old.ts").write_text("")
    assert generate.stale(fresh, committed) == [
        "generated/go/otari/batch/v1/watch.pb.go",
        "generated/node/otari/batch/v1/Old.ts",
    ]


def test_the_python_modules_live_in_the_projects_namespace(fresh: Path) -> None:
    v1 = fresh / "python/otari_batch_grpc/v1"
    assert "from otari_batch_grpc.v1 import batch_pb2" in (v1 / "batch_service_pb2.py").read_text()
    assert not (fresh / "python/otari").exists()
    assert {p.name for p in v1.glob("*_grpc.py")} == {"batch_service_pb2_grpc.py", "webhook_service_pb2_grpc.py"}
