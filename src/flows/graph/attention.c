/* Masked multi-head dot-product self-attention over graph edges (see
 * graph_internal.h): the attention conditioner of the GNF coupling.
 * Per graph b and head h the products are small GEMMs on strided views:
 * Q_bh = q[b, :, h*dk:(h+1)*dk] (row stride heads*dk), likewise K, V, O. */
#include <math.h>
#include <string.h>

#include "blas/blas.h"
#include "flows/graph/graph_internal.h"

typedef struct attn_saved {
    float *p;          /* [B, heads, N, N] attention weights */
    int heads, dk, dv;
} attn_saved;

/* Row softmax of the scores s [N, N] over the neighbours (a[i][j] > 0), in
 * place; rows without neighbours become 0. */
static void masked_softmax(float *s, const float *a, int n)
{
    for (int i = 0; i < n; i++) {
        float *row = s + (size_t)i * n;
        const float *ai = a + (size_t)i * n;
        float mx = -INFINITY;
        for (int j = 0; j < n; j++)
            if (ai[j] > 0 && row[j] > mx) mx = row[j];
        double sum = 0;
        for (int j = 0; j < n; j++) {
            row[j] = ai[j] > 0 ? expf(row[j] - mx) : 0.0f;
            sum += row[j];
        }
        const float inv = sum > 0 ? (float)(1.0 / sum) : 0.0f;
        for (int j = 0; j < n; j++) row[j] *= inv;
    }
}

/* Backward, per graph and head, with S = Q K^T / sqrt(dk), P = softmax(S),
 * O = P V:  dV += P^T dO;  dP = dO V^T;  dS = P .* (dP - rowsum(dP .* P));
 * dQ += dS K / sqrt(dk);  dK += dS^T Q / sqrt(dk). */
static int attention_backward(fxp_tape *t, const fxp_node *n)
{
    const attn_saved *s = n->saved;
    fxp_var *q = n->in[0], *k = n->in[1], *v = n->in[2];
    const float *go = n->out->grad;
    const int b_count = q->value.shape[0], nn = q->value.shape[1];
    const int h_count = s->heads, dk = s->dk, dv = s->dv, qw = h_count * dk, vw = h_count * dv;
    const float scale = 1.0f / sqrtf((float)dk);
    fxp_ctx *ctx = fxp_tape_ctx(t);
    fxp__arena_mark m = fxp__scratch_save(ctx);
    float *ds_all = fxp__scratch_alloc(ctx, (size_t)b_count * h_count * nn * nn * sizeof *ds_all);
    if (!ds_all) {
        fxp__scratch_restore(ctx, m);
        return FXP_ENOMEM;
    }
#if FXP_HAVE_OPENMP
#pragma omp parallel for num_threads(ctx->n_threads) schedule(static)
#endif
    for (int b = 0; b < b_count; b++)
        for (int h = 0; h < h_count; h++) {
            const float *p = s->p + ((size_t)b * h_count + h) * nn * nn;
            float *ds = ds_all + ((size_t)b * h_count + h) * nn * nn;
            const size_t qo = (size_t)b * nn * qw + (size_t)h * dk;
            const size_t vo = (size_t)b * nn * vw + (size_t)h * dv;
            if (v->grad)
                fxp__sgemm_serial(1, 0, nn, dv, nn, 1.0f, p, nn, go + vo, vw, 1.0f,
                                  v->grad + vo, vw);
            if (!q->grad && !k->grad) continue;
            fxp__sgemm_serial(0, 1, nn, nn, dv, 1.0f, go + vo, vw, v->value.data + vo, vw, 0.0f,
                              ds, nn);
            for (int i = 0; i < nn; i++) {
                float *row = ds + (size_t)i * nn;
                const float *pi = p + (size_t)i * nn;
                double dot = 0;
                for (int j = 0; j < nn; j++) dot += (double)row[j] * pi[j];
                for (int j = 0; j < nn; j++) row[j] = pi[j] * (row[j] - (float)dot) * scale;
            }
            if (q->grad)
                fxp__sgemm_serial(0, 0, nn, dk, nn, 1.0f, ds, nn, k->value.data + qo, qw, 1.0f,
                                  q->grad + qo, qw);
            if (k->grad)
                fxp__sgemm_serial(1, 0, nn, dk, nn, 1.0f, ds, nn, q->value.data + qo, qw, 1.0f,
                                  k->grad + qo, qw);
        }
    fxp__scratch_restore(ctx, m);
    return FXP_OK;
}

