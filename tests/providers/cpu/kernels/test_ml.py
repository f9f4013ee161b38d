"""ai.onnx.ml kernels against onnx.reference and, where the reference lacks an op or departs
from onnxruntime's conventions (which the model converters target), against onnxruntime."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper
from tests.oracle import assert_close, run_onnxlite, run_reference

from onnxlite.providers.cpu.kernels import load_all
from onnxlite.providers.cpu.registry import CPU_KERNELS
from onnxlite.providers.registry import NodeInfo
from onnxlite.types import onnx_type

ML = "ai.onnx.ml"
rng = np.random.default_rng(0)
X = np.round(rng.standard_normal((9, 4)), 2).astype(np.float32)
POSTS = ["NONE", "LOGISTIC", "SOFTMAX", "SOFTMAX_ZERO", "PROBIT"]


def ml_model(op, inputs, attrs, outputs=("y",), ml_opset=3, opset=17):
    vis = [helper.make_tensor_value_info(n, onnx_type(v.dtype), list(v.shape)) for n, v in inputs.items()]
    node = helper.make_node(op, list(inputs), list(outputs), domain=ML, **attrs)
    graph = helper.make_graph(
        [node], "g", vis, [helper.make_value_info(o, onnx.TypeProto()) for o in outputs]
    )
    opsets = [helper.make_opsetid("", opset), helper.make_opsetid(ML, ml_opset)]
    return helper.make_model(graph, opset_imports=opsets, ir_version=9)


def check(op, inputs, attrs, outputs=("y",), ml_opset=3, rtol=1e-5, atol=1e-6):
    """Compare with onnx.reference; string outputs are compared as object arrays."""
    model = ml_model(op, inputs, attrs, outputs, ml_opset)
    got = run_onnxlite(model, inputs)
    want = run_reference(model, inputs)
    for g, w in zip(got, want):
        w = np.asarray(w)
        assert_close(g, w.astype(object) if w.dtype.kind == "U" else w, rtol, atol)
    return got


def check_ort(op, inputs, attrs, outputs=("y",), ml_opset=3, rtol=1e-5, atol=1e-5):
    ort = pytest.importorskip("onnxruntime")
    model = ml_model(op, inputs, attrs, outputs, ml_opset)
    got = run_onnxlite(model, inputs)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    want = sess.run(None, inputs)
    for g, w in zip(got, want):
        assert_close(g, w, rtol, atol)
    return got


def kernel_fn(op, attrs, version=1):
    """A bound kernel, for map inputs that graph-level tests cannot feed yet."""
    load_all()
    kd = CPU_KERNELS.lookup(ML, op, version)
    return kd.bind(NodeInfo("n", op, ML, version, ("x",), ("y",), attrs))


def S(*values, shape=None):
    out = np.empty(len(values), dtype=object)
    out[:] = list(values)
    return out.reshape(shape if shape is not None else (len(values),))


# --- simple transforms ---------------------------------------------------------------------------


def test_array_feature_extractor():
    check("ArrayFeatureExtractor", {"x": X, "i": np.array([3, 0, 3], np.int64)}, {})
    got = check("ArrayFeatureExtractor", {"x": X[0], "i": np.array([1], np.int64)}, {})
    assert got[0].shape == (1, 1)
    x3 = np.arange(24, dtype=np.int64).reshape(2, 3, 4)
    check("ArrayFeatureExtractor", {"x": x3, "i": np.array([[2, 1]], np.int64)}, {})
    check(
        "ArrayFeatureExtractor", {"x": S("a", "b", "c", "d", shape=(2, 2)), "i": np.array([1], np.int64)}, {}
    )
    with pytest.raises(Exception, match="out of range"):
        run_onnxlite(
            ml_model("ArrayFeatureExtractor", {"x": X, "i": np.array([4], np.int64)}, {}),
            {"x": X, "i": np.array([4], np.int64)},
        )


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64, np.int32])
def test_binarizer(dtype):
    check("Binarizer", {"x": (X * 3).astype(dtype)}, {"threshold": 0.5})


@pytest.mark.parametrize("norm", ["MAX", "L1", "L2"])
def test_normalizer(norm):
    x = np.concatenate([X, np.zeros((1, 4), np.float32)])
    check("Normalizer", {"x": np.abs(x)}, {"norm": norm})
    check_ort("Normalizer", {"x": np.abs(x * 3).astype(np.int64)}, {"norm": norm})
    check_ort("Normalizer", {"x": x}, {"norm": norm})  # signed rows: onnxruntime's definition


def test_scaler_and_imputer():
    check("Scaler", {"x": X}, {"offset": [0.5], "scale": [2.0]})
    # (the reference keeps float64 where the spec's output is float)
    check_ort(
        "Scaler", {"x": X.astype(np.float64)}, {"offset": [0.1, 0.2, 0.3, 0.4], "scale": [1.0, 2, 3, 4]}
    )
    xn = X.copy()
    xn[[0, 3], [1, 2]] = np.nan
    check("Imputer", {"x": xn}, {"imputed_value_floats": [9.0], "replaced_value_float": float("nan")})
    check(
        "Imputer", {"x": xn}, {"imputed_value_floats": [1.0, 2, 3, 4], "replaced_value_float": float(X[1, 1])}
    )
    xi = np.array([[1, -1, 3], [-1, 2, -1]], np.int64)
    check("Imputer", {"x": xi}, {"imputed_value_int64s": [7, 8, 9], "replaced_value_int64": -1})


def test_one_hot_encoder():
    check("OneHotEncoder", {"x": np.array([[1, 5, 2], [0, 9, 3]], np.int64)}, {"cats_int64s": [0, 1, 2, 5]})
    check("OneHotEncoder", {"x": S("a", "zz", "c")}, {"cats_strings": ["a", "b", "c"]})
    # Floats are truncated to integers (onnxruntime; the reference matches them exactly).
    check_ort(
        "OneHotEncoder", {"x": np.array([1.7, 2.0, 5.0, -1.5], np.float64)}, {"cats_int64s": [1, 2, 5, -1]}
    )
    with pytest.raises(Exception, match="categories"):
        x = np.array([7], np.int64)
        run_onnxlite(ml_model("OneHotEncoder", {"x": x}, {"cats_int64s": [1], "zeros": 0}), {"x": x})


def test_feature_vectorizer():
    inputs = {"a": X, "b": X[:, :2], "c": X[:, 1:]}
    check("FeatureVectorizer", inputs, {"inputdimensions": [4, 3, 1]})
    # [C] inputs are one row [1, C] (spec, onnxruntime; the reference makes them a column)
    check_ort("FeatureVectorizer", {"a": X[0], "b": X[1, :3]}, {"inputdimensions": [4, 3]})
    x64 = (X * 10).astype(np.int64)
    check_ort("FeatureVectorizer", {"a": x64, "b": x64[:, :1]}, {"inputdimensions": [4, 1]})


# --- label encoders ------------------------------------------------------------------------------


def test_label_encoder_v1():
    check_ort(
        "LabelEncoder",
        {"x": S("a", "c", "zz")},
        {"classes_strings": ["a", "b", "c"], "default_int64": -3},
        ml_opset=1,
    )
    check_ort(
        "LabelEncoder",
        {"x": np.array([0, 2, 5, -1], np.int64)},
        {"classes_strings": ["a", "b", "c"], "default_string": "D"},
        ml_opset=1,
    )


def test_label_encoder_v2():
    check(
        "LabelEncoder",
        {"x": S("a", "b", "q")},
        {"keys_strings": ["a", "b"], "values_int64s": [3, 4]},
        ml_opset=2,
    )
    check(
        "LabelEncoder",
        {"x": np.array([[1, 5], [7, 1]], np.int64)},
        {"keys_int64s": [1, 5], "values_strings": ["x", "y"]},
        ml_opset=2,
    )
    check(
        "LabelEncoder",
        {"x": X},
        {"keys_floats": [float(X[0, 0]), float(X[2, 3])], "values_floats": [1.5, 2.5], "default_float": 7.0},
        ml_opset=2,
    )


def test_label_encoder_v4_tensors_nan_and_duplicates():
    keys = numpy_helper.from_array(np.array([1, 5, 1], np.int64))
    values = numpy_helper.from_array(np.array([0.5, 0.75, 0.25], np.float64))
    x = np.array([[1, 5, 3]], np.int64)
    got = run_onnxlite(
        ml_model("LabelEncoder", {"x": x}, {"keys_tensor": keys, "values_tensor": values}, ml_opset=4),
        {"x": x},
    )
    # The last duplicate key wins (spec); the default for float values is -0.0.
    assert got[0].dtype == np.float64 and got[0].tolist() == [[0.25, 0.75, -0.0]]
    xf = np.array([np.nan, 2.5, 3.0], np.float32)
    attrs = {
        "keys_tensor": numpy_helper.from_array(np.array([np.nan, 2.5], np.float32)),
        "values_tensor": numpy_helper.from_array(np.array(["nan", "two"], dtype=object)),
        "default_tensor": numpy_helper.from_array(np.array(["-"], dtype=object)),
    }
    (y,) = run_onnxlite(ml_model("LabelEncoder", {"x": xf}, attrs, ml_opset=4), {"x": xf})
    assert y.tolist() == ["nan", "two", "-"]
    check(
        "LabelEncoder",
        {"x": S("a", "b", "q")},
        {"keys_strings": ["a", "b"], "values_strings": ["A", "B"]},
        ml_opset=4,
    )


def test_category_mapper():
    attrs = {"cats_strings": ["a", "b", "c"], "cats_int64s": [10, 11, 12]}
    check_ort("CategoryMapper", {"x": S("a", "q", "c", shape=(3, 1))}, {**attrs, "default_int64": -7})
    check_ort(
        "CategoryMapper", {"x": np.array([[10, 3], [12, 11]], np.int64)}, {**attrs, "default_string": "ZZ"}
    )


# --- maps ----------------------------------------------------------------------------------------


def test_zip_map():
    probs = np.array([[0.25, 0.75], [0.5, 0.5]], np.float32)
    check_ort("ZipMap", {"x": probs}, {"classlabels_int64s": [1, 2]})
    model = ml_model("ZipMap", {"x": probs}, {"classlabels_strings": ["a", "b"]})
    (z,) = run_onnxlite(model, {"x": probs})
    assert z == [{"a": 0.25, "b": 0.75}, {"a": 0.5, "b": 0.5}]


def test_dict_vectorizer_and_cast_map_kernels():
    dv = kernel_fn("DictVectorizer", {"string_vocabulary": ["a", "b", "c"]})
    y = dv({"a": 1.5, "c": 2.0, "zz": 4.0})
    assert y.dtype == np.float32 and y.tolist() == [[1.5, 0.0, 2.0]]
    y = kernel_fn("DictVectorizer", {"int64_vocabulary": [3, 1]})({1: 7, 2: 8})
    assert y.dtype == np.int64 and y.tolist() == [[0, 7]]
    m = {5: 1.5, 1: 2.25, 3: -3.75}
    assert kernel_fn("CastMap", {})(m).tolist() == [[2.25, -3.75, 1.5]]
    sparse = kernel_fn("CastMap", {"map_form": "SPARSE", "max_map": 6, "cast_to": "TO_INT64"})(m)
    assert sparse.dtype == np.int64 and sparse.tolist() == [[0, 2, 0, -3, 0, 1]]
    strs = kernel_fn("CastMap", {"cast_to": "TO_STRING"})(m)
    assert strs.tolist() == [["2.250000", "-3.750000", "1.500000"]]


# --- linear models and SVMs ----------------------------------------------------------------------


@pytest.mark.parametrize("post", ["NONE", "LOGISTIC", "SOFTMAX", "SOFTMAX_ZERO"])
def test_linear_classifier_multiclass(post):
    attrs = {
        "coefficients": rng.standard_normal(12).tolist(),
        "intercepts": [0.1, -0.2, 0.3],
        "classlabels_ints": [4, 5, 6],
        "post_transform": post,
    }
    check("LinearClassifier", {"x": X}, attrs, ("y", "z"))
    check_ort("LinearClassifier", {"x": X.astype(np.float64)}, attrs, ("y", "z"))


@pytest.mark.parametrize("post", ["NONE", "LOGISTIC"])
@pytest.mark.parametrize("labels", [{"classlabels_ints": [0, 1]}, {"classlabels_strings": ["no", "yes"]}])
def test_linear_classifier_binary_one_score(post, labels):
    attrs = {"coefficients": [0.5, -1.0, 0.25, 2.0], "intercepts": [0.1], "post_transform": post, **labels}
    check_ort("LinearClassifier", {"x": X}, attrs, ("y", "z"))


@pytest.mark.parametrize(("targets", "post"), [(1, "NONE"), (3, "NONE"), (3, "SOFTMAX"), (1, "PROBIT")])
def test_linear_regressor(targets, post):
    attrs = {
        "coefficients": rng.standard_normal(4 * targets).tolist(),
        "intercepts": rng.standard_normal(targets).tolist(),
        "targets": targets,
        "post_transform": post,
    }
    check_ort("LinearRegressor", {"x": X}, attrs, rtol=1e-4, atol=1e-4)
    if post == "NONE":
        check("LinearRegressor", {"x": X}, attrs)


def svm_attrs(n_class, kernel, proba):
    per_class = rng.integers(1, 4, size=n_class).tolist()
    n_vec = sum(per_class)
    pairs = n_class * (n_class - 1) // 2
    attrs = {
        "classlabels_ints": list(range(n_class)),
        "kernel_type": kernel,
        "kernel_params": [0.3, 0.1, 2.0],
        "vectors_per_class": per_class,
        "support_vectors": rng.standard_normal(n_vec * 4).tolist(),
        "coefficients": rng.standard_normal((n_class - 1) * n_vec).tolist(),
        "rho": rng.standard_normal(pairs).tolist(),
    }
    if proba:
        attrs["prob_a"] = (rng.standard_normal(pairs) - 2).tolist()
        attrs["prob_b"] = (rng.standard_normal(pairs) * 0.1).tolist()
    return attrs


@pytest.mark.parametrize("kernel", ["LINEAR", "RBF", "POLY", "SIGMOID"])
@pytest.mark.parametrize("proba", [False, True])
@pytest.mark.parametrize("n_class", [2, 3])
def test_svm_classifier_matches_onnxruntime(kernel, proba, n_class):
    attrs = svm_attrs(n_class, kernel, proba)
    check_ort("SVMClassifier", {"x": X}, attrs, ("y", "z"), rtol=1e-3, atol=1e-4)


def test_svm_classifier_multiclass_against_reference():
    attrs = svm_attrs(3, "RBF", False)
    check("SVMClassifier", {"x": X}, attrs, ("y", "z"), rtol=1e-4, atol=1e-5)
    # Linear (liblinear) mode: the reference picks 1/0 labels whenever rho has one value.
    linear = {
        "classlabels_ints": [0, 1, 2],
        "coefficients": rng.standard_normal(12).tolist(),
        "rho": [0.2],
        "kernel_params": [0.1, 0.0, 1.0],
    }
    check_ort("SVMClassifier", {"x": X}, linear, ("y", "z"))


@pytest.mark.parametrize("kernel", ["LINEAR", "RBF", "POLY", "SIGMOID"])
@pytest.mark.parametrize("one_class", [0, 1])
def test_svm_regressor(kernel, one_class):
    attrs = {
        "kernel_type": kernel,
        "kernel_params": [0.3, 0.1, 2.0],
        "n_supports": 3,
        "support_vectors": rng.standard_normal(12).tolist(),
        "coefficients": rng.standard_normal(3).tolist(),
        "rho": [0.3],
        "one_class": one_class,
    }
    check("SVMRegressor", {"x": X}, attrs, rtol=1e-4, atol=1e-5)
    check_ort("SVMRegressor", {"x": X}, attrs, rtol=1e-4, atol=1e-5)
    linear = {"coefficients": [0.5, 1.0, -1.0, 2.0], "rho": [0.1], "one_class": one_class}
    check("SVMRegressor", {"x": X}, linear)


# --- tree ensembles ------------------------------------------------------------------------------

MODES = ["BRANCH_LEQ", "BRANCH_LT", "BRANCH_GTE", "BRANCH_GT", "BRANCH_EQ", "BRANCH_NEQ"]


def random_forest(n_trees, n_out, prefix, n_features=4, depth=3, one_id=None, mixed=True):
    """Legacy (TreeEnsembleRegressor/Classifier) attributes for random trees."""
    a: dict[str, list[Any]] = {k: [] for k in (
        "nodes_treeids", "nodes_nodeids", "nodes_featureids", "nodes_values", "nodes_modes",
        "nodes_truenodeids", "nodes_falsenodeids", "nodes_missing_value_tracks_true",
        f"{prefix}_treeids", f"{prefix}_nodeids", f"{prefix}_ids", f"{prefix}_weights",
    )}  # fmt: skip
    for t in range(n_trees):
        nodes: list[Any] = []

        def build(d, nodes=nodes):
            i = len(nodes)
            nodes.append(None)
            if d == 0 or (d < depth and rng.random() < 0.25):
                nodes[i] = (i, 0, 0.0, "LEAF", 0, 0, 0)
                return i
            mode = MODES[rng.integers(0, 6)] if mixed else "BRANCH_LEQ"
            feat, value = int(rng.integers(0, n_features)), float(np.round(rng.standard_normal(), 1))
            left = build(d - 1)
            right = build(d - 1)
            nodes[i] = (i, feat, value, mode, left, right, int(rng.random() < 0.3))
            return i

        build(depth)
        for nid, feat, value, mode, left, right, miss in nodes:
            for key, v in zip(
                (
                    "nodeids",
                    "featureids",
                    "values",
                    "modes",
                    "truenodeids",
                    "falsenodeids",
                    "missing_value_tracks_true",
                ),
                (nid, feat, value, mode, left, right, miss),
            ):
                a[f"nodes_{key}"].append(v)
            a["nodes_treeids"].append(t)
            if mode == "LEAF":
                ids = [one_id] if one_id is not None else sorted(set(rng.integers(0, n_out, size=2).tolist()))
                for o in ids:
                    a[f"{prefix}_treeids"].append(t)
                    a[f"{prefix}_nodeids"].append(nid)
                    a[f"{prefix}_ids"].append(int(o))
                    a[f"{prefix}_weights"].append(float(rng.standard_normal()))
    return a


def with_nan(x):
    x = x.copy()
    x[rng.random(x.shape) < 0.15] = np.nan
    return x


@pytest.mark.parametrize("agg", ["SUM", "AVERAGE", "MIN", "MAX"])
@pytest.mark.parametrize("n_targets", [1, 3])
def test_tree_ensemble_regressor(agg, n_targets):
    attrs = random_forest(4, n_targets, "target")
    attrs.update(n_targets=n_targets, aggregate_function=agg, base_values=[0.5] * n_targets)
    x = np.round(X, 1)
    if agg in ("SUM", "AVERAGE"):
        check("TreeEnsembleRegressor", {"x": x}, attrs, rtol=1e-5, atol=1e-5)
    check_ort("TreeEnsembleRegressor", {"x": with_nan(x)}, attrs)
    check_ort("TreeEnsembleRegressor", {"x": x.astype(np.float64)}, attrs)


def test_tree_ensemble_regressor_as_tensor_and_post_transform():
    attrs = random_forest(3, 2, "target", mixed=False)
    attrs["target_weights_as_tensor"] = numpy_helper.from_array(
        np.array(attrs.pop("target_weights"), np.float64)
    )
    attrs["nodes_values_as_tensor"] = numpy_helper.from_array(np.array(attrs.pop("nodes_values"), np.float64))
    attrs.update(n_targets=2, post_transform="SOFTMAX")
    check_ort("TreeEnsembleRegressor", {"x": X.astype(np.float64)}, attrs)


@pytest.mark.parametrize("post", POSTS[:4])
@pytest.mark.parametrize(
    "labels", [{"classlabels_int64s": [7, 8, 9]}, {"classlabels_strings": ["a", "b", "c"]}]
)
def test_tree_ensemble_classifier_multiclass(post, labels):
    attrs = random_forest(5, 3, "class", mixed=False)
    attrs.update(post_transform=post, base_values=[0.1, -0.2, 0.3], **labels)
    x = np.round(X, 1)
    check_ort("TreeEnsembleClassifier", {"x": with_nan(x)}, attrs, ("y", "z"))
    if post == "NONE":
        check("TreeEnsembleClassifier", {"x": x}, attrs, ("y", "z"))


@pytest.mark.parametrize("post", ["NONE", "LOGISTIC", "SOFTMAX"])
@pytest.mark.parametrize("base", [None, [0.2], [0.1, 0.3]])
@pytest.mark.parametrize("one_id", [0, 1, None])
def test_tree_ensemble_classifier_binary_conventions(post, base, one_id):
    # onnxruntime's rules for two classes (one score column, base values, label choice).
    attrs = random_forest(3, 2, "class", one_id=one_id)
    attrs.update(post_transform=post, classlabels_int64s=[3, 4])
    if base is not None:
        attrs["base_values"] = base
    if base is not None and len(base) == 1 and one_id is None:
        pytest.skip("onnxruntime leaves the second score column unwritten here")
    check_ort("TreeEnsembleClassifier", {"x": np.round(X, 1)}, attrs, ("y", "z"))


def v5_forest(n_targets, member=False):
    """TreeEnsemble (5): trees rooted at nodes 0 and 3 using every mode (node 6 tests set
    membership when ``member``), nine leaves."""
    return {
        "nodes_modes": numpy_helper.from_array(np.array([0, 1, 2, 3, 4, 5, 6 if member else 0], np.uint8)),
        "nodes_featureids": [0, 1, 2, 3, 0, 1, 2],
        "nodes_splits": numpy_helper.from_array(
            np.array([0.1, -0.3, 0.5, 0.0, 0.2, 0.4, np.nan if member else 1.0], np.float32)
        ),
        "nodes_truenodeids": [1, 2, 0, 2, 5, 4, 5],
        "nodes_trueleafs": [0, 0, 1, 1, 0, 1, 1],
        "nodes_falsenodeids": [4, 3, 1, 6, 6, 7, 8],
        "nodes_falseleafs": [0, 1, 1, 0, 1, 1, 1],
        "nodes_missing_value_tracks_true": [1, 0, 0, 1, 0, 1, 0],
        "tree_roots": [0, 3],
        "leaf_targetids": [i % n_targets for i in range(9)],
        "leaf_weights": numpy_helper.from_array(np.linspace(-1, 2, 9).astype(np.float32)),
        "n_targets": n_targets,
        **(
            {"membership_values": numpy_helper.from_array(np.array([0.5, 1.0, np.nan], np.float32))}
            if member
            else {}
        ),
    }


@pytest.mark.parametrize("agg", [0, 1, 2, 3])
@pytest.mark.parametrize("member", [False, True])
def test_tree_ensemble_v5(agg, member):
    attrs = v5_forest(2, member)
    attrs["aggregate_function"] = agg
    x = np.round(X, 1)
    x[0, 2], x[1, 2] = 0.5, 1.0
    for xx in (x, x.astype(np.float64), with_nan(x)):
        if agg in (0, 1):
            check("TreeEnsemble", {"x": xx}, attrs, ml_opset=5)
        if xx.dtype == np.float32:  # (onnxruntime wants double splits for double input)
            # MIN / MAX of a target no leaf reached give 0 as in onnxruntime (reference: +-FLT_MAX)
            check_ort("TreeEnsemble", {"x": xx}, attrs, ml_opset=5)


def test_tree_ensemble_v5_single_leaf_tree_and_post_transform():
    first_tree = {**v5_forest(2), "tree_roots": [0]}
    (ref,) = check("TreeEnsemble", {"x": X}, first_tree, ml_opset=5)
    attrs = v5_forest(2)
    # Tree 2 becomes one leaf: its root's branches both reach leaf 2 (weight -0.25, target 0),
    # and its feature is never read. (The reference takes the leaf at the root's own index.)
    attrs["nodes_falsenodeids"][3], attrs["nodes_falseleafs"][3] = 2, 1
    attrs["nodes_featureids"][3] = 99
    want = ref + np.array([-0.25, 0.0], np.float32)
    (y,) = run_onnxlite(ml_model("TreeEnsemble", {"x": X}, attrs, ml_opset=5), {"x": X})
    np.testing.assert_allclose(y, want, rtol=1e-6)
    attrs["post_transform"] = 1  # SOFTMAX (the reference ignores post_transform)
    (y,) = run_onnxlite(ml_model("TreeEnsemble", {"x": X}, attrs, ml_opset=5), {"x": X})
    e = np.exp(want)
    np.testing.assert_allclose(y, e / e.sum(axis=1, keepdims=True), rtol=1e-5)


def test_tree_walk_is_vectorised_over_many_samples():
    attrs = random_forest(20, 3, "class", depth=6, mixed=False)
    attrs.update(classlabels_int64s=[0, 1, 2])
    x = rng.standard_normal((5000, 4)).astype(np.float32)
    (y, z) = check_ort("TreeEnsembleClassifier", {"x": x}, attrs, ("y", "z"))
    assert y.shape == (5000,) and z.shape == (5000, 3)


# --- converted scikit-learn models ---------------------------------------------------------------


def test_sklearn_models_match_sklearn_and_onnxruntime():
    pytest.importorskip("sklearn")
    skl2onnx = pytest.importorskip("skl2onnx")
    ort = pytest.importorskip("onnxruntime")
    from sklearn.datasets import make_classification, make_regression
    from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier, RandomForestRegressor
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC, SVR

    xc, yc = make_classification(200, 6, n_informative=4, n_classes=3, random_state=0)
    xr, yr = make_regression(200, 6, random_state=0)
    xc, xr = xc.astype(np.float32), xr.astype(np.float32)
    cases = [
        (RandomForestClassifier(8, max_depth=5, random_state=0), xc, yc),
        (GradientBoostingClassifier(n_estimators=8, max_depth=3, random_state=0), xc, yc % 2),
        (make_pipeline(StandardScaler(), LogisticRegression()), xc, yc),
        (SVC(probability=True, random_state=0), xc, yc),
        (RandomForestRegressor(8, max_depth=5, random_state=0), xr, yr),
        (SVR(), xr, yr),
    ]
    for model, x, y in cases:
        model.fit(x, y)
        options = {"zipmap": False} if hasattr(model, "predict_proba") else None
        onx = skl2onnx.to_onnx(model, x[:1], options=options, target_opset={"": 17, ML: 3})
        feeds = {onx.graph.input[0].name: x}
        got = run_onnxlite(onx, feeds)
        want = ort.InferenceSession(onx.SerializeToString(), providers=["CPUExecutionProvider"]).run(
            None, feeds
        )
        assert_close(got, want, rtol=1e-4, atol=1e-4)
        if hasattr(model, "predict_proba"):
            np.testing.assert_array_equal(got[0], model.predict(x))
        else:
            np.testing.assert_allclose(got[0].ravel(), model.predict(x), rtol=1e-3, atol=1e-3)
