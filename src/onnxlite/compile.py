"""Build a :class:`~onnxlite.plan.Plan` from an IR graph and a list of providers."""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import EPFail, InvalidGraph, NotImplemented_, OnnxliteError
from .ir.functions import expand_functions
from .ir.graph import Graph, Node
from .ir.typecheck import check_node_types
from .plan import NONE_SLOT, SEGMENT, SINK_SLOT, Plan, Segmenter, Step, freeze, node_info
from .providers.base import ExecutionProvider, group_io, schema_version
from .providers.partition import Partition, partition


@dataclass
class BuildContext:
    opsets: MutableMapping[str, int]
    providers: Sequence[ExecutionProvider]
    cpu: ExecutionProvider
    allow_cpu_fallback: bool = True
    # Initializers a provider keeps packed may be replaced in the graph by their stand-ins (the
    # original arrays freed): only where the session can load its model again to rebuild.
    pack_in_place: bool = False
    # set once any was: the graph no longer holds every weight (a failed build must reload it)
    packed_any: bool = False


def compile_graph(graph: Graph, ctx: BuildContext, outer: Sequence[str] = ()) -> Plan:
    """Compile ``graph``; ``outer`` names the enclosing-scope values it may read (subgraphs)."""

    def has_kernel(node: Node) -> bool:
        return any(ep.supports(node, graph, ctx.opsets) for ep in ctx.providers) or ctx.cpu.supports(
            node, graph, ctx.opsets
        )

    expand_functions(graph, ctx.opsets, has_kernel, graph.type_of)
    parts = partition(graph, ctx.providers, ctx.opsets, ctx.cpu, ctx.allow_cpu_fallback)
    assigned = parts.assigned
    for provider in {id(p): p for p in [*ctx.providers, ctx.cpu]}.values():
        mine = [i for i, p in enumerate(assigned) if p is provider]
        if mine:
            provider.transform_assigned(graph, mine, ctx.opsets)
    for node, ep in zip(graph.nodes, assigned):
        if ep is None:
            raise _unknown_op(node, ctx.opsets)
        check_node_types(node, ctx.opsets, graph.type_of)

    b = _Builder(graph, ctx)
    outer_used = sorted(graph.free_names() & set(outer)) if outer else []
    missing = graph.free_names() - set(outer)
    if missing:
        raise InvalidGraph(f"graph {graph.name!r} reads undefined value(s) {sorted(missing)}")
    for v in graph.inputs:
        b.slot(v.name)
    for n in outer_used:
        b.slot(n)
    constants = {}
    for name, value in graph.initializers.items():
        b.slot(name)
        constants[name] = freeze(value)

    # Providers other than the CPU one whose kernels read host memory may hold constants packed.
    packers = {id(ep) for ep in ctx.providers if ep is not ctx.cpu and ep.device == "cpu"}
    sole = _sole_readers(graph) if packers else {}
    packed = False  # some of this graph's initializers were replaced by stand-ins
    compiled = _compiled_groups(graph, parts)
    group_of = {i: k for k, (_, group, _) in enumerate(compiled) for i in group}
    visible = set(outer) | {v.name for v in graph.inputs} | set(graph.initializers)
    for idx, (node, ep) in enumerate(zip(graph.nodes, assigned)):
        assert ep is not None
        k = group_of.get(idx)
        if k is not None:
            gep, group, fn = compiled[k]
            if idx == group[-1]:  # a compiled group runs where its last node stood
                ins_names, out_names = group_io(graph, group)
                rep = Node(f"{gep.name}Group", ins_names, out_names, name=f"{gep.name}_group_{k}")
                b.emit(fn, ins_names, out_names, rep, gep)
        else:
            b.emit_node(node, ep, visible)
            if id(ep) in packers:
                # Initializers the kernel keeps packed: the plan (and, for a session that can load
                # its model again, the graph) hold its stand-in, so the original array is freed
                # as soon as it is packed (VGG-19 with oneDNN: 548 MB held once, not twice;
                # BERT-base's peak 0.83 GB when the originals stayed to the end of the build, 0.5
                # now). A build failing later reloads the model for the CPU provider.
                for name in node.inputs:
                    if name and sole.get(name) == idx and name in constants and node.inputs.count(name) == 1:
                        stand_in = ep.packed_constant(node, name)
                        if stand_in is not None:
                            constants[name] = stand_in
                            if ctx.pack_in_place:
                                graph.initializers[name] = stand_in
                                packed = ctx.packed_any = True
        visible.update(o for o in node.outputs if o)
    for o in graph.outputs:  # outputs are fetched from the host copy of device values
        b.slots[o.name] = b.to_cpu(b.slot(o.name), o.name)
    eps = {ep.name: ep for ep in [*ctx.providers, ctx.cpu]}
    _write_in_place(b.steps, {b.slots[o.name] for o in graph.outputs}, eps)
    segmenter = _segmenter(b.steps, eps, {b.slots[n]: v for n, v in constants.items()})
    plan = Plan(graph, b.steps, b.slots, constants, outer_used, segmenter)
    plan.assignment = [(node, ep.name) for node, ep in zip(graph.nodes, assigned) if ep is not None]
    plan.packed_in_place = packed
    plan.groups = [(ep.name, len(group)) for ep, group in parts.groups]
    return plan


