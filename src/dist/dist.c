/* Data-parallel training over MPI (see dist.h): a handle on a duplicated
 * communicator, gradient averaging with a fixed reduction order, broadcasts
 * of parameters and buffers, evaluation sums.
 *
 * MPI is used only to move bytes; every sum is computed here, element by
 * element, in rank order (combine()), so that the result does not depend on
 * the MPI library's choice of reduction algorithm. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "flowexp/dist.h"

void fxp_dist_shard(int64_t n, int size, int rank, int64_t *offset, int64_t *count)
{
    int64_t off = 0, cnt = 0;
    if (n >= 0 && size >= 1 && rank >= 0 && rank < size) {
        const int64_t q = n / size, r = n % size;
        off = q * rank + (rank < r ? rank : r);
        cnt = q + (rank < r);
    }
    if (offset) *offset = off;
    if (count) *count = cnt;
}

#if FXP_HAVE_MPI

#include <mpi.h>

/* Parameter sizes checked across the ranks, remembered per handle. */
#define DIST_CHECKED_MAX 16
/* Blocks whose whole allgather is at most this many bytes per rank take the
 * one-collective path (every rank combines every element). */
#define DIST_SMALL_BYTES 65536

struct fxp_dist {
    fxp_ctx *ctx;
    MPI_Comm comm;
    int rank, size;
    int *counts, *displs, *rcounts, *rdispls; /* [size] each, for the v-collectives */
    int *active;                              /* [size]: ranks with nonzero weight */
    int64_t *exch;                            /* [2 * size]: exchanged counts and sizes */
    double *weights, scale;                   /* [size] w_r, and s, of the reduction */
    void *scratch;                            /* receive buffer, grown on demand */
    size_t scratch_bytes;
    size_t checked[DIST_CHECKED_MAX];         /* trainable sizes verified across ranks */
    int n_checked, next_checked;
};

int fxp_dist_available(void) { return 1; }

/* FXP_EIO with MPI's message for the failed call `what` (its text up to the
 * first parenthesis names the MPI function). */
static int mpi_fail(fxp_dist *d, const char *func, const char *what, int err)
{
    char msg[MPI_MAX_ERROR_STRING + 1];
    int len = 0;
    if (MPI_Error_string(err, msg, &len) != MPI_SUCCESS)
        len = snprintf(msg, sizeof msg, "MPI error %d", err);
    msg[len < 0 ? 0 : len > MPI_MAX_ERROR_STRING ? MPI_MAX_ERROR_STRING : len] = '\0';
    return fxp__err(d->ctx, FXP_EIO, func, "%.*s failed on rank %d of %d: %s",
                    (int)strcspn(what, "("), what, d->rank, d->size, msg);
}

/* Run an MPI call; on failure set rc = FXP_EIO with MPI's message and jump
 * to `out`. */
