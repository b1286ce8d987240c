#!/bin/bash
set -euxo pipefail

make -j"${CPU_COUNT:-1}" CC="${CC}" CFLAGS="${CFLAGS}" LDFLAGS="${LDFLAGS}"
make install PREFIX="${PREFIX}"
