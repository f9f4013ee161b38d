"""scikit-learn models converted with skl2onnx give scikit-learn's own predictions in onnxlite.

Classifiers are converted twice: with skl2onnx's default ZipMap on the probabilities (the output is
a list of {class label: probability} dicts, as onnxruntime returns it) and with
``options={id(clf): {"zipmap": False}}`` (a float tensor). Labels must be exactly scikit-learn's;
probabilities within 1e-4 absolute. Regressors compare within a relative 1e-5: the ONNX graph is
float32 while scikit-learn predicts in float64, and targets are in the hundreds.

Each model also runs on a single row, the batch-of-one edge case.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

pytest.importorskip("sklearn")
pytest.importorskip("skl2onnx")

from skl2onnx import to_onnx
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits, load_iris
from sklearn.ensemble import (
    GradientBoostingClassifier,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.svm import SVC

import onnxlite

PROBA_ATOL = 1e-4
REG_RTOL = 1e-5

DATASETS: dict[str, Callable[..., Any]] = {
    "iris": load_iris,
    "digits": load_digits,
    "breast_cancer": load_breast_cancer,
    "diabetes": load_diabetes,
}


def _data(name: str) -> tuple[np.ndarray, np.ndarray]:
    x, y = DATASETS[name](return_X_y=True)
    return x.astype(np.float32), y


def _final(model: Any) -> Any:
    return model[-1] if isinstance(model, Pipeline) else model


def _convert(model: Any, sample: Any, zipmap: bool = True) -> bytes:
    options = None if zipmap else {id(_final(model)): {"zipmap": False}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return to_onnx(model, sample, options=options).SerializeToString()


def _proba_from_zipmap(out: Any, classes: np.ndarray) -> np.ndarray:
    """A ZipMap output as onnxruntime gives it: a list of dicts keyed by the Python class labels."""
    assert isinstance(out, list), type(out)
    want_keys = [c.item() if isinstance(c, np.generic) else c for c in classes]
    rows = []
    for row in out:
        assert isinstance(row, dict), type(row)
        assert sorted(row) == sorted(want_keys), (list(row), want_keys)
        assert all(type(k) is type(want_keys[0]) for k in row), [type(k) for k in row]
        rows.append([row[k] for k in want_keys])
    return np.asarray(rows, dtype=np.float64)


def _check_classifier(
    model: Any, onnx_bytes: bytes, feeds: dict[str, np.ndarray], x: Any, zipmap: bool
) -> None:
    sess = onnxlite.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    outputs = sess.get_outputs()
    assert len(outputs) == 2  # the label, then the probabilities
    if zipmap:
        assert outputs[1].type.startswith("seq(map("), outputs[1].type
    else:
        assert outputs[1].type == "tensor(float)"
    labels, proba = sess.run(None, feeds)

    want_labels = model.predict(x)
    assert isinstance(labels, np.ndarray) and labels.shape == want_labels.shape
    if want_labels.dtype.kind in "OUS":
        assert labels.dtype == object
        assert labels.tolist() == want_labels.tolist()
    else:
        assert labels.dtype == np.int64
        np.testing.assert_array_equal(labels, want_labels)

    classes = _final(model).classes_
    if zipmap:
        assert len(proba) == len(want_labels)
        proba = _proba_from_zipmap(proba, classes)
    else:
        assert isinstance(proba, np.ndarray) and proba.dtype == np.float32
    want_proba = model.predict_proba(x)
    assert proba.shape == want_proba.shape == (len(want_labels), len(classes))
    np.testing.assert_allclose(proba, want_proba, rtol=0, atol=PROBA_ATOL)


# ----------------------------------------------------------------------------- plain classifiers

CLASSIFIERS: dict[str, tuple[str, Callable[[], Any]]] = {
    "logreg-iris": ("iris", lambda: LogisticRegression(max_iter=1000)),
    "logreg-breast_cancer": (
        "breast_cancer",
        lambda: make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)),
    ),
    "random_forest-iris": ("iris", lambda: RandomForestClassifier(n_estimators=10, random_state=0)),
    "random_forest-digits": (
        "digits",
        lambda: RandomForestClassifier(n_estimators=10, max_depth=8, random_state=0),
    ),
    "gradient_boosting-iris": (
        "iris",
        lambda: GradientBoostingClassifier(n_estimators=30, max_depth=2, random_state=0),
    ),
    "gradient_boosting-breast_cancer": (
        "breast_cancer",
        lambda: GradientBoostingClassifier(n_estimators=30, max_depth=2, random_state=0),
    ),
    "svc-iris": ("iris", lambda: SVC(probability=True, random_state=0)),
    "svc-breast_cancer": (
        "breast_cancer",
        lambda: make_pipeline(StandardScaler(), SVC(probability=True, random_state=0)),
    ),
}


@pytest.fixture(scope="module")
def fitted() -> dict[str, Any]:
    """Each classifier fitted once, shared by the zipmap and no-zipmap cases."""
    return {}


def _fitted(cache: dict[str, Any], name: str) -> tuple[Any, np.ndarray]:
    dataset, make = CLASSIFIERS[name]
    x, y = _data(dataset)
    if name not in cache:
        with warnings.catch_warnings():
            # scikit-learn 1.9 deprecates SVC(probability=True); the converter still handles it.
            warnings.simplefilter("ignore", FutureWarning)
            cache[name] = make().fit(x, y)
    return cache[name], x


@pytest.mark.parametrize("zipmap", [True, False], ids=["zipmap", "no_zipmap"])
@pytest.mark.parametrize("name", list(CLASSIFIERS))
def test_classifier(fitted: dict[str, Any], name: str, zipmap: bool) -> None:
    model, x = _fitted(fitted, name)
    onnx_bytes = _convert(model, x[:1], zipmap=zipmap)
    _check_classifier(model, onnx_bytes, {"X": x}, x, zipmap)
    _check_classifier(model, onnx_bytes, {"X": x[7:8]}, x[7:8], zipmap)


def test_string_class_labels() -> None:
    """String targets: string label tensor, ZipMap keyed by str."""
    x, y = _data("iris")
    names = np.array(["setosa", "versicolor", "virginica"])
    model = RandomForestClassifier(n_estimators=5, max_depth=4, random_state=0).fit(x, names[y])
    for zipmap in (True, False):
        _check_classifier(model, _convert(model, x[:1], zipmap=zipmap), {"X": x}, x, zipmap)


# ------------------------------------------------- ColumnTransformer over mixed numeric/categorical


def _mixed_frame(n: int, seed: int) -> tuple[Any, np.ndarray]:
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "age": rng.uniform(18, 80, n).astype(np.float32),
            "income": rng.lognormal(10, 0.5, n).astype(np.float32),
            "score": rng.normal(0, 1, n).astype(np.float32),
            "color": rng.choice(["red", "green", "blue"], n).astype(object),
            "city": rng.choice(["paris", "oslo", "lima", "pune"], n).astype(object),
        }
    )
    logit = (
        0.04 * (df["age"] - 50)
        + 0.8 * df["score"]
        + df["color"].map({"red": 1.2, "green": -0.4, "blue": 0.0})
        + df["city"].map({"paris": 0.5, "oslo": -1.0, "lima": 0.0, "pune": 0.3})
        + rng.normal(0, 0.5, n)
    )
    y = np.where(logit > 0.6, "high", np.where(logit < -0.6, "low", "mid"))
    return df, y


def _frame_feeds(df: Any) -> dict[str, np.ndarray]:
    """skl2onnx turns each DataFrame column into one [N, 1] input."""
    feeds = {}
    for col in df.columns:
        values = df[col].to_numpy()
        if values.dtype == object:
            values = values.astype(str).astype(object)
        feeds[col] = values.reshape(-1, 1)
    return feeds


@pytest.mark.parametrize("zipmap", [True, False], ids=["zipmap", "no_zipmap"])
@pytest.mark.parametrize(
    "make_clf",
    [
        pytest.param(lambda: LogisticRegression(max_iter=1000), id="logreg"),
        pytest.param(lambda: RandomForestClassifier(n_estimators=10, max_depth=6, random_state=0), id="rf"),
    ],
)
def test_column_transformer_pipeline(make_clf: Callable[[], Any], zipmap: bool) -> None:
    df, y = _mixed_frame(300, seed=0)
    pre = ColumnTransformer(
        [
            ("num", StandardScaler(), ["age", "income", "score"]),
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["color", "city"]),
        ]
    )
    model = Pipeline([("pre", pre), ("clf", make_clf())]).fit(df, y)
    onnx_bytes = _convert(model, df[:1], zipmap=zipmap)

    test_df, _ = _mixed_frame(60, seed=1)
    # A category never seen in training: OneHotEncoder(handle_unknown="ignore") encodes it as zeros.
    test_df.loc[3, "color"] = "purple"
    test_df.loc[5, "city"] = "nowhere"
    _check_classifier(model, onnx_bytes, _frame_feeds(test_df), test_df, zipmap)
    _check_classifier(model, onnx_bytes, _frame_feeds(test_df[3:4]), test_df[3:4], zipmap)


# ---------------------------------------------------------------------------------------- regressors


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda: LinearRegression(), id="linear_regression"),
        pytest.param(
            lambda: RandomForestRegressor(n_estimators=10, max_depth=6, random_state=0), id="random_forest"
        ),
        pytest.param(
            lambda: make_pipeline(StandardScaler(), LinearRegression()), id="scaler+linear_regression"
        ),
    ],
)
def test_regressor(make: Callable[[], Any]) -> None:
    x, y = _data("diabetes")
    model = make().fit(x, y)
    sess = onnxlite.InferenceSession(_convert(model, x[:1]), providers=["CPUExecutionProvider"])
    assert [o.type for o in sess.get_outputs()] == ["tensor(float)"]
    for rows in (x, x[7:8]):
        (got,) = sess.run(None, {"X": rows})
        want = model.predict(rows)
        assert got.dtype == np.float32 and got.shape == (len(rows), 1), (got.dtype, got.shape)
        np.testing.assert_allclose(got[:, 0], want, rtol=REG_RTOL, atol=0)
