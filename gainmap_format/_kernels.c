/*
 * Fused CPU kernels for the network of spec §6 and the decode equations of spec §7.
 *
 * ONNX Runtime evaluates the canonical graph one operator at a time, writing every
 * intermediate (N, W) tensor to memory; these kernels keep a pixel's whole computation in
 * registers instead. They compute the same function as the graph: the first layer as five
 * table lookups, two hidden layers and the output layer, then (for decoding) SDR to PQ, the
 * residual and PQ to cd/m². Results agree with the graph to float32 rounding; the tests check
 * this against ONNX Runtime and the numpy reference.
 *
 * Sine, exp2 and log2 are short polynomials written so that the compiler vectorises the loops
 * over a pixel's neurons (libm's calls would not vectorise). Sines of arguments beyond
 * SIN_FAST_LIMIT, and NaNs, go to libm, so the result never depends on the fast path's range.
 *
 * Two entry points, each splitting its work over threads of its own (POSIX threads; one thread
 * elsewhere) with the GIL released:
 *   fit_batch - forward and backward pass over a batch of sampled pixels: the loss and the
 *               gradients of the lookup tables and of the later layers (training).
 *   decode    - the HDR rendition of a whole image (decoding).
 * Hot functions are compiled three times on x86-64 with GCC or Clang (AVX-512, AVX2+FMA and
 * baseline) and the module picks one when it loads (see choose_variant), so one build runs
 * everywhere. Elsewhere (arm64, other compilers that take GNU C vector extensions) there is one
 * build, the compiler's own target: the eight-float vectors become two NEON registers on arm64.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifndef _WIN32
#include <pthread.h>
#define HAVE_THREADS 1
#endif

/*
 * Where GCC or Clang (both define __GNUC__ and take the same target attributes and CPU
 * builtins) builds for x86-64 Linux or macOS, the hot loops are compiled for x86-64-v4
 * (AVX-512: 32 vector registers for the register tiles, masked tails), for x86-64-v3 (AVX2+FMA)
 * and for the baseline, and the module picks one when it loads. The choice is made here rather
 * than by target_clones so that GAINMAP_KERNEL can force a build on any CPU: the tests then
 * cover, on one machine, the paths that CPUs without AVX-512 or AVX2 take.
 */
#if defined(__GNUC__) && defined(__x86_64__) && (defined(__linux__) || defined(__APPLE__))
#define HAVE_X86_64_LEVELS 1
#define TARGET_X86_64_V3 __attribute__((target("arch=x86-64-v3")))
#define TARGET_X86_64_V4 __attribute__((target("arch=x86-64-v4")))
#endif
#define INLINE static inline __attribute__((always_inline))

#define LEVELS 256
#define FIT_BLOCK 8
#define DECODE_BLOCK 8
/* Rows per unit of decoding work: small enough to balance threads, large enough to amortise. */
#define DECODE_BAND_ROWS 16
#define MAX_THREADS 64
/* Beyond this the three-part reduction by pi/2 stops being exact in float32 (as in Cephes). */
#define SIN_FAST_LIMIT 8192.0f

/* SMPTE ST 2084 constants (spec §7.1, §7.6). */
#define PQ_M1 (2610.0f / 16384.0f)
#define PQ_M2 (2523.0f / 4096.0f * 128.0f)
#define PQ_C1 (3424.0f / 4096.0f)
#define PQ_C2 (2413.0f / 4096.0f * 32.0f)
#define PQ_C3 (2392.0f / 4096.0f * 32.0f)

INLINE int32_t float_bits(float f) {
    int32_t i;
    memcpy(&i, &f, sizeof i);
    return i;
}

INLINE float bits_float(int32_t i) {
    float f;
    memcpy(&f, &i, sizeof f);
    return f;
}

/* Eight floats, loaded and stored unaligned: GCC's vector extension, AVX or two SSE registers. */
typedef float v8 __attribute__((vector_size(32)));
typedef float v8u __attribute__((vector_size(32), aligned(4)));
typedef int32_t v8i __attribute__((vector_size(32)));

INLINE v8 load8(const float *p) { return *(const v8u *)p; }
INLINE void store8(float *p, v8 v) { *(v8u *)p = v; }
/* A shuffle of lane 0 into every lane is one broadcast; an initialiser list of eight copies
 * sometimes becomes eight inserts. Clang spells the shuffle differently from GCC. */
#ifdef __clang__
INLINE v8 splat8(float x) { return __builtin_shufflevector((v8){x}, (v8){x}, 0, 0, 0, 0, 0, 0, 0, 0); }
#else
INLINE v8 splat8(float x) { return __builtin_shuffle((v8){x}, (v8i){0, 0, 0, 0, 0, 0, 0, 0}); }
#endif

/*
 * out[p] = bias + in[p] M for ``count`` rows of W floats (M is (W, W), row-major; bias may be
 * NULL). Register tiles of P rows by T eight-float columns, P T = 8, give eight independent
 * accumulator chains, enough to hide the multiply-add latency at every width; count must be
 * a multiple of P (4 for W <= 16, 2 for W = 32, 1 above).
 */
INLINE void matmul_rows(const int W, const int count, const float *restrict in, const float *restrict M,
                        const float *restrict bias, float *restrict out) {
    const int C = W / 8;
    const int P = C >= 4 ? (C >= 8 ? 1 : 2) : 4;
    const int T = 8 / P < C ? 8 / P : C;
    for (int p0 = 0; p0 < count; p0 += P) {
        for (int c0 = 0; c0 < C; c0 += T) {
            v8 acc[8];
#pragma GCC unroll 8
            for (int a = 0; a < P * T; a++) acc[a] = bias ? load8(bias + 8 * (c0 + a % T)) : splat8(0.0f);
            for (int k = 0; k < W; k++) {
                const float *restrict row = M + (size_t)k * W + 8 * c0;
                v8 weights[8];
#pragma GCC unroll 8
                for (int t = 0; t < T; t++) weights[t] = load8(row + 8 * t);
#pragma GCC unroll 8
                for (int p = 0; p < P; p++) {
                    const v8 x = splat8(in[(p0 + p) * W + k]);
#pragma GCC unroll 8
                    for (int t = 0; t < T; t++) acc[p * T + t] += x * weights[t];
                }
            }
#pragma GCC unroll 8
            for (int a = 0; a < P * T; a++) store8(out + (p0 + a / T) * W + 8 * (c0 + a % T), acc[a]);
        }
    }
}

