"""Load and validate a model: path, bytes or ModelProto -> IR Model, with typed errors."""

from __future__ import annotations

import heapq
import itertools
import mmap
import os
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import onnx
from google.protobuf.message import DecodeError

from ..errors import Fail, InvalidArgument, InvalidGraph, InvalidProtobuf, NoSuchFile
from ..types import np_dtype
from . import _wire
from .gradient import TRAINING_DOMAIN, capture_gradients
from .graph import Graph, Model, graph_from_proto
from .verify import verify_nodes

MIN_IR_VERSION = 3
MIN_DEFAULT_OPSET = 1
_SPLIT_SIZE = 32 << 20  # files from this size on are read weights-apart (see _wire)


def read_model(source: Any) -> tuple[onnx.ModelProto, str | None, dict[str, np.ndarray]]:
    """Parse a model from a path, bytes or ModelProto.

    Returns it with its folder (for external data) and the main graph's large initializers when
    they were read from the file directly into arrays (their ``raw_data`` is then left empty).
    """
    if isinstance(source, onnx.ModelProto):
        return source, None, {}
    if isinstance(source, (bytes, bytearray, memoryview)):
        return _parse(bytes(source), "<bytes>"), None, {}
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        if not os.path.exists(path):
            raise NoSuchFile(f"Load model from {path} failed: file does not exist")
        if os.path.isdir(path):
            raise NoSuchFile(f"Load model from {path} failed: it is a directory, not a model file")
        base_dir = os.path.dirname(os.path.abspath(path))
        with open(path, "rb") as f:
            if os.fstat(f.fileno()).st_size >= _SPLIT_SIZE:
                split = _read_split(f, path)
                if split is not None:
                    return split[0], base_dir, split[1]
                f.seek(0)
            data = f.read()
        return _parse(data, path), base_dir, {}
    raise InvalidArgument(
        f"cannot load a model from {type(source).__name__}: pass a file path, bytes or onnx.ModelProto"
    )


def _read_split(f: Any, where: str) -> tuple[onnx.ModelProto, dict[str, np.ndarray]] | None:
    """Parse the model without its large weights, then read those straight into arrays.

    None when the file is not laid out as expected; the caller then parses it whole, which
    also gives the precise error for a broken file.
    """
    from .attributes import RAW_DIRECT

    try:
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            structure, payloads = _wire.split(mm)
    except (_wire.WireError, OSError, ValueError):
        return None
    proto = _parse(structure, where)
    inits = proto.graph.initializer
    weights: dict[str, np.ndarray] = {}
    for p in payloads:
        if p.index >= len(inits):
            return None
        t = inits[p.index]
        f.seek(p.offset)
        if t.data_type not in RAW_DIRECT or t.name in weights:
            t.raw_data = f.read(p.length)  # packed or unusual types: the generic converter
            continue
        dtype = np_dtype(t.data_type).newbyteorder("<")
        dims = tuple(int(d) for d in t.dims)
        if int(np.prod(dims)) * dtype.itemsize != p.length:
            raise InvalidGraph(
                f"initializer {t.name!r}: {p.length} bytes of data for shape {list(dims)} of "
                f"{onnx.TensorProto.DataType.Name(t.data_type)}; the model file is corrupt"
            )
        arr = np.empty(dims, dtype=dtype)
        if f.readinto(memoryview(arr.reshape(-1)).cast("B")) != p.length:  # type: ignore[arg-type]
            raise InvalidProtobuf(f"Load model from {where} failed: the file is truncated")
        weights[t.name] = arr
    return proto, weights


def _parse(data: bytes, where: str) -> onnx.ModelProto:
    if not data:
        raise InvalidProtobuf(f"Load model from {where} failed: the file is empty")
    if data[4:8] == b"ORTM":  # a flatbuffer's file identifier, after its root offset
        raise InvalidProtobuf(
            f"Load model from {where} failed: it is an ORT-format model (onnxruntime's flatbuffer "
            "format, .ort); onnxlite reads ONNX models: load the .onnx model it was converted from"
        )
    m = onnx.ModelProto()
    try:
        m.ParseFromString(data)
    except (DecodeError, RuntimeError, ValueError) as e:
        raise InvalidProtobuf(
            f"Load model from {where} failed: protobuf parsing failed ({e}); "
            "the file is corrupt, truncated or not an ONNX model"
        ) from None
    if not m.HasField("graph") or (not m.graph.node and not m.graph.output):
        raise InvalidProtobuf(
            f"Load model from {where} failed: no graph in the data; it is not an ONNX model "
            "or it is truncated"
        )
    return m


def _graph_tensors(g: onnx.GraphProto) -> Iterator[onnx.TensorProto]:
    """Every tensor a graph holds: initializers (dense and sparse), node attributes, subgraphs."""
    yield from g.initializer
    for sp in g.sparse_initializer:
        yield from (sp.values, sp.indices)
    for n in g.node:
        yield from _attribute_tensors(n.attribute)


