#include "dist.h"
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#ifdef RL_HAVE_MPI
#include <mpi.h>
#endif

static int g_rank = 0, g_world = 1, g_mpi_on = 0, g_inited = 0;
#ifdef RL_HAVE_MPI
static int *g_ic, *g_id; /* (world) int counts/displacements for the v-collectives */
#endif

int dist_built_with_mpi(void) {
#ifdef RL_HAVE_MPI
    return 1;
#else
    return 0;
#endif
}

/* Launched by an MPI launcher? (OpenMPI, MPICH/Hydra and Slurm PMI set these.) */
static int launched_by_mpirun(void) {
    return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMI_SIZE") || getenv("PMIX_RANK");
}

/* A rank that fails names itself: mpirun's own message only says "a process
 * exited non-zero", and the CHECK line above it does not carry the rank. */
static void on_exit_report(int status, void *arg) {
    (void)arg;
    if (status != 0 && g_mpi_on && g_world > 1)
        fprintf(stderr, "rlhf: rank %d of %d exited with status %d; mpirun stops the other ranks\n", g_rank, g_world, status);
}

rl_status dist_init(int *argc, char ***argv) {
    if (g_inited) return RL_OK;
    g_inited = 1;
    if (!launched_by_mpirun()) return RL_OK;
#ifdef RL_HAVE_MPI
    /* FUNNELED: OpenMP threads compute, only the main thread calls MPI. */
    int provided = 0;
    if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) return rl_fail(RL_EIO, "MPI_Init failed");
    g_mpi_on = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_world);
    g_ic = calloc((size_t)g_world, sizeof(int));
    g_id = calloc((size_t)g_world, sizeof(int));
    if (!g_ic || !g_id) return rl_fail(RL_ENOMEM, "dist_init");
    on_exit(on_exit_report, NULL);
    return RL_OK;
#else
    (void)argc; (void)argv;
    return rl_fail(RL_EUNSUPPORTED, "started by mpirun, but this rlhf was built without MPI; run 'make deps' (installs libopenmpi-dev) and rebuild");
#endif
}

/* ---- watchdog ---------------------------------------------------------------- */

static atomic_llong g_coll_start_ms;          /* 0 = no collective in progress */
static const char *_Atomic g_coll_name;
static atomic_int g_wd_stop;
static double g_wd_seconds;
static pthread_t g_wd_thread;
static int g_wd_running;

static long long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void *watchdog_main(void *arg) {
    (void)arg;
    while (!atomic_load(&g_wd_stop)) {
        struct timespec ts = {0, 100 * 1000000};
        nanosleep(&ts, NULL);
        long long t0 = atomic_load(&g_coll_start_ms);
        if (t0 && (double)(now_ms() - t0) / 1000.0 > g_wd_seconds) {
            const char *what = atomic_load(&g_coll_name);
            fprintf(stderr, "rlhf: rank %d of %d: %s has not completed after %.0f s: another rank is stuck or dead (or the network is down); ending this rank so mpirun stops the job (--dist-timeout)\n",
                    g_rank, g_world, what ? what : "a collective", g_wd_seconds);
            fflush(stderr);
            _exit(3); /* async-safe; mpirun sees the non-zero exit and kills the other ranks */
        }
    }
    return NULL;
}

void dist_watchdog(double seconds) {
    g_wd_seconds = seconds;
    if (seconds > 0 && !g_wd_running && g_mpi_on && g_world > 1) {
        atomic_store(&g_wd_stop, 0);
        if (pthread_create(&g_wd_thread, NULL, watchdog_main, NULL) == 0) g_wd_running = 1;
    } else if (seconds <= 0 && g_wd_running) {
        atomic_store(&g_wd_stop, 1);
        pthread_join(g_wd_thread, NULL);
        g_wd_running = 0;
    }
}

#ifdef RL_HAVE_MPI
static void coll_begin(const char *name) {
    atomic_store(&g_coll_name, name);
    atomic_store(&g_coll_start_ms, now_ms());
}
static void coll_end(void) { atomic_store(&g_coll_start_ms, 0); }
#endif

void dist_finalize(void) {
    dist_watchdog(0);
#ifdef RL_HAVE_MPI
    if (g_mpi_on) MPI_Finalize();
    free(g_ic); free(g_id);
    g_ic = g_id = NULL;
#endif
    g_mpi_on = 0;
    g_rank = 0;
    g_world = 1;
}

