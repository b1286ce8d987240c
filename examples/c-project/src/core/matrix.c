/* matrix.c - integer matrix product; its size and seed come from rare.h. */
#include "core.h"
#include "rare.h"

#define N RARE_MATRIX_DIM

static void matmul(uint32_t c[N][N], uint32_t a[N][N], uint32_t b[N][N])
{
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++) {
            uint32_t s = 0;
            for (int k = 0; k < N; k++)
                s += a[i][k] * b[k][j];
            c[i][j] = s;
        }
}

uint32_t core_matrix_run(void)
{
    uint32_t a[N][N], b[N][N], c[N][N];
    uint32_t rng = RARE_MATRIX_SEED;
    uint32_t h = DEMO_FNV_OFFSET;

    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++) {
            a[i][j] = demo_lcg(&rng) & 0xffu;
            b[i][j] = demo_lcg(&rng) & 0xffu;
        }
    matmul(c, a, b);
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++)
            h = demo_mix(h, c[i][j]);
    return h;
}
