/* libflowexp: the synthetic graph datasets of the paper's Table 4 and their
 * HDF5 files.
 *
 * Datasets (docs/datasets.md has the derivations and the measured values).
 * Mixtures of Gaussians whose modes are assigned to the nodes of a fully
 * connected graph (Liu et al. 2019, "Graph Normalizing Flows"; Hoogeboom et
 * al. 2020 Sec. 6.3).  Every graph has exactly one node per mode, in random order:
 * a uniform permutation pi is drawn per graph and node i is
 *   x_i = R(theta) mu_pi(i) + eps_i,   eps_i ~ N(0, I_2)   (std 1 per axis)
 * with R(theta) = I for the grids.  The modes mu_j:
 *   mog4   N = 4:  the 2x2 grid {-5, 5}^2 (spacing 10), GNF's OFFSETS_4;
 *   mog9   N = 9:  the 3x3 grid {-5, 5, 15}^2 (spacing 10), GNF's OFFSETS_9
 *                  in GNF's order;
 *   mog16  N = 16: the 4x4 grid {-15, -5, 5, 15}^2 (spacing 10, centred; not
 *                  in GNF's code: the obvious extension of the two above);
 *   ring   N = 4:  the mog4 modes, i.e. 4 modes 90 degrees apart on the circle
 *                  of radius 5 sqrt 2 ~ 7.07, under a global rotation
 *                  theta ~ U[0, pi) drawn per graph: GNF's "mog_4_rotate"
 *                  dataset (rotate=True rotates by pi * U[0, 1)).  Because of
 *                  the 4-fold symmetry this is the same distribution as
 *                  theta ~ U[0, 2 pi).  Its entropy is 4.0544 +- 0.0015
 *                  nats/node (the separated-mode formula below: 4.0528), the
 *                  paper's 4.05: see docs/datasets.md for why (N, r) =
 *                  (4, 5 sqrt 2) and not a 6- or 8-mode ring tuned to 4.05.
 *
 * Densities.  With W_ij(theta) = N(x_i; R(theta) mu_j, I) and the uniform
 * assignment over the N! permutations,
 *   grids: p(x) = (1/N!) perm(W)
 *   ring:  p(x) = (N / 2 pi) Int_0^{2 pi/N} (1/N!) perm(W(theta)) dtheta
 * (the integrand has period 2 pi / N: rotating by 2 pi/N permutes the modes).
 * The permanent perm(W) = sum_pi prod_i W_{i,pi(i)} is computed exactly by a
 * dynamic programme over subsets of modes, O(2^N N) per graph, after scaling
 * W's rows and columns by the dual potentials of the most likely assignment
 * (Hungarian algorithm, O(N^3)), which makes that assignment's weight 1 and
 * every other entry <= 1, so nothing underflows even for far outliers; the
 * rotation integral by the trapezoidal rule on FXP_MOG_RING_QUAD points of a
 * uniform periodic grid, which for a smooth periodic integrand converges
 * geometrically (the paper used importance weighting over theta instead).
 *
 * Random numbers: every draw comes from an fxp_rng (Philox), so the same
 * stream gives bitwise-identical graphs on any machine and thread count.
 */
#ifndef FLOWEXP_DATA_H
#define FLOWEXP_DATA_H

#include "flowexp/rng.h"
#include "flowexp/tensor.h"

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

#define FXP_MOG_KINDS 4
#define FXP_MOG_MAX_NODES 16
/* Quadrature points over one period [0, 2 pi/N) of the ring's rotation. */
#define FXP_MOG_RING_QUAD 256

/* The generator's parameters, for documentation and file attributes. */
typedef struct fxp_mog_info {
    const char *name;  /* "mog4", "mog9", "mog16", "ring" */
    int n_nodes;       /* N = number of modes = nodes per graph */
    double spacing;    /* distance between neighbouring modes: 10 for all four */
    double radius;     /* ring: radius of the circle (5 sqrt 2); grids: 0 */
    double rotation;   /* ring: theta ~ U[0, rotation) with rotation = pi; grids: 0 */
    double noise_std;  /* std of each coordinate around its mode: 1 */
} fxp_mog_info;

/* "mog4", "mog9", "mog16", "ring"; NULL for an unknown kind.  Thread-safe. */
FXP_API const char *fxp_mog_name(fxp_mog_kind kind);

/* The kind for a name as above (exact match): FXP_EINVAL listing the valid
 * names otherwise (reported through fxp_last_error only).  Thread-safe. */
FXP_API int fxp_mog_parse(const char *name, fxp_mog_kind *kind);

/* Nodes (= modes) per graph N: 4, 9, 16, 4; 0 for an unknown kind. */
FXP_API int fxp_mog_nodes(fxp_mog_kind kind);

/* The generator's parameters (FXP_EINVAL for an unknown kind or NULL). */
FXP_API int fxp_mog_get_info(fxp_mog_kind kind, fxp_mog_info *info);

/* The mode centres mu [N, 2], row-major (x, y) pairs; for the ring at
 * rotation 0.  FXP_EINVAL for an unknown kind or NULL. */
FXP_API int fxp_mog_modes(fxp_mog_kind kind, float *centres);

/* Draw n graphs into out [n, N, 2] from rng, advancing it.  Per graph, in
 * this order: one shuffle of the N mode indices (fxp_rng_shuffle_int), 2N
 * normals (fxp_rng_normal), and for the ring one uniform u (theta = pi u).
 * Deterministic in the rng state; independent of ctx's thread count.
 * FXP_EINVAL for an unknown kind, n < 1 or NULL pointers. */
FXP_API int fxp_mog_sample(struct fxp_ctx *ctx, fxp_mog_kind kind, fxp_rng *rng, int n,
                           float *out);

