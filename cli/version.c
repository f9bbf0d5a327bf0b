#include <stdio.h>
#include "cli.h"
#include "../src/base/flags.h"

const char *rl_build_features(void) {
    return ""
#ifdef _OPENMP
        "openmp "
#endif
#ifdef RL_HAVE_OPENBLAS
        "openblas "
#endif
#ifdef RL_HAVE_MPI
        "mpi "
#endif
#ifdef RL_HAVE_CUDA
        "cuda "
#endif
        "sqlite jansson libsodium zlib libmicrohttpd";
}

int cmd_version(int argc, char **argv) {
    rl_flag flags[1];
    int rc = rl_flags_parse("version", "Print the version and the optional features this build has.", flags, 0, argc, argv);
    if (rc != RL_FLAGS_OK) return rc == RL_FLAGS_HELP ? 0 : 2;
    printf("rlhf %s\nfeatures: %s\n", rl_version, rl_build_features());
    return 0;
}
