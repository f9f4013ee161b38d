"""The compiled, flat execution plan and its run loop.

A graph compiles once into steps ``(fn, in_slots, out_slots, free_slots)``: kernels are resolved
and attributes bound at build time, values live in integer slots of a list, and the slots to clear
after each step are computed per set of requested outputs (only the steps those outputs need are
kept). The run loop knows no op names.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import Fail, OnnxliteError, RuntimeException
from .ir.graph import Graph, Node
from .providers.registry import NodeInfo
from .shape_steps import shape_only_steps

NONE_SLOT = 0  # always None: missing optional inputs
SINK_SLOT = 1  # receives skipped optional outputs ('' names)


@dataclass(frozen=True)
class Step:
    fn: Callable[..., Any]
    ins: tuple[int, ...]
    outs: tuple[int, ...]
    node: Node
    provider: str


@dataclass(frozen=True)
class Variant:
    """The steps needed for one set of fetched slots, with their free lists."""

    steps: tuple[tuple[Callable[..., Any], tuple[int, ...], tuple[int, ...], tuple[int, ...]], ...]
    step_index: tuple[int, ...]  # index into Plan.steps, for error messages and profiling
    fetch: tuple[int, ...]
    keep: tuple[int, ...] = ()  # slots besides the fetched ones that outlive the run
    # ``steps`` with stretches that a provider runs as one segment (see Segmenter): what
    # :meth:`Plan.execute` runs; the profiler and the parallel executor keep to ``steps``
    fast: tuple[Any, ...] = ()


# A segment step: ``fn(vals)`` runs several consecutive steps on the run's slots itself.
SEGMENT = None

# Segmenter(steps, step_index) -> steps where some stretches are replaced by segment steps
# ``(fn, SEGMENT, (), ())``; it is handed each variant's steps with their plan indices.
Segmenter = Callable[[tuple[Any, ...], tuple[int, ...]], tuple[Any, ...]]


class SegmentStepError(Exception):
    """Raised by a segment when one of its steps fails: the plan index of that step."""

    def __init__(self, index: int, error: Exception) -> None:
        super().__init__(str(error))
        self.index = index
        self.error = error


class Terminated(RuntimeException):
    """The run was cancelled through RunOptions.terminate."""


def store(vals: list[Any], outs: tuple[int, ...], res: Any) -> None:
    """Put a kernel's result in its output slots (one value, or a tuple for several outputs)."""
    if len(outs) == 1:
        vals[outs[0]] = res[0] if type(res) is tuple else res
    else:
        for o, r in zip(outs, res):
            vals[o] = r


def describe_values(values: Sequence[Any]) -> str:
    parts = []
    for v in values:
        if v is None:
            parts.append("None")
        elif isinstance(v, list):
            parts.append(f"sequence[{len(v)}]")
        elif hasattr(v, "dtype") and hasattr(v, "shape"):  # numpy or device arrays, no copy
            parts.append(f"{v.dtype}{list(v.shape)}")
        else:
            a = np.asarray(v)
            parts.append(f"{a.dtype}{list(a.shape)}")
    return ", ".join(parts)


# Input-shape signatures whose shape values a plan keeps, and the largest value it keeps.
SHAPE_SIGNATURES = 16
SHAPE_VALUE_ELEMENTS = 1024