/* Exact log-density log p(x) (nats, per graph, the formulas above) of each
 * of n graphs x [n, N, 2] into logp[n].  Runs on ctx's threads, one graph per
 * iteration, so the result does not depend on the thread count.  Cost per
 * graph: 2^N N (x FXP_MOG_RING_QUAD for the ring); 1-2 ms for N = 16.
 * Scratch: 2^N doubles per thread from ctx.  FXP_EINVAL for bad arguments
 * (ctx must not be NULL), FXP_ENUMERIC if x holds a NaN or Inf, FXP_ENOMEM
 * if the scratch cannot be had. */
FXP_API int fxp_mog_log_prob(struct fxp_ctx *ctx, fxp_mog_kind kind, const float *x, int n,
                             double *logp);

/* Entropy per node H = -E[log p(x)] / N in nats, by Monte Carlo over
 * n_samples >= 2 graphs drawn from fxp_rng_seed(seed), with the exact
 * log p above, and its standard error sqrt(Var[-log p / N] / n_samples)
 * (may be NULL).  Deterministic in (kind, seed, n_samples). */
FXP_API int fxp_mog_entropy(struct fxp_ctx *ctx, fxp_mog_kind kind, uint64_t seed, int n_samples,
                            double *entropy, double *std_error);

/* The separated-mode approximation of H (nats/node), exact in the limit of
 * infinitely separated modes:
 *   grids: ln(2 pi e) + ln(N!)/N
 *   ring:  the same + [ln(2 pi/N) - (1/2) ln(2 pi e) + ln(r sqrt N)] / N
 *          (the rotation adds ln(2 pi/N) of entropy per graph; observing the
 *          nodes pins it down to a Gaussian of variance 1/(N r^2)).
 * And the per-node marginal bound ln(2 pi e) + ln N (the entropy per node of
 * the marginal mixture of one node), which a model that treats the nodes
 * independently cannot beat.  NAN for an unknown kind. */
FXP_API double fxp_mog_entropy_separated(fxp_mog_kind kind);
FXP_API double fxp_mog_marginal_bound(fxp_mog_kind kind);

/* The adjacency of the complete graph on n nodes without self-loops
 * (A_ij = 1 for i != j, A_ii = 0: the graph convolution's theta0 carries the
 * self-connections), allocated into adj [n, n] (release it with
 * fxp_tensor_release).  FXP_EINVAL if n < 1. */
FXP_API int fxp_graph_complete_adjacency(struct fxp_ctx *ctx, int n, fxp_tensor *adj);

/* ---- dataset splits and files ------------------------------------------------ */

typedef enum fxp_data_split { FXP_SPLIT_TRAIN = 0, FXP_SPLIT_VALID = 1, FXP_SPLIT_TEST = 2 } fxp_data_split;

/* The stream of a split: root = fxp_rng_seed(seed), then fxp_rng_split(&root)
 * taken split + 1 times (train, valid, test in that order), so the three
 * splits are independent streams and each can be regenerated on its own. */
FXP_API fxp_rng fxp_mog_split_rng(uint64_t seed, fxp_data_split split);

typedef struct fxp_mog_dataset_config {
    fxp_mog_kind kind;
    uint64_t seed;
    int n_train, n_valid, n_test;  /* graphs per split, >= 1 each */
    int n_entropy;                 /* Monte-Carlo samples for the entropy, >= 2 */
} fxp_mog_dataset_config;

/* Generate a dataset and write it to an HDF5 file at path, atomically (the
 * file is written as "<path>.tmp.<pid>" in the same directory, synced and
 * renamed over path; on any failure the temporary is removed and path is
 * left as it was).  Contents:
 *   datasets  /train, /valid, /test: float32 [n_split, N, 2], each drawn
 *             with fxp_mog_sample from fxp_mog_split_rng(seed, split)
 *   root attributes  format = "libflowexp-dataset", dataset (name), seed,
 *             n_nodes, n_train, n_valid, n_test, entropy_per_node and
 *             entropy_stderr (fxp_mog_entropy with seed + 0x5eed and
 *             n_entropy samples), entropy_samples, entropy_separated,
 *             marginal_bound, spacing, radius, rotation, noise_std,
 *             library_version.
 * entropy / std_error (may be NULL) receive the computed values.
 * Memory: the three splits at once.  Not thread-safe (HDF5). */
FXP_API int fxp_mog_dataset_write(struct fxp_ctx *ctx, const char *path,
                                  const fxp_mog_dataset_config *cfg, double *entropy,
                                  double *std_error);

/* Read the graphs of one split from any HDF5 file: the dataset named `split`
 * (e.g. "train", or a path such as "data/test") must hold IEEE floating-point
 * numbers (float32 or float64, either byte order; converted to float32) of
 * rank 3 [n_graphs, n_nodes, n_features] with every dimension >= 1 and
 * every value finite.  out receives an owning tensor (release it with
 * fxp_tensor_release); on failure it is left empty (data NULL).
 * Errors, each naming the path and the problem:
 *   FXP_EIO       the file is missing or unreadable (or not a regular file)
 *   FXP_EFORMAT   not an HDF5 file; damaged or truncated; the name is not a
 *                 dataset; wrong rank; integer, string or other non-float
 *                 type; zero graphs (any zero dimension)
 *   FXP_ENOTFOUND no such dataset (the message lists what the root holds)
 *   FXP_ENUMERIC  a NaN or Inf (also a float64 too large for float32),
 *                 with its flat index
 * Not thread-safe (HDF5). */
FXP_API int fxp_dataset_read(struct fxp_ctx *ctx, const char *path, const char *split,
                             fxp_tensor *out);

#ifdef __cplusplus
}
#endif
#endif