def _sole_readers(graph: Graph) -> dict[str, int]:
    """Initializers read by exactly one node (as a direct input, not from a subgraph) and no
    graph output: name -> that node's index."""
    count: dict[str, int] = {}
    where: dict[str, int] = {}
    for i, node in enumerate(graph.nodes):
        names = set(node.inputs)
        for _, sub in node.graphs():
            names |= sub.free_names()
        for n in names:
            if n in graph.initializers:
                count[n] = count.get(n, 0) + 1
                where[n] = i
    outputs = {o.name for o in graph.outputs}
    return {n: where[n] for n, c in count.items() if c == 1 and n not in outputs}


def _write_in_place(steps: list[Step], outputs: set[int], providers: Mapping[str, ExecutionProvider]) -> None:
    """Let steps overwrite inputs that only they can see: fresh buffers (see
    ``ExecutionProvider.writes_fresh``) with one reader that no graph output holds."""
    readers: dict[int, int] = {}
    for st in steps:
        for s in st.ins:
            readers[s] = readers.get(s, 0) + 1
    fresh: set[int] = set()  # slots holding fresh buffers
    for i, st in enumerate(steps):
        ep = providers.get(st.provider)
        if ep is None:
            continue
        owned = tuple(s in fresh and readers.get(s) == 1 and s not in outputs for s in st.ins)
        if any(owned):
            fn = ep.inplace_variant(st.node, owned, st.fn)
            if fn is not None:
                steps[i] = st = Step(fn, st.ins, st.outs, st.node, st.provider)
        if ep.writes_fresh(st.node, st.fn):
            fresh.update(st.outs)


def _segmenter(
    steps: list[Step], providers: Mapping[str, ExecutionProvider], constants: Mapping[int, Any]
) -> Segmenter | None:
    """What hands each plan variant's stretches of consecutive segmentable steps of one
    provider (two or more) to that provider's :meth:`ExecutionProvider.segment`."""
    eps = {n: ep for n, ep in providers.items() if type(ep).segment is not ExecutionProvider.segment}
    if not eps:
        return None

    def segment(vsteps: tuple[Any, ...], index: tuple[int, ...]) -> tuple[Any, ...]:
        out: list[Any] = []
        pos = 0
        while pos < len(vsteps):
            ep = eps.get(steps[index[pos]].provider)
            end = pos
            while (
                ep is not None
                and end < len(vsteps)
                and steps[index[end]].provider == ep.name
                and ep.segmentable(vsteps[end][0])
            ):
                end += 1
            fn = ep.segment(vsteps[pos:end], index[pos:end], constants) if ep and end - pos > 1 else None
            if fn is None:
                stop = max(end, pos + 1)
                out.extend(vsteps[pos:stop])
                pos = stop
            else:
                out.append((fn, SEGMENT, (), ()))
                pos = end
        return tuple(out)

    return segment


def _compiled_groups(graph: Graph, parts: Partition) -> list[tuple[ExecutionProvider, list[int], Any]]:
    """Groups whose provider compiled them into one callable. A group is only compiled when it is
    convex in the node order (no outside node between its first and last reads its values)."""
    out = []
    for ep, group in parts.groups:
        if len(group) < 2:
            continue
        produced = {o for i in group for o in graph.nodes[i].outputs if o}
        members = set(group)
        between = [j for j in range(group[0], group[-1]) if j not in members]
        if any(produced.intersection(graph.nodes[j].inputs) for j in between):
            continue
        fn = ep.compile(graph, group)
        if fn is not None:
            out.append((ep, group, fn))
    return out


