"""An MLServer custom runtime that serves a sketch classifier (``cnn.onnx``) over the Open Inference Protocol.

MLServer runs it in its own virtual environment (``scripts/serve_model.py`` makes one): its pins do not
have to agree with the plugin's. Each response carries ``Server-Timing: infer;dur=<ms>`` — the time spent
in ONNX Runtime — so a client can split its own time into server and network time.
``SKETCH_SERVER_DELAY_MS`` adds a sleep to every request: a deliberately slower server, for the load gates.
"""

from __future__ import annotations

import asyncio
import os
import time

import numpy as np
import onnxruntime as ort
from mlserver import MLModel
from mlserver.codecs import NumpyCodec
from mlserver.types import InferenceRequest, InferenceResponse, Parameters


class OnnxSketchRuntime(MLModel):
    async def load(self) -> bool:
        options = ort.SessionOptions()
        options.intra_op_num_threads = int(os.environ.get("SKETCH_SERVER_THREADS", "1"))
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(self.settings.parameters.uri, options,
                                            providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name
        self.delay_s = float(os.environ.get("SKETCH_SERVER_DELAY_MS", "0")) / 1000
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        batch = NumpyCodec.decode_input(payload.inputs[0]).astype(np.float32, copy=False)
        started = time.perf_counter()
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        probabilities = self.session.run(None, {self.input_name: batch})[0]
        elapsed_ms = (time.perf_counter() - started) * 1000
        output = NumpyCodec.encode_output("probabilities", probabilities)
        return InferenceResponse(model_name=self.name, outputs=[output],
                                 parameters=Parameters(headers={"Server-Timing": f"infer;dur={elapsed_ms:.3f}"}))
