// The gavel console: a single page that reads and acts through gavel's admin API with
// the key the operator logs in with (sessionStorage, sent as a bearer token; no cookies).
// Everything from the API is inserted as text (textContent), never as HTML.
"use strict";
(function () {
  const KEY = "gavel.key";
  const main = document.getElementById("main");
  let timer = null; // the live page's refresh

  // h builds an element: h("td", {class: "num"}, "text", childNode…).
  function h(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const k in attrs || {}) {
      const v = attrs[k];
      if (v === undefined || v === null || v === false) continue;
      if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else if (k === "value") e.value = v;
      else e.setAttribute(k, v === true ? "" : v);
    }
    for (const c of kids.flat(Infinity)) {
      if (c === undefined || c === null || c === false) continue;
      e.appendChild(typeof c === "object" ? c : document.createTextNode(String(c)));
    }
    return e;
  }
  function clear(e) { while (e.firstChild) e.removeChild(e.firstChild); return e; }

  const usd = musd => "$" + ((musd || 0) / 1e6).toFixed((musd || 0) >= 1e7 ? 2 : 4);
  const num = n => (n || 0).toLocaleString();
  const ms = n => (n || 0) + " ms";
  const pct = bp => ((bp || 0) / 100).toFixed(1) + "%";
  const when = t => t ? new Date(t).toLocaleString() : "";

  class Unauthorized extends Error {}
  class APIError extends Error {
    constructor(status, body) {
      super((body && body.error && body.error.message) || ("HTTP " + status));
      this.status = status; this.body = body;
    }
  }

  // api calls the admin API with the session's key; a 401 ends the session.
  async function api(path, opts) {
    opts = opts || {};
    const headers = Object.assign({ Authorization: "Bearer " + sessionStorage.getItem(KEY) }, opts.headers || {});
    const res = await fetch(path, Object.assign({}, opts, { headers, cache: "no-store" }));
    let body = null;
    const text = await res.text();
    try { body = text ? JSON.parse(text) : null; } catch (_) { body = null; }
    if (res.status === 401) {
      sessionStorage.removeItem(KEY);
      location.hash = "#/login";
      throw new Unauthorized("session ended");
    }
    if (!res.ok) throw new APIError(res.status, body);
    return body;
  }

  function fail(err) {
    if (err instanceof Unauthorized) return;
    clear(main).appendChild(h("div", { class: "panel error", id: "page-error" }, String(err.message || err)));
  }

  // ---- login ----
  function login() {
    document.getElementById("top").hidden = true;
    const msg = h("p", { class: "error", id: "login-error", role: "alert" });
    const input = h("input", { id: "login-key", type: "password", autocomplete: "off", placeholder: "gv-…", required: true });
    const form = h("form", { id: "login-form" },
      h("label", {}, "Admin or viewer key", input),
      h("button", { type: "submit" }, "Log in"), msg);
    form.addEventListener("submit", async ev => {
      ev.preventDefault();
      sessionStorage.setItem(KEY, input.value.trim());
      try {
        await api("/v1/gavel/policy");
        location.hash = "#/overview";
      } catch (e) {
        sessionStorage.removeItem(KEY);
        msg.textContent = e instanceof Unauthorized ? "That key is not valid here." :
          e.status === 403 ? "That key has no admin or viewer role." : String(e.message);
        location.hash = "#/login";
      }
    });
    clear(main).appendChild(h("div", { class: "login panel" },
      h("h1", {}, "gavel console"),
      h("p", { class: "muted" }, "Log in with an admin or viewer key. It stays in this tab only."), form));
    input.focus();
  }

  // ---- overview ----
  async function overview() {
    const d = await api("/v1/gavel/traffic?window=15m");
    const times = d.series.map(p => new Date(p.t));
    const page = h("div", { id: "page-overview" },
      h("h1", {}, "Overview ", h("span", { class: "muted" }, "last 15 minutes · live")),
      h("div", { class: "cards" },
        card("Requests", num(d.requests), "ov-requests"),
        card("Errors", num(d.errors) + " (" + pct(d.error_rate_bp) + ")", "ov-errors"),
        card("Denied", num(d.denied), "ov-denied"),
        card("p50", ms(d.p50_ms), "ov-p50"),
        card("p95", ms(d.p95_ms), "ov-p95"),
        card("Cost", usd(d.cost_musd), "ov-cost")),
      h("div", { class: "grid2" },
        h("div", { class: "panel" }, h("h2", {}, "Requests and errors"),
          charts.line(times, [{ name: "requests", values: d.series.map(p => p.requests) }, { name: "errors", values: d.series.map(p => p.errors) }], v => Math.round(v)),
          charts.legend(["requests", "errors"])),
        h("div", { class: "panel" }, h("h2", {}, "p95 latency"),
          charts.line(times, [{ name: "p95 ms", values: d.series.map(p => p.p95_ms) }], v => Math.round(v) + "ms"))),
      h("div", { class: "grid2" },
        h("div", { class: "panel" }, h("h2", {}, "Cost per team"),
          charts.bars(d.teams.map(t => ({ name: t.name || "(no team)", value: t.cost_musd })), usd)),
        h("div", { class: "panel" }, h("h2", {}, "Teams"), groupTable(d.teams, "team"))),
      h("div", { class: "panel" }, h("h2", {}, "Keys"), groupTable(d.keys, "key")));
    clear(main).appendChild(page);
  }
  function card(label, value, id) {
    return h("div", { class: "card" }, h("div", { class: "label" }, label), h("div", { class: "value", id }, value));
  }
  function groupTable(rows, what) {
    return h("table", { class: "groups", "data-what": what },
      h("thead", {}, h("tr", {}, h("th", {}, what), h("th", { class: "num" }, "requests"), h("th", { class: "num" }, "errors"),
        h("th", { class: "num" }, "denied"), h("th", { class: "num" }, "cost"))),
      h("tbody", {}, rows.map(r => h("tr", {}, h("td", {}, r.name || "(none)"), h("td", { class: "num" }, num(r.requests)),
        h("td", { class: "num" }, num(r.errors)), h("td", { class: "num" }, num(r.denied)), h("td", { class: "num" }, usd(r.cost_musd))))));
  }

  // ---- routing ----
  async function routing() {
    const [plan, prov] = await Promise.all([api("/v1/gavel/plan"), api("/v1/gavel/providers")]);
    const health = {};
    for (const p of prov.data) {
      health[p.name] = { healthy: p.healthy, models: {} };
      for (const m of p.models) health[p.name].models[m.model] = m.stats;
    }
    const targetBadge = t => {
      const p = health[t.provider];
      const st = p && p.models[t.model];
      const circuit = st ? st.circuit : "closed";
      const cls = !p ? "bad" : !p.healthy || circuit === "open" ? "bad" : circuit === "half_open" ? "warn" : "ok";
      return h("span", { class: "badge " + cls, title: circuit }, t.provider + "/" + t.model + (st ? " · p95 " + st.p95_ms + "ms" : ""));
    };
    const page = h("div", { id: "page-routing" },
      h("h1", {}, "Routing ", h("span", { class: "muted" }, "revision " + plan.revision + " · plan built " + when(plan.built))),
      h("div", { class: "panel" }, h("h2", {}, "Plan per name"),
        plan.inline ? h("p", { class: "muted" }, "This policy has no plan: each request evaluates routing itself.") :
          h("table", { id: "plan-table" },
            h("thead", {}, h("tr", {}, h("th", {}, "name"), h("th", {}, "targets, in order"), h("th", {}, "why"))),
            h("tbody", {}, plan.routes.map(r => h("tr", {},
              h("td", { class: "mono" }, r.name),
              h("td", {}, r.targets.length ? r.targets.map(targetBadge) : h("span", { class: "badge bad" }, "no available target"),
                r.hedge ? h("span", { class: "badge" }, "hedge " + r.hedge.delay_ms + "ms") : null),
              h("td", {}, r.reasons.map(x => h("span", { class: "badge" }, x)),
                r.unavailable.map(u => h("div", { class: "muted" }, u.id + ": " + u.why)))))))),
      h("div", { class: "panel" }, h("h2", {}, "Providers and breakers"),
        h("table", { id: "providers-table" },
          h("thead", {}, h("tr", {}, h("th", {}, "provider / model"), h("th", {}, "health"), h("th", {}, "circuit"),
            h("th", { class: "num" }, "requests"), h("th", { class: "num" }, "errors"), h("th", { class: "num" }, "p50"),
            h("th", { class: "num" }, "p95"), h("th", { class: "num hide-narrow" }, "in flight"))),
          h("tbody", {}, prov.data.map(p => [statsRow(p.name, p.healthy, p.stats, true)].concat(
            p.models.map(m => statsRow("  " + p.name + "/" + m.model, p.healthy, m.stats, false))))))));
    clear(main).appendChild(page);
  }
  function statsRow(name, healthy, st, strong) {
    const c = st.circuit === "open" ? "bad" : st.circuit === "half_open" ? "warn" : "ok";
    return h("tr", {}, h("td", { class: "mono" }, strong ? h("b", {}, name) : name),
      h("td", {}, h("span", { class: "badge " + (healthy ? "ok" : "bad") }, healthy ? "healthy" : "unhealthy")),
      h("td", {}, h("span", { class: "badge " + c }, st.circuit)),
      h("td", { class: "num" }, num(st.requests)), h("td", { class: "num" }, num(st.errors) + " (" + pct(st.error_rate_bp) + ")"),
      h("td", { class: "num" }, ms(st.p50_ms)), h("td", { class: "num" }, ms(st.p95_ms)), h("td", { class: "num hide-narrow" }, num(st.in_flight)));
  }

  // ---- decisions ----
  const FILTERS = ["key", "team", "model", "route", "status", "deny_code", "since", "until"];
  async function decisions(params) {
    const q = new URLSearchParams();
    for (const f of FILTERS.concat(["before", "limit"])) if (params.get(f)) q.set(f, params.get(f));
    if (!q.get("limit")) q.set("limit", "50");
    const d = await api("/v1/gavel/decisions?" + q.toString());
    const form = h("form", { class: "filters", id: "decision-filters" },
      FILTERS.map(f => h("label", {}, f.replace("_", " "),
        h("input", { name: f, value: params.get(f) || "", placeholder: f === "status" ? "denied, 4xx, 429, ok…" : f === "since" || f === "until" ? "2026-12-07T15:00:00Z" : "" }))),
      h("button", { type: "submit" }, "Search"));
    form.addEventListener("submit", ev => {
      ev.preventDefault();
      const p = new URLSearchParams();
      for (const f of FILTERS) { const v = form.elements[f].value.trim(); if (v) p.set(f, v); }
      location.hash = "#/decisions?" + p.toString();
    });
    const rows = d.data.map(e => {
      const c = e.custom || {}, inp = e.input || {}, caller = inp.caller || {}, req = inp.request || {}, res = e.result || {};
      const denied = res.allow === false;
      return h("tr", { class: "click", "data-id": e.decision_id, onclick: () => { location.hash = "#/decisions/" + encodeURIComponent(e.decision_id); } },
        h("td", {}, when(e.timestamp)), h("td", { class: "mono hide-narrow" }, e.decision_id.slice(0, 12)),
        h("td", {}, caller.key_id || ""), h("td", {}, caller.team || ""), h("td", { class: "mono" }, req.model || ""),
        h("td", { class: "mono" }, c.route || ""),
        h("td", {}, h("span", { class: "badge " + (denied ? "bad" : c.status >= 400 ? "warn" : "ok") }, String(c.status) + (denied ? " denied" : ""))),
        h("td", {}, c.error || ""), h("td", { class: "num hide-narrow" }, ms(c.latency_ms)));
    });
    const more = d.next_before ? h("a", { href: "#/decisions?" + withParam(params, "before", d.next_before), id: "decisions-next" }, "Older →") : null;
    clear(main).appendChild(h("div", { id: "page-decisions" }, h("h1", {}, "Decisions"),
      h("div", { class: "panel" }, form),
      h("div", { class: "panel" },
        h("table", { id: "decisions-table" },
          h("thead", {}, h("tr", {}, ["time", "id", "key", "team", "model", "route", "status", "code", "latency"].map(
            (t, i) => h("th", { class: (i === 1 || i === 8 ? "hide-narrow " : "") + (i === 8 ? "num" : "") }, t)))),
          h("tbody", {}, rows)),
        rows.length ? null : h("p", { class: "muted" }, "No decision matches."),
        h("div", { class: "row" }, params.get("before") ? h("a", { href: "#/decisions?" + withParam(params, "before", "") }, "← Newest") : null, more))));
  }
  function withParam(params, k, v) {
    const p = new URLSearchParams(params);
    if (v) p.set(k, v); else p.delete(k);
    return p.toString();
  }

  async function explain(id) {
    const e = await api("/v1/gavel/decisions/" + encodeURIComponent(id));
    const c = e.custom || {}, inp = e.input || {}, res = e.result || {}, caller = inp.caller || {}, req = inp.request || {};
    const denied = res.allow === false;
    const kv = pairs => h("dl", { class: "kv" }, pairs.filter(p => p[1] !== undefined && p[1] !== "").map(p => [h("dt", {}, p[0]), h("dd", {}, p[1])]));
    const standing = [];
    for (const [name, b] of Object.entries(inp.spend || {})) {
      const used = (b.spent_musd || 0) + (b.reserved_musd || 0);
      const share = b.limit_musd ? Math.min(1, used / b.limit_musd) : 0;
      standing.push(h("tr", {}, h("td", {}, "budget " + name), h("td", {}, usd(b.spent_musd) + " spent + " + usd(b.reserved_musd) + " reserved of " + usd(b.limit_musd)),
        h("td", {}, h("div", { class: "bar" + (share > .9 ? " bad" : share > .7 ? " warn" : "") }, progress(share)))));
    }
    for (const [scope, r] of Object.entries(inp.rate || {})) {
      standing.push(h("tr", {}, h("td", {}, "rate " + scope), h("td", {}, num(r.requests) + " requests, " + num(r.tokens) + " tokens this minute"), h("td", {})));
    }
    const reasons = Array.isArray(res.reasons) ? res.reasons : Object.keys(res.reasons || {});
    clear(main).appendChild(h("div", { id: "page-explain" },
      h("h1", {}, "Decision ", h("span", { class: "mono" }, e.decision_id)),
      h("p", {}, h("a", { href: "#/decisions" }, "← Decisions")),
      h("div", { class: "grid2" },
        h("div", { class: "panel" }, h("h2", {}, denied ? "Denied" : "Allowed"),
          kv([["outcome", h("span", { class: "badge " + (denied ? "bad" : c.status >= 400 ? "warn" : "ok"), id: "explain-outcome" }, (denied ? "denied " : "") + c.status)],
            ["deny", res.deny ? (res.deny.code || "") + (res.deny.message ? ": " + res.deny.message : "") : ""],
            ["error", c.error], ["route", c.route], ["substituted", c.substituted],
            ["targets", (res.targets || []).map(t => h("span", { class: "badge" }, t.provider + "/" + t.model))],
            ["experiment", res.ab ? res.ab.experiment + " / " + res.ab.arm : ""],
            ["latency", ms(c.latency_ms)], ["cost", c.cost_musd !== undefined ? usd(c.cost_musd) : ""],
            ["tokens", c.usage ? c.usage.input_tokens + " in, " + c.usage.output_tokens + " out" : ""],
            ["revision", (e.bundles && e.bundles.gavel && e.bundles.gavel.revision) || ""], ["time", when(e.timestamp)]])),
        h("div", { class: "panel" }, h("h2", {}, "Rules that fired"),
          h("ul", { id: "explain-reasons" }, reasons.map(r => h("li", { class: "mono" }, r))),
          res.remediation ? [h("h2", {}, "Remediation"), h("pre", {}, JSON.stringify(res.remediation, null, 2))] : null)),
      h("div", { class: "grid2" },
        h("div", { class: "panel" }, h("h2", {}, "Caller and request"),
          kv([["key", caller.key_id], ["user", caller.user], ["team", caller.team], ["project", caller.project], ["tier", caller.tier],
            ["model asked", req.model], ["endpoint", req.endpoint], ["stream", req.stream ? "yes" : ""],
            ["est. input tokens", req.est_input_tokens], ["max tokens", req.max_tokens],
            ["PII found", Object.keys(inp.pii || {}).join(", ")]])),
        h("div", { class: "panel" }, h("h2", {}, "Budget and rate standing it saw"),
          standing.length ? h("table", {}, h("tbody", {}, standing)) : h("p", { class: "muted" }, "No budget or rate limit applied to this caller."))),
      h("div", { class: "panel" }, h("h2", {}, "Event"), h("pre", { id: "explain-json" }, JSON.stringify(e, null, 2)))));
  }
  function progress(share) {
    const sp = h("span");
    sp.style.width = (share * 100).toFixed(1) + "%";
    return sp;
  }

  // ---- spend ----
  async function spend() {
    const [b, t] = await Promise.all([api("/v1/gavel/budgets").catch(e => ({ error: e })), api("/v1/gavel/traffic?window=1h")]);
    const times = t.series.map(p => new Date(p.t));
    const teams = t.teams.filter(x => x.cost_musd > 0).slice(0, 6).map(x => x.name);
    const cum = name => { let acc = 0; return t.series.map(p => (acc += ((p.cost_by_team_musd || {})[name] || 0))); };
    const page = h("div", { id: "page-spend" }, h("h1", {}, "Spend and budgets"),
      h("div", { class: "panel" }, h("h2", {}, "Cumulative cost per team, last hour"),
        charts.line(times, teams.map(n => ({ name: n || "(no team)", values: cum(n) })), usd), charts.legend(teams.map(n => n || "(no team)"))),
      h("div", { class: "grid2" },
        h("div", { class: "panel" }, h("h2", {}, "Cost per key, last hour"),
          charts.bars(t.keys.map(k => ({ name: k.name || "(none)", value: k.cost_musd })), usd)),
        h("div", { class: "panel" }, h("h2", {}, "Cost per team, last hour"),
          charts.bars(t.teams.map(k => ({ name: k.name || "(none)", value: k.cost_musd })), usd))),
      h("div", { class: "panel" }, h("h2", {}, "Budgets, current period"),
        b.error ? h("p", { class: "muted" }, String(b.error.message)) :
          b.data.length ? h("table", { id: "budgets-table" },
            h("thead", {}, h("tr", {}, ["budget", "scope", "owner", "period", "spent", "reserved", "limit", "remaining", ""].map(x => h("th", {}, x)))),
            h("tbody", {}, b.data.map(s => {
              const share = s.limit_micro_usd ? Math.min(1, (s.spent_micro_usd + s.reserved_micro_usd) / s.limit_micro_usd) : 0;
              const soft = (s.soft_bp || 10000) / 10000;
              return h("tr", {}, h("td", {}, s.name, s.budget.hard ? "" : h("span", { class: "badge" }, "soft")), h("td", {}, s.budget.scope),
                h("td", { class: "mono" }, s.budget.id || "(all)"), h("td", {}, s.budget.period + " to " + when(s.period_end)),
                h("td", { class: "num" }, usd(s.spent_micro_usd)), h("td", { class: "num" }, usd(s.reserved_micro_usd)),
                h("td", { class: "num" }, usd(s.limit_micro_usd)), h("td", { class: "num" }, usd(s.remaining_micro_usd)),
                h("td", {}, h("div", { class: "bar" + (share >= 1 ? " bad" : share >= soft ? " warn" : "") }, progress(share))));
            }))) : h("p", { class: "muted" }, "The active bundle defines no budget (data.gavel.budgets), or no caller has used one yet.")));
    clear(main).appendChild(page);
  }

  // ---- keys ----
  async function keys() {
    let list;
    try { list = await api("/v1/gavel/keys"); } catch (e) {
      if (e instanceof APIError && e.status === 404) {
        clear(main).appendChild(h("div", { id: "page-keys", class: "panel" }, h("h1", {}, "Keys"), h("p", { class: "muted" }, "This gateway has no key management API.")));
        return;
      }
      throw e;
    }
    const out = h("div", { id: "key-result", role: "status" });
    const field = (name, label, attrs) => h("label", {}, label, h("input", Object.assign({ name }, attrs || {})));
    const form = h("form", { class: "filters", id: "key-form" },
      field("name", "name", { required: true }), field("team", "team"), field("user", "user"), field("project", "project"),
      h("label", {}, "role", h("select", { name: "role" }, h("option", { value: "" }, "none (API calls)"), h("option", { value: "viewer" }, "viewer"), h("option", { value: "admin" }, "admin"))),
      field("models", "allowed models (comma-separated)"), field("rpm", "rpm", { type: "number", min: 0 }), field("tpm", "tpm", { type: "number", min: 0 }),
      field("budget_usd", "budget $", { type: "number", min: 0, step: "0.01" }),
      h("label", {}, "budget period", h("select", { name: "budget_period" }, h("option", { value: "day" }, "day"), h("option", { value: "month" }, "month"))),
      field("expires_at", "expires (RFC 3339)", { placeholder: "2027-01-01T00:00:00Z" }),
      h("button", { type: "submit" }, "Create key"));
    form.addEventListener("submit", async ev => {
      ev.preventDefault();
      const f = form.elements, body = { name: f.name.value.trim() };
      for (const k of ["team", "user", "project", "role", "expires_at"]) if (f[k].value.trim()) body[k] = f[k].value.trim();
      if (f.models.value.trim()) body.models = f.models.value.split(",").map(s => s.trim()).filter(Boolean);
      for (const k of ["rpm", "tpm"]) if (f[k].value) body[k] = Number(f[k].value);
      if (f.budget_usd.value) { body.budget_musd = Math.round(Number(f.budget_usd.value) * 1e6); body.budget_period = f.budget_period.value; }
      try {
        const k = await api("/v1/gavel/keys", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
        await keys();
        showSecret(k.id, k.secret, "created");
      } catch (e) { if (!(e instanceof Unauthorized)) clear(out).appendChild(h("p", { class: "error" }, e.message)); }
    });
    const rows = (list.data || []).map(k => {
      const id = k.id || k.key_id;
      const state = k.status || (k.revoked_at ? "revoked" : "active");
      const live = state === "active";
      return h("tr", { "data-key": id },
        h("td", { class: "mono" }, id), h("td", {}, k.name || ""), h("td", {}, k.team || ""), h("td", {}, k.user || ""),
        h("td", {}, k.role || ""), h("td", {}, k.expires_at ? when(k.expires_at) : ""),
        h("td", {}, h("span", { class: "badge " + (live ? "ok" : "bad"), "data-state": state }, state),
          k.grace_until ? h("span", { class: "badge warn" }, "old secret until " + when(k.grace_until)) : null,
          k.bootstrap ? h("span", { class: "badge" }, "bootstrap") : null),
        h("td", {}, live ? h("div", { class: "row" },
          h("button", { type: "button", class: "quiet rotate", onclick: () => rotate(id) }, "Rotate"),
          h("button", { type: "button", class: "danger revoke", onclick: ev => revoke(id, ev.target) }, "Revoke")) : null));
    });
    clear(main).appendChild(h("div", { id: "page-keys" }, h("h1", {}, "Keys"),
      h("div", { class: "panel" }, h("h2", {}, "New key"), form, out),
      h("div", { class: "panel" }, h("h2", {}, "Keys"),
        h("label", { class: "row" }, "On rotate, the old secret keeps working for (seconds)", h("input", { id: "rotate-grace", type: "number", min: 0, value: "3600" })),
        h("table", { id: "keys-table" }, h("thead", {}, h("tr", {}, ["id", "name", "team", "user", "role", "expires", "state", ""].map(x => h("th", {}, x)))),
          h("tbody", {}, rows)))));
  }
  function showSecret(id, secret, what) {
    const out = document.getElementById("key-result");
    clear(out).appendChild(h("div", { class: "secret" },
      h("p", {}, "Key ", h("b", { class: "mono" }, id), " " + what + ". Copy the secret now: it is shown only once."),
      h("code", { id: "key-secret" }, secret)));
  }
  // revoke asks for a second click: requests with the key are refused at once.
  async function revoke(id, button) {
    if (!button.dataset.armed) {
      button.dataset.armed = "1";
      button.textContent = "Click again to revoke";
      return;
    }
    try { await api("/v1/gavel/keys/" + encodeURIComponent(id), { method: "DELETE" }); await keys(); } catch (e) { fail(e); }
  }
  async function rotate(id) {
    const grace = document.getElementById("rotate-grace").value;
    try {
      const k = await api("/v1/gavel/keys/" + encodeURIComponent(id) + "/rotate",
        { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ grace_s: Number(grace) || 0 }) });
      await keys();
      showSecret(k.id || id, k.secret, "rotated");
    } catch (e) { fail(e); }
  }

  // ---- policy ----
  async function policyPage() {
    const p = await api("/v1/gavel/policy");
    const out = h("div", { id: "diff-result" });
    const file = h("input", { type: "file", id: "bundle-file", accept: ".tar.gz,.tgz,application/gzip" });
    const limit = h("input", { type: "number", id: "diff-limit", min: 1, max: 20000, value: "1000" });
    const form = h("form", { class: "filters", id: "diff-form" }, h("label", {}, "candidate bundle (.tar.gz)", file),
      h("label", {}, "recent decisions to replay", limit), h("button", { type: "submit" }, "Replay against candidate"));
    form.addEventListener("submit", async ev => {
      ev.preventDefault();
      if (!file.files.length) { clear(out).appendChild(h("p", { class: "error" }, "Choose a bundle file first.")); return; }
      clear(out).appendChild(h("p", { class: "muted" }, "Replaying…"));
      try {
        const im = await api("/v1/gavel/policy/diff?limit=" + encodeURIComponent(limit.value || "1000"),
          { method: "POST", headers: { "Content-Type": "application/gzip" }, body: file.files[0] });
        clear(out).appendChild(impact(im));
      } catch (e) { if (!(e instanceof Unauthorized)) clear(out).appendChild(h("p", { class: "error", id: "diff-error" }, e.message)); }
    });
    const st = p.status || {};
    const errs = (st.errors || []).map(e => h("li", {}, (e.code ? e.code + ": " : "") + (e.message || JSON.stringify(e))));
    clear(main).appendChild(h("div", { id: "page-policy" }, h("h1", {}, "Policy"),
      h("div", { class: "grid2" },
        h("div", { class: "panel" }, h("h2", {}, "Active revision"),
          p.active ? h("dl", { class: "kv" }, h("dt", {}, "revision"), h("dd", { class: "mono", id: "active-revision" }, p.active.revision),
            h("dt", {}, "source"), h("dd", { class: "mono" }, p.active.source), h("dt", {}, "activated"), h("dd", {}, when(p.active.activated))) :
            h("p", { class: "error" }, "No bundle is active."),
          p.server ? [h("h2", {}, "Bundle server"), h("dl", { class: "kv" },
            h("dt", {}, "url"), h("dd", { class: "mono" }, p.server.url), h("dt", {}, "stale"), h("dd", {}, p.server.stale ? "yes" : "no"),
            h("dt", {}, "last error"), h("dd", { class: p.server.last_error ? "error" : "" }, p.server.last_error || "none"))] : null,
          errs.length ? [h("h2", {}, "Last errors"), h("ul", {}, errs)] : null),
        h("div", { class: "panel" }, h("h2", {}, "Activation history"),
          h("table", { id: "history-table" }, h("thead", {}, h("tr", {}, h("th", {}, "revision"), h("th", {}, "source"), h("th", {}, "activated"))),
            h("tbody", {}, p.history.map(a => h("tr", {}, h("td", { class: "mono" }, a.revision), h("td", { class: "mono" }, a.source), h("td", {}, when(a.activated)))))))),
      h("div", { class: "panel" }, h("h2", {}, "Try a candidate bundle"),
        h("p", { class: "muted" }, "The candidate re-decides the most recent logged decisions; nothing is activated."), form, out)));
  }
  function impact(im) {
    const groups = im.groups || {};
    return h("div", { id: "impact" },
      h("div", { class: "cards" }, card("Replayed", num(im.replayed), "im-replayed"), card("Changed", num(im.changed), "im-changed"),
        card("Newly denied", num(im.newly_denied), "im-denied"), card("Newly allowed", num(im.newly_allowed), "im-allowed"),
        card("Rerouted", num(im.rerouted), "im-rerouted"), card("Spend", usd(im.spend_before_musd) + " → " + usd(im.spend_after_musd), "im-spend")),
      (im.moves || []).length ? [h("h2", {}, "Route moves"), h("table", { id: "moves-table" },
        h("thead", {}, h("tr", {}, ["alias", "from", "to", "requests"].map(x => h("th", {}, x)))),
        h("tbody", {}, im.moves.map(m => h("tr", {}, h("td", { class: "mono" }, m.alias), h("td", { class: "mono" }, m.from), h("td", { class: "mono" }, m.to), h("td", { class: "num" }, num(m.requests))))))] : null,
      Object.keys(groups).map(g => (groups[g] || []).length ? [h("h2", {}, "By " + g.replace("_", " ")), h("table", {},
        h("thead", {}, h("tr", {}, [g, "requests", "changed", "newly denied", "newly allowed", "spend before", "after"].map(x => h("th", {}, x)))),
        h("tbody", {}, groups[g].map(r => h("tr", {}, h("td", { class: "mono" }, r.name || "(none)"), h("td", { class: "num" }, num(r.requests)),
          h("td", { class: "num" }, num(r.changed)), h("td", { class: "num" }, num(r.newly_denied)), h("td", { class: "num" }, num(r.newly_allowed)),
          h("td", { class: "num" }, usd(r.spend_before_musd)), h("td", { class: "num" }, usd(r.spend_after_musd))))))] : null),
      (im.changes || []).length ? [h("h2", {}, "Changed decisions"), h("table", { id: "changes-table" },
        h("thead", {}, h("tr", {}, ["decision", "now", "with the candidate"].map(x => h("th", {}, x)))),
        h("tbody", {}, im.changes.slice(0, 200).map(c => h("tr", {}, h("td", { class: "mono" }, h("a", { href: "#/decisions/" + encodeURIComponent(c.decision_id) }, c.decision_id.slice(0, 12))),
          h("td", { class: "mono" }, outcome(c.old)), h("td", { class: "mono" }, outcome(c.new))))))] : null);
  }
  function outcome(o) {
    if (!o) return "";
    if (o.error) return "error (" + o.error + ")";
    return o.allow ? "allow " + (o.targets || []).join(", ") : "deny " + (o.deny_code || "");
  }

  // ---- experiments ----
  async function experiments() {
    const [x, plan] = await Promise.all([api("/v1/gavel/experiments"), api("/v1/gavel/plan").catch(() => ({ experiments: {} }))]);
    const names = Object.keys(plan.experiments || {});
    clear(main).appendChild(h("div", { id: "page-experiments" }, h("h1", {}, "Experiments and shadows"),
      h("div", { class: "panel" }, h("h2", {}, "Arms (recent decisions)"),
        x.arms.length ? [h("table", { id: "arms-table" },
          h("thead", {}, h("tr", {}, ["experiment", "arm", "requests", "errors", "mean latency", "p95", "cost", "shadows"].map(t => h("th", {}, t)))),
          h("tbody", {}, x.arms.map(a => h("tr", {}, h("td", {}, a.experiment), h("td", {}, a.arm), h("td", { class: "num" }, num(a.requests)),
            h("td", { class: "num" }, num(a.errors)), h("td", { class: "num" }, a.mean_latency_ms.toFixed(0) + " ms"), h("td", { class: "num" }, ms(a.p95_ms)),
            h("td", { class: "num" }, usd(a.cost_musd)), h("td", { class: "num" }, num(a.shadows)))))),
        h("div", { class: "grid2" },
          h("div", {}, h("h2", {}, "p95 per arm"), charts.bars(x.arms.map(a => ({ name: a.experiment + "/" + a.arm, value: a.p95_ms })), v => Math.round(v) + "ms")),
          h("div", {}, h("h2", {}, "Cost per arm"), charts.bars(x.arms.map(a => ({ name: a.experiment + "/" + a.arm, value: a.cost_musd })), usd)))] :
          h("p", { class: "muted" }, names.length ? "Experiments in the plan (" + names.join(", ") + ") have no recent traffic." : "The active bundle runs no experiment (data.gavel.ab_experiments).")),
      h("div", { class: "panel" }, h("h2", {}, "Shadow targets (since start)"),
        x.shadows.length ? h("table", { id: "shadows-table" },
          h("thead", {}, h("tr", {}, ["experiment", "target", "outcomes", "mean latency", "similarity", "tokens", "cost"].map(t => h("th", {}, t)))),
          h("tbody", {}, x.shadows.map(s => h("tr", {}, h("td", {}, s.experiment), h("td", { class: "mono" }, s.provider + "/" + s.model),
            h("td", {}, Object.entries(s.outcomes).map(([k, v]) => h("span", { class: "badge" + (k === "ok" ? " ok" : "") }, k + " " + v))),
            h("td", { class: "num" }, (s.mean_latency_s * 1000).toFixed(0) + " ms"),
            h("td", { class: "num" }, s.similarity_n ? s.mean_similarity.toFixed(2) + " (n=" + s.similarity_n + ")" : "–"),
            h("td", { class: "num" }, num(s.input_tokens) + " / " + num(s.output_tokens)), h("td", { class: "num" }, usd(s.cost_musd)))))) :
          h("p", { class: "muted" }, "No shadow copies yet."))));
  }

  // ---- router ----
  const pages = { overview: [overview, 5000], routing: [routing, 5000], decisions: [decisions, 0], spend: [spend, 10000],
    keys: [keys, 0], policy: [policyPage, 0], experiments: [experiments, 10000] };
  async function route() {
    clearInterval(timer);
    timer = null;
    const hash = location.hash.replace(/^#\/?/, "");
    const [path, query] = hash.split("?");
    const parts = path.split("/");
    if (!sessionStorage.getItem(KEY) || parts[0] === "login") {
      if (parts[0] !== "login") { location.hash = "#/login"; return; }
      return login();
    }
    document.getElementById("top").hidden = false;
    let name = parts[0] || "overview";
    if (!pages[name]) name = "overview";
    for (const a of document.querySelectorAll("#nav a")) a.classList.toggle("active", a.dataset.page === name);
    const [fn, every] = pages[name];
    const run = () => name === "decisions" && parts[1] ? explain(decodeURIComponent(parts[1])) : fn(new URLSearchParams(query || ""));
    try { await run(); } catch (e) { fail(e); return; }
    document.body.dataset.page = name; // tests wait for this: the page has rendered
    if (every) timer = setInterval(() => run().catch(fail), every);
  }
  document.getElementById("logout").addEventListener("click", () => { sessionStorage.removeItem(KEY); location.hash = "#/login"; });
  window.addEventListener("hashchange", route);
  route();
})();