#define TRY_MPI(d, call)                                                     \
    do {                                                                     \
        int e_ = (call);                                                     \
        if (e_ != MPI_SUCCESS) {                                             \
            rc = mpi_fail((d), __func__, #call, e_);                         \
            goto out;                                                        \
        }                                                                    \
    } while (0)

static int check_handle(const fxp_dist *d, const char *func)
{
    if (!d) return fxp__err(NULL, FXP_EINVAL, func, "the handle is NULL");
    return FXP_OK;
}

/* A receive buffer of at least `bytes` (kept for later calls). */
static int reserve(fxp_dist *d, const char *func, size_t bytes)
{
    if (bytes <= d->scratch_bytes) return FXP_OK;
    void *p = realloc(d->scratch, bytes);
    if (!p)
        return fxp__err(d->ctx, FXP_ENOMEM, func, "cannot allocate %zu bytes of receive scratch "
                        "on rank %d (the other ranks will block: abort the job)", bytes, d->rank);
    d->scratch = p;
    d->scratch_bytes = bytes;
    return FXP_OK;
}

int fxp_dist_new(fxp_ctx *ctx, const void *comm, fxp_dist **out)
{
    if (out) *out = NULL;
    if (!ctx || !comm || !out)
        return FXP_ERR(ctx, FXP_EINVAL, "%s is NULL", !ctx ? "ctx" : !comm ? "comm" : "out");
    int init = 0, fin = 0;
    MPI_Initialized(&init);
    MPI_Finalized(&fin);
    if (!init || fin)
        return FXP_ERR(ctx, FXP_ESTATE, "MPI is %s: call MPI_Init_thread before fxp_dist_new and "
                       "MPI_Finalize after fxp_dist_free",
                       fin ? "already finalised" : "not initialised");
    const MPI_Comm c = *(const MPI_Comm *)comm;
    if (c == MPI_COMM_NULL) return FXP_ERR(ctx, FXP_EINVAL, "comm is MPI_COMM_NULL");
    int inter = 0, rc = FXP_OK;
    fxp_dist *d = calloc(1, sizeof *d);
    if (!d) return FXP_ERR(ctx, FXP_ENOMEM, "cannot allocate a handle");
    d->ctx = ctx;
    d->comm = MPI_COMM_NULL;
    TRY_MPI(d, MPI_Comm_test_inter(c, &inter));
    if (inter) {
        rc = FXP_ERR(ctx, FXP_EINVAL, "comm is an intercommunicator; pass an intracommunicator");
        goto out;
    }
    /* Errors of the duplication itself still go to c's handler. */
    TRY_MPI(d, MPI_Comm_dup(c, &d->comm));
    TRY_MPI(d, MPI_Comm_set_errhandler(d->comm, MPI_ERRORS_RETURN));
    TRY_MPI(d, MPI_Comm_rank(d->comm, &d->rank));
    TRY_MPI(d, MPI_Comm_size(d->comm, &d->size));
    const size_t k = (size_t)d->size;
    d->counts = malloc(5 * k * sizeof(int));
    d->exch = malloc(2 * k * sizeof(int64_t));
    d->weights = malloc(k * sizeof(double));
    if (!d->counts || !d->exch || !d->weights) {
        rc = FXP_ERR(ctx, FXP_ENOMEM, "cannot allocate the per-rank tables of %d ranks", d->size);
        goto out;
    }
    d->displs = d->counts + k;
    d->rcounts = d->counts + 2 * k;
    d->rdispls = d->counts + 3 * k;
    d->active = d->counts + 4 * k;
    *out = d;
    return FXP_OK;
out:
    fxp_dist_free(d);
    return rc;
}

void fxp_dist_free(fxp_dist *d)
{
    if (!d) return;
    int fin = 0;
    MPI_Finalized(&fin);
    if (d->comm != MPI_COMM_NULL && !fin) MPI_Comm_free(&d->comm);
    free(d->counts);
    free(d->exch);
    free(d->weights);
    free(d->scratch);
    free(d);
}

int fxp_dist_rank(const fxp_dist *d) { return d ? d->rank : 0; }
int fxp_dist_size(const fxp_dist *d) { return d ? d->size : 1; }

/* ---- the fixed-order reduction --------------------------------------------
 * out[i] = (T)((w_a0 x_a0[i] + w_a1 x_a1[i] + ...) * s) over the active
 * ranks a0 < a1 < ... (those with w_r != 0), in double, left to right in
 * rank order.  x_r[i] is at in[r * stride + i].  Blocks of COMBINE_BLOCK
 * elements are accumulated rank by rank in a double array (the order per
 * element stays the rank order; the loops vectorise), and elements are
 * independent, so splitting blocks over threads changes nothing.  ISO C
 * mode (-std=c11) keeps GCC from fusing the multiply-adds (no
 * -ffp-contract=fast here), so every build of this file rounds the same way. */
#define COMBINE_BLOCK 512

static void combine_f32(const fxp_ctx *ctx, float *out, const float *in, size_t stride,
                        size_t n, const int *act, int n_act, const double *w, double s)
{
    const size_t nb = (n + COMBINE_BLOCK - 1) / COMBINE_BLOCK;
    FXP_PARALLEL_FOR(ctx->n_threads, n > 65536, for (size_t b = 0; b < nb; b++) {
        const size_t i0 = b * COMBINE_BLOCK, m = FXP_MIN((size_t)COMBINE_BLOCK, n - i0);
        double acc[COMBINE_BLOCK];
        const float *x = in + (size_t)act[0] * stride + i0;
        const double w0 = w[act[0]];
        for (size_t i = 0; i < m; i++) acc[i] = w0 * (double)x[i];
        for (int j = 1; j < n_act; j++) {
            const float *xr = in + (size_t)act[j] * stride + i0;
            const double wr = w[act[j]];
            for (size_t i = 0; i < m; i++) acc[i] += wr * (double)xr[i];
        }
        for (size_t i = 0; i < m; i++) out[i0 + i] = (float)(acc[i] * s);
    });
}

static void combine_f64(const fxp_ctx *ctx, double *out, const double *in, size_t stride,
                        size_t n, const int *act, int n_act, const double *w, double s)
{
    const size_t nb = (n + COMBINE_BLOCK - 1) / COMBINE_BLOCK;
    FXP_PARALLEL_FOR(ctx->n_threads, n > 65536, for (size_t b = 0; b < nb; b++) {
        const size_t i0 = b * COMBINE_BLOCK, m = FXP_MIN((size_t)COMBINE_BLOCK, n - i0);
        double acc[COMBINE_BLOCK];
        const double *x = in + (size_t)act[0] * stride + i0;
        const double w0 = w[act[0]];
        for (size_t i = 0; i < m; i++) acc[i] = w0 * x[i];
        for (int j = 1; j < n_act; j++) {
            const double *xr = in + (size_t)act[j] * stride + i0;
            const double wr = w[act[j]];
            for (size_t i = 0; i < m; i++) acc[i] += wr * xr[i];
        }
        for (size_t i = 0; i < m; i++) out[i0 + i] = acc[i] * s;
    });
}

/* Combine n elements per rank at in (stride apart) into out, with the
 * handle's weights. */
static void combine(fxp_dist *d, int is_f64, void *out, const void *in, size_t stride, size_t n)
{
    int n_act = 0;
    for (int r = 0; r < d->size; r++)
        if (d->weights[r] != 0) d->active[n_act++] = r;
    if (is_f64) combine_f64(d->ctx, out, in, stride, n, d->active, n_act, d->weights, d->scale);
    else combine_f32(d->ctx, out, in, stride, n, d->active, n_act, d->weights, d->scale);
}

/* data[0..n) of float (is_f64 = 0) or double (1) on every rank becomes the
 * combination above of all ranks' data, on every rank; d->weights holds
 * w_r and d->scale s (at least one w_r must be nonzero).  Small blocks: one
 * allgather, every rank combines all n elements.  Large blocks: chunk r
 * (fxp_dist_shard(n, K, r)) of every rank goes to rank r (alltoallv), rank
 * r combines it, and an in-place allgatherv distributes the finished
 * chunks.  Both paths evaluate the same expression
 * per element, so the choice changes nothing but the cost. */
static int fixed_order_reduce(fxp_dist *d, const char *func, void *data, size_t n, int is_f64)
{
    const int K = d->size;
    const size_t es = is_f64 ? sizeof(double) : sizeof(float);
    const MPI_Datatype type = is_f64 ? MPI_DOUBLE : MPI_FLOAT;
    int rc = FXP_OK;
    if (n == 0) return FXP_OK;
    if (n > (size_t)INT_MAX - (size_t)K)
        return fxp__err(d->ctx, FXP_EINVAL, func, "%zu elements are more than one MPI collective "
                        "can address (%d)", n, INT_MAX - K);
    if (n * (size_t)K * es <= DIST_SMALL_BYTES) {
        FXP_TRY(reserve(d, func, n * (size_t)K * es));
        TRY_MPI(d, MPI_Allgather(data, (int)n, type, d->scratch, (int)n, type, d->comm));
        combine(d, is_f64, data, d->scratch, n, n);
        return FXP_OK;
    }
    for (int r = 0; r < K; r++) {
        int64_t off, cnt;
        fxp_dist_shard((int64_t)n, K, r, &off, &cnt);
        d->counts[r] = (int)cnt;
        d->displs[r] = (int)off;
    }
    const int mine = d->counts[d->rank];
    for (int r = 0; r < K; r++) {
        d->rcounts[r] = mine;
        d->rdispls[r] = r * mine; /* < n + K <= INT_MAX, checked above */
    }
    FXP_TRY(reserve(d, func, (size_t)K * (size_t)mine * es));
    TRY_MPI(d, MPI_Alltoallv(data, d->counts, d->displs, type, d->scratch, d->rcounts,
                             d->rdispls, type, d->comm));
    char *my_chunk = (char *)data + (size_t)d->displs[d->rank] * es;
    combine(d, is_f64, my_chunk, d->scratch, (size_t)mine, (size_t)mine);
    TRY_MPI(d, MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, data, d->counts, d->displs,
                              type, d->comm));
out:
    return rc;
}

