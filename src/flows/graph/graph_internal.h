/* Internal ops of the graph layers (the files of src/flows/graph). */
#ifndef FXP_GRAPH_INTERNAL_H
#define FXP_GRAPH_INTERNAL_H

#include "core/internal.h"

/* Masked multi-head dot-product self-attention over the edges of a graph.
 * q, k [B, N, heads*dk], v [B, N, heads*dv], adj [N, N] or [B, N, N] (an edge
 * j -> i wherever adj[i][j] > 0). For graph b, head h and node i:
 *   P[i, j] = softmax_{j: adj[i][j] > 0} (q_i . k_j / sqrt(dk)),
 *   out_i = sum_j P[i, j] v_j      (0 for a node without edges),
 * with q_i, k_j, v_j the head's slices.  out [B, N, heads*dv]. Gradients flow
 * to q, k and v (not to adj).  Permutation equivariant. */
int fxp__graph_attention(fxp_tape *t, fxp_var **out, fxp_var *q, fxp_var *k, fxp_var *v,
                         const fxp_tensor *adj, int heads);

#endif
