// Sorting and filtering for the leaderboard tables: no network, no innerHTML, text only.
(function () {
  function key(td) {
    var v = td.getAttribute("data-v");
    if (v !== null && v !== "") { return parseFloat(v); }
    return td.textContent.trim().toLowerCase();
  }
  function compare(a, b) {
    var na = typeof a === "number", nb = typeof b === "number";
    if (na && nb) { return a - b; }
    if (na) { return -1; }
    if (nb) { return 1; }
    return a < b ? -1 : (a > b ? 1 : 0);
  }
  document.querySelectorAll("table.sortable").forEach(function (table) {
    var heads = table.tHead.rows[0].cells;
    Array.prototype.forEach.call(heads, function (th, col) {
      th.classList.add("sortable");
      th.addEventListener("click", function () {
        var dir = th.getAttribute("data-dir") === "desc" ? "asc" : "desc";
        if (!th.getAttribute("data-dir") && th.getAttribute("data-first") === "asc") { dir = "asc"; }
        Array.prototype.forEach.call(heads, function (h) { h.removeAttribute("data-dir"); });
        th.setAttribute("data-dir", dir);
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (a, b) {
          var c = compare(key(a.cells[col]), key(b.cells[col]));
          return dir === "asc" ? c : -c;
        });
        rows.forEach(function (r) { body.appendChild(r); });
      });
    });
  });
  document.querySelectorAll("select[data-filter]").forEach(function (select) {
    select.addEventListener("change", function () {
      var table = document.getElementById(select.getAttribute("data-table"));
      var filters = document.querySelectorAll("select[data-table='" + table.id + "']");
      Array.prototype.forEach.call(table.tBodies[0].rows, function (row) {
        var show = true;
        filters.forEach(function (f) {
          if (f.value !== "" && row.getAttribute("data-" + f.getAttribute("data-filter")) !== f.value) { show = false; }
        });
        row.hidden = !show;
      });
    });
  });
})();
