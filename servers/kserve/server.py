"""KServe's Python model server (``kserve.ModelServer``) serving a sketch classifier (``cnn.onnx``) over the
Open Inference Protocol: the second real implementation beside MLServer, so that a figure or verdict that
holds on both is the protocol's, not one server's quirk.

Runs in its own virtual environment (``scripts/serve_model.py --server kserve`` makes ``.venv-kserve``):

    .venv-kserve/bin/python servers/kserve/server.py --model models/cnn.onnx --model_name cnn --http_port 8090

Each response carries ``Server-Timing: infer;dur=<ms>`` (the time in ONNX Runtime), as the MLServer runtime's.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import onnxruntime as ort
from kserve import InferOutput, InferRequest, InferResponse, Model, ModelServer


class OnnxSketchModel(Model):
    def __init__(self, name: str, path: str, threads: int):
        super().__init__(name, return_response_headers=True)
        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        self.session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        model_input = self.session.get_inputs()[0]
        self.input_name = model_input.name
        self.input_shape = [-1 if not isinstance(d, int) else d for d in model_input.shape]
        self.categories = self.session.get_outputs()[0].shape[-1]
        self.ready = True

    def get_input_types(self) -> list[dict]:
        return [{"name": self.input_name, "datatype": "FP32", "shape": self.input_shape}]

    def get_output_types(self) -> list[dict]:
        return [{"name": "probabilities", "datatype": "FP32", "shape": [-1, self.categories]}]

    async def predict(self, payload: InferRequest, headers: dict | None = None,
                      response_headers: dict | None = None) -> InferResponse:
        batch = payload.inputs[0].as_numpy().astype(np.float32, copy=False)
        started = time.perf_counter()
        probabilities = self.session.run(None, {self.input_name: batch})[0]
        elapsed_ms = (time.perf_counter() - started) * 1000
        if response_headers is not None:
            response_headers["Server-Timing"] = f"infer;dur={elapsed_ms:.3f}"
        binary = any((o.parameters or {}).get("binary_data") for o in (payload.request_outputs or []))
        output = InferOutput(name="probabilities", shape=list(probabilities.shape), datatype="FP32")
        output.set_data_from_numpy(probabilities, binary_data=bool(binary))
        return InferResponse(response_id=payload.id or "", model_name=self.name, infer_outputs=[output],
                             use_binary_outputs=bool(binary))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(parents=[__import__("kserve").model_server.parser], add_help=False)
    parser.add_argument("--model", required=True)
    parser.add_argument("--threads", type=int, default=1)
    args, _ = parser.parse_known_args()
    model = OnnxSketchModel(args.model_name or "cnn", args.model, args.threads)
    ModelServer(enable_grpc=False, workers=1).start([model])
