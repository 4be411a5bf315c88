// The dashboard: the upload form, the user's task cards and the monitors.
import {
  ApiError, ROLE_COLOURS, api, clock, copyText, el, fillDownloads, isUpgraded, localTime,
  loginIfUnauthorized, poll, renderTranscript, rolesOf, setConnection, strings, t,
} from "./common.js";

const MB = 1024 * 1024;
const TASK_POLL_MS = 1000;
const MONITOR_POLL_MS = 3000;
const MONITOR_LIST_LIMIT = 10;
const TASKS_KEY = "whisper_api.tasks";
const TASKS_KEPT = 8;

const form = document.getElementById("upload-form");
const fileInput = document.getElementById("file");
const drop = document.getElementById("drop");
const split = document.getElementById("split");
const tracks = document.getElementById("tracks");
const rolesBox = document.getElementById("roles");
const formError = document.getElementById("form-error");
const submitButton = document.getElementById("submit");
const modelSelect = document.getElementById("model");

/** The translation of a state the API reports, e.g. `word("worker_", "idle")`; unknown ones as they are. */
function word(prefix, value) {
  return strings[`${prefix}${value}`] ?? String(value);
}

// ---------------------------------------------------------------- the form

function showFile() {
  document.getElementById("drop-file").textContent = fileInput.files[0]?.name ?? "";
}

fileInput.addEventListener("change", () => {
  showFile();
  showFormError(null);
});

for (const type of ["dragenter", "dragover"]) {
  drop.addEventListener(type, (event) => {
    event.preventDefault();
    drop.classList.add("over");
  });
}
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (event) => {
  event.preventDefault();
  drop.classList.remove("over");
  if (event.dataTransfer?.files.length) {
    fileInput.files = event.dataTransfer.files;
    fileInput.dispatchEvent(new Event("change"));
  }
});
// A file dropped beside the zone must not navigate away from the page.
for (const type of ["dragover", "drop"]) {
  window.addEventListener(type, (event) => {
    if (!drop.contains(event.target)) event.preventDefault();
  });
}

function maxTracks() {
  return Number(tracks.max) || ROLE_COLOURS;
}

/** One role field per track, keeping what was typed in the fields that stay. */
function renderRoles() {
  const count = Math.min(Math.max(parseInt(tracks.value, 10) || 1, 1), maxTracks());
  const template = document.getElementById("role-template");
  while (rolesBox.children.length < count) {
    const n = rolesBox.children.length + 1;
    const field = template.content.firstElementChild.cloneNode(true);
    field.classList.add(`role-${(n - 1) % ROLE_COLOURS}`);
    field.querySelector(".role-label").textContent = t("role_label", { n });
    const input = field.querySelector("input");
    input.value = t("role_default", { n });
    input.name = `role_${n}`;
    rolesBox.append(field);
  }
  while (rolesBox.children.length > count) rolesBox.lastElementChild.remove();
}

split.addEventListener("change", () => {
  document.getElementById("split-fields").hidden = !split.checked;
  if (split.checked) renderRoles();
});
tracks.addEventListener("input", renderRoles);

function showFormError(message) {
  formError.textContent = message ?? "";
  formError.hidden = !message;
}

/** The multipart body for POST /api/transcribe; throws a readable message when invalid. */
function formData() {
  const file = fileInput.files[0];
  if (!file) throw new Error(t("err_no_file"));
  const maxMb = Number(form.dataset.maxMb);
  if (file.size > maxMb * MB) {
    throw new Error(t("err_too_large", { size: (file.size / MB).toFixed(1), mb: maxMb }));
  }
  const speedInput = document.getElementById("speed");
  const speed = Number(String(speedInput.value || "1").replace(",", "."));
  const [minSpeed, maxSpeed] = [Number(form.dataset.minSpeed), Number(form.dataset.maxSpeed)];
  if (!(speed >= minSpeed && speed <= maxSpeed)) {
    speedInput.setAttribute("aria-invalid", "true");
    throw new Error(t("err_speed", { min: minSpeed, max: maxSpeed }));
  }
  speedInput.removeAttribute("aria-invalid");
  const data = new FormData();
  data.append("file", file, file.name);
  data.append("model_name", modelSelect.value);
  data.append("language", document.getElementById("language").value);
  data.append("initial_prompt", document.getElementById("prompt").value.trim());
  data.append("upgrade_transcribation", document.getElementById("upgrade").checked ? "true" : "false");
  data.append("up_speed", String(speed));
  if (split.checked) data.append("split_roads", splitRoads());
  return data;
}

