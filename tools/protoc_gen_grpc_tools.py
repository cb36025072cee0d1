"""A protoc plugin that runs grpcio-tools' own generators, for `buf generate` (see buf.gen.yaml).

grpcio-tools builds its Python and gRPC Python generators into its protoc instead of shipping protoc-gen-* programs,
which are what buf runs. This plugin hands the files of buf's request to that protoc as a descriptor set and
answers with what the generators named in its option wrote:

    - local: [python, tools/protoc_gen_grpc_tools.py]
      opt: [python, grpc_python]
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from google.protobuf import descriptor_pb2
from google.protobuf.compiler import plugin_pb2
from grpc_tools import protoc

Response = plugin_pb2.CodeGeneratorResponse


def generate(request: plugin_pb2.CodeGeneratorRequest) -> Response:
    response = Response(supported_features=Response.FEATURE_PROTO3_OPTIONAL)
    with tempfile.TemporaryDirectory() as tmp:
        files, out = Path(tmp) / "files.binpb", Path(tmp) / "out"
        files.write_bytes(descriptor_pb2.FileDescriptorSet(file=request.proto_file).SerializeToString())
        out.mkdir()
        outs = [f"--{name}_out={out}" for name in request.parameter.split(",") if name]
        if protoc.main(["protoc", f"--descriptor_set_in={files}", *outs, *request.file_to_generate]) != 0:
            response.error = f"grpcio-tools' protoc failed on {', '.join(request.file_to_generate)} (see above)"
            return response
        for path in sorted(p for p in out.rglob("*") if p.is_file()):
            response.file.add(name=path.relative_to(out).as_posix(), content=path.read_text())
    return response


if __name__ == "__main__":
    sys.stdout.buffer.write(
        generate(plugin_pb2.CodeGeneratorRequest.FromString(sys.stdin.buffer.read())).SerializeToString()
    )
