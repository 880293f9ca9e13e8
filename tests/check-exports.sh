#!/bin/sh
# Fails if the shared library exports a defined symbol without the fxp_ prefix.
lib=$1
bad=$(nm -D --defined-only "$lib" | awk '$2 ~ /[TDBRVW]/ {print $3}' \
      | grep -vE '^(fxp_|_init$|_fini$|_edata$|_end$|__bss_start$)')
n=$(nm -D --defined-only "$lib" | awk '$2 ~ /[T]/' | grep -c ' fxp_')
if [ -n "$bad" ]; then
    echo "non-fxp_ exports in $lib:"; echo "$bad"; exit 1
fi
if [ "$n" -lt 10 ]; then
    echo "only $n fxp_ functions exported from $lib: visibility broken?"; exit 1
fi
echo "$n fxp_ functions exported, nothing else"