/* ---- gradients ------------------------------------------------------------*/

static int size_checked(const fxp_dist *d, size_t n)
{
    for (int i = 0; i < d->n_checked; i++)
        if (d->checked[i] == n) return 1;
    return 0;
}

static void mark_checked(fxp_dist *d, size_t n)
{
    if (size_checked(d, n)) return;
    d->checked[d->next_checked] = n;
    d->next_checked = (d->next_checked + 1) % DIST_CHECKED_MAX;
    if (d->n_checked < DIST_CHECKED_MAX) d->n_checked++;
}

int fxp_dist_grad_mean(fxp_dist *d, fxp_params *ps)
{
    int rc = check_handle(d, __func__);
    if (rc < 0) return rc;
    if (!ps) return FXP_ERR(d->ctx, FXP_EINVAL, "ps is NULL");
    const size_t n = fxp_params_size(ps, FXP_PARAM_TRAINABLE);
    if (!size_checked(d, n))
        return FXP_ERR(d->ctx, FXP_ESTATE, "a trainable block of %zu floats was never checked "
                       "across the ranks: call fxp_dist_bcast_params (or "
                       "fxp_dist_params_identical) on these parameters first", n);
    if (d->size == 1) return FXP_OK;
    for (int r = 0; r < d->size; r++) d->weights[r] = 1.0;
    d->scale = 1.0 / d->size;
    return fixed_order_reduce(d, __func__, fxp_params_grad_data(ps), n, 0);
}

