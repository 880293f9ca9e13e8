/* The library's only door to BLAS.  Row-major float32 wrappers that set the
 * OpenBLAS thread count from the context before each call.  Called inside an
 * OpenMP parallel region, the OpenMP build of OpenBLAS runs single-threaded,
 * which is what per-image partitioning wants. */
#ifndef FXP_BLAS_H
#define FXP_BLAS_H

#include "core/internal.h"

/* C[M,N] = alpha * op(A)[M,K] op(B)[K,N] + beta * C, row-major;
 * op(X) = X^T when transX != 0; lda/ldb/ldc are row strides. */
void fxp__sgemm(fxp_ctx *ctx, int trans_a, int trans_b, int m, int n, int k, float alpha,
                const float *a, int lda, const float *b, int ldb, float beta, float *c, int ldc);

/* Same, always single-threaded: for use inside OpenMP parallel regions or for
 * products too small to be worth threads. */
void fxp__sgemm_serial(int trans_a, int trans_b, int m, int n, int k, float alpha,
                       const float *a, int lda, const float *b, int ldb, float beta, float *c,
                       int ldc);

/* y[M] = alpha * op(A) x + beta * y. */
void fxp__sgemv(fxp_ctx *ctx, int trans_a, int m, int n, float alpha, const float *a, int lda,
                const float *x, float beta, float *y);

/* OpenBLAS configuration string and core name, e.g. "OpenBLAS 0.3.21 ...". */
const char *fxp__blas_config(void);
const char *fxp__blas_corename(void);
/* 1 if OpenBLAS runs its AVX-512 GEMM kernels (SkylakeX, Cooperlake,
 * SapphireRapids; chosen at load from the CPU or OPENBLAS_CORETYPE). */
int fxp__blas_has_avx512_gemm(void);

/* Set the BLAS thread count (process-wide in OpenBLAS) if it differs. */
void fxp__blas_threads(int n);

#endif
