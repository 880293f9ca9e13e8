/* Double-precision references for the exponential tests: dense matrix
 * exponential by scaling and squaring with a [6/6] Pade approximant, LU
 * log|det|, and the largest singular value. */
#ifndef FXP_TEST_EXPM_REF_H
#define FXP_TEST_EXPM_REF_H

#include <math.h>
#include <stdlib.h>
#include <string.h>

static inline void ref_matmul(const double *a, const double *b, double *c, int n)
{
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            double s = 0;
            for (int k = 0; k < n; k++) s += a[i * n + k] * b[k * n + j];
            c[i * n + j] = s;
        }
}

/* Solve A X = B (n x n, in place in B) by Gaussian elimination with pivoting. */
static inline void ref_solve(double *a, double *b, int n)
{
    for (int k = 0; k < n; k++) {
        int p = k;
        for (int i = k + 1; i < n; i++)
            if (fabs(a[i * n + k]) > fabs(a[p * n + k])) p = i;
        for (int j = 0; j < n; j++) {
            double t = a[k * n + j]; a[k * n + j] = a[p * n + j]; a[p * n + j] = t;
            t = b[k * n + j]; b[k * n + j] = b[p * n + j]; b[p * n + j] = t;
        }
        for (int i = 0; i < n; i++) {
            if (i == k) continue;
            double f = a[i * n + k] / a[k * n + k];
            for (int j = 0; j < n; j++) {
                a[i * n + j] -= f * a[k * n + j];
                b[i * n + j] -= f * b[k * n + j];
            }
        }
    }
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) b[i * n + j] /= a[i * n + i];
}

/* E = exp(M): scale so ||M/2^s||_1 < 0.5, Pade [6/6], square s times. */
static inline void ref_expm(const double *m, double *e, int n)
{
    double norm = 0;
    for (int j = 0; j < n; j++) {
        double c = 0;
        for (int i = 0; i < n; i++) c += fabs(m[i * n + j]);
        norm = fmax(norm, c);
    }
    int s = norm > 0.5 ? (int)ceil(log2(norm / 0.5)) : 0;
    double scale = ldexp(1.0, -s);
    size_t bytes = (size_t)n * n * sizeof(double);
    double *a = malloc(bytes), *p = malloc(bytes), *num = malloc(bytes), *den = malloc(bytes),
           *tmp = malloc(bytes);
    for (int i = 0; i < n * n; i++) a[i] = m[i] * scale;
    /* Pade [6/6] coefficients c_k = (12-k)! 6! / (12! k! (6-k)!) */
    const double c[7] = { 1.0, 0.5, 5.0 / 44, 1.0 / 66, 1.0 / 792, 1.0 / 15840, 1.0 / 665280 };
    memset(num, 0, bytes);
    memset(den, 0, bytes);
    for (int i = 0; i < n; i++) p[i * n + i] = 1.0;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) if (i != j) p[i * n + j] = 0;
    for (int k = 0; k <= 6; k++) {
        for (int i = 0; i < n * n; i++) {
            num[i] += c[k] * p[i];
            den[i] += (k % 2 ? -c[k] : c[k]) * p[i];
        }
        ref_matmul(p, a, tmp, n);
        memcpy(p, tmp, bytes);
    }
    ref_solve(den, num, n); /* num <- den^-1 num */
    for (int k = 0; k < s; k++) {
        ref_matmul(num, num, tmp, n);
        memcpy(num, tmp, bytes);
    }
    memcpy(e, num, bytes);
    free(a); free(p); free(num); free(den); free(tmp);
}

/* log|det A| by LU with partial pivoting. */
static inline double ref_logabsdet(const double *m, int n)
{
    double *a = malloc((size_t)n * n * sizeof(double)), acc = 0;
    memcpy(a, m, (size_t)n * n * sizeof(double));
    for (int k = 0; k < n; k++) {
        int p = k;
        for (int i = k + 1; i < n; i++)
            if (fabs(a[i * n + k]) > fabs(a[p * n + k])) p = i;
        for (int j = 0; j < n; j++) {
            double t = a[k * n + j]; a[k * n + j] = a[p * n + j]; a[p * n + j] = t;
        }
        acc += log(fabs(a[k * n + k]));
        for (int i = k + 1; i < n; i++) {
            double f = a[i * n + k] / a[k * n + k];
            for (int j = k; j < n; j++) a[i * n + j] -= f * a[k * n + j];
        }
    }
    free(a);
    return acc;
}

/* Largest singular value of an r x c matrix: power iteration on M^T M. */
static inline double ref_sigma_max(const double *m, int r, int c)
{
    double *v = malloc((size_t)c * sizeof(double)), *u = malloc((size_t)r * sizeof(double)), s = 0;
    for (int j = 0; j < c; j++) v[j] = 1.0 + 0.1 * j;
    for (int it = 0; it < 3000; it++) {
        for (int i = 0; i < r; i++) {
            u[i] = 0;
            for (int j = 0; j < c; j++) u[i] += m[i * c + j] * v[j];
        }
        double nv = 0;
        for (int j = 0; j < c; j++) {
            v[j] = 0;
            for (int i = 0; i < r; i++) v[j] += m[i * c + j] * u[i];
            nv += v[j] * v[j];
        }
        nv = sqrt(nv);
        s = sqrt(nv);
        for (int j = 0; j < c; j++) v[j] /= nv;
    }
    free(u);
    free(v);
    return s;
}

#endif