function splitRoads() {
  renderRoles();
  const inputs = [...rolesBox.querySelectorAll("input")];
  let problem = null;
  for (const input of inputs) {
    const name = input.value.trim();
    const bad = !name ? "err_role_empty" : name.includes(",") ? "err_role_comma" : null;
    if (bad) input.setAttribute("aria-invalid", "true");
    else input.removeAttribute("aria-invalid");
    problem ??= bad;
  }
  if (problem) throw new Error(t(problem));
  return [inputs.length, ...inputs.map((input) => input.value.trim())].join(",");
}

/** POST the form with upload progress (fetch cannot report it). */
function upload(data, onProgress) {
  return new Promise((resolve, reject) => {
    const request = new XMLHttpRequest();
    request.open("POST", form.action);
    request.responseType = "json";
    request.setRequestHeader("Accept", "application/json");
    request.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) onProgress((100 * event.loaded) / event.total);
    });
    request.addEventListener("load", () => {
      const body = request.response;
      if (request.status === 200 && body?.task_id) resolve(body);
      else {
        loginIfUnauthorized(request.status);
        reject(new ApiError(request.status, body?.error ?? `HTTP ${request.status}`));
      }
    });
    request.addEventListener("error", () => reject(new ApiError(0, t("err_network"))));
    request.send(data);
  });
}

function uploadError(err) {
  if (err.status === 0) return t("err_network");
  if (err.status >= 500) return t("err_unavailable", { message: err.message });
  return t("err_rejected", { message: err.message }); // 413 included: the service knows its limit
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  let data;
  try {
    data = formData();
  } catch (err) {
    showFormError(err.message);
    return;
  }
  showFormError(null);
  const file = data.get("file");
  const progress = document.getElementById("upload-progress");
  const setProgress = (percent) => {
    progress.querySelector(".fill").style.width = `${percent}%`;
    progress.querySelector(".upload-text").textContent = t("uploading", { percent: Math.round(percent) });
  };
  setProgress(0);
  progress.hidden = false;
  submitButton.disabled = true;
  try {
    const { task_id: taskId } = await upload(data, setProgress);
    addTask({ id: taskId, filename: file.name });
    fileInput.value = "";
    showFile();
  } catch (err) {
    showFormError(uploadError(err));
  } finally {
    progress.hidden = true;
    submitButton.disabled = false;
  }
});

// ---------------------------------------------------------------- task cards

const tasksBox = document.getElementById("tasks");
const cards = new Map(); // task id -> {card, finished, status}
let queuedIds = [];

function storedTasks() {
  try {
    const tasks = JSON.parse(localStorage.getItem(TASKS_KEY) ?? "[]");
    return Array.isArray(tasks) ? tasks.filter((task) => typeof task?.id === "string") : [];
  } catch {
    return [];
  }
}

function storeTasks() {
  const tasks = [...tasksBox.children].map((card) => ({ id: card.dataset.id, filename: card.dataset.filename }));
  localStorage.setItem(TASKS_KEY, JSON.stringify(tasks.slice(0, TASKS_KEPT)));
}

function addTask(task, { atEnd = false } = {}) {
  if (cards.has(task.id)) {
    tasksBox.prepend(cards.get(task.id).card);
  } else {
    const card = document.getElementById("task-template").content.firstElementChild.cloneNode(true);
    card.dataset.id = task.id;
    card.dataset.filename = task.filename ?? "";
    card.querySelector(".task-file").textContent = task.filename ?? task.id;
    card.querySelector(".task-status").textContent = t("status_queued");
    card.querySelector(".task-state").textContent = t("state_queued");
    card.querySelector(".task-dismiss").addEventListener("click", () => removeTask(task.id));
    fillDownloads(card, task.id);
    if (atEnd) tasksBox.append(card);
    else tasksBox.prepend(card);
    cards.set(task.id, { card, finished: false, status: null });
    while (tasksBox.children.length > TASKS_KEPT) removeTask(tasksBox.lastElementChild.dataset.id);
  }
  document.getElementById("tasks-card").hidden = false;
  storeTasks();
  refreshTask(task.id);
}

