// The gallery's script: plain JavaScript, no build step, no dependency, nothing from another host.
// The pages work without it (server-rendered grid, filter links, "Next page" link); it adds uploads
// with progress bars, live cards (SSE, or polling when the stream is not there), infinite scroll,
// and retry/delete. Every card or panel it changes is re-fetched as a server-rendered fragment
// (its data-fragment URL), so the HTML has one renderer: the Jinja templates.
(() => {
  "use strict";

  const FINAL = new Set(["completed", "failed"]);
  const EVENT_TYPES = [
    "image.accepted", "image.completed", "image.failed", "image.deleted", "image.requeued", "image.caption_updated",
  ];
  const POLL_INTERVAL_MS = 1500;
  const POLL_BATCH = 50;
  const STATS_INTERVAL_MS = 5000;
  const KEY_STORAGE = "image-pipeline.api-key";
  const keyRequired = document.body.dataset.apiKeyRequired === "true";
  const heard = new Map(); // image id -> last status an event or poll told us, for cards not on the page yet
  let pollTimer = null;
  let keyPrompt = null;

  // ---------- small helpers

  const byId = (id) => document.querySelectorAll(`[data-image-id="${CSS.escape(id)}"]`);
  const liveElements = () => [...document.querySelectorAll("[data-image-id][data-fragment]")];

  async function problemDetail(response) {
    try {
      const body = await response.json();
      return body.detail || body.title || `The server answered ${response.status}.`;
    } catch {
      return `The server answered ${response.status}.`;
    }
  }

  async function fetchFragment(url) {
    const response = await fetch(url, { headers: { Accept: "text/html" } });
    if (response.status === 404) return null;
    if (!response.ok) throw new Error(`${url} answered ${response.status}`);
    const template = document.createElement("template");
    template.innerHTML = (await response.text()).trim();
    return template.content;
  }

  // ---------- the API key (only when the gateway has one)

  function askKey(reason) {
    if (keyPrompt) return keyPrompt;
    const dialog = document.getElementById("key-dialog");
    const input = document.getElementById("key-input");
    document.getElementById("key-reason").textContent = reason;
    input.value = "";
    keyPrompt = new Promise((resolve) => {
      dialog.addEventListener("close", () => {
        keyPrompt = null;
        const key = dialog.returnValue === "ok" ? input.value.trim() : "";
        if (key) sessionStorage.setItem(KEY_STORAGE, key);
        resolve(key || null);
      }, { once: true });
      dialog.returnValue = "";
      dialog.showModal();
      input.focus();
    });
    return keyPrompt;
  }

  async function currentKey() {
    if (!keyRequired) return "";
    return sessionStorage.getItem(KEY_STORAGE) || (await askKey("This gateway asks for its API key before changes."));
  }

  async function refusedKey() {
    sessionStorage.removeItem(KEY_STORAGE);
    return askKey("The gateway refused that key (401). Enter the right one, or cancel.");
  }

  // ---------- live updates: one element (card or detail panel) re-rendered by the server

  async function refresh(element) {
    const fragment = await fetchFragment(element.dataset.fragment);
    if (!element.isConnected) return;
    if (fragment === null) return gone(element.dataset.imageId);
    const fresh = fragment.firstElementChild;
    const hadFocus = element.contains(document.activeElement);
    element.replaceWith(fresh);
    if (hadFocus) fresh.querySelector("a, button")?.focus();
    changed(fresh);
  }

  function changed(element) {
    const retry = document.querySelector('[data-action="retry"]');
    if (retry && element.matches(".details")) retry.disabled = element.dataset.status !== "failed";
    scheduleStatsRefresh();
  }

  function gone(imageId) {
    for (const element of byId(imageId)) {
      if (element.matches(".details")) {
        say("This image has been deleted.");
        document.querySelectorAll("[data-action]").forEach((button) => { button.disabled = true; });
      } else {
        element.remove();
      }
    }
    scheduleStatsRefresh();
  }

  function heardOf(imageId, status, caption) {
    heard.set(imageId, status);
    for (const element of byId(imageId)) {
      if (element.dataset.status !== status || (caption != null && element.dataset.caption !== caption)) {
        refresh(element).catch(() => {});
      }
    }
  }

  // ---------- Server-Sent Events, with polling while the stream is not there

  function connectEvents() {
    if (!("EventSource" in window)) return startPolling();
    // From the newest event when the page was rendered, so nothing between render and connect is missed;
    // on a reconnect the browser's Last-Event-ID takes over.
    const after = document.body.dataset.eventsAfter;
    const source = new EventSource("/api/events" + (after ? `?after=${encodeURIComponent(after)}` : ""));
    const firstPage = !new URLSearchParams(location.search).has("cursor");
    for (const type of EVENT_TYPES) {
      source.addEventListener(type, (event) => {
        const data = JSON.parse(event.data);
        if (type === "image.deleted") {
          heard.set(data.id, "deleted");
          gone(data.id);
        } else if (type === "image.caption_updated") {
          for (const element of byId(data.id)) refresh(element).catch(() => {}); // re-captioned: same status
        } else {
          heardOf(data.id, data.status, data.caption);
          // A new upload from anywhere gets its card on the first page; on a search page, an image whose
          // caption just arrived does, if the server says the caption holds every word searched for.
          const searching = Boolean(document.querySelector("[data-grid]")?.dataset.search);
          const wanted = searching ? type === "image.completed" && data.caption != null : type === "image.accepted";
          if (wanted && firstPage) addCard(data.id).catch(() => {});
        }
      });
    }
    source.addEventListener("open", () => {
      stopPolling();
      pollOnce(); // catch up on what changed before the stream started
    });
    source.addEventListener("error", () => startPolling()); // reconnecting, or gone for good (404)
  }

  function startPolling() {
    if (pollTimer === null) pollTimer = setInterval(pollOnce, POLL_INTERVAL_MS);
  }

  function stopPolling() {
    clearInterval(pollTimer);
    pollTimer = null;
  }

  async function pollOnce() {
    const unfinished = liveElements().filter((element) => !FINAL.has(element.dataset.status));
    const ids = [...new Set(unfinished.map((element) => element.dataset.imageId))].slice(0, POLL_BATCH);
    await Promise.all(ids.map(async (imageId) => {
      const response = await fetch(`/api/images/${encodeURIComponent(imageId)}`);
      if (response.status === 404) return gone(imageId);
      if (!response.ok) return;
      const image = await response.json();
      heardOf(imageId, image.status, image.caption ? image.caption.text : null);
    })).catch(() => {});
  }

  // ---------- stats panel

  let statsTimer = null;
  function scheduleStatsRefresh() {
    if (statsTimer !== null) return;
    statsTimer = setTimeout(() => {
      statsTimer = null;
      const panel = document.querySelector('[data-testid="stats"]');
      if (panel) refresh(panel).catch(() => {});
    }, 300);
  }

  // ---------- infinite scroll over the API cursor (the link still works as a plain link)

  let loadingMore = false;
  function setupPager() {
    const link = document.querySelector("[data-pager] a[data-fragment]");
    if (!link) return;
    link.addEventListener("click", (event) => {
      event.preventDefault();
      loadMore(link, true);
    });
    if ("IntersectionObserver" in window) {
      const observer = new IntersectionObserver((entries) => {
        if (entries.some((entry) => entry.isIntersecting)) {
          observer.disconnect();
          loadMore(link, false);
        }
      }, { rootMargin: "300px" });
      observer.observe(link);
    }
  }

  async function loadMore(link, moveFocus) {
    if (loadingMore || !link.isConnected) return;
    loadingMore = true;
    try {
      const fragment = await fetchFragment(link.dataset.fragment);
      const grid = document.querySelector("[data-grid]");
      let first = null;
      for (const card of fragment.querySelectorAll(".card")) {
        if (byId(card.dataset.imageId).length) continue;
        grid.append(card);
        first = first || card;
      }
      link.closest("[data-pager]").replaceWith(fragment.querySelector("[data-pager]"));
      if (moveFocus && first) first.querySelector("a").focus();
      setupPager();
    } finally {
      loadingMore = false;
    }
  }

  // ---------- uploads: several files, one request and one progress bar each

  function setupUpload() {
    const zone = document.querySelector('[data-testid="upload"]');
    if (!zone) return;
    const input = zone.querySelector('input[type="file"]');
    const dropzone = zone.querySelector("[data-dropzone]");
    zone.querySelector("[data-choose-files]").addEventListener("click", () => input.click());
    input.addEventListener("change", () => {
      uploadAll([...input.files]);
      input.value = "";
    });
    dropzone.addEventListener("dragover", (event) => {
      event.preventDefault();
      dropzone.classList.add("dragging");
    });
    dropzone.addEventListener("dragleave", () => dropzone.classList.remove("dragging"));
    dropzone.addEventListener("drop", (event) => {
      event.preventDefault();
      dropzone.classList.remove("dragging");
      uploadAll([...event.dataTransfer.files]);
    });
  }

  async function uploadAll(files) {
    if (!files.length) return;
    const key = await currentKey();
    for (const file of files) {
      if (keyRequired && !key) {
        const row = uploadItem(file);
        row.item.classList.add("rejected");
        row.message.textContent = "Not uploaded: this gateway needs its API key.";
      } else {
        uploadOne(file, key, true);
      }
    }
  }

  function uploadItem(file) {
    const item = document.createElement("li");
    item.className = "upload-item";
    item.dataset.testid = "upload-item";
    const name = Object.assign(document.createElement("span"), { className: "name", textContent: file.name });
    const size = Object.assign(document.createElement("span"), { className: "muted", textContent: `${Math.ceil(file.size / 1024)} KiB` });
    const bar = Object.assign(document.createElement("progress"), { max: 100, value: 0 });
    bar.setAttribute("aria-label", `Upload of ${file.name}`);
    const message = Object.assign(document.createElement("p"), { className: "message", textContent: "Uploading…" });
    message.dataset.testid = "upload-message";
    item.append(name, size, bar, message);
    document.querySelector("[data-upload-list]").prepend(item);
    return { item, bar, message };
  }

  function uploadOne(file, key, mayAskAgain, row = uploadItem(file)) {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/api/images");
    if (key) xhr.setRequestHeader("Authorization", `Bearer ${key}`);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) row.bar.value = Math.round((event.loaded / event.total) * 100);
    });
    xhr.addEventListener("load", async () => {
      const response = new Response(xhr.responseText, { status: xhr.status });
      if (xhr.status === 401 && mayAskAgain) {
        const newKey = await refusedKey();
        if (newKey) return uploadOne(file, newKey, false, row);
      }
      if (xhr.status === 202) {
        const summary = await response.json();
        row.bar.value = 100;
        row.item.classList.add("accepted");
        row.item.dataset.uploadedId = summary.id;
        row.message.textContent = "Accepted; processing…";
        addCard(summary.id);
      } else {
        row.item.classList.add("rejected");
        row.message.textContent = await problemDetail(response);
      }
    });
    xhr.addEventListener("error", () => {
      row.item.classList.add("rejected");
      row.message.textContent = "The upload did not reach the gateway (network error).";
    });
    const form = new FormData();
    form.append("image", file, file.name);
    xhr.send(form);
  }

  async function addCard(imageId) {
    const grid = document.querySelector("[data-grid]");
    if (!grid || byId(imageId).length) return;
    const filter = grid.dataset.statusFilter;
    const search = grid.dataset.search;
    if (filter && filter !== (search ? "completed" : "pending")) return;
    // With a search, the server answers the card only when its caption holds every word (else 404).
    const query = search ? `?q=${encodeURIComponent(search)}` : "";
    const fragment = await fetchFragment(`/ui/cards/${encodeURIComponent(imageId)}${query}`);
    if (fragment === null || byId(imageId).length) return;
    const card = fragment.firstElementChild;
    if (filter && card.dataset.status !== filter) return;
    document.querySelector("[data-empty]")?.remove();
    grid.prepend(card);
    const status = heard.get(imageId);
    if (status === "deleted") card.remove();
    else if (status && status !== card.dataset.status) refresh(card).catch(() => {});
    changed(card);
  }

  // ---------- detail page: retry and delete

  function say(text) {
    const result = document.querySelector('[data-testid="action-result"]');
    if (result) result.textContent = text;
  }

  async function send(url, method) {
    let key = await currentKey();
    const request = () => fetch(url, { method, headers: key ? { Authorization: `Bearer ${key}` } : {} });
    let response = await request();
    if (response.status === 401 && keyRequired) {
      key = await refusedKey();
      if (key) response = await request();
    }
    return response;
  }

  function setupActions() {
    for (const button of document.querySelectorAll("[data-action]")) {
      button.addEventListener("click", async () => {
        const deleting = button.dataset.action === "delete";
        if (deleting && !window.confirm("Delete this image and every file of it?")) return;
        button.disabled = true;
        const response = await send(button.dataset.url, button.dataset.method);
        if (response.ok && deleting) {
          say("Deleted. Back to the gallery…");
          window.location.assign("/");
          return;
        }
        if (response.ok) {
          say("Re-queued: the image is pending again.");
          const details = document.querySelector(".details[data-fragment]");
          if (details) await refresh(details);
        } else {
          say(await problemDetail(response));
          button.disabled = false;
        }
      });
    }
  }

  setupUpload();
  setupPager();
  setupActions();
  connectEvents();
  setInterval(() => { if (!document.hidden) scheduleStatsRefresh(); }, STATS_INTERVAL_MS);
})();
