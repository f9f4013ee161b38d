"""Versioned kernel registry shared by every execution provider.

A kernel is registered for ``(domain, op_type, since)``. At session build the plan resolves each
node once: the kernel with the largest ``since`` not above the op's schema version for the model's
opset. Two kernel forms exist:

* a plain function whose positional parameters are the node's inputs and whose keyword-only
  parameters are the ONNX attributes, with the spec's defaults::

      @kernel("Softmax", since=13)
      def softmax(x, *, axis=-1): ...

  Attributes are bound once with ``functools.partial``; an attribute the function does not accept
  is reported at session build.
* a factory (``factory=True``) that receives the :class:`NodeInfo` and returns the callable; for
  kernels that precompute, need the output count, or run subgraphs.

Calling convention: inputs in node order; a missing optional input (empty name) is ``None``;
trailing missing inputs are not passed. A kernel returns one value for a single-output op and a
tuple for ops with several outputs (the plan keeps as many as the node names). Values are numpy
arrays (numpy scalars are accepted), Python lists for sequences, ``None`` for an empty optional.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import NotImplemented_

DEFAULT_DOMAINS = ("", "ai.onnx")


def norm_domain(domain: str) -> str:
    return "" if domain in DEFAULT_DOMAINS else domain


@dataclass
class NodeInfo:
    """What a kernel factory knows about the node it is built for."""

    name: str
    op_type: str
    domain: str
    version: int  # the op's schema since_version under the model's opset (or the opset itself)
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    attrs: Mapping[str, Any]
    input_types: tuple[Any, ...] = ()  # onnx TypeProto or None per input, where known
    output_types: tuple[Any, ...] = ()
    # Compiled subgraphs by attribute name (If/Loop/Scan...), and the outer-scope names they read,
    # which the plan passes to the kernel after the node's own inputs.
    subgraphs: Mapping[str, Any] = field(default_factory=dict)
    implicit_inputs: tuple[str, ...] = ()
    opsets: Mapping[str, int] = field(default_factory=dict)

    @property
    def n_outputs(self) -> int:
        return len(self.outputs)

    def describe(self) -> str:
        dom = f"{self.domain}:" if self.domain else ""
        return f"node {self.name!r} ({dom}{self.op_type})"


@dataclass(frozen=True)
class KernelDef:
    op_type: str
    domain: str
    since: int
    fn: Callable[..., Any]
    factory: bool
    params: frozenset[str] | None  # accepted attribute names; None accepts any

    def bind(self, node: NodeInfo) -> Callable[..., Any]:
        """The callable for one node, attributes bound."""
        if self.factory:
            return self.fn(node)
        if not node.attrs:
            return self.fn
        if self.params is not None:
            unknown = sorted(set(node.attrs) - self.params)
            if unknown:
                raise NotImplemented_(
                    f"{node.describe()}: attribute(s) {unknown} are not supported by the "
                    f"{self.op_type} kernel (it accepts {sorted(self.params)})"
                )
        return functools.partial(self.fn, **node.attrs)


def _keyword_params(fn: Callable[..., Any]) -> frozenset[str] | None:
    params = inspect.signature(fn).parameters.values()
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return None
    return frozenset(p.name for p in params if p.kind is p.KEYWORD_ONLY)


class KernelRegistry:
    """Kernels of one provider, keyed by (domain, op_type) and sorted by since-version."""

    def __init__(self, provider: str) -> None:
        self.provider = provider
        self._defs: dict[tuple[str, str], list[KernelDef]] = {}

    def kernel(
        self, op_type: str, since: int = 1, domain: str = "", *, factory: bool = False
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Decorator registering ``fn`` for ``op_type`` from opset version ``since`` on."""

        def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
            self.register(op_type, fn, since=since, domain=domain, factory=factory)
            return fn

        return deco

    def register(
        self,
        op_type: str,
        fn: Callable[..., Any],
        *,
        since: int = 1,
        domain: str = "",
        factory: bool = False,
    ) -> None:
        key = (norm_domain(domain), op_type)
        params = None if factory else _keyword_params(fn)
        kd = KernelDef(op_type, key[0], since, fn, factory, params)
        defs = [d for d in self._defs.get(key, []) if d.since != since]
        defs.append(kd)
        defs.sort(key=lambda d: d.since)
        self._defs[key] = defs

    def lookup(self, domain: str, op_type: str, version: int) -> KernelDef | None:
        """The kernel for an op whose schema version under the model's opset is ``version``."""
        best = None
        for d in self._defs.get((norm_domain(domain), op_type), ()):
            if d.since <= version:
                best = d
            else:
                break
        return best

    def unregister(self, domain: str, op_type: str) -> None:
        self._defs.pop((norm_domain(domain), op_type), None)

    def has_op(self, domain: str, op_type: str) -> bool:
        return (norm_domain(domain), op_type) in self._defs

    def ops(self) -> list[tuple[str, str]]:
        return sorted(self._defs)
