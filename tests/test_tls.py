"""TLS and mutual TLS: certificates made here with openssl, a real handshake on loopback."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import grpc
import pytest

from otari_batch_grpc.server.app import BatchServer
from otari_batch_grpc.v1 import batch_service_pb2 as pb
from otari_batch_grpc.v1 import batch_service_pb2_grpc
from tests.conftest import ALICE, Sim, make_settings

pytestmark = [
    pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command"),
    pytest.mark.subprocess,  # openssl makes the certificates
]


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, all signed by the CA."""
    d = tmp_path_factory.mktemp("pki")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=test-ca",
             "-keyout", "ca.key", "-out", "ca.pem", cwd=d)  # fmt: skip
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    for name in ("server", "client"):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}",
                 "-keyout", f"{name}.key", "-out", f"{name}.csr", cwd=d)  # fmt: skip
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                 "-days", "1", "-extfile", "san.ext", "-out", f"{name}.pem", cwd=d)  # fmt: skip
    return d


async def _list(port: int, credentials: grpc.ChannelCredentials) -> pb.ListBatchesResponse:
    async with grpc.aio.secure_channel(f"127.0.0.1:{port}", credentials) as channel:
        stub = batch_service_pb2_grpc.BatchServiceStub(channel)
        reply: pb.ListBatchesResponse = await stub.ListBatches(
            pb.ListBatchesRequest(provider="openai"), metadata=ALICE, timeout=5
        )
        return reply


async def test_tls_server(sim: Sim, pki: Path, tmp_path: Path) -> None:
    settings = make_settings(sim.url, tmp_path, tls_cert=pki / "server.pem", tls_key=pki / "server.key")
    async with BatchServer(settings, gateway_url=sim.url) as server:
        trusted = grpc.ssl_channel_credentials(root_certificates=(pki / "ca.pem").read_bytes())
        assert list((await _list(server.port, trusted)).batches) == []


async def test_mtls_requires_a_client_certificate(sim: Sim, pki: Path, tmp_path: Path) -> None:
    settings = make_settings(
        sim.url, tmp_path, tls_cert=pki / "server.pem", tls_key=pki / "server.key", tls_client_ca=pki / "ca.pem"
    )
    async with BatchServer(settings, gateway_url=sim.url) as server:
        ca = (pki / "ca.pem").read_bytes()
        with_cert = grpc.ssl_channel_credentials(
            root_certificates=ca,
            private_key=(pki / "client.key").read_bytes(),
            certificate_chain=(pki / "client.pem").read_bytes(),
        )
        assert list((await _list(server.port, with_cert)).batches) == []
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await _list(server.port, grpc.ssl_channel_credentials(root_certificates=ca))
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
