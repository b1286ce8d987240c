#!/bin/bash
set -euxo pipefail

install -d "${PREFIX}/share/greet"
install -m 644 greetings.txt README "${PREFIX}/share/greet/"