/* Round to nearest by adding and removing 1.5 * 2^23; exact for |v| < 2^22. */
INLINE float round_nearest(float v) {
    const float magic = 12582912.0f;
    return (v + magic) - magic;
}

/*
 * sin and cos of eight values with |x| <= SIN_FAST_LIMIT: reduce by k pi/2 in three parts, then
 * Cephes' minimax polynomials on [-pi/4, pi/4]. Adding 1.5 * 2^23 rounds x 2/pi to the integer
 * k and leaves k's low bits, the quadrant, in the sum's mantissa: they swap sine and cosine and
 * set the signs without a conversion to integers.
 */
INLINE void sincos8(v8 x, v8 *sin_out, v8 *cos_out) {
    const v8 magic = splat8(12582912.0f);
    const v8i sign = (v8i){0} + (int32_t)0x80000000;
    v8 shifted = x * splat8(0.63661977236758134f) + magic;
    v8 k = shifted - magic;
    v8 r = ((x - k * splat8(1.5703125f)) - k * splat8(4.837512969970703125e-4f)) - k * splat8(7.54978995489188216e-8f);
    v8 z = r * r;
    v8 s = r + r * z * (splat8(-1.6666654611e-1f) + z * (splat8(8.3321608736e-3f) + z * splat8(-1.9515295891e-4f)));
    v8 c = splat8(1.0f) - splat8(0.5f) * z
           + z * z * (splat8(4.166664568298827e-2f) + z * (splat8(-1.388731625493765e-3f) + z * splat8(2.443315711809948e-5f)));
    v8i quadrant = (v8i)shifted;
    v8i odd = (quadrant << 31) >> 31;
    v8i sin_bits = ((v8i)s & ~odd) | ((v8i)c & odd);
    v8i cos_bits = ((v8i)c & ~odd) | ((v8i)s & odd);
    *sin_out = (v8)(sin_bits ^ ((quadrant << 30) & sign));
    *cos_out = (v8)(cos_bits ^ (((quadrant + 1) << 30) & sign));
}

/*
 * sin alone, for decoding, which needs no derivative: reduce by k pi (k = round(x / pi)), then
 * sin x = (-1)^k sin r with |r| <= pi/2, one odd Taylor polynomial to r^13 (error below 1e-9).
 */
INLINE v8 sin8(v8 x) {
    const v8 magic = splat8(12582912.0f);
    v8 shifted = x * splat8(0.31830988618379067f) + magic;
    v8 k = shifted - magic;
    v8 r = ((x - k * splat8(3.140625f)) - k * splat8(9.67502593994140625e-4f)) - k * splat8(1.509957990978376432e-7f);
    v8 z = r * r;
    v8 p = splat8(1.6059043836821613e-10f);
    p = p * z + splat8(-2.505210838544172e-08f);
    p = p * z + splat8(2.7557319223985893e-06f);
    p = p * z + splat8(-1.984126984126984e-04f);
    p = p * z + splat8(8.333333333333333e-03f);
    p = p * z + splat8(-1.6666666666666666e-01f);
    v8 value = r + r * z * p;
    return (v8)((v8i)value ^ ((v8i)shifted << 31));
}

/* 2^y for y in [-126, 127] (clamped): 2^round(y) from the exponent bits times a degree-7 Taylor polynomial. */
INLINE float exp2_fast(float y) {
    y = y < 127.0f ? y : 127.0f;
    y = y > -126.0f ? y : -126.0f;
    float n = round_nearest(y);
    float f = y - n;
    float p = 1.0f + f * (6.931471805599453e-1f + f * (2.402265069591007e-1f + f * (5.550410866482158e-2f
              + f * (9.618129107628477e-3f + f * (1.333355814642844e-3f + f * (1.540353039338161e-4f
              + f * 1.525273380405984e-5f))))));
    return p * bits_float(((int32_t)n + 127) << 23);
}

/* log2 of a positive normal x: exponent bits plus 2 atanh((m - 1)/(m + 1)) for the mantissa m near 1. */
INLINE float log2_fast(float x) {
    int32_t bits = float_bits(x);
    int32_t exponent = (bits >> 23) - 127;
    float m = bits_float((bits & 0x7fffff) | 0x3f800000);
    int32_t high = m > 1.41421356f;
    m = high ? m * 0.5f : m;
    float s = (m - 1.0f) / (m + 1.0f);
    float s2 = s * s;
    float ln_m = 2.0f * s * (1.0f + s2 * (0.33333333f + s2 * (0.2f + s2 * (0.14285714f + s2 * 0.11111111f))));
    return (float)(exponent + high) + ln_m * 1.4426950408889634f;
}

/* x^p for x >= 0 and p > 0; 0 for x = 0, for subnormal x and for NaN. */
INLINE float pow_positive(float x, float p) {
    float safe = x > 1e-37f ? x : 1.0f;
    float value = exp2_fast(p * log2_fast(safe));
    return x > 1e-37f ? value : 0.0f;
}

/* The hidden activation over n neurons, n a multiple of 8: values and derivatives (d may be NULL). */
INLINE void activate(const int n, int relu, const float *restrict z, float *restrict h, float *restrict d) {
    if (relu) {
        for (int j = 0; j < n; j++) {
            h[j] = z[j] > 0.0f ? z[j] : 0.0f;
            if (d) d[j] = z[j] > 0.0f ? 1.0f : 0.0f;
        }
        return;
    }
    v8i fast = (v8i){0} - 1;
    for (int j = 0; j < n; j += 8) {
        const v8 x = load8(z + j);
        if (d) {
            v8 sine, cosine;
            sincos8(x, &sine, &cosine);
            store8(h + j, sine);
            store8(d + j, cosine);
        } else {
            store8(h + j, sin8(x));
        }
        fast &= (v8)((v8i)x & ((v8i){0} + 0x7fffffff)) <= splat8(SIN_FAST_LIMIT);
    }
    int slow = 0;
    for (int lane = 0; lane < 8; lane++) slow |= !fast[lane];
    if (slow) {
        for (int j = 0; j < n; j++) {
            if (!(fabsf(z[j]) <= SIN_FAST_LIMIT)) {
                h[j] = sinf(z[j]);
                if (d) d[j] = cosf(z[j]);
            }
        }
    }
}

/* The tables and weights of one network (spec §6.2), as the kernels read them. */
typedef struct {
    const float *colour; /* (3, 256, W) colour tables */
    const float *row;    /* (H, W) row table with b1 added */
    const float *col;    /* (w, W) column table */
    const float *W2;     /* (W, W) */
    const float *W2T;    /* (W, W), W2 transposed (fitting only) */
    const float *b2;     /* (W,) */
    const float *W3T;    /* (3, W), W3 transposed */
    const float *b3;     /* (3,) */
    int relu;
} Network;

