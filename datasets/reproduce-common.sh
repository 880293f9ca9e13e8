# Sourced by datasets/reproduce-*.sh, from the repository root, after the
# caller has made $FLOWEXP absolute (it may be relative to where it started).

# reproduce_report NAME ARGS...: report=1 when the first of ARGS is --report
# (the caller then shifts it off), and the run directory after it must hold
# results.csv, else a message and exit 2; report=0 otherwise.
reproduce_report() {
    name=$1
    shift
    report=0
    [ "${1:-}" = --report ] || return 0
    report=1
    [ -s "${2:-}/results.csv" ] || { echo "$name: no ${2:-OUT_DIR}/results.csv" >&2; exit 2; }
}

# reproduce_flowexp: F = $FLOWEXP if set, else the program scripts/setup.sh
# builds (installing what is missing).
reproduce_flowexp() {
    if [ -n "${FLOWEXP:-}" ]; then
        F=$FLOWEXP
    else
        scripts/setup.sh
        F=build/tools/flowexp/flowexp
    fi
}
