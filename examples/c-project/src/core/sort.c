/* sort.c - a stable top-down merge sort for uint32_t. */
#include <stdlib.h>
#include <string.h>

#include "core.h"

static void merge_sort(uint32_t *a, uint32_t *tmp, size_t n)
{
    if (n < 2)
        return;
    size_t mid = n / 2;
    merge_sort(a, tmp, mid);
    merge_sort(a + mid, tmp, n - mid);
    size_t i = 0, j = mid, k = 0;
    while (i < mid && j < n)
        tmp[k++] = (a[j] < a[i]) ? a[j++] : a[i++];
    while (i < mid)
        tmp[k++] = a[i++];
    while (j < n)
        tmp[k++] = a[j++];
    memcpy(a, tmp, n * sizeof *a);
}

void demo_sort_u32(uint32_t *a, size_t n)
{
    uint32_t *tmp;
    if (n < 2)
        return;
    tmp = (uint32_t *)malloc(n * sizeof *tmp);
    if (tmp == NULL) { /* fall back to insertion sort */
        for (size_t i = 1; i < n; i++) {
            uint32_t x = a[i];
            size_t j = i;
            while (j > 0 && a[j - 1] > x) {
                a[j] = a[j - 1];
                j--;
            }
            a[j] = x;
        }
        return;
    }
    merge_sort(a, tmp, n);
    free(tmp);
}

uint32_t core_sort_run(void)
{
    uint32_t data[1024];
    uint32_t rng = 7u;
    uint32_t h = DEMO_FNV_OFFSET;

    for (size_t i = 0; i < DEMO_ARRAY_LEN(data); i++)
        data[i] = demo_lcg(&rng) >> 8;
    demo_sort_u32(data, DEMO_ARRAY_LEN(data));
    for (size_t i = 1; i < DEMO_ARRAY_LEN(data); i++)
        if (data[i - 1] > data[i])
            return 0; /* not sorted: make the failure visible in the checksum */
    for (size_t i = 0; i < DEMO_ARRAY_LEN(data); i += 64)
        h = demo_mix(h, data[i]);
    return h;
}
