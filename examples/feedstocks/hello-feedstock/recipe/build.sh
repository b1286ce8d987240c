#!/bin/bash
set -euxo pipefail

make CC="${CC}" CFLAGS="${CFLAGS} -I${PREFIX}/include" LDFLAGS="${LDFLAGS} -L${PREFIX}/lib -Wl,-rpath,${PREFIX}/lib"
make install PREFIX="${PREFIX}"
