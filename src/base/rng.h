/* rng.h — deterministic seeded random numbers (xoshiro256**, seeded by splitmix64).
 * The same seed gives the same stream on every platform and build; the state is a
 * plain struct so it can be saved in a checkpoint and restored bit-exactly. */
#ifndef RL_RNG_H
#define RL_RNG_H
#include <stdint.h>

typedef struct { uint64_t s[4]; } rl_rng;

/* Seeds `r` from a 64-bit seed. Any seed (0 included) is valid. */
void rl_rng_seed(rl_rng *r, uint64_t seed);
/* Independent stream `stream` derived from `seed` (e.g. one per MPI rank or worker). */
void rl_rng_seed_stream(rl_rng *r, uint64_t seed, uint64_t stream);
uint64_t rl_rng_u64(rl_rng *r);
/* Uniform integer in [0, n); n > 0. Unbiased (rejection sampling). */
uint32_t rl_rng_below(rl_rng *r, uint32_t n);
/* Uniform float in [0, 1) with 24 random bits. */
float rl_rng_uniform(rl_rng *r);
/* Uniform double in [0, 1) with 53 random bits. */
double rl_rng_uniform_d(rl_rng *r);
/* Standard normal (Box–Muller; one value per call, the pair's twin discarded so
 * the stream position depends only on the number of calls). */
float rl_rng_normal(rl_rng *r);
/* In-place Fisher–Yates shuffle of n ints. */
void rl_rng_shuffle_int(rl_rng *r, int *a, int n);

#endif
