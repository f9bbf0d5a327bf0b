/* test.h — a tiny unit-test harness. One test file = one binary:
 *
 *   #include "test.h"
 *   TEST(adds) { EXPECT(1 + 1 == 2); EXPECT_NEAR(0.1 + 0.2, 0.3, 1e-12); }
 *   TEST_MAIN()
 *
 * Each failed expectation prints file:line and the expression; the binary
 * prints "N passed, N failed" and exits non-zero if any test failed.
 */
#ifndef RL_TEST_H
#define RL_TEST_H
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef void (*rl_test_fn)(void);
typedef struct { const char *name; rl_test_fn fn; } rl_test_case;

static rl_test_case rl__tests[256];
static int rl__ntests;
static int rl__fail_here;

#define TEST(tname) \
    static void test_##tname(void); \
    __attribute__((constructor)) static void reg_##tname(void) { rl__tests[rl__ntests].name = #tname; rl__tests[rl__ntests++].fn = test_##tname; } \
    static void test_##tname(void)

#define EXPECT(cond) do { if (!(cond)) { fprintf(stderr, "  %s:%d: expected %s\n", __FILE__, __LINE__, #cond); rl__fail_here = 1; } } while (0)
#define EXPECT_MSG(cond, ...) do { if (!(cond)) { fprintf(stderr, "  %s:%d: expected %s: ", __FILE__, __LINE__, #cond); fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); rl__fail_here = 1; } } while (0)
#define EXPECT_NEAR(a, b, tol) do { double rl__a = (a), rl__b = (b); \
    if (!(fabs(rl__a - rl__b) <= (tol))) { fprintf(stderr, "  %s:%d: %s = %.9g, %s = %.9g, |diff| > %g\n", __FILE__, __LINE__, #a, rl__a, #b, rl__b, (double)(tol)); rl__fail_here = 1; } } while (0)
#define EXPECT_STREQ(a, b) do { const char *rl__a = (a), *rl__b = (b); \
    if (!rl__a || !rl__b || strcmp(rl__a, rl__b)) { fprintf(stderr, "  %s:%d: \"%s\" != \"%s\"\n", __FILE__, __LINE__, rl__a ? rl__a : "(null)", rl__b ? rl__b : "(null)"); rl__fail_here = 1; } } while (0)
/* Stop the current test (after a failed precondition). */
#define REQUIRE(cond) do { if (!(cond)) { fprintf(stderr, "  %s:%d: required %s\n", __FILE__, __LINE__, #cond); rl__fail_here = 1; return; } } while (0)

#define TEST_MAIN() \
    int main(int argc, char **argv) { \
        int passed = 0, failed = 0; \
        for (int i = 0; i < rl__ntests; i++) { \
            if (argc > 1 && !strstr(rl__tests[i].name, argv[1])) continue; \
            rl__fail_here = 0; \
            rl__tests[i].fn(); \
            if (rl__fail_here) { failed++; fprintf(stderr, "FAIL %s\n", rl__tests[i].name); } \
            else { passed++; if (getenv("RLHF_TEST_VERBOSE")) fprintf(stderr, "ok   %s\n", rl__tests[i].name); } \
        } \
        printf("%d passed, %d failed\n", passed, failed); \
        return failed ? 1 : 0; \
    }

#endif
