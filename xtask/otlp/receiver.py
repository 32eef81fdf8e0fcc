"""A minimal OTLP trace receiver on the official protobuf definitions (PyPI opentelemetry-proto).

Serves OTLP/gRPC (TraceService/Export) and OTLP/HTTP protobuf (POST /v1/traces) on loopback and
writes one JSON line per received span to --out. Prints "up <grpc-port> <http-port>" once listening.
Used by `cargo xtask test` (xtask/src/otel.rs); independent of the Rust OpenTelemetry crates.
"""

import argparse
import gzip
import json
import sys
import threading
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

LOCK = threading.Lock()


def any_value(v):
    kind = v.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [any_value(x) for x in v.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: any_value(kv.value) for kv in v.kvlist_value.values}
    if kind == "bytes_value":
        return v.bytes_value.hex()
    return getattr(v, kind)


def attrs(kvs):
    return {kv.key: any_value(kv.value) for kv in kvs}


def record(out, transport, request):
    lines = []
    for rs in request.resource_spans:
        resource = attrs(rs.resource.attributes)
        for ss in rs.scope_spans:
            for s in ss.spans:
                lines.append(json.dumps({
                    "transport": transport,
                    "resource": resource,
                    "scope": ss.scope.name,
                    "name": s.name,
                    "kind": s.kind,
                    "trace_id": s.trace_id.hex(),
                    "span_id": s.span_id.hex(),
                    "parent_span_id": s.parent_span_id.hex(),
                    "trace_state": s.trace_state,
                    "status_code": s.status.code,
                    "status_message": s.status.message,
                    "attributes": attrs(s.attributes),
                    "start_ns": s.start_time_unix_nano,
                    "end_ns": s.end_time_unix_nano,
                }, sort_keys=True))
    with LOCK:
        with open(out, "a", encoding="utf-8") as f:
            for line in lines:
                f.write(line + "\n")


class TraceService(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, out):
        self.out = out

    def Export(self, request, context):
        record(self.out, "grpc", request)
        return trace_service_pb2.ExportTraceServiceResponse()


def http_handler(out):
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            if self.path != "/v1/traces":
                self.send_response(404)
                self.end_headers()
                return
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            request = trace_service_pb2.ExportTraceServiceRequest()
            request.ParseFromString(body)
            record(out, "http", request)
            reply = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, *args):
            pass

    return Handler


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--grpc-port", type=int, required=True)
    p.add_argument("--http-port", type=int, required=True)
    p.add_argument("--out", required=True)
    a = p.parse_args()
    open(a.out, "w").close()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(TraceService(a.out), server)
    server.add_insecure_port(f"127.0.0.1:{a.grpc_port}")
    server.start()
    httpd = ThreadingHTTPServer(("127.0.0.1", a.http_port), http_handler(a.out))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    print(f"up {a.grpc_port} {a.http_port}", flush=True)
    try:
        server.wait_for_termination()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
