"""IOBinding: bind inputs and outputs of a session ahead of runs (onnxruntime.IOBinding).

Inputs and outputs may live on a provider's device ('cuda'). A device input read only by that
device's nodes is handed to them as is (the plan's host-to-device copy passes it through); an
output bound to a device is fetched from before the plan's device-to-host copy, which then does
not run. So values can stay on the GPU across runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import InvalidArgument
from .ortvalue import _DEVICES, OrtValue, device_backend

if TYPE_CHECKING:
    from .options import RunOptions
    from .session import InferenceSession


class IOBinding:
    """Inputs bound by name; outputs collected as OrtValues after ``run_with_iobinding``."""

    def __init__(self, session: InferenceSession) -> None:
        self._session = session
        self._inputs: dict[str, Any] = {}
        self._in_devices: dict[str, tuple[str, int]] = {}  # inputs bound on a device
        self._outputs: list[str] = []
        self._out_targets: dict[str, OrtValue | None] = {}
        self._out_devices: dict[str, tuple[str, int]] = {}  # outputs wanted on a device
        self._results: list[OrtValue] = []

    def bind_cpu_input(self, name: str, arr_on_cpu: Any) -> None:
        self._in_devices.pop(name, None)
        self._inputs[name] = np.asarray(arr_on_cpu)

    def _bind_device_input(self, name: str, dev: str, device_id: int, value: Any) -> None:
        self._inputs[name] = value
        self._in_devices[name] = (dev, int(device_id))

    def bind_input(
        self,
        name: str,
        device_type: str,
        device_id: int,
        element_type: Any,
        shape: Any,
        buffer_ptr: Any,
    ) -> None:
        dev = str(device_type).lower()
        if dev != "cpu":
            if dev not in _DEVICES:
                raise InvalidArgument(f"bind_input: device {device_type!r} is not available")
            be = device_backend(dev, device_id)
            with be.context():
                if isinstance(buffer_ptr, int):  # a raw device pointer (a torch or CuPy tensor's)
                    value = be.wrap_pointer(buffer_ptr, tuple(shape), np.dtype(element_type))
                else:
                    value = be.xp.asarray(buffer_ptr, dtype=element_type).reshape(shape)
            self._bind_device_input(name, dev, device_id, value)
            return
        if isinstance(buffer_ptr, int):
            raise InvalidArgument("bind_input: raw pointers are not supported on CPU; use bind_cpu_input")
        arr = np.asarray(buffer_ptr, dtype=element_type).reshape(shape)
        self.bind_cpu_input(name, arr)

    def bind_ortvalue_input(self, name: str, ortvalue: OrtValue) -> None:
        dev = ortvalue.device_name()
        if dev != "cpu":
            self._bind_device_input(name, dev, ortvalue.device_id(), ortvalue.value())
            return
        self._in_devices.pop(name, None)
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
        """Collect output ``name`` on a device; with ``buffer_ptr`` (and its element type and
        shape), written into that preallocated device memory on every run."""
        dev = str(device_type).lower()
        if dev not in _DEVICES:
            raise InvalidArgument(f"bind_output: device {device_type!r} is not available")
        target = None
        if dev != "cpu":
            be = device_backend(dev, device_id)  # fails now, naming what is missing, not at run
            if buffer_ptr is not None:
                if element_type is None or shape is None:
                    raise InvalidArgument("bind_output: a buffer_ptr needs its element_type and shape")
                with be.context():
                    mem = be.wrap_pointer(int(buffer_ptr), tuple(shape), np.dtype(element_type))
                target = OrtValue(mem, dev, int(device_id))
            self._out_devices[name] = (dev, int(device_id))
        else:
            if buffer_ptr is not None:
                # (not silently ignored: the caller would read stale memory)
                raise InvalidArgument(
                    "bind_output: raw pointers are not supported on CPU; bind an OrtValue over "
                    "your array with bind_ortvalue_output"
                )
            self._out_devices.pop(name, None)
        self._outputs.append(name)
        self._out_targets[name] = target

    def bind_ortvalue_output(self, name: str, ortvalue: OrtValue) -> None:
        dev = ortvalue.device_name()
        if dev != "cpu":
            self._out_devices[name] = (dev, ortvalue.device_id())
        else:
            self._out_devices.pop(name, None)
        self._outputs.append(name)
        self._out_targets[name] = ortvalue

    def _run(self, run_options: RunOptions | None) -> None:
        names = self._outputs or [o.name for o in self._session.get_outputs()]
        if self._in_devices or any(n in self._out_devices for n in names):
            values = self._run_on_devices(names, run_options)
        else:
            values = self._session.run(names, self._inputs, run_options)
        results = []
        for n, v in zip(names, values):
            target = self._out_targets.get(n)
            dev, dev_id = self._out_devices.get(n, ("cpu", 0))
            if target is not None and target.is_tensor():
                if tuple(v.shape) != tuple(target.shape()) or v.dtype != target.element_type():
                    # as onnxruntime: the bound buffer cannot hold this output
                    raise InvalidArgument(
                        f"output {n!r} is {v.dtype}{list(v.shape)} but the buffer bound to it is "
                        f"{np.dtype(target.element_type())}{target.shape()}"
                    )
                target.update_inplace(v)
                results.append(target)
            else:
                results.append(OrtValue(v, dev, dev_id))
        self._results = results

    def _run_on_devices(self, names: list[str], run_options: RunOptions | None) -> list[Any]:
        """A run whose bound device inputs and outputs skip the plan's copies where they can."""
        from .providers import provider_classes
        from .session import _output

        sess = self._session
        sess._check_fork()
        plan = sess._plan
        feed = dict(self._inputs)
        for n in self._in_devices:  # validated (dtype, shape) through a host stand-in
            v = self._inputs[n]
            feed[n] = np.lib.stride_tricks.as_strided(
                np.zeros(1, v.dtype), tuple(v.shape), (0,) * v.ndim, writeable=False
            )
        vals, _ = sess._prepare(names, feed)
        classes = provider_classes()
        for n, (dev, dev_id) in self._in_devices.items():
            slot = plan.slots[n]
            readers = [st for st in plan.steps if slot in st.ins]
            direct = all(
                st.node.op_type == "MemcpyFromHost"
                and getattr(classes.get(st.provider), "device", None) == dev
                for st in readers
            )
            v = self._inputs[n]
            vals[slot] = v if direct else device_backend(dev, dev_id).to_host(v)
        fetch = []
        for n in names:
            s = plan.slots[n]
            if n in self._out_devices:
                copy = [st for st in plan.steps if st.outs == (s,) and st.node.op_type == "MemcpyToHost"]
                if copy:
                    s = copy[0].ins[0]
            fetch.append(s)
        variant = plan.variant(tuple(fetch))
        results = sess._execute(vals, variant, run_options)
        out = []
        for n, v in zip(names, results):
            if n in self._out_devices:
                dev, dev_id = self._out_devices[n]
                be = device_backend(dev, dev_id)
                if not isinstance(v, be.dev_type):  # produced on the host: copied to the device
                    with be.context():
                        v = be.xp.asarray(v)
                out.append(v)
            else:
                out.append(_output(v))
        return out

    def get_outputs(self) -> list[OrtValue]:
        return list(self._results)

    def copy_outputs_to_cpu(self) -> list[Any]:
        return [r.numpy() if r.device_name() != "cpu" else r.value() for r in self._results]

    def synchronize_inputs(self) -> None:
        self._synchronize(self._in_devices.values())

    def synchronize_outputs(self) -> None:
        self._synchronize(self._out_devices.values())

    @staticmethod
    def _synchronize(devices: Any) -> None:
        """Wait for the devices' queued work (CPU values need none)."""
        for dev, dev_id in set(devices):
            device_backend(dev, dev_id).synchronize()

    def clear_binding_inputs(self) -> None:
        self._inputs.clear()
        self._in_devices.clear()

    def clear_binding_outputs(self) -> None:
        self._outputs.clear()
        self._out_targets.clear()
        self._out_devices.clear()