int fxp_dist_grad_weighted(fxp_dist *d, fxp_params *ps, int64_t count)
{
    int rc = check_handle(d, __func__);
    if (rc < 0) return rc;
    if (!ps) return FXP_ERR(d->ctx, FXP_EINVAL, "ps is NULL");
    const int K = d->size;
    const size_t n = fxp_params_size(ps, FXP_PARAM_TRAINABLE);
    int64_t mine[2] = { count, (int64_t)n };
    if (K > 1) {
        TRY_MPI(d, MPI_Allgather(mine, 2, MPI_INT64_T, d->exch, 2, MPI_INT64_T, d->comm));
    } else {
        memcpy(d->exch, mine, sizeof mine);
    }
    /* every rank sees the same table, so every rank takes the same branch */
    int64_t total = 0;
    for (int r = 0; r < K; r++) {
        const int64_t c = d->exch[2 * r], nr = d->exch[2 * r + 1];
        if (c < 0 || c > ((int64_t)1 << 53))
            return FXP_ERR(d->ctx, FXP_EINVAL, "rank %d passed count %lld: counts must be in "
                           "0..2^53", r, (long long)c);
        if (nr != d->exch[1])
            return FXP_ERR(d->ctx, FXP_EMISMATCH, "rank %d has %lld trainable floats but rank 0 "
                           "has %lld: the ranks built different models", r, (long long)nr,
                           (long long)d->exch[1]);
        total += c;
        if (total > ((int64_t)1 << 53))
            return FXP_ERR(d->ctx, FXP_EINVAL, "the counts add up to more than 2^53");
        d->weights[r] = (double)c;
    }
    if (total == 0)
        return FXP_ERR(d->ctx, FXP_EINVAL, "every rank passed count 0: there is no gradient to "
                       "average");
    mark_checked(d, n);
    if (K == 1) return FXP_OK;
    d->scale = 1.0 / (double)total;
    rc = fixed_order_reduce(d, __func__, fxp_params_grad_data(ps), n, 0);
out:
    return rc;
}

