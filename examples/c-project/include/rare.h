/* rare.h - rarely used tuning constants.
 * Exactly two translation units include this header: src/core/matrix.c and
 * src/util/rle.c. Tests touch or edit it and expect only those two to
 * recompile; keep it that way (README.md). */
#ifndef DEMO_RARE_H
#define DEMO_RARE_H

#define RARE_MATRIX_DIM 8
#define RARE_MATRIX_SEED 0x5eedu

#define RARE_RLE_INPUT_LEN 512
#define RARE_RLE_MAX_RUN 255

#endif /* DEMO_RARE_H */
