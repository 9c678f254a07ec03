// Crossdock web pages: what the store console and the HQ dashboard share — the API
// client, the live stream reader, and how orders are written out.
"use strict";

const Crossdock = (() => {
  /** An answer of the API that was not 2xx: `code` and `message` as the hub wrote them. */
  class ApiError extends Error {
    constructor(status, code, message) {
      super(message || code || `HTTP ${status}`);
      this.status = status;
      this.code = code;
    }
  }

  /** Calls `/api/v1{path}` with the bearer token; resolves to the JSON answer. */
  async function api(token, method, path, body) {
    const init = { method, headers: { Authorization: `Bearer ${token}` } };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(`/api/v1${path}`, init);
    } catch (e) {
      throw new ApiError(0, "network", "the hub cannot be reached; check the connection");
    }
    const text = await response.text();
    let json = null;
    try { json = text ? JSON.parse(text) : null; } catch (e) { json = null; }
    if (!response.ok) {
      throw new ApiError(response.status, json && json.error, (json && json.message) || text);
    }
    return json;
  }

  /**
   * Reads `/api/v1/stream` (server-sent events over fetch, so the token travels in a
   * header, never in the URL) and reconnects after any drop, 0.5 s doubling to 5 s.
   * `onEvent(name, data)` gets each event; `onState("live" | "down")` the connection's
   * state. Each connection starts with the whole state again, so the page is caught up.
   */
  function stream(token, onEvent, onState) {
    let stopped = false;
    let controller = null;
    let delay = 500;
    async function once() {
      controller = new AbortController();
      const response = await fetch("/api/v1/stream", {
        headers: { Authorization: `Bearer ${token}`, Accept: "text/event-stream" },
        signal: controller.signal,
        cache: "no-store",
      });
      if (response.status === 401) {
        onState("unauthorized");
        stopped = true;
        return;
      }
      if (!response.ok || !response.body) throw new Error(`stream answered ${response.status}`);
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      let buffer = "";
      let first = true;
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true }).replace(/\r\n?/g, "\n");
        let cut;
        while ((cut = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 2);
          let name = "message";
          const data = [];
          for (const line of block.split("\n")) {
            if (line.startsWith(":")) continue;
            const colon = line.indexOf(":");
            const field = colon < 0 ? line : line.slice(0, colon);
            const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
            if (field === "event") name = value;
            else if (field === "data") data.push(value);
          }
          if (!data.length) continue;
          if (first) { first = false; delay = 500; onState("live"); }
          let parsed;
          try { parsed = JSON.parse(data.join("\n")); } catch (e) { continue; }
          onEvent(name, parsed);
        }
      }
    }
    (async () => {
      while (!stopped) {
        try { await once(); } catch (e) { /* dropped: reconnect below */ }
        if (stopped) break;
        onState("down");
        await new Promise((r) => setTimeout(r, delay));
        delay = Math.min(delay * 2, 5000);
      }
    })();
    return { close() { stopped = true; if (controller) controller.abort(); } };
  }

  /** Escapes text for HTML. */
  function esc(value) {
    return String(value ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
  }

  /** Money in minor units, as the currency writes it (JPY has no minor unit). */
  function money(m) {
    if (!m) return "";
    try {
      const format = new Intl.NumberFormat(undefined, { style: "currency", currency: m.currency });
      const digits = format.resolvedOptions().maximumFractionDigits;
      return format.format(m.minor / 10 ** digits);
    } catch (e) {
      return `${m.minor} ${m.currency}`;
    }
  }

  /** A time of day in `zone` (the store's time zone), e.g. "14:05". */
  function clock(iso, zone) {
    if (!iso) return "";
    const options = { hour: "2-digit", minute: "2-digit", hour12: false };
    if (zone) options.timeZone = zone;
    try { return new Intl.DateTimeFormat(undefined, options).format(new Date(iso)); }
    catch (e) { return new Date(iso).toLocaleTimeString(); }
  }

  /** Date and time, for histories. */
  function stamp(iso, zone) {
    if (!iso) return "";
    const options = { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false };
    if (zone) options.timeZone = zone;
    try { return new Intl.DateTimeFormat(undefined, options).format(new Date(iso)); }
    catch (e) { return iso; }
  }

  /** "4:05" from milliseconds; "-0:12" once passed. */
  function countdown(ms) {
    const sign = ms < 0 ? "-" : "";
    const total = Math.floor(Math.abs(ms) / 1000);
    return `${sign}${Math.floor(total / 60)}:${String(total % 60).padStart(2, "0")}`;
  }

  const CHANNELS = {
    own_app: "Own app", pos: "POS", uber_eats: "Uber Eats", doordash: "DoorDash", deliveroo: "Deliveroo",
    meituan: "Meituan", eleme: "Ele.me", google: "Google", dianping: "Dianping", just_eat: "Just Eat",
  };
  /** A channel's name for people; an unknown id as it is. */
  function channelName(id) { return CHANNELS[id] || id; }

  const FULFILMENT = { delivery: "Delivery", pickup: "Pickup", dine_in: "Dine-in" };
  function fulfilment(order) {
    const f = order.fulfillment || {};
    let text = FULFILMENT[f.kind] || f.kind || "";
    if (f.kind === "delivery" && f.delivered_by) text += f.delivered_by === "store" ? " (our driver)" : " (platform courier)";
    return text;
  }

  /** When the order is due: a scheduled time, or the platform's promised time. */
  function due(order) {
    const f = order.fulfillment || {};
    if (f.timing && f.timing.type === "scheduled") return { at: f.timing.at, scheduled: true };
    if (f.promised_at) return { at: f.promised_at, scheduled: false };
    return null;
  }

  /** The code staff and couriers read out; the channel's id where there is none. */
  function code(order) { return order.display_code || order.external_order_id; }

  /** Items with nested modifiers and notes, as HTML list items. */
  function itemsHtml(order) {
    const mods = (list, depth) => (list || []).map((m) => {
      const qty = m.quantity > 1 ? `${m.quantity}× ` : "";
      const name = m.removed ? `no ${esc(m.name)}` : `${qty}${esc(m.name)}`;
      const group = m.group ? `<span class="muted">${esc(m.group)}:</span> ` : "";
      return `<li class="mod depth${depth}${m.removed ? " removed" : ""}">${group}${name}${m.modifiers && m.modifiers.length ? `<ul>${mods(m.modifiers, depth + 1)}</ul>` : ""}</li>`;
    }).join("");
    return (order.lines || []).map((line) =>
      `<li class="item"><span class="qty">${line.quantity}×</span> <span class="name">${esc(line.name)}</span>`
      + (line.modifiers && line.modifiers.length ? `<ul>${mods(line.modifiers, 1)}</ul>` : "")
      + (line.notes ? `<div class="note">“${esc(line.notes)}”</div>` : "")
      + "</li>").join("");
  }

  /** The delivery address on lines; "" without one. */
  function addressLines(order) {
    const a = (order.fulfillment || {}).address;
    if (!a) return [];
    const lines = [...(a.lines || [])];
    const city = [a.postcode, a.city].filter(Boolean).join(" ");
    if (city) lines.push(city);
    return lines;
  }

  /** Shows a short message at the bottom of the page. */
  function toast(text) {
    const el = document.createElement("div");
    el.className = "toast";
    el.setAttribute("role", "status");
    el.textContent = text;
    document.body.appendChild(el);
    setTimeout(() => el.remove(), 4000);
  }

  return { ApiError, api, stream, esc, money, clock, stamp, countdown, channelName, fulfilment, due, code, itemsHtml, addressLines, toast };
})();