/* ---- parameters -----------------------------------------------------------*/

/* FNV-1a over bytes. */
static uint64_t fnv1a(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

/* Compare every rank's layout of ps (a hash of the entries' names, kinds and
 * shapes, and the two block sizes) with root's; FXP_EMISMATCH on every rank
 * if any differs. */
static int check_layout(fxp_dist *d, const char *func, const fxp_params *ps, int root)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (int i = 0; i < fxp_params_count(ps); i++) {
        const fxp_param *p = fxp_params_at(ps, i);
        const char *name = fxp_param_name(p);
        const int kind = fxp_param_kind(p);
        const fxp_tensor v = fxp_param_value(p);
        h = fnv1a(h, name, strlen(name) + 1);
        h = fnv1a(h, &kind, sizeof kind);
        h = fnv1a(h, &v.ndim, sizeof v.ndim);
        h = fnv1a(h, v.shape, (size_t)v.ndim * sizeof *v.shape);
    }
    int64_t mine[2] = { (int64_t)fxp_params_size(ps, FXP_PARAM_TRAINABLE),
                        (int64_t)fxp_params_size(ps, FXP_PARAM_STATE) };
    uint64_t mine_h = h;
    int rc = FXP_OK;
    const int K = d->size;
    FXP_TRY(reserve(d, func, (size_t)K * sizeof(uint64_t)));
    uint64_t *hs = d->scratch;
    TRY_MPI(d, MPI_Allgather(mine, 2, MPI_INT64_T, d->exch, 2, MPI_INT64_T, d->comm));
    TRY_MPI(d, MPI_Allgather(&mine_h, 1, MPI_UINT64_T, hs, 1, MPI_UINT64_T, d->comm));
    for (int r = 0; r < K; r++) {
        if (d->exch[2 * r] != d->exch[2 * root] || d->exch[2 * r + 1] != d->exch[2 * root + 1] ||
            hs[r] != hs[root])
            return fxp__err(d->ctx, FXP_EMISMATCH, func, "rank %d's parameters (%lld trainable + "
                            "%lld state floats, layout hash %016llx) differ from rank %d's (%lld + "
                            "%lld, %016llx): the ranks built different models", r,
                            (long long)d->exch[2 * r], (long long)d->exch[2 * r + 1],
                            (unsigned long long)hs[r], root, (long long)d->exch[2 * root],
                            (long long)d->exch[2 * root + 1], (unsigned long long)hs[root]);
    }
out:
    return rc;
}

static int check_root(const fxp_dist *d, const char *func, int root)
{
    if (root < 0 || root >= d->size)
        return fxp__err(d->ctx, FXP_EINVAL, func, "root %d is not a rank of a communicator of "
                        "size %d", root, d->size);
    return FXP_OK;
}

