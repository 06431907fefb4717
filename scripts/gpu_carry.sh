#!/usr/bin/env bash
# Fill .gpu-carry/ with what the lent GPU machine cannot fetch (it has no network), and check
# that it travels: the working tree plus carried paths may hold 64 MiB at most.
#   PY=.venv/bin/python DATA=/work/shared/data bash scripts/gpu_carry.sh
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
PY=${PY:-python3}
DATA=${DATA:-${MIXREPRO_DATA:-data}}
archive=$DATA/cifar10-jpeg-q75.tar.gz
limit=$((64 * 1024 * 1024))
[ -f "$archive" ] || { echo "gpu-carry: $archive not found (set DATA or MIXREPRO_DATA)" >&2; exit 1; }
mkdir -p .gpu-carry/wheels .gpu-carry/data
# The machine's python3 is CPython 3.12 on x86-64 Linux; PyMaxflow is the one package it lacks.
"$PY" -m pip download --quiet --only-binary=:all: --python-version 3.12 --platform manylinux2014_x86_64 \
    --no-deps PyMaxflow==1.3.2 -d .gpu-carry/wheels
# A hard link costs no space here; across file systems a copy.
ln -f "$archive" .gpu-carry/data/ 2>/dev/null || cp "$archive" .gpu-carry/data/
# The copy there has no .git: record which code it is, uncommitted changes included.
{ git rev-parse HEAD; git status --porcelain --untracked-files=no; } > .gpu-carry/git-revision.txt
git diff HEAD > .gpu-carry/worktree.diff
carried=$(du -sb .gpu-carry | cut -f1)
# (du skips tracked files deleted in the working tree, which do not travel either)
tree=$( { git ls-files -z; git ls-files -z --others --exclude-standard; } \
    | xargs -0 du -cb 2>/dev/null | tail -1 | cut -f1 || true)
echo "gpu-carry: .gpu-carry $carried bytes, working tree $tree bytes, together $((carried + tree)) of $limit"
du -b .gpu-carry/wheels/* .gpu-carry/data/* .gpu-carry/*.txt .gpu-carry/*.diff
[ $((carried + tree)) -le "$limit" ] || { echo "gpu-carry: over the 64 MiB a call may carry" >&2; exit 1; }
