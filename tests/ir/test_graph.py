import numpy as np
import pytest
from onnx import helper

from onnxlite.ir.graph import to_attribute


@pytest.mark.parametrize(
    "value",
    [3, -(2**63), 1.5, 0.1, 1e40, [1, 2, 3], [-1], True, "s", [1.0, 2.0], ["a", "b"], np.arange(3)],
)
def test_to_attribute_writes_what_onnx_helper_writes(value) -> None:  # type: ignore[no-untyped-def]
    from onnx import numpy_helper

    want_value = numpy_helper.from_array(value) if isinstance(value, np.ndarray) else value
    assert to_attribute("a", value) == helper.make_attribute("a", want_value)
