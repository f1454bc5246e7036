# Sourced by the training benches: step NAME command... runs it with its output in $OUT/NAME.log and its
# time in $OUT/timings.txt; a failure is reported in $OUT/failures.txt and the other steps still run.
# BENCH_ONLY=PREFIX runs only the steps whose names start with it (e.g. faces_ or omniglot_).
step() {
    local name=$1; shift
    if [[ -n ${BENCH_ONLY:-} && $name != "$BENCH_ONLY"* ]]; then
        return 0
    fi
    local start=$SECONDS
    echo "==> $name" >&2
    if ! "$@" >"$OUT/$name.log" 2>&1; then
        echo "FAILED: $name (see $OUT/$name.log)" | tee -a "$OUT/failures.txt" >&2
        tail -20 "$OUT/$name.log" >&2
        return 0
    fi
    echo "$name $((SECONDS - start))s" | tee -a "$OUT/timings.txt" >&2
}
