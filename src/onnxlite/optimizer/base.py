"""The pass contract: a named callable over one graph that says whether it changed anything."""

from __future__ import annotations

import itertools
import weakref
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import numpy as np

from ..ir.graph import Graph, Model

if TYPE_CHECKING:
    from ._graphutil import GraphIndex

MS_DOMAIN = "com.microsoft"


class Pass(Protocol):
    """A graph pass: ``name`` and ``__call__(graph, ctx) -> changed``, editing ``graph`` in place.

    A pass may set ``keeps_types = True`` when its rewrites leave every remaining value with the
    type it had (they remove or merge nodes, or give a value a new producer of the same output):
    a round whose changes all came from such passes is not followed by a new type inference.
    """

    name: str

    def __call__(self, graph: Graph, ctx: PassContext) -> bool: ...


@dataclass
class PassContext:
    """What passes know about the model beyond one graph: opsets, IR version, the names in use."""

    opsets: dict[str, int]  # the model's own dict: a pass that emits a new domain adds it here
    ir_version: int
    names: set[str] = field(default_factory=set)
    # Fusions emit only ops the CPU provider can run, so an optimized model always compiles.
    check_kernels: bool = True
    _cpu: Any = None
    _counter: Iterator[int] = field(default_factory=itertools.count)
    # ConstantOfShape values by shape and fill, while some initializer holds them (see filled)
    _fills: weakref.WeakValueDictionary[Any, Any] = field(default_factory=weakref.WeakValueDictionary)

    @classmethod
    def for_model(cls, model: Model, check_kernels: bool = True) -> PassContext:
        names: set[str] = set()
        _collect_names(model.graph, names)
        return cls(model.opsets, model.ir_version, names, check_kernels)

    def opset(self, domain: str = "") -> int:
        """The model's opset for ``domain`` (0 when not imported)."""
        return self.opsets.get("" if domain == "ai.onnx" else domain, 0)

    def filled(self, shape: tuple[int, ...], fill: Any) -> Any:
        """``np.full(shape, fill[0])``: one array per shape and fill value. Models that ship
        their weights as ConstantOfShape (the onnx package's light models) fill hundreds of
        equal ones; as one object, common subexpression elimination merges them without
        comparing contents, and they take their memory once."""
        value = fill.reshape(-1)[:1]
        if value.dtype.kind not in "biufc":
            return np.full(shape, value[0], dtype=value.dtype)
        key = (shape, value.dtype.str, value.tobytes())
        arr = self._fills.get(key)
        if arr is None:
            arr = np.full(shape, value[0], dtype=value.dtype)
            self._fills[key] = arr
        return arr

    def fresh(self, base: str) -> str:
        """A value or node name not used anywhere in the model."""
        base = base or "v"
        while True:
            name = f"{base}_{next(self._counter)}"
            if name not in self.names:
                self.names.add(name)
                return name

    def use_domain(self, domain: str, version: int = 1) -> None:
        """Import ``domain`` in the model (fused com.microsoft ops need it)."""
        self.opsets.setdefault(domain, version)

    def can_emit(self, domain: str, op_type: str) -> bool:
        """Whether a fusion may introduce ``domain:op_type`` (a CPU kernel exists for it)."""
        if not self.check_kernels:
            return True
        from ..providers.cpu.registry import CPU_KERNELS, CUSTOM_KERNELS

        self.cpu()  # loads the kernel modules
        return CPU_KERNELS.has_op(domain, op_type) or CUSTOM_KERNELS.has_op(domain, op_type)

    def cpu(self) -> Any:
        if self._cpu is None:
            from ..providers.cpu.provider import CPUExecutionProvider

            self._cpu = CPUExecutionProvider()
        return self._cpu

    @property
    def legacy_initializers(self) -> bool:
        """IR < 4: every initializer is also listed as a graph input (and is still a constant)."""
        return self.ir_version < 4


def _collect_names(g: Graph, out: set[str]) -> None:
    out.update(v.name for v in g.inputs)
    out.update(v.name for v in g.outputs)
    out.update(g.initializers)
    out.update(g.value_info)
    for n in g.nodes:
        out.update(n.inputs)
        out.update(n.outputs)
        out.add(n.name)
        for _, sub in n.graphs():
            _collect_names(sub, out)


class PatternPass:
    """A pass that tries ``rewrite`` at every live node whose op type is in ``anchors``.

    Subclasses match backwards from the anchor (usually the last node of the pattern) and, when
    everything checks out, edit through the :class:`GraphIndex`; the index commits the new node
    order once at the end.
    """

    name: str = ""
    anchors: ClassVar[frozenset[str]] = frozenset()

    def __call__(self, graph: Graph, ctx: PassContext) -> bool:
        from ._graphutil import GraphIndex

        anchors = self.anchors
        if not any(n.op_type in anchors for n in graph.nodes):
            return False  # nothing to match: no index to build
        idx = GraphIndex(graph, ctx)
        changed = False
        for node in list(graph.nodes):
            if node.op_type in self.anchors and idx.alive(node) and self.rewrite(node, idx):
                changed = True
        if changed:
            idx.commit()
        return changed

    def rewrite(self, node: Any, idx: GraphIndex) -> bool:
        raise NotImplementedError
