#!/usr/bin/env bash
# Regenerates the speech clips the tests transcribe (espeak-ng + ffmpeg, Debian packages).
# The texts are the ground truth the tests compare transcripts against.
set -euo pipefail
cd "$(dirname "$0")"

EN_TEXT="Good morning, everyone. The weather is nice today. We will meet at the station at seven o'clock tomorrow morning. Please send me the report before lunch."
RU_TEXT="Добрый день. Меня зовут Анна. Сегодня хорошая погода. Завтра будет дождь. Спасибо, до свидания."

speak() {  # voice, text, output (mono mp3, 16 kHz)
  espeak-ng -v "$1" -s 120 -w "$3.wav" "$2"
  ffmpeg -loglevel error -y -i "$3.wav" -ac 1 -ar 16000 -b:a 64k "$3"
  rm -f "$3.wav"
}

speak en "$EN_TEXT" en.mp3
speak ru "$RU_TEXT" ru.mp3
printf '%s\n' "$EN_TEXT" > en.txt
printf '%s\n' "$RU_TEXT" > ru.txt
