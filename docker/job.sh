#!/bin/sh
# recyclops-job: the cloud jobs with the job container's folders (compose's volumes).
#
#   recyclops-job setup                 # reviewed images from the store -> /data/dataset
#   recyclops-job train [FLAGS…]        # /data/dataset -> a run folder under /runs
#   recyclops-job publish [RUN_DIR]     # the newest run (or RUN_DIR) -> the store, then MQTT
#   recyclops-job search [FLAGS…]       # the grid search, runs under /runs/search
#   recyclops-job cv [FLAGS…]           # cross-validate the recipe (train flags) under /runs/cv
#   recyclops-job all [FLAGS…]          # setup, then train, then publish (`make train`)
#
# The configuration comes from $RECYCLOPS_CONFIG and RECYCLOPS_* overrides; extra train
# flags from $RECYCLOPS_TRAIN_ARGS or the command line. Any other command goes to recyclops.
set -eu
DATA="${RECYCLOPS_DATA_DIR:-/data/dataset}"
RUNS="${RECYCLOPS_RUNS_DIR:-/runs}"
CHANNEL="${RECYCLOPS_CHANNEL:-stable}"
[ -n "${RECYCLOPS_CONFIG:-}" ] || unset RECYCLOPS_CONFIG

# TensorFlow on CPU with glibc malloc: every large activation is a fresh mmap, faulted in page
# by page (docs/training.md, "Memory allocator"); tcmalloc keeps and reuses them.
for lib in /usr/lib/*-linux-gnu/libtcmalloc_minimal.so.4; do
  [ -e "$lib" ] && [ -z "${LD_PRELOAD:-}" ] && export LD_PRELOAD="$lib"
done

say() { printf '\n=== recyclops-job: %s\n' "$*" >&2; }

newest_run() {
  # The newest run folder that train finished (it writes gate.json last but one).
  newest=""
  for dir in "$RUNS"/*/; do
    [ -f "${dir}gate.json" ] || continue
    if [ -z "$newest" ] || [ "${dir}gate.json" -nt "${newest}gate.json" ]; then newest="$dir"; fi
  done
  [ -n "$newest" ] || { echo "recyclops-job: no finished run under $RUNS" >&2; exit 1; }
  echo "${newest%/}"
}

do_setup() { say "setup -> $DATA"; recyclops setup --out "$DATA"; }
# shellcheck disable=SC2086  # RECYCLOPS_TRAIN_ARGS is a list of flags
do_train() { say "train $DATA -> $RUNS"; recyclops train --data "$DATA" --runs "$RUNS" ${RECYCLOPS_TRAIN_ARGS:-} "$@"; }
do_publish() {
  run="${1:-$(newest_run)}"
  say "publish $run -> channel $CHANNEL"
  recyclops publish "$run" --channel "$CHANNEL"
}

command="${1:-all}"
[ $# -gt 0 ] && shift
case "$command" in
  setup) do_setup "$@" ;;
  train) do_train "$@" ;;
  publish) do_publish "$@" ;;
  search) say "search $DATA -> $RUNS/search"; recyclops search --data "$DATA" --out "$RUNS/search" "$@" ;;
  cv)
    # A folder per run; pass --out /runs/cv/NAME to resume a run cut off (saved folds are kept).
    out="$RUNS/cv/${RECYCLOPS_RUN_ID:-cv-$(date -u +%Y%m%dT%H%M%SZ)}"
    say "cross-validation $DATA -> $out"
    # shellcheck disable=SC2086  # RECYCLOPS_TRAIN_ARGS is a list of flags
    recyclops evaluate --cv "${RECYCLOPS_CV_FOLDS:-5}" --data "$DATA" --out "$out" ${RECYCLOPS_TRAIN_ARGS:-} "$@"
    ;;
  all)
    # A run id of our own, so publish takes exactly the run this job trained.
    run_id="${RECYCLOPS_RUN_ID:-job-$(date -u +%Y%m%dT%H%M%SZ)}"
    do_setup
    do_train --run-id "$run_id" "$@"
    do_publish "$RUNS/$run_id"
    ;;
  *) exec recyclops "$command" "$@" ;;
esac
