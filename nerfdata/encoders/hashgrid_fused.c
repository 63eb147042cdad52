/*
 * Fused CPU hash-grid kernels for nerfdata (compiled on first use, loaded with ctypes).
 *
 * Follows tiny-cuda-nn's kernel_grid / kernel_grid_backward (encodings/grid.h) for 3-D inputs with
 * linear interpolation, so that it reads the same parameter layout and gives the same numbers:
 *   pos = fmaf(scale, x, shift); cell = floor(pos); frac = pos - cell; upper = cell + 1
 *   index = dense ? x + y*res + z*res^2 : x*1 ^ y*2654435761 ^ z*805459861   (uint32), % level size
 *   out[level*F + f] = sum over corners c = 0..7 (bit d of c = upper neighbour along axis d) of
 *                      weight_c * table[(offset + index_c) * F + f], weights multiplied x, y, z.
 * tiny-cuda-nn's layout has shift 0.5; nerfstudio's PyTorch HashEncoding has shift 0 (fmaf then rounds
 * the product once, like its float32 multiply), upper = ceil(pos) (the lower corner again on a grid
 * plane) and no dense levels: the per-level struct carries both differences.
 *
 * Forward goes level by level, parallel over points; the parameter backward parallelises over levels (levels own
 * disjoint parts of the table, so no two threads ever add to the same entry and no atomics are
 * needed); the position backward parallelises over points.
 */
#include <math.h>
#include <stdint.h>

typedef struct {
    float scale;
    uint32_t resolution;
    uint32_t size;      /* entries in this level */
    uint32_t offset;    /* first entry of this level in the table */
    uint32_t dense;     /* 1: dense indexing, 0: hashed */
    float shift;        /* added to scale * x: 0.5 (tiny-cuda-nn) or 0 (nerfstudio) */
    uint32_t ceil_upper; /* 1: upper corner ceil(pos) (nerfstudio), 0: floor(pos) + 1 (tiny-cuda-nn) */
} Level;

static inline uint32_t corner_index(const Level* lv, uint32_t cx, uint32_t cy, uint32_t cz) {
    uint32_t index;
    if (lv->dense) {
        index = cx + cy * lv->resolution + cz * lv->resolution * lv->resolution;
    } else {
        index = (cx * 1u) ^ (cy * 2654435761u) ^ (cz * 805459861u);
    }
    return lv->offset + index % lv->size;
}

/* Cell, fraction and the 8 corner entries and weights of one point at one level. */
static inline void corners(const Level* lv, const float* x, uint32_t idx[8], float w[8], float frac[3],
                           uint32_t cell[3]) {
    uint32_t step[3];
    for (int d = 0; d < 3; ++d) {
        float pos = fmaf(lv->scale, x[d], lv->shift);
        float fl = floorf(pos);
        cell[d] = (uint32_t)(int32_t)fl;
        frac[d] = pos - fl;
        step[d] = lv->ceil_upper ? (uint32_t)(frac[d] != 0.0f) : 1u; /* ceil(pos) - floor(pos) */
    }
    for (int c = 0; c < 8; ++c) {
        float weight = 1.0f;
        uint32_t p[3];
        for (int d = 0; d < 3; ++d) {
            if (c & (1 << d)) {
                weight *= frac[d];
                p[d] = cell[d] + step[d];
            } else {
                weight *= 1.0f - frac[d];
                p[d] = cell[d];
            }
        }
        w[c] = weight;
        idx[c] = corner_index(lv, p[0], p[1], p[2]);
    }
}

void hashgrid_forward(const float* x, int64_t n, const float* table, const Level* levels, int32_t num_levels,
                      int32_t features, float* out) {
    /* Level by level (as tiny-cuda-nn's blocks do): one level's table stays in cache for all points. */
    for (int32_t l = 0; l < num_levels; ++l) {
#pragma omp parallel for schedule(static)
        for (int64_t i = 0; i < n; ++i) {
            uint32_t idx[8], cell[3];
            float w[8], frac[3];
            corners(&levels[l], x + 3 * i, idx, w, frac, cell);
            float* oi = out + (int64_t)i * num_levels * features + l * features;
            for (int32_t f = 0; f < features; ++f) {
                float result = 0.0f;
                for (int c = 0; c < 8; ++c) result += w[c] * table[(int64_t)idx[c] * features + f];
                oi[f] = result;
            }
        }
    }
}

void hashgrid_backward_params(const float* x, int64_t n, const float* grad_out, const Level* levels,
                              int32_t num_levels, int32_t features, float* grad_table) {
#pragma omp parallel for schedule(dynamic, 1)
    for (int32_t l = 0; l < num_levels; ++l) {
        for (int64_t i = 0; i < n; ++i) {
            uint32_t idx[8], cell[3];
            float w[8], frac[3];
            corners(&levels[l], x + 3 * i, idx, w, frac, cell);
            const float* g = grad_out + (int64_t)i * num_levels * features + l * features;
            for (int c = 0; c < 8; ++c) {
                float* target = grad_table + (int64_t)idx[c] * features;
                for (int32_t f = 0; f < features; ++f) target[f] += w[c] * g[f];
            }
        }
    }
}

void hashgrid_backward_x(const float* x, int64_t n, const float* table, const float* grad_out, const Level* levels,
                         int32_t num_levels, int32_t features, float* grad_x) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; ++i) {
        float gx[3] = {0.0f, 0.0f, 0.0f};
        for (int32_t l = 0; l < num_levels; ++l) {
            uint32_t idx[8], cell[3];
            float w[8], frac[3];
            corners(&levels[l], x + 3 * i, idx, w, frac, cell);
            const float* g = grad_out + (int64_t)i * num_levels * features + l * features;
            for (int d = 0; d < 3; ++d) {
                /* d/dx_d of the interpolation: corners differing in axis d, weighted by the other axes. */
                float acc = 0.0f;
                for (int c = 0; c < 8; ++c) {
                    if (c & (1 << d)) continue;
                    int upper = c | (1 << d);
                    float other = 1.0f;
                    for (int e = 0; e < 3; ++e) {
                        if (e == d) continue;
                        other *= (c & (1 << e)) ? frac[e] : 1.0f - frac[e];
                    }
                    for (int32_t f = 0; f < features; ++f) {
                        float diff = table[(int64_t)idx[upper] * features + f] - table[(int64_t)idx[c] * features + f];
                        acc += other * diff * g[f];
                    }
                }
                gx[d] += acc * levels[l].scale;
            }
        }
        grad_x[3 * i + 0] = gx[0];
        grad_x[3 * i + 1] = gx[1];
        grad_x[3 * i + 2] = gx[2];
    }
}
