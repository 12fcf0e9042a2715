// tokmon web dashboard: one page, hash routes, data from /api/* (or inline for the HTML export),
// live updates pushed over Server-Sent Events. Untrusted text (session names, projects, tags)
// only ever reaches the DOM through textContent.
"use strict";
(function () {
  const EMBED = window.TOKMON_EMBED || null;
  const $ = (id) => document.getElementById(id);
  const state = {
    summary: null, sessions: null, blocks: null, series: {}, official: null, limits: null,
    spend: { period: "day", by: "model", range: "90" }, blocksRange: "30",
    sort: { key: "lastActivity", dir: -1 }, filter: { q: "", project: "", tag: "", agent: "" },
    showAll: false, session: null, charts: {}, updates: 0, seq: null, queued: null,
    active: null, activeSeq: null, summaryQueued: null,
  };

  // -- data ------------------------------------------------------------------------------------
  async function api(name, params, body) {
    if (EMBED) return embedded(name, params || {});
    let url = "/api/" + name;
    const opts = { credentials: "same-origin", headers: {} };
    if (body !== undefined) {
      opts.method = "POST";
      opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(body);
    } else if (params) {
      const q = new URLSearchParams();
      for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null) q.set(k, v);
      const s = q.toString();
      if (s) url += "?" + s;
    }
    // requests in flight, for a test to wait until the page's own loads are over
    const busy = document.body.dataset;
    busy.inflight = String((+busy.inflight || 0) + 1);
    let resp, data = null;
    try {
      resp = await fetch(url, opts);
      try { data = await resp.json(); } catch (e) { /* not JSON */ }
    } finally {
      busy.inflight = String(+busy.inflight - 1);
    }
    if (!resp.ok) {
      const msg = data && data.error ? data.error.message : resp.status + " " + resp.statusText;
      throw new Error(msg);
    }
    return data;
  }

  function embedded(name, params) {
    if (name === "series") return EMBED.series[params.period + "/" + params.by];
    if (name === "session") {
      const d = EMBED.sessionDetails[params.sessionId];
      if (!d) throw new Error("this session's details are not in the export (top sessions only)");
      return d;
    }
    if (name === "limits" && !EMBED.limits) return { windows: [], budgets: [], limitReached: [] };
    if (name in EMBED) return EMBED[name];
    throw new Error("not available in an exported report: " + name);
  }

  // -- formatting ------------------------------------------------------------------------------
  const money = new Intl.NumberFormat("en-US", { style: "currency", currency: "USD" });
  function fmtCost(v) { return money.format(v || 0); }
  function fmtTokens(v) {
    v = v || 0;
    const a = Math.abs(v);
    if (a >= 1e9) return (v / 1e9).toFixed(2) + "B";
    if (a >= 1e6) return (v / 1e6).toFixed(a >= 1e8 ? 0 : 1) + "M";
    if (a >= 1e4) return (v / 1e3).toFixed(0) + "K";
    return String(Math.round(v));
  }
  function fmtWhen(iso, seconds) {
    if (!iso) return "";
    const d = new Date(iso);
    const opts = { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" };
    if (seconds) opts.second = "2-digit";
    if (d.getFullYear() !== new Date().getFullYear()) opts.year = "numeric";
    return d.toLocaleString(undefined, opts);
  }
  function fmtDay(iso) {
    const d = new Date(iso);
    const opts = { month: "short", day: "numeric" };
    if (d.getFullYear() !== new Date().getFullYear()) opts.year = "2-digit";
    return d.toLocaleDateString(undefined, opts);
  }
  // the CSS phone breakpoint
  function isNarrow() { return window.matchMedia("(max-width: 760px)").matches; }
  // x-axis ticks that stay horizontal and few on a phone
  function xTicks(n) {
    const narrow = isNarrow();
    return { maxRotation: 0, autoSkip: true, autoSkipPadding: 10,
      maxTicksLimit: narrow ? Math.min(n || 4, 4) : (n || 10) };
  }
  function fmtMinutes(m) {
    m = Math.max(0, Math.round(m || 0));
    return m >= 60 ? Math.floor(m / 60) + " h " + (m % 60) + " min" : m + " min";
  }
  function setNum(id, value, fmt) {
    const el = $(id);
    el.textContent = fmt(value);
    el.dataset.value = String(value);
  }
  function text(el, s) { el.textContent = s == null ? "" : String(s); return el; }
  function el(tag, cls, s) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (s !== undefined) text(e, s);
    return e;
  }
  function showError(msg) {
    const e = $("error");
    e.hidden = !msg;
    text(e, msg || "");
  }

  // -- charts ----------------------------------------------------------------------------------
  const PALETTE = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1",
    "#9c755f", "#bab0ac"];
  function css(name) { return getComputedStyle(document.documentElement).getPropertyValue(name).trim(); }
  // app.js runs before chart.js (both deferred) so the first fetch starts sooner; charts wait
  function whenChart() {
    if (typeof Chart !== "undefined" || document.readyState === "complete") return Promise.resolve();
    return new Promise((r) => document.addEventListener("DOMContentLoaded", r, { once: true }));
  }
  function chart(id, config) {
    if (typeof Chart === "undefined") return null;
    const fg = css("--muted"), grid = css("--grid");
    Chart.defaults.color = fg;
    Chart.defaults.borderColor = grid;
    Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
    const old = state.charts[id];
    if (old) old.destroy();
    config.options = Object.assign({ responsive: true, maintainAspectRatio: false, animation: false },
      config.options || {});
    const c = new Chart($(id), config);
    state.charts[id] = c;
    return c;
  }

  // -- overview --------------------------------------------------------------------------------
  function renderOverview() {
    const s = state.summary;
    if (!s) return;
    for (const [key, label] of [["today", "date"], ["week", "week"], ["month", "month"]]) {
      setNum(key + "-cost", s[key].totalCost, fmtCost);
      setNum(key + "-tokens", s[key].totalTokens, fmtTokens);
      text($(key + "-label"), key === "week" ? "from " + s[key][label] : s[key][label]);
    }
    setNum("total-cost", s.totals.totalCost, fmtCost);
    setNum("total-tokens", s.totals.totalTokens, fmtTokens);
    renderAgents(s.agents);
    renderBlock(s);
    renderOfficial(s.official);
    const list = $("active-list");
    list.replaceChildren();
    for (const r of s.activeSessions || []) {
      const li = el("li");
      const a = el("a", "", r.name || r.title || r.sessionId.slice(0, 8));
      a.href = "#/session/" + encodeURIComponent(r.sessionId);
      li.append(a, el("span", "sub", r.projectName + " · " + fmtCost(r.totalCost)));
      list.append(li);
    }
    $("active-none").hidden = (s.activeSessions || []).length > 0;
    document.body.dataset.generatedAt = s.generatedAt;
  }

  // per-agent totals: only when other agents have data (the Summary then carries ``agents``)
  function renderAgents(agents) {
    const names = agents ? Object.keys(agents) : [];
    $("agents-card").hidden = names.length === 0;
    const body = $("agents-table").tBodies[0];
    body.replaceChildren();
    for (const name of names) {
      const a = agents[name];
      const tr = el("tr");
      tr.dataset.agent = name;
      const cells = [[a.today.totalCost, fmtCost, ""], [a.today.totalTokens, fmtTokens, "hide-s"],
        [a.totals.totalCost, fmtCost, ""], [a.totals.totalTokens, fmtTokens, "hide-s"]];
      tr.append(el("td", "", name));
      for (const [v, f, cls] of cells) {
        const td = el("td", ("num " + cls).trim(), f(v));
        td.dataset.value = String(v || 0);
        tr.append(td);
      }
      body.append(tr);
    }
  }

  function renderBlock(s) {
    const b = s.activeBlock;
    $("block-none").hidden = !!b;
    $("block-body").hidden = !b;
    if (!b) return;
    setNum("block-cost", b.costUSD, fmtCost);
    setNum("block-tokens", b.totalTokens, fmtTokens);
    text($("block-left"), fmtMinutes(b.remainingMinutes));
    text($("block-burn"), b.burnLevel || "–");
    const limit = s.tokenLimit && s.tokenLimit.tokens;
    const fill = $("block-fill"), mark = $("block-proj-mark");
    const proj = b.projection;
    if (limit) {
      const pct = b.totalTokens / limit * 100;
      fill.style.width = Math.min(100, pct) + "%";
      fill.className = "fill" + (pct >= 100 ? " bad" : pct >= 80 ? " warn" : "");
      text($("block-limit"), pct.toFixed(0) + "% of " + fmtTokens(limit) + " tokens (" +
        (s.tokenLimit.source || "limit") + ")");
      if (proj) {
        mark.style.display = "block";
        mark.style.left = Math.min(99.5, proj.totalTokens / limit * 100) + "%";
      } else mark.style.display = "none";
    } else {
      fill.style.width = "0";
      mark.style.display = "none";
      text($("block-limit"), "no token limit known yet (set token_limit, or it is learnt from past blocks)");
    }
    text($("block-proj"), proj ? "projected at block end: " + fmtTokens(proj.totalTokens) +
      " tokens, " + fmtCost(proj.totalCost) : "");
  }

  function renderOfficial(o) {
    if (renderOfficialBars(o)) loadOfficialHistory();
  }

  // the figures: from the summary first, then from /api/official's ``latest`` (read with the
  // history, so bars and chart agree even when a statusline payload came after the summary)
  function renderOfficialBars(o) {
    const has = o && (o.fiveHour || o.sevenDay);
    $("official-none").hidden = !!has;
    $("official-body").hidden = !has;
    if (!has) return false;
    for (const [key, id] of [["fiveHour", "5h"], ["sevenDay", "7d"]]) {
      const w = o[key];
      const pct = w && Number.isFinite(w.usedPercentage) ? w.usedPercentage : null;
      text($("official-" + id), pct == null ? "–" : pct.toFixed(0) + "%");
      $("official-" + id).dataset.value = pct == null ? "" : String(pct);
      const f = $("official-" + id + "-fill");
      f.style.width = Math.min(100, pct || 0) + "%";
      f.className = "fill" + (pct >= 90 ? " bad" : pct >= 70 ? " warn" : "");
      text($("official-" + id + "-reset"), w && Number.isFinite(w.resetsAt) ? "resets " +
        fmtWhen(new Date(w.resetsAt * 1000).toISOString()) : "");
    }
    return true;
  }

  async function loadOfficialHistory() {
    await whenChart();
    let h;
    try { h = await api("official"); } catch (e) { return; }
    if (h.latest) renderOfficialBars(h.latest);
    const pts = (h.history || []).filter((p) => Number.isFinite(Date.parse(p.observedAt)));
    const xs = pts.map((p) => Date.parse(p.observedAt));
    const line = (key) => pts.map((p, i) => ({ x: xs[i],
      y: p[key] && Number.isFinite(p[key].usedPercentage) ? p[key].usedPercentage : null }));
    chart("official-chart", {
      type: "line",
      data: {
        datasets: [
          { label: "5 h %", data: line("fiveHour"),
            borderColor: PALETTE[0], backgroundColor: PALETTE[0], spanGaps: true, pointRadius: 2 },
          { label: "7 d %", data: line("sevenDay"),
            borderColor: PALETTE[1], backgroundColor: PALETTE[1], spanGaps: true, pointRadius: 2 },
        ],
      },
      options: { scales: { y: { min: 0, suggestedMax: 100 },
        x: timeAxis(Math.min(...xs), Math.max(...xs), isNarrow() ? 3 : 5) },
        plugins: { legend: { labels: { boxWidth: 10 } },
          tooltip: { callbacks: { title: (items) => fmtWhen(new Date(items[0].parsed.x).toISOString(),
            true) } } } },
    });
  }

  // A linear time axis whose ticks sit on round local times (1 s ... 30 d apart, at most
  // ``most`` of them) and whose labels carry just enough precision to differ: seconds when the
  // observations lie within a few minutes, the date when they span days.
  const STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600,
    43200, 86400, 2 * 86400, 7 * 86400, 14 * 86400, 30 * 86400];
  function timeAxis(xmin, xmax, most) {
    if (!Number.isFinite(xmin) || !Number.isFinite(xmax)) return { type: "linear" };
    const pad = Math.max((xmax - xmin) * 0.04, 1000);
    const lo = xmin - pad, hi = xmax + pad;
    const step = (STEPS.find((s) => (hi - lo) / (s * 1000) <= most - 1) || STEPS[STEPS.length - 1]) * 1000;
    const ticks = [];
    for (let t = Math.ceil(lo / step) * step; t <= hi; t += step) {
      // round local times: shift by the zone offset so hours and midnights line up
      const off = new Date(t).getTimezoneOffset() * 60e3;
      const v = step >= 3600e3 ? Math.ceil((t - off) / step) * step + off : t;
      if (v >= lo && v <= hi && !ticks.includes(v)) ticks.push(v);
    }
    const days = new Date(lo).toDateString() !== new Date(hi).toDateString();
    const label = (v) => {
      const d = new Date(v);
      if (step >= 86400e3) return fmtDay(d.toISOString());
      const t = d.toLocaleTimeString(undefined, step < 60e3
        ? { hour: "2-digit", minute: "2-digit", second: "2-digit" }
        : { hour: "2-digit", minute: "2-digit" });
      return days ? fmtDay(d.toISOString()) + " " + t : t;
    };
    return {
      type: "linear", min: lo, max: hi,
      afterBuildTicks: (scale) => { scale.ticks = ticks.map((value) => ({ value })); },
      ticks: { maxRotation: 0, autoSkip: true, autoSkipPadding: 12, callback: label },
    };
  }


  // -- limits and budgets (docs/limits.md) -----------------------------------------------------
  function fmtDuration(sec) {
    if (sec == null) return "–";
    sec = Math.max(0, Math.round(sec));
    const d = Math.floor(sec / 86400), h = Math.floor(sec % 86400 / 3600), m = Math.floor(sec % 3600 / 60);
    if (d) return d + " d " + h + " h";
    if (h) return h + " h " + m + " min";
    return m ? m + " min" : sec + " s";
  }
  function fmtEpoch(t) { return t == null ? "" : fmtWhen(new Date(t * 1000).toISOString()); }
  function fmtPct(v) { return v == null ? "–" : (v < 10 && v > 0 ? v.toFixed(1) : v.toFixed(0)) + "%"; }
  function level(v) { return v >= 90 ? " bad" : v >= 70 ? " warn" : ""; }
  // history ticks: the time of day within a day or two, else the date
  function fmtTick(ms, spanSec) {
    const d = new Date(ms);
    if (spanSec < 2 * 86400) {
      const t = d.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" });
      return spanSec < 86400 ? t : fmtDay(d.toISOString()) + " " + t;
    }
    return fmtDay(d.toISOString());
  }
  function fmtAmount(v, unit) { return unit === "usd" ? fmtCost(v) : fmtTokens(v); }

  function windowCard(w) {
    const card = el("div", "win");
    card.dataset.window = w.source + "/" + w.window;
    card.dataset.basis = w.basis;
    card.dataset.used = String(w.usedPercent);
    const h = el("h3", "", w.label);
    card.append(h);
    const row = el("div", "row");
    const pct = el("span", "pct", (w.basis === "estimate" ? "~" : "") + fmtPct(w.usedPercent));
    pct.dataset.field = "used";
    pct.dataset.value = String(w.usedPercent);
    row.append(pct);
    if (w.basis === "estimate") {
      const b = el("span", "badge est", "ESTIMATE");
      b.title = "no fresh official figure: the last one plus local usage since (a lower bound)";
      row.append(b);
    } else if (w.stale) {
      const b = el("span", "badge stale", "stale");
      b.title = "local usage came after this official figure and there is no calibration yet " +
        "to estimate from: the real figure is higher";
      row.append(b);
    }
    card.append(row);
    const bar = el("div", "bar");
    const fill = el("div", "fill" + level(w.usedPercent));
    fill.style.width = Math.min(100, Math.max(0, w.usedPercent || 0)) + "%";
    bar.append(fill);
    if (w.projectedPercent != null) {
      const mark = el("div", "proj");
      mark.style.display = "block";
      mark.style.left = Math.min(99.5, w.projectedPercent) + "%";
      mark.title = "projected at reset";
      bar.append(mark);
    }
    card.append(bar);
    const facts = el("dl", "facts");
    const fact = (name, label, value, raw) => {
      const dd = el("dd", "", value);
      dd.dataset.field = name;
      dd.dataset.value = raw == null ? "" : String(raw);
      facts.append(el("dt", "", label), dd);
    };
    fact("official", "official", w.officialPercent == null ? "–" : fmtPct(w.officialPercent) +
      " · " + fmtDuration(w.ageSeconds) + " ago", w.officialPercent);
    fact("resets", "resets", w.resetsInSeconds == null ? "–" : "in " +
      fmtDuration(w.resetsInSeconds) + " · " + fmtEpoch(w.resetsAt), w.resetsAt);
    fact("pace", "pace", w.pace == null ? "–" : w.pace.toFixed(2) + "x", w.pace);
    fact("projected", "at reset", w.projectedPercent == null ? "–" : "~" +
      fmtPct(w.projectedPercent), w.projectedPercent);
    fact("eta", "100 % at", w.eta != null ? fmtEpoch(w.eta)
      : w.pace == null ? "–" : "not before reset", w.eta);
    card.append(facts);
    return card;
  }

  function renderLimits() {
    const L = state.limits;
    const slot = $("limits-slot");
    if (!L) return;
    const wins = L.windows || [];
    const buds = L.budgets || [];
    slot.hidden = false;
    slot.dataset.generatedAt = String(L.generatedAt || "");
    $("limits-none").hidden = wins.length > 0;
    text($("limits-asof"), L.generatedAt ? "as of " + fmtEpoch(L.generatedAt) : "");
    const reached = L.limitReached || [];
    $("limits-reached").hidden = !reached.length;
    text($("limits-reached"), reached.length ? "Usage limit reached: resets " +
      fmtEpoch(reached[reached.length - 1].resetsAt) : "");
    $("limits-windows").replaceChildren(...wins.map(windowCard));
    const hist = wins.filter((w) => (w.history || []).length);
    $("limits-chart-box").hidden = !hist.length;
    if (hist.length) {
      // the last 8 days up to the status time (the span the server keeps per window)
      const xmax = (L.generatedAt || Math.max(...hist.flatMap((w) => w.history.map((p) => p[0])))) * 1000;
      const first = new Date(Math.min(xmax - 8 * 86400e3,
        ...hist.flatMap((w) => w.history.map((p) => p[0] * 1000))));
      first.setHours(0, 0, 0, 0);  // day ticks on midnights
      const xmin = first.getTime();
      const span = (xmax - xmin) / 1000;
      whenChart().then(() => chart("limits-chart", {
        type: "line",
        data: { datasets: hist.map((w, i) => ({
          label: w.label, data: w.history.map((p) => ({ x: p[0] * 1000, y: p[1] })),
          borderColor: PALETTE[i % PALETTE.length], backgroundColor: PALETTE[i % PALETTE.length],
          stepped: "before", pointRadius: 2, borderWidth: 1.5,
        })) },
        options: {
          scales: {
            x: { type: "linear", min: xmin, max: xmax, ticks: Object.assign(xTicks(9), {
              stepSize: span >= 2 * 86400 ? 86400e3 : undefined,
              callback: (v) => fmtTick(v, span) }) },
            y: { min: 0, suggestedMax: 100, ticks: { callback: (v) => v + "%" } },
          },
          plugins: { legend: { position: "bottom", labels: { boxWidth: 10 } },
            tooltip: { callbacks: {
              title: (items) => fmtWhen(new Date(items[0].parsed.x).toISOString()),
              label: (c) => c.dataset.label + ": " + fmtPct(c.parsed.y) } } },
        },
      }));
    }
    $("budgets-box").hidden = !buds.length;
    const body = $("budgets-table").tBodies[0];
    body.replaceChildren();
    for (const b of buds) {
      const tr = el("tr", b.exceeded ? "over" : "");
      tr.dataset.budget = b.name;
      const pct = el("td", "num", fmtPct(b.percent));
      pct.dataset.value = String(b.percent);
      const used = el("td", "num", fmtAmount(b.used, b.unit));
      used.dataset.value = String(b.used);
      tr.append(el("td", "", b.name), used, el("td", "num", fmtAmount(b.limit, b.unit)), pct,
        el("td", "num hide-s", fmtAmount(b.projected, b.unit) + " (" + fmtPct(b.projectedPercent) + ")"),
        el("td", "hide-s", b.period + " " + (b.periodKey || "")));
      body.append(tr);
    }
    if (!wins.length && !buds.length && route().view !== "limits") slot.hidden = true;
  }

  async function loadLimits() {
    try { state.limits = await api("limits"); } catch (e) { return; }
    renderLimits();
  }

  // the limits card lives on the overview and moves into #/limits when that view is shown
  function placeLimits(view) {
    const slot = $("limits-slot");
    if (view === "limits") {
      if (slot.parentElement !== $("view-limits")) $("view-limits").append(slot);
    } else if (slot.parentElement !== $("view-overview")) {
      $("view-overview").insertBefore(slot, $("active-list").closest(".card"));
    }
  }

  // -- spend -----------------------------------------------------------------------------------
  async function renderSpend() {
    await whenChart();
    const sp = state.spend;
    segOn("spend-period", sp.period);
    segOn("spend-by", sp.by);
    segOn("spend-range", sp.range);
    const key = sp.period + "/" + sp.by;
    const data = state.series[key] || (state.series[key] = await api("series",
      { period: sp.period, by: sp.by }));
    let n = data.buckets.length;
    if (sp.range !== "all") {
      const want = sp.period === "day" ? Number(sp.range) : Math.ceil(Number(sp.range) / 7);
      n = Math.min(n, want);
    }
    const from = data.buckets.length - n;
    const labels = data.buckets.slice(from);
    // colours follow the all-time order; series without cost in the range are left out
    const series = data.series.map((s, i) => ({
      s, cost: s.cost.slice(from), color: PALETTE[i % PALETTE.length],
    })).filter((x) => x.cost.some((v) => v > 0));
    chart("spend-chart", {
      type: "bar",
      data: {
        labels,
        datasets: series.map((x) => ({ label: x.s.label, data: x.cost, backgroundColor: x.color,
          stack: "cost" })),
      },
      options: {
        scales: { x: { stacked: true, ticks: xTicks(12) },
          y: { stacked: true, ticks: { callback: (v) => "$" + v } } },
        plugins: {
          // on a phone the table below is the legend
          legend: { display: !isNarrow(), position: "bottom", labels: { boxWidth: 10 } },
          tooltip: { callbacks: { label: (c) => c.dataset.label + ": " + fmtCost(c.parsed.y) } },
        },
      },
    });
    const body = $("spend-table").tBodies[0];
    body.replaceChildren();
    for (const x of series) {
      const tr = el("tr");
      const name = el("td");
      const dot = el("span", "swatch");
      dot.style.background = x.color;
      name.append(dot, document.createTextNode(x.s.label));
      if (x.s.key && x.s.key !== x.s.label) name.title = x.s.key;
      const sum = x.cost.reduce((a, b) => a + b, 0);
      const td = el("td", "num", fmtCost(sum));
      td.dataset.value = String(sum);
      tr.append(name, td);
      body.append(tr);
    }
  }

  function segOn(id, value) {
    for (const b of $(id).querySelectorAll("button")) b.classList.toggle("on", b.dataset.v === value);
  }

  // -- blocks ----------------------------------------------------------------------------------
  async function renderBlocks() {
    await whenChart();
    segOn("blocks-range", state.blocksRange);
    if (!state.blocks) state.blocks = (await api("blocks")).blocks.filter((b) => !b.isGap);
    if (!state.summary) await loadSummary();
    let blocks = state.blocks;
    if (state.blocksRange !== "all" && blocks.length) {
      const last = Date.parse(blocks[blocks.length - 1].startTime);
      const cut = last - Number(state.blocksRange) * 86400e3;
      blocks = blocks.filter((b) => Date.parse(b.startTime) >= cut);
    }
    const limit = state.summary.tokenLimit && state.summary.tokenLimit.tokens;
    text($("blocks-limit"), limit ? "limit " + fmtTokens(limit) + " tokens (" +
      state.summary.tokenLimit.source + ")" : "no token limit known");
    const accent = css("--accent"), bad = css("--bad"), ok = css("--ok");
    const datasets = [{
      type: "bar", label: "tokens", data: blocks.map((b) => b.totalTokens), order: 2,
      maxBarThickness: 40,
      backgroundColor: blocks.map((b) => b.isActive ? ok : limit && b.totalTokens > limit ? bad : accent),
    }];
    if (limit) {
      datasets.push({ type: "line", label: "limit", data: blocks.map(() => limit), order: 1,
        borderColor: bad, borderDash: [6, 4], borderWidth: 1.5, pointRadius: 0 });
    }
    chart("blocks-chart", {
      type: "bar",
      data: { labels: blocks.map((b) => fmtDay(b.startTime)), datasets },
      options: {
        scales: { y: { ticks: { callback: (v) => fmtTokens(v) } }, x: { ticks: xTicks(10) } },
        plugins: {
          legend: { display: !!limit, position: "bottom", labels: { boxWidth: 10 } },
          tooltip: { callbacks: { title: (items) => fmtWhen(blocks[items[0].dataIndex].startTime),
            label: (c) => c.dataset.label + ": " + fmtTokens(c.parsed.y) +
            (c.datasetIndex === 0 ? " · " + fmtCost(blocks[c.dataIndex].costUSD) : "") } },
        },
      },
    });
    const body = $("blocks-table").tBodies[0];
    body.replaceChildren();
    for (const b of blocks.slice().reverse().slice(0, 50)) {
      const tr = el("tr");
      tr.append(el("td", "when", fmtWhen(b.startTime) + (b.isActive ? " (active)" : "")),
        el("td", "num", fmtTokens(b.totalTokens)), el("td", "num", fmtCost(b.costUSD)),
        el("td", "hide-s", (b.models || []).join(", ")));
      body.append(tr);
    }
  }

  // -- the summary and its active sessions ----------------------------------------------------
  // The summary is fetched once (with the seq of the last push it includes); the pushes then
  // carry it without ``activeSessions`` (the event stream asks for active deltas): the list is
  // kept from each push's rows and ``activeIds`` (docs/protocol.md, "The active list"). A gap
  // in seq, or a push that arrives before the list, drops it and the summary is fetched again.
  async function loadSummary() {
    const queued = state.summaryQueued = [];  // pushes that arrive while the summary is on its way
    let res;
    try { res = await api("summary"); } finally {
      if (state.summaryQueued === queued) state.summaryQueued = null;
    }
    setActive(res.activeSessions || [], typeof res.seq === "number" ? res.seq : null);
    state.summary = res;
    state.summaryLoads = (state.summaryLoads || 0) + 1;
    document.body.dataset.summaryLoads = String(state.summaryLoads);
    for (const p of queued) applySummary(p);
    if (!state.summary) await loadSummary();  // a queued push skipped one
  }

  function setActive(rows, seq) {
    state.active = new Map(rows.map((r) => [r.sessionId, r]));
    state.activeSeq = seq;
  }

  // A push's summary with the active list kept current; false when the summary was dropped.
  function applySummary(p) {
    if (state.summaryQueued && !state.active) { state.summaryQueued.push(p); return false; }
    if (Array.isArray(p.summary.activeSessions)) {  // an older server: the whole list
      setActive(p.summary.activeSessions, typeof p.seq === "number" ? p.seq : null);
    } else if (!state.active || typeof p.seq !== "number" || state.activeSeq == null ||
        p.seq > state.activeSeq + 1) {
      state.active = null;
      state.summary = null;
      return false;
    } else if (p.seq > state.activeSeq) {
      const ids = new Set(p.activeIds || []);
      for (const row of p.sessions || []) {
        if (ids.has(row.sessionId)) state.active.set(row.sessionId, row);
        else state.active.delete(row.sessionId);
      }
      for (const id of p.removedSessions || []) state.active.delete(id);
      state.activeSeq = p.seq;
      state.activeDeltas = (state.activeDeltas || 0) + 1;  // (tests: pushes without the list)
      document.body.dataset.activeDeltas = String(state.activeDeltas);
    }
    state.summary = Object.assign({}, p.summary,
      { activeSessions: [...state.active.values()].sort(byNewest) });
    return true;
  }

  // -- sessions --------------------------------------------------------------------------------
  // The list is fetched once; each push then carries the changed sessions' rows (upserted
  // here) and a seq: a push that skips one, or a push of an older server, drops the list so the
  // next view fetches it again (docs/protocol.md, "Pushes carry deltas").
  async function loadSessions() {
    const queued = state.queued = [];  // pushes that arrive while the list is on its way
    let res;
    try { res = await api("sessions"); } finally { if (state.queued === queued) state.queued = null; }
    state.sessions = res.sessions;
    state.seq = typeof res.seq === "number" ? res.seq : null;
    state.listLoads = (state.listLoads || 0) + 1;
    document.body.dataset.listLoads = String(state.listLoads);
    for (const p of queued) applyRows(p);
    if (!state.sessions) await loadSessions();  // a queued push skipped one
  }

  function byNewest(a, b) {
    if (a.lastActivity !== b.lastActivity) return a.lastActivity < b.lastActivity ? 1 : -1;
    return a.sessionId < b.sessionId ? -1 : a.sessionId > b.sessionId ? 1 : 0;
  }

  // Upsert a push's rows into the loaded list; false when the list was dropped instead.
  function applyRows(p) {
    if (!state.sessions) {
      if (state.queued) state.queued.push(p);
      return false;
    }
    if (!Array.isArray(p.sessions) || typeof p.seq !== "number" || state.seq == null ||
        p.seq > state.seq + 1) {
      state.sessions = null;
      return false;
    }
    if (p.seq <= state.seq) return true;  // already in the list
    const index = new Map(state.sessions.map((r, i) => [r.sessionId, i]));
    for (const row of p.sessions) {
      const i = index.get(row.sessionId);
      if (i === undefined) { index.set(row.sessionId, state.sessions.length); state.sessions.push(row); }
      else state.sessions[i] = row;
    }
    const gone = new Set(p.removedSessions || []);
    if (gone.size) state.sessions = state.sessions.filter((r) => !gone.has(r.sessionId));
    state.sessions.sort(byNewest);
    state.seq = p.seq;
    return true;
  }

  function fillSelect(id, values, current) {
    const sel = $(id);
    const first = sel.options[0];
    sel.replaceChildren(first);
    for (const v of values) {
      const o = el("option", "", v);
      o.value = v;
      sel.append(o);
    }
    sel.value = values.includes(current) ? current : "";
  }

  async function renderSessions() {
    if (!state.sessions) await loadSessions();
    const rows = state.sessions;
    const f = state.filter;
    fillSelect("f-project", [...new Set(rows.map((r) => r.projectName))].sort(), f.project);
    fillSelect("f-tag", [...new Set(rows.flatMap((r) => r.tags || []))].sort(), f.tag);
    const agents = [...new Set(rows.map((r) => r.agent || "claude"))].sort();
    fillSelect("f-agent", agents, f.agent);
    $("f-agent").hidden = agents.length < 2;
    const q = f.q.trim().toLowerCase();
    let shown = rows.filter((r) => (!f.project || r.projectName === f.project) &&
      (!f.agent || (r.agent || "claude") === f.agent) &&
      (!f.tag || (r.tags || []).includes(f.tag)) &&
      (!q || [r.name, r.title, r.sessionId, r.projectPath, r.description, ...(r.tags || [])]
        .some((v) => v && String(v).toLowerCase().includes(q))));
    const { key, dir } = state.sort;
    const val = (r) => key === "name" ? String(r.name || r.title || r.sessionId).toLowerCase() : r[key];
    shown = shown.slice().sort((a, b) => {
      const x = val(a), y = val(b);
      return (x < y ? -1 : x > y ? 1 : 0) * dir;
    });
    for (const th of $("sessions-table").tHead.rows[0].cells) {
      th.classList.toggle("sorted", th.dataset.sort === key);
      th.classList.toggle("asc", th.dataset.sort === key && dir > 0);
    }
    const cost = shown.reduce((a, r) => a + r.totalCost, 0);
    text($("sessions-count"), shown.length + " sessions · " + fmtCost(cost));
    const body = $("sessions-table").tBodies[0];
    body.replaceChildren();
    const limit = state.showAll ? shown.length : 200;
    for (const r of shown.slice(0, limit)) {
      const tr = el("tr");
      tr.dataset.sessionId = r.sessionId;
      const name = el("td", "name");
      const a = el("a", "s-link", r.name || r.title || r.sessionId.slice(0, 8));
      a.href = "#/session/" + encodeURIComponent(r.sessionId);
      name.append(a);
      name.append(el("div", "sub show-s", r.projectName));
      if (r.description) name.append(el("div", "sub", r.description));
      const tags = el("td", "hide-s");
      const tw = el("div", "tags");
      for (const t of r.tags || []) tw.append(el("span", "tag", t));
      tags.append(tw);
      const costTd = el("td", "num cost", fmtCost(r.totalCost));
      costTd.dataset.value = String(r.totalCost);
      const edit = el("button", "edit", "Edit");
      edit.addEventListener("click", () => openEdit(r));
      const editTd = el("td");
      editTd.append(edit);
      if (EMBED) edit.hidden = true;
      tr.dataset.agent = r.agent || "claude";
      tr.append(name, el("td", "hide-s agent", r.agent || "claude"), el("td", "hide-s", r.projectName),
        el("td", "when", fmtWhen(r.lastActivity)),
        el("td", "num hide-s", fmtTokens(r.totalTokens)), costTd, tags, editTd);
      body.append(tr);
    }
    $("sessions-more").hidden = shown.length <= limit;
  }

  // -- one session -----------------------------------------------------------------------------
  async function renderSession(sid, g) {
    const s = await api("session", { sessionId: sid });
    await whenChart();
    if (stale(g)) return;
    state.session = s;
    text($("s-name"), s.name || s.title || "Session " + s.sessionId.slice(0, 8));
    text($("s-project"), s.projectPath);
    text($("s-id"), s.sessionId);
    text($("s-desc"), s.description || "");
    const tags = $("s-tags");
    tags.replaceChildren(...(s.tags || []).map((t) => el("span", "tag", t)));
    setNum("s-cost", s.totalCost, fmtCost);
    setNum("s-tokens", s.totalTokens, fmtTokens);
    text($("s-first"), fmtWhen(s.firstActivity));
    text($("s-last"), fmtWhen(s.lastActivity));
    $("s-edit").hidden = !!EMBED;
    chart("session-chart", {
      type: "bar",
      data: {
        labels: s.timeline.map((h) => fmtWhen(h.hour)),
        datasets: [{ label: "cost per hour", data: s.timeline.map((h) => h.cost),
          backgroundColor: css("--accent"), maxBarThickness: 56 }],
      },
      options: { scales: { y: { ticks: { callback: (v) => "$" + v } }, x: { ticks: xTicks(10) } },
        plugins: { legend: { display: false },
          tooltip: { callbacks: { label: (c) => fmtCost(c.parsed.y) + " · " +
            fmtTokens(s.timeline[c.dataIndex].totalTokens) + " tokens" } } } },
    });
    const mb = $("s-models").tBodies[0];
    mb.replaceChildren();
    for (const m of s.models || []) {
      const tr = el("tr");
      tr.append(el("td", "", m.modelName), el("td", "num", fmtTokens(m.totalTokens)),
        el("td", "num", fmtCost(m.cost)));
      mb.append(tr);
    }
    const bl = $("s-blocks");
    bl.replaceChildren();
    for (const b of s.blocks || []) {
      const li = el("li");
      li.append(el("span", "", fmtWhen(b.startTime)),
        el("span", "sub", fmtTokens(b.totalTokens) + " tokens · " + fmtCost(b.costUSD)));
      bl.append(li);
    }
  }

  // -- edit dialog -----------------------------------------------------------------------------
  let editing = null;
  function openEdit(row) {
    editing = row;
    $("e-name").value = row.nameSource === "user" ? row.name || "" : "";
    $("e-name").placeholder = row.title || "";
    $("e-tags").value = (row.tags || []).join(", ");
    $("e-desc").value = row.description || "";
    $("e-error").hidden = true;
    $("edit").showModal();
  }
  async function saveEdit(ev) {
    ev.preventDefault();
    if (!editing) return;
    const tags = $("e-tags").value.split(/[,\s]+/).map((t) => t.trim()).filter(Boolean);
    try {
      const row = await api("setSessionMetadata", undefined, {
        sessionId: editing.sessionId, name: $("e-name").value.trim() || null, tags,
        description: $("e-desc").value.trim() || null,
      });
      if (state.sessions) {
        const i = state.sessions.findIndex((r) => r.sessionId === row.sessionId);
        if (i >= 0) state.sessions[i] = row;
      }
      $("edit").close();
      editing = null;
      await render();
    } catch (e) {
      text($("e-error"), e.message);
      $("e-error").hidden = false;
    }
  }

  // -- routing ---------------------------------------------------------------------------------
  function route() {
    const h = location.hash.replace(/^#\/?/, "");
    if (h.startsWith("session/")) return { view: "session", id: decodeURIComponent(h.slice(8)) };
    if (["spend", "blocks", "sessions", "limits"].includes(h)) return { view: h };
    return { view: "overview" };
  }

  let generation = 0;
  const stale = (g) => g !== generation;  // a newer render started (e.g. a quick route change)

  async function render() {
    const g = ++generation;
    const r = route();
    for (const v of document.querySelectorAll(".view")) v.hidden = v.id !== "view-" + r.view;
    for (const a of document.querySelectorAll("nav a")) {
      a.classList.toggle("on", a.dataset.route === r.view ||
        (r.view === "session" && a.dataset.route === "sessions"));
    }
    showError("");
    placeLimits(r.view);
    try {
      if (r.view === "limits") {
        if (!state.limits) await loadLimits();
        else renderLimits();
      } else if (r.view === "overview") {
        // not awaited: the overview's own numbers paint without waiting for the limits
        if (!state.limits) loadLimits();
        else renderLimits();
      }
      if (r.view === "overview") {
        if (!state.summary) await loadSummary();
        renderOverview();
      } else if (r.view === "spend") await renderSpend();
      else if (r.view === "blocks") await renderBlocks();
      else if (r.view === "sessions") await renderSessions();
      else if (r.view === "session") await renderSession(r.id, g);
      if (stale(g)) return;
      document.body.dataset.view = r.view;
      document.body.dataset.ready = "1";
      if (!performance.getEntriesByName("tokmon-data").length) performance.mark("tokmon-data");
    } catch (e) {
      if (!stale(g)) showError(e.message);
    }
  }

  // -- live ------------------------------------------------------------------------------------
  let pending = null;
  function onUsage(ev) {
    const p = JSON.parse(ev.data);
    const kept = applySummary(p);
    // what depends on the whole history (charts, blocks) is fetched again when shown
    state.series = {};
    state.blocks = null;
    applyRows(p);
    state.updates += 1;
    document.body.dataset.updates = String(state.updates);
    const r = route();
    if (r.view === "overview") {
      if (kept) renderOverview(); else if (!state.summaryQueued) scheduleRender();
      loadLimits();
    }
    else if (r.view === "limits") loadLimits();
    else if (r.view === "session") { if ((p.changedSessions || []).includes(r.id)) scheduleRender(); }
    else scheduleRender();
  }
  function onLimits(ev) {
    state.limits = JSON.parse(ev.data);
    state.limitUpdates = (state.limitUpdates || 0) + 1;
    document.body.dataset.limitUpdates = String(state.limitUpdates);
    const v = route().view;
    if (v === "overview" || v === "limits") renderLimits();
    if (v === "overview" && state.summary) loadOfficialHistory();  // new official figures
  }
  // alerts (docs/limits.md): one banner per fired alert, newest first, until dismissed
  const ALERT_KINDS = { official: "Limit", projected: "Projected", block: "Block", budget: "Budget" };
  const MAX_ALERTS = 3;
  function onAlert(ev) {
    const a = JSON.parse(ev.data);
    if (!a || !a.message) return;
    state.alerts = (state.alerts || []).filter((x) => x.id !== a.id);
    state.alerts.unshift(a);
    state.alerts = state.alerts.slice(0, MAX_ALERTS);
    state.alertCount = (state.alertCount || 0) + 1;
    document.body.dataset.alerts = String(state.alertCount);
    renderAlerts();
  }
  function renderAlerts() {
    const box = $("alerts");
    const list = state.alerts || [];
    box.hidden = !list.length;
    box.replaceChildren(...list.map((a) => {
      const row = el("div", "alert" + ((a.value || 0) >= 100 ? " bad" : ""));
      row.dataset.alertId = String(a.id);
      row.dataset.kind = a.kind || "";
      const close = el("button", "dismiss", "×");
      close.title = "dismiss";
      close.setAttribute("aria-label", "dismiss this alert");
      close.addEventListener("click", () => {
        state.alerts = (state.alerts || []).filter((x) => x !== a);
        renderAlerts();
      });
      row.append(el("span", "what", ALERT_KINDS[a.kind] || "Alert"), el("span", "msg", a.message),
        el("span", "when", a.ts ? fmtEpoch(a.ts) : ""), close);
      return row;
    }));
  }
  function onMeta(ev) {
    const m = JSON.parse(ev.data);
    const rows = [state.sessions && state.sessions.find((r) => r.sessionId === m.sessionId),
      state.active && state.active.get(m.sessionId)];
    for (const row of new Set(rows)) {  // patched in place: the lists are not fetched again
      if (!row) continue;
      row.name = m.name;
      if ("nameSource" in m) row.nameSource = m.nameSource;
      row.tags = m.tags || [];
      row.description = m.description;
    }
    const v = route().view;
    if (v === "sessions" || v === "session" || v === "overview") scheduleRender();
  }
  function scheduleRender() {
    if (pending) return;
    pending = setTimeout(() => { pending = null; render(); }, 150);
  }
  function connect() {
    const live = $("live");
    if (EMBED) {
      text(live, "exported " + fmtWhen(EMBED.generatedAt));
      return;
    }
    const es = new EventSource("/api/events?activeDeltas=1");
    let hellos = 0;
    es.addEventListener("hello", () => {
      live.classList.add("on");
      text(live, "live");
      if (++hellos > 1) {  // reconnected (maybe to a restarted server): pushes were missed
        state.sessions = null;
        state.series = {};
        state.blocks = null;
        state.summary = null;
        state.active = null;
        scheduleRender();
      }
    });
    es.addEventListener("tokmon/usageChanged", onUsage);
    es.addEventListener("tokmon/metadataChanged", onMeta);
    es.addEventListener("tokmon/limitsChanged", onLimits);
    es.addEventListener("tokmon/alert", onAlert);
    es.onerror = () => { live.classList.remove("on"); text(live, "offline"); };
  }

  // -- wiring ----------------------------------------------------------------------------------
  function wireSeg(id, apply) {
    $(id).addEventListener("click", (ev) => {
      const b = ev.target.closest("button");
      if (!b) return;
      apply(b.dataset.v);
      render();
    });
  }
  function init() {
    wireSeg("spend-period", (v) => { state.spend.period = v; });
    wireSeg("spend-by", (v) => { state.spend.by = v; });
    wireSeg("spend-range", (v) => { state.spend.range = v; });
    wireSeg("blocks-range", (v) => { state.blocksRange = v; });
    $("f-q").addEventListener("input", (e) => { state.filter.q = e.target.value; renderSessions(); });
    $("f-project").addEventListener("change", (e) => { state.filter.project = e.target.value; renderSessions(); });
    $("f-tag").addEventListener("change", (e) => { state.filter.tag = e.target.value; renderSessions(); });
    $("f-agent").addEventListener("change", (e) => { state.filter.agent = e.target.value; renderSessions(); });
    $("sessions-more").addEventListener("click", () => { state.showAll = true; renderSessions(); });
    $("sessions-table").tHead.addEventListener("click", (ev) => {
      const th = ev.target.closest("th[data-sort]");
      if (!th) return;
      const key = th.dataset.sort;
      state.sort = state.sort.key === key ? { key, dir: -state.sort.dir }
        : { key, dir: key === "name" || key === "projectName" || key === "agent" ? 1 : -1 };
      renderSessions();
    });
    $("s-edit").addEventListener("click", () => state.session && openEdit(state.session));
    $("edit-form").addEventListener("submit", (ev) => {
      if (ev.submitter && ev.submitter.value === "cancel") { $("edit").close(); return; }
      saveEdit(ev);
    });
    window.addEventListener("hashchange", render);
    if (window.matchMedia) {
      window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", render);
    }
    connect();
    render();
  }
  init();
})();
