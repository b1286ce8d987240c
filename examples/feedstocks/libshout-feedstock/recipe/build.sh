#!/bin/bash
# No build system upstream: compile directly with the cross compiler conda-build puts in $CC.
set -euxo pipefail

${CC} ${CFLAGS} -I"${PREFIX}/include" -fPIC -c shout.c -o shout.o
${CC} ${LDFLAGS} -L"${PREFIX}/lib" -shared -Wl,-soname,libshout.so.0 -o libshout.so.0 shout.o -lgreet
install -d "${PREFIX}/lib" "${PREFIX}/include"
install -m 755 libshout.so.0 "${PREFIX}/lib/libshout.so.0"
ln -sf libshout.so.0 "${PREFIX}/lib/libshout.so"
install -m 644 shout.h "${PREFIX}/include/shout.h"
