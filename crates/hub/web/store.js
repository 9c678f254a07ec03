// The store console (/store): a store signs in with its token and works its orders from
// every channel. The live stream (/api/v1/stream) sends the whole board on every
// connection and then differences, so after a dropped connection the page is caught up;
// orders are kept by id, so none is shown twice.
"use strict";

(() => {
  const { api, stream, esc, money, clock, countdown, channelName, fulfilment, due, code, itemsHtml, addressLines, toast } = Crossdock;
  const TOKEN_KEY = "crossdock.store.token";
  const RING_EVERY_MS = 20000;
  const $ = (selector) => document.querySelector(selector);

  const state = {
    token: null,
    store: null,
    live: null,
    orders: new Map(),
    known: new Set(),
    connection: null,
    sound: true,
    audio: null,
    rings: 0,
    lastRingAt: 0,
    dialogOrder: null,
  };

  // ---- sign-in ---------------------------------------------------------------------

  async function signIn(token) {
    const me = await api(token, "GET", "/stores/me");
    state.token = token;
    state.store = me.store;
    localStorage.setItem(TOKEN_KEY, token);
    $("#signin").classList.add("hidden");
    $("#console").classList.remove("hidden");
    $("#store-name").textContent = me.store.name || me.store.id;
    $("#store-id").textContent = `${me.store.id} · ${me.store.timezone || ""}`;
    document.title = `${me.store.name || me.store.id} — orders`;
    state.connection = stream(token, onEvent, onConnection);
  }

  $("#signin").addEventListener("submit", async (e) => {
    e.preventDefault();
    unlockAudio();
    const token = $("#token").value.trim();
    $("#signin-error").textContent = "";
    $("#signin-button").disabled = true;
    try {
      await signIn(token);
    } catch (error) {
      $("#signin-error").textContent =
        error.status === 401 ? "That token is not a store's token."
        : error.code === "not_a_store" ? "This is the HQ token: HQ signs in at /hq."
        : error.message;
    } finally {
      $("#signin-button").disabled = false;
    }
  });

  $("#signout").addEventListener("click", () => {
    localStorage.removeItem(TOKEN_KEY);
    location.reload();
  });

  // ---- the live stream ---------------------------------------------------------------

  function onConnection(status) {
    const dot = $("#conn");
    dot.className = `dot ${status === "live" ? "live" : "down"}`;
    document.body.dataset.connection = status;
    if (status === "unauthorized") {
      localStorage.removeItem(TOKEN_KEY);
      showBanner("This store's token is no longer valid. Sign in again.");
    } else if (status === "down") {
      showBanner("Connection lost — reconnecting. Orders will catch up when it is back.");
    } else {
      hideBanner("connection");
    }
  }

  function onEvent(name, data) {
    if (name === "board") {
      // A whole board: what it lacks has left the store while we were away.
      const ids = new Set(data.orders.map((o) => o.id));
      for (const id of [...state.orders.keys()]) if (!ids.has(id)) remove(id);
      for (const order of data.orders.slice().reverse()) upsert(order);
      setLive(data.live);
    } else if (name === "order") {
      upsert(data);
    } else if (name === "gone") {
      remove(data.id);
    } else if (name === "live") {
      setLive(data);
    }
    refreshCounts();
  }

  function upsert(order) {
    const before = state.orders.get(order.id);
    state.orders.set(order.id, order);
    if (!state.known.has(order.id)) {
      state.known.add(order.id);
      if (order.status === "received") ring("new");
    } else if (before && before.status !== "cancelled" && order.status === "cancelled") {
      ring("cancelled");
      toast(`Order ${code(order)} was cancelled`);
    }
    render(order);
  }

  function remove(id) {
    state.orders.delete(id);
    const card = document.getElementById(`order-${id}`);
    if (card) card.remove();
  }

  // ---- sound ---------------------------------------------------------------------------

  function unlockAudio() {
    if (state.audio) return;
    const Context = window.AudioContext || window.webkitAudioContext;
    if (Context) state.audio = new Context();
  }

  function ring(kind) {
    state.rings += 1;
    state.lastRingAt = Date.now();
    document.body.dataset.rings = String(state.rings);
    document.body.dataset.lastRing = kind;
    if (!state.sound || !state.audio) return;
    if (state.audio.state === "suspended") state.audio.resume();
    const notes = kind === "cancelled" ? [440, 330, 220] : [880, 660, 880];
    const start = state.audio.currentTime;
    notes.forEach((frequency, i) => {
      const osc = state.audio.createOscillator();
      const gain = state.audio.createGain();
      osc.frequency.value = frequency;
      osc.type = "square";
      gain.gain.setValueAtTime(0.15, start + i * 0.18);
      gain.gain.exponentialRampToValueAtTime(0.001, start + i * 0.18 + 0.16);
      osc.connect(gain).connect(state.audio.destination);
      osc.start(start + i * 0.18);
      osc.stop(start + i * 0.18 + 0.17);
    });
  }

  $("#sound").addEventListener("click", () => {
    unlockAudio();
    state.sound = !state.sound;
    $("#sound").textContent = state.sound ? "Sound on" : "Sound off";
    $("#sound").setAttribute("aria-pressed", String(state.sound));
  });

  // ---- cards ---------------------------------------------------------------------------

  const LANES = {
    received: "new", accepted: "kitchen", preparing: "kitchen", ready: "ready", picked_up: "ready",
  };
  const STATUS_TEXT = {
    received: "New", accepted: "Accepted", preparing: "Preparing", ready: "Ready", picked_up: "Picked up",
    delivered: "Delivered", completed: "Completed", rejected: "Rejected", cancelled: "Cancelled", failed: "Failed",
  };

  /** The earlier of the store's time to accept and the platform's deadline. */
  function acceptBy(order) {
    const times = [order.store_accept_by, order.fulfillment && order.fulfillment.accept_by].filter(Boolean);
    if (!times.length) return null;
    return times.map((t) => new Date(t)).sort((a, b) => a - b)[0];
  }

  function buttons(order) {
    const id = esc(order.id);
    const kind = (order.fulfillment || {}).kind;
    const by = (order.fulfillment || {}).delivered_by;
    const b = (action, label, cls = "") => `<button type="button" class="${cls}" data-action="${action}" data-id="${id}">${label}</button>`;
    switch (order.status) {
      case "received":
        return `<select data-prep="${id}" aria-label="Preparation minutes">${[5, 10, 15, 20, 25, 30, 45, 60]
          .map((m) => `<option value="${m}"${m === 15 ? " selected" : ""}>${m} min</option>`).join("")}</select>`
          + b("accept", "Accept", "primary") + b("reject", "Reject", "danger");
      case "accepted":
        return b("preparing", "Start preparing", "primary") + b("ready", "Ready") + b("cancel", "Cancel…", "small ghost");
      case "preparing":
        return b("ready", "Ready", "primary") + b("cancel", "Cancel…", "small ghost");
      case "ready":
        if (kind === "dine_in") return b("complete", "Served", "primary");
        if (kind === "delivery" && by === "store") return b("picked-up", "Out for delivery", "primary");
        return b("picked-up", "Picked up", "primary") + b("complete", "Complete");
      case "picked_up":
        if (kind === "delivery") return b("delivered", "Delivered", "primary") + b("complete", "Complete");
        return b("complete", "Complete", "primary");
      default:
        return "";
    }
  }

  /** The platform's sub-brand (Postmates, Caviar) where it is not the channel itself. */
  function brandNote(order) {
    const brand = order.platform_brand;
    const plain = (text) => String(text || "").toLowerCase().replace(/[^a-z0-9]/g, "");
    if (!brand || plain(brand) === plain(order.channel) || plain(brand) === plain(channelName(order.channel))) return "";
    return ` · ${esc(brand)}`;
  }

  function cardHtml(order) {
    const zone = state.store && state.store.timezone;
    const when = due(order);
    const deadline = order.status === "received" ? acceptBy(order) : null;
    const address = addressLines(order);
    const f = order.fulfillment || {};
    const instructions = f.address && f.address.instructions;
    const flags = (order.flags || []).map((flag) => `<span class="pill warn" title="totals kept as the platform sent them">${esc(flag.flag.replace(/_/g, " "))}</span>`).join("");
    return `
      <header>
        <span class="code">${esc(code(order))}</span>
        <span class="channel">${esc(channelName(order.channel))}${brandNote(order)}</span>
        <span class="status-label">${esc(STATUS_TEXT[order.status] || order.status)}</span>
      </header>
      <div class="meta">
        <span class="pill info">${esc(fulfilment(order))}</span>
        ${when ? `<span class="pill">${when.scheduled ? "Scheduled" : "Due"} ${esc(clock(when.at, zone))}</span>` : `<span class="pill">ASAP</span>`}
        ${deadline ? `<span class="pill warn deadline" data-by="${deadline.toISOString()}">Accept within …</span>` : ""}
        ${f.accept_by && order.status === "received" ? `<span class="muted small">platform deadline ${esc(clock(f.accept_by, zone))}</span>` : ""}
        ${flags}
      </div>
      <ul class="items">${itemsHtml(order)}</ul>
      ${order.notes ? `<div class="order-note">Note: ${esc(order.notes)}</div>` : ""}
      <div class="who"><strong>${esc((order.customer || {}).name || "")}</strong>${address.length ? ` · ${esc(address.join(", "))}` : ""}${instructions ? `<div class="muted">${esc(instructions)}</div>` : ""}</div>
      <div class="meta muted">Placed ${esc(clock(order.placed_at, zone))} · ${esc(money((order.totals || {}).total))}</div>
      <div class="actions">${buttons(order)}
        <button type="button" class="small" data-action="ticket" data-id="${esc(order.id)}">Ticket</button>
        ${f.kind === "delivery" ? `<button type="button" class="small" data-action="slip" data-id="${esc(order.id)}">Slip</button>` : ""}
      </div>`;
  }

  function render(order) {
    const lane = LANES[order.status] || "done";
    let card = document.getElementById(`order-${order.id}`);
    if (!card) {
      card = document.createElement("article");
      card.id = `order-${order.id}`;
    }
    card.className = `card status-${order.status}`;
    card.dataset.status = order.status;
    card.dataset.code = code(order);
    card.dataset.channel = order.channel;
    card.innerHTML = cardHtml(order);
    const container = document.getElementById(`lane-${lane}`);
    // Newest first in the finished lane; oldest (most urgent) first elsewhere.
    const siblings = [...container.children].filter((c) => c !== card);
    const placed = (el) => state.orders.get(el.id.slice(6))?.received_at || "";
    const before = siblings.find((c) => (lane === "done" ? placed(c) < order.received_at : placed(c) > order.received_at));
    if (card.parentElement !== container || card.nextElementSibling !== (before || null)) {
      container.insertBefore(card, before || null);
    }
    tickDeadlines();
  }

  function refreshCounts() {
    const waiting = [...state.orders.values()].filter((o) => o.status === "received").length;
    const pill = $("#waiting");
    pill.textContent = `${waiting} waiting`;
    pill.className = `pill ${waiting ? "warn" : "good"}`;
    document.body.dataset.waiting = String(waiting);
    for (const lane of ["new", "kitchen", "ready"]) {
      const n = document.getElementById(`lane-${lane}`).children.length;
      document.querySelector(`.lane[data-lane="${lane}"] .count`).textContent = n ? String(n) : "";
    }
    const done = document.getElementById("lane-done").children.length;
    $("#done-count").textContent = done ? String(done) : "";
  }

  function tickDeadlines() {
    const now = Date.now();
    for (const el of document.querySelectorAll(".deadline[data-by]")) {
      const left = new Date(el.dataset.by).getTime() - now;
      el.textContent = left > 0 ? `Accept within ${countdown(left)}` : "Time to accept is up";
      el.className = `pill deadline ${left < 60000 ? "bad" : "warn"}`;
    }
  }
  setInterval(tickDeadlines, 1000);
  setInterval(() => {
    const waiting = [...state.orders.values()].some((o) => o.status === "received");
    if (waiting && Date.now() - state.lastRingAt >= RING_EVERY_MS) ring("waiting");
  }, 1000);

  // ---- actions -------------------------------------------------------------------------

  async function act(id, action, body) {
    try {
      const answer = await api(state.token, "POST", `/orders/${id}/${action}`, body || {});
      if (answer && answer.declined) {
        remove(id);
        toast(answer.next === "hq" ? "Rejected: HQ takes it from here." : "Rejected: the order goes to another store.");
      } else if (answer && answer.id) {
        const before = state.orders.get(id) || {};
        upsert({ ...before, ...answer });
      }
      refreshCounts();
    } catch (error) {
      toast(`Could not ${action.replace("-", " ")}: ${error.message}`);
    }
  }

  document.addEventListener("click", (e) => {
    const button = e.target.closest("button[data-action]");
    if (!button) return;
    unlockAudio();
    const id = button.dataset.id;
    const order = state.orders.get(id);
    const action = button.dataset.action;
    if (action === "accept") {
      const minutes = Number(document.querySelector(`select[data-prep="${CSS.escape(id)}"]`).value);
      act(id, "accept", { prep_minutes: minutes });
    } else if (action === "reject") {
      state.dialogOrder = id;
      $("#reject-code").textContent = order ? code(order) : "";
      $("#reject-reason").value = "too busy";
      $("#reject-other").classList.add("hidden");
      $("#reject-dialog").showModal();
    } else if (action === "cancel") {
      state.dialogOrder = id;
      $("#cancel-code").textContent = order ? code(order) : "";
      $("#cancel-reason").value = "";
      $("#cancel-dialog").showModal();
    } else if (action === "ticket" || action === "slip") {
      printOut(order, action);
    } else {
      act(id, action);
    }
  });

  for (const close of document.querySelectorAll("[data-close]")) {
    close.addEventListener("click", () => close.closest("dialog").close());
  }

  $("#reject-reason").addEventListener("change", () => {
    $("#reject-other").classList.toggle("hidden", $("#reject-reason").value !== "other");
  });
  $("#reject-confirm").addEventListener("click", (e) => {
    const choice = $("#reject-reason").value;
    const reason = choice === "other" ? $("#reject-other").value.trim() : choice;
    if (!reason) { e.preventDefault(); $("#reject-other").focus(); return; }
    act(state.dialogOrder, "reject", { reason });
  });
  $("#cancel-confirm").addEventListener("click", (e) => {
    const reason = $("#cancel-reason").value.trim();
    if (!reason) { e.preventDefault(); $("#cancel-reason").focus(); return; }
    act(state.dialogOrder, "cancel", { reason });
  });

  // ---- printing ------------------------------------------------------------------------

  function ticketHtml(order, kind) {
    const zone = state.store && state.store.timezone;
    const when = due(order);
    const f = order.fulfillment || {};
    const customer = order.customer || {};
    const lines = (order.lines || []).map((line) => {
      const mods = (list, depth) => (list || []).map((m) =>
        `<div class="mod${depth > 1 ? " deep" : ""}">${m.removed ? "NO " : (m.quantity > 1 ? `${m.quantity}× ` : "+ ")}${esc(m.name)}</div>${mods(m.modifiers, depth + 1)}`).join("");
      return `<div class="line"><strong>${line.quantity}× ${esc(line.name)}</strong></div>${mods(line.modifiers, 1)}${line.notes ? `<div class="mod">* ${esc(line.notes)}</div>` : ""}`;
    }).join("");
    const head = `<h1>${esc(code(order))}</h1>
      <div class="center">${esc(channelName(order.channel))} · ${esc(fulfilment(order))}</div>
      <div class="center">${when ? `${when.scheduled ? "Scheduled" : "Due"} ${esc(clock(when.at, zone))}` : "ASAP"} · placed ${esc(clock(order.placed_at, zone))}</div><hr>`;
    if (kind === "slip") {
      const address = addressLines(order);
      return `<div class="ticket slip">${head}
        <div><strong>${esc(customer.name || "")}</strong></div>
        ${address.map((l) => `<div>${esc(l)}</div>`).join("")}
        ${f.address && f.address.instructions ? `<div>* ${esc(f.address.instructions)}</div>` : ""}
        ${f.delivered_by === "store" && customer.phone ? `<div>Tel ${esc(customer.phone)}${customer.phone_pin ? ` PIN ${esc(customer.phone_pin)}` : ""}</div>` : ""}
        <hr>${lines}${order.notes ? `<hr><div>Note: ${esc(order.notes)}</div>` : ""}
        <hr><div class="line"><span>Total</span><span>${esc(money((order.totals || {}).total))}</span></div>
        <div class="center">${esc(state.store ? state.store.name : "")}</div></div>`;
    }
    return `<div class="ticket kitchen">${head}${lines}
      ${order.notes ? `<hr><div><strong>Note:</strong> ${esc(order.notes)}</div>` : ""}
      <hr><div>${esc(customer.name || "")}</div>
      <div class="center">${esc(state.store ? state.store.name : "")}</div></div>`;
  }

  function printOut(order, kind) {
    if (!order) return;
    const area = $("#print");
    area.innerHTML = ticketHtml(order, kind);
    area.dataset.kind = kind;
    area.dataset.order = order.id;
    window.print();
  }

  // ---- pause and items -----------------------------------------------------------------

  function setLive(live) {
    if (!live) return;
    state.live = live;
    const zone = state.store && state.store.timezone;
    const pill = $("#pause-state");
    if (live.paused) {
      pill.textContent = live.paused_until ? `Paused until ${clock(live.paused_until, zone)}` : "Paused";
      pill.className = "pill bad";
      showBanner(`Not taking new orders${live.paused_until ? ` until ${clock(live.paused_until, zone)}` : " until resumed"}${live.pause_reason ? ` — ${live.pause_reason}` : ""}.`, "pause");
    } else {
      pill.className = "pill hidden";
      hideBanner("pause");
    }
    $("#pause-button").classList.toggle("hidden", live.paused);
    $("#resume-button").classList.toggle("hidden", !live.paused);
    document.body.dataset.paused = String(live.paused);
    const list = $("#unavailable-list");
    list.innerHTML = (live.unavailable || []).map((plu) =>
      `<li><span>${esc(plu)}</span><button type="button" class="small" data-available="${esc(plu)}">Available again</button></li>`).join("")
      || `<li class="muted" style="background:none">Every item can be made.</li>`;
    $("#items-button").textContent = live.unavailable && live.unavailable.length ? `Items (${live.unavailable.length} off)` : "Items";
  }

  async function storeCall(path, body) {
    try {
      setLive(await api(state.token, "POST", `/stores/${state.store.id}/${path}`, body));
    } catch (error) {
      toast(`Could not change the store: ${error.message}`);
    }
  }

  $("#pause-button").addEventListener("click", () => $("#pause-dialog").showModal());
  $("#pause-confirm").addEventListener("click", () => {
    const minutes = $("#pause-minutes").value;
    const reason = $("#pause-reason").value.trim();
    const body = {};
    if (minutes) body.minutes = Number(minutes);
    if (reason) body.reason = reason;
    storeCall("pause", body);
  });
  $("#resume-button").addEventListener("click", () => storeCall("resume"));
  $("#items-button").addEventListener("click", () => {
    const known = new Set();
    const walk = (list) => (list || []).forEach((m) => { if (m.plu) known.add(m.plu); walk(m.modifiers); });
    for (const order of state.orders.values()) {
      for (const line of order.lines || []) { if (line.plu) known.add(line.plu); walk(line.modifiers); }
    }
    $("#known-plus").innerHTML = [...known].sort().map((plu) => `<option value="${esc(plu)}">`).join("");
    $("#items-dialog").showModal();
  });
  $("#mark-unavailable").addEventListener("click", () => {
    const plu = $("#plu").value.trim();
    if (!plu) { $("#plu").focus(); return; }
    $("#plu").value = "";
    storeCall("availability", { unavailable: [plu] });
  });
  $("#unavailable-list").addEventListener("click", (e) => {
    const button = e.target.closest("button[data-available]");
    if (button) storeCall("availability", { available: [button.dataset.available] });
  });

  // ---- banner --------------------------------------------------------------------------

  function showBanner(text, why = "connection") {
    const banner = $("#banner");
    banner.textContent = text;
    banner.dataset.why = why;
    banner.classList.remove("hidden");
  }
  function hideBanner(why) {
    const banner = $("#banner");
    if (banner.dataset.why === why) banner.classList.add("hidden");
    if (why === "connection" && state.live && state.live.paused) setLive(state.live);
  }

  // ---- start ---------------------------------------------------------------------------

  const saved = localStorage.getItem(TOKEN_KEY);
  if (saved) signIn(saved).catch(() => localStorage.removeItem(TOKEN_KEY));
})();