def _attribute_tensors(attrs: Iterable[onnx.AttributeProto]) -> Iterator[onnx.TensorProto]:
    kinds = onnx.AttributeProto
    for a in attrs:
        kind = a.type
        if kind == kinds.TENSOR:
            yield a.t
        elif kind == kinds.TENSORS:
            yield from a.tensors
        elif kind == kinds.SPARSE_TENSOR:
            yield from (a.sparse_tensor.values, a.sparse_tensor.indices)
        elif kind == kinds.SPARSE_TENSORS:
            for sp in a.sparse_tensors:
                yield from (sp.values, sp.indices)
        elif kind == kinds.GRAPH:
            yield from _graph_tensors(a.g)
        elif kind == kinds.GRAPHS:
            for sub in a.graphs:
                yield from _graph_tensors(sub)


def _check_external_data(m: onnx.ModelProto, base_dir: str | None) -> None:
    """Refuse external data locations that escape the model's folder, and missing files."""
    external = onnx.TensorProto.EXTERNAL
    root = os.path.realpath(base_dir or os.getcwd())
    tensors = itertools.chain(
        _graph_tensors(m.graph), *(_attribute_tensors(n.attribute) for f in m.functions for n in f.node)
    )
    for t in tensors:
        if t.data_location != external:
            continue
        info = {e.key: e.value for e in t.external_data}
        loc = info.get("location", "")
        if base_dir is None:
            raise InvalidArgument(
                f"tensor {t.name!r} keeps its data in external file {loc!r}; load the model from "
                "its path so the file can be found beside it"
            )
        if os.path.isabs(loc) or not loc:
            raise InvalidGraph(f"tensor {t.name!r}: external data location {loc!r} must be a relative path")
        full = os.path.realpath(os.path.join(root, loc))
        if os.path.commonpath([root, full]) != root:
            raise InvalidGraph(
                f"tensor {t.name!r}: external data location {loc!r} escapes the model's folder"
            )
        if not os.path.exists(full):
            raise NoSuchFile(f"tensor {t.name!r}: external data file {loc!r} not found beside the model")


SMALL_INITIALIZER = 4096  # initializers up to this many elements keep their values for inference


def _light_copy(m: onnx.ModelProto) -> onnx.ModelProto:
    """The model without its large initializers, which become typed graph inputs.

    Shape inference serializes the whole model; weights only matter to it through their types,
    except small ones that shape arithmetic reads (Reshape targets, Slice bounds).
    """
    light = onnx.ModelProto()
    light.ir_version = max(m.ir_version, 4)
    light.opset_import.extend(m.opset_import)
    light.functions.extend(m.functions)
    src, g = m.graph, light.graph
    g.name = src.name
    g.node.extend(src.node)
    g.input.extend(src.input)
    g.output.extend(src.output)
    g.value_info.extend(src.value_info)
    g.sparse_initializer.extend(src.sparse_initializer)
    declared = {vi.name for vi in src.input}
    for t in src.initializer:
        n = 1
        for d in t.dims:
            n *= d
        if n <= SMALL_INITIALIZER and t.data_location != onnx.TensorProto.EXTERNAL:
            g.initializer.append(t)
        elif t.name not in declared:
            vi = g.input.add()
            vi.name = t.name
            vi.type.tensor_type.elem_type = t.data_type
            shape = vi.type.tensor_type.shape
            for d in t.dims:
                shape.dim.add().dim_value = d
            if not t.dims:
                vi.type.tensor_type.shape.SetInParent()
    return light


def inferred_types(m: onnx.ModelProto) -> dict[str, onnx.TypeProto]:
    """Value types from ONNX shape inference, where it succeeds (best effort)."""
    try:
        inferred = onnx.shape_inference.infer_shapes(_light_copy(m), check_type=False, strict_mode=False)
    except Exception:
        return {}
    out: dict[str, onnx.TypeProto] = {}
    for vi in inferred.graph.value_info:
        out[vi.name] = vi.type
    return out


