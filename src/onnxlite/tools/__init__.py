"""The command-line tools behind ``onnxlite <command>`` (bench, inspect, ...)."""
