"""Assertions on what the OTLP receiver got (spans.jsonl from receiver.py). Exit status 1 with the
reasons on failure. Used by `cargo xtask test` (xtask/src/otel.rs).

  check.py e2e SPANS CLIENT_OUT TRANSPORT SERVER_PORT   acceptance cases for the e2e server
  check.py span SPANS TRACE_ID SERVICE NAME             one SERVER span with that trace id arrived
  check.py db SPANS TRACE_ID QUERIES                    its SERVER span carries the perf.db.* summary
                                                        and QUERIES db CLIENT children inside it
"""

import json
import sys

FAILURES = []


def expect(cond, what):
    if not cond:
        FAILURES.append(what)
    return cond


def load(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def server_spans(spans, transport, service):
    return [s for s in spans if s["transport"] == transport and s["resource"].get("service.name") == service]


def common_attrs(port):
    return {
        "http.request.method": "GET",
        "url.scheme": "http",
        "server.address": "127.0.0.1",
        "server.port": port,
        "client.address": "127.0.0.1",
        "network.peer.address": "127.0.0.1",
        "network.protocol.version": "1.1",
    }


CASES = {
    # name: (span name, route, status code attr, otel status, error.type, url.path)
    "matched": ("GET /users/{id}", "/users/{id}", 200, 0, None, "/users/42"),
    "unmatched": ("GET", None, 404, 0, None, "/nope"),
    "boom": ("GET /boom", "/boom", 500, 2, "500", "/boom"),
    "teapot": ("GET /teapot", "/teapot", 418, 0, None, "/teapot"),
    "cancelled": ("GET /slow", "/slow", None, 2, "cancelled", "/slow"),
}


def e2e(spans_path, client_path, transport, port):
    spans = load(spans_path)
    client = {c["name"]: c for c in load(client_path)}
    ours = server_spans(spans, transport, "otel-e2e")
    expect(len(ours) > 0, f"no span from otel-e2e arrived over {transport}")
    for name, (span_name, route, code, status, error_type, path) in CASES.items():
        c = client.get(name)
        if not expect(c is not None, f"{name}: the client did not report the request"):
            continue
        found = [s for s in ours if s["kind"] == 2 and s["trace_id"] == c["trace_id"]]
        if not expect(len(found) == 1, f"{name}: expected 1 SERVER span with trace id {c['trace_id']}, got {len(found)}"):
            continue
        s = found[0]
        expect(s["parent_span_id"] == c["span_id"], f"{name}: parent {s['parent_span_id']} is not the client span {c['span_id']}")
        expect(s["name"] == span_name, f"{name}: span name {s['name']!r}, expected {span_name!r}")
        expect(s["scope"] == "perf-otel", f"{name}: scope {s['scope']!r}")
        expect(s["trace_state"] == "vendor=opaque", f"{name}: tracestate {s['trace_state']!r} not continued")
        expect(s["status_code"] == status, f"{name}: status {s['status_code']}, expected {status}")
        expect(s["status_message"] == "", f"{name}: status message {s['status_message']!r} should be empty")
        want = common_attrs(port)
        want["url.path"] = path
        if route is not None:
            want["http.route"] = route
        if code is not None:
            want["http.response.status_code"] = code
        if error_type is not None:
            want["error.type"] = error_type
        got = dict(s["attributes"])
        peer_port = got.pop("network.peer.port", None)
        ua = got.pop("user_agent.original", "")
        expect(isinstance(peer_port, int) and peer_port > 0, f"{name}: network.peer.port {peer_port!r}")
        expect(ua.startswith("python-requests/"), f"{name}: user_agent.original {ua!r}")
        expect(got == want, f"{name}: attributes\n  got  {json.dumps(got, sort_keys=True)}\n  want {json.dumps(want, sort_keys=True)}")
        expect(all(v != "" for v in s["attributes"].values()), f"{name}: empty-string attribute")
        if name == "cancelled":
            secs = (s["end_ns"] - s["start_ns"]) / 1e9
            expect(secs < 5, f"cancelled: span lasted {secs:.1f} s: it ended with the handler, not at the disconnect")
        else:
            expect(c.get("status") == code, f"{name}: client saw status {c.get('status')}")
            tp = f"00-{c['trace_id']}-{s['span_id']}-01"
            expect(c.get("traceparent") == tp, f"{name}: response traceparent {c.get('traceparent')!r}, expected {tp!r}")
        if name == "matched":
            kids = [k for k in ours if k["name"] == "load_user" and k["trace_id"] == c["trace_id"]]
            expect(len(kids) == 1, f"matched: expected the handler span load_user, got {len(kids)}")
            for k in kids:
                expect(k["parent_span_id"] == s["span_id"], "matched: load_user is not a child of the server span")
                expect(k["kind"] == 1, f"matched: load_user kind {k['kind']}, expected INTERNAL (1)")
        py = [p for p in spans if p["resource"].get("service.name") == "python-client" and p["span_id"] == c["span_id"]]
        expect(len(py) == 1 and py[0]["kind"] == 3, f"{name}: the Python client's CLIENT span did not arrive")
    strays = sorted({s["name"] for s in ours if s["kind"] != 2 and s["name"] != "load_user"})
    expect(not strays, f"unexpected spans from the server (export path feeding back?): {strays[:10]}")
    res = ours[0]["resource"] if ours else {}
    expect(res.get("telemetry.sdk.language") == "rust", f"resource {res}")
    return len(ours)


def one_span(spans_path, trace_id, service, name):
    spans = [s for s in load(spans_path) if s["trace_id"] == trace_id and s["kind"] == 2]
    expect(len(spans) == 1, f"expected 1 SERVER span with trace id {trace_id}, got {len(spans)}")
    for s in spans:
        expect(s["resource"].get("service.name") == service, f"service.name {s['resource'].get('service.name')!r}")
        expect(s["name"] == name, f"span name {s['name']!r}, expected {name!r}")
    return len(spans)


def db(spans_path, trace_id, queries):
    queries = int(queries)
    spans = [s for s in load(spans_path) if s["trace_id"] == trace_id]
    server = [s for s in spans if s["kind"] == 2]
    if not expect(len(server) == 1, f"expected 1 SERVER span with trace id {trace_id}, got {len(server)}"):
        return 0
    server = server[0]
    a = server["attributes"]
    expect(a.get("perf.db.query_count") == queries, f"perf.db.query_count {a.get('perf.db.query_count')!r}, expected {queries}")
    expect((a.get("perf.db.n_plus_one") or 0) >= 1, f"perf.db.n_plus_one {a.get('perf.db.n_plus_one')!r}, expected >= 1")
    expect(0 < (a.get("perf.db.duration") or 0) < 60, f"perf.db.duration {a.get('perf.db.duration')!r} (seconds)")
    clients = [s for s in spans if s["kind"] == 3]
    expect(len(clients) == queries, f"{len(clients)} CLIENT spans, expected {queries}")
    for c in clients:
        ca = c["attributes"]
        expect(c["parent_span_id"] == server["span_id"], f"CLIENT span {c['name']!r} parent {c['parent_span_id']}, expected the SERVER span")
        expect(ca.get("db.system.name") == "sqlite", f"db.system.name {ca.get('db.system.name')!r}")
        expect(bool(ca.get("db.query.text")), f"CLIENT span {c['name']!r} without db.query.text")
        expect(server["start_ns"] <= c["start_ns"] <= c["end_ns"] <= server["end_ns"], f"CLIENT span {c['name']!r} outside the SERVER span")
    return 1 + len(clients)


def main():
    mode, args = sys.argv[1], sys.argv[2:]
    if mode == "e2e":
        n = e2e(args[0], args[1], args[2], int(args[3]))
    elif mode == "span":
        n = one_span(*args)
    elif mode == "db":
        n = db(*args)
    else:
        sys.exit(f"unknown mode {mode}")
    if FAILURES:
        print("\n".join(f"FAIL {f}" for f in FAILURES))
        sys.exit(1)
    print(f"ok ({n} spans checked)")


if __name__ == "__main__":
    main()
