// The tenant tile, inside the tenant app's web view: /tile?building=ID with
// the app's bearer token in the URL fragment (#token=...), which never
// reaches a server log. It is only a client of VisitorService's REST API.
(function () {
  "use strict";
  var frag = new URLSearchParams(location.hash.slice(1));
  var token = frag.get("token") || sessionStorage.getItem("cloudkey.token") || "";
  if (frag.get("token")) {
    sessionStorage.setItem("cloudkey.token", token);
    history.replaceState(null, "", location.pathname + location.search);
  }
  var building = new URLSearchParams(location.search).get("building") || "";
  var base = "/v1/buildings/" + encodeURIComponent(building);
  var $ = function (id) { return document.getElementById(id); };
  function api(method, path, body) {
    return fetch(base + path, {
      method: method,
      headers: { "Authorization": "Bearer " + token, "Content-Type": "application/json" },
      body: body ? JSON.stringify(body) : undefined,
      credentials: "omit", cache: "no-store"
    }).then(function (r) {
      return r.json().then(function (b) { if (!r.ok) { throw new Error(b.message || ("HTTP " + r.status)); } return b; });
    });
  }
  function say(id, text, ok) { var e = $(id); e.textContent = text; e.className = (id === "result" ? "result " : "message ") + (ok ? "ok" : "fail"); }
  function when(ts) { return ts ? new Date(ts).toLocaleString([], { dateStyle: "medium", timeStyle: "short" }) : ""; }
  function refresh() {
    return api("GET", "/visitors").then(function (b) {
      var ul = $("visitors"); ul.textContent = "";
      (b.visitors || []).forEach(function (v) {
        var li = document.createElement("li");
        li.dataset.visitor = v.id;
        li.textContent = v.fullName + " · " + v.visitorType + " · " + when(v.expectedArrival) + " · " + v.state + " ";
        if (v.state !== "ENDED") {
          var c = document.createElement("button");
          c.type = "button"; c.className = "cancel"; c.textContent = "Cancel";
          c.addEventListener("click", function () {
            api("DELETE", "/visitors/" + encodeURIComponent(v.id)).then(refresh)
              .then(function () { say("result", v.fullName + " was cancelled", true); })
              .catch(function (e) { say("result", e.message, false); });
          });
          li.appendChild(c);
        }
        ul.appendChild(li);
      });
      $("upcoming").hidden = false;
    });
  }
  if (!token || !building) { say("message", "Open this page from your building's app.", false); return; }
  api("GET", "/tile").then(function (t) {
    if (!t.enabled) { say("message", t.message, false); return; }
    say("message", t.contactName ? "Signed in as " + t.contactName : "", true);
    var sel = document.querySelector("select[name=visitorType]");
    t.visitorTypes.forEach(function (v) { var o = document.createElement("option"); o.value = o.textContent = v; sel.appendChild(o); });
    $("register").hidden = false;
    $("register").addEventListener("submit", function (ev) {
      ev.preventDefault();
      var f = new FormData(ev.target);
      api("POST", "/visitors", {
        fullName: f.get("fullName"), email: f.get("email"), phone: f.get("phone"),
        visitorType: f.get("visitorType"), expectedArrival: new Date(f.get("expectedArrival")).toISOString()
      }).then(function (r) {
        // PENDING: registered in Envoy, whose invite or front desk issues the pass.
        say("result", r.action === "ISSUED" ? r.visitor.fullName + " is registered; the guest link was sent" :
          r.action === "PENDING" ? r.visitor.fullName + " is " + r.reason : "No pass: " + r.reason,
          r.action === "ISSUED" || r.action === "PENDING");
        ev.target.reset();
        return refresh();
      }).catch(function (e) { say("result", e.message, false); });
    });
    return refresh();
  }).catch(function (e) { say("message", e.message, false); });
})();
