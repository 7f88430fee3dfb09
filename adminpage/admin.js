// Reloads the page every 5 s while the box is ticked and no field has the
// focus. The page works without this script.
(function () {
  var label = document.getElementById("autorefresh");
  var box = label.querySelector("input");
  var key = "peersession-admin-autorefresh";
  try { box.checked = localStorage.getItem(key) !== "off"; } catch (e) {}
  box.addEventListener("change", function () {
    try { localStorage.setItem(key, box.checked ? "on" : "off"); } catch (e) {}
  });
  label.hidden = false;
  setInterval(function () {
    var f = document.activeElement;
    if (!box.checked || (f && f.tagName === "INPUT" && f !== box)) return;
    var u = new URL(location.href);
    u.searchParams.delete("ended"); // say it once
    location.replace(u.toString());
  }, 5000);
})();
