#!/usr/bin/env bash
# Regenerates call_stereo.mp3, a synthetic two-party phone call (espeak-ng + sox + ffmpeg):
# the client on the left channel, the employee on the right, each voice also leaking faintly
# (-25 dB) into the other channel as on real call recordings. call.json is the ground truth:
# each line's role, text, and start and end in seconds.
set -euo pipefail
cd "$(dirname "$0")"

LINES=(  # role|start|text
  "Клиент|0.5|Добрый день."
  "Сотрудник|2.5|Добрый день. Меня зовут Анна. Чем могу помочь?"
  "Клиент|8.5|Сегодня хорошая погода. Я хочу купить билет."
  "Сотрудник|14.0|Хорошо. Сколько стоит билет?"
  "Клиент|18.0|Спасибо большое."
  "Сотрудник|20.5|Спасибо, до свидания."
)
CROSSTALK=0.056  # -25 dB

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
left=() right=() truth=()
for i in "${!LINES[@]}"; do
  IFS='|' read -r role start text <<< "${LINES[$i]}"
  if [ "$role" = Клиент ]; then pitch=60; else pitch=45; fi
  espeak-ng -v ru -s 110 -p "$pitch" -w "$tmp/say$i.wav" "$text"
  sox "$tmp/say$i.wav" -r 16000 "$tmp/line$i.wav" pad "$start"
  end=$(soxi -D "$tmp/line$i.wav")
  if [ "$role" = Клиент ]; then left+=(-v 1 "$tmp/line$i.wav"); else right+=(-v 1 "$tmp/line$i.wav"); fi
  truth+=("$(printf '  {"role": "%s", "text": "%s", "start": %s, "end": %.2f}' "$role" "$text" "$start" "$end")")
done
sox -m "${left[@]}" "$tmp/left.wav"
sox -m "${right[@]}" "$tmp/right.wav"
sox -m -v 1 "$tmp/left.wav" -v "$CROSSTALK" "$tmp/right.wav" "$tmp/left_heard.wav"
sox -m -v 1 "$tmp/right.wav" -v "$CROSSTALK" "$tmp/left.wav" "$tmp/right_heard.wav"
sox -M "$tmp/left_heard.wav" "$tmp/right_heard.wav" "$tmp/call.wav"
ffmpeg -loglevel error -y -i "$tmp/call.wav" -b:a 32k call_stereo.mp3
{
  echo "["
  (IFS=$'\n'; echo "${truth[*]}") | sed '$!s/$/,/'
  echo "]"
} > call.json
