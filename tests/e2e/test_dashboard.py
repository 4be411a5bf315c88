"""The dashboard in a real browser: Debian's headless Chromium driven by Playwright,
against a live service (real gunicorn, real tiny.en and base models) on a loopback port."""
from __future__ import annotations

import base64
import os
import re
import subprocess
import time
from pathlib import Path

import pytest

from conftest import DATA, ROOT, Service, wer
from loopback import FakeLLM

sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect

CHROMIUM = Path(os.environ.get("WHISPER_API_TEST_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
MAX_UPLOAD_MB = 1
EN_CLIP = DATA / "en.mp3"
CALL_CLIP = DATA / "call_stereo.mp3"
CALL_ROLES = ("Клиент", "Сотрудник")

if not CHROMIUM.is_file():
    pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)


@pytest.fixture(scope="module")
def llm():
    """An OpenAI-compatible stand-in that "improves" a transcript by shouting it, slowly enough
    for the page to show the step."""
    server = FakeLLM(reply=lambda prompt: prompt[prompt.index("[00:00]"):].upper(), delay=1.5)
    yield server
    server.close()


@pytest.fixture(scope="module")
def service(tmp_path_factory, models_dir, llm):
    """One service for the module: one CPU worker with tiny.en preloaded (base loads on first
    use), 1 MB uploads, polishing by the stand-in LLM."""
    with Service(tmp_path_factory.mktemp("dashboard") / "data", models_dir, workers=2,
                 WHISPER_API_MAX_UPLOAD_MB=str(MAX_UPLOAD_MB),
                 WHISPER_API_LLM_BASE_URL=llm.base_url) as service:
        yield service


@pytest.fixture(scope="module")
def short_clip(tmp_path_factory) -> Path:
    """The first two sentences of en.mp3 (4.5 s), for tests where the words matter less."""
    path = tmp_path_factory.mktemp("clips") / "short.mp3"
    subprocess.run(["ffmpeg", "-loglevel", "error", "-i", str(EN_CLIP), "-t", "4.5", "-c", "copy", str(path)],
                   check=True)
    return path


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def open_page(browser, service):
    """Open a page of the service in a fresh context; afterwards check it never left the
    service (no CDN: the LAN may be offline), raised no JavaScript error and broke no rule of
    its Content-Security-Policy."""
    contexts, foreign, errors = [], [], []

    def on_request(request) -> None:
        if not request.url.startswith((service.url, "data:", "blob:")):
            foreign.append(request.url)

    def on_console(message) -> None:
        if message.text.startswith("Refused to"):  # how Chromium reports a CSP violation
            errors.append(message.text)

    def open_page(path: str = "/", locale: str = "en-US", viewport: dict = DESKTOP):
        context = browser.new_context(base_url=service.url, locale=locale, viewport=viewport,
                                      accept_downloads=True)
        contexts.append(context)
        page = context.new_page()
        page.on("request", on_request)
        page.on("console", on_console)
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(path)
        return page

    yield open_page
    for context in contexts:
        context.close()
    assert not foreign, f"the page loaded from outside the service: {foreign}"
    assert not errors, f"JavaScript errors: {errors}"


def screenshot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / name), full_page=True)


def poll_now(page) -> None:
    """Make the page poll at once, as it does when its tab comes back to the foreground."""
    page.evaluate("document.dispatchEvent(new Event('visibilitychange'))")


def drop_file(page, path: Path) -> None:
    """Drag ``path`` onto the drop zone, as a file dragged from the desktop arrives."""
    transfer = page.evaluate_handle(
        """([name, data]) => {
            const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
            const transfer = new DataTransfer();
            transfer.items.add(new File([bytes], name, { type: "audio/mpeg" }));
            return transfer;
        }""",
        [path.name, base64.b64encode(path.read_bytes()).decode()],
    )
    page.dispatch_event("#drop", "dragenter", {"dataTransfer": transfer})
    page.dispatch_event("#drop", "drop", {"dataTransfer": transfer})
    expect(page.locator("#drop-file")).to_have_text(path.name)


