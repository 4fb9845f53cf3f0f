/* ironbridge console: industrial-chain pages (list and import, dashboard, network, map,
   what-if, supplier risk). Every figure comes from /api/v1/chains (session cookie). */
(function () {
  "use strict";
  const IB = window.IB || {};
  const M = IB.t || {};
  const t = (k) => (k in M ? M[k] : k);
  const $ = (sel, root) => (root || document).querySelector(sel);
  const $$ = (sel, root) => Array.from((root || document).querySelectorAll(sel));
  const esc = (v) => String(v == null ? "" : v).replace(/[&<>"']/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
  const nf = new Intl.NumberFormat(IB.lang === "zh" ? "zh-CN" : "en-US", {maximumFractionDigits: 1});
  const num = (v) => (v == null || Number.isNaN(v) ? "–" : nf.format(v));
  const nf2 = new Intl.NumberFormat(IB.lang === "zh" ? "zh-CN" : "en-US", {minimumFractionDigits: 2, maximumFractionDigits: 2});
  const num2 = (v) => (v == null || Number.isNaN(v) ? "–" : nf2.format(v));
  const pct = (v) => (v == null || Number.isNaN(v) ? "–" : nf.format(100 * v) + " %");
  const days = (v) => (v == null ? "∞" : nf.format(v));
  const ready = () => { document.body.dataset.ready = "1"; };
  const theme = {backgroundColor: "transparent", textStyle: {color: "#c9d1d9", fontFamily: "system-ui, sans-serif"}};
  const TIER_COLORS = ["#f85149", "#d29922", "#4ea1ff", "#3fb950", "#a371f7", "#39c5cf", "#8b949e"];
  const tierColor = (k) => TIER_COLORS[Math.min(k, TIER_COLORS.length - 1)];
  const SIZE = {large: 16, medium: 11, small: 8, micro: 6};

  async function api(path, opts) {
    const o = Object.assign({credentials: "same-origin", headers: {}}, opts || {});
    if (o.json !== undefined) { o.body = JSON.stringify(o.json); o.headers["Content-Type"] = "application/json"; o.method = o.method || "POST"; }
    const r = await fetch(path, o);
    if (r.status === 401) { location.href = "/login?next=" + encodeURIComponent(location.pathname + location.search); throw new Error("401"); }
    const text = await r.text();
    const body = text ? JSON.parse(text) : null;
    if (!r.ok) { const e = new Error((body && body.error) || "HTTP " + r.status); e.status = r.status; e.body = body; throw e; }
    return body;
  }
  const chart = IB.chart; /* console.js: an ECharts instance that follows its box */
  const tenantQ = () => { const v = new URLSearchParams(location.search).get("tenant_id"); return v ? {tenant_id: v} : {}; };
  const qs = (o) => { const q = new URLSearchParams(Object.entries(o).filter(([, v]) => v !== "" && v != null)); return q.toString() ? "?" + q : ""; };

  /* ------------------------------------------------------------- list + import */
  async function chainsPage() {
    async function list() {
      const rows = await api("/api/v1/chains");
      $("#chains-body").innerHTML = rows.length ? rows.map((c) => {
        const href = "/chains/" + encodeURIComponent(c.name) + "?tenant_id=" + encodeURIComponent(c.tenant_id);
        return `<tr><td><a href="${href}">${esc(c.name)}</a></td><td>${esc(c.tenant_id)}</td><td>${num(c.n_enterprises)}</td><td>${num(c.n_links)}</td><td>${num(c.n_components)}</td><td>${esc(new Date(c.updated_at).toLocaleString())}</td></tr>`;
      }).join("") : `<tr><td colspan="6" class="muted">${esc(t("common.none"))}</td></tr>`;
    }
    $("#chain-import").addEventListener("submit", async (e) => {
      e.preventDefault();
      const name = $("#imp-name").value.trim();
      const fd = new FormData();
      const wb = $("#imp-workbook").files[0];
      if (wb) fd.append("workbook", wb);
      else ["components", "enterprises", "links"].forEach((k) => { const f = $("#imp-" + k).files[0]; if (f) fd.append(k, f); });
      const errs = $("#imp-errors");
      errs.hidden = true;
      try {
        const head = await api("/api/v1/chains/" + encodeURIComponent(name) + "/import", {method: "POST", body: fd});
        $("#imp-result").textContent = t("chain.imported") + ": " + head.name + " · " + head.n_enterprises + " " + t("chain.firms") + " · " + head.n_links + " " + t("chain.links");
        await list();
      } catch (ex) {
        $("#imp-result").textContent = ex.message;
        const rows = (ex.body && ex.body.errors) || [];
        if (rows.length) {
          $("tbody", errs).innerHTML = rows.map((r) => `<tr><td>${esc(r.file)}</td><td>${esc(r.row)}</td><td>${esc(r.column)}</td><td class="wrap">${esc(r.message)}</td></tr>`).join("");
          errs.hidden = false;
        }
      }
    });
    await list();
    ready();
  }

  /* ------------------------------------------------------------------ a chain */
  async function chainPage() {
    const name = $("#chain-bar").dataset.chain;
    const base = "/api/v1/chains/" + encodeURIComponent(name);
    const tq = tenantQ();
    const get = (sub, params) => api(base + sub + qs(Object.assign({}, tq, params || {})));
    $("#export-csv").href = base + "/export" + qs(Object.assign({format: "csv"}, tq));
    $("#export-xlsx").href = base + "/export" + qs(Object.assign({format: "xlsx"}, tq));
    const charts = {};
    const loaded = {};
    let level = "province", region = "";

    const tabs = $$("[data-tab]");
    function show(tab) {
      tabs.forEach((b) => b.setAttribute("aria-pressed", String(b.dataset.tab === tab)));
      $$("[data-panel]").forEach((p) => { p.hidden = p.dataset.panel !== tab; });
      if (!loaded[tab]) { loaded[tab] = true; (VIEWS[tab] || (() => {}))(); }
      Object.values(charts).forEach((c) => c.resize());
    }
    tabs.forEach((b) => b.addEventListener("click", () => show(b.dataset.tab)));

    async function dashboard() {
      const m = await get("/metrics", {level});
      const regions = m.regions.slice().sort((a, b) => b.n_firms - a.n_firms);
      const sel = $("#f-region");
      if (!region || !regions.some((r) => r.region === region)) region = m.default_region || (regions[0] || {}).region || "";
      sel.innerHTML = regions.map((r) => `<option ${r.region === region ? "selected" : ""}>${esc(r.region)}</option>`).join("");
      const r = regions.find((x) => x.region === region) || {};
      $("#k-complete").textContent = pct(r.completeness);
      $("#k-complete-w").textContent = t("chain.weighted") + " " + pct(r.completeness_weighted);
      $("#k-local-value").textContent = pct(r.local_rate_value);
      $("#k-local-count").textContent = pct(r.local_rate_count);
      $("#k-dependence").textContent = pct(r.external_dependence);
      $("#k-single").textContent = pct(r.single_source_share);
      $("#k-firms").textContent = num(r.n_firms);
      $("#k-region").textContent = region;
      $("#regions-body").innerHTML = regions.map((x) => `<tr><td>${esc(x.region)}</td><td>${num(x.n_firms)}</td><td>${pct(x.completeness)}</td><td>${pct(x.local_rate_value)}</td><td>${pct(x.local_rate_count)}</td><td>${pct(x.external_dependence)}</td><td>${pct(x.single_source_share)}</td></tr>`).join("");
      const [weak, comps, dep, leaders] = await Promise.all([
        get("/weak-links", {level, region, limit: 15}), get("/components", {level, region}),
        get("/dependence", {level, region}), get("/leaders", {level}),
      ]);
      $("#weak-body").innerHTML = weak.weak_links.length ? weak.weak_links.map((w, i) => `<tr><td>${i + 1}</td><td>${esc(w.component)}</td><td class="num">${num2(w.score)}</td><td>${w.flags.map((f) => `<span class="flag ${esc(f)}">${esc(t("chain.flag_" + f))}</span>`).join("")}</td><td class="num">${num2(w.hhi)}</td><td class="wrap">${esc(w.reason)}</td></tr>`).join("") : `<tr><td colspan="6" class="muted">${esc(t("common.none"))}</td></tr>`;
      const bought = comps.components.filter((c) => c.hhi != null).sort((a, b) => b.hhi - a.hhi);
      charts.hhi = charts.hhi || chart($("#c-hhi"));
      charts.hhi.setOption(Object.assign({}, theme, {
        grid: {left: 150, right: 20, top: 10, bottom: 24}, tooltip: {trigger: "axis"},
        xAxis: {type: "value", max: 1, splitLine: {lineStyle: {color: "#2a3441"}}},
        yAxis: {type: "category", inverse: true, data: bought.map((c) => c.name), axisLabel: {width: 140, overflow: "truncate"}},
        series: [{type: "bar", data: bought.map((c) => ({value: c.hhi, itemStyle: {color: c.hhi > 0.25 ? "#f85149" : "#4ea1ff"}}))}],
      }), true);
      charts.dep = charts.dep || chart($("#c-dep"));
      charts.dep.setOption(Object.assign({}, theme, {
        tooltip: {trigger: "item", formatter: (p) => `${esc(p.name)}: ${pct(p.data.share)}`},
        series: [{type: "pie", radius: ["35%", "70%"], data: dep.sources.map((s) => ({name: s.region, value: s.value, share: s.share}))}],
      }), true);
      $("#leaders-body").innerHTML = leaders.leaders.map((l) => `<tr><td>${esc(l.firm)}</td><td>${esc(l.region)}</td><td>${pct(l.rate_value)}</td><td>${pct(l.rate_count)} (${l.n_local_suppliers}/${l.n_suppliers})</td><td>${pct(l.rate_part)}</td></tr>`).join("") || `<tr><td colspan="5" class="muted">${esc(t("common.none"))}</td></tr>`;
    }

    let filtersFilled = false;
    let halted = new Set();
    async function network() {
      const params = {component: $("#n-component").value, region: $("#n-region").value, tier: $("#n-tier").value, level, neighbours: $("#n-neighbours").checked};
      const net = await get("/network", params);
      if (!filtersFilled) {
        filtersFilled = true;
        net.filters.components.forEach((c) => $("#n-component").insertAdjacentHTML("beforeend", `<option value="${esc(c.id)}">${esc(c.name)}</option>`));
        net.filters.tiers.forEach((k) => $("#n-tier").insertAdjacentHTML("beforeend", `<option value="${k}">${esc(t("chain.tier"))} ${k}</option>`));
      }
      const rsel = $("#n-region"), keep = rsel.value;
      rsel.innerHTML = `<option value="">${esc(t("chain.all"))}</option>` + net.filters.regions.map((r) => `<option ${r === keep ? "selected" : ""}>${esc(r)}</option>`).join("");
      $("#n-count").textContent = net.nodes.length + " " + t("chain.firms") + " · " + net.edges.length + " " + t("chain.links");
      const tiers = [...new Set(net.nodes.map((n) => n.tier))].sort((a, b) => a - b);
      charts.network = charts.network || chart($("#c-network"));
      charts.network.setOption(Object.assign({}, theme, {
        tooltip: {formatter: (p) => p.dataType === "edge" ? `${esc(p.data.source)} → ${esc(p.data.target)}<br>${esc(p.data.component)} · ${pct(p.data.volume_share)} · ${esc(t("chain.cover"))} ${days(p.data.inventory_cover_days)} d` : `<b>${esc(p.data.label_name)}</b><br>${esc(p.data.id)} · ${esc(p.data.region)}<br>${esc(t("chain.tier"))} ${p.data.tier}${p.data.is_leader ? " · " + esc(t("chain.leader")) : ""}`},
        legend: {data: tiers.map((k) => t("chain.tier") + " " + k), textStyle: {color: "#c9d1d9"}},
        series: [{
          type: "graph", layout: "force", roam: true, draggable: true, force: {repulsion: 90, edgeLength: [30, 120], gravity: 0.08},
          categories: tiers.map((k) => ({name: t("chain.tier") + " " + k, itemStyle: {color: tierColor(k)}})),
          label: {show: false}, emphasis: {focus: "adjacency", label: {show: true}},
          edgeSymbol: ["none", "arrow"], edgeSymbolSize: 5, lineStyle: {color: "source", opacity: 0.45, curveness: 0.1},
          data: net.nodes.map((n) => ({
            id: n.id, name: n.id, label_name: n.name, region: n.region, tier: n.tier, is_leader: n.is_leader,
            category: tiers.indexOf(n.tier), symbolSize: (SIZE[n.size] || 10) + (n.is_leader ? 10 : 0),
            symbol: n.is_leader ? "diamond" : "circle",
            itemStyle: halted.has(n.id) ? {borderColor: "#f85149", borderWidth: 3} : (n.context ? {opacity: 0.45} : {}),
          })),
          links: net.edges.map((e) => Object.assign({}, e, {lineStyle: {width: 0.6 + 3 * e.volume_share}})),
        }],
      }), true);
      return net;
    }
    ["#n-component", "#n-region", "#n-tier", "#n-neighbours"].forEach((s) => $(s).addEventListener("change", network));

    async function map() {
      const [geo, net] = await Promise.all([
        echarts.getMap("ib_china") ? null : fetch("/static/vendor/china-geojson-echarts-4.9.0/china-provinces.geojson").then((r) => r.json()),
        get("/network", {level, max_edges: 20000}),
      ]);
      if (geo) echarts.registerMap("ib_china", geo);
      const pos = new Map(net.nodes.filter((n) => n.lat != null && n.lon != null).map((n) => [n.id, [n.lon, n.lat]]));
      const tiers = [...new Set(net.nodes.map((n) => n.tier))].sort((a, b) => a - b);
      charts.map = charts.map || chart($("#c-map"));
      charts.map.setOption(Object.assign({}, theme, {
        tooltip: {trigger: "item", formatter: (p) => p.seriesType === "lines" ? `${esc(p.data.source)} → ${esc(p.data.target)} · ${esc(p.data.component)}` : `<b>${esc(p.data.label_name)}</b><br>${esc(p.data.region)} · ${esc(t("chain.tier"))} ${p.data.tier}`},
        legend: {data: tiers.map((k) => t("chain.tier") + " " + k), textStyle: {color: "#c9d1d9"}},
        geo: {map: "ib_china", roam: true, center: [118.5, 34.5], zoom: 2.6, itemStyle: {areaColor: "#17202b", borderColor: "#3b4c63"}, emphasis: {itemStyle: {areaColor: "#1f3a5f"}, label: {color: "#c9d1d9"}}},
        series: [
          {type: "lines", coordinateSystem: "geo", silent: false, zlevel: 1, lineStyle: {color: "#4ea1ff", opacity: 0.25, width: 0.8, curveness: 0.2},
            data: net.edges.filter((e) => pos.has(e.source) && pos.has(e.target)).map((e) => Object.assign({coords: [pos.get(e.source), pos.get(e.target)]}, e))},
          ...tiers.map((k) => ({
            name: t("chain.tier") + " " + k, type: "scatter", coordinateSystem: "geo", zlevel: 2, itemStyle: {color: tierColor(k)},
            data: net.nodes.filter((n) => n.tier === k && pos.has(n.id)).map((n) => ({name: n.id, label_name: n.name, region: n.region, tier: n.tier, value: pos.get(n.id), symbolSize: (SIZE[n.size] || 10) * 0.7 + (n.is_leader ? 8 : 0), symbol: n.is_leader ? "diamond" : "circle"})),
          })),
        ],
      }), true);
    }

    async function whatif() {
      const [chainBody, metrics] = await Promise.all([get(""), get("/metrics", {level})]);
      $("#w-firms").innerHTML = chainBody.enterprises.map((f) => `<option value="${esc(f.id)}">${esc(f.name)}</option>`).join("");
      $("#w-region").innerHTML = metrics.regions.map((r) => `<option>${esc(r.region)}</option>`).join("");
      $("#w-comp").innerHTML = chainBody.components.map((c) => `<option value="${esc(c.id)}">${esc(c.name)}</option>`).join("");
      const kind = $("#w-kind");
      const sync = () => {
        $("#w-firm-l").hidden = kind.value === "region";
        $("#w-region-l").hidden = kind.value !== "region";
        $("#w-comp-l").hidden = kind.value !== "source";
      };
      kind.addEventListener("change", sync);
      sync();
    }
    $("#whatif-form").addEventListener("submit", async (e) => {
      e.preventDefault();
      const kind = $("#w-kind").value;
      const body = {halt_share: Number($("#w-halt").value) || 1, level};
      if (kind === "firm") body.firms = [$("#w-firm").value.trim()];
      if (kind === "region") body.region = $("#w-region").value;
      if (kind === "source") body.sources = [{supplier_id: $("#w-firm").value.trim(), component_id: $("#w-comp").value}];
      const err = $("#w-error");
      err.hidden = true;
      let r;
      try { r = await api(base + "/what-if" + qs(tq), {json: body}); } catch (ex) { err.textContent = ex.message; err.hidden = false; return; }
      $("#w-summary").hidden = false;
      $("#w-halted").textContent = num(r.halted.length);
      $("#w-products").textContent = num(r.products.length);
      $("#w-failed").textContent = num(r.failed_links);
      const tts = r.products.map((p) => p.time_to_survive_days).filter((v) => v != null);
      $("#w-tts").textContent = tts.length ? num(Math.min(...tts)) : "–";
      $("#w-products-body").innerHTML = r.products.map((p) => `<tr><td>${esc(p.firm)}</td><td class="wrap">${esc(p.lost_inputs.join(", "))}</td><td class="num">${days(p.time_to_survive_days)}</td><td class="num">${days(p.time_to_recover_days)}</td><td class="num">${days(p.outage_days)}</td></tr>`).join("") || `<tr><td colspan="5" class="muted">${esc(t("chain.no_products_hit"))}</td></tr>`;
      $("#w-halted-body").innerHTML = r.halted.map((h) => `<tr><td>${esc(h.firm)}</td><td class="num">${days(h.time_to_survive_days)}</td><td class="num">${days(h.time_to_recover_days)}</td></tr>`).join("") || `<tr><td colspan="3" class="muted">${esc(t("common.none"))}</td></tr>`;
      const alts = Object.entries(r.alternatives).flatMap(([c, list]) => (list.length ? list.map((a) => [c, a]) : [[c, null]]));
      $("#w-alt-body").innerHTML = alts.map(([c, a]) => a ? `<tr><td>${esc(c)}</td><td>${esc(a.firm)}${a.local ? " ★" : ""}</td><td>${esc(a.region)}</td><td>${esc(a.size)}</td></tr>` : `<tr><td>${esc(c)}</td><td colspan="3" class="error">${esc(t("chain.no_alternative"))}</td></tr>`).join("") || `<tr><td colspan="4" class="muted">${esc(t("common.none"))}</td></tr>`;
      halted = new Set(r.halted.concat(r.removed));
      if (loaded.network) network();
    });

    async function risk() {
      const r = await get("/risk", {limit: 200});
      $("#risk-body").innerHTML = r.suppliers.map((s) => `<tr><td>${esc(s.firm)}</td><td class="num">${num(s.score)}</td><td class="num">${num2(s.exposure)}</td><td>${s.live ? "●" : "–"}</td><td class="num">${pct(s.oee)}</td><td class="num">${pct(s.delivery_performance)}</td><td>${esc(s.assets.join(", "))}</td><td class="wrap">${esc(s.reason)}</td></tr>`).join("");
    }

    const VIEWS = {dashboard, network, map, whatif, risk};
    $("#f-level").addEventListener("change", (e) => { level = e.target.value; region = ""; Object.keys(loaded).forEach((k) => { loaded[k] = false; }); show(tabs.find((b) => b.getAttribute("aria-pressed") === "true").dataset.tab); });
    $("#f-region").addEventListener("change", (e) => { region = e.target.value; dashboard(); });
    loaded.dashboard = true;
    await dashboard();
    ready();
  }

  const PAGES = {chains: chainsPage, chain: chainPage};
  document.addEventListener("DOMContentLoaded", () => {
    const run = PAGES[IB.page];
    if (run) Promise.resolve(run()).catch((ex) => {
      if (ex && ex.status === 401) return;
      console.error(ex && ex.stack ? ex.stack : ex);
      const m = $("main"); if (m) m.insertAdjacentHTML("afterbegin", `<p class="error" role="alert">${esc(t("common.error"))}: ${esc(ex && ex.message)}</p>`);
      document.body.dataset.error = "1";
    });
  });
})();
