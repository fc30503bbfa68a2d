# Shared by the CLI test scripts (sourced after TMP is set).

fail() { echo "FAIL: $*" >&2; exit 1; }

# Runs a command expecting exit code $1; keeps its stdout in $TMP/out and its stderr in $TMP/err.
expect_exit() {
  local want="$1"; shift
  local got=0
  "$@" >"$TMP/out" 2>"$TMP/err" || got=$?
  [[ "$got" == "$want" ]] || { cat "$TMP/err" >&2; fail "'$*' exited $got, expected $want"; }
}
