/* Helpers shared by the mixing layers (src/flows/mixing/) and the layers
 * that build on them (the Sylvester flows' basis change). */
#ifndef FXP_MIXING_INTERNAL_H
#define FXP_MIXING_INTERNAL_H

#include "flows/flow_internal.h"

/* Q = H(v_1) H(v_2) ... H(v_R) from V [R, C] (row r = v_{r+1}),
 * H(v) = I - 2 v v^T / (v^T v), or its transpose H(v_R) ... H(v_1) if
 * `transpose`; built from tape ops so that gradients reach V. */
int fxp__householder_matrix(fxp_tape *t, fxp_var *V, int transpose, fxp_var **out);

#endif
