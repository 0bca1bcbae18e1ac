// styleproxy gallery: plain JavaScript, no dependencies. It reads /styles, /api/samples and
// /api/progress, builds /img/ URLs, and registers styles through POST /admin/styles.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const el = {
    serverInfo: $("server-info"),
    styles: $("styles"), stylesEmpty: $("styles-empty"), stylesCount: $("styles-count"),
    tryForm: $("try-form"), sample: $("sample"), style: $("style"), iters: $("iters"),
    style2: $("style2"), mix: $("mix"), mixOut: $("mix-out"),
    strength: $("strength"), strengthOut: $("strength-out"), width: $("width"), format: $("format"),
    preserve: $("preserve"), run: $("run"),
    progress: $("progress"), progressBar: $("progress-bar"), progressText: $("progress-text"),
    resultError: $("result-error"),
    originalImg: $("original-img"), originalPh: $("original-ph"),
    resultImg: $("result-img"), resultPh: $("result-ph"), resultMeta: $("result-meta"),
    resultURL: $("result-url"), copyURL: $("copy-url"), copyTag: $("copy-tag"), copyMsg: $("copy-msg"),
    adminForm: $("admin-form"), adminToken: $("admin-token"), adminName: $("admin-name"),
    adminImage: $("admin-image"), adminPreset: $("admin-preset"), adminReplace: $("admin-replace"),
    adminSubmit: $("admin-submit"), adminMsg: $("admin-msg"),
  };

  // fetchJSON answers {ok, status, data, message}: message is the server's JSON error
  // ({"error": ..., "status": ...}) or a description of what went wrong.
  async function fetchJSON(url, opts) {
    let res;
    try {
      res = await fetch(url, opts);
    } catch (e) {
      return { ok: false, status: 0, data: null, message: "network error: " + e.message };
    }
    return readJSON(res);
  }

  async function readJSON(res) {
    let data = null;
    try {
      data = await res.json();
    } catch (e) {
      data = null;
    }
    let message = "";
    if (!res.ok) {
      message = data && typeof data.error === "string" ? data.error : res.status + " " + res.statusText;
    }
    return { ok: res.ok, status: res.status, data, message };
  }

  function show(node, on) { node.hidden = !on; }

  function setMessage(node, text, kind) {
    node.textContent = text;
    node.className = kind;
    show(node, text !== "");
  }

  // imgPath is the /img/ path for a sample, each segment escaped.
  function imgPath(sample) {
    return "/img/" + sample.split("/").map(encodeURIComponent).join("/");
  }

  function widthParam() {
    const w = parseInt(el.width.value, 10);
    return Number.isFinite(w) && w > 0 ? String(w) : "";
  }

  function originalURL() {
    const q = new URLSearchParams();
    const w = widthParam();
    if (w) q.set("w", w);
    const qs = q.toString();
    return imgPath(el.sample.value) + (qs ? "?" + qs : "");
  }

  // pinnedName is the style= value that pins a style's current version (NAME@VERSION).
  function pinnedName(name) {
    const picked = stylesList.find((s) => s.name === name);
    return picked && picked.pinned ? picked.pinned : name;
  }

  // styleParam is style=: one style, or a blend of two with the mix's shares
  // (style=A@V:0.7,B@W:0.3). A mix of 100 or 0 is one of the two styles alone.
  function styleParam() {
    const a = el.style.value, b = el.style2.value, mix = parseInt(el.mix.value, 10);
    if (!b || b === a || mix === 100) return pinnedName(a);
    if (mix === 0) return pinnedName(b);
    return pinnedName(a) + ":" + mix / 100 + "," + pinnedName(b) + ":" + (100 - mix) / 100;
  }

  // resultURL follows the style filter's canonical parameter order and leaves out defaults. It
  // pins the styles' current versions (style=NAME@VERSION), so the URL may be cached for good.
  function resultURL() {
    const q = new URLSearchParams();
    q.set("style", styleParam());
    q.set("iters", String(parseInt(el.iters.value, 10) || 1));
    if (el.strength.value !== "100") q.set("strength", el.strength.value);
    if (el.preserve.checked) q.set("preserve_color", "true");
    const w = widthParam();
    if (w) q.set("w", w);
    if (el.format.value) q.set("format", el.format.value);
    return imgPath(el.sample.value) + "?" + q.toString().replace(/%40/g, "@").replace(/%2C/g, ",").replace(/%3A/g, ":");
  }

  // ---- Styles ----

  let stylesList = [];

  function selectStyle(name) {
    el.style.value = name;
    for (const card of el.styles.querySelectorAll(".style-card")) {
      card.setAttribute("aria-pressed", card.dataset.name === name ? "true" : "false");
    }
  }

  async function loadStyles(select) {
    const r = await fetchJSON("/styles", { cache: "no-store" });
    if (!r.ok) {
      el.stylesCount.textContent = "could not load styles: " + r.message;
      return;
    }
    stylesList = Array.isArray(r.data) ? r.data : [];
    const keep = select || el.style.value, keep2 = el.style2.value;
    el.styles.replaceChildren();
    el.style.replaceChildren();
    el.style2.replaceChildren(new Option("no second style", ""));
    for (const s of stylesList) {
      const card = document.createElement("button");
      card.type = "button";
      card.className = "style-card";
      card.dataset.name = s.name;
      card.setAttribute("role", "listitem");
      card.setAttribute("aria-pressed", "false");
      card.title = "Use the style " + s.name;
      const img = document.createElement("img");
      img.src = s.thumbnail_url;
      img.alt = "";
      img.loading = "lazy";
      const name = document.createElement("span");
      name.className = "name";
      name.textContent = s.name;
      const meta = document.createElement("span");
      meta.className = "meta";
      const preset = document.createElement("span");
      preset.textContent = s.preset || "custom weights";
      meta.append(preset);
      const created = s.created ? new Date(s.created) : null;
      if (created && !isNaN(created)) {
        const when = document.createElement("span");
        when.textContent = "added " + created.toLocaleDateString();
        meta.append(when);
      }
      card.append(img, name, meta);
      card.addEventListener("click", () => selectStyle(s.name));
      el.styles.append(card);

      const opt = document.createElement("option");
      opt.value = s.name;
      opt.textContent = s.name;
      el.style.append(opt);
      el.style2.append(new Option(s.name, s.name));
    }
    el.style2.value = stylesList.some((s) => s.name === keep2) ? keep2 : "";
    updateMix();
    show(el.stylesEmpty, stylesList.length === 0);
    el.stylesCount.textContent = stylesList.length === 1 ? "1 style" : stylesList.length + " styles";
    if (stylesList.length > 0) {
      selectStyle(stylesList.some((s) => s.name === keep) ? keep : stylesList[0].name);
    }
    updateRunnable();
  }

  // ---- Samples and the original ----

  async function loadSamples() {
    const r = await fetchJSON("/api/samples", { cache: "no-store" });
    el.sample.replaceChildren();
    if (!r.ok) {
      setMessage(el.resultError, "Could not list the sample images: " + r.message, "error");
      return;
    }
    const list = Array.isArray(r.data) ? r.data : [];
    for (const p of list) {
      const opt = document.createElement("option");
      opt.value = p;
      opt.textContent = p;
      el.sample.append(opt);
    }
    if (list.length === 0) {
      const opt = document.createElement("option");
      opt.value = "";
      opt.textContent = "(no images in the source folder)";
      el.sample.append(opt);
    }
    updateOriginal();
    updateRunnable();
  }

  function updateOriginal() {
    if (!el.sample.value) {
      show(el.originalImg, false);
      show(el.originalPh, true);
      return;
    }
    const url = originalURL();
    if (el.originalImg.getAttribute("src") !== url) {
      el.originalImg.src = url;
    }
  }

  el.originalImg.addEventListener("load", () => {
    show(el.originalImg, true);
    show(el.originalPh, false);
  });
  el.originalImg.addEventListener("error", () => {
    show(el.originalImg, false);
    el.originalPh.textContent = "The original could not be loaded";
    show(el.originalPh, true);
  });

  function updateRunnable() {
    el.run.disabled = !el.sample.value || !el.style.value;
  }

  // ---- Running a stylization ----

  let current = null; // {seq, sample, abort, started, seen}
  let seq = 0;
  let resultObjectURL = null;

  function setProgress(text, step, total) {
    el.progressText.textContent = text;
    if (total > 0) {
      el.progressBar.max = total;
      el.progressBar.value = step;
    } else {
      el.progressBar.removeAttribute("value"); // indeterminate
    }
    show(el.progress, true);
  }

  async function pollProgress(run) {
    while (current === run) {
      const r = await fetchJSON("/api/progress", { cache: "no-store" });
      if (current !== run) return;
      if (r.ok && r.data) {
        const running = Array.isArray(r.data.running) ? r.data.running : [];
        const job = running.find((j) => j.path === run.sample);
        if (job) {
          run.seen = true;
          document.body.dataset.progressSeen = "true";
          if (job.total > 0) {
            run.last = "iteration " + job.step + " of " + job.total;
            setProgress("Iteration " + job.step + " of " + job.total, job.step, job.total);
          } else {
            setProgress("Preparing…", 0, 0);
          }
        } else if (r.data.queued > 0) {
          setProgress("Waiting for a worker: " + r.data.queued + " queued", 0, 0);
        }
      }
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }

  async function runStylize(ev) {
    ev.preventDefault();
    if (!el.tryForm.reportValidity() || !el.sample.value || !el.style.value) return;
    if (current) current.abort.abort();
    const run = { seq: ++seq, sample: el.sample.value, abort: new AbortController(), started: performance.now(), seen: false, last: "" };
    current = run;
    const url = resultURL();
    const absolute = new URL(url, location.href).href;
    updateOriginal();
    setMessage(el.resultError, "", "error");
    el.resultMeta.textContent = "";
    el.resultURL.value = absolute;
    el.resultImg.dataset.url = url;
    show(el.resultImg, false);
    el.resultPh.textContent = "Working…";
    show(el.resultPh, true);
    el.run.textContent = "Stylizing…";
    setProgress("Starting…", 0, 0);
    pollProgress(run);

    let res;
    try {
      res = await fetch(url, { signal: run.abort.signal });
    } catch (e) {
      if (current === run) finish(run, "Request failed: " + e.message);
      return;
    }
    if (current !== run) return;
    if (!res.ok) {
      const r = await readJSON(res);
      finish(run, "The server answered " + r.status + ": " + r.message);
      return;
    }
    const blob = await res.blob();
    if (current !== run) return;
    const seconds = (performance.now() - run.started) / 1000;
    if (resultObjectURL) URL.revokeObjectURL(resultObjectURL);
    resultObjectURL = URL.createObjectURL(blob);
    el.resultImg.onload = () => {
      el.resultMeta.textContent = el.resultImg.naturalWidth + "×" + el.resultImg.naturalHeight +
        " · " + Math.max(1, Math.round(blob.size / 1024)) + " KB · " + seconds.toFixed(1) + " s";
      show(el.resultImg, true);
      show(el.resultPh, false);
    };
    el.resultImg.src = resultObjectURL;
    finish(run, "");
    setProgress("Done in " + seconds.toFixed(1) + " s" + (run.last ? " (last seen: " + run.last + ")" : ""), 1, 1);
  }

  function finish(run, error) {
    if (current === run) current = null;
    el.run.textContent = "Stylize";
    if (error) {
      show(el.progress, false);
      el.resultPh.textContent = "No result";
      setMessage(el.resultError, error, "error");
    }
  }

  // ---- Copying the URL ----

  async function copyText(text) {
    try {
      await navigator.clipboard.writeText(text);
      return true;
    } catch (e) {
      const ta = document.createElement("textarea");
      ta.value = text;
      document.body.append(ta);
      ta.select();
      const ok = document.execCommand("copy");
      ta.remove();
      return ok;
    }
  }

  function flash(text) {
    el.copyMsg.textContent = text;
    setTimeout(() => { if (el.copyMsg.textContent === text) el.copyMsg.textContent = ""; }, 2000);
  }

  el.copyURL.addEventListener("click", async () => {
    if (!el.resultURL.value) return;
    el.resultURL.select();
    flash((await copyText(el.resultURL.value)) ? "Copied" : "Select and copy it by hand");
  });
  el.copyTag.addEventListener("click", async () => {
    if (!el.resultURL.value) return;
    const tag = '<img src="' + el.resultURL.value.replace(/&/g, "&amp;").replace(/"/g, "&quot;") + '" alt="">';
    flash((await copyText(tag)) ? "Copied <img> tag" : "Copy failed");
  });
  el.resultURL.addEventListener("focus", () => el.resultURL.select());

  // ---- Admin: register a style ----

  async function registerStyle(ev) {
    ev.preventDefault();
    if (!el.adminForm.reportValidity()) return;
    const file = el.adminImage.files[0];
    const name = el.adminName.value.trim();
    const fd = new FormData();
    fd.append("name", name);
    fd.append("preset", el.adminPreset.value);
    if (el.adminReplace.checked) fd.append("replace", "true");
    fd.append("image", file, file.name);
    el.adminSubmit.disabled = true;
    setMessage(el.adminMsg, "Registering " + name + "…", "muted");
    const r = await fetchJSON("/admin/styles", {
      method: "POST",
      headers: { Authorization: "Bearer " + el.adminToken.value.trim() },
      body: fd,
    });
    el.adminSubmit.disabled = false;
    if (!r.ok) {
      setMessage(el.adminMsg, "Registration failed (" + r.status + "): " + r.message, "error");
      return;
    }
    setMessage(el.adminMsg, "Registered “" + r.data.name + "” (version " + r.data.version + ").", "ok");
    el.adminImage.value = "";
    await loadStyles(r.data.name);
  }

  // updateMix shows the mix as the two styles' shares, and enables it with a second style.
  function updateMix() {
    const mix = parseInt(el.mix.value, 10);
    el.mix.disabled = !el.style2.value;
    el.mixOut.textContent = el.style2.value ? mix + " / " + (100 - mix) : "—";
  }

  // ---- Wiring ----

  el.strength.addEventListener("input", () => { el.strengthOut.textContent = el.strength.value; });
  el.sample.addEventListener("change", () => { updateOriginal(); updateRunnable(); });
  el.width.addEventListener("change", updateOriginal);
  el.style.addEventListener("change", () => selectStyle(el.style.value));
  el.style2.addEventListener("change", updateMix);
  el.mix.addEventListener("input", updateMix);
  el.tryForm.addEventListener("submit", runStylize);
  el.adminForm.addEventListener("submit", registerStyle);

  fetchJSON("/readyz", { cache: "no-store" }).then((r) => {
    if (r.data && r.data.backend) el.serverInfo.textContent = "backend " + r.data.backend;
  });
  updateRunnable();
  Promise.all([loadStyles(), loadSamples()]).then(() => { document.body.dataset.ready = "true"; });
})();
