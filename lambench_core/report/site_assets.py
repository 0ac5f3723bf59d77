"""The site's stylesheet and script. Plotly's own JavaScript is copied from the installed plotly
package, so the site needs no network when viewed (file:// or object storage)."""

from __future__ import annotations

STYLE = """
:root{--fg:#1d232a;--muted:#5f6b76;--line:#d9dee3;--head:#f2f5f7;--accent:#1f6feb;--bad:#b42318;--tie:#7a5af8}
*{box-sizing:border-box}
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:var(--fg);margin:0;background:#fbfcfd}
header{background:#10222f;color:#fff;padding:1rem 2rem}
header a{color:#cfe3ff;margin-right:1.2rem;text-decoration:none}
header h1{margin:.2rem 0 .4rem;font-size:1.5rem}
main{padding:1rem 2rem 3rem;max-width:1500px}
h2{margin-top:2rem;border-bottom:1px solid var(--line);padding-bottom:.3rem}
.muted{color:var(--muted)}
.table-wrap{overflow-x:auto}
table{border-collapse:collapse;background:#fff;margin:.5rem 0}
th,td{border:1px solid var(--line);padding:.35rem .6rem;text-align:right;white-space:nowrap}
th{background:var(--head);position:sticky;top:0}
th.sortable{cursor:pointer;user-select:none}
th.sortable:after{content:" ⇅";color:#98a2ad}
th[aria-sort=ascending]:after{content:" ▲";color:var(--accent)}
th[aria-sort=descending]:after{content:" ▼";color:var(--accent)}
td.name,th.name{text-align:left}
td .ci{color:var(--muted);font-size:.85em;display:block}
td.gap{color:var(--bad)}
td.partial{background:#fff8e6}
.tie{color:var(--tie);font-weight:600}
.plots{display:grid;grid-template-columns:repeat(auto-fit,minmax(480px,1fr));gap:1rem}
.plot{background:#fff;border:1px solid var(--line);min-height:420px}
dl.kv{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem}
dl.kv dt{font-weight:600}
dl.kv dd{margin:0;word-break:break-all}
ul.notes li{margin:.2rem 0}
code{background:#eef1f4;padding:0 .25rem;border-radius:3px}
.badge{display:inline-block;margin-left:.4rem;padding:0 .4rem;border-radius:.7rem;font-size:.8em;cursor:help}
.level-mismatch{background:#fff4e5;color:#9a4d00;border:1px solid #f5c48a}
table.element-map{border-collapse:separate;border-spacing:2px;background:none}
table.element-map td{width:3.1rem;height:2.6rem;padding:.1rem;text-align:center;font-weight:600;font-size:.85em;
  border:none}
table.element-map td small{display:block;font-weight:400;font-size:.75em}
table.element-map td.scored{color:#fff;cursor:pointer;text-shadow:0 0 2px #000}
table.element-map td.unscored{background:#c8cdd2;color:#555;cursor:pointer}
table.element-map td.absent{background:#f1f3f5;color:#b5bcc3}
table.element-map td.selected{outline:3px solid var(--accent)}
table.element-map tr.f-block-gap td{padding-top:.8rem}
.swatch{display:inline-block;width:.9em;height:.9em;vertical-align:middle;border:1px solid var(--line)}
tr.filtered-out{display:none}
table.labelled{margin:0}
table.labelled th,table.labelled td{padding:.1rem .5rem;white-space:normal}
table.labelled th{position:static;font-weight:600}
tr.baseline td{background:#f4f6f8;color:var(--muted);font-style:italic}
.weights{display:flex;flex-wrap:wrap;gap:1rem;align-items:flex-start}
.weights fieldset{border:1px solid var(--line);background:#fff}
.weights label{display:block;margin:.2rem 0}
.weights output{display:inline-block;width:2.5em;text-align:right}
table.head-to-head tr.beyond-noise td.verdict{font-weight:600}
table.head-to-head tr.hidden{display:none}
"""