function removeTask(id) {
  cards.get(id)?.card.remove();
  cards.delete(id);
  document.getElementById("tasks-card").hidden = cards.size === 0;
  storeTasks();
}

function taskMeta(status) {
  const roles = rolesOf(status.options?.split_roads);
  return [
    status.model_name,
    status.language ?? t("language_auto"),
    status.duration != null ? clock(status.duration) : null,
    roles.length ? roles.join(" / ") : null,
  ].filter(Boolean).join(" · ");
}

function taskState(status) {
  switch (status.status) {
    case "queued": {
      const position = queuedIds.indexOf(status.task_id) + 1;
      return position ? t("state_queued_at", { position }) : t("state_queued");
    }
    case "processing":
      if (status.stage === "polishing") return t("state_polishing");
      return t("state_processing", { device: status.device ?? "?", percent: Math.round(status.progress ?? 0) });
    case "done":
      return t("state_done", { seconds: (status.processing_time ?? 0).toFixed(1) });
    default:
      return t("state_error", { message: status.error ?? "?" });
  }
}

function showTask(entry, status) {
  const { card } = entry;
  const percent = status.status === "processing" ? status.progress ?? 0 : status.status === "queued" ? 0 : 100;
  card.dataset.status = status.status;
  card.querySelector(".task-file").textContent = status.filename;
  card.querySelector(".task-status").textContent = word("status_", status.status);
  card.querySelector(".task-meta").textContent = taskMeta(status);
  card.querySelector(".task-state").textContent = taskState(status);
  const bar = card.querySelector(".task-bar");
  bar.setAttribute("aria-valuenow", String(Math.round(percent)));
  bar.querySelector(".fill").style.width = `${percent}%`;
  entry.finished = status.status === "done" || status.status === "error";
  if (status.status === "done" && entry.status?.status !== "done") {
    renderTranscript(card.querySelector(".transcript"), status);
    const copy = card.querySelector(".task-copy");
    copy.onclick = async () => {
      if (await copyText(status.result ?? "")) {
        copy.textContent = t("copied");
        setTimeout(() => { copy.textContent = t("copy"); }, 1500);
      }
    };
    card.querySelector(".task-result").hidden = false;
    const note = card.querySelector(".task-note");
    note.textContent = status.upgrade_error ? t("upgrade_failed", { message: status.upgrade_error })
      : isUpgraded(status) ? t("upgraded") : "";
    note.hidden = !note.textContent;
  }
  entry.status = status;
}

async function refreshTask(id) {
  const entry = cards.get(id);
  if (!entry) return;
  try {
    showTask(entry, await api(`/api/status/${encodeURIComponent(id)}`));
  } catch (err) {
    if (err.status === 404) {
      entry.finished = true;
      entry.card.dataset.status = "error";
      entry.card.querySelector(".task-state").textContent = t("state_gone");
    }
    // Anything else (a restart, a dropped connection): the next poll tries again.
  }
}

poll(() => Promise.all([...cards].filter(([, entry]) => !entry.finished).map(([id]) => refreshTask(id))), TASK_POLL_MS);

// ---------------------------------------------------------------- monitors

function cardProblem(cardId, result) {
  const note = document.querySelector(`#${cardId} .unavailable`);
  note.hidden = result.status === "fulfilled";
  if (result.status === "rejected") note.textContent = t("unavailable", { message: result.reason.message });
}

function itemHead(name, side) {
  return el("div", { class: "item-head" }, el("span", { class: "item-name", title: name }, name),
    side ? el("span", { class: "item-side" }, side) : null);
}

function progressBar(percent) {
  const fill = el("div", { class: "fill" });
  fill.style.width = `${Math.max(0, Math.min(100, percent))}%`;
  return el("div", { class: "bar", role: "progressbar", "aria-valuenow": String(Math.round(percent)),
    "aria-valuemin": "0", "aria-valuemax": "100" }, fill);
}