int dist_rank(void) { return g_rank; }
int dist_world(void) { return g_world; }

int dist_local_world(void) {
    if (!g_mpi_on) return 1;
    const char *e = getenv("OMPI_COMM_WORLD_LOCAL_SIZE");
    if (!e) e = getenv("MPI_LOCALNRANKS");
    int n = e ? atoi(e) : 0;
    return n > 0 ? n : 1;
}

int dist_bound_cores(void) {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) != 0) return (int)sysconf(_SC_NPROCESSORS_ONLN);
    return CPU_COUNT(&set);
}

int dist_default_threads(void) {
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    int per = (int)(cores / dist_local_world()), bound = dist_bound_cores();
    if (bound > 0 && bound < per) per = bound; /* more threads than bound cores only thrash */
    return per > 0 ? per : 1;
}

uint64_t dist_seed_for_rank(uint64_t seed, int rank) {
    if (rank == 0) return seed;
    /* splitmix64 finaliser of seed + rank * golden ratio: distinct, well mixed */
    uint64_t z = seed + (uint64_t)rank * 0x9E3779B97F4A7C15ULL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

#ifdef RL_HAVE_MPI
static rl_status mpi_status(int rc, const char *what) {
    coll_end();
    if (rc == MPI_SUCCESS) return RL_OK;
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, msg, &len);
    return rl_fail(RL_EIO, "%s failed on rank %d: %s", what, g_rank, msg);
}
#define ON (g_mpi_on && g_world > 1)
/* MPI counts are int: collectives over more elements go in chunks. */
#define CHUNK ((size_t)1 << 30)
#endif

rl_status dist_allreduce_sum_f32(float *buf, size_t n) {
#ifdef RL_HAVE_MPI
    if (ON) {
        for (size_t off = 0; off < n; off += CHUNK) {
            int cnt = (int)(n - off < CHUNK ? n - off : CHUNK);
            coll_begin("MPI_Allreduce (float sum)");
            RL_TRY(mpi_status(MPI_Allreduce(MPI_IN_PLACE, buf + off, cnt, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD), "MPI_Allreduce"));
        }
    }
#endif
    (void)buf; (void)n;
    return RL_OK;
}

rl_status dist_allreduce_mean_f32(float *buf, size_t n) {
    RL_TRY(dist_allreduce_sum_f32(buf, n));
    if (g_world > 1) {
        float s = 1.0f / (float)g_world;
        for (size_t i = 0; i < n; i++) buf[i] *= s;
    }
    return RL_OK;
}

static rl_status allreduce_f64(double *buf, size_t n, int is_max) {
#ifdef RL_HAVE_MPI
    if (ON) {
        coll_begin(is_max ? "MPI_Allreduce (double max)" : "MPI_Allreduce (double sum)");
        return mpi_status(MPI_Allreduce(MPI_IN_PLACE, buf, (int)n, MPI_DOUBLE, is_max ? MPI_MAX : MPI_SUM, MPI_COMM_WORLD), "MPI_Allreduce");
    }
#endif
    (void)buf; (void)n; (void)is_max;
    return RL_OK;
}

rl_status dist_allreduce_sum_f64(double *buf, size_t n) { return allreduce_f64(buf, n, 0); }
rl_status dist_allreduce_max_f64(double *buf, size_t n) { return allreduce_f64(buf, n, 1); }
rl_status dist_allreduce_mean_f64(double *buf, size_t n) {
    RL_TRY(allreduce_f64(buf, n, 0));
    for (size_t i = 0; g_world > 1 && i < n; i++) buf[i] /= g_world;
    return RL_OK;
}

rl_status dist_bcast(void *buf, size_t bytes, int root) {
#ifdef RL_HAVE_MPI
    if (ON) {
        for (size_t off = 0; off < bytes; off += CHUNK) {
            int cnt = (int)(bytes - off < CHUNK ? bytes - off : CHUNK);
            coll_begin("MPI_Bcast");
            RL_TRY(mpi_status(MPI_Bcast((char *)buf + off, cnt, MPI_BYTE, root, MPI_COMM_WORLD), "MPI_Bcast"));
        }
    }
#endif
    (void)buf; (void)bytes; (void)root;
    return RL_OK;
}

