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
 * needed; each writes its whole part, zeros included); the position backward parallelises over points.
 */
#include <math.h>
#include <string.h>
#include <stdint.h>

typedef struct {
    float scale;
    uint32_t resolution;
    uint32_t size;      /* entries in this level */
    uint32_t offset;    /* first entry of this level in the table */
    uint32_t dense;     /* 1: dense indexing, 0: hashed */
    float shift;        /* added to scale * x: 0.5 (tiny-cuda-nn) or 0 (nerfstudio) */
    uint32_t ceil_upper; /* 1: upper corner ceil(pos) (nerfstudio), 0: floor(pos) + 1 (tiny-cuda-nn) */
    uint32_t mask;      /* size - 1 where size is a power of two (index % size == index & mask), else 0 */
} Level;

static inline uint32_t corner_index(const Level* lv, uint32_t cx, uint32_t cy, uint32_t cz) {
    uint32_t index;
    if (lv->dense) {
        index = cx + cy * lv->resolution + cz * lv->resolution * lv->resolution;
    } else {
        index = (cx * 1u) ^ (cy * 2654435761u) ^ (cz * 805459861u);
    }
    /* A hashed level's size is a power of two: a mask instead of an integer division (8 per point and level). */
    return lv->offset + (lv->mask ? index & lv->mask : index % lv->size);
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

/* One hashed level of two features, the common case, written so that the compiler can run it over
 * several points at once (omp simd: gathers on AVX-512 and AVX2): the same operations in the same
 * order as corners() and the general loop below, so the same bits. */
/* Hashed levels of two features, the common case, a block of points at a time: the corners of every
 * point of the block first (one loop the compiler runs over several points at once, with -march and
 * -fno-trapping-math: see nerfdata.native), then the gathers (forward) or the scattered adds
 * (backward). The same operations in the same order as corners() and the general loops, so the same
 * bits; the positions are copied out of their xyz triplets so that the loop reads contiguous memory. */
#define NERFDATA_BLOCK 256

typedef struct {
    int32_t entry[8][NERFDATA_BLOCK]; /* first float of the corner's entry in the table */
    float weight[8][NERFDATA_BLOCK];
} BlockCorners;

static int fast_level(const Level* lv, int32_t features) {
    return features == 2 && !lv->dense && lv->mask && (uint64_t)(lv->offset + lv->size) * 2u < (1u << 31);
}

static void block_corners(const float* restrict x, int64_t begin, int32_t m, const Level* lv, BlockCorners* bc) {
    float xs[NERFDATA_BLOCK], ys[NERFDATA_BLOCK], zs[NERFDATA_BLOCK];
    for (int32_t j = 0; j < m; ++j) {
        xs[j] = x[3 * (begin + j)];
        ys[j] = x[3 * (begin + j) + 1];
        zs[j] = x[3 * (begin + j) + 2];
    }
    const float scale = lv->scale, shift = lv->shift;
    const uint32_t mask = lv->mask, offset = lv->offset, ceil_upper = lv->ceil_upper;
#pragma omp simd
    for (int32_t j = 0; j < m; ++j) {
        float px = fmaf(scale, xs[j], shift), py = fmaf(scale, ys[j], shift), pz = fmaf(scale, zs[j], shift);
        float lx = floorf(px), ly = floorf(py), lz = floorf(pz);
        float fx = px - lx, fy = py - ly, fz = pz - lz;
        uint32_t cx = (uint32_t)(int32_t)lx, cy = (uint32_t)(int32_t)ly, cz = (uint32_t)(int32_t)lz;
        uint32_t sx = ceil_upper ? (uint32_t)(fx != 0.0f) : 1u, sy = ceil_upper ? (uint32_t)(fy != 0.0f) : 1u;
        uint32_t sz = ceil_upper ? (uint32_t)(fz != 0.0f) : 1u;
        /* the hash's terms x * 1, y * 2654435761, z * 805459861 at the lower and the upper corner */
        uint32_t hx0 = cx, hx1 = cx + sx;
        uint32_t hy0 = cy * 2654435761u, hy1 = (cy + sy) * 2654435761u;
        uint32_t hz0 = cz * 805459861u, hz1 = (cz + sz) * 805459861u;
#define NERFDATA_CORNER(c, wx, wy, wz, hx, hy, hz)                                           \
        bc->weight[c][j] = ((1.0f * (wx)) * (wy)) * (wz);                                   \
        bc->entry[c][j] = (int32_t)((offset + (((hx) ^ (hy) ^ (hz)) & mask)) * 2u);
        NERFDATA_CORNER(0, 1.0f - fx, 1.0f - fy, 1.0f - fz, hx0, hy0, hz0)
        NERFDATA_CORNER(1, fx, 1.0f - fy, 1.0f - fz, hx1, hy0, hz0)
        NERFDATA_CORNER(2, 1.0f - fx, fy, 1.0f - fz, hx0, hy1, hz0)
        NERFDATA_CORNER(3, fx, fy, 1.0f - fz, hx1, hy1, hz0)
        NERFDATA_CORNER(4, 1.0f - fx, 1.0f - fy, fz, hx0, hy0, hz1)
        NERFDATA_CORNER(5, fx, 1.0f - fy, fz, hx1, hy0, hz1)
        NERFDATA_CORNER(6, 1.0f - fx, fy, fz, hx0, hy1, hz1)
        NERFDATA_CORNER(7, fx, fy, fz, hx1, hy1, hz1)
#undef NERFDATA_CORNER
    }
}

static void fast_level_forward(const float* x, int64_t n, const float* table, const Level* lv, int32_t stride,
                               float* out) {
#pragma omp parallel for schedule(static)
    for (int64_t begin = 0; begin < n; begin += NERFDATA_BLOCK) {
        const int32_t m = (int32_t)(begin + NERFDATA_BLOCK < n ? NERFDATA_BLOCK : n - begin);
        BlockCorners bc;
        float r0s[NERFDATA_BLOCK], r1s[NERFDATA_BLOCK];
        block_corners(x, begin, m, lv, &bc);
#pragma omp simd
        for (int32_t j = 0; j < m; ++j) {
            float r0 = 0.0f, r1 = 0.0f;
            for (int c = 0; c < 8; ++c) {
                r0 += bc.weight[c][j] * table[bc.entry[c][j]];
                r1 += bc.weight[c][j] * table[bc.entry[c][j] + 1];
            }
            r0s[j] = r0;
            r1s[j] = r1;
        }
        for (int32_t j = 0; j < m; ++j) {
            out[(begin + j) * stride] = r0s[j];
            out[(begin + j) * stride + 1] = r1s[j];
        }
    }
}

static void fast_level_backward(const float* x, int64_t n, const float* grad_out, const Level* lv, int32_t stride,
                                float* grad_table) {
    BlockCorners bc;
    for (int64_t begin = 0; begin < n; begin += NERFDATA_BLOCK) {
        const int32_t m = (int32_t)(begin + NERFDATA_BLOCK < n ? NERFDATA_BLOCK : n - begin);
        block_corners(x, begin, m, lv, &bc);
        for (int32_t j = 0; j < m; ++j) {
            const float g0 = grad_out[(begin + j) * stride], g1 = grad_out[(begin + j) * stride + 1];
            for (int c = 0; c < 8; ++c) {
                float* target = grad_table + bc.entry[c][j];
                target[0] += bc.weight[c][j] * g0;
                target[1] += bc.weight[c][j] * g1;
            }
        }
    }
}

void hashgrid_forward(const float* x, int64_t n, const float* table, const Level* levels, int32_t num_levels,
                      int32_t features, float* out) {
    /* Level by level (as tiny-cuda-nn's blocks do): one level's table stays in cache for all points. */
    for (int32_t l = 0; l < num_levels; ++l) {
        if (fast_level(&levels[l], features)) {
            fast_level_forward(x, n, table, &levels[l], num_levels * features, out + l * features);
            continue;
        }
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
        /* Each level zeroes its own part of the table's gradient (the levels tile the table), in parallel. */
        memset(grad_table + (int64_t)levels[l].offset * features, 0, (size_t)levels[l].size * features * sizeof(float));
        if (fast_level(&levels[l], features)) {
            fast_level_backward(x, n, grad_out + l * features, &levels[l], num_levels * features, grad_table);
            continue;
        }
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