def load_model(source: Any, infer_types: bool = True) -> Model:
    """Read, validate and convert a model to the IR.

    ``infer_types=False`` leaves out ONNX shape inference (the value types are then those the
    file declares): for a caller that runs it next anyway, as the graph optimizer does.
    """
    proto, base_dir, weights = read_model(source)
    if proto.ir_version and proto.ir_version < MIN_IR_VERSION:
        raise InvalidGraph(
            f"model IR version {proto.ir_version} is below the supported minimum {MIN_IR_VERSION}"
        )
    if proto.ir_version > onnx.IR_VERSION:
        raise InvalidGraph(
            f"model IR version {proto.ir_version} is newer than the newest this onnx package knows "
            f"({onnx.IR_VERSION}); upgrade onnx"
        )
    opsets = {("" if o.domain == "ai.onnx" else o.domain): int(o.version) for o in proto.opset_import}
    if "" in opsets and opsets[""] < MIN_DEFAULT_OPSET:
        raise InvalidGraph(
            f"default-domain opset {opsets['']} is not supported (minimum {MIN_DEFAULT_OPSET}); "
            "convert the model with onnx.version_converter"
        )
    if "" in opsets and opsets[""] > onnx.defs.onnx_opset_version():
        raise InvalidGraph(
            f"default-domain opset {opsets['']} is newer than the newest this onnx package knows "
            f"({onnx.defs.onnx_opset_version()})"
        )
    _check_external_data(proto, base_dir)
    if proto.functions:
        try:
            from onnx import inliner

            proto = inliner.inline_local_functions(proto)
        except Exception as e:
            raise InvalidGraph(f"cannot inline the model's local functions: {e}") from None
    verify_nodes(proto.graph, opsets, proto.ir_version)
    types = inferred_types(proto) if infer_types else {}
    try:
        graph = graph_from_proto(proto.graph, base_dir, types, weights)
    except ValueError as e:
        raise InvalidGraph(str(e)) from None
    except Exception as e:
        raise Fail(f"cannot read the model's tensors: {e}") from None
    validate_graph(graph, opsets, outer=set())
    if TRAINING_DOMAIN in opsets:  # (validate_graph checked that every node's domain is imported)
        capture_gradients(graph)
    meta = {p.key: p.value for p in proto.metadata_props}
    return Model(
        graph=graph,
        opsets=opsets,
        ir_version=proto.ir_version,
        producer_name=proto.producer_name,
        producer_version=proto.producer_version,
        domain=proto.domain,
        model_version=proto.model_version,
        doc=proto.doc_string,
        metadata=meta,
    )


def validate_graph(g: Graph, opsets: dict[str, int], outer: set[str]) -> None:
    """Check opset imports, single assignment and defined values; sort the nodes topologically."""
    for n in g.nodes:
        dom = "" if n.domain == "ai.onnx" else n.domain
        if dom not in opsets:
            raise InvalidGraph(
                f"{n.describe()} uses domain {dom or 'ai.onnx'!r}, which the model does not import "
                "(add it to opset_import)"
            )
    produced: dict[str, str] = {}
    available = set(outer) | {v.name for v in g.inputs} | set(g.initializers)
    for n in g.nodes:
        for o in n.outputs:
            if not o:
                continue
            if o in produced:
                raise InvalidGraph(f"value {o!r} is produced twice (by {produced[o]} and {n.describe()})")
            produced[o] = n.describe()
    for n in g.nodes:
        for i in n.inputs:
            if i and i not in available and i not in produced:
                raise InvalidGraph(f"{n.describe()} reads value {i!r}, which nothing defines")
        for _, sub in n.graphs():
            validate_graph(sub, opsets, available | set(produced))
    for out in g.outputs:
        if out.name not in available and out.name not in produced:
            raise InvalidGraph(f"graph output {out.name!r} is not produced by any node")
    g.nodes = toposort(g, available)


def in_order(nodes: list[Any], available: set[str]) -> bool:
    """Whether every node reads only values available before it (as :func:`toposort` would leave
    the list): one pass instead of the sort's, for the common case of an ordered graph."""
    produced = {o for n in nodes for o in n.outputs if o}
    seen = set(available)
    for n in nodes:
        for x in n.inputs:
            if x and x not in seen and x in produced:
                return False
        for _, sub in n.graphs():
            if any(x not in seen and x in produced for x in sub.free_names()):
                return False
        seen.update(n.outputs)
    return True


def toposort(g: Graph, available: set[str]) -> list[Any]:
    """Nodes in dependency order (stable: keeps file order where it is valid); cycles -> InvalidGraph."""
    if in_order(g.nodes, available):
        return list(g.nodes)
    ready = set(available)
    producers = {o: i for i, n in enumerate(g.nodes) for o in n.outputs if o}
    deps: list[set[int]] = []
    users: dict[int, list[int]] = {}
    for i, n in enumerate(g.nodes):
        names = [x for x in n.inputs if x]
        for _, sub in n.graphs():
            names.extend(sub.free_names())
        d = {producers[x] for x in names if x not in ready and x in producers}
        deps.append(d)
        for j in d:
            users.setdefault(j, []).append(i)
    heap = [i for i, d in enumerate(deps) if not d]
    heapq.heapify(heap)
    order = []
    remaining = [len(d) for d in deps]
    while heap:
        i = heapq.heappop(heap)
        order.append(i)
        for u in users.get(i, ()):
            remaining[u] -= 1
            if remaining[u] == 0:
                heapq.heappush(heap, u)
    if len(order) != len(g.nodes):
        stuck = [g.nodes[i].describe() for i in range(len(g.nodes)) if remaining[i] > 0][:5]
        raise InvalidGraph(f"the graph has a cycle through {', '.join(stuck)}")
    return [g.nodes[i] for i in order]
