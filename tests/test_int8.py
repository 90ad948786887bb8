"""int8 that holds on every x86: the shipped int8 ONNX file cannot saturate a non-VNNI kernel, and the host record
says which instruction sets a figure depends on."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import REPO
from pytest_sketchbench.hardware import instruction_sets, int8_dot_product

AVX2_ONLY = "processor\t: 0\nmodel name\t: AMD EPYC 7B12\nflags\t\t: fpu sse4_2 avx avx2 fma f16c bmi2\n"
ZEN4 = "flags\t\t: fpu sse4_2 avx avx2 fma f16c avx512f avx512bw avx512_vnni avx512_bf16\n"


def test_the_shipped_int8_onnx_weights_fit_in_7_bits():
    """VPMADDUBSW (AVX2, AVX-512F without VNNI) adds two uint8 x int8 products into an int16: with |w| <= 64
    the largest pair, 255 x 64 x 2 = 32,640, fits; an 8-bit weight (127) can overflow it."""
    onnx = pytest.importorskip("onnx")
    from onnx import numpy_helper

    model = onnx.load(str(REPO / "models" / "cnn-int8.onnx"))
    weights = [numpy_helper.to_array(t) for t in model.graph.initializer
               if t.data_type == onnx.TensorProto.INT8 and np.prod(t.dims) > 1]
    assert weights, "no int8 weight tensors found"
    largest = max(int(np.abs(w.astype(np.int32)).max()) for w in weights)
    assert largest <= 64 and 255 * largest * 2 <= 32767


@pytest.mark.slow
def test_the_int8_file_agrees_with_its_float_source_on_the_bundled_split(bundled):
    ort = pytest.importorskip("onnxruntime")
    x = bundled.images.reshape(-1, 28, 28, 1).astype(np.float32) / 255.0

    def predicted(name: str) -> np.ndarray:
        session = ort.InferenceSession(str(REPO / "models" / name), providers=["CPUExecutionProvider"])
        feed = session.get_inputs()[0].name
        return np.concatenate([session.run(None, {feed: x[i:i + 512]})[0] for i in range(0, len(x), 512)]).argmax(1)

    assert (predicted("cnn-int8.onnx") == predicted("cnn.onnx")).mean() >= 0.99


def test_instruction_sets_come_from_the_first_flags_line():
    assert instruction_sets(AVX2_ONLY) == ["sse4_2", "avx", "avx2", "fma", "f16c"]
    assert instruction_sets(ZEN4)[-3:] == ["avx512bw", "avx512_vnni", "avx512_bf16"]
    assert instruction_sets("model name\t: something\n") == []


def test_the_int8_arithmetic_is_named_by_what_the_cpu_has():
    assert int8_dot_product(instruction_sets(ZEN4)).startswith("VNNI")
    assert "saturates" in int8_dot_product(instruction_sets(AVX2_ONLY))
    assert int8_dot_product([]) is None


def test_the_header_names_the_widest_vector_instruction_set():
    from pytest_sketchbench.hardware import summary_line

    cpu = {"model": "AMD EPYC", "physical_cores": 2, "logical_cores": 2, "memory_gib": 24.0}
    base = {"gpus": [], "environment": "container"}
    assert "AVX2)" in summary_line({**base, "cpu": {**cpu, "instruction_sets": instruction_sets(AVX2_ONLY)}}, "cpu")
    assert "AVX512-VNNI)" in summary_line({**base, "cpu": {**cpu, "instruction_sets": instruction_sets(ZEN4)}}, "cpu")
    assert "GiB)" in summary_line({**base, "cpu": cpu}, "cpu")  # a record from before the field still renders


def test_quantized_probabilities_are_renormalised_not_softmaxed_again():
    """cnn-int8's softmax comes out in steps of 1/255 (rows summing to 0.97–1.03): read as logits, a second softmax
    flattened its confidences to ~0.1 (ECE 0.81, |Δp| to cnn 0.89)."""
    from pytest_sketchbench.models.base import ModelPlugin

    class Quantized(ModelPlugin):
        runtime = "test"

        def load(self):
            pass

        def infer(self, prepared):
            return prepared

        def describe(self):
            raise NotImplementedError

    plugin = Quantized("q", {})
    plugin.categories = ["a", "b", "c"]
    steps = np.array([[200, 40, 12], [0, 255, 3]], dtype=np.float64) / 255  # sums 0.988 and 1.012
    probabilities = plugin.to_probabilities(steps, 2)
    np.testing.assert_allclose(probabilities.sum(1), 1.0)
    assert probabilities[0, 0] == pytest.approx(200 / 252) and probabilities[1, 1] > 0.98
    logits = plugin.to_probabilities(np.array([[2.0, -1.0, 0.5]]), 1)  # logits still go through softmax
    assert logits[0, 0] == pytest.approx(np.exp(2) / (np.exp(2) + np.exp(-1) + np.exp(0.5)))
