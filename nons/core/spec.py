"""The serialisable form of a network: what travels between processes and lives in files.

A `NetworkSpec` is the single source of truth that a coordinator and its actors in
other processes must agree on; its fingerprint (a hash of the canonical JSON) is sent
in every node call so that two different definitions under one name are refused
instead of silently mixed. Custom operators travel as importable module paths.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import msgspec
import yaml

from nons.core.errors import SpecError
from nons.core.names import validate_token
from nons.core.types import Content, LayerConfig, ModelConfig, NetworkConfig

__all__ = (
    "SPEC_VERSION",
    "LayerSpec",
    "NetworkSpec",
    "NodeSpec",
    "decode_spec",
    "encode_spec",
    "load_spec",
    "save_spec",
    "spec_fingerprint",
)

SPEC_VERSION = 1
"""Version of the spec format; bumped only by incompatible changes."""


class NodeSpec(
    msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, forbid_unknown_fields=True
):
    """One node: an operator with its configuration, or a whole sub-network."""

    node_id: str
    """Id within the network; part of the node's NATS subject."""
    operator: str
    """Registered operator name (`network` for a sub-network)."""
    operator_module: str | None = None
    """Importable module that registers a custom operator; `None` for built-ins."""
    model: ModelConfig | None = None
    """Model configuration; `None` uses the process default."""
    prompt_context: str = ""
    """Extra context appended to the operator's system prompt."""
    arguments: dict[str, Any] = msgspec.field(default_factory=dict)
    """Operator arguments bound to the node (a classifier's categories...)."""
    network: NetworkSpec | None = None
    """The sub-network, when this node runs one through its own exec subject."""
    fallback_output: Content = None
    """Output used (and marked) when every attempt failed, if `has_fallback_output`."""
    has_fallback_output: bool = False
    """Whether `fallback_output` is declared (it may itself be `None`)."""
    cache: bool | None = None
    """Serve repeated identical calls from the cache: `None` = auto (see `CacheConfig`)."""
    stream: bool = False
    """Stream the model's text as `node.delta` events while it is generated."""
    branches: dict[str, NodeSpec] | None = None
    """A router's branches by name (operator `router`); each a node or a sub-network."""
    default_branch: str | None = None
    """A router's branch for a decision that names none of its branches."""
    model_selector: str | None = None
    """`module:function` choosing the node's model per call in the coordinator."""
    prompt_cache: bool = True
    """Mark the shared prompt prefix for the provider's prompt cache (see `Node`)."""

    def __post_init__(self) -> None:
        validate_token(self.node_id, "node id")


class LayerSpec(
    msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, forbid_unknown_fields=True
):
    """Nodes that run in parallel."""

    nodes: list[NodeSpec]
    """At least one node."""
    config: LayerConfig = LayerConfig()
    """Timeout, error policy and retries of the layer."""

    def __post_init__(self) -> None:
        if not self.nodes:
            raise SpecError("a layer needs at least one node")


class NetworkSpec(
    msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, forbid_unknown_fields=True
):
    """Layers that run in sequence, under a name that is a NATS subject token."""

    name: str
    """Network name: the `<network>` token of its subjects."""
    layers: list[LayerSpec]
    """At least one layer."""
    config: NetworkConfig = NetworkConfig()
    """Execution-wide settings."""
    version: int = SPEC_VERSION
    """Spec format version."""

    def __post_init__(self) -> None:
        validate_token(self.name, "network name")
        if not self.layers:
            raise SpecError(f"network {self.name!r} needs at least one layer")
        if self.version != SPEC_VERSION:
            raise SpecError(f"unsupported spec version {self.version} (this runtime reads 1)")
        seen: set[str] = set()
        for layer in self.layers:
            for node in layer.nodes:
                for node_id in (node.node_id, *_branch_ids(node)):
                    if node_id in seen:
                        raise SpecError(f"network {self.name!r}: duplicate node id {node_id!r}")
                    seen.add(node_id)


def _branch_ids(node: NodeSpec) -> list[str]:
    """Ids of a router's branch nodes (they share the network's node subjects)."""
    return [branch.node_id for branch in (node.branches or {}).values()]


_ENCODER = msgspec.json.Encoder(order="sorted")


def encode_spec(spec: NetworkSpec) -> bytes:
    """Canonical JSON of a spec (sorted keys, so equal specs give equal bytes)."""
    return _ENCODER.encode(spec)


def decode_spec(data: bytes | str | dict[str, Any]) -> NetworkSpec:
    """A spec from JSON text or an already-parsed mapping.

    Raises:
        SpecError: naming the offending field.
    """
    try:
        if isinstance(data, dict):
            return msgspec.convert(data, NetworkSpec)
        return msgspec.json.decode(data, type=NetworkSpec)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise SpecError(f"invalid network spec: {exc}") from exc


def spec_fingerprint(spec: NetworkSpec) -> str:
    """A short, stable hash of the spec that processes compare before working together.

    Fields at their default value are left out of the encoding, so a newer runtime that
    adds a defaulted field computes the same fingerprint for the same network.
    """
    return hashlib.sha256(encode_spec(spec)).hexdigest()[:16]


def load_spec(path: str | Path) -> NetworkSpec:
    """Read a spec from a `.json`, `.yaml` or `.yml` file.

    Raises:
        SpecError: for an unreadable file, unknown extension or invalid content.
    """
    file = Path(path)
    if file.suffix not in (".json", ".yaml", ".yml"):
        raise SpecError(f"spec file {file} must end in .json, .yaml or .yml")
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecError(f"cannot read spec file {file}: {exc.strerror}") from exc
    if file.suffix == ".json":
        return decode_spec(text)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SpecError(f"spec file {file} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise SpecError(f"spec file {file} must hold a mapping at the top level")
    return decode_spec(data)


def save_spec(spec: NetworkSpec, path: str | Path) -> None:
    """Write a spec as JSON or YAML, chosen by the file extension.

    Raises:
        SpecError: for an unknown extension.
    """
    file = Path(path)
    if file.suffix == ".json":
        file.write_bytes(msgspec.json.format(msgspec.json.encode(spec), indent=2))
    elif file.suffix in (".yaml", ".yml"):
        plain = msgspec.json.decode(msgspec.json.encode(spec))
        file.write_text(yaml.safe_dump(plain, sort_keys=False), encoding="utf-8")
    else:
        raise SpecError(f"spec file {file} must end in .json, .yaml or .yml")
