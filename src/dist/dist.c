#include "dist.h"
#include <stdlib.h>
#include <string.h>
#ifdef RL_HAVE_MPI
#include <mpi.h>
#endif

static int g_rank = 0, g_world = 1, g_mpi_on = 0, g_inited = 0;

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

rl_status dist_init(int *argc, char ***argv) {
    if (g_inited) return RL_OK;
    g_inited = 1;
    if (!launched_by_mpirun()) return RL_OK;
#ifdef RL_HAVE_MPI
    if (MPI_Init(argc, argv) != MPI_SUCCESS) return rl_fail(RL_EIO, "MPI_Init failed");
    g_mpi_on = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_world);
    return RL_OK;
#else
    (void)argc; (void)argv;
    return rl_fail(RL_EUNSUPPORTED, "started by mpirun, but this rlhf was built without MPI; run 'make deps' (installs libopenmpi-dev) and rebuild");
#endif
}

void dist_finalize(void) {
#ifdef RL_HAVE_MPI
    if (g_mpi_on) MPI_Finalize();
#endif
    g_mpi_on = 0;
    g_rank = 0;
    g_world = 1;
}

int dist_rank(void) { return g_rank; }
int dist_world(void) { return g_world; }

#ifdef RL_HAVE_MPI
static rl_status mpi_status(int rc, const char *what) {
    if (rc == MPI_SUCCESS) return RL_OK;
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, msg, &len);
    return rl_fail(RL_EIO, "%s failed on rank %d: %s", what, g_rank, msg);
}
#endif

rl_status dist_allreduce_sum_f32(float *buf, size_t n) {
#ifdef RL_HAVE_MPI
    if (g_mpi_on && g_world > 1) {
        /* MPI counts are int: reduce in chunks so gpt2-sized buffers are fine. */
        size_t chunk = (size_t)1 << 30;
        for (size_t off = 0; off < n; off += chunk) {
            int cnt = (int)(n - off < chunk ? n - off : chunk);
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
    if (g_mpi_on && g_world > 1)
        return mpi_status(MPI_Allreduce(MPI_IN_PLACE, buf, (int)n, MPI_DOUBLE, is_max ? MPI_MAX : MPI_SUM, MPI_COMM_WORLD), "MPI_Allreduce");
#endif
    (void)buf; (void)n; (void)is_max;
    return RL_OK;
}

rl_status dist_allreduce_sum_f64(double *buf, size_t n) { return allreduce_f64(buf, n, 0); }
rl_status dist_allreduce_max_f64(double *buf, size_t n) { return allreduce_f64(buf, n, 1); }

rl_status dist_bcast(void *buf, size_t bytes, int root) {
#ifdef RL_HAVE_MPI
    if (g_mpi_on && g_world > 1) {
        size_t chunk = (size_t)1 << 30;
        for (size_t off = 0; off < bytes; off += chunk) {
            int cnt = (int)(bytes - off < chunk ? bytes - off : chunk);
            RL_TRY(mpi_status(MPI_Bcast((char *)buf + off, cnt, MPI_BYTE, root, MPI_COMM_WORLD), "MPI_Bcast"));
        }
    }
#endif
    (void)buf; (void)bytes; (void)root;
    return RL_OK;
}

rl_status dist_barrier(void) {
#ifdef RL_HAVE_MPI
    if (g_mpi_on && g_world > 1) return mpi_status(MPI_Barrier(MPI_COMM_WORLD), "MPI_Barrier");
#endif
    return RL_OK;
}

void dist_abort(int code) {
#ifdef RL_HAVE_MPI
    if (g_mpi_on && g_world > 1) MPI_Abort(MPI_COMM_WORLD, code);
#endif
    exit(code);
}