def watch_task(page, timeout: float = 90) -> tuple[str, list[tuple[str, str, str]]]:
    """Follow the newest task card until it finishes; returns its id and the states it showed
    as (status, progress bar value, state line)."""
    card = page.locator("#tasks .task").first
    expect(card).to_be_visible()
    seen: list[tuple[str, str, str]] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = (card.get_attribute("data-status"), card.locator(".task-bar").get_attribute("aria-valuenow") or "",
                 card.locator(".task-state").inner_text())
        if not seen or seen[-1] != state:
            seen.append(state)
        if state[0] in ("done", "error"):
            return card.get_attribute("data-id"), seen
        page.wait_for_timeout(100)
    raise TimeoutError(f"the task card did not finish: {seen}")


def test_page_is_dark_self_contained_and_speaks_two_languages(open_page):
    page = open_page("/", locale="ru-RU")
    expect(page.locator("html")).to_have_attribute("lang", "ru")
    expect(page.locator("#upload-title")).to_have_text("Новая транскрибация")
    expect(page.get_by_text("Разделить на дорожки")).to_be_visible()
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    red, green, blue = map(int, re.findall(r"\d+", background)[:3])
    assert max(red, green, blue) < 40, background

    page.click(".langs a[lang=en]")
    expect(page.locator("#upload-title")).to_have_text("New transcription")
    page.goto("/")  # the switch is remembered over the browser's Russian
    expect(page.get_by_text("Split into tracks")).to_be_visible()
    page.goto("/completed?lang=ru")
    expect(page.locator("#results-title")).to_contain_text("Готовые транскрипты")


def test_monitors_show_the_cpu_worker_models_and_log(open_page):
    page = open_page()
    expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    expect(page.locator("#devices")).to_contain_text("CPU workers")
    expect(page.locator('#devices .device[data-device="cpu:0"]')).to_be_visible()
    chip = page.locator('#model-status [data-device="cpu:0"] .chip[data-model="tiny.en"]')
    expect(chip).to_have_attribute("data-status", "loaded")
    expect(page.locator('#model option[value="tiny.en"]')).to_have_text(re.compile(r"tiny\.en — loaded"))
    expect(page.locator("#logs li").first).to_be_visible()
    expect(page.locator("#logs")).to_contain_text("model tiny.en loaded")


def test_devices_monitor_draws_gpus_with_memory_and_utilisation_bars(browser, service):
    """No GPU here: the service's GPU answers are replayed to the page to check the layout."""
    context = browser.new_context(base_url=service.url, viewport=DESKTOP)
    gpus = [{"id": 0, "name": "NVIDIA H100", "memory_total_mb": 81559, "memory_used_mb": 40780,
             "utilization_gpu": 93, "temperature": 61}]
    health = {"status": "ok", "counts": {}, "devices": {"cuda:0": {
        "device": "cuda:0", "pid": 4242, "status": "busy", "job": "0123456789abcdef", "restarts": 1}}}
    context.route("**/api/gpus", lambda route: route.fulfill(json=gpus))
    context.route("**/api/health", lambda route: route.fulfill(json=health))
    context.route("**/api/model_status", lambda route: route.fulfill(json={"0": {"large-v3": "loading"}}))
    page = context.new_page()
    page.goto("/")
    gpu = page.locator('#devices .device[data-device="cuda:0"]')
    expect(gpu).to_contain_text("GPU 0 · NVIDIA H100")
    expect(gpu).to_contain_text("Worker: busy · pid 4242 · job 01234567 · restarts: 1")
    expect(gpu.locator(".meter").nth(0)).to_contain_text("40780 / 81559 MB")
    expect(gpu.locator(".meter").nth(1).locator(".bar")).to_have_attribute("aria-valuenow", "93")
    expect(gpu.locator(".meter").nth(1).locator(".bar")).to_have_class(re.compile("bad"))
    expect(page.locator("#devices")).not_to_contain_text("CPU workers")
    expect(page.locator('#model-status [data-device="0"] h3')).to_have_text("GPU 0")
    context.close()


def test_monitors_say_so_while_the_worker_pool_restarts(open_page):
    """The live monitors answer 503 while the pool restarts (replayed here): the page says so
    beside each monitor and in the header, keeps polling, and recovers on its own."""
    page = open_page()
    expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    down = {"error": "the worker pool is not reachable: connection refused"}
    pattern = re.compile(r"/api/(health|gpus|model_status|logs)$")
    page.route(pattern, lambda route: route.fulfill(status=503, json=down))
    poll_now(page)
    expect(page.locator("#conn")).to_have_attribute("data-state", "pool")
    note = page.locator("#devices-card .unavailable")
    expect(note).to_have_text("Unavailable: the worker pool is not reachable: connection refused")
    expect(page.locator("#models-card .unavailable")).to_be_visible()
    expect(page.locator("#queue-card .unavailable")).to_be_hidden()  # the queue is in the store
    page.unroute(pattern)
    poll_now(page)
    expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    expect(note).to_be_hidden()