/* The first layer's sum for one pixel: three colour lookups, its row's and its column's (spec §6.3). */
INLINE void first_layer(const int W, const Network *net, const uint8_t *rgb, uint32_t y, uint32_t x,
                        float *restrict z) {
    const float *restrict cr = net->colour + (size_t)rgb[0] * W;
    const float *restrict cg = net->colour + (size_t)(LEVELS + rgb[1]) * W;
    const float *restrict cb = net->colour + (size_t)(2 * LEVELS + rgb[2]) * W;
    const float *restrict ry = net->row + (size_t)y * W;
    const float *restrict cx = net->col + (size_t)x * W;
    for (int j = 0; j < W; j++) z[j] = (((cr[j] + cg[j]) + cb[j]) + ry[j]) + cx[j];
}

/* Both hidden layers for B pixels whose first-layer sums are in z, (B, W); z is overwritten. */
INLINE void hidden_layers(const int W, const int B, const Network *net, float *restrict z, float *restrict h1,
                          float *restrict d1, float *restrict h2, float *restrict d2) {
    activate(B * W, net->relu, z, h1, d1);
    matmul_rows(W, B, h1, net->W2, net->b2, z);
    activate(B * W, net->relu, z, h2, d2);
}

/*
 * The output layer's weights as (W, 8) rows, W3 in the first three columns and zeros after, so
 * that a pixel's three outputs are one eight-lane accumulation: no horizontal sums.
 */
INLINE void pad_output_weights(const int W, const Network *net, float *restrict padded) {
    for (int k = 0; k < W; k++) {
        for (int lane = 0; lane < 8; lane++) padded[8 * k + lane] = lane < 3 ? net->W3T[lane * W + k] : 0.0f;
    }
}

