/* The network view: every clinic's metrics side by side, and the totals. One read per refresh. */
(function () {
  "use strict";
  const T = window.Traction;
  let currentText = null;

  async function refresh(lastPosition) {
    const network = await T.api("/v1/dashboard", { minPosition: lastPosition });
    const text = JSON.stringify(network.body);
    if (text !== currentText) {
      currentText = text;
      render(network.body);
      return { changed: true, position: network.position };
    }
    return { changed: false, position: network.position };
  }

  function adverseTotal(d) {
    return T.sum(T.SEVERITIES.map((s) => d.adverse_events[s]));
  }

  function render(network) {
    document.getElementById("content").hidden = false;
    const clinics = network.clinics;
    const totals = network.totals;
    const ids = clinics.map((c) => c.clinic_id);
    renderTotals(totals, clinics.length);
    renderTable(clinics, totals);
    T.whoWasCompared(document.getElementById("who-clinic"), totals.comparisons.clinic, "clinic");
    T.survivalChart("chart-km-setting", "km-setting-at-risk", totals.comparisons.setting.groups, "moderate", "setting");
    T.survivalChart("chart-km-modality", "km-modality-at-risk", totals.comparisons.starting_modality.groups, "moderate",
      "starting modality");
    T.whoWasCompared(document.getElementById("who-setting"), totals.comparisons.setting, "setting");
    T.whoWasCompared(document.getElementById("who-modality"), totals.comparisons.starting_modality, "starting modality");

    T.chart("chart-responders", {
      type: "bar",
      data: {
        labels: clinics.map((c) => [c.clinic_id, "n = " + c.programmes_with_reports]),
        datasets: [{
          label: "Responder rate (%)",
          data: clinics.map((c) => (c.programmes_with_reports ? (100 * c.responders) / c.programmes_with_reports : null)),
          intervals: clinics.map((c) => {
            const ci = c.responder_rates.moderate.among_reported.ci95;
            return ci ? [100 * ci[0], 100 * ci[1]] : null;
          }),
          counts: clinics.map((c) => ({ k: c.responders, n: c.programmes_with_reports })),
          backgroundColor: T.COLOURS.blue,
        }],
      },
      options: {
        plugins: { legend: { display: false }, tooltip: { callbacks: { label(item) {
          const c = clinics[item.dataIndex];
          return T.rateText(c.responders, c.programmes_with_reports);
        } } } },
        scales: { y: { min: 0, max: 100, title: { display: true, text: "responders (%)" } } },
      },
    }, {
      summary: clinics.length
        ? clinics.map((c) => c.clinic_id + " " + T.rateText(c.responders, c.programmes_with_reports)).join("; ") +
          ". Network: " + T.rateText(totals.responders, totals.programmes_with_reports) + "."
        : "No clinics yet.",
      table: {
        columns: [{ label: "Clinic" }, { label: "With a pain report (n)", num: true }, { label: "Responders", num: true },
          { label: "Rate", num: true }, { label: "95% CI", num: true }],
        rows: clinics.map((c) => [c.clinic_id, T.n(c.programmes_with_reports), T.n(c.responders),
          T.pct(c.responder_rate), T.ciText(T.wilson(c.responders, c.programmes_with_reports))]),
        totals: ["Network", T.n(totals.programmes_with_reports), T.n(totals.responders), T.pct(totals.responder_rate),
          T.ciText(T.wilson(totals.responders, totals.programmes_with_reports))],
      },
    });

    T.chart("chart-adherence", {
      type: "bar",
      data: {
        labels: clinics.map((c) => [c.clinic_id, "n = " + c.programmes_with_adherence]),
        datasets: [{ label: "Mean adherence (%)", backgroundColor: T.COLOURS.green,
          data: clinics.map((c) => (c.mean_adherence === null ? null : 100 * c.mean_adherence)) }],
      },
      options: { plugins: { legend: { display: false } },
        scales: { y: { min: 0, max: 100, title: { display: true, text: "mean adherence (%)" } } } },
    }, {
      summary: clinics.map((c) => c.clinic_id + " " + T.pct(c.mean_adherence) + " over " + T.plural(c.programmes_with_adherence, "programme")).join("; ") +
        (clinics.length ? ". Network " + T.pct(totals.mean_adherence) + " over " + T.n(totals.programmes_with_adherence) + "." : "No clinics yet."),
      table: {
        columns: [{ label: "Clinic" }, { label: "Programmes with ≥ 1 prescribed session (n)", num: true }, { label: "Mean adherence", num: true }],
        rows: clinics.map((c) => [c.clinic_id, T.n(c.programmes_with_adherence), T.pct(c.mean_adherence)]),
        totals: ["Network", T.n(totals.programmes_with_adherence), T.pct(totals.mean_adherence)],
      },
    });

    const perWeeks = (d, count) => T.per100(count, d.programme_weeks);
    T.chart("chart-adverse", {
      type: "bar",
      data: {
        labels: ids,
        datasets: T.SEVERITIES.map((s) => ({
          label: T.label(s), backgroundColor: T.SEVERITY_COLOURS[s],
          data: clinics.map((c) => perWeeks(c, c.adverse_events[s])),
        })),
      },
      options: { scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true, title: { display: true, text: "per 100 programme-weeks" } } } },
    }, {
      summary: clinics.map((c) => c.clinic_id + ": " + T.plural(adverseTotal(c), "event") + " over " +
        T.fixed(c.programme_weeks, 1) + " programme-weeks, " + T.per100Text(c.adverse_event_rates.per_100_programme_weeks) +
        " per 100").join("; ") + ".",
      table: {
        columns: [{ label: "Clinic" }, { label: "Programme-weeks", num: true }, { label: "Sessions", num: true }]
          .concat(T.SEVERITIES.map((s) => ({ label: T.label(s), num: true })))
          .concat([{ label: "Per 100 programme-weeks (95% CI)", num: true }, { label: "Per 100 sessions (95% CI)", num: true }]),
        rows: clinics.map((c) => [c.clinic_id, T.fixed(c.programme_weeks, 1), T.n(c.sessions_completed)]
          .concat(T.SEVERITIES.map((s) => T.n(c.adverse_events[s])))
          .concat([T.per100Text(c.adverse_event_rates.per_100_programme_weeks), T.per100Text(c.adverse_event_rates.per_100_sessions)])),
        totals: ["Network", T.fixed(totals.programme_weeks, 1), T.n(totals.sessions_completed)]
          .concat(T.SEVERITIES.map((s) => T.n(totals.adverse_events[s])))
          .concat([T.per100Text(totals.adverse_event_rates.per_100_programme_weeks),
            T.per100Text(totals.adverse_event_rates.per_100_sessions)]),
      },
    });

    const weeks = T.weekRange([].concat(...clinics.map((c) => c.weekly.map((w) => w.week))));
    const series = clinics.map((c) => new Map(c.weekly.map((w) => [w.week, w.sessions_completed])));
    T.chart("chart-weekly", {
      type: "line",
      data: {
        labels: weeks,
        datasets: clinics.map((c, i) => ({
          label: c.clinic_id, data: weeks.map((w) => series[i].get(w) || 0),
          borderColor: T.SERIES[i % T.SERIES.length], backgroundColor: T.SERIES[i % T.SERIES.length],
          pointRadius: 0, borderWidth: 2, borderDash: i >= T.SERIES.length ? [6, 3] : [],
        })),
      },
      options: { interaction: { mode: "index", intersect: false },
        scales: { x: { ticks: { maxRotation: 0, autoSkipPadding: 12 } },
          y: { beginAtZero: true, ticks: { precision: 0 }, title: { display: true, text: "sessions completed" } } } },
    }, {
      summary: weeks.length
        ? T.plural(weeks.length, "week") + " from " + weeks[0] + " to " + weeks[weeks.length - 1] + "; " +
          clinics.map((c) => c.clinic_id + " " + T.plural(c.sessions_completed, "session")).join(", ") + "."
        : "No sessions yet.",
      table: {
        columns: [{ label: "ISO week" }].concat(clinics.map((c) => ({ label: c.clinic_id, num: true }))),
        rows: weeks.map((w) => [w].concat(series.map((m) => T.n(m.get(w) || 0)))),
      },
    });
  }

  function renderTotals(t, clinicCount) {
    const adverse = adverseTotal(t);
    const rates = t.responder_rates.moderate;
    const km = t.time_to_response.moderate;
    T.fillKpis(document.getElementById("totals"), [
      { key: "clinics", label: "Clinics", value: T.n(clinicCount), note: T.plural(t.programmes, "programme") },
      { key: "status", label: "Active · paused · discharged", value: T.STATUSES.map((s) => T.n(t.by_status[s] || 0)).join(" · ") },
      { key: "responder-rate", label: "Responder rate, with a pain report",
        value: rates.among_reported.programmes ? T.pct(rates.among_reported.rate) : "—",
        note: rates.among_reported.programmes ? T.n(rates.among_reported.responders) + " of " +
          T.plural(rates.among_reported.programmes, "programme") + " with a pain report; 95% CI " + T.ciPct(rates.among_reported.ci95)
          : "no programme with a pain report yet" },
      { key: "responder-rate-discharged", label: "Responder rate, discharged",
        value: rates.among_discharged.programmes ? T.pct(rates.among_discharged.rate) : "—",
        note: rates.among_discharged.programmes ? T.n(rates.among_discharged.responders) + " of " +
          T.plural(rates.among_discharged.programmes, "discharged programme") + ", no report counting as no response; 95% CI " +
          T.ciPct(rates.among_discharged.ci95) : "no programme discharged yet" },
      { key: "time-to-response", label: "Median time to response",
        value: km.median_days === null ? "not reached" : T.fixed(km.median_days, 1) + " days",
        note: "Kaplan–Meier over all " + T.plural(km.programmes, "programme") },
      { key: "adherence", label: "Mean adherence", value: T.pct(t.mean_adherence), note: "over " + T.plural(t.programmes_with_adherence, "programme") },
      { key: "sessions", label: "Sessions completed", value: T.n(t.sessions_completed), note: T.n(t.minutes_completed) + " minutes" },
      { key: "adverse", label: "Adverse events", value: T.n(adverse),
        note: T.SEVERITIES.map((s) => T.n(t.adverse_events[s]) + " " + s).join(" · ") + "; " +
          T.fixed(t.adverse_event_rates.per_100_programme_weeks.rate, 2) + " per 100 programme-weeks" },
    ]);
  }

  function renderTable(clinics, totals) {
    const rate = (r) => (r.programmes ? T.pct(r.rate) + " (" + T.n(r.responders) + " of " + T.n(r.programmes) + "; " + T.ciPct(r.ci95) + ")" : "—");
    const row = (d, name) => [name,
      T.n(d.programmes), T.STATUSES.map((s) => T.n(d.by_status[s] || 0)).join(" / "),
      rate(d.responder_rates.moderate.among_reported), rate(d.responder_rates.moderate.among_discharged),
      T.medianText(d.time_to_response.moderate), T.fixed(d.median_days_to_response_among_responders, 1),
      T.signed(d.mean_pain_change, 1) + (d.pain_change.ci95 ? " (" + T.ciFixed(d.pain_change.ci95, 1) + ")" : ""),
      T.pct(d.mean_adherence) + " (" + T.n(d.programmes_with_adherence) + ")",
      T.n(d.sessions_completed), T.SEVERITIES.map((s) => T.n(d.adverse_events[s])).join(" / "),
      T.per100Text(d.adverse_event_rates.per_100_programme_weeks)];
    // Admin tokens read only this view: their clinic links answer "not allowed".
    const clinicLink = (c) => T.el("a", { href: "/dashboard/clinics/" + encodeURIComponent(c.clinic_id) }, c.clinic_id);
    T.fillTable(document.getElementById("clinic-table"), {
      caption: "Rates with their denominators and 95% intervals.",
      rowHeaders: true,
      columns: [{ label: "Clinic" }, { label: "Programmes", num: true }, { label: "Active / paused / discharged", num: true },
        { label: "Responder rate, with a pain report", num: true }, { label: "Responder rate, discharged", num: true },
        { label: "Median time to response, Kaplan–Meier", num: true },
        { label: "Median days to response among responders only", num: true }, { label: "Mean pain change (95% CI)", num: true },
        { label: "Mean adherence (n)", num: true }, { label: "Sessions", num: true },
        { label: "Adverse events mild / moderate / severe", num: true }, { label: "Adverse per 100 programme-weeks (95% CI)", num: true }],
      rows: clinics.map((c) => row(c, clinicLink(c))),
      totals: row(totals, "Network"),
    });
  }

  T.start(refresh);
})();