def test_split_into_tracks_reveals_one_role_field_per_track(open_page):
    page = open_page()
    fields = page.locator("#split-fields")
    expect(fields).to_be_hidden()
    page.check("#split")
    expect(fields).to_be_visible()
    expect(page.locator("#roles input")).to_have_count(2)
    page.fill("#tracks", "3")
    expect(page.locator("#roles input")).to_have_count(3)
    expect(page.locator("#roles .role-label").nth(2)).to_have_text("Role of track 3")
    page.fill("#tracks", "1")
    expect(page.locator("#roles input")).to_have_count(1)
    page.uncheck("#split")
    expect(fields).to_be_hidden()


def test_upload_shows_progress_then_the_transcript(open_page, service):
    page = open_page()
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.set_input_files("#file", str(EN_CLIP))
    page.select_option("#model", "tiny.en")
    page.click("#submit")
    task_id, seen = watch_task(page)

    assert seen[-1][:2] == ("done", "100"), seen
    assert any(status in ("queued", "processing") for status, _, _ in seen[:-1]), seen
    card = page.locator(f'#tasks .task[data-id="{task_id}"]')
    transcript = card.locator(".transcript")
    expect(transcript).to_be_visible()
    spoken = " ".join(transcript.locator(".line .text").all_inner_texts())
    assert wer(EN_CLIP.with_suffix(".txt").read_text(), spoken) < 0.25, spoken
    expect(card.locator(".task-state")).to_contain_text("Done in")

    card.locator(".task-copy").click()
    expect(card.locator(".task-copy")).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == service.get(f"/api/status/{task_id}").json()["result"]

    downloads = {}
    for fmt in ("txt", "srt", "vtt", "json"):
        with page.expect_download() as download:
            card.locator(f'a.download[data-format="{fmt}"]').click()
        assert download.value.suggested_filename == f"en.{fmt}"
        downloads[fmt] = Path(download.value.path()).read_text(encoding="utf-8")
    assert "weather" in downloads["txt"].lower()
    assert "-->" in downloads["srt"] and downloads["vtt"].startswith("WEBVTT")

    poll_now(page)
    expect(page.locator(f'#queue-completed li[data-id="{task_id}"]')).to_contain_text("en.mp3")
    expect(page.locator("#count-completed")).not_to_have_text("0")
    expect(card.locator(".task-copy")).to_have_text("Copy")
    page.mouse.move(0, 0)  # no hover highlight in the picture
    screenshot(page, "dashboard-desktop.png")


def test_upgrade_shows_the_llm_step_then_the_improved_text(open_page, llm, short_clip):
    page = open_page()
    page.set_input_files("#file", str(short_clip))
    page.select_option("#model", "tiny.en")
    page.check("#upgrade")
    page.click("#submit")
    task_id, seen = watch_task(page)
    assert seen[-1][0] == "done", seen
    assert ("processing", "100", "Improving the text with the LLM…") in seen, seen
    card = page.locator(f'#tasks .task[data-id="{task_id}"]')
    expect(card.locator(".transcript")).to_contain_text("GOOD MORNING")
    expect(card.locator(".task-note")).to_contain_text("Improved by the LLM")
    assert llm.requests


def test_stereo_call_split_into_roles_renders_a_coloured_dialog(open_page):
    page = open_page("/", locale="ru-RU")
    drop_file(page, CALL_CLIP)
    page.select_option("#model", "base")
    page.select_option("#language", "ru")
    page.check("#split")
    for field, role in zip(page.locator("#roles input").all(), CALL_ROLES):
        field.fill(role)
    page.click("#submit")
    task_id, seen = watch_task(page)
    assert seen[-1][0] == "done", seen

    turns = page.locator(f'#tasks .task[data-id="{task_id}"] .transcript.dialog .turn')
    expect(turns.first).to_be_visible()
    roles = [turn.get_attribute("data-role") for turn in turns.all()]
    assert set(roles) == set(CALL_ROLES)
    assert sum(a != b for a, b in zip(roles, roles[1:])) >= 3, roles  # the parties take turns
    colours = {
        role: turns.filter(has=page.locator(".role", has_text=role)).first.evaluate(
            "node => getComputedStyle(node.querySelector('.role')).color")
        for role in CALL_ROLES
    }
    assert colours[CALL_ROLES[0]] != colours[CALL_ROLES[1]], colours

    poll_now(page)
    expect(page.locator(f'#queue-completed li[data-id="{task_id}"]')).to_be_visible()
    page.set_viewport_size(PHONE)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    screenshot(page, "dashboard-phone.png")


