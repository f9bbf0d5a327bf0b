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
 * Failure model: MPI's default handler (abort the whole job) is kept, so a
 * rank that dies or exits non-zero ends the job instead of hanging it:
 * mpirun notices the dead process, names its rank and kills the others. A
 * rank that exits non-zero also prints "rlhf: rank R of W exited with status
 * S" first. A rank that is alive but stuck (stopped, deadlocked, a network
 * partition TCP has not noticed) is caught by the optional watchdog
 * (dist_watchdog): a collective that has not completed after `seconds`
 * prints which collective on which rank and exits that rank (status 3),
 * which makes mpirun end the job.
 *
 * Errors: collectives return RL_EIO with the MPI error string.
 * The data-parallel training helper (gradient all-reduce, ZeRO-1) is in dp.h.
 */
#ifndef RL_DIST_H
#define RL_DIST_H
#include <stddef.h>
#include <stdint.h>
#include "../base/check.h"

/* Starts MPI if launched under mpirun; otherwise rank 0 of 1. Idempotent. */
rl_status dist_init(int *argc, char ***argv);
/* Ends MPI if it was started (safe to call when it was not). */
void dist_finalize(void);
int dist_rank(void);
int dist_world(void);
static inline int dist_is_root(void) { return dist_rank() == 0; }
/* Ranks on this machine (OMPI_COMM_WORLD_LOCAL_SIZE; 1 without MPI): used to
 * split the cores between ranks (dist_default_threads). */
int dist_local_world(void);
/* Cores this process may run on (its affinity mask; mpirun binds each rank to
 * one core by default when it starts 1 or 2 ranks). */
int dist_bound_cores(void);
/* Threads per rank when the user asked for "all": cores / local ranks, capped
 * by dist_bound_cores(), at least 1. */
int dist_default_threads(void);
/* 1 if this build links MPI (whether or not this process uses it). */
int dist_built_with_mpi(void);

/* In-place sums / means over all ranks. buf: (n). */
rl_status dist_allreduce_sum_f32(float *buf, size_t n);
rl_status dist_allreduce_mean_f32(float *buf, size_t n);
rl_status dist_allreduce_sum_f64(double *buf, size_t n);
rl_status dist_allreduce_mean_f64(double *buf, size_t n);
rl_status dist_allreduce_max_f64(double *buf, size_t n);
/* Broadcast `bytes` from `root` to every rank. */
rl_status dist_bcast(void *buf, size_t bytes, int root);
rl_status dist_barrier(void);
/* Every rank's `mine` into all (world), in rank order. */
rl_status dist_allgather_u64(uint64_t mine, uint64_t *all);
/* In place over buf (n = sum(counts)): afterwards rank r holds the sum over
 * ranks of its range buf[displs[r] .. + counts[r]); the rest of buf is
 * undefined. counts, displs: (world); the ranges must tile [0, n) in rank order. */
rl_status dist_reduce_scatter_sum_f32(float *buf, const size_t *counts, const size_t *displs);
/* In place: rank r contributes buf[displs[r] .. + counts[r]); afterwards every
 * rank holds every range. counts, displs: (world). */
rl_status dist_allgatherv_f32(float *buf, const size_t *counts, const size_t *displs);
/* Rank r's send (counts[r]) lands at recv + displs[r] on `root` (recv is only
 * read on root; may be NULL elsewhere). */
rl_status dist_gatherv_f32(const float *send, float *recv, const size_t *counts, const size_t *displs, int root);
/* The same for bytes (variable-length records, e.g. text lines gathered to rank 0). */
rl_status dist_gatherv_bytes(const void *send, void *recv, const size_t *counts, const size_t *displs, int root);

/* Ends every rank of the job with an error (MPI_Abort), or exit(code) alone. */
void dist_abort(int code) __attribute__((noreturn));

/* Watchdog on collectives: a background thread that exits this rank (status 3)
 * with "rank R: <collective> has not completed after S s ..." when one
 * collective takes longer than `seconds`. 0 turns it off. Only useful under
 * MPI (a no-op otherwise). Waits that are legitimately long (rank 0 writing a
 * big checkpoint while the others sit at the barrier) count, so choose
 * `seconds` well above the slowest checkpoint write. */
void dist_watchdog(double seconds);

/* Seed for this rank's sampling RNG: rank 0 gets `seed` itself (so one process
 * reproduces the single-process run), rank r > 0 a well-mixed different seed.
 * Use it for rollouts/sampling, never for weight init or data order (those
 * must be the same on every rank). */
uint64_t dist_seed_for_rank(uint64_t seed, int rank);

#endif
