"""Write a deliberately slowed copy of an ONNX model: the same outputs for about twice the work.

Every node is duplicated (the copy reads the same input, its own copy of the weights — identical
tensors under other names, so ONNX Runtime's common-subexpression elimination cannot merge the two
branches — and its own intermediate tensors),
and the copy's pre-softmax output is multiplied by zero and added to the original's — so the
predictions are unchanged and ONNX Runtime, which does not fold ``x * 0`` for a computed ``x``,
really runs both branches. A regression the speed gates must catch, and nothing else.

    python scripts/make_slowed_model.py models/cnn.onnx /tmp/slow/cnn.onnx
    python scripts/make_slowed_model.py --prefix 4 models/cnn.onnx /tmp/slow13/cnn.onnx   # about 1.3×
    python scripts/make_slowed_model.py --extra-channels 40 models/cnn.onnx /tmp/slower/cnn.onnx  # a few %

``--extra-channels C`` adds one dead branch instead: a 3×3 convolution of the input to C channels (work per
drawing, so it scales with the batch like the model's own; 9·C weights, so the file barely grows), summed,
multiplied by zero and added to the logits — a slowdown that C tunes finely (``scripts/build_history.py``
calibrates C to a factor).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper


def slowed(model: onnx.ModelProto, prefix: int | None = None) -> onnx.ModelProto:
    """``prefix`` duplicates only the first ``prefix`` nodes (a smaller slowdown: ``--prefix 4`` of cnn.onnx
    gives about 1.3×: 1.30 on the 2-core EPYC, CPU time, interleaved); their last output is
    summed to a scalar, multiplied by zero and added to the logits."""
    graph = model.graph
    last = graph.node[-1]  # the Softmax that produces the output
    if last.op_type != "Softmax":
        raise SystemExit("expected a model ending in Softmax")
    inputs = {i.name for i in graph.input}
    copies = []
    duplicated = graph.node[:-1] if prefix is None else graph.node[:prefix]
    for node in duplicated:
        copy = onnx.NodeProto()
        copy.CopyFrom(node)
        copy.name = f"dup_{node.name}" if node.name else ""
        copy.input[:] = [n if n in inputs else f"dup_{n}" for n in node.input]
        copy.output[:] = [f"dup_{n}" for n in node.output]
        copies.append(copy)
    for tensor in list(graph.initializer):
        twin = onnx.TensorProto()
        twin.CopyFrom(tensor)
        twin.name = f"dup_{tensor.name}"
        graph.initializer.append(twin)
    logits = last.input[0]
    graph.initializer.append(numpy_helper.from_array(np.zeros((), np.float32), "zero"))
    branch_end = f"dup_{duplicated[-1].output[0]}"
    summed = [] if prefix is None else [helper.make_node("ReduceSum", [branch_end], ["dup_sum"], keepdims=0)]
    nodes = list(graph.node[:-1]) + copies + summed + [
        helper.make_node("Mul", ["dup_sum" if summed else branch_end, "zero"], ["dup_zeroed"]),
        helper.make_node("Add", [logits, "dup_zeroed"], ["logits_plus_zero"]),
    ]
    softmax = onnx.NodeProto()
    softmax.CopyFrom(last)
    softmax.input[0] = "logits_plus_zero"
    del graph.node[:]
    graph.node.extend(nodes + [softmax])
    onnx.checker.check_model(model)
    return model


def with_extra_work(model: onnx.ModelProto, channels: int, seed: int = 0) -> onnx.ModelProto:
    """``model`` plus a dead 3×3 convolution of ``channels`` output channels on its first layer's input (see the
    docstring): work per drawing, a few kilobytes of weights, so the file's size barely moves."""
    graph = model.graph
    last, first = graph.node[-1], graph.node[0]
    if last.op_type != "Softmax":
        raise SystemExit("expected a model ending in Softmax")
    source = first.output[0] if first.op_type == "Transpose" else graph.input[0].name  # NHWC → NCHW already
    weights = np.random.default_rng(seed).standard_normal((channels, 1, 3, 3)).astype(np.float32)
    graph.initializer.extend([numpy_helper.from_array(weights, "extra_weights"),
                              numpy_helper.from_array(np.zeros((), np.float32), "extra_zero")])
    softmax = onnx.NodeProto()
    softmax.CopyFrom(last)
    softmax.input[0] = "extra_logits"
    nodes = list(graph.node[:-1]) + [
        helper.make_node("Conv", [source, "extra_weights"], ["extra_maps"], pads=[1, 1, 1, 1]),
        helper.make_node("ReduceSum", ["extra_maps"], ["extra_sum"], keepdims=0),
        helper.make_node("Mul", ["extra_sum", "extra_zero"], ["extra_zeroed"]),
        helper.make_node("Add", [last.input[0], "extra_zeroed"], ["extra_logits"]), softmax]
    del graph.node[:]
    graph.node.extend(nodes)
    onnx.checker.check_model(model)
    return model


if __name__ == "__main__":
    arguments = sys.argv[1:]
    prefix = None
    channels = None
    if "--extra-channels" in arguments:
        at = arguments.index("--extra-channels")
        channels = int(arguments[at + 1])
        del arguments[at:at + 2]
    if "--prefix" in arguments:
        at = arguments.index("--prefix")
        prefix = int(arguments[at + 1])
        del arguments[at:at + 2]
    source, target = Path(arguments[0]), Path(arguments[1])
    target.parent.mkdir(parents=True, exist_ok=True)
    model = onnx.load(source)
    onnx.save(with_extra_work(model, channels) if channels else slowed(model, prefix), target)
    for sidecar in source.parent.glob(f"{source.stem}.classes.json"):
        target.with_name(sidecar.name).write_bytes(sidecar.read_bytes())
    print(f"wrote {target}")