rl_status dist_barrier(void) {
#ifdef RL_HAVE_MPI
    if (ON) {
        coll_begin("MPI_Barrier");
        return mpi_status(MPI_Barrier(MPI_COMM_WORLD), "MPI_Barrier");
    }
#endif
    return RL_OK;
}

rl_status dist_allgather_u64(uint64_t mine, uint64_t *all) {
#ifdef RL_HAVE_MPI
    if (ON) {
        coll_begin("MPI_Allgather");
        return mpi_status(MPI_Allgather(&mine, 1, MPI_UINT64_T, all, 1, MPI_UINT64_T, MPI_COMM_WORLD), "MPI_Allgather");
    }
#endif
    all[0] = mine;
    return RL_OK;
}

#ifdef RL_HAVE_MPI
/* size_t counts/displacements -> the int ones MPI takes, in buffers allocated
 * once by dist_init (g_ic, g_id; no allocation per collective). */
static rl_status int_layout(const size_t *counts, const size_t *displs) {
    for (int r = 0; r < g_world; r++) {
        if (counts[r] > (size_t)0x7fffffff || displs[r] > (size_t)0x7fffffff)
            return rl_fail(RL_EINVAL, "collective of more than 2^31 floats per call; use buckets");
        g_ic[r] = (int)counts[r];
        g_id[r] = (int)displs[r];
    }
    return RL_OK;
}
#endif

rl_status dist_reduce_scatter_sum_f32(float *buf, const size_t *counts, const size_t *displs) {
#ifdef RL_HAVE_MPI
    if (ON) {
        for (int r = 1; r < g_world; r++)
            if (displs[r] != displs[r - 1] + counts[r - 1]) return rl_fail(RL_EINVAL, "reduce-scatter ranges must tile in rank order");
        RL_TRY(int_layout(counts, displs));
        /* MPI_IN_PLACE: the input is all of buf (from displs[0]), this rank's
         * result lands at its start; move it to where the range belongs. */
        coll_begin("MPI_Reduce_scatter");
        RL_TRY(mpi_status(MPI_Reduce_scatter(MPI_IN_PLACE, buf + displs[0], g_ic, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD), "MPI_Reduce_scatter"));
        if (g_rank > 0) memmove(buf + displs[g_rank], buf + displs[0], sizeof(float) * counts[g_rank]);
        return RL_OK;
    }
#endif
    (void)buf; (void)counts; (void)displs;
    return RL_OK;
}

rl_status dist_allgatherv_f32(float *buf, const size_t *counts, const size_t *displs) {
#ifdef RL_HAVE_MPI
    if (ON) {
        RL_TRY(int_layout(counts, displs));
        coll_begin("MPI_Allgatherv");
        return mpi_status(MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, buf, g_ic, g_id, MPI_FLOAT, MPI_COMM_WORLD), "MPI_Allgatherv");
    }
#endif
    (void)buf; (void)counts; (void)displs;
    return RL_OK;
}

rl_status dist_gatherv_f32(const float *send, float *recv, const size_t *counts, const size_t *displs, int root) {
#ifdef RL_HAVE_MPI
    if (ON) {
        RL_TRY(int_layout(counts, displs));
        coll_begin("MPI_Gatherv");
        return mpi_status(MPI_Gatherv(send, g_ic[g_rank], MPI_FLOAT, recv, g_ic, g_id, MPI_FLOAT, root, MPI_COMM_WORLD), "MPI_Gatherv");
    }
#endif
    (void)root;
    if (recv + displs[0] != send) memmove(recv + displs[0], send, sizeof(float) * counts[0]);
    return RL_OK;
}

rl_status dist_gatherv_bytes(const void *send, void *recv, const size_t *counts, const size_t *displs, int root) {
#ifdef RL_HAVE_MPI
    if (ON) {
        RL_TRY(int_layout(counts, displs));
        coll_begin("MPI_Gatherv");
        return mpi_status(MPI_Gatherv(send, g_ic[g_rank], MPI_BYTE, recv, g_ic, g_id, MPI_BYTE, root, MPI_COMM_WORLD), "MPI_Gatherv");
    }
#endif
    (void)root;
    if ((const char *)recv + displs[0] != (const char *)send) memmove((char *)recv + displs[0], send, counts[0]);
    return RL_OK;
}

void dist_abort(int code) {
#ifdef RL_HAVE_MPI
    if (g_mpi_on && g_world > 1) MPI_Abort(MPI_COMM_WORLD, code);
#endif
    exit(code);
}
