# bash completion for mvirt(1).
#
# Commands, verbs and options are read from mvirt's own --help (the command table the CLI
# parses with), so they never drift from the CLI; each help text is asked for once per shell.
# What a positional argument is comes from the command's usage line (NAME|ID of a VM command
# is a VM, NAME of a volume verb a volume, FILE a file, ...). VM, volume and network names are
# asked of the daemon: `mvirt list -q`, `mvirt volume ls -q`, `mvirt network ls -q`, with the
# -s/--server of the command line being completed. Works with or without the bash-completion
# package (it uses none of its helpers).

declare -gA _mvirt_help_cache

# The --help text of the command path "$@" (none: mvirt's own), via mvirt binary $_mvirt_bin.
_mvirt_help()
{
    local key="$_mvirt_bin|$*"
    if [[ -z ${_mvirt_help_cache[$key]+set} ]]; then
        _mvirt_help_cache[$key]=$("$_mvirt_bin" "$@" --help 2>/dev/null)
    fi
    printf '%s\n' "${_mvirt_help_cache[$key]}"
}

# The children of a group (help text on stdin): "name alias" lines (alias may be empty).
_mvirt_children()
{
    local line in=0
    while IFS= read -r line; do
        # the list of children is headed by their noun: "Commands:", "Verbs:"
        if [[ $line =~ ^[A-Z][^:]*:$ ]]; then
            [[ $line =~ ^[A-Z][a-z]*s:$ && $line != Options: ]] && in=1 || in=0
            continue
        fi
        [[ -z $line ]] && in=0
        if ((in)) && [[ $line =~ ^\ \ ([a-z][a-z0-9-]*)(\ \(([a-z0-9-]+)\))? ]]; then
            printf '%s %s\n' "${BASH_REMATCH[1]}" "${BASH_REMATCH[3]}"
        fi
    done
}

# The options in a help text on stdin: "--long -s METAVAR" lines ("-" for no short name or no
# value).
_mvirt_options()
{
    local line short in=0 re='^ +(-([a-zA-Z0-9]), )?--([a-z0-9-]+)( ([^ ]+))?(  |$)'
    while IFS= read -r line; do
        if [[ $line =~ ^[A-Z][^:]*:$ ]]; then
            [[ $line == Options: || $line == Global\ options* ]] && in=1 || in=0
            continue
        fi
        if ((in)) && [[ $line =~ $re ]]; then
            short=-${BASH_REMATCH[2]}
            printf -- '--%s %s %s\n' "${BASH_REMATCH[3]}" "$short" "${BASH_REMATCH[5]:--}"
        fi
    done
}

# The positional arguments of the usage line on stdin ("Usage: mvirt volume clone SRC NAME"),
# one per line, after the first $1 + 1 words (the command path): "NAME|ID", "FILE", "MAC...".
_mvirt_usage_args()
{
    local line words w depth=0 skip_value=0
    IFS= read -r line || return
    line=${line#Usage: }
    read -r -a words <<<"$line"
    for w in "${words[@]:$1+1}"; do
        # option groups: [-t SECONDS] [--force] (--kernel PATH | --firmware PATH)
        if ((depth > 0)); then
            [[ $w == *']' || $w == *')' ]] && depth=0
            continue
        fi
        if [[ $w == '['-* || $w == '('-* ]]; then
            [[ $w == *']' || $w == *')' ]] || depth=1
            continue
        fi
        if [[ $w == -* ]]; then
            skip_value=1
            continue
        fi
        if ((skip_value)); then
            skip_value=0
            [[ $w == [A-Z]* ]] && continue
        fi
        [[ $w == '|' ]] && break # alternatives: the first form is enough
        [[ $w == \[OPTIONS\] || $w == \[ARGS\] ]] && continue
        w=${w//[\[\]]/}
        w=${w%%,*}
        [[ $w == *=* ]] && w=${w%%=*}
        printf '%s\n' "$w"
    done
}

# Names from the daemon: vms, volumes or networks; MACs of VM $2.
_mvirt_names()
{
    local -a cmd
    case $1 in
        vms) cmd=(list -q) ;;
        volumes) cmd=(volume ls -q) ;;
        networks) cmd=(network ls -q) ;;
        macs)
            "$_mvirt_bin" "${_mvirt_server[@]}" -o json show "$2" 2>/dev/null |
                command sed -n 's/.*"mac": *"\([0-9A-Fa-f:]*\)".*/\1/p'
            return
            ;;
    esac
    "$_mvirt_bin" "${_mvirt_server[@]}" "${cmd[@]}" 2>/dev/null
}

