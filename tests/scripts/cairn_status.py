"""Calls cairnd's GetStatus with nothing but grpcio and reflection: no .proto files,
no generated code. The README shows this as the way generic gRPC clients talk to
cairnd.

Usage: python3 cairn_status.py SOCKET [--no-authority]

grpcio sends the socket path as the HTTP/2 :authority of a unix: target; tonic's
HTTP/2 layer (h2) rejects that as a malformed authority (RST_STREAM PROTOCOL_ERROR),
so the channel sets the authority to "localhost". --no-authority leaves it out, to
show the failure.
"""

import sys

import grpc
from google.protobuf import message_factory
from google.protobuf.descriptor_pool import DescriptorPool
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)


def main() -> int:
    socket = sys.argv[1]
    options = [] if "--no-authority" in sys.argv else [("grpc.default_authority", "localhost")]
    channel = grpc.insecure_channel(f"unix:{socket}", options=options)
    try:
        pool = DescriptorPool(ProtoReflectionDescriptorDatabase(channel))
        method = pool.FindServiceByName("cairn.v1.Daemon").methods_by_name["GetStatus"]
        request_type = message_factory.GetMessageClass(method.input_type)
        response_type = message_factory.GetMessageClass(method.output_type)
        get_status = channel.unary_unary(
            "/cairn.v1.Daemon/GetStatus",
            request_serializer=request_type.SerializeToString,
            response_deserializer=response_type.FromString,
        )
        print(get_status(request_type(), timeout=10))
        return 0
    except grpc.RpcError as error:
        print(f"error: {error.code().name}: {error.details()}", file=sys.stderr)
        return 1
    except Exception as error:  # reflection failures surface as other exceptions
        print(f"error: {type(error).__name__}: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