/* MPI_Bcast of any count, in pieces of at most 2^30 elements. */
static int bcast_pieces(fxp_dist *d, const char *func, void *buf, size_t count, size_t es,
                        MPI_Datatype type, int root)
{
    const size_t piece = (size_t)1 << 30;
    int rc = FXP_OK;
    for (size_t done = 0; done < count; done += piece) {
        const size_t m = count - done < piece ? count - done : piece;
        const int e = MPI_Bcast((char *)buf + done * es, (int)m, type, root, d->comm);
        if (e != MPI_SUCCESS) return mpi_fail(d, func, "MPI_Bcast", e);
    }
    return rc;
}

int fxp_dist_bcast_params(fxp_dist *d, fxp_params *ps, int root)
{
    int rc = check_handle(d, __func__);
    if (rc < 0) return rc;
    if (!ps) return FXP_ERR(d->ctx, FXP_EINVAL, "ps is NULL");
    FXP_TRY(check_root(d, __func__, root));
    FXP_TRY(check_layout(d, __func__, ps, root));
    for (int kind = FXP_PARAM_TRAINABLE; kind <= FXP_PARAM_STATE; kind++)
        FXP_TRY(bcast_pieces(d, __func__, fxp_params_data(ps, kind), fxp_params_size(ps, kind),
                             sizeof(float), MPI_FLOAT, root));
    mark_checked(d, fxp_params_size(ps, FXP_PARAM_TRAINABLE));
out:
    return rc;
}

int fxp_dist_params_identical(fxp_dist *d, const fxp_params *ps, int *identical)
{
    int rc = check_handle(d, __func__);
    if (rc < 0) return rc;
    if (identical) *identical = 0;
    if (!ps || !identical)
        return FXP_ERR(d->ctx, FXP_EINVAL, "%s is NULL", !ps ? "ps" : "identical");
    FXP_TRY(check_layout(d, __func__, ps, 0));
    int same = 1;
    for (int kind = FXP_PARAM_TRAINABLE; kind <= FXP_PARAM_STATE; kind++) {
        const size_t n = fxp_params_size(ps, kind);
        if (n == 0) continue;
        const float *mine = fxp_params_data(ps, kind);
        FXP_TRY(reserve(d, __func__, n * sizeof(float)));
        if (d->rank == 0) memcpy(d->scratch, mine, n * sizeof(float));
        FXP_TRY(bcast_pieces(d, __func__, d->scratch, n, sizeof(float), MPI_FLOAT, 0));
        if (memcmp(d->scratch, mine, n * sizeof(float)) != 0) same = 0;
    }
    int all = 0;
    TRY_MPI(d, MPI_Allreduce(&same, &all, 1, MPI_INT, MPI_MIN, d->comm));
    *identical = all;
    mark_checked(d, fxp_params_size(ps, FXP_PARAM_TRAINABLE));
out:
    return rc;
}

/* ---- buffers, sums, agreement -----------------------------------------------*/

int fxp_dist_bcast(fxp_dist *d, void *buf, size_t count, fxp_dist_type type, int root)
{
    int rc = check_handle(d, __func__);
    if (rc < 0) return rc;
    MPI_Datatype mt;
    size_t es;
    switch (type) {
    case FXP_DIST_FLOAT: mt = MPI_FLOAT, es = sizeof(float); break;
    case FXP_DIST_DOUBLE: mt = MPI_DOUBLE, es = sizeof(double); break;
    case FXP_DIST_INT: mt = MPI_INT, es = sizeof(int); break;
    case FXP_DIST_INT64: mt = MPI_INT64_T, es = sizeof(int64_t); break;
    case FXP_DIST_UINT64: mt = MPI_UINT64_T, es = sizeof(uint64_t); break;
    case FXP_DIST_BYTE: mt = MPI_BYTE, es = 1; break;
    default: return FXP_ERR(d->ctx, FXP_EINVAL, "unknown element type %d", (int)type);
    }
    if (!buf && count > 0) return FXP_ERR(d->ctx, FXP_EINVAL, "buf is NULL (count %zu)", count);
    FXP_TRY(check_root(d, __func__, root));
    FXP_TRY(bcast_pieces(d, __func__, buf, count, es, mt, root));
out:
    return rc;
}

