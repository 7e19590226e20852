"""Python protobuf modules for the end-to-end tests, generated from the repo's .proto files.

On first import, runs protoc once (per process) on proto/mvirt.proto and the two server
reflection protos into a private temporary directory, imports the results and exposes them:

    mvirt_pb2          the mvirt API messages (package mvirt)
    reflection_pb2     {"v1": ..., "v1alpha": ...}: grpc.reflection.<version> messages

The reflection modules cannot be imported under their natural name (grpc.reflection.v1...)
because `grpc` is grpcio's package, so they are loaded from their files under private names.
There is no grpc_tools here, hence no *_grpc.py stubs: unary() and reflection_stream() build the
callables from grpc.Channel.unary_unary / stream_stream. Used by conftest.py and the test_*.py
files of this directory.
"""

import atexit
import importlib.util
import os
import queue
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PROTO_DIR = REPO / "proto"
SYSTEM_PROTO_INCLUDE = os.environ.get("MVIRT_PROTO_INCLUDE", "/usr/include")

SERVICE = "mvirt.VmService"
REFLECTION_VERSIONS = ("v1", "v1alpha")


def _generate() -> Path:
    outdir = Path(tempfile.mkdtemp(prefix="mvpb"))
    atexit.register(shutil.rmtree, outdir, True)
    cmd = [
        "protoc",
        f"--python_out={outdir}",
        f"-I{PROTO_DIR}",
        f"-I{SYSTEM_PROTO_INCLUDE}",
        "mvirt.proto",
        "grpc/reflection/v1/reflection.proto",
        "grpc/reflection/v1alpha/reflection.proto",
    ]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(f"protoc failed ({res.returncode}): {' '.join(cmd)}\n{res.stderr}")
    return outdir


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


_OUT = _generate()
sys.path.insert(0, str(_OUT))
import mvirt_pb2  # noqa: E402  (generated just above)

reflection_pb2 = {
    v: _load(f"mvirt_e2e_reflection_{v}_pb2", _OUT / "grpc" / "reflection" / v / "reflection_pb2.py")
    for v in REFLECTION_VERSIONS
}

_service_desc = mvirt_pb2.DESCRIPTOR.services_by_name["VmService"]
METHODS = tuple(m.name for m in _service_desc.methods)


def method_path(method: str) -> str:
    """'GetVm' -> '/mvirt.VmService/GetVm'; a path starting with '/' is kept."""
    return method if method.startswith("/") else f"/{SERVICE}/{method}"


def method_types(method: str):
    """(request class, response class) of a VmService method given by name, or of any mvirt
    method given by path ("/mvirt.NetworkService/CreateNetwork")."""
    desc = _service_desc
    if method.startswith("/"):
        service, _, method = method[1:].partition("/")
        desc = mvirt_pb2.DESCRIPTOR.services_by_name[service.split(".", 1)[1]]
    m = desc.methods_by_name[method]
    return getattr(mvirt_pb2, m.input_type.name), getattr(mvirt_pb2, m.output_type.name)


def unary(channel, method: str):
    """A callable for a unary VmService method: fn(request, timeout=...) -> response."""
    req_cls, resp_cls = method_types(method)
    return channel.unary_unary(
        method_path(method),
        request_serializer=req_cls.SerializeToString,
        response_deserializer=resp_cls.FromString,
    )


def reflection_stream(channel, version: str):
    """The ServerReflectionInfo bidi-stream callable of grpc.reflection.<version>, with the
    matching (request class, response class)."""
    pb = reflection_pb2[version]
    fn = channel.stream_stream(
        f"/grpc.reflection.{version}.ServerReflection/ServerReflectionInfo",
        request_serializer=pb.ServerReflectionRequest.SerializeToString,
        response_deserializer=pb.ServerReflectionResponse.FromString,
    )
    return fn, pb.ServerReflectionRequest, pb.ServerReflectionResponse


class RequestQueue:
    """A request iterator for a bidi stream that yields what put() gives it, blocking in
    between, so that a test can talk to the server in lock-step. close() half-closes."""

    _END = object()

    def __init__(self):
        self._q = queue.Queue()

    def put(self, msg):
        self._q.put(msg)

    def close(self):
        self._q.put(self._END)

    def __iter__(self):
        return self

    def __next__(self):
        item = self._q.get()
        if item is self._END:
            raise StopIteration
        return item
