// The page's behaviour: thumbnails from the inlined map, sortable tables, the class search, the model pickers,
// and the chart (Vega-Embed, inlined above). Nothing here reaches the network.
(function () {
  "use strict";
  const thumbs = JSON.parse(document.getElementById("thumbs").textContent);
  document.querySelectorAll("img[data-thumb]").forEach((img) => { img.src = thumbs[img.dataset.thumb]; });

  function cellValue(row, column) {
    const cell = row.children[column];
    const value = cell.dataset.value !== undefined ? cell.dataset.value : cell.textContent.trim();
    const number = parseFloat(value);
    return value !== "" && !isNaN(number) && isFinite(value) ? number : value.toLowerCase();
  }
  document.querySelectorAll("table.sortable-table").forEach((table) => {
    table.querySelectorAll("th.sortable").forEach((header, column) => {
      header.addEventListener("click", () => {
        const descending = header.getAttribute("aria-sort") !== "descending";
        table.querySelectorAll("th.sortable").forEach((other) => other.removeAttribute("aria-sort"));
        header.setAttribute("aria-sort", descending ? "descending" : "ascending");
        const body = table.tBodies[0];
        const rows = Array.from(body.rows);
        rows.sort((a, b) => {
          const x = cellValue(a, header.cellIndex), y = cellValue(b, header.cellIndex);
          const blankX = x === "" || x === "–", blankY = y === "" || y === "–";
          if (blankX !== blankY) return blankX ? 1 : -1;  // rows without the figure stay last
          const order = x < y ? -1 : x > y ? 1 : 0;
          return descending ? -order : order;
        });
        rows.forEach((row) => body.appendChild(row));
      });
    });
  });

  const search = document.getElementById("class-search");
  if (search) {
    const rows = Array.from(document.querySelectorAll("#class-table tbody tr"));
    const shown = document.getElementById("class-count");
    search.addEventListener("input", () => {
      const query = search.value.trim().toLowerCase();
      let count = 0;
      rows.forEach((row) => {
        const match = !query || row.dataset.search.includes(query);
        row.hidden = !match;
        count += match ? 1 : 0;
      });
      shown.textContent = count + " of " + rows.length + " classes";
    });
  }

  document.querySelectorAll("select[data-switch]").forEach((picker) => {
    const views = document.querySelectorAll(picker.dataset.switch);
    const show = () => views.forEach((view) => { view.hidden = view.dataset.key !== picker.value; });
    picker.addEventListener("change", show);
    show();
  });

  const chart = document.getElementById("line-spec");
  if (chart) {
    vegaEmbed("#line-chart", JSON.parse(chart.textContent), { renderer: "svg", actions: false })
      .then((result) => { document.getElementById("line-chart").dataset.ready = "true"; window.lineView = result.view; })
      .catch((error) => console.error(error));
  }
})();
