_river__relay() {
    local i cur prev opts cmd
    COMPREPLY=()
    if [[ "${BASH_VERSINFO[0]}" -ge 4 ]]; then
        cur="$2"
    else
        cur="${COMP_WORDS[COMP_CWORD]}"
    fi
    prev="$3"
    cmd=""
    opts=""

    for i in "${COMP_WORDS[@]:0:COMP_CWORD}"
    do
        case "${cmd},${i}" in
            ",$1")
                cmd="river__relay"
                ;;
            river__relay,broadcast)
                cmd="river__relay__subcmd__broadcast"
                ;;
            river__relay,help)
                cmd="river__relay__subcmd__help"
                ;;
            river__relay,serve)
                cmd="river__relay__subcmd__serve"
                ;;
            river__relay,watch)
                cmd="river__relay__subcmd__watch"
                ;;
            river__relay__subcmd__help,broadcast)
                cmd="river__relay__subcmd__help__subcmd__broadcast"
                ;;
            river__relay__subcmd__help,help)
                cmd="river__relay__subcmd__help__subcmd__help"
                ;;
            river__relay__subcmd__help,serve)
                cmd="river__relay__subcmd__help__subcmd__serve"
                ;;
            river__relay__subcmd__help,watch)
                cmd="river__relay__subcmd__help__subcmd__watch"
                ;;
            *)
                ;;
        esac
    done

    case "${cmd}" in
        river__relay)
            opts="-v -q -h -V --verbose --quiet --help --version serve broadcast watch help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 1 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        river__subcmd__relay__subcmd__broadcast)
            opts="-c -p -v -q -h --user --channel --channel-password --channel-password-file --password --password-file --bufsize --retry --retry-max-delay --retry-limit --verbose --quiet --help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --user)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --channel)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                -c)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --channel-password)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --channel-password-file)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --password)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                -p)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --password-file)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --bufsize)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --retry-max-delay)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --retry-limit)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        river__subcmd__relay__subcmd__help)
            opts="serve broadcast watch help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        river__subcmd__relay__subcmd__help__subcmd__broadcast)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        river__subcmd__relay__subcmd__help__subcmd__help)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        river__subcmd__relay__subcmd__help__subcmd__serve)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        river__subcmd__relay__subcmd__help__subcmd__watch)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        river__subcmd__relay__subcmd__serve)
            opts="-l -u -v -q -h --listen --users --http --rtmp --rtmp-merge --rtsp --rtsp-udp-port --no-rtsp-udp --rtsp-timeout --no-gop-cache --max-connections --queue-bytes --queue-time --max-behind --unclocked --cache-bytes --cache-time --max-waiting --wait-timeout --stats-interval --on-publish --on-play --on-unpublish --on-stop --hook-timeout --origin --origin-idle --push-to --hls --hls-variant --hls-segment-time --hls-part-time --hls-list-size --hls-idle-timeout --hls-token-ttl --verbose --quiet --help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --listen)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                -l)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --users)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                -u)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --http)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --rtmp)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --rtmp-merge)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --rtsp)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --rtsp-udp-port)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --rtsp-timeout)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --max-connections)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --queue-bytes)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --queue-time)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --max-behind)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --unclocked)
                    COMPREPLY=($(compgen -W "pace isolate" -- "${cur}"))
                    return 0
                    ;;
                --cache-bytes)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --cache-time)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --max-waiting)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --wait-timeout)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --stats-interval)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --on-publish)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --on-play)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --on-unpublish)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --on-stop)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --hook-timeout)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --origin)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --origin-idle)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --push-to)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --hls-variant)
                    COMPREPLY=($(compgen -W "low-latency fmp4 ts" -- "${cur}"))
                    return 0
                    ;;
                --hls-segment-time)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --hls-part-time)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --hls-list-size)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --hls-idle-timeout)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --hls-token-ttl)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        river__subcmd__relay__subcmd__watch)
            opts="-c -v -q -h --user --channel --channel-password --channel-password-file --retry --retry-max-delay --retry-limit --verbose --quiet --help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --user)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --channel)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                -c)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --channel-password)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --channel-password-file)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --retry-max-delay)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --retry-limit)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
    esac
}

if [[ "${BASH_VERSINFO[0]}" -eq 4 && "${BASH_VERSINFO[1]}" -ge 4 || "${BASH_VERSINFO[0]}" -gt 4 ]]; then
    complete -F _river__relay -o nosort -o bashdefault -o default river-relay
else
    complete -F _river__relay -o bashdefault -o default river-relay
fi
