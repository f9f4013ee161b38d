"""onnxruntime.capi compatibility: the module paths code written for onnxruntime imports."""