class Plan:
    """A compiled graph. Subgraphs (If/Loop/Scan bodies) are Plans too, reading outer values.

    Steps that only compute shapes (``Shape`` of values whose shape the input shapes fix, and
    shape arithmetic on that and constants: the Shape -> Gather -> Unsqueeze -> Concat chains
    of exported transformers) are run once per input-shape signature: their results are kept
    (for up to SHAPE_SIGNATURES signatures) and the next run with the same input shapes starts
    from them, leaving those steps out.
    """

    def __init__(
        self,
        graph: Graph,
        steps: list[Step],
        slots: dict[str, int],
        constants: Mapping[str, Any],
        outer: Sequence[str],
        segmenter: Segmenter | None = None,
    ) -> None:
        self.graph = graph
        self.segmenter = segmenter
        self.steps = steps
        self.slots = slots
        self.n_slots = max(slots.values(), default=SINK_SLOT) + 1
        template: list[Any] = [None] * self.n_slots
        for name, value in constants.items():
            template[slots[name]] = value
        self.template = template
        self.input_names = [v.name for v in graph.inputs]
        self.input_slots = [slots[n] for n in self.input_names]
        self.outer_names = list(outer)
        self.outer_slots = [(slots[n], n) for n in outer]
        self.output_names = [v.name for v in graph.outputs]
        # (node, provider name) for every node, compiled groups included (inspect, logging)
        self.assignment: list[tuple[Node, str]] = [(st.node, st.provider) for st in steps]
        # (provider name, node count) of each group a non-CPU provider claimed (logging)
        self.groups: list[tuple[str, int]] = []
        # some of the graph's initializers were replaced by stand-ins of a provider's packed copy
        self.packed_in_place = False
        self._variants: dict[tuple[Any, ...], Variant] = {}
        self._lock = threading.Lock()
        self.full = self.variant(tuple(slots[n] for n in self.output_names))
        self._shape_values: OrderedDict[tuple[Any, ...], tuple[frozenset[int], dict[int, Any]]] = (
            OrderedDict()
        )
        self._set_shape_steps(frozenset())

    def variant(
        self, fetch: tuple[int, ...], skip: frozenset[int] = frozenset(), keep: tuple[int, ...] = ()
    ) -> Variant:
        """The steps computing ``fetch``; those in ``skip`` are left out (their outputs are put in
        place before the run) and the ``keep`` slots are not freed."""
        key = (fetch, skip, keep)
        v = self._variants.get(key)
        if v is None:
            with self._lock:
                v = self._variants.get(key) or self._build_variant(fetch, skip, keep)
                self._variants[key] = v
        return v

    def _build_variant(self, fetch: tuple[int, ...], skip: frozenset[int], kept: tuple[int, ...]) -> Variant:
        needed = set(fetch)
        keep: list[int] = []
        for idx in range(len(self.steps) - 1, -1, -1):
            st = self.steps[idx]
            if idx not in skip and needed.intersection(st.outs):
                keep.append(idx)
                needed.update(st.ins)
        keep.reverse()
        last_use: dict[int, int] = {}
        for pos, idx in enumerate(keep):
            for s in self.steps[idx].ins:
                last_use[s] = pos
        keep_alive = set(fetch) | {NONE_SLOT} | set(kept)
        frees: list[list[int]] = [[] for _ in keep]
        for s, pos in last_use.items():
            if s not in keep_alive:
                frees[pos].append(s)
        for pos, idx in enumerate(keep):
            for s in self.steps[idx].outs:
                if s not in keep_alive and s not in last_use:
                    frees[pos].append(s)  # produced but never read: drop at once
        steps = tuple(
            (self.steps[idx].fn, self.steps[idx].ins, self.steps[idx].outs, tuple(sorted(set(fr))))
            for idx, fr in zip(keep, frees)
        )
        fast = self.segmenter(steps, tuple(keep)) if self.segmenter is not None else steps
        return Variant(steps, tuple(keep), fetch, kept, fast)

    # -- shape values per input-shape signature ------------------------------------------------

    def _set_shape_steps(self, banned: frozenset[int]) -> None:
        """Find the shape-only steps (none in ``banned`` or fed by one) and the slots they hand
        to other steps or return."""
        fed = set(self.input_slots)
        const = {i for i, v in enumerate(self.template) if v is not None and i not in fed}
        chosen, boundary = shape_only_steps(self.steps, fed, const, self.full.fetch, banned, NONE_SLOT)
        self._banned = banned
        self.shape_steps = chosen
        self._boundary = boundary
        self._shape_values.clear()

    def specialize(self, variant: Variant, vals: list[Any]) -> tuple[Variant, Any]:
        """The variant to run for the inputs in ``vals``: without the shape-only steps when their
        values for these input shapes are known (put into ``vals``), else one that keeps them
        for :meth:`remember`; and what to hand :meth:`remember` after the run (None on a hit).

        A kept entry carries the set of steps it stands for, so a run on another thread that
        narrows the set meanwhile cannot leave out a step whose result it lacks."""
        if not self.shape_steps:  # no lock: the set only ever shrinks
            return variant, None
        with self._lock:
            steps, boundary = self.shape_steps, self._boundary
            if not steps:
                return variant, None
            sig = tuple(
                (getattr(vals[s], "shape", None), str(getattr(vals[s], "dtype", type(vals[s]))))
                for s in self.input_slots
            )
            hit = self._shape_values.get(sig)
            if hit is not None:
                self._shape_values.move_to_end(sig)
        if hit is not None:
            skip, values = hit
            for s, v in values.items():
                vals[s] = v
            return self.variant(variant.fetch, skip), None
        return self.variant(variant.fetch, frozenset(), boundary), (sig, steps, boundary)

    def remember(self, token: Any, vals: list[Any]) -> None:
        """Keep the shape-only steps' results of a run made with :meth:`specialize`'s variant."""
        sig, steps, boundary = token
        values = {s: vals[s] for s in boundary}
        if any(v is None for v in values.values()):
            return  # a run for some outputs only: not every value was computed
        large = {
            s for s, v in values.items() if not isinstance(v, np.ndarray) or v.size > SHAPE_VALUE_ELEMENTS
        }
        with self._lock:
            if steps is not self.shape_steps:
                return  # the set changed since this run started
            if large:
                # values too large to keep (an expanded mask, say): their steps run every time
                bad = {i for i in steps if large.intersection(self.steps[i].outs)}
                self._set_shape_steps(self._banned | bad)
                return
            # copies: a value may also be a returned output, which the caller may change
            self._shape_values[sig] = (steps, {s: freeze(v.copy()) for s, v in values.items()})
            while len(self._shape_values) > SHAPE_SIGNATURES:
                self._shape_values.popitem(last=False)

    def execute(self, vals: list[Any], variant: Variant, terminate: Any = None) -> list[Any]:
        """Run the variant's steps over ``vals`` (filled with inputs); returns the fetched values."""
        steps = variant.fast or variant.steps
        pos = 0
        try:
            for pos, (fn, ins, outs, free) in enumerate(steps):  # noqa: B007
                if terminate is not None and terminate.terminate:
                    raise Terminated("Exiting due to terminate flag being set to true.")
                if ins is SEGMENT:
                    fn(vals)
                    continue
                res = fn(*[vals[i] for i in ins])
                if len(outs) == 1:  # inlined store(): this loop is the per-node overhead
                    vals[outs[0]] = res[0] if type(res) is tuple else res
                else:
                    store(vals, outs, res)
                for f in free:
                    vals[f] = None
        except Terminated:
            raise
        except SegmentStepError as e:
            raise self.error_at(e.index, vals, e.error) from e.error
        except Exception as e:
            if steps is not variant.steps:  # positions in ``fast`` are not those of ``steps``
                if steps[pos][1] is SEGMENT:  # a segment's own failure: no step to name
                    raise Fail(f"a segment of steps failed: {type(e).__name__}: {e}") from e
                index = variant.step_index[variant.steps.index(steps[pos])]
                raise self.error_at(index, vals, e) from e
            raise self.step_error(variant, pos, vals, e) from e
        return [vals[i] for i in variant.fetch]

    def step_error(self, variant: Variant, pos: int, vals: list[Any], e: Exception) -> Exception:
        return self.error_at(variant.step_index[pos], vals, e)

    def error_at(self, index: int, vals: list[Any], e: Exception) -> Exception:
        """The error to raise for step ``index`` of the plan failing with ``e``."""
        st = self.steps[index]
        inputs = describe_values([vals[i] for i in st.ins])
        msg = (
            f"Non-zero status code returned while running {st.node.op_type} node. "
            f"Name:'{st.node.name}' Status Message: {type(e).__name__}: {e} "
            f"(inputs: {inputs}; provider {st.provider})"
        )
        if isinstance(e, OnnxliteError):
            return type(e)(msg)
        return Fail(msg)

    def run_subgraph(self, inputs: Sequence[Any], outer: Mapping[str, Any]) -> list[Any]:
        """Run as a subgraph: formal inputs by position, outer-scope values by name."""
        vals = self.template.copy()
        for s, v in zip(self.input_slots, inputs):
            vals[s] = v
        for s, name in self.outer_slots:
            vals[s] = outer[name]
        return self.execute(vals, self.full)


def freeze(value: Any) -> Any:
    """A read-only view of an array shared by every run (initializers, tensor attributes).

    A kernel or a caller writing into one would corrupt later runs; the session hands callers
    copies of read-only outputs.
    """
    if isinstance(value, np.ndarray) and value.flags.writeable:
        value = value.view()
        value.flags.writeable = False
    return value


def node_info(
    node: Node,
    version: int,
    graph: Graph,
    opsets: Mapping[str, int],
    subgraphs: Mapping[str, Any],
    implicit: Sequence[str],
) -> NodeInfo:
    def tp(name: str) -> Any:
        return graph.type_of(name) if name else None

    return NodeInfo(
        name=node.name,
        op_type=node.op_type,
        domain="" if node.domain == "ai.onnx" else node.domain,
        version=version,
        inputs=tuple(node.inputs),
        outputs=tuple(node.outputs),
        attrs={k: freeze(v) for k, v in node.attrs.items() if k not in subgraphs},
        input_types=tuple(tp(n) for n in node.inputs),
        output_types=tuple(tp(n) for n in node.outputs),
        subgraphs=subgraphs,
        implicit_inputs=tuple(implicit),
        opsets=opsets,
    )
