complete -c river-thumb -s o -l out -d 'Write the picture to FILE (atomically: temporary file + rename) instead of stdout' -r -F
complete -c river-thumb -l every -d 'Rewrite --out with the newest keyframe at most once every DUR (e.g. 10s), until the input ends' -r
complete -c river-thumb -l serve -d 'Serve GET /thumb.jpg and /thumb.png over HTTP on ADDR (e.g. 127.0.0.1:8090; port 0 = any)' -r
complete -c river-thumb -l width -d 'Scale to this width (the height follows the aspect ratio unless --height is given too)' -r
complete -c river-thumb -l height -d 'Scale to this height (with --width: fit inside W×H, keeping the aspect ratio)' -r
complete -c river-thumb -l quality -d 'JPEG quality, 1 (smallest) to 100 (best)' -r
complete -c river-thumb -l format -d 'Image format; default: from the --out extension (.png), else jpeg' -r -f -a "jpeg\t'Baseline JPEG, 4:2:0'
png\t'PNG, 8-bit RGB'"
complete -c river-thumb -l timeout -d 'Fail (exit 1) when no keyframe has arrived within DUR (one-shot: no picture made within DUR)' -r
complete -c river-thumb -s f -l input-format -d 'Input format; detected from the first bytes when not given' -r -f -a "flv\t'FLV (H.264 or H.265 + AAC; Enhanced FLV too), as `ffmpeg -f flv -` writes it'
ts\t'MPEG-TS (H.264 or H.265 + AAC in ADTS), 188-byte packets'
h264\t'Raw H.264 Annex B byte stream (start codes), as `ffmpeg -f h264 -` writes it'
h265\t'Raw H.265/HEVC Annex B byte stream (start codes), as `ffmpeg -f hevc -` writes it'"
complete -c river-thumb -l stats-period -d 'How often --stats prints a line when stderr is not a terminal' -r
complete -c river-thumb -l metrics -d 'Serve Prometheus metrics at http://ADDR/metrics' -r
complete -c river-thumb -l tee -d 'Copy stdin to stdout unchanged (pictures then go to --out or --serve)'
complete -c river-thumb -l stats -d 'Show progress on stderr: frames, media time, bitrate, speed against real time, repairs and drops (a line redrawn in place on a terminal, else a line every --stats-period)'
complete -c river-thumb -s v -l verbose -d 'Log more to stderr (-v info, -vv debug, -vvv trace)'
complete -c river-thumb -s q -l quiet -d 'Log less to stderr (-q errors only, -qq nothing)'
complete -c river-thumb -s h -l help -d 'Print help (see more with \'--help\')'
complete -c river-thumb -s V -l version -d 'Print version'
