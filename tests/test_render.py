"""Output formats on hand-made segments, and a dialog merged from a real transcribed stereo call."""
import json
import re
from dataclasses import asdict
from difflib import SequenceMatcher
from pathlib import Path

import pytest
from faster_whisper import WhisperModel

from whisper_api import audio, render
from whisper_api.models import place

DATA = Path(__file__).parent / "data"
MODELS_DIR = Path(__file__).resolve().parents[1] / "models"


def word(start, end, text, probability=0.9):
    return {"start": start, "end": end, "word": text, "probability": probability}


def segment(start, end, text, *words):
    return {"start": start, "end": end, "text": text, "words": list(words)}


SEGMENTS = [
    segment(0.0, 2.5, " Hello there.", word(0.0, 1.0, " Hello"), word(1.1, 2.5, " there.")),
    segment(62.25, 64.0, " A --> B"),
]
DIALOG = [
    {"start": 0.0, "end": 4.2, "text": " Алло, да, здравствуйте, я из учебного центра...", "speaker": "Клиент"},
    {"start": 0.4, "end": 1.0, "text": " Алло.", "speaker": "Сотрудник"},
]


@pytest.fixture(scope="module")
def base():
    path = place("base", MODELS_DIR)
    return WhisperModel(str(path), device="cpu", compute_type="int8", cpu_threads=2)


def test_timecode():
    assert [render.timecode(s) for s in (0, 59.99, 65.5, 3599, 3600, 3725.2)] == [
        "00:00", "00:59", "01:05", "59:59", "1:00:00", "1:02:05",
    ]


def test_text():
    assert render.to_text(SEGMENTS) == "[00:00] Hello there.\n[01:02] A --> B\n"
    assert render.to_text(DIALOG) == (
        "[00:00] [Клиент] Алло, да, здравствуйте, я из учебного центра...\n"
        "[00:00] [Сотрудник] Алло.\n"
    )


def test_srt():
    assert render.to_srt(SEGMENTS) == (
        "1\n00:00:00,000 --> 00:00:02,500\nHello there.\n\n"
        "2\n00:01:02,250 --> 00:01:04,000\nA -> B\n"
    )
    assert "00:00:00,400 --> 00:00:01,000\n[Сотрудник] Алло.\n" in render.to_srt(DIALOG)


def test_vtt():
    assert render.to_vtt(DIALOG) == (
        "WEBVTT\n\n"
        "00:00:00.000 --> 00:00:04.200\n[Клиент] Алло, да, здравствуйте, я из учебного центра...\n\n"
        "00:00:00.400 --> 00:00:01.000\n[Сотрудник] Алло.\n"
    )


def test_tsv():
    assert render.to_tsv(SEGMENTS) == "start\tend\ttext\n0\t2500\tHello there.\n62250\t64000\tA --> B\n"


def test_json():
    body, mimetype = render.render("json", DIALOG, language="ru", duration=4.5)
    assert mimetype == "application/json"
    assert json.loads(body) == {
        "text": "[Клиент] Алло, да, здравствуйте, я из учебного центра...\n[Сотрудник] Алло.",
        "language": "ru",
        "duration": 4.5,
        "segments": DIALOG,
    }
    assert json.loads(render.to_json(SEGMENTS))["text"] == "Hello there. A --> B"


def test_render_picks_the_format():
    assert render.render("txt", SEGMENTS) == (render.to_text(SEGMENTS), "text/plain")
    assert render.render("srt", SEGMENTS)[1] == "application/x-subrip"
    assert render.render("vtt", SEGMENTS)[1] == "text/vtt"
    assert render.render("tsv", SEGMENTS)[1] == "text/tab-separated-values"
    with pytest.raises(ValueError, match="unknown format 'docx'"):
        render.render("docx", SEGMENTS)


def test_merge_orders_lines_and_keeps_track_order_on_ties():
    left = [segment(0.0, 1.0, " Алло."), segment(5.0, 6.0, " Да.")]
    right = [segment(0.0, 1.0, " Алло."), segment(2.0, 4.0, " Слушаю вас.")]
    merged = render.merge_dialog([("Клиент", left), ("Сотрудник", right)])
    assert [(s["speaker"], s["text"]) for s in merged] == [
        ("Клиент", " Алло."),
        ("Сотрудник", " Алло."),
        ("Сотрудник", " Слушаю вас."),
        ("Клиент", " Да."),
    ]


def test_merge_drops_the_fainter_copy_of_a_line_heard_on_both_channels():
    own = segment(1.0, 3.0, " Меня зовут Анна.", word(1.0, 3.0, " Меня зовут Анна.", 0.9))
    leaked = segment(1.1, 3.0, " Меня зовут Анна", word(1.1, 3.0, " Меня зовут Анна", 0.4))
    merged = render.merge_dialog([("Клиент", [leaked]), ("Сотрудник", [own])])
    assert [(s["speaker"], s["text"]) for s in merged] == [("Сотрудник", " Меня зовут Анна.")]


def test_merge_splits_a_line_at_the_other_partys_turn():
    spanning = segment(
        0.0, 9.0, " Добрый день. Спасибо.",
        word(0.0, 0.5, " Добрый"), word(0.6, 1.0, " день."), word(8.0, 9.0, " Спасибо."),
    )
    reply = segment(3.0, 5.0, " Здравствуйте.", word(3.0, 5.0, " Здравствуйте."))
    merged = render.merge_dialog([("Клиент", [spanning]), ("Сотрудник", [reply])])
    assert [(s["speaker"], s["start"], s["end"], s["text"]) for s in merged] == [
        ("Клиент", 0.0, 1.0, "Добрый день."),
        ("Сотрудник", 3.0, 5.0, " Здравствуйте."),
        ("Клиент", 8.0, 9.0, "Спасибо."),
    ]


def normalized(text: str) -> str:
    return " ".join(re.findall(r"\w+", text.lower()))


def test_real_stereo_call_becomes_a_dialog_in_true_order(base):
    truth = json.loads((DATA / "call.json").read_text())
    roles = [line["role"] for line in truth[:2]]
    tracks = []
    for role, samples in zip(roles, audio.decode(DATA / "call_stereo.mp3", channels=2)):
        segments, _ = base.transcribe(samples, language="ru", vad_filter=True, word_timestamps=True)
        tracks.append((role, [asdict(s) for s in segments]))
    dialog = render.merge_dialog(tracks)
    transcript = render.to_text(dialog)

    # Each line falls inside one true line and carries its role: a crosstalk copy would not.
    covered = []
    for line in dialog:
        middle = (line["start"] + line["end"]) / 2
        (index,) = [i for i, t in enumerate(truth) if t["start"] - 0.5 <= middle <= t["end"] + 0.5]
        assert line["speaker"] == truth[index]["role"], transcript
        covered.append(index)
    assert covered == sorted(covered), transcript
    assert sorted(set(covered)) == list(range(len(truth))), transcript
    for index, expected in enumerate(truth):
        first = dialog[covered.index(index)]
        assert first["start"] == pytest.approx(expected["start"], abs=1.0), transcript
    heard = normalized(" ".join(line["text"] for line in dialog))
    said = normalized(" ".join(line["text"] for line in truth))
    assert SequenceMatcher(None, heard, said).ratio() >= 0.7, transcript
