"""Server reflection, v1 and v1alpha, serving the contract with its comments.

The files served are the ones `make generate` wrote to `descriptors.binpb` with source info, so grpcurl's `describe`
shows every comment of the .proto files, plus health, reflection itself (v1alpha, and v1 made from it) and
google.rpc's Status and error details, so a reflection client can decode the details trailer. The services listed
are exactly those the files declare, so every service listed can be described. grpcio-reflection drops source info
(upb's CopyToProto keeps none) and implements v1alpha only, hence this small servicer: v1 has the same messages,
field for field, under another service name, so both names are served by one handler with v1alpha's
(de)serializers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from importlib import resources

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool
from google.rpc import error_details_pb2, status_pb2
from grpc import aio
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import reflection_pb2

V1 = "grpc.reflection.v1.ServerReflection"
V1ALPHA = "grpc.reflection.v1alpha.ServerReflection"
Request = reflection_pb2.ServerReflectionRequest
Response = reflection_pb2.ServerReflectionResponse


class _Files:
    """Every file served, serialized as it will be sent, and a pool to find the file that holds a symbol."""

    def __init__(self) -> None:
        contract = descriptor_pb2.FileDescriptorSet.FromString(
            (resources.files("otari_batch_grpc.v1") / "descriptors.binpb").read_bytes()
        )
        ours = {proto.name: proto for proto in contract.file}
        v1 = _reflection_v1()
        ours[v1.name] = v1
        self.pool = descriptor_pool.DescriptorPool()
        self.serialized: dict[str, bytes] = {}
        self.dependencies: dict[str, list[str]] = {}
        self.services: list[str] = []  # every service the files declare: what the server lists

        def add(name: str) -> None:
            if name in self.serialized:
                return
            proto = ours.get(name)
            if proto is None:  # a dependency such as google/protobuf/struct.proto: as the runtime has it
                proto = _runtime(name)
            for dependency in proto.dependency:
                add(dependency)
            self.pool.Add(proto)
            self.serialized[name] = proto.SerializeToString()
            self.dependencies[name] = list(proto.dependency)
            self.services += [f"{proto.package}.{service.name}" for service in proto.service]

        served = (health_pb2, reflection_pb2, status_pb2, error_details_pb2)
        for name in [*ours, *(module.DESCRIPTOR.name for module in served)]:
            add(name)
        self.services.sort()

    def with_dependencies(self, name: str) -> list[bytes]:
        """The file first, then everything it imports, each once."""
        order: list[str] = []
        todo = [name]
        while todo:
            current = todo.pop(0)
            if current not in order:
                order.append(current)
                todo.extend(self.dependencies[current])
        return [self.serialized[n] for n in order]


def _runtime(name: str) -> descriptor_pb2.FileDescriptorProto:
    proto = descriptor_pb2.FileDescriptorProto()
    descriptor_pool.Default().FindFileByName(name).CopyToProto(proto)
    return proto


def _reflection_v1() -> descriptor_pb2.FileDescriptorProto:
    """grpc/reflection/v1/reflection.proto, which grpcio-reflection does not ship: v1alpha's file under v1's names
    (the two declare the same messages, field for field), so a client asking over v1 can describe v1 itself."""
    proto = _runtime(reflection_pb2.DESCRIPTOR.name)
    old, new = f".{proto.package}.", ".grpc.reflection.v1."
    proto.name, proto.package = "grpc/reflection/v1/reflection.proto", "grpc.reflection.v1"
    proto.ClearField("options")
    messages = list(proto.message_type)
    while messages:
        message = messages.pop()
        messages.extend(message.nested_type)
        for field in message.field:
            if field.HasField("type_name"):
                field.type_name = field.type_name.replace(old, new)
    for method in (m for service in proto.service for m in service.method):
        method.input_type, method.output_type = (
            method.input_type.replace(old, new),
            method.output_type.replace(old, new),
        )
    return proto


class ReflectionServicer:
    def __init__(self) -> None:
        self._files = _Files()
        self._services = self._files.services

    async def ServerReflectionInfo(
        self, requests: AsyncIterator[Request], context: aio.ServicerContext[Request, Response]
    ) -> AsyncIterator[Response]:
        async for request in requests:
            yield self._answer(request)

    def _answer(self, request: Request) -> Response:
        kind = request.WhichOneof("message_request")
        try:
            if kind == "list_services":
                services = [reflection_pb2.ServiceResponse(name=name) for name in self._services]
                return Response(
                    original_request=request,
                    list_services_response=reflection_pb2.ListServiceResponse(service=services),
                )
            if kind == "file_by_filename":
                return self._file(request, request.file_by_filename)
            if kind == "file_containing_symbol":
                name = self._files.pool.FindFileContainingSymbol(request.file_containing_symbol).name
                return self._file(request, name)
            if kind == "all_extension_numbers_of_type":  # the contract declares no extensions
                message = self._files.pool.FindMessageTypeByName(request.all_extension_numbers_of_type)
                return Response(
                    original_request=request,
                    all_extension_numbers_response=reflection_pb2.ExtensionNumberResponse(
                        base_type_name=message.full_name
                    ),
                )
        except KeyError:
            return _error(request, grpc.StatusCode.NOT_FOUND, "not found")
        return _error(request, grpc.StatusCode.NOT_FOUND, f"{kind or 'an empty request'} is not supported")

    def _file(self, request: Request, name: str) -> Response:
        if name not in self._files.serialized:
            raise KeyError(name)
        files = reflection_pb2.FileDescriptorResponse(file_descriptor_proto=self._files.with_dependencies(name))
        return Response(original_request=request, file_descriptor_response=files)


def _error(request: Request, code: grpc.StatusCode, message: str) -> Response:
    error = reflection_pb2.ErrorResponse(error_code=code.value[0], error_message=message)
    return Response(original_request=request, error_response=error)


def enable(server: aio.Server) -> None:
    """Serve reflection (v1 and v1alpha) on `server`: every service the contract, health and reflection declare."""
    servicer = ReflectionServicer()
    method = grpc.stream_stream_rpc_method_handler(
        servicer.ServerReflectionInfo,
        request_deserializer=Request.FromString,
        response_serializer=Response.SerializeToString,
    )
    for name in (V1, V1ALPHA):
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(name, {"ServerReflectionInfo": method}),))
