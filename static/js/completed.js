// The results page: local times, transcripts on demand, delete with a second click to confirm.
import { api, localizeTimes, poll, renderTranscript, setConnection, t } from "./common.js";

const CONFIRM_MS = 4000;
const POLL_MS = 5000;
const card = document.getElementById("results-card");
let knownDone = Number(card.dataset.done);
const errorBox = document.getElementById("results-error");

function showError(message) {
  errorBox.textContent = message ?? "";
  errorBox.hidden = !message;
}

async function toggleTranscript(item, button) {
  const box = item.querySelector(".transcript");
  const opening = box.hidden;
  box.hidden = !opening;
  button.setAttribute("aria-expanded", String(opening));
  button.textContent = t(opening ? "hide" : "show_result");
  if (opening && !box.dataset.loaded) {
    try {
      renderTranscript(box, await api(`/api/status/${encodeURIComponent(item.dataset.id)}`));
      box.dataset.loaded = "1";
    } catch (err) {
      box.hidden = true;
      button.textContent = t("show_result");
      showError(err.message);
    }
  }
}

async function remove(item, button) {
  if (!button.classList.contains("confirm")) {
    button.classList.add("confirm");
    button.textContent = t("delete_confirm");
    setTimeout(() => {
      button.classList.remove("confirm");
      button.textContent = t("delete");
    }, CONFIRM_MS);
    return;
  }
  button.disabled = true;
  try {
    await api(`/api/task/${encodeURIComponent(item.dataset.id)}`, { method: "DELETE" });
    if (item.closest("#results")) knownDone -= 1;
    item.remove();
    showError(null);
  } catch (err) {
    if (err.status === 404) {
      item.remove(); // already gone: retention or another operator deleted it
    } else {
      showError(err.status === 409 ? t("delete_busy") : t("delete_failed", { message: err.message }));
      button.disabled = false;
    }
  }
}

document.addEventListener("click", (event) => {
  const button = event.target.closest("button");
  const item = button?.closest(".result");
  if (!item) return;
  if (button.classList.contains("show")) toggleTranscript(item, button);
  else if (button.classList.contains("delete")) remove(item, button);
});

/** Keep the connection indicator honest and say when more transcripts have finished. */
async function refresh() {
  try {
    const queue = await api("/api/queue");
    setConnection("live");
    document.getElementById("results-new").hidden = queue.counts.done <= knownDone;
  } catch (err) {
    setConnection("lost", err.message);
  }
}

localizeTimes();
poll(refresh, POLL_MS);
