"""IOBinding: bind inputs and outputs of a session ahead of runs (onnxruntime.IOBinding)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import InvalidArgument
from .ortvalue import OrtValue

if TYPE_CHECKING:
    from .options import RunOptions
    from .session import InferenceSession


class IOBinding:
    """Inputs bound by name; outputs collected as OrtValues after ``run_with_iobinding``."""

    def __init__(self, session: InferenceSession) -> None:
        self._session = session
        self._inputs: dict[str, Any] = {}
        self._outputs: list[str] = []
        self._out_targets: dict[str, OrtValue | None] = {}
        self._results: list[OrtValue] = []

    def bind_cpu_input(self, name: str, arr_on_cpu: Any) -> None:
        self._inputs[name] = np.asarray(arr_on_cpu)

    def bind_input(
        self,
        name: str,
        device_type: str,
        device_id: int,
        element_type: Any,
        shape: Any,
        buffer_ptr: Any,
    ) -> None:
        if str(device_type).lower() != "cpu":
            raise InvalidArgument(
                f"bind_input: device {device_type!r} is not available; bind a CPU array"
            )
        if isinstance(buffer_ptr, int):
            raise InvalidArgument(
                "bind_input: raw pointers are not supported on CPU; use bind_cpu_input"
            )
        arr = np.asarray(buffer_ptr, dtype=element_type).reshape(shape)
        self._inputs[name] = arr

    def bind_ortvalue_input(self, name: str, ortvalue: OrtValue) -> None:
        self._inputs[name] = ortvalue.value()

    def bind_output(
        self,
        name: str,
        device_type: str = "cpu",
        device_id: int = 0,
        element_type: Any = None,
        shape: Any = None,
        buffer_ptr: Any = None,
    ) -> None:
        if str(device_type).lower() != "cpu":
            raise InvalidArgument(f"bind_output: device {device_type!r} is not available")
        self._outputs.append(name)
        self._out_targets[name] = None

    def bind_ortvalue_output(self, name: str, ortvalue: OrtValue) -> None:
        self._outputs.append(name)
        self._out_targets[name] = ortvalue

    def _run(self, run_options: RunOptions | None) -> None:
        names = self._outputs or [o.name for o in self._session.get_outputs()]
        values = self._session.run(names, self._inputs, run_options)
        results = []
        for n, v in zip(names, values):
            target = self._out_targets.get(n)
            if target is not None and target.is_tensor() and np.shape(v) == tuple(target.shape()):
                target.update_inplace(v)
                results.append(target)
            else:
                results.append(OrtValue(v))
        self._results = results

    def get_outputs(self) -> list[OrtValue]:
        return list(self._results)

    def copy_outputs_to_cpu(self) -> list[Any]:
        return [r.value() for r in self._results]

    def synchronize_inputs(self) -> None:
        """CPU values need no synchronisation."""

    def synchronize_outputs(self) -> None:
        """CPU values need no synchronisation."""

    def clear_binding_inputs(self) -> None:
        self._inputs.clear()

    def clear_binding_outputs(self) -> None:
        self._outputs.clear()
        self._out_targets.clear()
