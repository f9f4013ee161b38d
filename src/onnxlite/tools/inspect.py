"""``onnxlite inspect MODEL``: inputs, outputs and which provider runs which nodes."""

from __future__ import annotations

import argparse
from collections import Counter
from typing import Any


def provider_table(session: Any) -> list[tuple[str, int, str]]:
    """(provider, node count, 'Op(count), ...') rows in the session's provider order."""
    by_provider: dict[str, Counter[str]] = {}
    for node, provider in session._plan.assignment:
        by_provider.setdefault(provider, Counter())[node.op_type] += 1
    rows = []
    for name in session.get_providers():
        ops = by_provider.get(name)
        if ops:
            listed = ", ".join(f"{op}({n})" for op, n in sorted(ops.items(), key=lambda kv: (-kv[1], kv[0])))
            rows.append((name, sum(ops.values()), listed))
    return rows


def device_copies(session: Any) -> int:
    """Copy steps the plan inserted where values cross devices."""
    return sum(1 for st in session._plan.steps if st.node.op_type.startswith("Memcpy"))


def cmd_inspect(args: argparse.Namespace) -> int:
    import onnxlite

    providers = args.providers.split(",") if args.providers else None
    so = onnxlite.SessionOptions()
    if args.opt_level is not None:
        so.graph_optimization_level = args.opt_level
    sess = onnxlite.InferenceSession(args.model, sess_options=so, providers=providers)
    meta = sess.get_modelmeta()
    model = sess._model
    opsets = ", ".join(f"{d or 'ai.onnx'}:{v}" for d, v in sorted(model.opsets.items()))
    print(f"model: {args.model}")
    print(f"producer: {meta.producer_name or '-'}  ir_version: {model.ir_version}  opsets: {opsets}")
    print("inputs:")
    for a in sess.get_inputs():
        print(f"  {a.name}: {a.type} {a.shape}")
    print("outputs:")
    for a in sess.get_outputs():
        print(f"  {a.name}: {a.type} {a.shape}")
    print(f"providers ({len(sess._plan.assignment)} nodes, {device_copies(sess)} device copies):")
    rows = provider_table(sess)
    width = max((len(r[0]) for r in rows), default=8)
    print(f"  {'provider':<{width}}  {'nodes':>5}  op types")
    for name, count, ops in rows:
        print(f"  {name:<{width}}  {count:>5}  {ops}")
    return 0


def add_inspect_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("inspect", help="show a model's inputs, outputs and provider assignment")
    p.add_argument("model", help="path of an .onnx model")
    p.add_argument("--providers", help="comma-separated provider names, in priority order")
    p.add_argument("-o", "--opt-level", type=int, choices=[0, 1, 2, 3, 99], help="graph optimization level")
    p.set_defaults(fn=cmd_inspect)
