#!/bin/sh
# Rebuilds the example sources' tarballs reproducibly (fixed order, owner and mtime; gzip without a name or time).
# The recipes pin their sha256: after changing a source, update sha256 in its feedstock's meta.yaml.
set -eu
cd "$(dirname "$0")"
for dir in greet-1.2.0 shout-0.3.1 hello-1.0.0 greet-data-2024.1; do
  tar --sort=name --mtime='2024-01-01 00:00:00Z' --owner=0 --group=0 --numeric-owner --format=ustar -cf - "$dir" |
    gzip -9n >"$dir.tar.gz"
done
sha256sum ./*.tar.gz
