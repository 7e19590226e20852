"""Strings that are not proto3 strings, in every string field of every request of every mvirt
service: the request is refused with INVALID_ARGUMENT naming the field's full path, nothing is
created, and every answer stays parseable by a standard client (this one: Python's protobuf,
which refuses invalid UTF-8 in a string field).

Requests are generated from the services' descriptors, not listed by hand: one per string field
reachable from the request (nested messages and repeated fields included, to three levels), set
to a marker whose bytes are then replaced on the wire by the same number of bytes that are not
UTF-8 (Python cannot hold such a str).
"""

import grpc
import pytest
from google.protobuf import descriptor_pb2

import mvirt_proto

pb = mvirt_proto.mvirt_pb2

MARK = "ZqZqZqZq"
# 0xff, an overlong '/', a surrogate, above U+10FFFF; each as long as MARK (the length prefix stays)
BAD = tuple(b.ljust(len(MARK), b"x") for b in (b"ok\xff\xfe", b"\xc0\xafok", b"\xed\xa0\x80ok",
                                               b"o\xf4\x90\x80\x80"))


def variants(cls, depth=0):
    """(path, message) with one string field, at any depth, set to MARK."""
    for f in cls.DESCRIPTOR.fields:
        repeated = f.label == f.LABEL_REPEATED
        name = f.name + ("[0]" if repeated else "")
        if f.type == f.TYPE_STRING:
            m = cls()
            if repeated:
                getattr(m, f.name).append(MARK)
            else:
                setattr(m, f.name, MARK)
            yield name, m
        elif f.type == f.TYPE_MESSAGE and depth < 3:
            if f.message_type.GetOptions().map_entry:
                m = cls()
                getattr(m, f.name)[MARK] = "v"
                yield f"{f.name}[0].key", m
                continue
            probe = cls()
            sub_cls = type(getattr(probe, f.name).add() if repeated else getattr(probe, f.name))
            for sub_path, sub in variants(sub_cls, depth + 1):
                m = cls()
                (getattr(m, f.name).add() if repeated else getattr(m, f.name)).CopyFrom(sub)
                yield f"{name}.{sub_path}", m


def methods():
    for service in pb.DESCRIPTOR.services_by_name.values():
        for m in service.methods:
            proto = descriptor_pb2.MethodDescriptorProto()
            m.CopyToProto(proto)
            yield (f"/{service.full_name}/{m.name}", getattr(pb, m.input_type.name),
                   proto.client_streaming, proto.server_streaming)


CASES = [(path, field, msg, cs, ss) for path, cls, cs, ss in methods()
         for field, msg in variants(cls)]


def raw_call(channel, path, data, client_streaming, server_streaming):
    """Sends data as the (first) request of path; returns the RpcError, or None if none came."""
    kind = {(False, False): channel.unary_unary, (False, True): channel.unary_stream,
            (True, False): channel.stream_unary, (True, True): channel.stream_stream}
    fn = kind[(client_streaming, server_streaming)](path)
    arg = iter([data]) if client_streaming else data
    try:
        out = fn(arg, timeout=5)
        if server_streaming:
            next(iter(out))
    except grpc.RpcError as e:
        return e
    except StopIteration:
        pass
    return None


def test_the_cases_cover_every_service():
    services = {path.split("/")[1] for path, *_ in CASES}
    assert services == {s.full_name for s in pb.DESCRIPTOR.services_by_name.values()}
    assert any(f.startswith("config.disks[0].") for _, f, *_ in CASES)
    assert len(CASES) > 50, len(CASES)


def test_every_string_field_of_every_request(netns, make_ch_daemon):
    # in a namespace of its own: were a check missed, CreateNetwork must not touch the host
    d = make_ch_daemon(netns=netns, extra_args=("--default-network", "off"))
    ch = d.channel()
    missed = []
    for i, (path, field, msg, cs, ss) in enumerate(CASES):
        bad = BAD[i % len(BAD)]
        data = msg.SerializeToString()
        assert data.count(MARK.encode()) == 1, (path, field)
        err = raw_call(ch, path, data.replace(MARK.encode(), bad), cs, ss)
        want = f"{field}: is not valid UTF-8"
        if err is None or err.code() != grpc.StatusCode.INVALID_ARGUMENT \
                or not (err.details() or "").startswith(want):
            missed.append(f"{path} {field}: {err and err.code()} {err and err.details()!r}")
    assert not missed, "\n".join(missed)
    # nothing was made, and the lists parse (Python's protobuf refuses bad UTF-8 in strings)
    assert not d.call("ListVms").vms
    assert not mvirt_proto.unary(ch, "/mvirt.NetworkService/ListNetworks")(
        pb.ListNetworksRequest(), timeout=5).networks
    assert not mvirt_proto.unary(ch, "/mvirt.VolumeService/ListVolumes")(
        pb.ListVolumesRequest(), timeout=5).volumes
