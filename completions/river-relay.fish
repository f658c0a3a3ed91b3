# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_river_relay_global_optspecs
    string join \n v/verbose q/quiet h/help V/version
end

function __fish_river_relay_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_river_relay_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_river_relay_using_subcommand
    set -l cmd (__fish_river_relay_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c river-relay -n "__fish_river_relay_needs_command" -s v -l verbose -d 'Log more to stderr (-v info, -vv debug, -vvv trace)'
complete -c river-relay -n "__fish_river_relay_needs_command" -s q -l quiet -d 'Log less to stderr (-q errors only, -qq nothing)'
complete -c river-relay -n "__fish_river_relay_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c river-relay -n "__fish_river_relay_needs_command" -s V -l version -d 'Print version'
complete -c river-relay -n "__fish_river_relay_needs_command" -f -a "serve" -d 'Run the hub (fstream on --listen, HTTP on --http)'
complete -c river-relay -n "__fish_river_relay_needs_command" -f -a "broadcast" -d 'Send stdin to a hub as a broadcast'
complete -c river-relay -n "__fish_river_relay_needs_command" -f -a "watch" -d 'Write a channel from a hub to stdout'
complete -c river-relay -n "__fish_river_relay_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c river-relay -n "__fish_river_relay_using_subcommand serve" -s l -l listen -d 'fstream address to listen on (port 0 = any; the bound address is printed on stderr)' -r
complete -c river-relay -n "__fish_river_relay_using_subcommand serve" -s u -l users -d 'Directory of users: <name>.ini with [DEFAULT] password=...' -r -F
complete -c river-relay -n "__fish_river_relay_using_subcommand serve" -l http -d 'Also serve HTTP on this address (GET .flv/.ts, player pages, POST/PUT push, /stats, /metrics)' -r
complete -c river-relay -n "__fish_river_relay_using_subcommand serve" -l rtmp -d 'Also serve RTMP on this address: publish and play rtmp://HOST:PORT/<user>/<channel> (?user-password= to publish, ?password= for the channel password). H.265 is Enhanced RTMP (hvc1): a player whose connect fourCcList lacks hvc1 gets NetStream.Play.Failed naming the codec; ffmpeg before 6.1 and VLC 3 cannot play H.265 over RTMP (use http-ts or RTSP)' -r
complete -c river-relay -n "__fish_river_relay_using_subcommand serve" -l rtmp-merge -d 'RTMP players get media at most this often: what arrives meanwhile (up to 64 KiB) waits and goes out in one write, so a player costs the hub far fewer writes (its CPU per player falls about in proportion), and a broadcast only RTMP players watch is read from its publisher on the same ticks; 0 writes each message as it comes, for the lowest latency' -r
complete -c river-relay -n "__fish_river_relay_using_subcommand serve" -l rtsp -d 'Also serve RTSP on this address: publish (ANNOUNCE/RECORD, user password) and play (DESCRIBE/PLAY, channel password) rtsp://HOST/<user>/<channel>, RTP over TCP (interleaved) or UDP' -r
complete -c river-relay -n "__fish_river_relay_using_subcommand serve" -l rtsp-udp-port -d 'UDP port for RTSP\'s RTP over UDP, on the --rtsp address (RTCP uses the next port); 0 picks a free even/odd pair' -r
complete -c river-relay -n "__fish_river_relay_using_subcommand serve" -l rtsp-timeout -d 'RTSP session timeout: a session without a request (e.g. GET_PARAMETER or OPTIONS keepalives) or RTCP from its client for this long is closed' -r
complete -c river-relay -n "__fish_river_relay_using_subcommand serve" -l max-connections -d 'Most open connections (every front together); more are closed at once, HTTP ones with a 503' -r
complete -c river-relay -n "__fish_river_relay_using_subcommand serve" -l queue-bytes -d 'Per-watcher queue bound in bytes (e.g. 8MiB)' -r
complete -c river-relay -n "__fish_river_relay_using_subcommand serve" -l queue-time -d 'Per-watcher queue bound in time (age of the oldest queued chunk)' -r
complete -c river-relay -n "__fish_river_relay_using_subcommand serve" -l max-behind -d 'Disconnect a watcher that has been behind (skipping) for this long; paced broadcasts: one that held the broadcaster back without writing for this long' -r
complete -c river-relay -n "__fish_river_relay_using_subcommand serve" -l unclocked -d 'Delivery of content without a clock (unknown bytes, raw H.264): `pace` holds the broadcaster to its watchers so nothing is lost, as fstream does; `isolate` never holds it back (a watcher that cannot keep up skips to the next keyframe, or is disconnected)' -r -f -a "pace\t'Paced to the watchers: nothing is lost, a straggler is dropped'
isolate\t'Never held back: the real-time policy'"
complete -c river-relay -n "__fish_river_relay_using_subcommand serve" -l cache-bytes -d 'GOP cache bound in bytes per channel' -r
complete -c river-relay -n "__fish_river_relay_using_subcommand serve" -l cache-time -d 'GOP cache bound in time per channel' -r
complete -c river-relay -n "__fish_river_relay_using_subcommand serve" -l max-waiting -d 'Most watchers waiting for channels that are not live' -r
complete -c river-relay -n "__fish_river_relay_using_subcommand serve" -l wait-timeout -d 'How long a watcher waits for a channel to go live' -r
complete -c river-relay -n "__fish_river_relay_using_subcommand serve" -l stats-interval -d 'Log per-channel stats (info level, -v) this often' -r
complete -c river-relay -n "__fish_river_relay_using_subcommand serve" -l on-publish -d 'Ask this http:// URL before a broadcast starts (a JSON POST, see HOOKS above): a 2xx answer allows; anything else, or no answer, refuses' -r
complete -c river-relay -n "__fish_river_relay_using_subcommand serve" -l on-play -d 'Ask this http:// URL before a watcher or player joins a channel (as --on-publish)' -r
complete -c river-relay -n "__fish_river_relay_using_subcommand serve" -l on-unpublish -d 'Tell this http:// URL when a broadcast ends (the answer changes nothing)' -r
complete -c river-relay -n "__fish_river_relay_using_subcommand serve" -l on-stop -d 'Tell this http:// URL when a watcher or player leaves (the answer changes nothing)' -r
complete -c river-relay -n "__fish_river_relay_using_subcommand serve" -l hook-timeout -d 'How long a hook has to answer; no answer in time refuses (--on-publish, --on-play)' -r
complete -c river-relay -n "__fish_river_relay_using_subcommand serve" -l origin -d 'Be an edge of the origin hub at this fstream address: a channel a watcher (any front) asks for that is not live here is pulled from the origin once, with that watcher\'s channel password, and serves every watcher here (see "Cascading" below)' -r
complete -c river-relay -n "__fish_river_relay_using_subcommand serve" -l origin-idle -d 'An edge stops pulling a channel this long after its last watcher here left' -r
complete -c river-relay -n "__fish_river_relay_using_subcommand serve" -l push-to -d 'Push every broadcast that starts here to the hub at this fstream address, as its user (password from --users) with its channel password; redialled while the broadcast lasts' -r
complete -c river-relay -n "__fish_river_relay_using_subcommand serve" -l hls-variant -d 'What index.m3u8 serves: LL-HLS, or classic HLS in fMP4 or MPEG-TS; each is also at ll.m3u8, fmp4.m3u8 and ts.m3u8' -r -f -a "low-latency\t'LL-HLS: fMP4 segments with parts (ll.m3u8)'
fmp4\t'Classic HLS, fMP4 segments (fmp4.m3u8)'
ts\t'Classic HLS, MPEG-TS segments (ts.m3u8)'"
complete -c river-relay -n "__fish_river_relay_using_subcommand serve" -l hls-segment-time -d 'HLS segment duration in seconds (segments end at the first keyframe after it; a longer first GOP sets the target, up to 10 s)' -r
complete -c river-relay -n "__fish_river_relay_using_subcommand serve" -l hls-part-time -d 'LL-HLS part duration in seconds, rounded to whole frames (0.2: PART-HOLD-BACK 0.6 s)' -r
complete -c river-relay -n "__fish_river_relay_using_subcommand serve" -l hls-list-size -d 'Segments in an HLS playlist' -r
complete -c river-relay -n "__fish_river_relay_using_subcommand serve" -l hls-idle-timeout -d 'Stop segmenting a channel\'s variant this long after its last HLS request' -r
complete -c river-relay -n "__fish_river_relay_using_subcommand serve" -l hls-token-ttl -d 'How long the token in a password-protected channel\'s playlist URIs stays good' -r
complete -c river-relay -n "__fish_river_relay_using_subcommand serve" -l no-rtsp-udp -d 'Offer RTSP clients TCP interleaved transport only (UDP SETUPs get 461)'
complete -c river-relay -n "__fish_river_relay_using_subcommand serve" -l no-gop-cache -d 'Do not cache the GOP: a joining watcher waits for the next keyframe'
complete -c river-relay -n "__fish_river_relay_using_subcommand serve" -l hls -d 'Serve every H.264/H.265 channel as HLS on the --http address, at /<user>/<channel>/index.m3u8 (see HLS above). HLS requests do not ask --on-play'
complete -c river-relay -n "__fish_river_relay_using_subcommand serve" -s v -l verbose -d 'Log more to stderr (-v info, -vv debug, -vvv trace)'
complete -c river-relay -n "__fish_river_relay_using_subcommand serve" -s q -l quiet -d 'Log less to stderr (-q errors only, -qq nothing)'
complete -c river-relay -n "__fish_river_relay_using_subcommand serve" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c river-relay -n "__fish_river_relay_using_subcommand broadcast" -l user -d 'User name (the broadcaster\'s own, or the one to watch)' -r
complete -c river-relay -n "__fish_river_relay_using_subcommand broadcast" -s c -l channel -d 'Channel name' -r
complete -c river-relay -n "__fish_river_relay_using_subcommand broadcast" -l channel-password -d 'Channel password (none by default)' -r
complete -c river-relay -n "__fish_river_relay_using_subcommand broadcast" -l channel-password-file -d 'Read the channel password from the first line of this file' -r -F
complete -c river-relay -n "__fish_river_relay_using_subcommand broadcast" -s p -l password -d 'User password' -r
complete -c river-relay -n "__fish_river_relay_using_subcommand broadcast" -l password-file -d 'Read the user password from the first line of this file' -r -F
complete -c river-relay -n "__fish_river_relay_using_subcommand broadcast" -l bufsize -d 'Send stdin in blocks of this many bytes (default: whatever each read gives, lowest delay)' -r
complete -c river-relay -n "__fish_river_relay_using_subcommand broadcast" -l retry-max-delay -d 'Longest wait between reconnect attempts' -r
complete -c river-relay -n "__fish_river_relay_using_subcommand broadcast" -l retry-limit -d 'Give up after this many consecutive failed attempts (0 = never)' -r
complete -c river-relay -n "__fish_river_relay_using_subcommand broadcast" -l retry -d 'Reconnect after a failure or the end of the connection, with bounded exponential backoff'
complete -c river-relay -n "__fish_river_relay_using_subcommand broadcast" -s v -l verbose -d 'Log more to stderr (-v info, -vv debug, -vvv trace)'
complete -c river-relay -n "__fish_river_relay_using_subcommand broadcast" -s q -l quiet -d 'Log less to stderr (-q errors only, -qq nothing)'
complete -c river-relay -n "__fish_river_relay_using_subcommand broadcast" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c river-relay -n "__fish_river_relay_using_subcommand watch" -l user -d 'User name (the broadcaster\'s own, or the one to watch)' -r
complete -c river-relay -n "__fish_river_relay_using_subcommand watch" -s c -l channel -d 'Channel name' -r
complete -c river-relay -n "__fish_river_relay_using_subcommand watch" -l channel-password -d 'Channel password (none by default)' -r
complete -c river-relay -n "__fish_river_relay_using_subcommand watch" -l channel-password-file -d 'Read the channel password from the first line of this file' -r -F
complete -c river-relay -n "__fish_river_relay_using_subcommand watch" -l retry-max-delay -d 'Longest wait between reconnect attempts' -r
complete -c river-relay -n "__fish_river_relay_using_subcommand watch" -l retry-limit -d 'Give up after this many consecutive failed attempts (0 = never)' -r
complete -c river-relay -n "__fish_river_relay_using_subcommand watch" -l retry -d 'Reconnect after a failure or the end of the connection, with bounded exponential backoff'
complete -c river-relay -n "__fish_river_relay_using_subcommand watch" -s v -l verbose -d 'Log more to stderr (-v info, -vv debug, -vvv trace)'
complete -c river-relay -n "__fish_river_relay_using_subcommand watch" -s q -l quiet -d 'Log less to stderr (-q errors only, -qq nothing)'
complete -c river-relay -n "__fish_river_relay_using_subcommand watch" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c river-relay -n "__fish_river_relay_using_subcommand help; and not __fish_seen_subcommand_from serve broadcast watch help" -f -a "serve" -d 'Run the hub (fstream on --listen, HTTP on --http)'
complete -c river-relay -n "__fish_river_relay_using_subcommand help; and not __fish_seen_subcommand_from serve broadcast watch help" -f -a "broadcast" -d 'Send stdin to a hub as a broadcast'
complete -c river-relay -n "__fish_river_relay_using_subcommand help; and not __fish_seen_subcommand_from serve broadcast watch help" -f -a "watch" -d 'Write a channel from a hub to stdout'
complete -c river-relay -n "__fish_river_relay_using_subcommand help; and not __fish_seen_subcommand_from serve broadcast watch help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