/* out[p][0..2] = b3 + h2[p] W3 for B pixels (out is (B, 8); lanes 3-7 are zero). */
INLINE void output_layer(const int W, const int B, const Network *net, const float *restrict padded,
                         const float *restrict h2, float *restrict out) {
    const v8 bias = (v8){net->b3[0], net->b3[1], net->b3[2], 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
    v8 acc[B];
    for (int p = 0; p < B; p++) acc[p] = bias;
    for (int k = 0; k < W; k++) {
        const v8 w = load8(padded + 8 * k);
        for (int p = 0; p < B; p++) acc[p] += splat8(h2[p * W + k]) * w;
    }
    for (int p = 0; p < B; p++) store8(out + 8 * p, acc[p]);
}

/*
 * G += in^T g for B rows of W floats each: G[k][j] += sum over p of in[p][k] g[p][j]. Register
 * tiles of KT rows of G by T eight-float columns (KT T = 8) are loaded once per block of pixels
 * rather than once per pixel.
 */
INLINE void accumulate_outer(const int W, const int B, const float *restrict in, const float *restrict g,
                             float *restrict G) {
    const int C = W / 8;
    const int T = C < 8 ? C : 8;
    const int KT = 8 / T;
    for (int k0 = 0; k0 < W; k0 += KT) {
        for (int c0 = 0; c0 < C; c0 += T) {
            v8 acc[8];
#pragma GCC unroll 8
            for (int a = 0; a < KT * T; a++) acc[a] = load8(G + (size_t)(k0 + a / T) * W + 8 * (c0 + a % T));
            for (int p = 0; p < B; p++) {
                v8 columns[8];
#pragma GCC unroll 8
                for (int t = 0; t < T; t++) columns[t] = load8(g + p * W + 8 * (c0 + t));
#pragma GCC unroll 8
                for (int kk = 0; kk < KT; kk++) {
                    const v8 x = splat8(in[p * W + k0 + kk]);
#pragma GCC unroll 8
                    for (int t = 0; t < T; t++) acc[kk * T + t] += x * columns[t];
                }
            }
#pragma GCC unroll 8
            for (int a = 0; a < KT * T; a++) store8(G + (size_t)(k0 + a / T) * W + 8 * (c0 + a % T), acc[a]);
        }
    }
}

/* Gradients of one chunk, accumulated into the caller's (zeroed) buffers. */
typedef struct {
    float *colour; /* (3, 256, W) */
    float *row;    /* (H, W) */
    float *col;    /* (w, W) */
    float *W2;     /* (W, W) */
    float *b2;     /* (W,) */
    float *W3T;    /* (3, W) */
    float *b3;     /* (3,) */
} Gradients;

INLINE void scatter_first_layer(const int W, const Gradients *g, const uint8_t *rgb, uint32_t y, uint32_t x,
                                const float *restrict g1) {
    float *restrict gr = g->colour + (size_t)rgb[0] * W;
    float *restrict gg = g->colour + (size_t)(LEVELS + rgb[1]) * W;
    float *restrict gb = g->colour + (size_t)(2 * LEVELS + rgb[2]) * W;
    float *restrict gy = g->row + (size_t)y * W;
    float *restrict gx = g->col + (size_t)x * W;
    for (int c = 0; c < W; c += 8) {
        const v8 g = load8(g1 + c);
        store8(gr + c, load8(gr + c) + g);
        store8(gg + c, load8(gg + c) + g);
        store8(gb + c, load8(gb + c) + g);
        store8(gy + c, load8(gy + c) + g);
        store8(gx + c, load8(gx + c) + g);
    }
}

/* How many pixels ahead to prefetch: random pixels of a large image miss every cache. */
#define PREFETCH_DISTANCE 8

/*
 * Mean squared error over the chunk's pixels and its gradients. ``scale`` is 2 / (3 N) for the
 * whole batch's N, so that chunk gradients add up to the batch's. Returns the sum of squared
 * errors, or -1 when an index is out of range (nothing is read out of bounds).
 */
INLINE double fit_chunk_impl(const int W, const Network *net, const Gradients *grad, const int64_t *index,
                             int64_t count, const uint8_t *code, const float *target, int64_t pixels, int64_t width,
                             float scale) {
    enum { B = FIT_BLOCK };
    /* Gradient buffers never alias the network or the image: say so, or every store reloads. */
    float *restrict g_b2 = grad->b2, *restrict g_b3 = grad->b3, *restrict g_W2 = grad->W2, *restrict g_W3T = grad->W3T;
    const float *restrict W3T = net->W3T;
    const uint32_t row_length = (uint32_t)width;
    double loss = 0.0;
    float z[B * W], h1[B * W], d1[B * W], h2[B * W], d2[B * W], g2[B * W], g1[B * W], out[8 * B];
    float W3_padded[8 * W];
    pad_output_weights(W, net, W3_padded);
    const uint8_t *rgb[B];
    uint32_t ys[B], xs[B];
    for (int64_t start = 0; start < count; start += B) {
        const int in_block = count - start < B ? (int)(count - start) : B;
        float e[B][3];
        for (int p = 0; p < B; p++) {
            /* Padding lanes repeat the block's first pixel with zero error: they add nothing. */
            const int64_t at = start + (p < in_block ? p : 0);
            if (at + PREFETCH_DISTANCE < count) {
                const int64_t ahead = index[at + PREFETCH_DISTANCE];
                if (ahead >= 0 && ahead < pixels) {
                    __builtin_prefetch(code + 3 * ahead);
                    __builtin_prefetch(target + 3 * ahead);
                }
            }
            const int64_t i = index[at];
            if (i < 0 || i >= pixels) return -1.0;
            /* pixels < 2^32 (the codec's size limit is far lower): 32-bit division is cheaper. */
            ys[p] = (uint32_t)i / row_length;
            xs[p] = (uint32_t)i - ys[p] * row_length;
            rgb[p] = code + 3 * i;
            for (int m = 0; m < 3; m++) e[p][m] = p < in_block ? -target[3 * i + m] : 0.0f;
            first_layer(W, net, rgb[p], ys[p], xs[p], z + p * W);
        }
        hidden_layers(W, B, net, z, h1, d1, h2, d2);
        output_layer(W, B, net, W3_padded, h2, out);
        for (int p = 0; p < B; p++) {
            for (int m = 0; m < 3; m++) {
                if (p < in_block) e[p][m] += out[8 * p + m];
                loss += (double)e[p][m] * e[p][m];
                e[p][m] *= scale;
                g_b3[m] += e[p][m];
            }
            for (int k = 0; k < W; k++) {
                g2[p * W + k] = (W3T[k] * e[p][0] + W3T[W + k] * e[p][1] + W3T[2 * W + k] * e[p][2]) * d2[p * W + k];
                g_b2[k] += g2[p * W + k];
            }
        }
        for (int m = 0; m < 3; m++) {
            for (int k = 0; k < W; k++) {
                float sum = g_W3T[m * W + k];
                for (int p = 0; p < B; p++) sum += h2[p * W + k] * e[p][m];
                g_W3T[m * W + k] = sum;
            }
        }
        matmul_rows(W, B, g2, net->W2T, NULL, g1);
        for (int q = 0; q < B * W; q++) g1[q] *= d1[q];
        for (int p = 0; p < in_block; p++) scatter_first_layer(W, grad, rgb[p], ys[p], xs[p], g1 + p * W);
        accumulate_outer(W, B, h1, g2, g_W2);
    }
    return loss;
}

INLINE double fit_chunk_any(int W, const Network *net, const Gradients *grad, const int64_t *index, int64_t count,
                            const uint8_t *code, const float *target, int64_t pixels, int64_t width, float scale) {
    switch (W) {
    case 8: return fit_chunk_impl(8, net, grad, index, count, code, target, pixels, width, scale);
    case 16: return fit_chunk_impl(16, net, grad, index, count, code, target, pixels, width, scale);
    case 32: return fit_chunk_impl(32, net, grad, index, count, code, target, pixels, width, scale);
    case 64: return fit_chunk_impl(64, net, grad, index, count, code, target, pixels, width, scale);
    default: return fit_chunk_impl(128, net, grad, index, count, code, target, pixels, width, scale);
    }
}

#define FIT_CHUNK_PARAMETERS                                                                                   \
    int W, const Network *net, const Gradients *grad, const int64_t *index, int64_t count, const uint8_t *code, \
        const float *target, int64_t pixels, int64_t width, float scale
#define FIT_CHUNK_ARGUMENTS W, net, grad, index, count, code, target, pixels, width, scale

static double fit_chunk_baseline(FIT_CHUNK_PARAMETERS) { return fit_chunk_any(FIT_CHUNK_ARGUMENTS); }
#ifdef HAVE_X86_64_LEVELS
TARGET_X86_64_V3 static double fit_chunk_v3(FIT_CHUNK_PARAMETERS) { return fit_chunk_any(FIT_CHUNK_ARGUMENTS); }
TARGET_X86_64_V4 static double fit_chunk_v4(FIT_CHUNK_PARAMETERS) { return fit_chunk_any(FIT_CHUNK_ARGUMENTS); }
#endif
static double (*fit_chunk_dispatch)(FIT_CHUNK_PARAMETERS) = fit_chunk_baseline;

/* Spec §7: what turns the network's output into the rendition. */
typedef struct {
    const float *lut;    /* (256,) base code value to linear light / 10000 */
    const float *matrix; /* (3, 3) base primaries to BT.2020, row-major */
    float scale;         /* the network output's affine map: f = o * scale + offset */
    float offset;
    float weight;        /* display weight w, for a gain map's f^w */
    float epsilon;
    float linear_scale;  /* linear output per unit of PQ's Y (10000 cd/m² over the output's unit) */
    int gamma;           /* 1: exponential residual, 0: multiplicative */
} DecodeEquations;

/* PQ inverse EOTF (spec §7.1) of linear light / 10000, already clipped to [0, 1]. */
INLINE float pq_encode(float y) {
    float ym1 = pow_positive(y, PQ_M1);
    return pow_positive((PQ_C1 + PQ_C2 * ym1) / (1.0f + PQ_C3 * ym1), PQ_M2);
}

/* PQ EOTF (spec §7.6): code value in [0, 1] to linear light, in units of 10000 cd/m² / ``scale``. */
INLINE float pq_decode(float pq, float scale) {
    float e = pow_positive(pq, 1.0f / PQ_M2);
    float numerator = e - PQ_C1;
    numerator = numerator > 0.0f ? numerator : 0.0f;
    return pow_positive(numerator / (PQ_C2 - PQ_C3 * e), 1.0f / PQ_M1) * scale;
}

/* Spec §7.3: the rendition's PQ from h = (base + e) · f or (base + e)^f; NaN becomes 0, then clip. */
INLINE float finish_residual(float h, float epsilon) {
    float value = h - epsilon;
    value = value == value ? value : 0.0f;
    value = value > 0.0f ? value : 0.0f;
    return value < 1.0f ? value : 1.0f;
}

/* Spec §7.4-7.5 for B values of an exponential residual: h = (base + e)^f. */
INLINE void apply_gamma(const int B, const DecodeEquations *eq, const float *restrict base_pq,
                        const float *restrict output, float *restrict pq) {
    for (int p = 0; p < B; p++) {
        float f = output[p] * eq->scale + eq->offset;
        float t = f * log2_fast(base_pq[p] + eq->epsilon);
        /* Both arms computed, then selected: a branch here would stop vectorisation. */
        float power = exp2_fast(t);
        float h = t == t ? power : t;
        pq[p] = finish_residual(h, eq->epsilon);
    }
}

/* Spec §7.4-7.5 for B values of a multiplicative residual: h = (base + e) · max(f, 0)^w. */
INLINE void apply_gain(const int B, const DecodeEquations *eq, const float *restrict base_pq,
                       const float *restrict output, float *restrict pq) {
    for (int p = 0; p < B; p++) {
        float f = output[p] * eq->scale + eq->offset;
        float positive = f > 0.0f ? f : 0.0f;
        /* 0^0 is 1, as for ONNX's Pow: at weight 0 the base is shown unchanged. */
        float powered = pow_positive(positive, eq->weight);
        float factor = eq->weight == 0.0f ? 1.0f : powered;
        float h = (base_pq[p] + eq->epsilon) * (f == f ? factor : f);
        pq[p] = finish_residual(h, eq->epsilon);
    }
}

INLINE void decode_rows_impl(const int W, const Network *net, const DecodeEquations *eq, const uint8_t *code,
                             int64_t width, int64_t y0, int64_t y1, float *pq_out, float *linear_out) {
    enum { B = DECODE_BLOCK };
    float z[B * W], h1[B * W], h2[B * W], outputs[8 * B];
    float out[3][B], lin[3][B];
    float W3_padded[8 * W];
    pad_output_weights(W, net, W3_padded);
    const float *M = eq->matrix;
    for (int64_t y = y0; y < y1; y++) {
        for (int64_t x0 = 0; x0 < width; x0 += B) {
            const int in_block = width - x0 < B ? (int)(width - x0) : B;
            for (int p = 0; p < B; p++) {
                /* Padding lanes repeat the last pixel; they are computed but never stored. */
                const int64_t x = x0 + (p < in_block ? p : in_block - 1);
                const uint8_t *rgb = code + 3 * (y * width + x);
                first_layer(W, net, rgb, (uint32_t)y, (uint32_t)x, z + p * W);
                for (int m = 0; m < 3; m++) lin[m][p] = eq->lut[rgb[m]];
            }
            hidden_layers(W, B, net, z, h1, NULL, h2, NULL);
            output_layer(W, B, net, W3_padded, h2, outputs);
            for (int p = 0; p < B; p++) {
                for (int m = 0; m < 3; m++) out[m][p] = outputs[8 * p + m];
            }
            float base[3][B], pq[3][B], linear[3][B];
            for (int m = 0; m < 3; m++) {
                for (int p = 0; p < B; p++) {
                    float d = M[3 * m] * lin[0][p] + M[3 * m + 1] * lin[1][p] + M[3 * m + 2] * lin[2][p];
                    d = d > 0.0f ? d : 0.0f;
                    base[m][p] = pq_encode(d < 1.0f ? d : 1.0f);
                }
                if (eq->gamma) {
                    apply_gamma(B, eq, base[m], out[m], pq[m]);
                } else {
                    apply_gain(B, eq, base[m], out[m], pq[m]);
                }
                for (int p = 0; p < B; p++) linear[m][p] = pq_decode(pq[m][p], eq->linear_scale);
            }
            float *pq_row = pq_out ? pq_out + 3 * (y * width + x0) : NULL;
            float *linear_row = linear_out + 3 * (y * width + x0);
            for (int p = 0; p < in_block; p++) {
                for (int m = 0; m < 3; m++) linear_row[3 * p + m] = linear[m][p];
            }
            if (pq_out) {
                for (int p = 0; p < in_block; p++) {
                    for (int m = 0; m < 3; m++) pq_row[3 * p + m] = pq[m][p];
                }
            }
        }
    }
}

INLINE void decode_rows_any(int W, const Network *net, const DecodeEquations *eq, const uint8_t *code,
                            int64_t width, int64_t y0, int64_t y1, float *pq_out, float *linear_out) {
    switch (W) {
    case 8: decode_rows_impl(8, net, eq, code, width, y0, y1, pq_out, linear_out); break;
    case 16: decode_rows_impl(16, net, eq, code, width, y0, y1, pq_out, linear_out); break;
    case 32: decode_rows_impl(32, net, eq, code, width, y0, y1, pq_out, linear_out); break;
    case 64: decode_rows_impl(64, net, eq, code, width, y0, y1, pq_out, linear_out); break;
    default: decode_rows_impl(128, net, eq, code, width, y0, y1, pq_out, linear_out); break;
    }
}

#define DECODE_ROWS_PARAMETERS                                                                           \
    int W, const Network *net, const DecodeEquations *eq, const uint8_t *code, int64_t width, int64_t y0, \
        int64_t y1, float *pq_out, float *linear_out
#define DECODE_ROWS_ARGUMENTS W, net, eq, code, width, y0, y1, pq_out, linear_out

static void decode_rows_baseline(DECODE_ROWS_PARAMETERS) { decode_rows_any(DECODE_ROWS_ARGUMENTS); }
#ifdef HAVE_X86_64_LEVELS
TARGET_X86_64_V3 static void decode_rows_v3(DECODE_ROWS_PARAMETERS) { decode_rows_any(DECODE_ROWS_ARGUMENTS); }
TARGET_X86_64_V4 static void decode_rows_v4(DECODE_ROWS_PARAMETERS) { decode_rows_any(DECODE_ROWS_ARGUMENTS); }
#endif
static void (*decode_rows_dispatch)(DECODE_ROWS_PARAMETERS) = decode_rows_baseline;

/* ---------------------------------------------------------------- choosing a build */

/*
 * The build this CPU runs: "x86-64-v4" where it has AVX-512 (F, CD, BW, DQ, VL), "x86-64-v3"
 * where it has AVX2 and FMA, "baseline" otherwise. GAINMAP_KERNEL names a build to run instead,
 * if this CPU can: "baseline", or "x86-64-v3" on an AVX-512 CPU. Sets the dispatch pointers.
 */
static const char *choose_variant(void) {
    const char *requested = getenv("GAINMAP_KERNEL");
    if (requested != NULL && strcmp(requested, "baseline") == 0) return "baseline";
#ifdef HAVE_X86_64_LEVELS
    __builtin_cpu_init();
    const int v3 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    const int v4 = v3 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512cd") &&
                   __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
                   __builtin_cpu_supports("avx512vl");
    if (v4 && !(requested != NULL && strcmp(requested, "x86-64-v3") == 0)) {
        fit_chunk_dispatch = fit_chunk_v4;
        decode_rows_dispatch = decode_rows_v4;
        return "x86-64-v4";
    }
    if (v3) {
        fit_chunk_dispatch = fit_chunk_v3;
        decode_rows_dispatch = decode_rows_v3;
        return "x86-64-v3";
    }
#endif
    return "baseline";
}

/* ---------------------------------------------------------------- sampling */

/* SplitMix64 (Steele, Lea and Flood 2014): a well-mixed 64-bit value for each 64-bit input. */
static inline uint64_t splitmix64(uint64_t z) {
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Where the draws of one step start: every (seed, step) gives its own stream. */
static uint64_t sample_base(uint64_t seed, uint64_t step) { return splitmix64(splitmix64(seed) + step); }

/*
 * Draws first .. first + count - 1 of a step: uniform pixel indices in [0, pixels), with
 * replacement, as the high half of a 64 x 64-bit product (bias below pixels / 2^64). Counter-based,
 * so any part of a batch can be drawn on any thread and the batch is the same.
 */
static void sample_indices(uint64_t base, int64_t first, int64_t count, uint64_t pixels, int64_t *out) {
    for (int64_t j = 0; j < count; j++) {
        const unsigned __int128 product = (unsigned __int128)splitmix64(base + (uint64_t)(first + j)) * pixels;
        out[j] = (int64_t)(product >> 64);
    }
}

/* ---------------------------------------------------------------- threads */

typedef struct {
    void (*run)(void *context, int part);
    void *context;
    int part;
} Job;

#ifdef HAVE_THREADS
static void *job_main(void *argument) {
    Job *job = argument;
    job->run(job->context, job->part);
    return NULL;
}
#endif

/*
 * run(context, part) for every part in [0, parts), each on its own thread, the calling thread
 * taking part 0. Threads are started per call: tens of microseconds, against milliseconds of
 * work; where a thread cannot be started, its part runs on the calling thread.
 */
static void run_parallel(int parts, void (*run)(void *, int), void *context) {
#ifdef HAVE_THREADS
    pthread_t threads[MAX_THREADS];
    Job jobs[MAX_THREADS];
    int started[MAX_THREADS] = {0};
    for (int part = 1; part < parts; part++) {
        jobs[part] = (Job){run, context, part};
        started[part] = pthread_create(&threads[part], NULL, job_main, &jobs[part]) == 0;
        if (!started[part]) run(context, part);
    }
    run(context, 0);
    for (int part = 1; part < parts; part++) {
        if (started[part]) pthread_join(threads[part], NULL);
    }
#else
    for (int part = 0; part < parts; part++) run(context, part);
#endif
}

#define GRADIENT_ARRAYS 7

/* Gradients' arrays in field order, and their sizes in floats. */
static void gradient_arrays(const Gradients *g, int W, int64_t height, int64_t width, float *arrays[],
                            int64_t sizes[]) {
    float *const pointers[GRADIENT_ARRAYS] = {g->colour, g->row, g->col, g->W2, g->b2, g->W3T, g->b3};
    const int64_t counts[GRADIENT_ARRAYS] = {3 * LEVELS * W, height * W, width * W, (int64_t)W * W, W, 3 * W, 3};
    memcpy(arrays, pointers, sizeof pointers);
    memcpy(sizes, counts, sizeof counts);
}

/* Floats in one set of gradients. */
static int64_t gradient_floats(int W, int64_t height, int64_t width) {
    Gradients unused = {0};
    float *arrays[GRADIENT_ARRAYS];
    int64_t sizes[GRADIENT_ARRAYS], total = 0;
    gradient_arrays(&unused, W, height, width, arrays, sizes);
    for (int i = 0; i < GRADIENT_ARRAYS; i++) total += sizes[i];
    return total;
}

/* Point g's arrays into ``block``, gradient_floats() floats long. */
static void place_gradients(Gradients *g, int W, int64_t height, int64_t width, float *block) {
    float *unused[GRADIENT_ARRAYS];
    int64_t sizes[GRADIENT_ARRAYS];
    gradient_arrays(g, W, height, width, unused, sizes);
    float **fields[GRADIENT_ARRAYS] = {&g->colour, &g->row, &g->col, &g->W2, &g->b2, &g->W3T, &g->b3};
    for (int i = 0; i < GRADIENT_ARRAYS; i++) {
        *fields[i] = block;
        block += sizes[i];
    }
}

static void add_gradients(const Gradients *into, const Gradients *from, int W, int64_t height, int64_t width) {
    float *to[GRADIENT_ARRAYS], *add[GRADIENT_ARRAYS];
    int64_t sizes[GRADIENT_ARRAYS];
    gradient_arrays(into, W, height, width, to, sizes);
    gradient_arrays(from, W, height, width, add, sizes);
    for (int i = 0; i < GRADIENT_ARRAYS; i++) {
        for (int64_t j = 0; j < sizes[i]; j++) to[i][j] += add[i][j];
    }
}

typedef struct {
    int W, parts;
    const Network *net;
    Gradients grads[MAX_THREADS];
    double losses[MAX_THREADS];
    uint64_t base;
    int64_t count, pixels, width;
    const uint8_t *code;
    const float *target;
    float scale;
} FitBatch;

/* Pixels drawn at a time: their indices stay on the stack (no allocation per step). */
#define DRAW_CHUNK 1024

static void fit_part(void *context, int part) {
    FitBatch *batch = context;
    const int64_t start = batch->count * part / batch->parts, end = batch->count * (part + 1) / batch->parts;
    int64_t index[DRAW_CHUNK];
    if (part > 0) {
        float *arrays[GRADIENT_ARRAYS];
        int64_t sizes[GRADIENT_ARRAYS];
        gradient_arrays(&batch->grads[part], batch->W, batch->pixels / batch->width, batch->width, arrays, sizes);
        for (int i = 0; i < GRADIENT_ARRAYS; i++) memset(arrays[i], 0, (size_t)sizes[i] * sizeof(float));
    }
    double loss = 0.0;
    for (int64_t first = start; first < end; first += DRAW_CHUNK) {
        const int64_t count = end - first < DRAW_CHUNK ? end - first : DRAW_CHUNK;
        sample_indices(batch->base, first, count, (uint64_t)batch->pixels, index);
        const double chunk = fit_chunk_dispatch(batch->W, batch->net, &batch->grads[part], index, count, batch->code,
                                                batch->target, batch->pixels, batch->width, batch->scale);
        if (chunk < 0.0) {
            batch->losses[part] = chunk;
            return;
        }
        loss += chunk;
    }
    batch->losses[part] = loss;
}

typedef struct {
    int W;
    const Network *net;
    const DecodeEquations *eq;
    const uint8_t *code;
    int64_t width, height, next_band;
    float *pq_out, *linear_out;
} DecodeImage;

static void decode_part(void *context, int part) {
    DecodeImage *image = context;
    (void)part;
    for (;;) {
#ifdef HAVE_THREADS
        const int64_t band = __atomic_fetch_add(&image->next_band, 1, __ATOMIC_RELAXED);
#else
        const int64_t band = image->next_band++;
#endif
        const int64_t y0 = band * DECODE_BAND_ROWS;
        if (y0 >= image->height) return;
        const int64_t y1 = y0 + DECODE_BAND_ROWS < image->height ? y0 + DECODE_BAND_ROWS : image->height;
        decode_rows_dispatch(image->W, image->net, image->eq, image->code, image->width, y0, y1, image->pq_out,
                             image->linear_out);
    }
}

/* ---------------------------------------------------------------- Python bindings */

#define MAX_BUFFERS 24

typedef struct {
    Py_buffer views[MAX_BUFFERS];
    int count;
} Buffers;

static void release_all(Buffers *b) {
    for (int i = 0; i < b->count; i++) PyBuffer_Release(&b->views[i]);
    b->count = 0;
}

/* Take a C-contiguous buffer of exactly ``items`` elements of ``itemsize`` bytes. */
static void *take(Buffers *b, PyObject *obj, Py_ssize_t items, Py_ssize_t itemsize, int writable, const char *name) {
    Py_buffer *view = &b->views[b->count];
    int flags = PyBUF_C_CONTIGUOUS | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(obj, view, flags) < 0) return NULL;
    b->count++;
    if (view->len != items * itemsize) {
        PyErr_Format(PyExc_ValueError, "%s: expected %zd bytes (%zd items of %zd), got %zd", name,
                     items * itemsize, items, itemsize, view->len);
        return NULL;
    }
    return view->buf;
}

static int check_width(int W) {
    if (W == 8 || W == 16 || W == 32 || W == 64 || W == 128) return 0;
    PyErr_Format(PyExc_ValueError, "hidden width %d is not 8, 16, 32, 64 or 128", W);
    return -1;
}

static int clamp_threads(int threads) { return threads < 1 ? 1 : (threads > MAX_THREADS ? MAX_THREADS : threads); }

static PyObject *fit_batch(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *objects[19];
    Py_ssize_t height, width, count;
    unsigned long long seed, step;
    int W, relu, threads;
    float scale;
    if (!PyArg_ParseTuple(args, "nnipfiKKnOOOOOOOOOOOOOOOOOO", &height, &width, &W, &relu, &scale, &threads, &seed,
                          &step, &count, &objects[1], &objects[2], &objects[3], &objects[4], &objects[5],
                          &objects[6], &objects[7], &objects[8], &objects[9], &objects[10], &objects[11],
                          &objects[12], &objects[13], &objects[14], &objects[15], &objects[16], &objects[17],
                          &objects[18]))
        return NULL;
    if (check_width(W) < 0) return NULL;
    if (height < 1 || width < 1) return PyErr_Format(PyExc_ValueError, "image size %zd x %zd", width, height);
    if (count < 1) return PyErr_Format(PyExc_ValueError, "batch of %zd pixels", count);
    const Py_ssize_t pixels = height * width;
    Buffers b = {.count = 0};
    Network net = {.relu = relu};
    FitBatch batch = {.W = W, .net = &net, .pixels = pixels, .width = width, .scale = scale,
                      .base = sample_base(seed, step), .count = count};
    Gradients *out = &batch.grads[0];
    PyObject *result = NULL;
    if (!(batch.code = take(&b, objects[1], 3 * pixels, 1, 0, "code"))) goto done;
    if (!(batch.target = take(&b, objects[2], 3 * pixels, 4, 0, "target"))) goto done;
    if (!(net.colour = take(&b, objects[3], 3 * LEVELS * W, 4, 0, "colour"))) goto done;
    if (!(net.row = take(&b, objects[4], height * W, 4, 0, "row"))) goto done;
    if (!(net.col = take(&b, objects[5], width * W, 4, 0, "col"))) goto done;
    if (!(net.W2 = take(&b, objects[6], W * W, 4, 0, "W2"))) goto done;
    if (!(net.W2T = take(&b, objects[7], W * W, 4, 0, "W2T"))) goto done;
    if (!(net.b2 = take(&b, objects[8], W, 4, 0, "b2"))) goto done;
    if (!(net.W3T = take(&b, objects[9], 3 * W, 4, 0, "W3T"))) goto done;
    if (!(net.b3 = take(&b, objects[10], 3, 4, 0, "b3"))) goto done;
    if (!(out->colour = take(&b, objects[11], 3 * LEVELS * W, 4, 1, "grad colour"))) goto done;
    if (!(out->row = take(&b, objects[12], height * W, 4, 1, "grad row"))) goto done;
    if (!(out->col = take(&b, objects[13], width * W, 4, 1, "grad col"))) goto done;
    if (!(out->W2 = take(&b, objects[14], W * W, 4, 1, "grad W2"))) goto done;
    if (!(out->b2 = take(&b, objects[15], W, 4, 1, "grad b2"))) goto done;
    if (!(out->W3T = take(&b, objects[16], 3 * W, 4, 1, "grad W3T"))) goto done;
    if (!(out->b3 = take(&b, objects[17], 3, 4, 1, "grad b3"))) goto done;
    /* One part per thread, but not for a handful of pixels, and only as many parts after the first
     * as the caller's scratch holds sets of gradients (kept across steps: no allocation per step). */
    const int64_t floats = gradient_floats(W, height, width);
    Py_buffer *scratch = &b.views[b.count];
    if (PyObject_GetBuffer(objects[18], scratch, PyBUF_C_CONTIGUOUS | PyBUF_WRITABLE) < 0) goto done;
    b.count++;
    batch.parts = clamp_threads(threads);
    if (batch.parts > batch.count / 1024) batch.parts = batch.count / 1024 > 1 ? (int)(batch.count / 1024) : 1;
    if (batch.parts - 1 > (int64_t)(scratch->len / sizeof(float)) / floats) {
        batch.parts = 1 + (int)((int64_t)(scratch->len / sizeof(float)) / floats);
    }
    for (int part = 1; part < batch.parts; part++) {
        place_gradients(&batch.grads[part], W, height, width, (float *)scratch->buf + (part - 1) * floats);
    }
    double loss = 0.0;
    int failed = 0;
    Py_BEGIN_ALLOW_THREADS
    {
        float *arrays[GRADIENT_ARRAYS];
        int64_t sizes[GRADIENT_ARRAYS];
        gradient_arrays(out, W, height, width, arrays, sizes);
        for (int i = 0; i < GRADIENT_ARRAYS; i++) memset(arrays[i], 0, (size_t)sizes[i] * sizeof(float));
        run_parallel(batch.parts, fit_part, &batch);
        for (int part = 0; part < batch.parts; part++) {
            failed |= batch.losses[part] < 0.0;
            loss += batch.losses[part];
            if (part > 0) add_gradients(out, &batch.grads[part], W, height, width);
        }
    }
    Py_END_ALLOW_THREADS
    if (failed) {
        /* The sampler cannot draw an index outside the image, but the kernel checks each one. */
        PyErr_SetString(PyExc_SystemError, "fit_batch: a drawn pixel index fell outside the image");
        goto done;
    }
    result = PyFloat_FromDouble(loss);
done:
    release_all(&b);
    return result;
}

static PyObject *draw_indices(PyObject *self, PyObject *args) {
    (void)self;
    unsigned long long seed, step;
    Py_ssize_t count, pixels;
    PyObject *object;
    if (!PyArg_ParseTuple(args, "KKnnO", &seed, &step, &count, &pixels, &object)) return NULL;
    if (pixels < 1) return PyErr_Format(PyExc_ValueError, "an image of %zd pixels", pixels);
    Buffers b = {.count = 0};
    int64_t *out = take(&b, object, count, 8, 1, "out");
    if (out) sample_indices(sample_base(seed, step), 0, count, (uint64_t)pixels, out);
    release_all(&b);
    if (!out) return NULL;
    Py_RETURN_NONE;
}

static PyObject *decode(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *objects[12];
    Py_ssize_t height, width;
    int W, relu, gamma, threads;
    float scale, offset, weight, epsilon, linear_scale;
    if (!PyArg_ParseTuple(args, "nnippfffffiOOOOOOOOOOOO", &height, &width, &W, &relu, &gamma, &scale, &offset,
                          &weight, &epsilon, &linear_scale, &threads, &objects[0], &objects[1], &objects[2],
                          &objects[3], &objects[4], &objects[5], &objects[6], &objects[7], &objects[8], &objects[9],
                          &objects[10], &objects[11]))
        return NULL;
    if (check_width(W) < 0) return NULL;
    if (height < 1 || width < 1) return PyErr_Format(PyExc_ValueError, "image size %zd x %zd", width, height);
    const Py_ssize_t pixels = height * width;
    Buffers b = {.count = 0};
    Network net = {.relu = relu};
    DecodeEquations eq = {.scale = scale, .offset = offset, .weight = weight, .epsilon = epsilon,
                          .linear_scale = linear_scale, .gamma = gamma};
    DecodeImage image = {.W = W, .net = &net, .eq = &eq, .width = width, .height = height, .next_band = 0,
                         .pq_out = NULL};
    if (!(image.code = take(&b, objects[0], 3 * pixels, 1, 0, "code"))) goto fail;
    if (!(net.colour = take(&b, objects[1], 3 * LEVELS * W, 4, 0, "colour"))) goto fail;
    if (!(net.row = take(&b, objects[2], height * W, 4, 0, "row"))) goto fail;
    if (!(net.col = take(&b, objects[3], width * W, 4, 0, "col"))) goto fail;
    if (!(net.W2 = take(&b, objects[4], W * W, 4, 0, "W2"))) goto fail;
    if (!(net.b2 = take(&b, objects[5], W, 4, 0, "b2"))) goto fail;
    if (!(net.W3T = take(&b, objects[6], 3 * W, 4, 0, "W3T"))) goto fail;
    if (!(net.b3 = take(&b, objects[7], 3, 4, 0, "b3"))) goto fail;
    if (!(eq.lut = take(&b, objects[8], LEVELS, 4, 0, "lut"))) goto fail;
    if (!(eq.matrix = take(&b, objects[9], 9, 4, 0, "matrix"))) goto fail;
    /* None: no PQ output (a caller that wants only linear light saves the memory). */
    if (objects[10] != Py_None && !(image.pq_out = take(&b, objects[10], 3 * pixels, 4, 1, "pq"))) goto fail;
    if (!(image.linear_out = take(&b, objects[11], 3 * pixels, 4, 1, "linear"))) goto fail;
    threads = clamp_threads(threads);
    Py_BEGIN_ALLOW_THREADS
    run_parallel(threads, decode_part, &image);
    Py_END_ALLOW_THREADS
    release_all(&b);
    Py_RETURN_NONE;
fail:
    release_all(&b);
    return NULL;
}

static PyMethodDef methods[] = {
    {"fit_batch", fit_batch, METH_VARARGS,
     "fit_batch(height, width, hidden, relu, scale, threads, seed, step, count, code, target, colour, row, col,\n"
     "          W2, W2T, b2, W3T, b3, g_colour, g_row, g_col, g_W2, g_b2, g_W3T, g_b3, scratch)\n"
     "-> sum of squared errors"},
    {"draw_indices", draw_indices, METH_VARARGS,
     "draw_indices(seed, step, count, pixels, out) -> None: the pixel indices fit_batch draws"},
    {"decode", decode, METH_VARARGS,
     "decode(height, width, hidden, relu, gamma, scale, offset, weight, epsilon, linear_scale, threads,\n"
     "       code, colour, row, col, W2, b2, W3T, b3, lut, matrix, pq_out or None, linear_out) -> None"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_kernels", "Fused CPU kernels (see _kernels.c).", -1, methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__kernels(void) {
    PyObject *self = PyModule_Create(&module);
    if (self != NULL && PyModule_AddStringConstant(self, "variant", choose_variant()) < 0) {
        Py_DECREF(self);
        return NULL;
    }
    return self;
}
