/* ironbridge console: predictive maintenance. The ranking comes from
   /api/v1/predict/scores, a machine's prediction history from the stored series through
   /api/v1/telemetry/raw, the registry from /api/v1/predict/models (session cookie). The
   ranking refreshes when the fleet's live feed (SSE) reports new data, at most every 20 s. */
(function () {
  "use strict";
  const IB = window.IB || {};
  const M = IB.t || {};
  const t = (k) => (k in M ? M[k] : k);
  const $ = (sel, root) => (root || document).querySelector(sel);
  const $$ = (sel, root) => Array.from((root || document).querySelectorAll(sel));
  const esc = (v) => String(v == null ? "" : v).replace(/[&<>"']/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
  const loc = IB.lang === "zh" ? "zh-CN" : "en-US";
  const nf1 = new Intl.NumberFormat(loc, {maximumFractionDigits: 1});
  const nf2 = new Intl.NumberFormat(loc, {minimumFractionDigits: 2, maximumFractionDigits: 2});
  const num = (v, f) => (v == null || Number.isNaN(v) ? "–" : (f || nf1).format(v));
  const dtf = new Intl.DateTimeFormat(IB.lang === "zh" ? "zh-CN" : "en-GB", {dateStyle: "short", timeStyle: "short"});
  const when = (ms) => (ms == null ? "–" : dtf.format(new Date(ms)));
  const ago = (ms) => {
    const s = Math.max(0, (Date.now() - ms) / 1000);
    const txt = s < 90 ? Math.round(s) + "s" : s < 5400 ? Math.round(s / 60) + "m" : s < 172800 ? Math.round(s / 3600) + "h" : Math.round(s / 86400) + "d";
    return IB.lang === "zh" ? txt + t("common.ago") : txt + " " + t("common.ago");
  };
  const theme = {backgroundColor: "transparent", animation: false, textStyle: {color: "#c9d1d9", fontFamily: "system-ui, sans-serif"}};
  const AXIS = {axisLine: {lineStyle: {color: "#2a3441"}}, splitLine: {lineStyle: {color: "#2a3441"}}, axisLabel: {color: "#9aa7b4"}};
  const RANGES = {"1h": 3600e3, "6h": 6 * 3600e3, "24h": 86400e3, "7d": 7 * 86400e3, "30d": 30 * 86400e3};
  const MEASUREMENTS = ["health_index", "anomaly_score", "rul", "rul_lo", "rul_hi"];

  async function api(path, opts) {
    const o = Object.assign({credentials: "same-origin", headers: {}}, opts || {});
    if (o.json !== undefined) { o.body = JSON.stringify(o.json); o.headers["Content-Type"] = "application/json"; o.method = o.method || "POST"; }
    const r = await fetch(path, o);
    if (r.status === 401) { location.href = "/login?next=" + encodeURIComponent(location.pathname + location.search); throw new Error("401"); }
    const text = await r.text();
    const body = text ? JSON.parse(text) : null;
    if (!r.ok) { const e = new Error((body && (body.detail || body.error)) || "HTTP " + r.status); e.status = r.status; e.body = body; throw e; }
    return body;
  }
  const chart = IB.chart; /* console.js: an ECharts instance that follows its box */
  const healthClass = (h) => (h == null ? "" : h < 40 ? "bad" : h < 75 ? "warn" : "ok");

  async function predictPage() {
    const params = new URLSearchParams(location.search);
    const state = {type: params.get("type") || "", asset: params.get("asset") || "", range: params.get("range") || "24h", rows: [], models: [], canManage: false};
    const charts = {};
    const url = () => {
      const q = new URLSearchParams(Object.entries({type: state.type, asset: state.asset, range: state.asset ? state.range : ""}).filter(([, v]) => v));
      history.replaceState(null, "", location.pathname + (q.toString() ? "?" + q : ""));
    };

    /* ----------------------------------------------------------------- registry */
    const activeOf = () => Object.fromEntries(state.models.map((m) => [m.asset_type, m.active]));
    /* Assets left out of the anomaly training (docs/predict.md, "Far-off machines"). */
    const leftOut = (v) => {
      const ex = (v.anomaly_trim && v.anomaly_trim.excluded) || [];
      if (!ex.length) return "";
      return ` <span class="muted" data-left-out title="${esc(t("predict.left_out") + ": " + ex.map((e) => e.asset).join(", "))}">−${ex.length}</span>`;
    };
    function renderRegistry() {
      const host = $("#registry");
      const models = state.models.filter((m) => !state.type || m.asset_type === state.type);
      if (!models.length) { host.innerHTML = `<p class="muted pad">${esc(t("predict.no_models"))}</p>`; return; }
      host.innerHTML = models.map((m) => {
        const versions = m.versions.slice().reverse();
        const rows = versions.map((v) => {
          const k = v.metrics || {}, tr = v.training_range || {};
          const on = v.version === m.active;
          const action = state.canManage && !on ? `<button type="button" class="btn small" data-deploy="${esc(m.asset_type)}" data-version="${v.version}">${esc(t("predict.deploy"))}</button>` : "";
          return `<tr data-version-row="${v.version}"><td>v${v.version} ${on ? `<span class="pill on">${esc(t("predict.deployed"))}</span>` : ""}</td>`
            + `<td>${esc(when(Date.parse(v.created_at)))}</td>`
            + `<td class="wrap">${esc(when(tr.start_us / 1000))} – ${esc(when(tr.end_us / 1000))}${tr.bucket_s ? ` <span class="muted">(${tr.bucket_s} s)</span>` : ""}</td>`
            + `<td class="num">${num(k.assets)}${leftOut(v)}</td><td class="num">${num(k.rows)}</td><td class="num">${num(k.failures)}</td>`
            + `<td class="num">${v.has_rul ? num(k.rul_cv_rmse_h, nf2) : `<span class="muted">${esc(t("predict.no_rul"))}</span>`}</td>`
            + `<td class="num">${num(k.rul_interval_width_h, nf2)}</td><td class="num">${num(k.anomaly_auc_near_failure, nf2)}</td>`
            + `<td class="num">${k.anomaly_train_above_1 == null ? "–" : num(100 * k.anomaly_train_above_1) + " %"}</td><td class="num">${num(v.features)}</td><td>${action}</td></tr>`;
        }).join("");
        const back = state.canManage && m.active != null ? `<button type="button" class="btn small" data-rollback="${esc(m.asset_type)}">${esc(t("predict.rollback"))}</button>` : "";
        return `<div class="reg-type" data-type="${esc(m.asset_type)}"><h3>${esc(m.asset_type)} <span class="muted">${esc(t("predict.deployed"))}: ${m.active == null ? "–" : "v" + m.active}</span> ${back}</h3>`
          + `<table class="tbl"><thead><tr><th>${esc(t("predict.version"))}</th><th>${esc(t("predict.created"))}</th><th>${esc(t("predict.training_range"))}</th><th class="num">${esc(t("predict.assets"))}</th><th class="num">${esc(t("predict.rows"))}</th><th class="num">${esc(t("predict.failures"))}</th><th class="num">${esc(t("predict.cv_rmse"))}</th><th class="num">${esc(t("predict.width"))}</th><th class="num">${esc(t("predict.auc"))}</th><th class="num">${esc(t("predict.above1"))}</th><th class="num">${esc(t("predict.features"))}</th><th></th></tr></thead><tbody>${rows}</tbody></table></div>`;
      }).join("");
    }
    async function loadModels() {
      state.models = await api("/api/v1/predict/models");
      const sel = $("#f-type");
      const types = state.models.map((m) => m.asset_type);
      if (state.type && !types.includes(state.type)) types.push(state.type);
      sel.innerHTML = `<option value="">${esc(t("common.all_types"))}</option>` + types.map((n) => `<option value="${esc(n)}"${n === state.type ? " selected" : ""}>${esc(n)}</option>`).join("");
      renderRegistry();
    }
    async function act(path, body, confirmKey) {
      if (!window.confirm(t(confirmKey))) return;
      const err = $("#registry-error");
      err.hidden = true;
      try {
        await api(path, {method: "POST", json: body});
      } catch (ex) {
        err.textContent = ex.message; err.hidden = false; return;
      }
      await loadModels();
      await loadRanking();
    }
    $("#registry").addEventListener("click", (e) => {
      const d = e.target.closest("[data-deploy]");
      if (d) return act(`/api/v1/predict/models/${encodeURIComponent(d.dataset.deploy)}/deploy`, {version: Number(d.dataset.version)}, "predict.deploy_confirm");
      const r = e.target.closest("[data-rollback]");
      if (r) return act(`/api/v1/predict/models/${encodeURIComponent(r.dataset.rollback)}/rollback`, {}, "predict.rollback_confirm");
      return null;
    });

    /* ------------------------------------------------------------------ ranking */
    async function loadRanking() {
      const q = new URLSearchParams({limit: $("#f-limit").value});
      if (state.type) q.set("asset_type", state.type);
      state.rows = await api("/api/v1/predict/scores?" + q);
      const active = activeOf();
      const body = $("#rank-body");
      body.innerHTML = state.rows.length ? state.rows.map((r, i) => {
        const h = r.health_index;
        const iv = r.rul_lo == null ? "–" : `${num(r.rul_lo)} – ${num(r.rul_hi)}`;
        return `<tr data-asset="${esc(r.asset_id)}"${r.asset_id === state.asset ? ' class="sel"' : ""}><td>${i + 1}</td>`
          + `<td><b>${esc(r.name)}</b> <span class="muted">${esc(r.asset_id)}</span></td><td>${esc(r.asset_type)}</td>`
          + `<td><span class="hbar ${healthClass(h)}"><i><b style="width:${h == null ? 0 : Math.max(0, Math.min(100, h))}%"></b></i><span>${num(h, new Intl.NumberFormat(loc, {maximumFractionDigits: 0}))}</span></span></td>`
          + `<td class="num">${num(r.anomaly_score, nf2)}</td><td class="num">${r.rul == null ? `<span class="muted">–</span>` : num(r.rul)}</td><td>${iv}</td>`
          + `<td>${active[r.asset_type] == null ? "–" : esc(r.asset_type) + "/v" + active[r.asset_type]}</td><td title="${esc(when(r.ts_us / 1000))}">${esc(ago(r.ts_us / 1000))}</td></tr>`;
      }).join("") : `<tr><td colspan="9" class="muted wrap">${esc(t("predict.none"))}</td></tr>`;
      $("#rank-info").textContent = state.rows.length ? `${state.rows.length} ${t("predict.ranked")}` : "";
      body.dataset.ready = "1";
    }
    $("#rank-body").addEventListener("click", (e) => {
      const tr = e.target.closest("tr[data-asset]");
      if (!tr) return;
      select(tr.dataset.asset);
    });

    /* ------------------------------------------------------------------- detail */
    async function select(assetId) {
      state.asset = assetId;
      url();
      $$("#rank-body tr").forEach((tr) => tr.classList.toggle("sel", tr.dataset.asset === assetId));
      const row = state.rows.find((r) => r.asset_id === assetId);
      const detail = $("#detail");
      detail.hidden = false;
      delete detail.dataset.ready;
      $("#detail-title").textContent = row ? `${row.name} · ${row.asset_id}` : assetId;
      $("#detail-asset").href = "/assets/" + encodeURIComponent(assetId);
      $$("[data-range]").forEach((b) => b.setAttribute("aria-pressed", String(b.dataset.range === state.range)));
      const endMs = row ? Math.floor(row.ts_us / 1000) + 1 : Date.now();
      const q = new URLSearchParams({asset: assetId, start: String(endMs - (RANGES[state.range] || RANGES["24h"])), end: String(endMs), limit: "200000"});
      MEASUREMENTS.forEach((m) => q.append("measurement", m));
      const body = await api("/api/v1/telemetry/raw?" + q);
      if (state.asset !== assetId) return;
      const s = Object.fromEntries(body.series.map((x) => [x.measurement, x]));
      const pairs = (m) => (s[m] ? s[m].ts.map((ts, i) => [ts, s[m].value[i]]) : []);
      const health = pairs("health_index"), rul = pairs("rul");
      // A log axis: normal rows sit near 0.1-1, a failing machine in the hundreds.
      const anomaly = pairs("anomaly_score").map(([ts, v]) => [ts, Math.max(v, 0.01)]);
      $("#detail-info").textContent = health.length ? `${health.length} ${t("predict.points")}` : t("predict.no_series");
      charts.health = charts.health || chart($("#c-health"));
      charts.rul = charts.rul || chart($("#c-rul"));
      const base = {...theme, grid: {left: 48, right: 48, top: 28, bottom: 28}, tooltip: {trigger: "axis"}, legend: {top: 0, textStyle: {color: "#c9d1d9"}},
        xAxis: {type: "time", ...AXIS}};
      charts.health.setOption({...base,
        yAxis: [{type: "value", min: 0, max: 100, name: "%", ...AXIS}, {type: "log", min: 0.01, name: t("predict.anomaly"), ...AXIS, splitLine: {show: false}}],
        series: [
          {name: t("predict.health"), type: "line", data: health, showSymbol: health.length < 40, lineStyle: {width: 2}, color: "#3fb950"},
          {name: t("predict.anomaly"), type: "line", yAxisIndex: 1, data: anomaly, showSymbol: anomaly.length < 40, color: "#d29922",
            markLine: {silent: true, symbol: "none", lineStyle: {color: "#d29922", type: "dashed"}, data: [{yAxis: 1}], label: {formatter: "1"}}},
        ]}, true);
      if (rul.length) {
        const lo = new Map(pairs("rul_lo")), hi = new Map(pairs("rul_hi"));
        const band = rul.filter(([ts]) => lo.has(ts) && hi.has(ts));
        charts.rul.setOption({...base,
          yAxis: {type: "value", min: 0, name: "h", ...AXIS},
          series: [
            {name: "lo", type: "line", data: band.map(([ts]) => [ts, lo.get(ts)]), stack: "band", symbol: "none", lineStyle: {opacity: 0}, tooltip: {show: false}},
            {name: t("predict.band"), type: "line", data: band.map(([ts]) => [ts, hi.get(ts) - lo.get(ts)]), stack: "band", symbol: "none", lineStyle: {opacity: 0}, areaStyle: {color: "rgba(78,161,255,0.25)"}, color: "rgba(78,161,255,0.5)", tooltip: {show: false}},
            {name: t("predict.rul"), type: "line", data: rul, showSymbol: rul.length < 40, lineStyle: {width: 2}, color: "#4ea1ff"},
          ],
          legend: {top: 0, data: [t("predict.rul"), t("predict.band")], textStyle: {color: "#c9d1d9"}}}, true);
      } else {
        charts.rul.setOption({...theme, series: [], xAxis: {show: false}, yAxis: {show: false},
          graphic: {type: "text", left: "center", top: "middle", style: {text: t("predict.no_rul"), fill: "#9aa7b4", fontSize: 14}}}, true);
      }
      detail.dataset.ready = "1";
      detail.dataset.points = String(health.length);
      detail.dataset.rulPoints = String(rul.length);
    }
    $$("[data-range]").forEach((b) => b.addEventListener("click", () => { state.range = b.dataset.range; if (state.asset) select(state.asset); }));

    /* -------------------------------------------------------------- the toolbar */
    $("#f-type").addEventListener("change", async (e) => { state.type = e.target.value; url(); renderRegistry(); await loadRanking(); });
    $("#f-limit").addEventListener("change", () => loadRanking());
    $("#refresh").addEventListener("click", async () => { await loadModels(); await loadRanking(); if (state.asset) await select(state.asset); });

    const me = await api("/api/v1/auth/me").catch(() => null);
    state.canManage = !!me && (me.role === "admin" || me.role === "operator");
    await loadModels();
    await loadRanking();
    if (state.asset) await select(state.asset);
    document.body.dataset.ready = "1";

    /* New data reaches the fleet feed every few seconds; predictions change once a
       scoring pass ran, so the ranking is re-read at most every 20 s. */
    let last = Date.now();
    const es = new EventSource("/api/v1/live/fleet/stream", {withCredentials: true});
    const dot = $("#live-state");
    es.onopen = () => { if (dot) dot.dataset.state = "open"; };
    es.onerror = () => { if (dot) dot.dataset.state = "error"; };
    es.addEventListener("fleet", () => {
      if (dot) dot.dataset.state = "open";
      if (Date.now() - last < 20000) return;
      last = Date.now();
      loadRanking().then(() => (state.asset ? select(state.asset) : null)).catch(() => {});
    });
    window.addEventListener("beforeunload", () => es.close());
  }

  document.addEventListener("DOMContentLoaded", () => {
    if (IB.page !== "predict") return;
    Promise.resolve(predictPage()).catch((ex) => {
      if (ex && ex.message === "401") return;
      console.error(ex && ex.stack ? ex.stack : ex);
      const m = $("main"); if (m) m.insertAdjacentHTML("afterbegin", `<p class="error" role="alert">${esc(t("common.error"))}: ${esc(ex && ex.message)}</p>`);
      document.body.dataset.error = "1";
    });
  });
})();
