"""Transcripts out of stored segments: dialogs merged from tracks, and txt/json/srt/vtt/tsv."""
from __future__ import annotations

import json
import re
from difflib import SequenceMatcher

from whisper_ctranslate2.writers import format_timestamp

# A pause this long between two words of one track ends a dialog line: the other party
# may have spoken in it, and a line must not span the other party's turn.
TURN_PAUSE = 1.0
# Lines this similar, overlapping on two tracks, are one voice heard on both channels.
DUPLICATE_RATIO = 0.8
# Short answers ("Да.", "Алло.") are said by both parties at once for real: never dropped.
DUPLICATE_MIN_CHARS = 10


def timecode(seconds: float) -> str:
    """``mm:ss``, or ``h:mm:ss`` from one hour on."""
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


def merge_dialog(tracks: list[tuple[str, list[dict]]]) -> list[dict]:
    """One dialog from ``(role, segments)`` per channel: lines by start, crosstalk copies dropped."""
    lines = [
        {**line, "speaker": role}
        for role, segments in tracks
        for segment in segments
        for line in _split_at_pauses(segment)
    ]
    # The most confident copy of a voice heard on two channels is its own channel's.
    kept: list[int] = []
    for i in sorted(range(len(lines)), key=lambda i: -_confidence(lines[i])):
        if not any(_is_copy(lines[i], lines[k]) for k in kept):
            kept.append(i)
    return sorted((lines[i] for i in sorted(kept)), key=lambda line: line["start"])


def _split_at_pauses(segment: dict) -> list[dict]:
    """Split a segment where its words pause for ``TURN_PAUSE`` seconds or more."""
    groups: list[list[dict]] = []
    for word in segment.get("words") or []:
        if groups and word["start"] - groups[-1][-1]["end"] < TURN_PAUSE:
            groups[-1].append(word)
        else:
            groups.append([word])
    if len(groups) < 2:
        return [segment]
    return [
        {
            **segment,
            "start": group[0]["start"],
            "end": group[-1]["end"],
            "text": "".join(word["word"] for word in group).strip(),
            "words": group,
        }
        for group in groups
    ]


def _is_copy(line: dict, other: dict) -> bool:
    """True when ``other``, on another track, overlaps ``line`` with nearly the same words."""
    text = _normalized(line["text"])
    return (
        other["speaker"] != line["speaker"]
        and len(text) >= DUPLICATE_MIN_CHARS
        and other["start"] < line["end"]
        and line["start"] < other["end"]
        and SequenceMatcher(None, text, _normalized(other["text"])).ratio() >= DUPLICATE_RATIO
    )


def _normalized(text: str) -> str:
    return " ".join(re.findall(r"\w+", text.lower()))


def _confidence(line: dict) -> float:
    """Mean word probability of a line; 0 without words."""
    words = line.get("words") or []
    return sum(word["probability"] for word in words) / len(words) if words else 0.0


def _labelled(segment: dict) -> str:
    """The segment's text, after ``[Role]`` in a dialog."""
    text = segment["text"].strip()
    return f"[{segment['speaker']}] {text}" if segment.get("speaker") else text


def to_text(segments: list[dict]) -> str:
    """``[mm:ss] text`` per line, ``[mm:ss] [Role] text`` in a dialog."""
    return "".join(f"[{timecode(s['start'])}] {_labelled(s)}\n" for s in segments)


def plain_text(segments: list[dict]) -> str:
    """The words alone: one paragraph, or one ``[Role] text`` line per turn in a dialog."""
    if any(segment.get("speaker") for segment in segments):
        return "\n".join(_labelled(s) for s in segments)
    return " ".join(s["text"].strip() for s in segments)


def _clock(seconds: float, marker: str) -> str:
    """``00:00:01,000`` (SRT) or ``00:00:01.000`` (WebVTT)."""
    return format_timestamp(seconds, always_include_hours=True, decimal_marker=marker)


def _cues(segments: list[dict], marker: str) -> list[str]:
    """``start --> end`` and the labelled text of each segment."""
    return [
        f"{_clock(s['start'], marker)} --> {_clock(s['end'], marker)}\n{_labelled(s).replace('-->', '->')}\n"
        for s in segments
    ]


def to_srt(segments: list[dict]) -> str:
    """SubRip subtitles, one numbered cue per segment."""
    return "\n".join(f"{i}\n{cue}" for i, cue in enumerate(_cues(segments, ","), start=1))


def to_vtt(segments: list[dict]) -> str:
    """WebVTT subtitles, one cue per segment."""
    return "\n".join(["WEBVTT\n", *_cues(segments, ".")])


def to_tsv(segments: list[dict]) -> str:
    """``start``, ``end`` (integer milliseconds) and ``text`` columns, as Whisper writes them."""
    rows = ["start\tend\ttext"] + [
        f"{round(s['start'] * 1000)}\t{round(s['end'] * 1000)}\t{_labelled(s).replace(chr(9), ' ')}"
        for s in segments
    ]
    return "\n".join(rows) + "\n"


def to_json(segments: list[dict], language: str | None = None, duration: float | None = None) -> str:
    """``{"text", "language", "duration", "segments"}``, UTF-8 as is."""
    return json.dumps(
        {"text": plain_text(segments), "language": language, "duration": duration, "segments": segments},
        ensure_ascii=False,
    )


FORMATS = {
    "txt": (to_text, "text/plain"),
    "json": (to_json, "application/json"),
    "srt": (to_srt, "application/x-subrip"),
    "vtt": (to_vtt, "text/vtt"),
    "tsv": (to_tsv, "text/tab-separated-values"),
}


def render(fmt: str, segments: list[dict], **meta) -> tuple[str, str]:
    """``(body, mimetype)`` of ``segments`` in ``fmt``; ``meta`` (language, duration) feeds json."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; formats: {', '.join(FORMATS)}")
    writer, mimetype = FORMATS[fmt]
    return (writer(segments, **meta) if fmt == "json" else writer(segments)), mimetype
