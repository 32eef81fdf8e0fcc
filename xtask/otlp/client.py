"""Independent client: the Python OpenTelemetry SDK opens a CLIENT span, injects traceparent /
tracestate / baggage into an HTTP request to the server under test, and exports its own span to
the receiver over OTLP/gRPC. Prints one JSON line per request: the client span ids and the reply.

usage: client.py --server http://127.0.0.1:PORT --otlp-grpc http://127.0.0.1:PORT NAME=PATH[@TIMEOUT] ...
A TIMEOUT (seconds) makes the client give up and close the connection (a cancelled request).
"""

import argparse
import json

import requests
from opentelemetry import baggage, context, trace
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--server", required=True)
    p.add_argument("--otlp-grpc", required=True)
    p.add_argument("requests", nargs="+")
    a = p.parse_args()
    provider = TracerProvider(resource=Resource.create({"service.name": "python-client"}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=a.otlp_grpc, insecure=True)))
    tracer = provider.get_tracer("e2e-client")
    propagator = CompositePropagator([TraceContextTextMapPropagator(), W3CBaggagePropagator()])
    for spec in a.requests:
        name, _, rest = spec.partition("=")
        path, _, timeout = rest.partition("@")
        ctx = baggage.set_baggage("tenant", "acme")
        token = context.attach(ctx)
        try:
            with tracer.start_as_current_span(f"GET {name}", kind=trace.SpanKind.CLIENT) as span:
                headers = {"tracestate": "vendor=opaque"}
                propagator.inject(headers)
                # The SDK put its own (empty) tracestate; keep ours for the check.
                headers["tracestate"] = "vendor=opaque"
                sc = span.get_span_context()
                result = {
                    "name": name,
                    "trace_id": format(sc.trace_id, "032x"),
                    "span_id": format(sc.span_id, "016x"),
                    "sent": headers,
                }
                try:
                    r = requests.get(a.server + path, headers=headers, timeout=float(timeout) if timeout else 30)
                    result["status"] = r.status_code
                    result["traceparent"] = r.headers.get("traceparent")
                except requests.exceptions.Timeout:
                    result["status"] = None
                print(json.dumps(result), flush=True)
        finally:
            context.detach(token)
    provider.shutdown()


if __name__ == "__main__":
    main()
