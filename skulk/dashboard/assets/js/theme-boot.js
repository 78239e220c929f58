// Applies the remembered (or system) theme before first paint, so the page never flashes.
(function () {
  var saved = null;
  try { saved = localStorage.getItem("skulk.theme"); } catch (e) { /* storage disabled */ }
  var dark = saved ? saved === "dark" : window.matchMedia("(prefers-color-scheme: dark)").matches;
  document.documentElement.dataset.theme = dark ? "dark" : "light";
})();
