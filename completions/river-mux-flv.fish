complete -c river-mux-flv -s f -l input-format -d 'Input format; detected from the first bytes when not given' -r -f -a "flv\t'FLV (H.264 or H.265 + AAC; Enhanced FLV too), as `ffmpeg -f flv -` writes it'
ts\t'MPEG-TS (H.264 or H.265 + AAC in ADTS), 188-byte packets'
h264\t'Raw H.264 Annex B byte stream (start codes), as `ffmpeg -f h264 -` writes it'
h265\t'Raw H.265/HEVC Annex B byte stream (start codes), as `ffmpeg -f hevc -` writes it'"
complete -c river-mux-flv -l fps -d 'Frame rate for H.264/H.265 Annex B input without VUI timing (default 25), e.g. 30 or 30000/1001' -r
complete -c river-mux-flv -l max-gap -d 'Forward timestamp jump (seconds) past which the timeline re-stamps instead of keeping the gap' -r
complete -c river-mux-flv -l stats-period -d 'How often --stats prints a line when stderr is not a terminal' -r
complete -c river-mux-flv -l metrics -d 'Serve Prometheus metrics at http://ADDR/metrics' -r
complete -c river-mux-flv -l drop-unsupported -d 'Drop audio and video tracks river does not carry (MPEG-2 video, AC-3, MP3, a second video track, ...) instead of failing with an error that names them; the other tracks go on'
complete -c river-mux-flv -l stats -d 'Show progress on stderr: frames, media time, bitrate, speed against real time, repairs and drops (a line redrawn in place on a terminal, else a line every --stats-period)'
complete -c river-mux-flv -s v -l verbose -d 'Log more to stderr (-v info, -vv debug, -vvv trace)'
complete -c river-mux-flv -s q -l quiet -d 'Log less to stderr (-q errors only, -qq nothing)'
complete -c river-mux-flv -s h -l help -d 'Print help (see more with \'--help\')'
complete -c river-mux-flv -s V -l version -d 'Print version'
