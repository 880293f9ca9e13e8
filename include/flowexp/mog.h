/* libflowexp: the synthetic graph datasets of the paper's Table 4 —
 * mixtures of Gaussians whose modes are assigned to the nodes of a fully
 * connected graph (Liu et al. 2019; Hoogeboom et al. 2020 §6.3).
 *
 * Every graph has exactly one node per mode, in random order (the
 * node-to-mode assignment is shuffled per graph); node features are 2-D
 * positions x_i = mu_pi(i) + eps_i, eps_i ~ N(0, I_2):
 *   mog4   N = 4, the 2x2 grid {-5, 5}^2 (spacing 10), as in GNF's code;
 *   mog9   N = 9, the 3x3 grid {-5, 5, 15}^2, as in GNF's code;
 *   mog16  N = 16, the 4x4 grid {-15, -5, 5, 15}^2;
 *   ring   N = 4 modes on a circle of radius 5 sqrt 2, 90 degrees apart (the
 *          mog4 modes), rotated by an angle theta ~ U[0, 2 pi) drawn per
 *          graph (GNF's "rotate" option).  This choice reproduces the
 *          paper's MoG-Ring entropy of 4.05 nats/node (docs/datasets.md).
 *
 * The density of a graph, with W_ij = N(x_i; mu_j, I) and a uniform
 * assignment over the N! permutations, is
 *   p(x) = (1/N!) perm(W)      (grids)
 *   p(x) = (N/2pi) Int_0^{2pi/N} (1/N!) perm(W(theta)) dtheta   (ring; the
 *          integrand has period 2 pi/N)
 * The permanent is computed exactly by a dynamic programme over subsets of
 * modes (O(2^N N)); the rotation integral by the trapezoidal rule on a
 * periodic grid (spectrally accurate; FXP_MOG_RING_QUAD points).
 */
#ifndef FLOWEXP_MOG_H
#define FLOWEXP_MOG_H

#include "flowexp/rng.h"

#ifdef __cplusplus
extern "C" {
#endif

struct fxp_ctx;

typedef enum fxp_mog_kind {
    FXP_MOG4 = 0,
    FXP_MOG9 = 1,
    FXP_MOG16 = 2,
    FXP_MOG_RING = 3
} fxp_mog_kind;

#define FXP_MOG_RING_QUAD 256

/* "mog4", "mog9", "mog16", "ring" (NULL for unknown kinds), and the reverse
 * (FXP_EINVAL with the list of names for an unknown one). */
FXP_API const char *fxp_mog_name(fxp_mog_kind kind);
FXP_API int fxp_mog_parse(const char *name, fxp_mog_kind *kind);

/* Nodes (= modes) per graph; 0 for an unknown kind. */
FXP_API int fxp_mog_nodes(fxp_mog_kind kind);

/* The mode centres [N, 2] (for the ring: at rotation 0). */
FXP_API int fxp_mog_modes(fxp_mog_kind kind, float *centres);

/* Draw n graphs into out [n, N, 2] from rng (deterministic: the same rng
 * state gives the same graphs). */
FXP_API int fxp_mog_sample(struct fxp_ctx *ctx, fxp_mog_kind kind, fxp_rng *rng, int n, float *out);

/* Exact log p(x) (nats) of each of n graphs x [n, N, 2] into logp[n]. */
FXP_API int fxp_mog_log_prob(struct fxp_ctx *ctx, fxp_mog_kind kind, const float *x, int n,
                             double *logp);

/* Entropy per node, -E[log p(x)] / N, by Monte Carlo over n_samples graphs
 * drawn from a stream seeded with `seed`, with its standard error. */
FXP_API int fxp_mog_entropy(struct fxp_ctx *ctx, fxp_mog_kind kind, uint64_t seed, int n_samples,
                            double *entropy, double *std_error);

/* The separated-mode approximation ln(2 pi e) + ln(N!)/N (grids), and the
 * per-node marginal bound ln(2 pi e) + ln N that a model ignoring the other
 * nodes cannot beat (both in nats per node). */
FXP_API double fxp_mog_entropy_separated(fxp_mog_kind kind);
FXP_API double fxp_mog_marginal_bound(fxp_mog_kind kind);

#ifdef __cplusplus
}
#endif
#endif
