/* cblas wrappers: the only translation unit that includes cblas.h. */
#include <cblas.h>

#include "blas/blas.h"

void fxp__blas_threads(int n)
{
    if (n < 1) n = 1;
    if (openblas_get_num_threads() != n) openblas_set_num_threads(n);
}

void fxp__sgemm(fxp_ctx *ctx, int trans_a, int trans_b, int m, int n, int k, float alpha,
                const float *a, int lda, const float *b, int ldb, float beta, float *c, int ldc)
{
    if (m <= 0 || n <= 0) return;
    fxp__blas_threads(ctx ? ctx->n_threads : 1);
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, m, n, k, alpha, a, lda, b, ldb, beta, c,
                ldc);
}

void fxp__sgemm_serial(int trans_a, int trans_b, int m, int n, int k, float alpha,
                       const float *a, int lda, const float *b, int ldb, float beta, float *c,
                       int ldc)
{
    if (m <= 0 || n <= 0) return;
    /* Inside a parallel region OpenBLAS (OpenMP build) runs serially on its
     * own; outside one, a single-thread count is set explicitly. */
#if FXP_HAVE_OPENMP
    extern int omp_in_parallel(void);
    if (!omp_in_parallel()) fxp__blas_threads(1);
#else
    fxp__blas_threads(1);
#endif
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, m, n, k, alpha, a, lda, b, ldb, beta, c,
                ldc);
}

void fxp__sgemv(fxp_ctx *ctx, int trans_a, int m, int n, float alpha, const float *a, int lda,
                const float *x, float beta, float *y)
{
    if (m <= 0 || n <= 0) return;
    fxp__blas_threads(ctx ? ctx->n_threads : 1);
    cblas_sgemv(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, m, n, alpha, a, lda, x, 1,
                beta, y, 1);
}

const char *fxp__blas_config(void) { return openblas_get_config(); }
const char *fxp__blas_corename(void) { return openblas_get_corename(); }

int fxp__blas_has_avx512_gemm(void)
{
    const char *c = openblas_get_corename();
    if (!c) return 0;
    static const char *const wide[] = { "skylakex", "cooperlake", "sapphirerapids" };
    for (size_t i = 0; i < sizeof wide / sizeof wide[0]; i++) {
        const char *a = c, *b = wide[i];
        while (*a && *b && (*a | 0x20) == *b) a++, b++;
        if (!*a && !*b) return 1;
    }
    return 0;
}
