complete -c river-rtmp-in -l listen -d 'Address to listen on (port 0: any free port; the bound address is printed on stderr)' -r
complete -c river-rtmp-in -l app -d 'Accept only this application (rtmp://HOST/APP/KEY); default: any' -r
complete -c river-rtmp-in -l key -d 'Accept only this stream key (or set RIVER_RTMP_KEY, which keeps it out of `ps`)' -r
complete -c river-rtmp-in -l keys -d 'Accept the stream keys listed in FILE, one per line (blank lines and #comments ignored)' -r -F
complete -c river-rtmp-in -l exec -d 'Run CMD (sh -c) once per accepted publish with its FLV on stdin and RIVER_APP, RIVER_KEY, RIVER_REMOTE_ADDR set; stdout is then unused' -r
complete -c river-rtmp-in -l max-connections -d 'Most open connections; one over the cap is closed at once (and logged with its address)' -r
complete -c river-rtmp-in -l stats-period -d 'How often --stats prints a line when stderr is not a terminal' -r
complete -c river-rtmp-in -l metrics -d 'Serve Prometheus metrics at http://ADDR/metrics' -r
complete -c river-rtmp-in -l persist -d 'Keep listening and keep stdout one continuous FLV across publisher reconnects'
complete -c river-rtmp-in -l stats -d 'Show progress on stderr: frames, media time, bitrate, speed against real time, repairs and drops (a line redrawn in place on a terminal, else a line every --stats-period)'
complete -c river-rtmp-in -s v -l verbose -d 'Log more to stderr (-v info, -vv debug, -vvv trace)'
complete -c river-rtmp-in -s q -l quiet -d 'Log less to stderr (-q errors only, -qq nothing)'
complete -c river-rtmp-in -s h -l help -d 'Print help (see more with \'--help\')'
complete -c river-rtmp-in -s V -l version -d 'Print version'
