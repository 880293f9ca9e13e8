/* libflowexp — convolution exponentials, graph convolution exponentials and
 * generalized Sylvester flows (Hoogeboom, Garcia Satorras, Tomczak & Welling,
 * "The Convolution Exponential and Generalized Sylvester Flows", NeurIPS 2020),
 * in C11 on CPUs.
 *
 * The umbrella header: include this one.  Each sub-header documents its part
 * of the API; start with flowexp/ctx.h and flowexp/tape.h.
 */
#ifndef FLOWEXP_H
#define FLOWEXP_H

#include "flowexp/common.h"
#include "flowexp/rng.h"
#include "flowexp/ctx.h"
#include "flowexp/tensor.h"
#include "flowexp/params.h"
#include "flowexp/tape.h"
#include "flowexp/ops.h"
#include "flowexp/optim.h"
#include "flowexp/flow.h"
#include "flowexp/expm.h"
#include "flowexp/data.h"
#include "flowexp/imagedata.h"
#include "flowexp/io.h"
#include "flowexp/checkpoint.h"
#include "flowexp/layers.h"
#include "flowexp/graphflow.h"
#include "flowexp/mixing.h"
#include "flowexp/image.h"
#include "flowexp/imageflow.h"
#include "flowexp/sylvester.h"
#include "flowexp/residual.h"
#include "flowexp/dist.h"

#endif
