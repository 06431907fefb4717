#!/usr/bin/env bash
# The GPU study in one command on a lent machine (its phases: scripts/gpu_study.py).
#
#   OUT=/folder bash scripts/gpu_study.sh [--plan NAME] [--workers N] [--dry-run]
#   make gpu-study PLAN=study            (the same, OUT from the environment)
#
# The machine has no network: PyMaxflow comes from the carried wheels in .gpu-carry/wheels
# and the data from .gpu-carry/data (`make gpu-carry` fills both here; carry `.gpu-carry`).
# Without a usable wheel a stand-in `maxflow` module lets mixrepro import, and the study
# leaves PuzzleMix out. Only small files are written under $OUT: summary.json,
# results.tar.gz, study.log. --dry-run: the same on the CPU with tiny settings, 20 s deadline.
set -euo pipefail
started_at=$(date +%s)  # the driver's deadline counts from here, set-up included
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=${OUT:?set OUT to the folder that receives the result files}
dry_run=0
for arg in "$@"; do [ "$arg" = --dry-run ] && dry_run=1; done
if [ -z "${PYTHON:-}" ]; then
    # On the lent machine its own python3 (with its torch); a dry run here takes the project's venv.
    PYTHON=python3
    [ "$dry_run" = 1 ] && [ -x "$repo/.venv/bin/python" ] && PYTHON=$repo/.venv/bin/python
fi
mkdir -p "$out"
out=$(cd "$out" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/mixrepro-gpu-study.XXXXXX")
trap 'rm -rf "$work"' EXIT
carry=$repo/.gpu-carry
export PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
# Decoded data, checkpoints and sweep claims stay off $OUT (large) and off this checkout's
# own cache (a dry run must not touch the claims or checkpoints of a live sweep here).
export MIXREPRO_CACHE="$work/cache" MIXREPRO_RESULTS="$out/results"
# The carried archive, unless the caller named a data root.
if [ -z "${MIXREPRO_DATA:-}" ] && [ -f "$carry/data/cifar10-jpeg-q75.tar.gz" ]; then
    export MIXREPRO_DATA="$carry/data"
fi

# PyMaxflow: present, else installed from the carried wheel, else a stand-in.
maxflow=present
if ! "$PYTHON" -c "import maxflow" 2>/dev/null; then
    maxflow=stub
    if compgen -G "$carry/wheels/PyMaxflow-*.whl" >/dev/null \
        && "$PYTHON" -m pip install --quiet --no-index --no-deps --no-compile --find-links "$carry/wheels" \
            --target "$work/site" PyMaxflow \
        && PYTHONPATH="$work/site:$PYTHONPATH" "$PYTHON" -c "import maxflow"; then
        export PYTHONPATH="$work/site:$PYTHONPATH"
        maxflow=installed
    fi
fi
if [ "$maxflow" = stub ]; then
    # mixrepro.methods imports the PuzzleMix solver, which imports maxflow at module level.
    mkdir -p "$work/stub/maxflow"
    cat > "$work/stub/maxflow/__init__.py" <<'PY'
"""Stand-in written by scripts/gpu_study.sh: PyMaxflow could not be installed, PuzzleMix cannot run."""
MIXREPRO_STUB = True


def __getattr__(name):
    raise ImportError("PyMaxflow is not installed on this machine (scripts/gpu_study.sh); PuzzleMix cannot run")
PY
    export PYTHONPATH="$work/stub:$PYTHONPATH"
    echo "gpu-study: PyMaxflow not available (no usable wheel in $carry/wheels): PuzzleMix left out"
fi

"$PYTHON" "$repo/scripts/gpu_study.py" run --out "$out" --started-at "$started_at" --maxflow "$maxflow" "$@" \
    2>&1 | tee "$out/study.log"
