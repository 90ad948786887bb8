"""Export ``models/cnn.h5`` to ONNX, int8 ONNX, TorchScript and LiteRT — one network, five runtimes.

    python models/export_cnn.py                  # every format
    python models/export_cnn.py --only tflite    # just the LiteRT files

- ``cnn.onnx``: written layer by layer from the Keras weights with the ``onnx`` helper API
  (no tf2onnx: it pins an older protobuf than current TensorFlow). BatchNorm is folded into
  the preceding convolution; the input stays NHWC like the Keras model's.
- ``cnn-int8.onnx``: ONNX Runtime static QDQ quantization (per-channel weights in 7 bits, ``reduce_range``),
  calibrated on 1,100 drawings of the *validation* split. Why 7 bits: x86 CPUs without VNNI (AVX2, AVX-512F)
  multiply uint8 activations by int8 weights with VPMADDUBSW, which adds each pair of products into an int16
  and saturates; 255 x 127 x 2 overflows it, 255 x 64 x 2 = 32,640 cannot. With 8-bit weights the file scored
  0.883 on an AVX2-only EPYC and 0.9075 here (AVX-512 VNNI); with 7-bit weights every x86 kernel computes the
  same integers.
- ``cnn.pt``: the same architecture built in PyTorch (BatchNorm kept as a layer) with the
  Keras weights copied in, then ``torch.jit.script``-ed.
- ``cnn.tflite`` / ``cnn-int8.tflite``: TensorFlow's LiteRT converter on the Keras model (float32), and
  full-integer post-training quantization (int8 weights and activations, float32 input and output)
  calibrated on the same 1,100 validation drawings; run with ``ai-edge-litert``.
"""

from __future__ import annotations

import os
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import onnx  # noqa: E402
from onnx import TensorProto, helper, numpy_helper  # noqa: E402
from recipe_common import MODELS_DIR, load_split_arrays  # noqa: E402


def keras_layers(model: keras.Model) -> list:
    """The layers of a plain feed-forward Keras model, in order, without the input layer."""
    return [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]


def fold_batch_norm(kernel: np.ndarray, bias: np.ndarray | None, bn) -> tuple[np.ndarray, np.ndarray]:
    gamma, beta, mean, variance = (w.astype(np.float64) for w in bn.get_weights())
    scale = gamma / np.sqrt(variance + bn.epsilon)
    bias = np.zeros_like(mean) if bias is None else bias.astype(np.float64)
    return (kernel * scale).astype(np.float32), ((bias - mean) * scale + beta).astype(np.float32)


def to_onnx(model: keras.Model, categories: list[str]) -> onnx.ModelProto:
    nodes, initializers = [], []
    current = "image"

    def add(op: str, inputs: list[str], **attrs) -> str:
        nonlocal current
        output = f"{op.lower()}_{len(nodes)}"
        nodes.append(helper.make_node(op, inputs, [output], **attrs))
        current = output
        return output

    def constant(name: str, value: np.ndarray) -> str:
        initializers.append(numpy_helper.from_array(value.astype(np.float32), name))
        return name

    add("Transpose", [current], perm=[0, 3, 1, 2])  # NHWC in, NCHW inside
    layers = keras_layers(model)
    i = 0
    while i < len(layers):
        layer = layers[i]
        kind = type(layer).__name__
        if kind == "Conv2D":
            kernel = layer.get_weights()[0]  # (kh, kw, in, out)
            bias = layer.get_weights()[1] if layer.use_bias else None
            if i + 1 < len(layers) and type(layers[i + 1]).__name__ == "BatchNormalization":
                kernel, bias = fold_batch_norm(kernel, bias, layers[i + 1])
                i += 1
            weight = constant(f"conv{i}_w", kernel.transpose(3, 2, 0, 1))
            inputs = [current, weight] + ([constant(f"conv{i}_b", bias)] if bias is not None else [])
            pad = kernel.shape[0] // 2 if layer.padding == "same" else 0
            add("Conv", inputs, kernel_shape=list(kernel.shape[:2]), pads=[pad] * 4, strides=list(layer.strides))
        elif kind == "ReLU":
            add("Relu", [current])
        elif kind == "MaxPooling2D":
            add("MaxPool", [current], kernel_shape=list(layer.pool_size), strides=list(layer.strides))
        elif kind == "Flatten":
            add("Transpose", [current], perm=[0, 2, 3, 1])  # back to NHWC so Keras' Dense order holds
            add("Flatten", [current], axis=1)
        elif kind == "Dropout":
            pass
        elif kind == "Dense":
            kernel, bias = layer.get_weights()
            add("Gemm", [current, constant(f"dense{i}_w", kernel), constant(f"dense{i}_b", bias)])
            activation = layer.activation.__name__
            if activation == "relu":
                add("Relu", [current])
            elif activation == "softmax":
                add("Softmax", [current], axis=1)
            elif activation != "linear":
                raise ValueError(f"unsupported activation {activation}")
        else:
            raise ValueError(f"unsupported layer {kind}")
        i += 1
    nodes[-1].output[0] = "probabilities"
    graph = helper.make_graph(
        nodes, "sketch_cnn",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 28, 28, 1])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", len(categories)])],
        initializers,
    )
    proto = helper.make_model(graph, producer_name="pytest-sketchbench export_cnn.py",
                              opset_imports=[helper.make_opsetid("", 17)])
    proto.ir_version = 8
    helper.set_model_props(proto, {"categories": ",".join(categories), "source": "cnn.h5"})
    onnx.checker.check_model(proto)
    return proto