class _Builder:
    """Slots, steps and device copies for one graph."""

    def __init__(self, graph: Graph, ctx: BuildContext) -> None:
        self.graph = graph
        self.ctx = ctx
        self.slots: dict[str, int] = {}
        self.steps: list[Step] = []
        self.device: dict[int, ExecutionProvider] = {}  # slots held off the CPU, by provider
        self.copies: dict[tuple[int, str], int] = {}

    def slot(self, name: str) -> int:
        s = self.slots.get(name)
        if s is None:
            s = self.slots[name] = len(self.slots) + 2  # 0 and 1 are NONE_SLOT and SINK_SLOT
        return s

    def _copy(self, s: int, name: str, ep: ExecutionProvider, fn: Any, label: str) -> int:
        key = (s, ep.device)
        c = self.copies.get(key)
        if c is None:
            c = self.copies[key] = self.slot(f"{name}@{ep.device}")
            node = Node(label, [name], [f"{name}@{ep.device}"], name=f"{label}_{name}")
            self.steps.append(Step(fn, (s,), (c,), node, ep.name))
        return c

    def to_cpu(self, s: int, name: str) -> int:
        """The slot holding ``s``'s value on the CPU, adding a copy step if it lives elsewhere."""
        src = self.device.get(s)
        if src is None:
            return s
        return self._copy(s, name, self.ctx.cpu, src.to_cpu, "MemcpyToHost")

    def on(self, s: int, name: str, ep: ExecutionProvider) -> int:
        """The slot holding ``s``'s value on ``ep``'s device."""
        if ep.device == "cpu":
            return self.to_cpu(s, name)
        src = self.device.get(s)
        if src is not None and src.device == ep.device:
            return s
        return self._copy(self.to_cpu(s, name), name, ep, ep.to_device, "MemcpyFromHost")

    def emit(
        self,
        fn: Any,
        ins: list[str],
        outs: list[str],
        node: Node,
        ep: ExecutionProvider,
        implicit: Sequence[str] = (),
    ) -> None:
        in_slots = tuple(self.on(self.slot(n), n, ep) if n else NONE_SLOT for n in ins)
        in_slots += tuple(self.to_cpu(self.slot(n), n) for n in implicit)
        out_slots = tuple(self.slot(n) if n else SINK_SLOT for n in outs)
        if ep.device != "cpu":
            self.device.update((s, ep) for s in out_slots if s != SINK_SLOT)
        self.steps.append(Step(fn, in_slots, out_slots, node, ep.name))

    def emit_node(self, node: Node, ep: ExecutionProvider, visible: set[str]) -> None:
        ctx = self.ctx
        subgraphs: dict[str, Any] = {}
        implicit: set[str] = set()
        for attr, sub in node.attrs.items():
            if isinstance(sub, Graph):
                plan = compile_graph(sub, ctx, sorted(visible))
                subgraphs[attr] = plan
                implicit.update(plan.outer_names)
        implicit_names = sorted(implicit)
        info = node_info(
            node, schema_version(node, ctx.opsets), self.graph, ctx.opsets, subgraphs, implicit_names
        )
        try:
            fn = ep.kernel(info, node, ctx.opsets)
        except OnnxliteError:
            raise
        except Exception as e:
            if ep is not ctx.cpu:
                raise EPFail(f"{node.describe()}: {ep.name} failed to build its kernel: {e}") from e
            raise NotImplemented_(f"{node.describe()}: cannot build its {ep.name} kernel: {e}") from e
        names = list(node.inputs)
        if not implicit_names:
            while names and not names[-1]:
                names.pop()
        self.emit(fn, names, list(node.outputs), node, ep, implicit_names)


_UNKNOWN_DOMAIN_HINTS = {
    "com.microsoft.nchwc": (
        " (onnxruntime's NCHWc layout ops, which it writes into models saved at ORT_ENABLE_ALL "
        "and only for the machine that saved them: save the model at ORT_ENABLE_EXTENDED)"
    ),
}


def _unknown_op(node: Node, opsets: Mapping[str, int]) -> NotImplemented_:
    dom = node.domain or "ai.onnx"
    opset = opsets.get("" if node.domain in ("", "ai.onnx") else node.domain)
    return NotImplemented_(
        f"Could not find an implementation for {node.op_type}({opset}) node with name "
        f"'{node.name}': op {node.op_type!r} of domain {dom!r} at opset {opset} has no kernel "
        f"in any provider and no function body{_UNKNOWN_DOMAIN_HINTS.get(dom, '')}"
    )
