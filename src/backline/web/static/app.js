/* Backline workbench: the little script the pages use.  Everything works without it (plain forms);
   with it: htmx requests carry the CSRF token, evidence uploads by drag and drop with a progress bar. */
(function () {
  "use strict";

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  // htmx: every request carries the session's CSRF token as a header.
  document.addEventListener("htmx:configRequest", function (e) {
    e.detail.headers["X-CSRF-Token"] = csrfToken();
  });

  // Evidence upload: drop files on the zone (or pick them), watch the progress, then refresh the analysis.
  function setupUpload(form) {
    var zone = form.querySelector(".dropzone");
    var input = form.querySelector('input[type="file"]');
    var bar = form.querySelector("progress");
    var status = form.querySelector(".upload-status");
    if (!zone || !input || !bar || !status) { return; }

    function say(text) { status.textContent = text; }

    function send(files, i) {
      if (i >= files.length) {
        var region = document.getElementById("analysis");
        if (region && window.htmx) { window.htmx.trigger(region, "refresh"); }
        else if (!window.htmx) { window.location.reload(); }
        return;
      }
      var file = files[i];
      var data = new FormData();
      data.append("file", file, file.name);
      var xhr = new XMLHttpRequest();
      xhr.open("POST", form.getAttribute("action"));
      xhr.setRequestHeader("X-CSRF-Token", csrfToken());
      xhr.setRequestHeader("Accept", "application/json");
      bar.hidden = false;
      bar.value = 0;
      xhr.upload.addEventListener("progress", function (ev) {
        if (ev.lengthComputable) {
          bar.max = ev.total;
          bar.value = ev.loaded;
          say("Uploading " + file.name + ": " + Math.round(100 * ev.loaded / ev.total) + "%");
        }
      });
      xhr.addEventListener("load", function () {
        if (xhr.status >= 200 && xhr.status < 300) {
          say("Uploaded " + file.name + "; analysis queued.");
          send(files, i + 1);
        } else {
          var msg = "upload failed (" + xhr.status + ")";
          try { msg = JSON.parse(xhr.responseText).error.message; } catch (err) { /* keep the status */ }
          say("Could not upload " + file.name + ": " + msg);
        }
      });
      xhr.addEventListener("error", function () { say("Could not upload " + file.name + ": network error"); });
      xhr.send(data);
    }

    form.addEventListener("submit", function (e) {
      if (!input.files || input.files.length === 0) { return; }
      e.preventDefault();
      send(input.files, 0);
    });
    ["dragenter", "dragover"].forEach(function (name) {
      zone.addEventListener(name, function (e) { e.preventDefault(); zone.classList.add("over"); });
    });
    ["dragleave", "drop"].forEach(function (name) {
      zone.addEventListener(name, function (e) { e.preventDefault(); zone.classList.remove("over"); });
    });
    zone.addEventListener("drop", function (e) {
      if (e.dataTransfer && e.dataTransfer.files.length) { send(e.dataTransfer.files, 0); }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    if (window.htmx) { document.documentElement.classList.add("hx"); }
    document.querySelectorAll("form[data-upload]").forEach(setupUpload);
  });
})();
