import gc
import tracemalloc

import numpy as np
import pytest

from onnxlite.ir.save import model_to_proto
from onnxlite.quantization import CalibrationDataReader, CalibrationMethod, create_calibrator
from onnxlite.quantization.calibrate import HistogramCalibrator, MinMaxCalibrator, collect

from ._models import convnet


def test_minmax_running_equals_global():
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal(100) * (i + 1) for i in range(10)]
    c = MinMaxCalibrator()
    for x in xs:
        c.update("t", x)
    allx = np.concatenate(xs)
    assert c.ranges()["t"] == (allx.min(), allx.max())
    m = MinMaxCalibrator(moving_average=True, averaging_constant=0.5)
    m.update("t", np.array([0.0, 1.0]))
    m.update("t", np.array([0.0, 3.0]))
    assert m.ranges()["t"] == (0.0, 2.0)


def test_merged_histogram_percentile_close_to_numpy():
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal(20000) * s for s in (0.5, 1.0, 2.0, 1.0)]  # range grows: re-binning
    c = HistogramCalibrator(CalibrationMethod.Percentile, percentile=99.0)
    for x in xs:
        c.update("t", x)
    lo, hi = c.ranges()["t"]
    allx = np.concatenate(xs)
    assert abs(lo - np.percentile(allx, 0.5)) < 0.1 and abs(hi - np.percentile(allx, 99.5)) < 0.1
    sym = HistogramCalibrator(CalibrationMethod.Percentile, percentile=99.0, symmetric=True)
    for x in xs:
        sym.update("t", x)
    lo, hi = sym.ranges()["t"]
    assert lo == -hi and abs(hi - np.percentile(np.abs(allx), 99.0)) < 0.1


@pytest.mark.parametrize("method", list(CalibrationMethod))
def test_each_method_clips_outliers_or_not(method):
    rng = np.random.default_rng(0)
    c = create_calibrator(method)
    x = rng.standard_normal(500000).astype(np.float32)
    x[0] = 60.0  # one outlier
    c.update("t", x)
    lo, hi = c.ranges()["t"]
    assert lo < -2.0
    if method is CalibrationMethod.MinMax:
        assert hi == 60.0
    else:
        assert 2.0 < hi < 60.0


class Reader(CalibrationDataReader):
    def __init__(self, n, seed=0):
        self.rng = np.random.default_rng(seed)
        self.n = n

    def get_next(self):
        if self.n == 0:
            return None
        self.n -= 1
        return {"x": self.rng.random((4, 3, 16, 16), dtype=np.float32)}


def test_reader_protocol():
    assert len(list(Reader(3))) == 3


@pytest.mark.parametrize("method", [CalibrationMethod.MinMax, CalibrationMethod.Percentile])
def test_calibration_memory_flat_when_data_grows_10x(method):
    proto = model_to_proto(__import__("onnxlite.ir.load", fromlist=["load_model"]).load_model(convnet()))
    tensors = ["x", "c1", "r1", "p1", "c2", "r2", "g", "f", "y"]

    def peak(n):
        cal = create_calibrator(method)
        collect(proto, tensors, Reader(3), cal)  # warm caches (plan build, kernel tables)
        cal = create_calibrator(method)
        gc.collect()
        tracemalloc.start()
        collect(proto, tensors, Reader(n), cal)
        _, p = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return p, cal.state_bytes()

    p10, s10 = peak(10)
    p100, s100 = peak(100)
    assert s10 == s100  # statistics are per tensor, not per batch
    # keeping the activations would cost ~60 KB per batch (6 MB for 100 batches); the runtime's
    # own small caches account for the little growth that remains
    assert p100 < 1.6 * p10, (p10, p100)
    assert p100 - p10 < 0.05 * 90 * 60_000, (p10, p100)


@pytest.mark.parametrize("method", list(CalibrationMethod))
def test_infinite_values_are_not_dropped(method):
    c = create_calibrator(method)
    c.update("mask", np.array([0.0, -np.inf, 0.0], dtype=np.float32))
    c.update("mask", np.array([0.0, 0.0], dtype=np.float32))
    lo, _ = c.ranges()["mask"]
    assert lo == -np.inf  # the static quantizer then leaves the tensor in float


@pytest.mark.parametrize(
    ("data", "error", "message"),
    [
        ([1, 2], TypeError, "calibration feed 0 is of type int"),
        (5, TypeError, "must be a CalibrationDataReader .* got int"),
        (
            [{"nope": np.zeros((4, 3, 16, 16), np.float32)}],
            ValueError,
            r"feed 0 holds \['nope'\]; the model's inputs are \['x'\]",
        ),
        ([], ValueError, "gave no feeds"),
    ],
)
def test_bad_calibration_data_is_named(data, error, message):
    proto = model_to_proto(__import__("onnxlite.ir.load", fromlist=["load_model"]).load_model(convnet()))
    with pytest.raises(error, match=message):
        collect(proto, ["c1"], data, create_calibrator(CalibrationMethod.MinMax))
