// Drover's console: a little plain JavaScript on top of server-rendered pages. It refreshes a
// page every five seconds when asked to (remembered per browser), and fills a task's page with
// the tail of its log and its report.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const box = document.getElementById("auto-refresh");
  if (box) {
    box.checked = localStorage.getItem("drover.autoRefresh") === "on";
    box.addEventListener("change", () => {
      localStorage.setItem("drover.autoRefresh", box.checked ? "on" : "off");
      if (box.checked) setTimeout(() => location.reload(), 5000);
    });
    if (box.checked) setTimeout(() => location.reload(), 5000);
  }

  const log = document.getElementById("task-log");
  if (log) {
    fetch(log.dataset.src, { credentials: "same-origin" })
      .then((r) => (r.ok ? r.text() : Promise.reject(r.status === 404 ? "no log yet" : "HTTP " + r.status)))
      .then((text) => {
        const lines = text.split("\n");
        log.textContent = lines.slice(Math.max(0, lines.length - 200)).join("\n");
        log.scrollTop = log.scrollHeight;
      })
      .catch((e) => { log.textContent = String(e); });
  }

  const report = document.getElementById("task-report");
  if (report) {
    fetch(report.dataset.src, { credentials: "same-origin" })
      .then((r) => (r.ok ? r.json() : Promise.reject(r.status === 404 ? "no report (yet)" : "HTTP " + r.status)))
      .then((json) => {
        const p = ((json || {}).ingestionStatsAndErrors || {}).payload || {};
        const totals = (p.rowStats || {}).totals ? p.rowStats.totals.buildSegments : (p.rowStats || {}).buildSegments;
        const summary = document.getElementById("task-rows");
        if (summary && totals) {
          summary.textContent = "state " + p.ingestionState + ": " + totals.processed + " rows processed, " +
            totals.unparseable + " unparseable, " + totals.thrownAway + " thrown away, " +
            totals.processedWithError + " with errors";
        }
        report.textContent = JSON.stringify(json, null, 2);
      })
      .catch((e) => { report.textContent = String(e); });
  }
});
