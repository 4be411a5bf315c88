// Shared by the dashboard pages: strings, the JSON API, polling, formatting, transcripts.

export const strings = JSON.parse(document.getElementById("strings").textContent);
const lang = document.documentElement.lang || "en";

const REQUEST_TIMEOUT_MS = 10000;
export const ROLE_COLOURS = 8;

/** The string `key` in the page's language, `{name}` placeholders filled from `values`. */
export function t(key, values = {}) {
  let text = strings[key] ?? key;
  for (const [name, value] of Object.entries(values)) {
    text = text.replaceAll(`{${name}}`, String(value));
  }
  return text;
}

/** An API answer that was not 2xx (status 0: the service was not reached). */
export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** With API keys on, a 401 means the browser's key cookie is missing or stale: log in again. */
export function loginIfUnauthorized(status) {
  if (status === 401) location.assign(`/login?next=${encodeURIComponent(location.pathname + location.search)}`);
}

/** Call the JSON API; `accept` lists non-2xx statuses whose JSON body is still wanted. */
export async function api(path, { method = "GET", accept = [] } = {}) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), REQUEST_TIMEOUT_MS);
  try {
    let response;
    try {
      response = await fetch(path, {
        method, signal: controller.signal, cache: "no-store", headers: { Accept: "application/json" },
      });
    } catch {
      throw new ApiError(0, t("err_network"));
    }
    let body = null;
    try {
      body = await response.json();
    } catch {
      // Not JSON: a proxy's error page, or the connection dropped mid-body.
    }
    if (!response.ok && !accept.includes(response.status)) {
      loginIfUnauthorized(response.status);
      throw new ApiError(response.status, body?.error ?? `HTTP ${response.status}`);
    }
    return body;
  } finally {
    clearTimeout(timer);
  }
}

/** Run `fn` now and then every `intervalMs` (slower in a background tab); errors never stop it. */
export function poll(fn, intervalMs) {
  let timer = null;
  let running = false;
  async function tick() {
    clearTimeout(timer);
    if (running) return;
    running = true;
    try {
      await fn();
    } catch (err) {
      console.warn("poll:", err);
    } finally {
      running = false;
      timer = setTimeout(tick, document.hidden ? intervalMs * 5 : intervalMs);
    }
  }
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) tick();
  });
  tick();
  return tick;
}

/** The header's connection indicator: "live", "pool" (workers restarting) or "lost". */
export function setConnection(state, detail = "") {
  const node = document.getElementById("conn");
  const keys = { live: "conn_live", pool: "conn_pool_down", lost: "conn_lost" };
  node.dataset.state = state;
  node.querySelector(".conn-text").textContent = t(keys[state]);
  node.title = state === "live" ? t("updated_at", { time: localTime(new Date().toISOString()) }) : detail;
}

/** Build an element: `el("li", {class: "x", onclick: f}, "text", child)`; strings become text. */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value == null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  node.append(...children.filter((child) => child != null && child !== false));
  return node;
}

/** Seconds as `m:ss`, or `h:mm:ss` past an hour. */
export function clock(seconds) {
  const total = Math.max(0, Math.floor(seconds ?? 0));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = String(total % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${s}` : `${m}:${s}`;
}

/** An ISO time as local time of day; with `withDate`, the date too. */
export function localTime(iso, withDate = false) {
  if (!iso) return "";
  const date = new Date(iso);
  const options = { hour: "2-digit", minute: "2-digit", second: "2-digit" };
  return withDate
    ? date.toLocaleString(lang, { ...options, year: "numeric", month: "short", day: "numeric", second: undefined })
    : date.toLocaleTimeString(lang, options);
}

/** Show every `<time datetime>` under `root` in local time. */
export function localizeTimes(root = document) {
  for (const node of root.querySelectorAll("time[datetime]")) {
    node.textContent = localTime(node.getAttribute("datetime"), true);
  }
}

/** The role names of a `split_roads` option (`"2,A,B"` -> `["A", "B"]`). */
export function rolesOf(splitRoads) {
  return splitRoads ? splitRoads.split(",").slice(1) : [];
}

/** Point the download links under `root` at the task's rendered results. */
export function fillDownloads(root, taskId) {
  for (const link of root.querySelectorAll("a.download")) {
    link.href = `/api/result/${encodeURIComponent(taskId)}?format=${link.dataset.format}`;
  }
}

/** Render a finished task's transcript into `container`: plain lines, or a dialog by role. */
export function renderTranscript(container, status) {
  const roles = rolesOf(status.options?.split_roads);
  const segments = isUpgraded(status) ? segmentsOf(status.result) : status.segments ?? [];
  container.replaceChildren();
  container.classList.toggle("dialog", roles.length > 0);
  if (!segments.length) {
    const text = (status.result ?? "").trim();
    container.append(el("p", { class: text ? "plain" : "empty" }, text || t("empty_result")));
    return;
  }
  let turn = null;
  for (const segment of segments) {
    const time = el("span", { class: "time" }, segment.start == null ? "" : clock(segment.start));
    const text = (segment.text ?? "").trim();
    if (!roles.length || segment.speaker == null) {
      container.append(el("div", { class: "line" }, time, el("span", { class: "text" }, text)));
      turn = null;
    } else if (turn?.dataset.speaker === String(segment.speaker)) {
      turn.querySelector("p").append(` ${text}`); // the same speaker goes on: one bubble
    } else {
      const index = roleIndex(roles, segment.speaker);
      const name = roles[index] ?? String(segment.speaker);
      turn = el("div", { class: `turn role-${index % ROLE_COLOURS}${index % 2 ? " right" : ""}`,
        dataset: { speaker: String(segment.speaker), role: name } },
      el("span", { class: "role" }, name), time, el("p", {}, text));
      container.append(turn);
    }
  }
}

/** True when the LLM rewrote the transcript: `result` then differs from the timed `raw_result`. */
export function isUpgraded(status) {
  return Boolean(status.result) && status.raw_result != null && status.result !== status.raw_result;
}

const LINE = /^\[(?:(\d+):)?(\d{1,2}):(\d{2})\]\s*(?:\[([^\]]+)\]\s*)?(.*)$/;

/** Segments back from text lines `[mm:ss] text` or `[mm:ss] [Role] text` (an LLM's rewrite). */
function segmentsOf(text) {
  return text.split("\n").map((line) => line.trim()).filter(Boolean).map((line) => {
    const match = LINE.exec(line);
    if (!match) return { start: null, text: line };
    const [, hours, minutes, seconds, speaker, rest] = match;
    return { start: Number(hours ?? 0) * 3600 + Number(minutes) * 60 + Number(seconds), speaker, text: rest };
  });
}

function roleIndex(roles, speaker) {
  if (typeof speaker === "number") return speaker;
  const index = roles.indexOf(speaker);
  return index >= 0 ? index : roles.length;
}

/** Copy `text`; the Clipboard API needs a secure context, so plain-HTTP LAN pages fall back. */
export async function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) {
    try {
      await navigator.clipboard.writeText(text);
      return true;
    } catch {
      // Denied: fall through to the selection trick.
    }
  }
  const area = el("textarea", { readonly: true, class: "offscreen" });
  area.value = text;
  document.body.append(area);
  area.select();
  const copied = document.execCommand("copy");
  area.remove();
  return copied;
}