# Adds the words of $1 (one per line or space-separated) that start with $cur to COMPREPLY.
_mvirt_add()
{
    local -a found
    mapfile -t found < <(IFS=$'\n ' compgen -W "$1" -- "$cur")
    COMPREPLY+=("${found[@]}")
}

# Adds the files whose path starts with $2 (default: $cur), each prefixed with $1.
_mvirt_files()
{
    local -a found
    compopt -o filenames 2>/dev/null
    mapfile -t found < <(compgen -f -- "${2-$cur}")
    COMPREPLY+=("${found[@]/#/$1}")
}

# Completes the value of option $1 (metavar $2) of the command path in $path.
_mvirt_option_value()
{
    case $1 in
        --server)
            if [[ $cur == unix:* ]]; then
                _mvirt_files unix: "${cur#unix:}"
            elif [[ $cur == /* || $cur == .* ]]; then
                _mvirt_files
            else
                local socks="127.0.0.1:50051" s
                for s in /run/mvirt/mvirt.sock ${XDG_RUNTIME_DIR:+$XDG_RUNTIME_DIR/mvirt/mvirt.sock}; do
                    [[ -S $s ]] && socks+=" unix:$s"
                done
                _mvirt_add "$socks"
            fi
            ;;
        --output) _mvirt_add "table json" ;;
        --format) _mvirt_add "raw qcow2" ;;
        --mode) _mvirt_add "nat isolated bridge" ;;
        --volume | --volume-ro) _mvirt_add "$(_mvirt_names volumes)" ;;
        --network) _mvirt_add "$(_mvirt_names networks)" ;;
        --nic)
            if [[ $cur == network=* ]]; then
                local n
                for n in $(_mvirt_names networks); do
                    [[ network=$n == "$cur"* ]] && COMPREPLY+=("network=$n")
                done
            else
                _mvirt_add "network= tap="
                compopt -o nospace 2>/dev/null
            fi
            ;;
        --disk-spec)
            if [[ $cur == path=* ]]; then
                _mvirt_files path= "${cur#path=}"
            else
                _mvirt_add "path="
                compopt -o nospace 2>/dev/null
            fi
            ;;
        --bridge) _mvirt_add "$(command ls /sys/class/net 2>/dev/null)" ;;
        *)
            case $2 in
                PATH | FILE | DIR) _mvirt_files ;;
                *[a-z]\|[a-z]*) [[ $2 =~ ^[a-z0-9|]+$ ]] && _mvirt_add "${2//|/ }" ;; # on|off
            esac
            ;;
    esac
}

# Completes positional argument number $1 (0-based) of the command path in $path, whose
# earlier positionals are in $positional.
_mvirt_positional()
{
    local n=$1 group="" verb=${path[${#path[@]} - 1]} arg kind
    local -a args
    ((${#path[@]} > 1)) && group=${path[0]}
    mapfile -t args < <(_mvirt_help "${path[@]}" | _mvirt_usage_args ${#path[@]})
    ((${#args[@]} == 0)) && return
    if ((n < ${#args[@]})); then
        arg=${args[n]}
    elif [[ ${args[${#args[@]} - 1]} == *... ]]; then
        arg=${args[${#args[@]} - 1]}
    else
        return
    fi
    arg=${arg%...}
    case $arg in
        NAME\|ID | NAME | SRC)
            # NAME of a command that makes something is a new name: nothing to complete
            [[ $arg == NAME && ($verb == create || $verb == import || $verb == clone) ]] &&
                return
            case $group in
                "" | nic) kind=vms ;;
                volume) kind=volumes ;;
                network) kind=networks ;;
            esac
            ;;
        VM) kind=vms ;;
        NET) kind=networks ;;
        MAC) kind=macs ;;
        FILE | PATH) _mvirt_files; return ;;
        COMMAND)
            _mvirt_add "$(_mvirt_help | _mvirt_children | cut -d' ' -f1)"
            return
            ;;
        VERB)
            _mvirt_add "$(_mvirt_help "${positional[0]}" | _mvirt_children | cut -d' ' -f1)"
            return
            ;;
    esac
    [[ -n $kind ]] && _mvirt_add "$(_mvirt_names "$kind" "${positional[0]}")"
}

# COMP_WORDS with the words bash split at ':' and '=' (COMP_WORDBREAKS) joined again, so that
# unix:/path, MAC addresses and --opt=value are one word each; sets words and cword.
_mvirt_join_words()
{
    local i w join=0
    words=()
    cword=0
    for ((i = 0; i < ${#COMP_WORDS[@]}; i++)); do
        w=${COMP_WORDS[i]}
        if ((${#words[@]} > 1)) && [[ $w == [:=] || $join == 1 ]]; then
            words[${#words[@]} - 1]+=$w
            [[ $w == [:=] ]] && join=1 || join=0
        else
            words+=("$w")
            join=0
        fi
        ((i == COMP_CWORD)) && cword=$((${#words[@]} - 1))
    done
    ((COMP_CWORD >= ${#COMP_WORDS[@]})) && { words+=(""); cword=$((${#words[@]} - 1)); }
}

_mvirt()
{
    local -a words path=() positional=() _mvirt_server=() opts children
    local cword cur _mvirt_bin i w o pending="" pending_meta=""
    COMPREPLY=()
    _mvirt_join_words
    cur=${words[cword]}
    _mvirt_bin=${words[0]}
    # shellcheck disable=SC2088 # the word as typed: a tilde bash did not expand
    [[ $_mvirt_bin == "~/"* ]] && _mvirt_bin=$HOME/${_mvirt_bin#"~/"}
    type -P "$_mvirt_bin" >/dev/null 2>&1 || [[ -x $_mvirt_bin ]] || return 0

    # Walk the words before the cursor: options (and their values), the command path down the
    # groups, then the leaf's positional arguments.
    local is_group=1
    for ((i = 1; i < cword; i++)); do
        w=${words[i]}
        if [[ -n $pending ]]; then
            [[ $pending == --server ]] && _mvirt_server=(-s "$w")
            pending=""
            continue
        fi
        if [[ $w == -- ]]; then
            continue
        fi
        if [[ $w == -?* ]]; then
            local name=$w value="" has_value=0 takes=0
            if [[ $w == --*=* ]]; then
                name=${w%%=*} value=${w#*=} has_value=1
            fi
            mapfile -t opts < <(_mvirt_help "${path[@]}" | _mvirt_options)
            for o in "${opts[@]}"; do
                read -r -a o <<<"$o"
                if [[ $name == "${o[0]}" || ($name != --* && ${name:0:2} == "${o[1]}") ]]; then
                    [[ ${o[2]} != - ]] && takes=1
                    name=${o[0]}
                    # -sVALUE
                    if [[ $w != --* && ${#w} -gt 2 && $takes == 1 ]]; then
                        value=${w:2} has_value=1
                    fi
                    break
                fi
            done
            if ((takes && !has_value)); then
                pending=$name
            elif [[ $name == --server ]] && ((has_value)); then
                _mvirt_server=(-s "$value")
            fi
            continue
        fi
        if ((is_group)); then
            local child=""
            mapfile -t children < <(_mvirt_help "${path[@]}" | _mvirt_children)
            for o in "${children[@]}"; do
                read -r -a o <<<"$o"
                if [[ $w == "${o[0]}" || $w == "${o[1]}" ]]; then
                    child=${o[0]}
                    break
                fi
            done
            [[ -z $child ]] && return 0 # an unknown command: nothing to offer
            path+=("$child")
            # a child is a group when its help lists children of its own
            [[ -n $(_mvirt_help "${path[@]}" | _mvirt_children) ]] || is_group=0
        else
            positional+=("$w")
        fi
    done

    if [[ -n $pending ]]; then
        mapfile -t opts < <(_mvirt_help "${path[@]}" | _mvirt_options)
        for o in "${opts[@]}"; do
            read -r -a o <<<"$o"
            [[ ${o[0]} == "$pending" ]] && pending_meta=${o[2]}
        done
        _mvirt_option_value "$pending" "$pending_meta"
    elif [[ $cur == --*=* ]]; then
        local name=${cur%%=*} meta=""
        mapfile -t opts < <(_mvirt_help "${path[@]}" | _mvirt_options)
        for o in "${opts[@]}"; do
            read -r -a o <<<"$o"
            [[ ${o[0]} == "$name" ]] && meta=${o[2]}
        done
        cur=${cur#*=}
        _mvirt_option_value "$name" "$meta"
        COMPREPLY=("${COMPREPLY[@]/#/$name=}")
    elif [[ $cur == -* ]]; then
        _mvirt_add "$(_mvirt_help "${path[@]}" | _mvirt_options | cut -d' ' -f1)"
    elif ((is_group)); then
        _mvirt_add "$(_mvirt_help "${path[@]}" | _mvirt_children | cut -d' ' -f1)"
    else
        _mvirt_positional "${#positional[@]}"
    fi

    # bash replaces only what follows the word's last ':' or '=' (word breaks): the candidates
    # must not repeat what comes before it
    local prefix=""
    [[ ${words[cword]} == *[:=]* ]] && prefix=${words[cword]%"${words[cword]##*[:=]}"}
    if [[ -n $prefix ]]; then
        for i in "${!COMPREPLY[@]}"; do
            COMPREPLY[i]=${COMPREPLY[i]#"$prefix"}
        done
    fi
    return 0
}

complete -F _mvirt mvirt