function showQueue(queue) {
  queuedIds = queue.queue.map((item) => item.id);
  for (const key of ["processing", "queued", "completed", "failed"]) {
    const count = queue.counts?.[{ queued: "queued", processing: "processing", completed: "done", failed: "error" }[key]];
    document.getElementById(`count-${key}`).textContent = String(count ?? 0);
  }
  document.getElementById("queue-processing").replaceChildren(...queue.processing.map((item) =>
    el("li", { dataset: { id: item.id } },
      itemHead(item.filename, `${item.device ?? "?"} · ${Math.round(item.progress)}%`), progressBar(item.progress))));
  document.getElementById("queue-queued").replaceChildren(...queue.queue.slice(0, MONITOR_LIST_LIMIT).map((item) =>
    el("li", { dataset: { id: item.id } }, itemHead(item.filename, `${item.model_name} · ${localTime(item.created_at)}`))));
  document.getElementById("queue-completed").replaceChildren(...queue.completed.slice(0, MONITOR_LIST_LIMIT).map((item) =>
    el("li", { dataset: { id: item.id } },
      itemHead(item.filename, `${localTime(item.completed_at)} · ${t("seconds", { n: (item.processing_time ?? 0).toFixed(1) })}`),
      el("div", {}, el("button", { type: "button", class: "link-button",
        onclick: () => addTask({ id: item.id, filename: item.filename }) }, t("show_result"))))));
  document.getElementById("queue-failed").replaceChildren(...queue.failed.slice(0, MONITOR_LIST_LIMIT).map((item) =>
    el("li", { dataset: { id: item.id } }, itemHead(item.filename, localTime(item.completed_at)),
      el("span", { class: "item-error" }, item.error ?? ""))));
}

function meter(label, used, total, text) {
  const percent = total ? (100 * used) / total : 0;
  const bar = progressBar(percent);
  if (percent > 90) bar.classList.add("bad");
  else if (percent > 70) bar.classList.add("warn");
  return el("div", { class: "meter" }, el("span", {}, label), bar, el("span", {}, text));
}

function workerLine(info, withStatus) {
  if (!info) return null;
  const parts = withStatus ? [`${t("worker_status")}: ${word("worker_", info.status)}`] : [];
  if (info.pid) parts.push(`pid ${info.pid}`);
  if (info.job) parts.push(`${t("worker_job")} ${String(info.job).slice(0, 8)}`);
  if (info.restarts) parts.push(`${t("worker_restarts")}: ${info.restarts}`);
  return parts.length ? el("span", { class: "device-sub" }, parts.join(" · ")) : null;
}

// A worker host's devices are named "host/device" (distributed queue); this node's have no prefix.
function localName(name) {
  return name.slice(name.lastIndexOf("/") + 1);
}

function showDevices(gpus, devices) {
  const nodes = gpus.map((gpu) => {
    const remote = gpu.host ? `${gpu.host}/cuda:${gpu.id}` : null;
    const key = remote && devices[remote] ? remote : `cuda:${gpu.id}`;
    return el("div", { class: "device", dataset: { device: key, host: gpu.host ?? "" } },
    el("div", { class: "device-head" },
      el("span", { class: "device-name" }, `${gpu.host ? `${gpu.host} · ` : ""}GPU ${gpu.id} · ${gpu.name}`),
      gpu.temperature != null ? el("span", { class: "device-sub" }, `${gpu.temperature} °C`) : null,
      workerLine(devices[key], true)),
    meter(t("gpu_memory"), gpu.memory_used_mb, gpu.memory_total_mb,
      `${Math.round(gpu.memory_used_mb)} / ${Math.round(gpu.memory_total_mb)} MB`),
    meter(t("gpu_utilisation"), gpu.utilization_gpu ?? 0, 100, `${Math.round(gpu.utilization_gpu ?? 0)}%`));
  });
  // Workers without a GPU card: CPU workers, then any other kind (e.g. the LLM after-steps).
  const rest = Object.entries(devices).filter(([name]) => !localName(name).startsWith("cuda")).sort();
  for (const [title, workers] of [
    ["cpu_workers", rest.filter(([name]) => localName(name).startsWith("cpu"))],
    ["other_workers", rest.filter(([name]) => !localName(name).startsWith("cpu"))],
  ]) {
    if (!workers.length) continue;
    nodes.push(el("h3", {}, t(title)));
    for (const [name, info] of workers) {
      nodes.push(el("div", { class: "device", dataset: { device: name, status: info.status } },
        el("div", { class: "device-head" }, el("span", { class: "device-name" }, name),
          el("span", { class: "badge", dataset: { status: info.status === "busy" ? "processing" : "queued" } },
            word("worker_", info.status))),
        workerLine(info, false)));
    }
  }
  document.getElementById("devices").replaceChildren(...nodes);
}

