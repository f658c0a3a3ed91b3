complete -c river-testsrc -s f -l format -d 'Output format' -r -f -a "ts\t'MPEG-TS with H.264 and AAC'
flv\t'FLV with H.264 and AAC'
h264\t'Raw H.264 Annex B byte stream (video only)'"
complete -c river-testsrc -s t -l duration -d 'Stop after this much media time, e.g. 500ms, 10s, 1m, 1h (default: run until stopped)' -r
complete -c river-testsrc -l realtime -d 'Pace the output to the wall clock (like ffmpeg -re) instead of writing as fast as possible'
complete -c river-testsrc -s v -l verbose -d 'Log more to stderr (-v info, -vv debug, -vvv trace)'
complete -c river-testsrc -s q -l quiet -d 'Log less to stderr (-q errors only, -qq nothing)'
complete -c river-testsrc -s h -l help -d 'Print help (see more with \'--help\')'
complete -c river-testsrc -s V -l version -d 'Print version'
