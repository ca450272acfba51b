// A classic script that runs even when the page's modules cannot: if the dashboard has not started
// after a while, or a script fails, the page says so in words instead of staying blank.
(function () {
  function say(text) {
    var main = document.getElementById("main");
    if (!main || document.documentElement.dataset.started === "1") return;
    var p = document.createElement("p");
    p.className = "state error";
    p.setAttribute("role", "alert");
    p.textContent = text;
    main.replaceChildren(p);
  }
  window.addEventListener("error", function (event) {
    if (event.filename && event.filename.indexOf("/static/js/") >= 0) {
      say("The dashboard could not start (" + event.message + "). Reload the page; if it persists, tell the operator.");
    }
  });
  window.setTimeout(function () {
    say("The dashboard is taking too long to start. Check the connection and reload the page.");
  }, 20000);
})();