def test_rejected_uploads_show_a_readable_message_beside_the_form(open_page, tmp_path):
    page = open_page()
    error = page.locator("#form-error")

    page.click("#submit")
    expect(error).to_have_text("Choose a file first.")

    page.set_input_files("#file", str(EN_CLIP))  # a mono file cannot be split in two
    page.select_option("#model", "tiny.en")
    page.check("#split")
    page.click("#submit")
    expect(error).to_contain_text("The service rejected the file: split_roads asks for 2 tracks")

    page.locator("#roles input").first.fill("Client, VIP")
    page.click("#submit")
    expect(error).to_have_text("Role names cannot contain commas.")
    page.uncheck("#split")

    page.evaluate("""() => {
        const select = document.getElementById("model");
        select.append(new Option("whisper-huge", "whisper-huge", true, true));
    }""")
    page.click("#submit")
    expect(error).to_contain_text("unknown model_name 'whisper-huge'")
    page.select_option("#model", "tiny.en")

    big = tmp_path / "big.mp3"
    big.write_bytes(os.urandom(int(1.5 * MAX_UPLOAD_MB * 1024 * 1024)))
    page.set_input_files("#file", str(big))
    page.click("#submit")
    expect(error).to_have_text(f"The file is 1.5 MB; the limit is {MAX_UPLOAD_MB} MB.")
    # A page older than a lowered limit sends the file anyway: the service's 413 is shown.
    page.evaluate("document.getElementById('upload-form').dataset.maxMb = '100'")
    page.click("#submit")
    expect(error).to_have_text(
        f"The service rejected the file: the upload is larger than the {MAX_UPLOAD_MB} MB limit")
    expect(page.locator("#tasks .task")).to_have_count(0)


def test_results_page_lists_shows_downloads_and_deletes(open_page, service, short_clip):
    task_id = service.submit(short_clip, model_name="tiny.en").json()["task_id"]
    assert service.wait_done(task_id)["status"] == "done"
    page = open_page("/completed")
    item = page.locator(f"#result-{task_id}")
    expect(item).to_contain_text("short.mp3")
    expect(item.locator('a.download[data-format="vtt"]')).to_have_attribute(
        "href", f"/api/result/{task_id}?format=vtt")
    item.locator("button.show").click()
    expect(item.locator(".transcript")).to_contain_text(re.compile("good morning", re.I))
    screenshot(page, "completed-desktop.png")

    delete = item.locator("button.delete")
    delete.click()
    expect(delete).to_have_text("Really delete?")
    delete.click()
    expect(item).to_have_count(0)
    assert service.get(f"/api/status/{task_id}").status_code == 404


def test_page_rides_out_a_service_restart(open_page, service, short_clip):
    """The harshest restart, with a task in flight: every process killed at once, then the
    service started again. The page says it lost the service, then carries on by itself."""
    page = open_page()
    conn = page.locator("#conn")
    page.set_input_files("#file", str(short_clip))
    page.select_option("#model", "tiny.en")
    page.click("#submit")
    card = page.locator("#tasks .task").first
    expect(card).to_have_attribute("data-id", re.compile(r"\w+"))
    expect(conn).to_have_attribute("data-state", "live")
    service.kill_all()
    expect(conn).to_have_attribute("data-state", "lost", timeout=15_000)
    expect(page.locator("#upload-title")).to_be_visible()  # still the page, not an error page

    service.start(timeout=120)
    expect(conn).to_have_attribute("data-state", "live", timeout=30_000)
    expect(card).to_have_attribute("data-status", "done", timeout=60_000)
    expect(card.locator(".transcript")).to_contain_text(re.compile("good morning", re.I))
    pid = service.worker_pids()["cpu:0"]
    expect(page.locator('#devices .device[data-device="cpu:0"]')).to_contain_text(f"pid {pid}")
