#!/bin/sh
# src/dist collectives and the data-parallel helper (dp.h): one process (no MPI)
# and 2 ranks under mpirun (tests/tools/dist_check.c).
. "$(dirname "$0")/../cli/lib.sh"
TOOL="$RLHF_BUILD/tools/dist_check"
DIST_CHECK_WORLD=1 expect_exit 0 "$TOOL"
expect_out "^25 passed, 0 failed"
if command -v mpirun >/dev/null 2>&1; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
  DIST_CHECK_WORLD=2 expect_exit 0 timeout 120 mpirun -np 2 -x DIST_CHECK_WORLD "$TOOL"
  expect_out "^50 passed, 0 failed"
else
  bad "mpirun not found; run 'make deps'"
fi
finish
