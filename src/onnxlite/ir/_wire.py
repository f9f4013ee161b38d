"""Split a serialized model into its structure and its large weights, at the protobuf wire level.

Parsing a model file with protobuf holds the file's bytes and the parsed copy of every weight at
once, then the runtime makes a third copy as numpy arrays. Instead, the loader scans the file's
top levels (ModelProto.graph -> GraphProto.initializer -> TensorProto.raw_data), parses a copy of
the model with the large ``raw_data`` payloads left out, and reads each payload straight from the
file into its (aligned) numpy array: peak memory is the weights once, plus the small structure.
"""

from __future__ import annotations

import mmap
from dataclasses import dataclass

_MODEL_GRAPH = 7
_GRAPH_INITIALIZER = 5
_TENSOR_RAW_DATA = 9
MIN_PAYLOAD = 1 << 16  # smaller payloads stay in the parsed model


class WireError(ValueError):
    """The bytes are not the protobuf encoding this scanner expects."""


@dataclass(frozen=True)
class Payload:
    """Where initializer number ``index`` of the main graph keeps its raw bytes in the file."""

    index: int
    offset: int
    length: int


def _varint(buf: mmap.mmap | bytes, pos: int, end: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= end or shift > 63:
            raise WireError("truncated or malformed varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7


def _encode_varint(v: int) -> bytes:
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _fields(buf: mmap.mmap | bytes, start: int, end: int) -> list[tuple[int, int, int, int, int]]:
    """(field, wire type, field start, payload start, field end) for each field in [start, end)."""
    out = []
    pos = start
    while pos < end:
        fstart = pos
        tag, pos = _varint(buf, pos, end)
        field, wt = tag >> 3, tag & 7
        if wt == 0:
            _, pos = _varint(buf, pos, end)
            out.append((field, wt, fstart, fstart, pos))
            continue
        if wt == 1:
            pstart, pos = pos, pos + 8
        elif wt == 5:
            pstart, pos = pos, pos + 4
        elif wt == 2:
            n, pstart = _varint(buf, pos, end)
            pos = pstart + n
        else:
            raise WireError(f"unsupported wire type {wt}")
        if pos > end:
            raise WireError("field runs past the end of its message")
        out.append((field, wt, fstart, pstart, pos))
    return out


def _len_field(field: int, payload: bytes) -> bytes:
    return _encode_varint(field << 3 | 2) + _encode_varint(len(payload)) + payload


def split(buf: mmap.mmap | bytes) -> tuple[bytes, list[Payload]]:
    """The model's bytes without its large initializer payloads, and where those payloads are."""
    payloads: list[Payload] = []
    model_parts: list[bytes] = []
    for field, wt, fs, ps, fe in _fields(buf, 0, len(buf)):
        if field != _MODEL_GRAPH or wt != 2:
            model_parts.append(bytes(buf[fs:fe]))
            continue
        graph_parts: list[bytes] = []
        index = 0
        for gfield, gwt, gfs, gps, gfe in _fields(buf, ps, fe):
            if gfield != _GRAPH_INITIALIZER or gwt != 2:
                graph_parts.append(bytes(buf[gfs:gfe]))
                continue
            tensor_parts: list[bytes] = []
            for tfield, twt, tfs, tps, tfe in _fields(buf, gps, gfe):
                if tfield == _TENSOR_RAW_DATA and twt == 2 and tfe - tps >= MIN_PAYLOAD:
                    payloads.append(Payload(index, tps, tfe - tps))
                else:
                    tensor_parts.append(bytes(buf[tfs:tfe]))
            graph_parts.append(_len_field(_GRAPH_INITIALIZER, b"".join(tensor_parts)))
            index += 1
        model_parts.append(_len_field(_MODEL_GRAPH, b"".join(graph_parts)))
    return b"".join(model_parts), payloads
