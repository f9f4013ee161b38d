"""Tree ensembles of ai.onnx.ml: TreeEnsemble (5), TreeEnsembleRegressor and
TreeEnsembleClassifier (1, 3; the deprecated 5 schema is the same op).

All three are compiled at build time into one flat node table (:class:`_Forest`). Prediction walks
every (sample, tree) pair down the trees together, one level per step, with numpy index arrays;
only pairs still at an interior node take part in each step. Leaf weights are then aggregated
with ``bincount`` / ``minimum.at`` / ``maximum.at``.

Aggregation, base values and post-transforms follow onnxruntime (tree_ensemble_aggregator.h),
which the converters target, including its conventions for binary classifiers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ...registry import NodeInfo
from ..registry import kernel
from ._ml_common import (
    POST_TRANSFORM_CODES,
    as_2d_float,
    binary_scores,
    check_post_transform,
    floats_attr,
    labels_array,
    post_transform,
)

# Node modes: the TreeEnsemble (5) integer codes; LEAF is ours.
LEQ, LT, GTE, GT, EQ, NEQ, MEMBER, LEAF = range(8)
_MODE_NAMES = {
    "BRANCH_LEQ": LEQ,
    "BRANCH_LT": LT,
    "BRANCH_GTE": GTE,
    "BRANCH_GT": GT,
    "BRANCH_EQ": EQ,
    "BRANCH_NEQ": NEQ,
    "LEAF": LEAF,
}
_COMPARE = {
    LEQ: np.less_equal,
    LT: np.less,
    GTE: np.greater_equal,
    GT: np.greater,
    EQ: np.equal,
    NEQ: np.not_equal,
}
_AGGREGATES = ("AVERAGE", "SUM", "MIN", "MAX")  # TreeEnsemble (5) integer codes


class _Forest:
    """Trees as flat arrays over one node index space.

    Interior node i tests ``X[:, feature[i]] <mode[i]> threshold[i]`` (or NaN with
    ``missing_true[i]``) and moves to ``true_child[i]`` or ``false_child[i]``. A leaf's
    contributions are entries ``first[i] : first[i] + count[i]`` of (``target``, ``weight``).
    """

    def __init__(
        self,
        mode: np.ndarray,
        feature: np.ndarray,
        threshold: np.ndarray,
        true_child: np.ndarray,
        false_child: np.ndarray,
        missing_true: np.ndarray,
        roots: np.ndarray,
        entry_node: np.ndarray,
        entry_target: np.ndarray,
        entry_weight: np.ndarray,
        members: dict[int, np.ndarray] | None = None,
    ) -> None:
        n = len(mode)
        self.mode = mode.astype(np.int8)
        self.is_leaf = self.mode == LEAF
        self.feature = np.where(self.is_leaf, 0, feature).astype(np.int64)
        self.threshold = threshold.astype(np.float64)
        # onnxruntime keeps thresholds and weights in float32 unless the input is double.
        self.threshold32 = _f32(self.threshold)
        self.true_child = np.where(self.is_leaf, 0, true_child).astype(np.int64)
        self.false_child = np.where(self.is_leaf, 0, false_child).astype(np.int64)
        self.missing_true = missing_true.astype(bool) & ~self.is_leaf
        self.has_missing = bool(self.missing_true.any())
        self.roots = roots.astype(np.int64)
        interior = np.unique(self.mode[~self.is_leaf])
        self.single_mode = int(interior[0]) if len(interior) == 1 else None
        # Only nodes reachable from a root may read a feature (a leaf-only tree's root is never
        # evaluated, whatever its feature id).
        reach = np.zeros(n, dtype=bool)
        frontier = self.roots
        while frontier.size:
            frontier = np.unique(frontier[~reach[frontier]])
            reach[frontier] = True
            inner = frontier[~self.is_leaf[frontier]]
            frontier = np.concatenate([self.true_child[inner], self.false_child[inner]])
        used = reach & ~self.is_leaf
        self.max_feature = int(self.feature[used].max()) if used.any() else -1

        # Leaf entries grouped by node (entries on interior nodes are ignored, as in onnxruntime).
        keep = self.is_leaf[entry_node]
        entry_node, entry_target, entry_weight = entry_node[keep], entry_target[keep], entry_weight[keep]
        order = np.argsort(entry_node, kind="stable")
        self.target = entry_target[order].astype(np.int64)
        self.weight = entry_weight[order].astype(np.float64)
        self.weight32 = _f32(self.weight)
        self.count = np.bincount(entry_node, minlength=n).astype(np.int64)
        self.first = np.cumsum(self.count) - self.count
        self.one_entry = bool((self.count[self.is_leaf] == 1).all())
        self.n_out = 0
        self.dense: Any = None

        # Set membership (TreeEnsemble 5): each MEMBER node's values, sorted, in one array.
        self.mem_lo = np.zeros(n, dtype=np.int64)
        self.mem_hi = np.zeros(n, dtype=np.int64)
        vals: list[np.ndarray] = []
        pos = 0
        for i, v in sorted((members or {}).items()):
            v = np.unique(np.asarray(v, dtype=np.float64))
            self.mem_lo[i], self.mem_hi[i] = pos, pos + len(v)
            pos += len(v)
            vals.append(v)
        self.mem_vals = np.concatenate(vals) if vals else np.zeros(1)

    @property
    def n_trees(self) -> int:
        return len(self.roots)

    def _is_member(self, node: np.ndarray, x: np.ndarray) -> np.ndarray:
        # Vectorised binary search of x within each node's sorted value segment.
        lo, hi = self.mem_lo[node].copy(), self.mem_hi[node].copy()
        while True:
            live = lo < hi
            if not live.any():
                break
            mid = (lo + hi) // 2
            right = live & (self.mem_vals[np.minimum(mid, len(self.mem_vals) - 1)] < x)
            lo = np.where(right, mid + 1, lo)
            hi = np.where(live & ~right, mid, hi)
        found_at = np.minimum(lo, len(self.mem_vals) - 1)
        return (lo < self.mem_hi[node]) & (self.mem_vals[found_at] == x)

    def _branch(self, node: np.ndarray, x: np.ndarray, single: bool) -> np.ndarray:
        t = (self.threshold32 if single else self.threshold)[node]
        if self.single_mode is not None and self.single_mode != MEMBER:
            cond = _COMPARE[self.single_mode](x, t)
        else:
            mode = self.mode[node]
            cond = np.zeros(len(node), dtype=bool)
            for m in np.unique(mode).tolist():
                sel = mode == m
                if m == MEMBER:
                    cond[sel] = self._is_member(node[sel], x[sel])
                else:
                    cond[sel] = _COMPARE[m](x[sel], t[sel])
        if self.has_missing:
            cond |= self.missing_true[node] & np.isnan(x)
        return cond

    def leaves(self, x: np.ndarray, single: bool = False) -> np.ndarray:
        """The leaf reached by every sample in every tree, [N * n_trees] (sample-major)."""
        n = x.shape[0]
        if self.max_feature >= x.shape[1]:
            raise ValueError(
                f"a tree node reads feature {self.max_feature} but the input has {x.shape[1]} features"
            )
        node = np.tile(self.roots, n)
        row = np.repeat(np.arange(n, dtype=np.int64), self.n_trees)
        act = np.nonzero(~self.is_leaf[node])[0]
        while act.size:
            nd = node[act]
            cond = self._branch(nd, x[row[act], self.feature[nd]], single)
            nxt = np.where(cond, self.true_child[nd], self.false_child[nd])
            node[act] = nxt
            act = act[~self.is_leaf[nxt]]
        return node

    def set_outputs(self, n_out: int) -> None:
        """Precompute dense per-leaf totals [n_nodes, n_out] when that table is small: the sums
        (and the MIN / MAX within a leaf) of its entries, and which outputs it touches."""
        self.n_out = n_out
        self.dense = None
        per_leaf = self.count[self.is_leaf].mean() if self.is_leaf.any() else 0.0
        if (
            2 * per_leaf < n_out  # sparse leaves (one entry each, e.g. boosting): bincount wins
            or len(self.mode) * n_out > 20_000_000
            or (self.target >= n_out).any()
            or (self.target < 0).any()
        ):
            return
        node = np.repeat(np.arange(len(self.mode)), self.count)
        key = node * n_out + self.target
        size = len(self.mode) * n_out
        hits = np.bincount(key, minlength=size).reshape(-1, n_out) > 0
        tables = {}
        for prec, w in (("64", self.weight), ("32", self.weight32)):
            tables["SUM" + prec] = np.bincount(key, weights=w, minlength=size).reshape(-1, n_out)
            for how, fn, fill in (("MIN", np.minimum, np.inf), ("MAX", np.maximum, -np.inf)):
                t = np.full(size, fill)
                fn.at(t, key, w)
                tables[how + prec] = t.reshape(-1, n_out)
        self.dense = (tables, hits)

    def aggregate(self, x: np.ndarray, n_out: int, how: str, single: bool) -> tuple[np.ndarray, np.ndarray]:
        """Per-sample totals [N, n_out] and whether any leaf contributed to each. With
        ``single`` the float32 model values are used and totals are rounded to float32."""
        n = x.shape[0]
        leaf = self.leaves(x, single)
        if self.dense is not None and n_out == self.n_out:
            total, has = self._aggregate_dense(leaf.reshape(n, self.n_trees), how, single)
        else:
            total, has = self._aggregate_sparse(leaf, n, n_out, how, single)
        if how == "AVERAGE":
            total /= self.n_trees
        return (_f32(total) if single else total), has

    def _aggregate_dense(self, leaf: np.ndarray, how: str, single: bool) -> tuple[np.ndarray, np.ndarray]:
        tables, hits = self.dense
        table = tables[("SUM" if how == "AVERAGE" else how) + ("32" if single else "64")]
        n = leaf.shape[0]
        # Trees one at a time (vectorised over samples), accumulating in float32 when the
        # model runs in float32: the same additions, in the same order, as onnxruntime.
        dtype = np.float32 if single and how in ("SUM", "AVERAGE") else np.float64
        total = np.zeros((n, self.n_out), dtype=dtype)
        if how == "MIN":
            total[...] = np.inf
        elif how == "MAX":
            total[...] = -np.inf
        has = np.zeros((n, self.n_out), dtype=bool)
        for t in range(self.n_trees):
            lf = leaf[:, t]
            vals = table[lf]
            if how in ("SUM", "AVERAGE"):
                total += vals.astype(dtype, copy=False)
            elif how == "MIN":
                np.minimum(total, vals, out=total)
            else:
                np.maximum(total, vals, out=total)
            has |= hits[lf]
        total = total.astype(np.float64)
        if how in ("MIN", "MAX"):
            total = np.where(has, total, 0.0)
        return total, has

    def _aggregate_sparse(
        self, leaf: np.ndarray, n: int, n_out: int, how: str, single: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        rows = np.repeat(np.arange(n, dtype=np.int64), self.n_trees)
        if self.one_entry:
            entry = self.first[leaf]
        else:
            cnt = self.count[leaf]
            rows = np.repeat(rows, cnt)
            starts = np.repeat(self.first[leaf] - (np.cumsum(cnt) - cnt), cnt)
            entry = starts + np.arange(rows.size, dtype=np.int64)
        key = rows * n_out + self.target[entry]
        w = (self.weight32 if single else self.weight)[entry]
        has = np.bincount(key, minlength=n * n_out).reshape(n, n_out) > 0
        total: np.ndarray
        if how in ("SUM", "AVERAGE") and single:
            # add.at adds in index order, i.e. tree by tree: float32 sums as onnxruntime's.
            acc = np.zeros(n * n_out, dtype=np.float32)
            np.add.at(acc, key, w.astype(np.float32))
            total = acc.astype(np.float64)
        elif how in ("SUM", "AVERAGE"):
            total = np.bincount(key, weights=w, minlength=n * n_out).astype(np.float64)
        else:
            total = np.full(n * n_out, np.inf if how == "MIN" else -np.inf)
            (np.minimum if how == "MIN" else np.maximum).at(total, key, w)
            total = np.where(has.reshape(-1), total, 0.0)
        return total.reshape(n, n_out), has


def _f32(a: Any) -> Any:
    return np.asarray(a, dtype=np.float32).astype(np.float64)


def _regression_output(
    forest: _Forest, x: np.ndarray, n_targets: int, how: str, base: np.ndarray | None, post: str
) -> np.ndarray:
    single = x.dtype != np.float64
    x = as_2d_float(x)
    total, has = forest.aggregate(x, n_targets, how, single)
    if single and base is not None:
        base = _f32(base)
    if n_targets == 1:
        # One target: onnxruntime adds a single base value even to rows no leaf reached, and
        # applies only PROBIT.
        if base is not None and base.size == 1:
            total = total + base[0]
            total = _f32(total) if single else total
        return post_transform(total, "PROBIT") if post == "PROBIT" else total
    if base is not None and base.size == n_targets:
        total = _f32(total + base) if single else total + base
    total = np.where(has, total, 0.0)  # targets no leaf reached stay 0
    return post_transform(total, post)


# --- TreeEnsembleRegressor / TreeEnsembleClassifier (1, 3) -------------------------------------


def _legacy_forest(a: Mapping[str, Any], prefix: str) -> _Forest:
    """Build from the nodes_* / <prefix>_* attributes, where nodes are (tree id, node id)."""
    tree = np.asarray(a.get("nodes_treeids", []), dtype=np.int64)
    nid = np.asarray(a.get("nodes_nodeids", []), dtype=np.int64)
    n = len(tree)
    modes = np.array([_MODE_NAMES[m] for m in a.get("nodes_modes", [])], dtype=np.int8)
    thr = floats_attr(a, "nodes_values")
    thr = np.zeros(n) if thr is None else thr
    miss = np.zeros(n, dtype=bool)
    tracks = a.get("nodes_missing_value_tracks_true") or []
    miss[: len(tracks)] = np.asarray(tracks[:n], dtype=np.int64) == 1

    # (tree, node id) -> position, through a sorted combined key.
    span = int(max(nid.max(initial=0), 0)) + 1
    keys = tree * span + nid
    order = np.argsort(keys, kind="stable")
    if n and (np.diff(keys[order]) == 0).any():
        raise ValueError("TreeEnsemble: a node id appears twice in one tree")

    def lookup(t: np.ndarray, i: np.ndarray, what: str) -> np.ndarray:
        k = t * span + i
        pos = order[np.minimum(np.searchsorted(keys[order], k), max(n - 1, 0))] if n else k
        bad = (i < 0) | (i >= span) | (keys[pos] != k) if n else np.ones(len(k), dtype=bool)
        if bad.any():
            raise ValueError(f"TreeEnsemble: {what} refers to a node that does not exist")
        return pos

    interior = modes != LEAF
    tc = np.zeros(n, dtype=np.int64)
    fc = np.zeros(n, dtype=np.int64)
    tc[interior] = lookup(
        tree[interior], np.asarray(a["nodes_truenodeids"], dtype=np.int64)[interior], "a true branch"
    )
    fc[interior] = lookup(
        tree[interior], np.asarray(a["nodes_falsenodeids"], dtype=np.int64)[interior], "a false branch"
    )
    # A tree's root is its first node in attribute order (onnxruntime's convention).
    starts = np.nonzero(np.r_[True, tree[1:] != tree[:-1]])[0] if n else np.zeros(0, dtype=np.int64)
    e_tree = np.asarray(a.get(f"{prefix}_treeids", []), dtype=np.int64)
    e_node = np.asarray(a.get(f"{prefix}_nodeids", []), dtype=np.int64)
    e_target = np.asarray(a.get(f"{prefix}_ids", []), dtype=np.int64)
    e_weight = floats_attr(a, f"{prefix}_weights")
    e_weight = np.zeros(len(e_tree)) if e_weight is None else e_weight
    return _Forest(
        modes,
        np.asarray(a.get("nodes_featureids", []), dtype=np.int64),
        thr,
        tc,
        fc,
        miss,
        starts,
        lookup(e_tree, e_node, f"{prefix}_nodeids"),
        e_target,
        e_weight,
    )


@kernel("TreeEnsembleRegressor", since=1, domain="ai.onnx.ml", factory=True)
def tree_ensemble_regressor_factory(node: NodeInfo):
    a = node.attrs
    forest = _legacy_forest(a, "target")
    n_targets = int(a.get("n_targets", 0) or 0)
    if n_targets <= 0:
        n_targets = int(forest.target.max(initial=-1)) + 1 or 1
    forest.set_outputs(n_targets)
    how = a.get("aggregate_function", "SUM")
    if how not in _AGGREGATES:
        raise ValueError(f"TreeEnsembleRegressor: unknown aggregate_function {how!r}")
    post = check_post_transform(a.get("post_transform", "NONE"))
    base = floats_attr(a, "base_values")

    def tree_ensemble_regressor(x: np.ndarray) -> np.ndarray:
        y = _regression_output(forest, x, n_targets, how, base, post)
        return y.astype(np.float32)

    return tree_ensemble_regressor


@kernel("TreeEnsembleClassifier", since=1, domain="ai.onnx.ml", factory=True)
def tree_ensemble_classifier_factory(node: NodeInfo):
    a = node.attrs
    forest = _legacy_forest(a, "class")
    labels = list(a.get("classlabels_strings") or a.get("classlabels_int64s") or [])
    if not labels:
        raise ValueError("TreeEnsembleClassifier needs classlabels_strings or classlabels_int64s")
    is_str = isinstance(labels[0], str)
    n_classes = len(labels)
    forest.set_outputs(n_classes)
    post = check_post_transform(a.get("post_transform", "NONE"))
    base = floats_attr(a, "base_values")
    n_base = 0 if base is None else base.size
    class_ids = np.asarray(a.get("class_ids", []), dtype=np.int64)
    weights = forest.weight
    # onnxruntime's binary conventions: one class id only -> the score is the positive class's.
    binary_case = n_classes == 2 and len(np.unique(class_ids)) == 1
    all_positive = bool((weights >= 0).all())

    def classify_multi(
        total: np.ndarray, has: np.ndarray, base: Any, single: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        if n_base:
            b = np.zeros(n_classes)
            b[: min(n_base, n_classes)] = base[:n_classes]
            total = _f32(total + b) if single else total + b
            has = has | (np.arange(n_classes) < n_base)
        scores = np.where(has, total, 0.0)
        # Argmax over the classes some leaf (or a base value) scored; first maximum wins.
        idx = np.argmax(np.where(has, total, -np.inf), axis=1)
        return labels_array(labels, idx), post_transform(scores, post)

    def classify_binary(
        total: np.ndarray, has: np.ndarray, base: Any, single: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        s0, s1 = total[:, 0], total[:, 1]
        h0, h1 = has[:, 0], has[:, 1]
        mode = np.full(len(s0), 3 if n_base == 0 else -1)
        if n_base == 2:
            # With a class-1 score onnxruntime sets s1 = base1 + s0 and s0 = -s1.
            p1 = np.where(h1, base[1] + s0, s1 + base[1])
            p0 = np.where(h1, -p1, s0 + base[0])
        else:
            p0 = s0 + (base[0] if n_base == 1 else 0.0)
            p1 = s1
        if single:
            p0, p1 = _f32(p0), _f32(p1)
        # Without a class-1 score (and fewer than two base values) the second column is dropped
        # and rebuilt from the first.
        two = h1 | (n_base >= 2)
        pos = np.where(h1, p1, np.where(h0, p0, 0.0))
        if binary_case:
            if all_positive:
                win = pos > 0.5
                mode = np.where(win, 0, 1)
            else:
                win = pos > 0
                mode = np.where(win, 2, 3)
            y = labels_array(labels, win.astype(np.int64))
        else:
            win = pos > 0
            y = labels_array(labels, win.astype(np.int64)) if is_str else win.astype(np.int64)
        # Two columns: both go through the post-transform (a score never set reads 0).
        both = np.stack([np.where(h0, p0, 0.0), np.where(h1, p1, 0.0)], axis=1)
        z = post_transform(both, post)
        one = binary_scores(np.where(h0, p0, 0.0), post, mode)
        return y, np.where(two[:, None], z, one)

    def tree_ensemble_classifier(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        single = x.dtype != np.float64
        total, has = forest.aggregate(as_2d_float(x), n_classes, "SUM", single)
        b = _f32(base) if single and base is not None else base
        if n_classes == 2:
            y, z = classify_binary(total, has, b, single)
        else:
            y, z = classify_multi(total, has, b, single)
        return y, z.astype(np.float32)

    return tree_ensemble_classifier


# --- TreeEnsemble (5) --------------------------------------------------------------------------


@kernel("TreeEnsemble", since=5, domain="ai.onnx.ml", factory=True)
def tree_ensemble_factory(node: NodeInfo):
    a = node.attrs
    modes = np.asarray(a["nodes_modes"]).astype(np.int64).reshape(-1)
    n = len(modes)
    if ((modes < LEQ) | (modes > MEMBER)).any():
        raise ValueError("TreeEnsemble: nodes_modes values must be in 0..6")
    feature = np.asarray(a["nodes_featureids"], dtype=np.int64)
    splits = np.asarray(a["nodes_splits"], dtype=np.float64).reshape(-1)
    true_ids = np.asarray(a["nodes_truenodeids"], dtype=np.int64)
    false_ids = np.asarray(a["nodes_falsenodeids"], dtype=np.int64)
    true_leaf = np.asarray(a["nodes_trueleafs"], dtype=np.int64) != 0
    false_leaf = np.asarray(a["nodes_falseleafs"], dtype=np.int64) != 0
    leaf_targets = np.asarray(a["leaf_targetids"], dtype=np.int64)
    leaf_weights = np.asarray(a["leaf_weights"], dtype=np.float64).reshape(-1)
    n_leaves = len(leaf_targets)
    miss = np.zeros(n, dtype=bool)
    tracks = a.get("nodes_missing_value_tracks_true") or []
    miss[: len(tracks)] = np.asarray(tracks[:n], dtype=np.int64) != 0

    # Set-membership nodes take, in node order, the NaN-terminated runs of membership_values.
    members: dict[int, np.ndarray] = {}
    member_nodes = np.nonzero(modes == MEMBER)[0]
    if len(member_nodes):
        mv = a.get("membership_values")
        if mv is None:
            raise ValueError("TreeEnsemble: BRANCH_MEMBER nodes need membership_values")
        mv = np.asarray(mv, dtype=np.float64).reshape(-1)
        ends = np.nonzero(np.isnan(mv))[0]
        if len(ends) < len(member_nodes):
            raise ValueError("TreeEnsemble: membership_values must hold one NaN-ended set per member node")
        start = 0
        for i, end in zip(member_nodes.tolist(), ends.tolist()):
            members[i] = mv[start:end]
            start = end + 1

    # One index space: interior nodes 0..n-1, then leaves n..n+L-1.
    mode_all = np.r_[modes, np.full(n_leaves, LEAF)]
    tc = np.where(true_leaf, true_ids + n, true_ids)
    fc = np.where(false_leaf, false_ids + n, false_ids)
    roots = np.asarray(a["tree_roots"], dtype=np.int64)
    # A root whose branches reach the same leaf is that leaf (a single-leaf tree).
    degenerate = true_leaf[roots] & false_leaf[roots] & (true_ids[roots] == false_ids[roots])
    roots = np.where(degenerate, tc[roots], roots)
    forest = _Forest(
        mode_all,
        np.r_[feature, np.zeros(n_leaves, dtype=np.int64)],
        np.r_[splits, np.zeros(n_leaves)],
        np.r_[tc, np.zeros(n_leaves, dtype=np.int64)],
        np.r_[fc, np.zeros(n_leaves, dtype=np.int64)],
        np.r_[miss, np.zeros(n_leaves, dtype=bool)],
        roots,
        np.arange(n, n + n_leaves, dtype=np.int64),
        leaf_targets,
        leaf_weights,
        members,
    )
    n_targets = int(a.get("n_targets", 0) or 0) or int(leaf_targets.max(initial=0)) + 1
    forest.set_outputs(n_targets)
    agg_code = int(a.get("aggregate_function", 1))
    post_code = int(a.get("post_transform", 0))
    if not 0 <= agg_code < len(_AGGREGATES) or not 0 <= post_code < len(POST_TRANSFORM_CODES):
        raise ValueError("TreeEnsemble: aggregate_function must be 0..3 and post_transform 0..4")
    how, post = _AGGREGATES[agg_code], POST_TRANSFORM_CODES[post_code]

    def tree_ensemble(x: np.ndarray) -> np.ndarray:
        y = _regression_output(forest, x, n_targets, how, None, post)
        return y.astype(x.dtype)

    return tree_ensemble