int fxp__graph_attention(fxp_tape *t, fxp_var **out, fxp_var *q, fxp_var *k, fxp_var *v,
                         const fxp_tensor *adj, int heads)
{
    fxp_ctx *ctx = fxp_tape_ctx(t);
    char sq[64], sk[64], sv[64];
    const int b_count = q->value.shape[0], nn = q->value.shape[1];
    if (q->value.ndim != 3 || !fxp_tensor_same_shape(&q->value, &k->value) ||
        v->value.ndim != 3 || v->value.shape[0] != b_count || v->value.shape[1] != nn ||
        heads < 1 || q->value.shape[2] % heads || v->value.shape[2] % heads)
        return FXP_ERR(ctx, FXP_ESHAPE, "q %s, k %s, v %s do not fit %d heads",
                       fxp_tensor_shape_str(&q->value, sq, sizeof sq),
                       fxp_tensor_shape_str(&k->value, sk, sizeof sk),
                       fxp_tensor_shape_str(&v->value, sv, sizeof sv), heads);
    const int dk = q->value.shape[2] / heads, dv = v->value.shape[2] / heads;
    const int qw = heads * dk, vw = heads * dv;
    const int shared = adj->ndim == 2;
    const float scale = 1.0f / sqrtf((float)dk);
    fxp_var *o;
    int rc = fxp_tape_var(t, &o, 3, v->value.shape);
    if (rc < 0) return rc;
    fxp_var *in[3] = { q, k, v };
    const int record = fxp_tape_needs_grad(t, 3, in);
    const size_t p_bytes = (size_t)b_count * heads * nn * nn * sizeof(float);
    attn_saved *s = NULL;
    float *p_all;
    fxp__arena_mark m = fxp__scratch_save(ctx);
    if (record) {
        s = fxp_tape_alloc(t, sizeof *s);
        p_all = fxp_tape_alloc(t, p_bytes);
    } else {
        p_all = fxp__scratch_alloc(ctx, p_bytes);
    }
    if ((record && !s) || !p_all) {
        fxp__scratch_restore(ctx, m);
        return FXP_ENOMEM;
    }
#if FXP_HAVE_OPENMP
#pragma omp parallel for num_threads(ctx->n_threads) schedule(static)
#endif
    for (int b = 0; b < b_count; b++) {
        const float *a = adj->data + (shared ? 0 : (size_t)b * nn * nn);
        for (int h = 0; h < heads; h++) {
            float *p = p_all + ((size_t)b * heads + h) * nn * nn;
            const size_t qo = (size_t)b * nn * qw + (size_t)h * dk;
            const size_t vo = (size_t)b * nn * vw + (size_t)h * dv;
            fxp__sgemm_serial(0, 1, nn, nn, dk, scale, q->value.data + qo, qw,
                              k->value.data + qo, qw, 0.0f, p, nn);
            masked_softmax(p, a, nn);
            fxp__sgemm_serial(0, 0, nn, dv, nn, 1.0f, p, nn, v->value.data + vo, vw, 0.0f,
                              o->value.data + vo, vw);
        }
    }
    fxp__scratch_restore(ctx, m);
    if (record) {
        s->p = p_all;
        s->heads = heads;
        s->dk = dk;
        s->dv = dv;
        if ((rc = fxp_tape_record(t, "graph_attention", attention_backward, o, 3, in, s)) < 0)
            return rc;
    }
    *out = o;
    return FXP_OK;
}
