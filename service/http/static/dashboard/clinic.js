/* The clinic view: its dashboard, and its programme summaries paged through the cursor.
 *
 * Two reads per refresh (the dashboard, then the summaries at least as fresh as it),
 * plus one more page per 500 programmes. Comparisons by setting and modality, the
 * adherence histogram and every Wilson interval are computed here from the counts.
 */
(function () {
  "use strict";
  const T = window.Traction;
  const clinicId = document.body.dataset.clinicId;
  const base = "/v1/clinics/" + encodeURIComponent(clinicId);
  const PAGE_ROWS = 50;
  /** Axis labels that fit under a bar; the summaries and tables say them in full. */
  const SHORT = { mechanical_table: "Table", decompression_mat: "Mat", stretching_exercises: "Stretching" };
  let current = { dashboardText: null, dashboard: null, summaries: [] };
  let shownRows = PAGE_ROWS;

  async function refresh(lastPosition) {
    const dashboard = await T.api(base + "/dashboard", { minPosition: lastPosition });
    const text = JSON.stringify(dashboard.body);
    if (text === current.dashboardText) return { changed: false, position: dashboard.position };
    // The summaries at least as fresh as the dashboard we just read.
    const list = await T.allPages(base + "/programmes", "programmes", { minPosition: dashboard.position });
    current = { dashboardText: text, dashboard: dashboard.body, summaries: list.items };
    render(dashboard.body, list.items);
    return { changed: true, position: dashboard.position };
  }

  function render(d, summaries) {
    document.getElementById("content").hidden = false;
    renderKpis(d);
    renderStatus(d);
    renderOutcomes(d);
    renderAdherence(summaries);
    renderWeekly(d);
    renderAdverse(d);
    renderGroups("chart-setting", summaries, "setting", T.SETTINGS, "setting");
    renderGroups("chart-modality", summaries, "starting_modality", T.MODALITIES, "starting modality");
    renderComparison(summaries);
    renderProgrammes(summaries);
  }

  function renderKpis(d) {
    const adverse = T.sum(T.SEVERITIES.map((s) => d.adverse_events[s]));
    const ci = T.wilson(d.responders, d.programmes_with_reports);
    T.fillKpis(document.getElementById("kpis"), [
      { key: "programmes", label: "Programmes", value: T.n(d.programmes),
        note: T.STATUSES.map((s) => T.n(d.by_status[s] || 0) + " " + s).join(" · ") },
      { key: "responder-rate", label: "Responder rate",
        value: d.programmes_with_reports ? T.pct(d.responders / d.programmes_with_reports) : "—",
        note: d.programmes_with_reports
          ? T.n(d.responders) + " of " + T.n(d.programmes_with_reports) + " programmes with a pain report; 95% CI " + T.ciText(ci)
          : "no programme with a pain report yet" },
      { key: "days-to-response", label: "Median days to first response",
        value: T.fixed(d.median_days_to_response, 1), note: "over " + T.n(d.responders) + " responders" },
      { key: "pain-change", label: "Mean pain change (0–10)", value: T.signed(d.mean_pain_change, 1),
        note: "baseline to latest report, over " + T.n(d.programmes_with_reports) + " programmes with a report" },
      { key: "adherence", label: "Mean adherence", value: T.pct(d.mean_adherence),
        note: "over " + T.n(d.programmes_with_adherence) + " programmes with ≥ 1 prescribed session" },
      { key: "sessions", label: "Sessions completed", value: T.n(d.sessions_completed),
        note: T.n(d.minutes_completed) + " minutes" },
      { key: "adverse", label: "Adverse events", value: T.n(adverse),
        note: T.SEVERITIES.map((s) => T.n(d.adverse_events[s]) + " " + s).join(" · ") +
          "; " + T.fixed(T.per100(adverse, d.sessions_completed), 1) + " per 100 sessions" },
    ]);
  }

  function renderStatus(d) {
    const counts = T.STATUSES.map((s) => d.by_status[s] || 0);
    const outcomes = T.OUTCOMES.filter((o) => d.discharged_by_outcome[o]);
    T.chart("chart-status", {
      type: "bar",
      data: {
        labels: T.STATUSES.map(T.label),
        datasets: [{ label: "Programmes", data: counts,
          backgroundColor: T.STATUSES.map((s) => T.STATUS_COLOURS[s]) }],
      },
      options: { plugins: { legend: { display: false } },
        scales: { y: { beginAtZero: true, ticks: { precision: 0 }, title: { display: true, text: "programmes" } } } },
    }, {
      summary: T.n(d.programmes) + " programmes: " +
        T.STATUSES.map((s, i) => T.n(counts[i]) + " " + s).join(", ") + ". Discharged by outcome: " +
        (outcomes.length ? outcomes.map((o) => T.n(d.discharged_by_outcome[o]) + " " + T.label(o).toLowerCase()).join(", ") : "none yet") + ".",
      table: {
        columns: [{ label: "Status or outcome" }, { label: "Programmes", num: true }, { label: "Share", num: true }],
        rows: T.STATUSES.map((s, i) => [T.label(s), T.n(counts[i]), T.pct(d.programmes ? counts[i] / d.programmes : null)])
          .concat(T.OUTCOMES.map((o) => ["Discharged: " + T.label(o).toLowerCase(), T.n(d.discharged_by_outcome[o] || 0),
            T.pct(d.by_status.discharged ? (d.discharged_by_outcome[o] || 0) / d.by_status.discharged : null)])),
        totals: ["All programmes", T.n(d.programmes), d.programmes ? "100%" : "—"],
      },
    });
  }

  function renderOutcomes(d) {
    const discharged = d.by_status.discharged || 0;
    const counts = T.OUTCOMES.map((o) => d.discharged_by_outcome[o] || 0);
    T.chart("chart-outcome", {
      type: "bar",
      data: {
        labels: T.OUTCOMES.map((o) => T.label(o).split(" ")),
        datasets: [{ label: "Discharged programmes", data: counts, backgroundColor: T.COLOURS.grey }],
      },
      options: { plugins: { legend: { display: false } },
        scales: { y: { beginAtZero: true, ticks: { precision: 0 }, title: { display: true, text: "programmes" } } } },
    }, {
      summary: discharged
        ? "Of " + T.n(discharged) + " discharged programmes: " +
          T.OUTCOMES.map((o, i) => T.n(counts[i]) + " " + T.label(o).toLowerCase()).join(", ") + "."
        : "No programme has been discharged yet.",
      table: {
        columns: [{ label: "Outcome" }, { label: "Programmes", num: true }, { label: "Share of discharged", num: true }],
        rows: T.OUTCOMES.map((o, i) => [T.label(o), T.n(counts[i]), T.pct(discharged ? counts[i] / discharged : null)]),
        totals: ["Discharged", T.n(discharged), discharged ? "100%" : "—"],
      },
    });
  }

  function renderAdherence(summaries) {
    const { bins, n, missing } = T.adherenceBins(summaries);
    const labels = bins.map((_, i) => i * 10 + "–" + (i + 1) * 10);
    T.chart("chart-adherence", {
      type: "bar",
      data: { labels, datasets: [{ label: "Programmes", data: bins, backgroundColor: T.COLOURS.blue,
        barPercentage: 1, categoryPercentage: 0.95 }] },
      options: { plugins: { legend: { display: false } },
        scales: {
          x: { title: { display: true, text: "adherence (%): sessions completed ÷ prescribed" } },
          y: { beginAtZero: true, ticks: { precision: 0 }, title: { display: true, text: "programmes" } },
        } },
    }, {
      summary: "n = " + T.n(n) + " programmes with at least one prescribed session" +
        (missing ? " (" + T.n(missing) + " without one are not shown)" : "") + "; " +
        T.n(bins[9]) + " at 90–100%, " + T.n(T.sum(bins.slice(0, 5))) + " below 50%.",
      table: {
        columns: [{ label: "Adherence" }, { label: "Programmes", num: true }, { label: "Share of n", num: true }],
        rows: bins.map((count, i) => [labels[i] + "%", T.n(count), T.pct(n ? count / n : null)]),
        totals: ["n", T.n(n), n ? "100%" : "—"],
      },
    });
  }

  function renderWeekly(d) {
    const byWeek = new Map(d.weekly.map((w) => [w.week, w]));
    const weeks = T.weekRange(d.weekly.map((w) => w.week));
    const rows = weeks.map((week) => byWeek.get(week) || { week, sessions_completed: 0, pain_reports: 0, mean_pain: null });
    const reported = d.weekly.filter((w) => w.pain_reports > 0);
    T.chart("chart-weekly", {
      type: "bar",
      data: {
        labels: weeks,
        datasets: [
          { type: "bar", label: "Sessions completed", data: rows.map((w) => w.sessions_completed),
            backgroundColor: T.COLOURS.sky, yAxisID: "y", order: 2 },
          { type: "line", label: "Mean reported pain (0–10)", data: rows.map((w) => w.mean_pain),
            borderColor: T.COLOURS.orange, backgroundColor: T.COLOURS.orange, yAxisID: "pain",
            spanGaps: false, pointRadius: 2, borderWidth: 2, order: 1 },
        ],
      },
      options: {
        interaction: { mode: "index", intersect: false },
        scales: {
          x: { ticks: { maxRotation: 0, autoSkipPadding: 12 } },
          y: { beginAtZero: true, ticks: { precision: 0 }, title: { display: true, text: "sessions" } },
          pain: { position: "right", min: 0, max: 10, grid: { drawOnChartArea: false },
            title: { display: true, text: "mean pain" } },
        },
        plugins: { tooltip: { callbacks: { afterLabel(item) {
          return item.datasetIndex === 1 ? "n = " + T.n(rows[item.dataIndex].pain_reports) + " reports" : "";
        } } } },
      },
    }, {
      summary: weeks.length
        ? T.n(weeks.length) + " weeks from " + weeks[0] + " to " + weeks[weeks.length - 1] + ": " +
          T.n(d.sessions_completed) + " sessions completed; " + T.n(T.sum(d.weekly.map((w) => w.pain_reports))) +
          " pain reports in " + T.n(reported.length) + " weeks."
        : "No sessions or pain reports yet.",
      table: {
        columns: [{ label: "ISO week" }, { label: "Sessions completed", num: true },
          { label: "Pain reports (n)", num: true }, { label: "Mean pain", num: true }],
        rows: rows.map((w) => [w.week, T.n(w.sessions_completed), T.n(w.pain_reports), T.fixed(w.mean_pain, 1)]),
      },
    });
  }

  function renderAdverse(d) {
    const counts = T.SEVERITIES.map((s) => d.adverse_events[s]);
    T.chart("chart-adverse", {
      type: "bar",
      data: { labels: T.SEVERITIES.map(T.label), datasets: [{ label: "Adverse events", data: counts,
        backgroundColor: T.SEVERITIES.map((s) => T.SEVERITY_COLOURS[s]) }] },
      options: { plugins: { legend: { display: false } },
        scales: { y: { beginAtZero: true, ticks: { precision: 0 }, title: { display: true, text: "events" } } } },
    }, {
      summary: T.SEVERITIES.map((s, i) => T.n(counts[i]) + " " + s).join(", ") + " over " +
        T.n(d.sessions_completed) + " completed sessions (" +
        T.fixed(T.per100(T.sum(counts), d.sessions_completed), 2) + " per 100 sessions). A severe event pauses the programme.",
      table: {
        columns: [{ label: "Severity" }, { label: "Events", num: true }, { label: "Per 100 sessions", num: true }],
        rows: T.SEVERITIES.map((s, i) => [T.label(s), T.n(counts[i]), T.fixed(T.per100(counts[i], d.sessions_completed), 2)]),
        totals: ["All", T.n(T.sum(counts)), T.fixed(T.per100(T.sum(counts), d.sessions_completed), 2)],
      },
    });
  }

  function groupStats(summaries) {
    const responders = T.responderStats(summaries);
    const adherence = summaries.map((s) => s.adherence).filter((a) => a !== null);
    const changes = summaries.map((s) => s.pain_change).filter((c) => c !== null);
    const sessions = T.sum(summaries.map((s) => s.sessions_completed));
    const adverse = T.SEVERITIES.map((sev) => T.sum(summaries.map((s) => s.adverse_events[sev])));
    return { programmes: summaries.length, responders, adherence: T.mean(adherence), adherenceN: adherence.length,
      painChange: T.mean(changes), painChangeN: changes.length, sessions, adverse };
  }

  function renderGroups(canvasId, summaries, field, keys, what) {
    const present = keys.filter((key) => summaries.some((s) => s[field] === key))
      .concat([...new Set(summaries.map((s) => s[field]))].filter((key) => !keys.includes(key)));
    const stats = present.map((key) => T.responderStats(summaries.filter((s) => s[field] === key)));
    const labels = present.map((key, i) => [SHORT[key] || T.label(key), "n = " + stats[i].n]);
    T.chart(canvasId, {
      type: "bar",
      data: {
        labels,
        datasets: [{
          label: "Responder rate (%)",
          data: stats.map((s) => (s.n ? (100 * s.k) / s.n : null)),
          intervals: stats.map((s) => (s.ci ? [100 * s.ci.low, 100 * s.ci.high] : null)),
          counts: stats.map((s) => ({ k: s.k, n: s.n })),
          backgroundColor: present.map((_, i) => T.SERIES[i % T.SERIES.length]),
        }],
      },
      options: {
        plugins: { legend: { display: false }, tooltip: { callbacks: { label(item) {
          const s = stats[item.dataIndex];
          return T.rateText(s.k, s.n);
        } } } },
        scales: { y: { min: 0, max: 100, title: { display: true, text: "responders (%)" } } },
      },
    }, {
      summary: present.length
        ? "By " + what + ": " + present.map((key, i) => T.label(key) + " " + T.rateText(stats[i].k, stats[i].n)).join("; ") + "."
        : "No programmes yet.",
      table: {
        columns: [{ label: what.charAt(0).toUpperCase() + what.slice(1) }, { label: "With a pain report (n)", num: true },
          { label: "Responders", num: true }, { label: "Rate", num: true }, { label: "95% CI", num: true }],
        rows: present.map((key, i) => [T.label(key), T.n(stats[i].n), T.n(stats[i].k),
          T.pct(stats[i].rate), T.ciText(stats[i].ci)]),
      },
    });
  }

  function renderComparison(summaries) {
    const columns = [
      { label: "Group" }, { label: "Programmes", num: true }, { label: "With a pain report (n)", num: true },
      { label: "Responders", num: true }, { label: "Responder rate (95% CI)", num: true },
      { label: "Mean adherence (n)", num: true }, { label: "Mean pain change (n)", num: true },
      { label: "Sessions", num: true }, { label: "Adverse events mild / moderate / severe", num: true },
      { label: "Adverse per 100 sessions", num: true },
    ];
    const row = (name, group) => {
      const g = groupStats(group);
      return [name, T.n(g.programmes), T.n(g.responders.n), T.n(g.responders.k),
        g.responders.n ? T.pct(g.responders.rate) + " (" + T.ciText(g.responders.ci) + ")" : "—",
        T.pct(g.adherence) + " (" + T.n(g.adherenceN) + ")", T.signed(g.painChange, 1) + " (" + T.n(g.painChangeN) + ")",
        T.n(g.sessions), g.adverse.map(T.n).join(" / "), T.fixed(T.per100(T.sum(g.adverse), g.sessions), 2)];
    };
    const rows = [];
    const section = (title) => T.el("tr", {}, T.el("th", { scope: "colgroup", colspan: columns.length, class: "group" }, title));
    for (const [title, field, keys] of [["By setting", "setting", T.SETTINGS], ["By starting modality", "starting_modality", T.MODALITIES]]) {
      rows.push(section(title));
      for (const key of keys) {
        const group = summaries.filter((s) => s[field] === key);
        if (group.length) rows.push(row(T.label(key), group));
      }
    }
    T.fillTable(document.getElementById("compare-table"), {
      caption: "Computed from the " + T.n(summaries.length) + " programme summaries; each rate with its denominator.",
      columns, rows, rowHeaders: true, totals: row("All programmes", summaries),
    });
  }

  function renderProgrammes(summaries) {
    const filter = document.getElementById("status-filter").value;
    const chosen = filter ? summaries.filter((s) => s.status === filter) : summaries;
    const visible = chosen.slice(0, shownRows);
    const link = (s) => T.el("a", { href: "/dashboard/clinics/" + encodeURIComponent(clinicId) + "/programmes/" + encodeURIComponent(s.programme_id) }, s.patient_ref);
    const status = (s) => T.el("span", { class: "tag tag-" + s.status }, T.label(s.status) + (s.outcome ? ": " + T.label(s.outcome).toLowerCase() : ""));
    T.fillTable(document.getElementById("programme-table"), {
      caption: "Newest first. Pain is 0–10; a responder has a report at or below both baseline − 2 and 70% of baseline.",
      rowHeaders: true,
      columns: [{ label: "Patient ref" }, { label: "Status" }, { label: "Condition" }, { label: "Setting" },
        { label: "Starting modality" }, { label: "Started" }, { label: "Pain: baseline → latest", num: true },
        { label: "Responder" }, { label: "Adherence", num: true }, { label: "Sessions done / missed", num: true },
        { label: "Adverse events", num: true }],
      rows: visible.map((s) => [link(s), status(s), T.label(s.condition), T.label(s.setting), T.label(s.starting_modality),
        T.date(s.started_at), s.baseline_pain + " → " + (s.latest_pain === null ? "—" : s.latest_pain),
        s.pain_reports === 0 ? "no reports" : s.responded ? "yes, day " + T.fixed(s.days_to_response, 0) : "not yet",
        T.pct(s.adherence), T.n(s.sessions_completed) + " / " + T.n(s.sessions_missed),
        T.n(T.sum(T.SEVERITIES.map((sev) => s.adverse_events[sev])))]),
    });
    document.getElementById("list-count").textContent = "Showing " + T.n(visible.length) + " of " + T.n(chosen.length) +
      (filter ? " " + filter : "") + " programmes.";
    document.getElementById("show-more").hidden = visible.length >= chosen.length;
  }

  document.getElementById("status-filter").addEventListener("change", () => {
    shownRows = PAGE_ROWS;
    renderProgrammes(current.summaries);
  });
  document.getElementById("show-more").addEventListener("click", () => {
    shownRows += PAGE_ROWS * 4;
    renderProgrammes(current.summaries);
  });

  T.start(refresh);
})();
