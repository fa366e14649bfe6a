#!/usr/bin/env bash
# Side-by-side kernel benchmark driver (issue 15): alternates the Rust half
# (examples/bench_kernels.rs, release) and the torch half (torch_reference.py) A B A B for
# ROUNDS rounds, then prints the rust/torch ratio table. Run it in its own session on a
# shared machine so it gets its own CPU share:  setsid crates/em-protein/benches/kernels.sh OUT [ROUNDS]
set -euo pipefail
out=${1:-target/bench-kernels}
rounds=${2:-3}
here=$(cd "$(dirname "$0")" && pwd)
py=${PYTHON:-python3}   # a Python with torch + numpy, e.g. PYTHON=venv/bin/python3
# dev profile: deps -O3, ours -O2 (reuses the test build, no second burn build)
cargo build -p em-protein --example bench_kernels
bin=target/debug/examples/bench_kernels
uptime
for r in $(seq 1 "$rounds"); do
  "$bin" "$out" "$r"
  if "$py" -c "import torch" 2>/dev/null; then
    "$py" "$here/torch_reference.py" time "$out" "$r" > /dev/null
  fi
done
uptime
"$py" "$here/torch_reference.py" table "$out"
