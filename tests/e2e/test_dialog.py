"""split_roads and up_speed through the running service, on real speech."""
import json
import re

import pytest

from conftest import DATA, Service, wer

CALL = DATA / "call_stereo.mp3"
TRUTH = json.loads((DATA / "call.json").read_text())
EN = DATA / "en.mp3"
EN_TEXT = (DATA / "en.txt").read_text()


@pytest.fixture(scope="module")
def service(tmp_path_factory, models_dir):
    with Service(tmp_path_factory.mktemp("dialog") / "data", models_dir, workers=2,
                 WHISPER_API_PRELOAD_MODELS="tiny.en,base") as running:
        yield running


def test_stereo_call_becomes_a_timed_dialog(service):
    task_id = service.submit(CALL, model_name="base", language="ru",
                             split_roads="2,Клиент,Сотрудник").json()["task_id"]
    final = service.wait_done(task_id, timeout=180)
    assert final["status"] == "done", final
    lines = final["result"].strip().splitlines()
    parsed = [re.match(r"\[(\d\d):(\d\d)\] \[([^\]]+)\] (.+)", line) for line in lines]
    assert all(parsed), lines
    spoken = [(int(m[1]) * 60 + int(m[2]), m[3]) for m in parsed]
    # Turns in true order and on the right roles (a turn may come back as several lines).
    turns = [role for index, (_, role) in enumerate(spoken) if index == 0 or spoken[index - 1][1] != role]
    assert turns == [line["role"] for line in TRUTH], lines
    starts = [t for index, (t, role) in enumerate(spoken) if index == 0 or spoken[index - 1][1] != role]
    for start, truth in zip(starts, TRUTH):
        assert abs(start - truth["start"]) <= 1.0, lines  # mm:ss codes: whole seconds
    assert {s["speaker"] for s in final["segments"]} == {"Клиент", "Сотрудник"}

    srt = service.get(f"/api/result/{task_id}", params={"format": "srt"})
    assert srt.status_code == 200 and "[Клиент]" in srt.text and " --> " in srt.text
    assert "attachment" in srt.headers["Content-Disposition"]


def test_mono_file_cannot_be_split(service):
    response = service.submit(EN, split_roads="2,Клиент,Сотрудник")
    assert response.status_code == 400 and "1 channel" in response.json()["error"]


def test_up_speed_keeps_words_and_original_times(service):
    normal = service.wait_done(service.submit(EN, model_name="tiny.en").json()["task_id"])
    fast = service.wait_done(service.submit(EN, model_name="tiny.en", up_speed="1.5").json()["task_id"])
    assert fast["status"] == "done" and fast["options"]["up_speed"] == 1.5
    assert wer(EN_TEXT, fast["result"]) <= wer(EN_TEXT, normal["result"]) + 0.1, fast["result"]
    assert abs(fast["duration"] - normal["duration"]) < 0.2  # the original recording's length
    # The same words are heard at the same moments of the original recording.
    normal_words, fast_words = first_word_starts(normal), first_word_starts(fast)
    common = normal_words.keys() & fast_words.keys()
    assert len(common) >= 6, (normal["result"], fast["result"])
    for word in common:
        assert abs(normal_words[word] - fast_words[word]) <= 1.0, word
    assert fast["segments"][-1]["end"] == pytest.approx(normal["segments"][-1]["end"], abs=1.0)


def first_word_starts(status: dict) -> dict[str, float]:
    """Start times of the words of four letters or more said once in the transcript."""
    starts: dict[str, list[float]] = {}
    for segment in status["segments"]:
        for word in segment["words"]:
            starts.setdefault(re.sub(r"\W", "", word["word"].lower()), []).append(word["start"])
    return {word: times[0] for word, times in starts.items() if len(word) >= 4 and len(times) == 1}
