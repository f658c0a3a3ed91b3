complete -c river-hls-seg -l dir -d 'Directory for the playlist and segments (created if missing)' -r -F
complete -c river-hls-seg -l name -d 'Stream name: the playlist is DIR/NAME.m3u8, live segments DIR/NAME-N.ts' -r
complete -c river-hls-seg -l segment-time -d 'Target segment duration in seconds; segments are cut at the first keyframe after it' -r
complete -c river-hls-seg -l segment-type -d 'Segment container: MPEG-TS, or fMP4 (init segment + .m4s fragments). Default ts, or fmp4 with --low-latency' -r -f -a "ts\t'MPEG-TS segments (.ts)'
fmp4\t'Fragmented MP4: an init segment (.mp4) and media segments (.m4s)'"
complete -c river-hls-seg -l part-time -d 'LL-HLS part duration in seconds, rounded to whole frames. The default, 0.2, is five frames at 25 fps and six at 30, and puts hls.js about a second behind live (PART-HOLD-BACK 0.6 s)' -r
complete -c river-hls-seg -l list-size -d 'Segments in the live playlist window' -r
complete -c river-hls-seg -l keep -d 'DVR retention by age: segments leave the playlist once they ended more than this before the newest (e.g. 7d, 12h), and are deleted' -r
complete -c river-hls-seg -l max-size -d 'DVR retention by size: the oldest segments leave the playlist and are deleted so that the files on disk stay within this (e.g. 500GiB, 800MiB; the segment being written comes on top)' -r
complete -c river-hls-seg -l segment-name -d 'DVR segment file names, a strftime pattern relative to DIR (%Y %m %d %H %M %S %j %s %F %T), ending in .ts (MPEG-TS) or .m4s (fMP4). Default %Y%m%d-%H%M%S.ts (.m4s with fMP4)' -r
complete -c river-hls-seg -l align -d 'Cut at the first keyframe after each wall-clock boundary of this period (e.g. 15m), instead of by --segment-time' -r
complete -c river-hls-seg -l serve -d 'Serve DIR over HTTP on this address: DIR at /live/ (so NAME.m3u8 is http://ADDR/live/NAME.m3u8) and a player page at /. The bound address is printed on stderr. When the input ends the files stay served until SIGINT or SIGTERM' -r
complete -c river-hls-seg -l duration -d 'Stop by itself after this much media (e.g. 1h), finishing the playlist' -r
complete -c river-hls-seg -l on-segment -d 'Run this shell command after each segment is complete; it gets RIVER_SEGMENT (path), RIVER_SEGMENT_URI, RIVER_SEGMENT_DURATION and RIVER_PLAYLIST in its environment' -r
complete -c river-hls-seg -s f -l input-format -d 'Input format; detected from the first bytes when not given' -r -f -a "flv\t'FLV (H.264 or H.265 + AAC; Enhanced FLV too), as `ffmpeg -f flv -` writes it'
ts\t'MPEG-TS (H.264 or H.265 + AAC in ADTS), 188-byte packets'
h264\t'Raw H.264 Annex B byte stream (start codes), as `ffmpeg -f h264 -` writes it'
h265\t'Raw H.265/HEVC Annex B byte stream (start codes), as `ffmpeg -f hevc -` writes it'"
complete -c river-hls-seg -l fps -d 'Frame rate for H.264/H.265 Annex B input without VUI timing (default 25), e.g. 30 or 30000/1001' -r
complete -c river-hls-seg -l max-gap -d 'Forward timestamp jump (seconds) past which the timeline re-stamps instead of keeping the gap' -r
complete -c river-hls-seg -l stats-period -d 'How often --stats prints a line when stderr is not a terminal' -r
complete -c river-hls-seg -l metrics -d 'Serve Prometheus metrics at http://ADDR/metrics' -r
complete -c river-hls-seg -l low-latency -d 'Low-latency HLS: parts, preload hints, blocking playlist reload and delta updates (fMP4)'
complete -c river-hls-seg -l dvr -d 'Keep every segment (EVENT playlist, VOD at the end) instead of a live window'
complete -c river-hls-seg -l utc -d 'Format segment names and --align boundaries in UTC instead of local time'
complete -c river-hls-seg -l drop-unsupported -d 'Drop audio and video tracks river does not carry (MPEG-2 video, AC-3, MP3, a second video track, ...) instead of failing with an error that names them; the other tracks go on'
complete -c river-hls-seg -l stats -d 'Show progress on stderr: frames, media time, bitrate, speed against real time, repairs and drops (a line redrawn in place on a terminal, else a line every --stats-period)'
complete -c river-hls-seg -s v -l verbose -d 'Log more to stderr (-v info, -vv debug, -vvv trace)'
complete -c river-hls-seg -s q -l quiet -d 'Log less to stderr (-q errors only, -qq nothing)'
complete -c river-hls-seg -s h -l help -d 'Print help (see more with \'--help\')'
complete -c river-hls-seg -s V -l version -d 'Print version'