int fxp_dist_sum(fxp_dist *d, double *x, size_t n)
{
    int rc = check_handle(d, __func__);
    if (rc < 0) return rc;
    if (!x && n > 0) return FXP_ERR(d->ctx, FXP_EINVAL, "x is NULL (n %zu)", n);
    if (d->size == 1) return FXP_OK;
    for (int r = 0; r < d->size; r++) d->weights[r] = 1.0;
    d->scale = 1.0;
    return fixed_order_reduce(d, __func__, x, n, 1);
}

int fxp_dist_agree(fxp_dist *d, int status, int *failed_rank)
{
    int rc = check_handle(d, __func__);
    if (rc < 0) return rc;
    if (failed_rank) *failed_rank = -1;
    int *all = NULL;
    FXP_TRY(reserve(d, __func__, (size_t)d->size * sizeof(int)));
    all = d->scratch;
    TRY_MPI(d, MPI_Allgather(&status, 1, MPI_INT, all, 1, MPI_INT, d->comm));
    if (!failed_rank) return FXP_ERR(d->ctx, FXP_EINVAL, "failed_rank is NULL");
    for (int r = 0; r < d->size; r++)
        if (all[r] < 0) {
            *failed_rank = r;
            break;
        }
out:
    return rc;
}

#else /* !FXP_HAVE_MPI */

/* Built without MPI: no handle can exist; every collective says so. */

struct fxp_dist {
    int unused;
};

int fxp_dist_available(void) { return 0; }

static int unsupported_ctx(fxp_ctx *ctx, const char *func)
{
    return fxp__err(ctx, FXP_EUNSUPPORTED, func, "libflowexp was built without MPI "
                    "(meson -Dmpi=enabled needs an MPI such as Debian's libopenmpi-dev)");
}

static int unsupported(const char *func) { return unsupported_ctx(NULL, func); }

int fxp_dist_new(fxp_ctx *ctx, const void *comm, fxp_dist **out)
{
    FXP_API_SCOPE();
    (void)comm;
    if (out) *out = NULL;
    return unsupported_ctx(ctx, __func__);
}

void fxp_dist_free(fxp_dist *d) { (void)d; }
int fxp_dist_rank(const fxp_dist *d) { (void)d; return 0; }
int fxp_dist_size(const fxp_dist *d) { (void)d; return 1; }
int fxp_dist_grad_mean(fxp_dist *d, fxp_params *ps)
{
    FXP_API_SCOPE();
    (void)d, (void)ps;
    return unsupported(__func__);
}
int fxp_dist_grad_weighted(fxp_dist *d, fxp_params *ps, int64_t count)
{
    FXP_API_SCOPE();
    (void)d, (void)ps, (void)count;
    return unsupported(__func__);
}
int fxp_dist_bcast_params(fxp_dist *d, fxp_params *ps, int root)
{
    FXP_API_SCOPE();
    (void)d, (void)ps, (void)root;
    return unsupported(__func__);
}
int fxp_dist_bcast(fxp_dist *d, void *buf, size_t count, fxp_dist_type type, int root)
{
    FXP_API_SCOPE();
    (void)d, (void)buf, (void)count, (void)type, (void)root;
    return unsupported(__func__);
}
int fxp_dist_sum(fxp_dist *d, double *x, size_t n)
{
    FXP_API_SCOPE();
    (void)d, (void)x, (void)n;
    return unsupported(__func__);
}
int fxp_dist_params_identical(fxp_dist *d, const fxp_params *ps, int *identical)
{
    FXP_API_SCOPE();
    (void)d, (void)ps;
    if (identical) *identical = 0;
    return unsupported(__func__);
}
int fxp_dist_agree(fxp_dist *d, int status, int *failed_rank)
{
    FXP_API_SCOPE();
    (void)d, (void)status;
    if (failed_rank) *failed_rank = -1;
    return unsupported(__func__);
}

#endif
