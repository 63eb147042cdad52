/*
 * Fused CPU ray marching for nerfdata (compiled on first use by nerfdata.native, loaded with ctypes).
 *
 * One round of the fast marcher: for each ray, starting at step index cursor[i], collect the next
 * (up to) k steps whose interval midpoint t = t_near + (s + 0.5) * step lies in an occupied cell of
 * the bitfield (every step when bits is NULL), stopping at num_steps[i]. The PyTorch twin is
 * nerfdata.render.marching.next_samples_torch; the arithmetic is the same, in the same order, in
 * float32 (compiled with -std=c99, so no fused multiply-adds are introduced).
 */
#include <math.h>
#include <stdint.h>

static inline int occupied(const uint8_t* bits, const float* aabb, int32_t res, float x, float y, float z) {
    if (!bits) return 1;
    float p[3] = {x, y, z};
    int64_t cell[3];
    for (int d = 0; d < 3; ++d) {
        float u = floorf((p[d] - aabb[d]) / (aabb[3 + d] - aabb[d]) * (float)res);
        if (!(u >= 0.0f && u < (float)res)) return 0; /* outside the box (or NaN) */
        cell[d] = (int64_t)u;
    }
    int64_t flat = (cell[0] * res + cell[1]) * res + cell[2];
    return (bits[flat >> 3] >> (flat & 7)) & 1;
}

void march_next(int64_t n, const float* origins, const float* dirs, const float* t_near, const int64_t* num_steps,
                const int64_t* cursor, float step, const uint8_t* bits, const float* aabb, int32_t res, int32_t k,
                int64_t* out_steps, int32_t* out_count, int64_t* out_cursor) {
#pragma omp parallel for schedule(dynamic, 64)
    for (int64_t i = 0; i < n; ++i) {
        const float* o = origins + 3 * i;
        const float* d = dirs + 3 * i;
        int64_t s = cursor[i];
        int32_t count = 0;
        while (s < num_steps[i] && count < k) {
            float t = (t_near[i] + (float)s * step) + 0.5f * step;
            if (occupied(bits, aabb, res, o[0] + d[0] * t, o[1] + d[1] * t, o[2] + d[2] * t)) {
                out_steps[i * k + count] = s;
                ++count;
            }
            ++s;
        }
        for (int32_t j = count; j < k; ++j) out_steps[i * k + j] = 0;
        out_count[i] = count;
        out_cursor[i] = s;
    }
}
