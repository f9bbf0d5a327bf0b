/* dist.h — data parallelism over MPI behind one small interface.
 *
 * Two implementations behind the same functions: MPI (when the build found
 * OpenMPI and the process was started by mpirun) and none (one process). With
 * one process every collective is the identity, so single-process results are
 * exactly those of code that never heard of MPI.
 *
 * The binary is the same either way: dist_init() only calls MPI_Init when the
 * launcher's environment says so (OMPI_COMM_WORLD_SIZE / PMI_SIZE), so a plain
 * `rlhf pretrain` never pays MPI start-up and `mpirun -np 2 rlhf pretrain`
 * runs data-parallel.
 *
 * Errors: collectives return RL_EIO with the MPI error string; MPI's default
 * handler (abort the whole job when a rank dies) is kept, so a dead rank ends
 * the job instead of hanging it.
 */
#ifndef RL_DIST_H
#define RL_DIST_H
#include <stddef.h>
#include "../base/check.h"

/* Starts MPI if launched under mpirun; otherwise rank 0 of 1. Idempotent. */
rl_status dist_init(int *argc, char ***argv);
/* Ends MPI if it was started (safe to call when it was not). */
void dist_finalize(void);
int dist_rank(void);
int dist_world(void);
static inline int dist_is_root(void) { return dist_rank() == 0; }
/* 1 if this build links MPI (whether or not this process uses it). */
int dist_built_with_mpi(void);

/* In-place sums / means over all ranks. buf: (n). */
rl_status dist_allreduce_sum_f32(float *buf, size_t n);
rl_status dist_allreduce_mean_f32(float *buf, size_t n);
rl_status dist_allreduce_sum_f64(double *buf, size_t n);
rl_status dist_allreduce_max_f64(double *buf, size_t n);
/* Broadcast `bytes` from `root` to every rank. */
rl_status dist_bcast(void *buf, size_t bytes, int root);
rl_status dist_barrier(void);
/* Ends every rank of the job with an error (MPI_Abort), or exit(code) alone. */
void dist_abort(int code) __attribute__((noreturn));

#endif
