"""Server reflection, exercised the way grpcurl uses it: list the services, fetch the file that
defines mvirt.VmService (plus any dependency it did not send), build a descriptor pool from those
bytes alone, and call CreateVm with a request built from JSON. Both grpc.reflection.v1 and
v1alpha are tested; nothing here uses the generated mvirt_pb2 except to double-check results."""

import json
import re

import grpc
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory

import mvirt_proto
from mvirt_proto import RequestQueue

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")

# Exactly what a user would type for grpcurl -d (paths substituted at run time).
CREATE_JSON = '{"name":"test-vm","config":{"vcpus":2,"memory_mb":1024,"kernel":"/path/to/vmlinux","disk":"/path/to/disk.raw"}}'


class ReflectionClient:
    """One open ServerReflectionInfo stream; ask() sends a request and waits for its answer."""

    def __init__(self, channel, version):
        fn, self.Req, self.Resp = mvirt_proto.reflection_stream(channel, version)
        self.requests = RequestQueue()
        self.responses = fn(iter(self.requests), timeout=30)

    def ask(self, **kw):
        self.requests.put(self.Req(**kw))
        return next(self.responses)

    def close(self):
        """Half-closes; returns what the server sent after that (should be nothing)."""
        self.requests.close()
        return list(self.responses)

    def cancel(self):
        self.requests.close()
        self.responses.cancel()


@pytest.fixture(params=mvirt_proto.REFLECTION_VERSIONS)
def refl(request, daemon):
    c = ReflectionClient(daemon.channel(), request.param)
    yield c
    c.cancel()


def list_services(c):
    r = c.ask(list_services="*")
    assert r.WhichOneof("message_response") == "list_services_response", r
    return [s.name for s in r.list_services_response.service]


def fetch_files(c, symbol):
    """What grpcurl does: file_containing_symbol, then file_by_filename for every dependency
    not yet received. Returns {filename: FileDescriptorProto}."""
    r = c.ask(file_containing_symbol=symbol)
    assert r.WhichOneof("message_response") == "file_descriptor_response", r
    assert len(r.file_descriptor_response.file_descriptor_proto) >= 1
    files = {}
    for raw in r.file_descriptor_response.file_descriptor_proto:
        fd = descriptor_pb2.FileDescriptorProto.FromString(raw)
        files[fd.name] = fd
    missing = [dep for fd in list(files.values()) for dep in fd.dependency if dep not in files]
    while missing:
        name = missing.pop()
        if name in files:
            continue
        r = c.ask(file_by_filename=name)
        assert r.WhichOneof("message_response") == "file_descriptor_response", (name, r)
        for raw in r.file_descriptor_response.file_descriptor_proto:
            fd = descriptor_pb2.FileDescriptorProto.FromString(raw)
            files.setdefault(fd.name, fd)
        assert name in files, f"file_by_filename {name!r} did not return that file"
        missing += [dep for dep in files[name].dependency if dep not in files]
    return files


def build_pool(files):
    """A fresh pool with every file added after its dependencies, whatever the arrival order."""
    pool = descriptor_pool.DescriptorPool()
    added = set()

    def add(name):
        if name in added:
            return
        for dep in files[name].dependency:
            add(dep)
        pool.Add(files[name])
        added.add(name)

    for name in files:
        add(name)
    return pool


def message_class(pool, desc):
    if hasattr(message_factory, "GetMessageClass"):
        return message_factory.GetMessageClass(desc)
    return message_factory.MessageFactory(pool).GetPrototype(desc)


def test_list_services(refl):
    names = list_services(refl)
    for service in ("mvirt.VmService", "mvirt.VolumeService", "mvirt.NetworkService"):
        assert service in names, names
    assert len(names) == len(set(names)), names