def quantize_int8(source: str, target: str, calibration: np.ndarray) -> None:
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.batches = iter([{"image": calibration[i:i + 50]} for i in range(0, len(calibration), 50)])

        def get_next(self):
            return next(self.batches, None)

    quantize_static(source, target, Reader(), quant_format=QuantFormat.QDQ, per_channel=True, reduce_range=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)


def to_torchscript(model: keras.Model, target: str) -> None:
    import torch
    from torch import nn
    from torch_cnn import Permute, SketchNet

    modules: list[nn.Module] = []
    channels = 1
    for layer in keras_layers(model):
        kind = type(layer).__name__
        if kind == "Conv2D":
            kernel = layer.get_weights()[0]
            conv = nn.Conv2d(channels, kernel.shape[3], kernel.shape[:2], padding="same", bias=layer.use_bias)
            conv.weight.data = torch.from_numpy(kernel.transpose(3, 2, 0, 1).copy())
            if layer.use_bias:
                conv.bias.data = torch.from_numpy(layer.get_weights()[1])
            channels = kernel.shape[3]
            modules.append(conv)
        elif kind == "BatchNormalization":
            gamma, beta, mean, variance = layer.get_weights()
            bn = nn.BatchNorm2d(channels, eps=layer.epsilon)
            parts = {"weight": gamma, "bias": beta, "running_mean": mean, "running_var": variance}
            for name, value in parts.items():
                getattr(bn, name).data = torch.from_numpy(value.copy())
            modules.append(bn)
        elif kind == "ReLU":
            modules.append(nn.ReLU())
        elif kind == "MaxPooling2D":
            modules.append(nn.MaxPool2d(layer.pool_size))
        elif kind == "Flatten":
            modules += [Permute([0, 2, 3, 1]), nn.Flatten()]
        elif kind == "Dropout":
            modules.append(nn.Dropout(layer.rate))
        elif kind == "Dense":
            kernel, bias = layer.get_weights()
            dense = nn.Linear(kernel.shape[0], kernel.shape[1])
            dense.weight.data = torch.from_numpy(kernel.T.copy())
            dense.bias.data = torch.from_numpy(bias)
            modules.append(dense)
            if layer.activation.__name__ == "relu":
                modules.append(nn.ReLU())
            elif layer.activation.__name__ == "softmax":
                modules.append(nn.Softmax(dim=1))
    network = SketchNet(nn.Sequential(*modules)).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(torch.jit.script(network), target)




def to_tflite(model: keras.Model, target: str, calibration: np.ndarray | None = None) -> None:
    """LiteRT flatbuffer; with ``calibration``, full-integer int8 (float32 in and out, like the other files)."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if calibration is not None:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([calibration[i:i + 1]] for i in range(len(calibration)))
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    with open(target, "wb") as handle:
        handle.write(converter.convert())


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--only", choices=("onnx", "onnx-int8", "torch", "tflite"),
                        help="export one format only (onnx-int8: re-quantize the existing cnn.onnx)")
    only = parser.parse_args().only
    data = load_split_arrays()
    categories = data["categories"]
    model = keras.models.load_model(MODELS_DIR / "cnn.h5", compile=False)
    x_val, y_val = data["validation"]
    calibration = x_val[np.random.default_rng(0).permutation(len(x_val))[:1100]]
    written = []
    if only in (None, "onnx"):
        onnx_path, int8_path = str(MODELS_DIR / "cnn.onnx"), str(MODELS_DIR / "cnn-int8.onnx")
        onnx.save(to_onnx(model, categories), onnx_path)
        quantize_int8(onnx_path, int8_path, calibration)
        written += [onnx_path, int8_path]
    if only == "onnx-int8":
        quantize_int8(str(MODELS_DIR / "cnn.onnx"), str(MODELS_DIR / "cnn-int8.onnx"), calibration)
        written.append(str(MODELS_DIR / "cnn-int8.onnx"))
    if only in (None, "torch"):
        to_torchscript(model, str(MODELS_DIR / "cnn.pt"))
        written.append(str(MODELS_DIR / "cnn.pt"))
    if only in (None, "tflite"):
        for name, sample in (("cnn.tflite", None), ("cnn-int8.tflite", calibration)):
            to_tflite(model, str(MODELS_DIR / name), sample)
            written.append(str(MODELS_DIR / name))
    for path in written:
        print(f"wrote {path} ({os.path.getsize(path) / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
