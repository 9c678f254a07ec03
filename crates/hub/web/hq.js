// The HQ dashboard (/hq): live counts per status, channel and store; the orders that need
// HQ (no store found, not accepted in time, a status sync parked) with their actions;
// parked messages with replay; and any order's whole timeline, found by its code or its
// channel's id. The live stream (/api/v1/stream) says when something changed; the page
// then reads the lists again.
"use strict";

(() => {
  const { api, stream, esc, stamp, channelName, code, itemsHtml, addressLines, money, toast } = Crossdock;
  const TOKEN_KEY = "crossdock.hq.token";
  const $ = (selector) => document.querySelector(selector);

  const state = { token: null, stores: [], openOrder: null, refreshing: false, again: false };

  // ---- sign-in ---------------------------------------------------------------------

  async function signIn(token) {
    const stores = await api(token, "GET", "/stores");
    state.token = token;
    state.stores = stores.stores || [];
    localStorage.setItem(TOKEN_KEY, token);
    $("#signin").classList.add("hidden");
    $("#dashboard").classList.remove("hidden");
    stream(token, () => refresh(), onConnection);
    const fromHash = decodeURIComponent(location.hash.replace(/^#order=/, ""));
    if (location.hash.startsWith("#order=") && fromHash) openOrder(fromHash);
  }

  $("#signin").addEventListener("submit", async (e) => {
    e.preventDefault();
    const token = $("#token").value.trim();
    $("#signin-error").textContent = "";
    $("#signin-button").disabled = true;
    try {
      await signIn(token);
    } catch (error) {
      $("#signin-error").textContent =
        error.status === 401 ? "That token is not valid."
        : error.status === 403 ? "This is a store's token: stores sign in at /store."
        : error.message;
    } finally {
      $("#signin-button").disabled = false;
    }
  });

  $("#signout").addEventListener("click", () => {
    localStorage.removeItem(TOKEN_KEY);
    location.hash = "";
    location.reload();
  });

  function onConnection(status) {
    $("#conn").className = `dot ${status === "live" ? "live" : "down"}`;
    document.body.dataset.connection = status;
  }

  // ---- reading everything again ------------------------------------------------------

  /** Reads summary, attention and parked lists; one read at a time, the last one wins. */
  async function refresh() {
    if (state.refreshing) { state.again = true; return; }
    state.refreshing = true;
    try {
      const hours = $("#hours").value;
      const [summary, attention, parked] = await Promise.all([
        api(state.token, "GET", `/summary?hours=${hours}`),
        api(state.token, "GET", "/attention"),
        api(state.token, "GET", "/parked"),
      ]);
      renderSummary(summary);
      renderAttention(attention.orders || []);
      renderParked(parked);
      if (state.openOrder) await openOrder(state.openOrder, true);
      document.body.dataset.refreshed = String(Date.now());
    } catch (error) {
      if (error.status === 401) localStorage.removeItem(TOKEN_KEY);
      toast(`Could not read the dashboard: ${error.message}`);
    } finally {
      state.refreshing = false;
      if (state.again) { state.again = false; refresh(); }
    }
  }
  $("#hours").addEventListener("change", () => {
    $("#window-label").textContent = `last ${$("#hours").selectedOptions[0].textContent}`;
    refresh();
  });

  const STATUS_ORDER = ["received", "accepted", "preparing", "ready", "picked_up", "delivered", "completed", "rejected", "cancelled", "failed"];
  const STATUS_TEXT = {
    received: "Waiting", accepted: "Accepted", preparing: "Preparing", ready: "Ready", picked_up: "Picked up",
    delivered: "Delivered", completed: "Completed", rejected: "Rejected", cancelled: "Cancelled", failed: "Failed",
  };

  function renderSummary(s) {
    const by = s.by_status || {};
    const attention = Object.values(s.attention || {}).reduce((a, b) => a + b, 0);
    const tiles = [
      ["total", "Orders", Object.values(by).reduce((a, b) => a + b, 0), false],
      ["unassigned", "No store yet", s.unassigned || 0, false],
      ...STATUS_ORDER.map((st) => [st, STATUS_TEXT[st], by[st] || 0, st === "failed" && by[st] > 0]),
      ["attention", "Need attention", attention, attention > 0],
    ];
    $("#tiles").innerHTML = tiles.map(([key, label, n, alert]) =>
      `<div class="tile${alert ? " alert" : ""}" data-tile="${key}"><div class="n">${n}</div><div class="label">${esc(label)}</div></div>`).join("");

    const channels = s.by_channel || [];
    $("#channels-body").innerHTML = channels.length
      ? `<table><thead><tr><th>Channel</th><th class="num">Orders</th><th class="num">Open</th><th class="num">Rejected</th><th class="num">Cancelled</th></tr></thead><tbody>${
        channels.map((c) => `<tr data-channel="${esc(c.channel)}"><td>${esc(channelName(c.channel))}</td><td class="num">${c.total}</td><td class="num">${c.open}</td><td class="num">${c.rejected}</td><td class="num">${c.cancelled}</td></tr>`).join("")}</tbody></table>`
      : `<div class="empty">No orders in this window.</div>`;

    const stores = s.by_store || [];
    $("#stores-body").innerHTML = `<table><thead><tr><th>Store</th><th class="num">Orders</th><th class="num">Waiting</th><th class="num">Kitchen</th><th></th></tr></thead><tbody>${
      stores.map((st) => {
        const paused = st.paused_until && new Date(st.paused_until) > new Date();
        const off = (st.unavailable || []).length;
        return `<tr data-store="${esc(st.store)}"><td><strong>${esc(st.store)}</strong><div class="muted">${esc(st.name || "")}</div>
          ${paused ? `<span class="pill bad">paused</span>` : ""}${off ? ` <span class="pill warn" title="${esc(st.unavailable.join(", "))}">${off} items off</span>` : ""}</td>
          <td class="num">${st.total}</td><td class="num">${st.waiting}</td><td class="num">${st.active}/${st.capacity ?? "–"}</td>
          <td class="row-actions">${paused
            ? `<button type="button" class="small" data-store-action="resume" data-store="${esc(st.store)}">Resume</button>`
            : `<button type="button" class="small" data-store-action="pause" data-store="${esc(st.store)}">Pause</button>`}</td></tr>`;
      }).join("")}</tbody></table>`;
  }

  const KIND_TEXT = {
    declined: "Store declined", timed_out: "Not accepted in time", no_store: "No store found", sync_parked: "Sync parked",
  };

  function storeOptions(except) {
    return state.stores.filter((s) => s.id !== except)
      .map((s) => `<option value="${esc(s.id)}">${esc(s.id)} · ${esc(s.name || "")}</option>`).join("");
  }

  function renderAttention(items) {
    $("#attention-count").textContent = String(items.length);
    $("#attention-count").className = `pill ${items.length ? "bad" : "good"}`;
    if (!items.length) { $("#attention-body").innerHTML = `<div class="empty">Nothing needs HQ now.</div>`; return; }
    $("#attention-body").innerHTML = `<table><thead><tr><th>What</th><th>Order</th><th>Why</th><th>Since</th><th></th></tr></thead><tbody>${
      items.map((item) => {
        const o = item.order || {};
        const actions = item.actions || [];
        const id = esc(o.id);
        return `<tr data-attention="${id}" data-kind="${esc(item.kind)}">
          <td><span class="kind">${esc(KIND_TEXT[item.kind] || item.kind)}</span></td>
          <td><a class="order-link" data-open="${id}">${esc(code(o))}</a><div class="muted">${esc(channelName(o.channel))}${o.store_id ? ` · ${esc(o.store_id)}` : ""}</div></td>
          <td>${esc(item.reason || "")}${item.declined_by && item.declined_by.length ? `<div class="muted">declined by ${esc(item.declined_by.join(", "))}</div>` : ""}</td>
          <td>${esc(stamp(item.since))}</td>
          <td class="row-actions">
            ${actions.includes("assign") ? `<select data-assign-to="${id}" aria-label="Store">${storeOptions(o.store_id)}</select><button type="button" class="small primary" data-act="assign" data-id="${id}">Assign</button>` : ""}
            ${actions.includes("reject") ? `<button type="button" class="small danger" data-act="reject" data-id="${id}" data-code="${esc(code(o))}">Reject</button>` : ""}
            ${actions.includes("replay") ? `<button type="button" class="small primary" data-act="replay" data-id="${id}">Retry sync</button>` : ""}
          </td></tr>`;
      }).join("")}</tbody></table>`;
  }

  function actionText(action) {
    if (!action) return "";
    if (typeof action === "string") return action;
    const name = (action.action || "").replace(/_/g, " ");
    return action.prep_minutes ? `${name} (${action.prep_minutes} min)` : action.reason ? `${name}: ${action.reason}` : name;
  }

  function renderParked(parked) {
    const syncs = parked.syncs || [];
    const aside = parked.set_aside || [];
    $("#parked-count").textContent = String(syncs.length + aside.length);
    $("#parked-count").className = `pill ${syncs.length + aside.length ? "bad" : "good"}`;
    let html = "";
    if (syncs.length) {
      html += `<h3 class="sub">Status syncs a channel kept refusing</h3><table><thead><tr><th>Order</th><th>Status</th><th>Answer</th><th class="num">Tries</th><th>Parked</th><th></th></tr></thead><tbody>${
        syncs.map((s) => `<tr data-parked="${esc(s.order_id)}">
          <td><a class="order-link" data-open="${esc(s.order_id)}">${esc(s.display_code || s.order_id)}</a><div class="muted">${esc(channelName(s.channel))}${s.store_id ? ` · ${esc(s.store_id)}` : ""}</div></td>
          <td>${esc(actionText(s.action))}</td><td>${esc(s.error || "")}</td><td class="num">${s.attempts}</td><td>${esc(stamp(s.parked_at))}</td>
          <td><button type="button" class="small primary" data-act="replay" data-id="${esc(s.order_id)}">Replay</button></td></tr>`).join("")}</tbody></table>`;
    }
    if (aside.length) {
      html += `<h3 class="sub">Messages the broker refused</h3><table><thead><tr><th>Message</th><th>Refusal</th><th>When</th><th></th></tr></thead><tbody>${
        aside.map((m) => `<tr data-set-aside="${esc(m.id)}"><td>${esc(m.kind)}<div class="muted">${esc(m.routing_key)}</div></td><td>${esc(m.refusal || "")}</td><td>${esc(stamp(m.refused_at))}</td>
          <td><button type="button" class="small primary" data-act="replay-message" data-id="${esc(m.id)}">Replay</button></td></tr>`).join("")}</tbody></table>`;
    }
    $("#parked-body").innerHTML = html || `<div class="empty">No parked messages.</div>`;
  }

  // ---- one order -----------------------------------------------------------------------

  const EVENT_TEXT = {
    received: "Received", routed: "Routing decision", status_changed: "Status", delivered_to_store: "Handed to the store",
    sync_delivered: "Synced to the channel", sync_failed: "Sync failed (will retry)", sync_parked: "Sync parked",
    sync_skipped: "Sync not needed", sync_replayed: "Syncs replayed by HQ", flagged: "Flagged", declined: "Declined by the store",
    needs_attention: "Waiting for HQ",
  };

  function eventHtml(e) {
    let detail = "";
    const data = e.data || {};
    if (e.kind === "routed" && data.candidates) {
      detail = `<div>${data.store ? `to <strong>${esc(data.store)}</strong>` : `<strong>no store</strong>`} <span class="muted">(${esc((data.rule || "").replace(/_/g, " "))})</span></div>
        ${data.candidates.length ? `<table><thead><tr><th>Store</th><th class="num">Distance</th><th>Verdict</th></tr></thead><tbody>${
          data.candidates.map((c) => `<tr><td>${esc(c.store)}</td><td class="num">${c.distance_m != null ? `${(c.distance_m / 1000).toFixed(1)} km` : ""}</td><td>${esc(c.verdict)}</td></tr>`).join("")}</tbody></table>` : ""}`;
    } else if (e.kind.startsWith("sync_") && data.action) {
      detail = `<div>${esc(actionText(data.action))}${data.attempt ? ` · attempt ${data.attempt}` : ""}</div>`;
    } else if (e.kind === "declined" && data.store) {
      detail = `<div>${esc(data.store)} · ${data.by === "timeout" ? "did not accept in time" : "rejected"}</div>`;
    }
    return `<li class="k-${esc(e.kind)}" data-kind="${esc(e.kind)}"><div class="when">${esc(stamp(e.at))} · ${esc(e.source)}</div>
      <div class="what">${esc(EVENT_TEXT[e.kind] || e.kind)}${e.status && e.kind === "status_changed" ? ` → ${esc(e.status)}` : ""}</div>
      ${e.reason ? `<div>${esc(e.reason)}</div>` : ""}${detail}</li>`;
  }

  async function openOrder(id, quiet) {
    try {
      const o = await api(state.token, "GET", `/orders/${encodeURIComponent(id)}`);
      state.openOrder = o.id;
      if (!quiet) location.hash = `order=${o.id}`;
      $("#order").classList.remove("hidden");
      $("#order").dataset.order = o.id;
      $("#order-title").textContent = `${code(o)} · ${channelName(o.channel)}`;
      const syncs = o.syncs || [];
      const address = addressLines(o);
      $("#order-body").innerHTML = `<div class="detail-grid">
        <div>
          <dl class="facts">
            <dt>Status</dt><dd><strong data-field="status">${esc(o.status)}</strong></dd>
            <dt>Store</dt><dd>${esc(o.store_id || "none")}</dd>
            <dt>Channel id</dt><dd>${esc(o.external_order_id)}</dd>
            <dt>Hub id</dt><dd class="muted">${esc(o.id)}</dd>
            <dt>Received</dt><dd>${esc(stamp(o.received_at))}</dd>
            <dt>Customer</dt><dd>${esc((o.customer || {}).name || "")}</dd>
            ${address.length ? `<dt>Address</dt><dd>${esc(address.join(", "))}</dd>` : ""}
            <dt>Total</dt><dd>${esc(money((o.totals || {}).total))}</dd>
          </dl>
          <h3 class="sub">Items</h3><ul class="items">${itemsHtml(o)}</ul>
          ${syncs.length ? `<h3 class="sub">Status syncs</h3><table><thead><tr><th>Status</th><th>State</th><th class="num">Tries</th><th>Last error</th></tr></thead><tbody>${
            syncs.map((s) => `<tr data-sync-state="${esc(s.state)}"><td>${esc(actionText(s.action))}</td><td>${esc(s.state)}</td><td class="num">${s.attempts}</td><td>${esc(s.last_error || "")}</td></tr>`).join("")}</tbody></table>` : ""}
          ${syncs.some((s) => s.state === "parked") ? `<div class="row-actions" style="margin-top:8px"><button type="button" class="primary" data-act="replay" data-id="${esc(o.id)}">Replay parked syncs</button></div>` : ""}
        </div>
        <div><h3 class="sub">Timeline</h3><ol class="timeline">${(o.events || []).map(eventHtml).join("")}</ol></div>
      </div>`;
    } catch (error) {
      if (!quiet) toast(error.status === 404 ? "No such order." : `Could not read the order: ${error.message}`);
    }
  }

  $("#close-order").addEventListener("click", () => {
    state.openOrder = null;
    $("#order").classList.add("hidden");
    location.hash = "";
  });
  $("#close-results").addEventListener("click", () => $("#results").classList.add("hidden"));

  $("#search").addEventListener("submit", async (e) => {
    e.preventDefault();
    const q = $("#q").value.trim();
    if (!q) return;
    try {
      const found = await api(state.token, "GET", `/orders?q=${encodeURIComponent(q)}&limit=50`);
      const orders = found.orders || [];
      if (orders.length === 1) {
        $("#results").classList.add("hidden");
        await openOrder(orders[0].id);
        return;
      }
      $("#results").classList.remove("hidden");
      $("#results-body").innerHTML = orders.length
        ? `<table><thead><tr><th>Order</th><th>Channel</th><th>Store</th><th>Status</th><th>Received</th></tr></thead><tbody>${
          orders.map((o) => `<tr><td><a class="order-link" data-open="${esc(o.id)}">${esc(code(o))}</a></td><td>${esc(channelName(o.channel))}</td><td>${esc(o.store_id || "")}</td><td>${esc(o.status)}</td><td>${esc(stamp(o.received_at))}</td></tr>`).join("")}</tbody></table>`
        : `<div class="empty">No order matches “${esc(q)}”.</div>`;
    } catch (error) {
      toast(`Search failed: ${error.message}`);
    }
  });

  // ---- actions -------------------------------------------------------------------------

  let rejecting = null;
  document.addEventListener("click", async (e) => {
    const open = e.target.closest("[data-open]");
    if (open) { openOrder(open.dataset.open); return; }
    const storeButton = e.target.closest("button[data-store-action]");
    if (storeButton) {
      const store = storeButton.dataset.store;
      const action = storeButton.dataset.storeAction;
      await call("POST", `/stores/${encodeURIComponent(store)}/${action}`, action === "pause" ? { reason: "paused by HQ" } : {}, `${store} ${action}d`);
      return;
    }
    const button = e.target.closest("button[data-act]");
    if (!button) return;
    const id = button.dataset.id;
    switch (button.dataset.act) {
      case "assign": {
        const store = document.querySelector(`select[data-assign-to="${CSS.escape(id)}"]`).value;
        await call("POST", `/orders/${id}/assign`, { store }, `Assigned to ${store}`, async (error) => {
          if (error.code === "store_cannot_take" && confirm(`${error.message}\n\nAssign anyway?`)) {
            await call("POST", `/orders/${id}/assign`, { store, force: true }, `Assigned to ${store}`);
          } else {
            toast(error.message);
          }
        });
        break;
      }
      case "reject":
        rejecting = id;
        $("#reject-code").textContent = button.dataset.code || "";
        $("#reject-reason").value = "";
        $("#reject-dialog").showModal();
        break;
      case "replay":
        await call("POST", `/orders/${id}/replay`, {}, "Parked syncs sent again");
        break;
      case "replay-message":
        await call("POST", `/outbox/${id}/replay`, {}, "Message sent again");
        break;
      default:
    }
  });

  for (const close of document.querySelectorAll("[data-close]")) {
    close.addEventListener("click", () => close.closest("dialog").close());
  }
  $("#reject-confirm").addEventListener("click", async (e) => {
    const reason = $("#reject-reason").value.trim();
    if (!reason) { e.preventDefault(); $("#reject-reason").focus(); return; }
    await call("POST", `/orders/${rejecting}/reject`, { reason }, "Rejected back to the channel");
  });

  async function call(method, path, body, done, onError) {
    try {
      await api(state.token, method, path, body);
      toast(done);
      refresh();
    } catch (error) {
      if (onError) await onError(error);
      else toast(error.message);
    }
  }

  // ---- start ---------------------------------------------------------------------------

  const saved = localStorage.getItem(TOKEN_KEY);
  if (saved) signIn(saved).catch(() => localStorage.removeItem(TOKEN_KEY));
})();
