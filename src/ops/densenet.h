/* The DenseNet of the image couplings (flowexp/image.h, the authors' §7.3) as
 * one tape op (densenet.c).
 *
 *   h_0 = x [B, n_in, H, W]
 *   a_l = relu(conv1x1(h_l; w1_l) + b1_l)            w1_l [n_l, n_l, 1, 1]
 *   h_{l+1} = [h_l, relu(conv3x3(a_l; w3_l) + b3_l)]  w3_l [G, n_l, 3, 3], zero padding
 *   o = conv1x1(h_D; wo) + bo                         wo [n_o, N, 1, 1]
 *   y = o, or (gated, n_o = 3 n_out) y = o_a + o_b sigmoid(o_c) of o's channel thirds
 * with n_l = n_in + l G and N = n_in + D G.
 *
 * One node instead of seven per layer: the growing input lives in one
 * [B, N, H, W] buffer that every layer appends its G channels to (no
 * concatenation copies), bias and ReLU are part of the convolutions, and
 * the gradients of the inner activations are per-image scratch, not tape
 * memory.  The tape keeps h_D and (unless `recompute`) every a_l; with
 * `recompute` the backward recomputes a_l from h_D (one more 1x1
 * convolution per layer) and the tape keeps h_D only.  Threads split the
 * images; the kernel gradients are summed per thread and then in thread
 * order (fixed for a given thread count). */
#ifndef FXP_OPS_DENSENET_H
#define FXP_OPS_DENSENET_H

#include "core/internal.h"

typedef struct fxp__densenet_vars {
    int depth, growth, gated;
    fxp_var **w1, **b1, **w3, **b3; /* depth each */
    fxp_var *wo, *bo;
} fxp__densenet_vars;

/* *out = the DenseNet above; FXP_ESHAPE naming the parameter whose shape
 * does not fit x. */
int fxp__densenet_op(fxp_tape *t, fxp_var **out, fxp_var *x, const fxp__densenet_vars *v,
                     int recompute);

#endif
