#ifndef FLOWEXP_RESIDUAL_H
#define FLOWEXP_RESIDUAL_H
#include "flowexp/sylvester.h"
#endif
