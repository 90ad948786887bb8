"""Service levels of API models (gemini): success rate, invalid answers, cost per 1,000 drawings.

Their p95 latency is gated like any model's (``max_p95_latency_ms``, ``test_latency.py``); local models skip.
"""


def test_api_service_levels(sketch_predictions, sketch_session, sketch_thresholds):
    sketch_thresholds.check_api(sketch_session.record(sketch_predictions.model).extras.get("api"))
