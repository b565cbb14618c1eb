"""The committed gRPC messages are what `make proto` generates from the committed .proto, and they
are wire-compatible with Triton's (tritonclient's) definitions of the same service."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tritonclient.grpc import model_config_pb2 as model_config
from tritonclient.grpc import service_pb2 as triton

from fti.serving.grpc_service import SERVICE
from fti.serving.proto import inference_pb2 as pb

PROTO = Path(pb.__file__).with_name("inference.proto")


def test_the_committed_module_is_generated_from_the_committed_proto(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"-I{PROTO.parent}",
            f"--python_out={tmp_path}",
            str(PROTO),
        ],
        check=True,
    )
    generated = (tmp_path / "inference_pb2.py").read_text()
    # the Makefile's one edit: a private descriptor pool
    generated = generated.replace(
        "_descriptor_pool.Default().AddSerializedFile", "_descriptor_pool.DescriptorPool().AddSerializedFile"
    )
    assert Path(pb.__file__).read_text() == generated, "run `make proto` and commit the result"


# Triton messages fti defines with only the fields it fills (same names, numbers and types)
PARTIAL = ("ModelConfig", "ModelInput", "ModelOutput", "ModelDynamicBatching", "ModelStatistics")


def _fields(descriptor: object) -> set[tuple[str, int, int, bool]]:
    return {(f.name, f.number, f.type, f.is_repeated) for f in descriptor.fields}  # type: ignore[attr-defined]


def test_messages_and_methods_match_tritons() -> None:
    ours, theirs = pb.DESCRIPTOR, triton.DESCRIPTOR
    service = ours.services_by_name["GRPCInferenceService"]
    assert service.full_name == SERVICE
    triton_methods = {m.name: m for m in theirs.services_by_name["GRPCInferenceService"].methods}
    for method in service.methods:
        other = triton_methods[method.name]
        assert method.input_type.full_name == other.input_type.full_name
        assert method.output_type.full_name == other.output_type.full_name

    def check(mine: object, other: object) -> None:
        if mine.name in PARTIAL:  # type: ignore[attr-defined]
            assert _fields(mine) <= _fields(other), mine.full_name  # type: ignore[attr-defined]
        else:
            assert _fields(mine) == _fields(other), mine.full_name  # type: ignore[attr-defined]
        for nested in mine.nested_types:  # type: ignore[attr-defined]
            check(nested, other.nested_types_by_name[nested.name])  # type: ignore[attr-defined]

    for name, message in ours.message_types_by_name.items():
        other = theirs.message_types_by_name.get(name) or model_config.DESCRIPTOR.message_types_by_name[name]
        check(message, other)
    triton_types = model_config.DESCRIPTOR.enum_types_by_name["DataType"]
    our_types = ours.enum_types_by_name["DataType"]
    assert [(v.name, v.number) for v in our_types.values] == [(v.name, v.number) for v in triton_types.values]
