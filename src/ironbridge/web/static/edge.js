/* ironbridge console: edge agents and Sparkplug B edge nodes. Every figure comes from
   /api/v1/edge (session cookie); the list is pushed by Server-Sent Events. */
(function () {
  "use strict";
  const IB = window.IB || {};
  const M = IB.t || {};
  const t = (k) => (k in M ? M[k] : k);
  const $ = (sel, root) => (root || document).querySelector(sel);
  const esc = (v) => String(v == null ? "" : v).replace(/[&<>"']/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
  const nf = new Intl.NumberFormat(IB.lang === "zh" ? "zh-CN" : "en-US", {maximumFractionDigits: 1});
  const num = (v) => (v == null || Number.isNaN(v) ? "–" : nf.format(v));
  const mb = (v) => (v == null ? "–" : nf.format(v / 1e6) + " MB");
  const ready = () => { document.body.dataset.ready = "1"; };
  let selected = null;
  let agents = [];
  let policy = "";

  async function api(path, opts) {
    const o = Object.assign({credentials: "same-origin", headers: {}}, opts || {});
    if (o.json !== undefined) { o.body = JSON.stringify(o.json); o.headers["Content-Type"] = "application/json"; o.method = o.method || "POST"; }
    const r = await fetch(path, o);
    if (r.status === 401) { location.href = "/login?next=" + encodeURIComponent(location.pathname); throw new Error("401"); }
    const text = await r.text();
    const body = text ? JSON.parse(text) : null;
    if (!r.ok) { const e = new Error((body && (body.field ? body.field + ": " : "") + (body.error || body.detail)) || "HTTP " + r.status); e.status = r.status; throw e; }
    return body;
  }

  function ago(ms) {
    if (!ms) return t("common.never");
    const s = Math.max(0, (Date.now() - ms) / 1000);
    return (s < 90 ? nf.format(s) + " s " : nf.format(s / 60) + " min ") + t("common.ago");
  }

  function row(a) {
    const s = a.status || {};
    const state = `<span class="pill ${esc(a.state)}">${esc(t("edge.state_" + a.state))}</span>`;
    const link = `<span class="pill ${a.online ? "online" : "offline"}">${esc(t(a.online ? "edge.up" : "edge.down"))}</span>`;
    const buffer = a.kind === "agent" ? `${num(s.buffer_points)} · ${mb(s.buffer_bytes)}` : "–";
    const dropped = a.kind === "agent" ? num((s.dropped_points || 0) + a.dropped_points) : num(a.dropped_points);
    let config = "–";
    if (a.kind === "agent") {
      const cls = a.in_sync ? "edge-sync" : "edge-unsync";
      config = `<span class="${cls}">${esc(t("edge.running"))} ${num(a.reported_version)} / ${esc(t("edge.desired"))} ${a.desired_version == null ? "–" : num(a.desired_version)}</span>`;
      if (s.config_error) config += `<br><span class="error">${esc(s.config_error)}</span>`;
    }
    let actions = "";
    if (a.state !== "approved") actions += `<button class="btn" data-approve="${esc(a.node_id)}">${esc(t("edge.approve"))}</button> `;
    if (a.state === "pending") actions += `<button class="btn ghost" data-reject="${esc(a.node_id)}">${esc(t("edge.reject"))}</button>`;
    if (a.kind === "agent" && a.state === "approved") actions += `<button class="btn" data-manage="${esc(a.node_id)}">${esc(t("edge.manage"))}</button>`;
    return `<tr class="${a.node_id === selected ? "sel" : ""}"><td><code>${esc(a.node_id)}</code></td><td>${esc(a.group_id)}</td><td>${esc(t("edge.kind_" + a.kind))}</td><td>${state}</td><td>${link}</td><td>${esc(s.health || "–")}</td><td>${buffer}</td><td>${dropped}</td><td>${config}</td><td>${esc(ago(a.last_seen_ms))}</td><td>${actions}</td></tr>`;
  }

  function render(data) {
    agents = data.agents;
    policy = data.policy || policy;
    $("#edge-policy").textContent = "· " + t("edge.policy") + ": " + t("edge.policy_" + policy);
    $("#edge-body").innerHTML = agents.length ? agents.map(row).join("") : `<tr><td colspan="11" class="muted">${esc(t("common.none"))}</td></tr>`;
  }

  async function versions(node) {
    const data = await api("/api/v1/edge/agents/" + encodeURIComponent(node) + "/configs");
    $("#edge-versions").innerHTML = data.versions.map((v) => {
      const current = v.version === data.desired_version;
      const btn = current ? `<span class="muted">${esc(t("edge.desired"))}</span>` : `<button class="btn ghost" data-rollback="${v.version}">${esc(t("edge.rollback"))}</button>`;
      return `<tr><td>${num(v.version)}</td><td>${esc(v.comment)}</td><td>${esc(v.created_by)}</td><td>${esc(new Date(v.created_at).toLocaleString())}</td><td>${btn}</td></tr>`;
    }).join("") || `<tr><td colspan="5" class="muted">${esc(t("common.none"))}</td></tr>`;
    if (data.versions.length) $("#edge-config").value = JSON.stringify(data.versions[0].config, null, 2);
  }

  function manage(node) {
    selected = node;
    $("#edge-detail").hidden = false;
    $("#edge-detail-node").textContent = node;
    $("#edge-result").textContent = "";
    render({policy, agents});
    return versions(node);
  }

  function live() {
    const es = new EventSource("/api/v1/edge/agents/stream");
    es.addEventListener("agents", (e) => { render(JSON.parse(e.data)); ready(); });
    es.onopen = () => { const p = $("#edge-live"); p.className = "pill online"; p.textContent = t("common.live"); };
    es.onerror = () => { const p = $("#edge-live"); p.className = "pill offline"; p.textContent = t("common.reconnecting"); };
  }

  async function page() {
    render(await api("/api/v1/edge/agents"));
    ready();
    live();
    $("#edge-body").addEventListener("click", async (e) => {
      const b = e.target.closest("button");
      if (!b) return;
      try {
        if (b.dataset.approve) await api("/api/v1/edge/agents/" + encodeURIComponent(b.dataset.approve) + "/approve", {json: {}});
        if (b.dataset.reject) await api("/api/v1/edge/agents/" + encodeURIComponent(b.dataset.reject) + "/reject", {method: "POST"});
        if (b.dataset.manage) await manage(b.dataset.manage);
        if (b.dataset.approve || b.dataset.reject) render(await api("/api/v1/edge/agents"));
      } catch (ex) { alert(ex.message); }
    });
    $("#edge-push").addEventListener("submit", async (e) => {
      e.preventDefault();
      const out = $("#edge-result");
      let config;
      try { config = JSON.parse($("#edge-config").value); } catch (ex) { out.textContent = t("edge.not_json") + ": " + ex.message; out.className = "error"; return; }
      try {
        const v = await api("/api/v1/edge/agents/" + encodeURIComponent(selected) + "/configs", {json: {config, comment: $("#edge-comment").value}});
        out.className = "muted";
        out.textContent = t("edge.pushed") + " " + v.version + (v.sent ? "" : " · " + t("edge.at_next_birth"));
        await versions(selected);
      } catch (ex) { out.className = "error"; out.textContent = ex.message; }
    });
    $("#edge-versions").addEventListener("click", async (e) => {
      const b = e.target.closest("button[data-rollback]");
      if (!b) return;
      const out = $("#edge-result");
      try {
        const v = await api("/api/v1/edge/agents/" + encodeURIComponent(selected) + "/rollback", {json: {version: Number(b.dataset.rollback)}});
        out.className = "muted";
        out.textContent = t("edge.rolled_back") + " " + v.version;
        await versions(selected);
      } catch (ex) { out.className = "error"; out.textContent = ex.message; }
    });
  }

  document.addEventListener("DOMContentLoaded", () => {
    if (IB.page !== "edge") return;
    page().catch((ex) => {
      if (ex && ex.status === 401) return;
      const m = $("main"); if (m) m.insertAdjacentHTML("afterbegin", `<p class="error" role="alert">${esc(t("common.error"))}: ${esc(ex && ex.message)}</p>`);
      document.body.dataset.error = "1";
    });
  });
})();