SCRIPT = r"""
(function () {
  "use strict";
  function sortValue(cell) {
    var raw = cell.getAttribute("data-value");
    if (raw === null || raw === "") { return null; }
    var number = Number(raw);
    return isNaN(number) ? raw.toLowerCase() : number;
  }
  function compare(a, b, direction) {
    if (a === null && b === null) { return 0; }
    if (a === null) { return 1; }   // gaps stay at the bottom in both directions
    if (b === null) { return -1; }
    if (a < b) { return -direction; }
    if (a > b) { return direction; }
    return 0;
  }
  function makeSortable(table) {
    var headers = table.querySelectorAll("th.sortable");
    headers.forEach(function (header) {
      header.addEventListener("click", function () {
        var index = Array.prototype.indexOf.call(header.parentNode.children, header);
        var ascending = header.getAttribute("aria-sort") !== "ascending";
        headers.forEach(function (other) { other.removeAttribute("aria-sort"); });
        header.setAttribute("aria-sort", ascending ? "ascending" : "descending");
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (r1, r2) {
          return compare(sortValue(r1.cells[index]), sortValue(r2.cells[index]), ascending ? 1 : -1);
        });
        rows.forEach(function (row) { body.appendChild(row); });
      });
    });
  }
  function drawPlots() {
    var source = document.getElementById("plot-data");
    if (!source || typeof Plotly === "undefined") { return; }
    var figures = JSON.parse(source.textContent);
    figures.forEach(function (figure) {
      var target = document.getElementById(figure.id);
      if (!target) { return; }
      Plotly.newPlot(target, figure.data, figure.layout, {displaylogo: false, responsive: true})
        .then(function () { target.setAttribute("data-rendered", "true"); });
    });
  }
  // Clicking an element of the element map shows only the table rows of sets containing it.
  function elementFilter() {
    var selected = null;
    document.querySelectorAll("table.element-map td[data-element]").forEach(function (cell) {
      cell.addEventListener("click", function () {
        selected = selected === cell.dataset.element ? null : cell.dataset.element;
        document.querySelectorAll("table.element-map td[data-element]").forEach(function (other) {
          other.classList.toggle("selected", other.dataset.element === selected);
        });
        document.querySelectorAll("table.sortable-table tbody tr").forEach(function (row) {
          var elements = (row.dataset.elements || "").split(" ");
          row.classList.toggle("filtered-out", selected !== null && elements.indexOf(selected) < 0);
        });
      });
    });
  }
  // A table row of text cells (never HTML: names are user text), each with its class.
  function tableRow(values, classes) {
    var tr = document.createElement("tr");
    values.forEach(function (value, index) {
      var td = document.createElement("td");
      td.textContent = String(value);
      if (classes[index]) { td.className = classes[index]; }
      tr.appendChild(td);
    });
    return tr;
  }
  // The weights view: re-rank from the domain scores whenever a slider moves.
  function weightedMean(values, weights) {
    var total = 0, weight = 0;
    for (var domain in weights) {
      if (weights[domain] === 0) { continue; }
      var value = values[domain];
      if (value === null || value === undefined) { return null; }
      total += weights[domain] * value;
      weight += weights[domain];
    }
    return weight > 0 ? total / weight : 0;
  }
  function reweighting() {
    var source = document.getElementById("weights-data");
    if (!source) { return; }
    var data = JSON.parse(source.textContent);
    var inputs = Array.from(document.querySelectorAll("input[data-weight]"));
    var body = document.querySelector("table.reweighted tbody");
    function rerank() {
      var weights = {ff: {}, pc: {}}, mix = 1;
      inputs.forEach(function (input) {
        input.nextElementSibling.textContent = input.value;
        if (input.dataset.weight === "mix") { mix = parseFloat(input.value); }
        else { weights[input.dataset.weight][input.dataset.domain] = parseFloat(input.value); }
      });
      var rows = data.models.filter(function (m) { return m.ranked; }).map(function (m) {
        var ff = weightedMean(m.ff, weights.ff);
        var pc = mix < 1 ? weightedMean(m.pc, weights.pc) : 0;
        var score = (ff === null || pc === null) ? null : mix * ff + (1 - mix) * pc;
        return {model: m.model, score: score, tie: m.m_pc === null ? Infinity : m.m_pc,
                official: data.official.indexOf(m.model) + 1};
      });
      rows.sort(function (a, b) {
        if (a.score === null || b.score === null) { return (a.score === null) - (b.score === null); }
        return a.score - b.score || a.tie - b.tie || a.official - b.official;
      });
      body.textContent = "";
      rows.forEach(function (row, index) {
        var score = row.score === null ? "—" : row.score.toFixed(3);
        var tr = tableRow([index + 1, row.model, score, row.official], ["", "name", "", ""]);
        tr.dataset.model = row.model;
        body.appendChild(tr);
      });
    }
    inputs.forEach(function (input) { input.addEventListener("input", rerank); });
    document.getElementById("weights-reset").addEventListener("click", function () {
      inputs.forEach(function (input) { input.value = input.defaultValue; });
      rerank();
    });
    rerank();
  }
  function percentile(sorted, q) {
    var position = (sorted.length - 1) * q, low = Math.floor(position), high = Math.ceil(position);
    return sorted[low] + (sorted[high] - sorted[low]) * (position - low);
  }
  function format(value) {
    if (value === null || value === undefined) { return "—"; }
    var tiny = value !== 0 && Math.abs(value) < 0.001;
    return Math.abs(value) >= 1000 || tiny ? value.toExponential(2) : value.toFixed(3);
  }
  // Head to head: paired bootstrap differences of two models, recomputed when either is picked.
  function headToHead() {
    var source = document.getElementById("h2h-data");
    if (!source) { return; }
    var data = JSON.parse(source.textContent);
    var tail = (1 - parseFloat(source.dataset.confidence)) / 2;
    var pickA = document.getElementById("h2h-a"), pickB = document.getElementById("h2h-b");
    var beyondOnly = document.getElementById("h2h-beyond");
    var body = document.querySelector("table.head-to-head tbody");
    function render() {
      var a = pickA.value, b = pickB.value;
      body.textContent = "";
      data.rows.forEach(function (row) {
        if (!(a in row.values) || !(b in row.values)) { return; }
        var difference = row.values[b] - row.values[a], low = null, high = null;
        var ra = row.replicates[a], rb = row.replicates[b];
        if (ra && rb) {
          var paired = [];
          for (var i = 0; i < Math.min(ra.length, rb.length); i++) {
            if (ra[i] !== null && rb[i] !== null) { paired.push(rb[i] - ra[i]); }
          }
          if (paired.length > 1) {
            paired.sort(function (x, y) { return x - y; });
            low = percentile(paired, tail);
            high = percentile(paired, 1 - tail);
          }
        }
        var beyond = low !== null && (low > 0 || high < 0);
        var verdict = "within noise";
        if (low === null) { verdict = "no interval"; }
        else if (beyond) {
          var bBetter = row.higher_is_better ? difference > 0 : difference < 0;
          verdict = (bBetter ? "B" : "A") + " better";
        }
        var cells = [row.benchmark, row.metric + (row.unit ? " (" + row.unit + ")" : ""), format(row.values[a]),
                     format(row.values[b]), format(difference),
                     low === null ? "—" : "[" + format(low) + ", " + format(high) + "]", verdict];
        var tr = tableRow(cells, ["name", "name", "", "", "", "", "name verdict"]);
        tr.dataset.benchmark = row.benchmark;
        tr.dataset.metric = row.metric;
        if (beyond) { tr.classList.add("beyond-noise"); }
        if (beyondOnly.checked && !beyond) { tr.classList.add("hidden"); }
        body.appendChild(tr);
      });
    }
    [pickA, pickB, beyondOnly].forEach(function (control) { control.addEventListener("change", render); });
    render();
  }
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("table.sortable-table").forEach(makeSortable);
    elementFilter();
    reweighting();
    headToHead();
    drawPlots();
  });
})();
"""


def plotly_javascript() -> str:
    from plotly.offline import get_plotlyjs

    return get_plotlyjs()
