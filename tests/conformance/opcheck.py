"""Run the ONNX backend node cases of chosen operators and print pass/fail per case.

    python tests/conformance/opcheck.py Relu Softmax        # cases whose graph uses these ops
    python tests/conformance/opcheck.py --name test_softmax  # cases whose name starts so

A developer tool for kernel work: it runs each case through onnxlite.InferenceSession and
compares with the stored outputs as the backend suite does (the full suite is
tests/conformance/test_backend.py).
"""

from __future__ import annotations

import argparse
import sys
import traceback
import warnings

import numpy as np
from onnx.backend.test.loader import load_model_tests
from onnx.backend.test.runner import Runner, _normalize_tensor


def run_case(case, verbose: bool) -> tuple[bool, str]:
    import onnxlite

    try:
        sess = onnxlite.InferenceSession(case.model.SerializeToString())
        names = [i.name for i in sess.get_inputs()]
        for inputs, expected in case.data_sets:
            feeds = dict(zip(names, [_normalize_tensor(x) for x in inputs]))
            expected = [_normalize_tensor(x) for x in expected]
            got = sess.run(None, feeds)
            Runner.assert_similar_outputs(expected, got, rtol=case.rtol, atol=case.atol)
        return True, ""
    except Exception as e:  # report every failure, keep going
        msg = f"{type(e).__name__}: {e}"
        if verbose:
            msg += "\n" + traceback.format_exc()
        return False, msg


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("ops", nargs="*", help="op types; a case is selected if its graph uses one")
    ap.add_argument("--name", action="append", default=[], help="case name prefix")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore")
    np.seterr(all="ignore")
    cases = load_model_tests(kind="node")
    sel = []
    for c in cases:
        ops = {n.op_type for n in c.model.graph.node}
        if (args.ops and ops & set(args.ops)) or any(c.name.startswith(p) for p in args.name):
            sel.append(c)
    passed = 0
    for c in sel:
        ok, msg = run_case(c, args.verbose)
        passed += ok
        print(("PASS " if ok else "FAIL ") + c.name + ("" if ok else "  " + msg[:2000]))
    print(f"{passed} passed, {len(sel) - passed} failed")
    return 0 if passed == len(sel) else 1


if __name__ == "__main__":
    sys.exit(main())