def test_reflection_create_vm_from_json(refl, daemon, vm_files):
    assert "mvirt.VmService" in list_services(refl)
    files = fetch_files(refl, "mvirt.VmService")
    assert "mvirt.proto" in files
    assert "google/protobuf/timestamp.proto" in files
    pool = build_pool(files)

    svc = pool.FindServiceByName("mvirt.VmService")
    method = svc.methods_by_name["CreateVm"]
    assert method.input_type.full_name == "mvirt.CreateVmRequest"
    assert method.output_type.full_name == "mvirt.Vm"
    assert not method.client_streaming and not method.server_streaming
    Req = message_class(pool, method.input_type)
    Resp = message_class(pool, method.output_type)

    text = CREATE_JSON.replace("/path/to/vmlinux", vm_files["kernel"]).replace(
        "/path/to/disk.raw", vm_files["disk"]
    )
    req = json_format.Parse(text, Req())
    create = daemon.channel().unary_unary(
        f"/{svc.full_name}/{method.name}",
        request_serializer=Req.SerializeToString,
        response_deserializer=Resp.FromString,
    )
    vm = create(req, timeout=10)

    out = json.loads(json_format.MessageToJson(vm))
    assert out["name"] == "test-vm"
    assert UUID_RE.match(out["id"]), out["id"]
    assert out["state"] == "VM_STATE_STOPPED"
    assert out["config"]["vcpus"] == 2
    assert out["config"]["memoryMb"] == "1024"
    assert out["config"]["kernel"] == vm_files["kernel"]

    named = json.loads(json_format.MessageToJson(vm, preserving_proto_field_name=True))
    assert named["config"]["memory_mb"] == "1024"

    # The daemon really has it, as seen through the compiled-in protos.
    got = daemon.call("GetVm", mvirt_proto.mvirt_pb2.GetVmRequest(vm=out["id"]))
    assert got.name == "test-vm"
    assert got.SerializeToString() == vm.SerializeToString()


def test_reflection_descriptors_match_proto(refl):
    """The served mvirt.proto describes the same service as the repo's proto/mvirt.proto."""
    files = fetch_files(refl, "mvirt.VmService")
    served = files["mvirt.proto"]
    assert served.package == "mvirt"
    local = descriptor_pb2.FileDescriptorProto()
    mvirt_proto.mvirt_pb2.DESCRIPTOR.CopyToProto(local)
    assert [m.name for m in served.service[0].method] == [m.name for m in local.service[0].method]
    assert sorted(m.name for m in served.message_type) == sorted(m.name for m in local.message_type)


def test_file_containing_nested_symbol(refl):
    for sym in ("mvirt.VmService.CreateVm", "mvirt.Vm", "mvirt.VmState"):
        r = refl.ask(file_containing_symbol=sym)
        assert r.WhichOneof("message_response") == "file_descriptor_response", (sym, r)
        names = [descriptor_pb2.FileDescriptorProto.FromString(b).name
                 for b in r.file_descriptor_response.file_descriptor_proto]
        assert "mvirt.proto" in names, (sym, names)


def test_unknown_symbol_and_several_requests_on_one_stream(refl):
    # Several requests, answered in order on the same stream, errors included.
    r = refl.ask(file_containing_symbol="mvirt.NoSuchService")
    assert r.WhichOneof("message_response") == "error_response", r
    assert r.error_response.error_code == grpc.StatusCode.NOT_FOUND.value[0] == 5
    assert r.error_response.error_message

    r = refl.ask(file_by_filename="no/such/file.proto")
    assert r.WhichOneof("message_response") == "error_response", r
    assert r.error_response.error_code == 5

    assert "mvirt.VmService" in list_services(refl)

    r = refl.ask(file_by_filename="mvirt.proto")
    assert r.WhichOneof("message_response") == "file_descriptor_response", r
    names = [descriptor_pb2.FileDescriptorProto.FromString(b).name
             for b in r.file_descriptor_response.file_descriptor_proto]
    assert "mvirt.proto" in names, names

    r = refl.ask(file_containing_symbol="mvirt.VmService")
    assert r.WhichOneof("message_response") == "file_descriptor_response"

    # After the half-close the server ends the stream with OK and nothing more.
    assert refl.close() == []
    assert refl.responses.code() == grpc.StatusCode.OK


def test_both_versions_list_the_same(daemon):
    seen = {}
    for v in mvirt_proto.REFLECTION_VERSIONS:
        c = ReflectionClient(daemon.channel(), v)
        try:
            seen[v] = sorted(list_services(c))
        finally:
            c.cancel()
    assert seen["v1"] == seen["v1alpha"]
