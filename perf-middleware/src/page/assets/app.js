// The /perf page: polls `data` every 2 s while the tab is visible and draws with DOM and SVG
// only (no external code, nothing inline: the page's CSP allows only this script).
"use strict";
(function () {
  const base = document.body.dataset.base;
  const SVG = "http://www.w3.org/2000/svg";
  const POLL_MS = 2000;
  const SLOW_KEEP = 100;
  // `#route=/template` selects a route (the link of its view).
  const fromHash = () => (location.hash.startsWith("#route=") ? decodeURIComponent(location.hash.slice(7)) : null);
  let since = 0, slow = [], selected = fromHash(), timer = null, last = null, inflight = false;

  function el(tag, attrs, text) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function svg(tag, attrs) {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    return e;
  }
  const fmt = (x) => (x === null || x === undefined ? "–" : Number(x).toFixed(x >= 100 ? 0 : x >= 10 ? 1 : 2));
  const pct = (x) => (x === null || x === undefined ? "–" : (100 * x).toFixed(1) + " %");

  // Polylines on one scale: `series` is a list of [values, class].
  function lines(series, w, h, cls) {
    const s = svg("svg", { width: w, height: h, viewBox: `0 0 ${w} ${h}`, class: cls });
    const max = Math.max(1e-9, ...series.flatMap(([v]) => v.filter((x) => x !== null)));
    for (const [values, lineCls] of series) {
      const step = w / Math.max(1, values.length - 1);
      const pts = values.map((v, i) => `${(i * step).toFixed(1)},${(h - 2 - ((v || 0) / max) * (h - 4)).toFixed(1)}`);
      s.appendChild(svg("polyline", { class: lineCls, points: pts.join(" ") }));
    }
    return [s, max];
  }
  const line = (values, w, h, cls) => lines([[values, "line"]], w, h, cls);

  function phaseBar(r, phases) {
    const w = 160, h = 12;
    const s = svg("svg", { width: w, height: h, class: "phases" });
    const total = Math.max(r.duration_ms, 1e-9);
    let x = 0, known = 0;
    const add = (ms, cls, name) => {
      const width = Math.max(0, (ms / total) * w);
      const rect = svg("rect", { x: x.toFixed(1), y: 0, width: width.toFixed(1), height: h, class: cls });
      const t = svg("title", {});
      t.textContent = `${name} ${fmt(ms)} ms`;
      rect.appendChild(t);
      s.appendChild(rect);
      x += width;
    };
    phases.forEach((name, i) => {
      const ms = r.phases[i];
      if (ms !== null && name !== "app") { add(ms, name, name); known += ms; }
    });
    const app = r.phases[phases.indexOf("app")];
    add(app !== null ? app : Math.max(0, total - known), app !== null ? "app" : "rest", app !== null ? "app" : "app (rest)");
    return s;
  }

  function traceCell(id, template) {
    const td = el("td", { class: "trace" });
    if (!id) { td.textContent = "–"; return td; }
    if (template) {
      const url = template.includes("{trace_id}") ? template.replace("{trace_id}", id) : template + id;
      const a = el("a", { href: url, target: "_blank", rel: "noopener noreferrer" }, id);
      td.appendChild(a);
    } else td.textContent = id;
    return td;
  }

  function requestsTable(table, rows, d) {
    const head = el("tr");
    for (const h of ["route", "age s", "ms", "headers ms", "status", "outcome", "trace id", "phases"]) head.appendChild(el("th", {}, h));
    table.tHead.replaceChildren(head);
    const body = table.tBodies[0];
    body.replaceChildren();
    if (rows.length === 0) {
      const tr = el("tr"); tr.appendChild(el("td", { colspan: 8, class: "empty" }, "none yet")); body.appendChild(tr);
    }
    for (const r of rows) {
      const tr = el("tr", { class: "request" });
      tr.appendChild(el("td", {}, `${r.method} ${r.route}`));
      tr.appendChild(el("td", {}, fmt(r.age_s)));
      tr.appendChild(el("td", {}, fmt(r.duration_ms)));
      tr.appendChild(el("td", {}, fmt(r.time_to_headers_ms)));
      tr.appendChild(el("td", r.status >= 500 ? { class: "bad" } : {}, r.status ?? "–"));
      tr.appendChild(el("td", r.outcome !== "completed" ? { class: "bad" } : {}, r.outcome));
      tr.appendChild(traceCell(r.trace_id, d.trace_url));
      const ph = el("td"); ph.appendChild(phaseBar(r, d.phases)); tr.appendChild(ph);
      body.appendChild(tr);
    }
  }

  // Per-route columns a card offers: `"routes": {"/template": {"hit_ratio": 0.8}}`.
  function routeExtras(cards) {
    const extras = {};
    for (const [name, v] of Object.entries(cards)) {
      if (v && typeof v === "object" && v.routes && typeof v.routes === "object" && !Array.isArray(v.routes)) {
        for (const [route, cols] of Object.entries(v.routes)) {
          for (const [k, x] of Object.entries(cols || {})) {
            if (typeof x !== "object") (extras[route] ||= []).push(`${name} ${k} ${typeof x === "number" ? fmt(x) : x}`);
          }
        }
      }
    }
    return extras;
  }

  function routes(d) {
    const body = document.querySelector("#routes tbody");
    const extras = routeExtras(d.cards);
    document.getElementById("extra-col").textContent = Object.keys(extras).length ? "cards" : "";
    body.replaceChildren();
    for (const r of d.routes) {
      const tr = el("tr", { class: "route" + (r.route === selected ? " selected" : "") });
      tr.dataset.route = r.route;
      tr.appendChild(el("td", {}, r.route));
      tr.appendChild(el("td", {}, fmt(r.rate)));
      tr.appendChild(el("td", r.error_ratio > 0 ? { class: "bad" } : {}, pct(r.error_ratio)));
      for (const k of ["p50_ms", "p95_ms", "p99_ms", "max_ms"]) tr.appendChild(el("td", {}, fmt(r[k])));
      // The share of hits among the responses a cache saw (`Cache-Status`); — when none did.
      tr.appendChild(el("td", r.cache_hit_ratio === null || r.cache_hit_ratio === undefined
        ? { class: "cache-hit none", title: "no cache saw this route in the window" }
        : { class: "cache-hit", title: `${r.cache_seen} responses with Cache-Status` },
        r.cache_hit_ratio === null || r.cache_hit_ratio === undefined ? "—" : pct(r.cache_hit_ratio)));
      const sp = el("td"); sp.appendChild(line(r.rate_series, 120, 20, "spark")[0]); tr.appendChild(sp);
      tr.appendChild(el("td", {}, (extras[r.route] || []).join(", ")));
      tr.addEventListener("click", () => { location.hash = "route=" + encodeURIComponent(r.route); });
      body.appendChild(tr);
    }
    if (d.routes.length === 0) {
      const tr = el("tr"); tr.appendChild(el("td", { colspan: 10, class: "empty" }, "no requests yet")); body.appendChild(tr);
    }
  }

  function routeView(d) {
    const view = document.getElementById("route-view");
    const r = d.routes.find((x) => x.route === selected);
    view.hidden = !r;
    if (!r) return;
    document.getElementById("route-name").textContent = r.route;
    const span = r.p95_series.length * d.slot_s;
    const [chart, max] = lines([[r.p50_series, "p50"], [r.p95_series, "p95"], [r.p99_series, "p99"]], 600, 100, "chart");
    const label = svg("text", { x: 4, y: 12 });
    label.textContent = `p50 / p95 / p99 per ${d.slot_s} s, top ${fmt(max)} ms, last ${span} s`;
    chart.appendChild(label);
    const [rate, rmax] = line(r.rate_series, 600, 50, "chart rate");
    const rlabel = svg("text", { x: 4, y: 12 });
    rlabel.textContent = `req/s per ${d.slot_s} s, top ${fmt(rmax)}`;
    rate.appendChild(rlabel);
    document.getElementById("route-chart").replaceChildren(chart, rate);
    requestsTable(document.getElementById("route-worst"), r.worst, d);
  }

  function value(v) {
    if (Array.isArray(v)) {
      if (v.length && v.every((x) => x && typeof x === "object" && !Array.isArray(x))) {
        const cols = [...new Set(v.flatMap(Object.keys))];
        const t = el("table"), head = el("tr");
        cols.forEach((c) => head.appendChild(el("th", {}, c)));
        t.appendChild(el("thead")).appendChild(head);
        const body = t.appendChild(el("tbody"));
        for (const x of v) {
          const tr = body.appendChild(el("tr"));
          cols.forEach((c) => tr.appendChild(el("td")).appendChild(value(x[c])));
        }
        return t;
      }
      return document.createTextNode(v.map((x) => (typeof x === "object" ? JSON.stringify(x) : x)).join(", "));
    }
    if (v && typeof v === "object") {
      const t = el("table"), body = t.appendChild(el("tbody"));
      for (const [k, x] of Object.entries(v)) {
        const tr = body.appendChild(el("tr"));
        tr.appendChild(el("th", {}, k));
        tr.appendChild(el("td")).appendChild(value(x));
      }
      return t;
    }
    return document.createTextNode(typeof v === "number" ? fmt(v) : v === null || v === undefined ? "–" : String(v));
  }

  function cards(d) {
    const root = document.getElementById("cards");
    root.replaceChildren();
    for (const [name, v] of Object.entries(d.cards)) {
      const card = el("div", { class: "card", id: `card-${name}` });
      card.appendChild(el("h2", {}, name));
      // A card's per-route map goes to the routes table, not into the card.
      const shown = v && typeof v === "object" && !Array.isArray(v) && v.routes && typeof v.routes === "object"
        ? Object.fromEntries(Object.entries(v).filter(([k]) => k !== "routes")) : v;
      card.appendChild(value(shown));
      root.appendChild(card);
    }
    if (d.queries) root.appendChild(queriesCard(d.queries, d));
  }

  // A statement as plain text (no highlighting), cut to one line; the full text on hover.
  function statementCell(text) {
    return el("td", { class: "statement", title: text }, text);
  }

  // Present with the `db` feature: top fingerprints by summed time, and recent N+1 detections.
  function queriesCard(q, d) {
    const card = el("div", { class: "card wide", id: "card-queries" });
    card.appendChild(el("h2", {}, "queries"));
    card.appendChild(el("h3", {}, "top statements by summed time (since start)"));
    const top = el("table", { id: "top-fingerprints" });
    const th = el("tr");
    for (const h of ["statement", "count", "total ms", "max ms", "fingerprint"]) th.appendChild(el("th", {}, h));
    top.appendChild(el("thead")).appendChild(th);
    const tb = top.appendChild(el("tbody"));
    for (const f of q.top) {
      const tr = tb.appendChild(el("tr", { class: "fingerprint" }));
      tr.appendChild(statementCell(f.statement));
      tr.appendChild(el("td", {}, f.count));
      tr.appendChild(el("td", f.error_ms > 0 ? { title: `may overstate by up to ${fmt(f.error_ms)} ms` } : {},
        (f.error_ms > 0 ? "≤ " : "") + fmt(f.total_ms)));
      tr.appendChild(el("td", {}, fmt(f.max_ms)));
      tr.appendChild(el("td", { class: "trace" }, f.fingerprint));
    }
    if (q.top.length === 0) tb.appendChild(el("tr")).appendChild(el("td", { colspan: 5, class: "empty" }, "no queries seen"));
    card.appendChild(top);
    card.appendChild(el("h3", {}, "N+1 detections (newest first)"));
    const n1 = el("table", { id: "n-plus-one" });
    const nh = el("tr");
    for (const h of ["route", "statement", "count", "total ms", "age s", "fingerprint", "trace id"]) nh.appendChild(el("th", {}, h));
    n1.appendChild(el("thead")).appendChild(nh);
    const nb = n1.appendChild(el("tbody"));
    for (const x of q.n_plus_one) {
      const tr = nb.appendChild(el("tr", { class: "n-plus-one" }));
      tr.appendChild(el("td", {}, x.route));
      tr.appendChild(statementCell(x.statement));
      tr.appendChild(el("td", {}, x.count));
      tr.appendChild(el("td", {}, fmt(x.total_ms)));
      tr.appendChild(el("td", {}, fmt(x.age_s)));
      tr.appendChild(el("td", { class: "trace fingerprint" }, x.fingerprint));
      tr.appendChild(traceCell(x.trace_id, d.trace_url));
    }
    if (q.n_plus_one.length === 0) nb.appendChild(el("tr")).appendChild(el("td", { colspan: 7, class: "empty" }, "none detected"));
    card.appendChild(n1);
    return card;
  }

  function draw() {
    if (!last) return;
    routes(last);
    routeView(last);
    requestsTable(document.getElementById("slow"), slow, last);
    cards(last);
    const dash = document.getElementById("dashboard");
    if (last.dashboard_url) { dash.href = last.dashboard_url; dash.hidden = false; }
  }

  async function poll() {
    if (inflight) return;
    inflight = true;
    timer = null;
    const win = document.getElementById("window").value;
    try {
      const res = await fetch(`${base}/data?since=${since}&window=${win}`, { credentials: "same-origin", cache: "no-store" });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      const d = await res.json();
      slow = d.slow.concat(slow).slice(0, SLOW_KEEP);
      since = d.seq;
      last = d;
      draw();
      document.getElementById("status").textContent = `updated ${new Date().toLocaleTimeString()}`;
    } catch (e) {
      document.getElementById("status").textContent = `update failed: ${e.message}`;
    }
    inflight = false;
    schedule();
  }

  function schedule() {
    if (timer === null && document.visibilityState === "visible") timer = setTimeout(poll, POLL_MS);
  }

  window.addEventListener("hashchange", () => { selected = fromHash(); draw(); });
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") { if (timer === null) poll(); }
    else if (timer !== null) { clearTimeout(timer); timer = null; }
  });
  document.getElementById("window").addEventListener("change", () => {
    if (timer !== null) { clearTimeout(timer); timer = null; }
    poll();
  });
  poll();
})();
