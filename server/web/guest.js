// The guest page: a tap on a door asks cloudkey to unlock it. The link
// token is the last path segment; it goes in the request body only.
(function () {
  "use strict";
  var token = decodeURIComponent(location.pathname.split("/").pop() || "");
  var result = document.getElementById("result");
  function show(text, ok) {
    result.textContent = text;
    result.className = "result " + (ok ? "ok" : "fail");
  }
  document.querySelectorAll("button.door").forEach(function (b) {
    b.addEventListener("click", function () {
      b.disabled = true;
      show("Opening…", true);
      fetch("/v1/guest/unlock", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ token: token, entryId: b.dataset.entry }),
        credentials: "omit",
        cache: "no-store"
      }).then(function (r) {
        return r.json().then(function (body) { return { status: r.status, body: body }; });
      }).then(function (r) {
        var res = r.body && r.body.result;
        if (res && res.status === "UNLOCK_STATUS_OK") {
          show(b.textContent.replace(/^Open /, "") + " is open", true);
        } else {
          show((res && res.message) || (r.body && r.body.message) || "Could not open the door", false);
        }
      }).catch(function () {
        show("No connection; try again", false);
      }).finally(function () {
        b.disabled = false;
      });
    });
  });
})();
