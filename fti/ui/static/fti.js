// fti web UI: charts from JSON blocks (uPlot), the CSRF header on htmx requests. No inline script,
// no eval: the Content-Security-Policy allows scripts from this server only.
(function () {
  "use strict";

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  document.addEventListener("htmx:configRequest", function (event) {
    event.detail.headers["X-CSRF-Token"] = csrfToken();
  });

  function barsChart(el, data, height) {
    var labels = data.labels;
    var xs = labels.map(function (_, i) { return i; });
    return new uPlot({
      width: el.clientWidth || 320,
      height: height,
      legend: { show: false },
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: false, range: [-0.5, labels.length - 0.5] } },
      axes: [
        { values: function (u, ticks) { return ticks.map(function (t) { return labels[t] === undefined ? "" : labels[t].split(" ")[0]; }); }, size: 30 },
        { size: 50 },
      ],
      series: [{}, { label: data.label || "count", fill: "rgba(52, 101, 164, 0.55)", stroke: "#3465a4", paths: uPlot.paths.bars({ size: [0.9, 80] }), points: { show: false } }],
    }, [xs, data.values], el);
  }

  function lineChart(el, data, height) {
    var colours = ["#3465a4", "#c4432b", "#4e9a06", "#75507b", "#c17d11"];
    var names = Object.keys(data.series);
    var series = [{ label: data.xlabel || "x" }].concat(names.map(function (name, i) {
      return { label: name, stroke: colours[i % colours.length], width: 2, points: { size: 5 } };
    }));
    return new uPlot({
      width: el.clientWidth || 320,
      height: height,
      scales: { x: { time: data.time === true } },
      series: series,
    }, [data.x].concat(names.map(function (n) { return data.series[n]; })), el);
  }

  function drawCharts(root) {
    if (typeof uPlot === "undefined") { return; }
    root.querySelectorAll("[data-chart]").forEach(function (el) {
      if (el.dataset.drawn) { return; }
      var source = document.getElementById(el.dataset.chart);
      if (!source) { return; }
      var data = JSON.parse(source.textContent);
      var height = parseInt(el.dataset.height || "180", 10);
      (data.kind === "bars" ? barsChart : lineChart)(el, data, height);
      el.dataset.drawn = "1";
    });
  }

  document.addEventListener("DOMContentLoaded", function () { drawCharts(document); });
  document.addEventListener("htmx:afterSwap", function (event) { drawCharts(event.target); });
})();