function deviceLabel(key) {
  const cut = key.lastIndexOf("/");
  const [host, name] = cut < 0 ? ["", key] : [key.slice(0, cut), key.slice(cut + 1)];
  return `${host ? `${host} · ` : ""}${/^\d+$/.test(name) ? `GPU ${name}` : name}`;
}

function showModels(modelStatus) {
  const box = document.getElementById("model-status");
  box.replaceChildren(...Object.entries(modelStatus).map(([device, models]) =>
    el("div", { class: "model-device", dataset: { device } }, el("h3", {}, deviceLabel(device)),
      el("div", { class: "chips" }, ...Object.entries(models).sort().map(([model, status]) =>
        el("span", { class: "chip", dataset: { model, status } }, `${model} · ${word("model_", status)}`))))));
  // The form's menu shows each model's best state over all devices.
  const rank = { loaded: 3, loading: 2, error: 1 };
  const best = {};
  for (const models of Object.values(modelStatus)) {
    for (const [model, status] of Object.entries(models)) {
      if ((rank[status] ?? 0) > (rank[best[model]] ?? 0)) best[model] = status;
    }
  }
  for (const option of modelSelect.querySelectorAll("option")) {
    const name = option.dataset.name;
    const group = option.parentElement.dataset.group;
    const state = best[name] ? word("model_", best[name]) : group === "models_local" ? t("model_on_demand") : null;
    option.textContent = state ? `${name} — ${state}` : name;
  }
}

let lastLog = "";

function showLogs(entries) {
  const box = document.getElementById("logs");
  const last = entries.at(-1);
  const key = `${entries.length}|${last?.time}|${last?.msg}`;
  if (key === lastLog) return;
  const atBottom = !lastLog || box.scrollHeight - box.scrollTop - box.clientHeight < 24;
  lastLog = key;
  box.replaceChildren(...entries.map((entry) => el("li", {},
    el("time", { datetime: entry.time }, localTime(entry.time)),
    el("span", { class: `level level-${entry.level ?? "INFO"}` }, entry.level ?? ""),
    el("span", { class: "msg" }, entry.host ? el("span", { class: "log-host" }, `[${entry.host}] `) : null,
      entry.msg))));
  if (atBottom) box.scrollTop = box.scrollHeight;
}

async function refreshMonitors() {
  const [queue, health, gpus, models, logs] = await Promise.allSettled([
    api("/api/queue"),
    api("/api/health", { accept: [503] }), // 503 while starting still lists the workers
    api("/api/gpus"),
    api("/api/model_status"),
    api("/api/logs"),
  ]);
  const results = [queue, health, gpus, models, logs];
  if (queue.status === "fulfilled") showQueue(queue.value);
  cardProblem("queue-card", queue);
  const devices = health.status === "fulfilled" ? health.value?.devices : null;
  const deviceResult = devices ? gpus : health.status === "rejected" ? health
    : { status: "rejected", reason: new Error(health.value?.error ?? "?") };
  if (devices && gpus.status === "fulfilled") showDevices(gpus.value, devices);
  cardProblem("devices-card", deviceResult);
  if (models.status === "fulfilled") showModels(models.value);
  cardProblem("models-card", models);
  if (logs.status === "fulfilled") showLogs(logs.value);
  cardProblem("logs-card", logs);

  const failures = results.filter((result) => result.status === "rejected").map((result) => result.reason);
  const ready = health.status === "fulfilled" && health.value?.status === "ok";
  if (failures.some((err) => err.status === 0) || queue.status === "rejected") {
    setConnection("lost", failures[0].message);
  } else if (failures.length || !ready) {
    setConnection("pool", failures[0]?.message ?? health.value?.error ?? health.value?.status ?? "");
  } else {
    setConnection("live");
  }
}

poll(refreshMonitors, MONITOR_POLL_MS);

for (const task of storedTasks().slice(0, TASKS_KEPT)) addTask(task, { atEnd: true });
