complete -c river-rtsp-pull -l transport -d 'RTP transport' -r -f -a "tcp\t'Interleaved in the RTSP TCP connection (works through NAT and firewalls)'
udp\t'RTP/RTCP over UDP (lower latency; packets may be lost)'"
complete -c river-rtsp-pull -s u -l user -d 'User name for Basic/Digest authentication (overrides the URL\'s)' -r
complete -c river-rtsp-pull -l password-file -d 'Read the password from the first line of FILE (else RIVER_RTSP_PASSWORD, else the URL\'s)' -r -F
complete -c river-rtsp-pull -s f -l format -d 'Output format' -r -f -a "ts\t'MPEG-TS with H.264 or H.265 and AAC'
flv\t'FLV with H.264 or H.265 (Enhanced FLV) and AAC'
h264\t'Raw H.264 Annex B byte stream (video only)'"
complete -c river-rtsp-pull -s t -l duration -d 'Stop after this much media, e.g. 10s, 15m, 1h (default: run until stopped)' -r
complete -c river-rtsp-pull -l stall-timeout -d 'A session that delivers no media for this long has stalled; also the limit for each RTSP request' -r
complete -c river-rtsp-pull -l stats-period -d 'How often --stats prints a line when stderr is not a terminal' -r
complete -c river-rtsp-pull -l metrics -d 'Serve Prometheus metrics at http://ADDR/metrics' -r
complete -c river-rtsp-pull -l retry -d 'Reconnect with exponential backoff after a network error, camera restart or stall'
complete -c river-rtsp-pull -l stats -d 'Show progress on stderr: frames, media time, bitrate, speed against real time, repairs and drops (a line redrawn in place on a terminal, else a line every --stats-period)'
complete -c river-rtsp-pull -s v -l verbose -d 'Log more to stderr (-v info, -vv debug, -vvv trace)'
complete -c river-rtsp-pull -s q -l quiet -d 'Log less to stderr (-q errors only, -qq nothing)'
complete -c river-rtsp-pull -s h -l help -d 'Print help (see more with \'--help\')'
complete -c river-rtsp-pull -s V -l version -d 'Print version'
