/* im2col / col2im for one NCHW image, stride 1, odd kernel, "same" output.
 * col has C*kh*kw rows and H*W columns; row (c*kh + a)*kw + b, column
 * i*W + j holds x[c, i + a - (kh-1)/2, j + b - (kw-1)/2] (zero outside the
 * image for FXP_PAD_ZERO, wrapped for FXP_PAD_CIRCULAR). */
#ifndef FXP_OPS_IM2COL_H
#define FXP_OPS_IM2COL_H

#include "ops/conv2d.h"

void fxp__im2col(const fxp__conv_shape *s, const float *x, float *col);

/* x[c, ...] += col entries, the adjoint of fxp__im2col.  col is used as
 * scratch: its entries that map outside the image are overwritten with 0. */
void fxp__col2im(const fxp__conv_shape *s, float *col, float *x);

#endif
