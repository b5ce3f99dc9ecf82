#!/usr/bin/env bash
# The GPU check (issue #22): on one GPU, in this order
#   1. kernel parity: the CubeCL kernels against the CPU kernels and the PyTorch op fixtures
#      (tests gpu_kernels, selective_scan, recurrence_conv on $SSM_TEST_DEVICE);
#   2. scan throughput at B=8, D=1536, L=2048, N=16, forward and forward + backward
#      (`ssm-kernels --device`, beside the tensor-op reference on the same device);
#   3. one training step of each app's default model on the device (generated data where the
#      app has it, ../shared/data otherwise; an app whose data is absent is skipped, said so);
#   4. PyTorch's `selective_scan_ref` (mamba_ssm's reference, restated below) on the same GPU
#      and shape, when torch with CUDA imports there, for the ratio.
# Usage: scripts/gpu-check.sh [DEVICE]   DEVICE: cuda (default), cuda:N, vulkan, vulkan:N,
# or vulkan:cpu (Mesa's lavapipe: the same steps without a GPU, at GPU_CHECK_SHAPE=small).
# The cargo feature is the device's kind (`cuda` needs LLVM at build time: a machine with
# internet access). Results: target/gpu-check/ (logs, scan.json, summary.txt).
set -euo pipefail
cd "$(dirname "$0")/.."
device=${1:-cuda}
feature=${device%%:*}
shared=$(realpath "${SSM_SHARED:-../shared}") # absolute: cargo runs tests from core/
out=target/gpu-check
mkdir -p "$out"
export SSM_FIXTURES=${SSM_FIXTURES:-$shared/fixtures}
summary=$out/summary.txt
echo "gpu-check on $device ($(date -u +%FT%TZ), $(git rev-parse --short HEAD))" | tee "$summary"

note() { echo "$*" | tee -a "$summary"; }
timed() { # name, command…: runs it, notes the exit status and seconds
    local name=$1 start rc
    shift
    start=$(date +%s)
    set +e
    "$@" >"$out/$name.log" 2>&1
    rc=$?
    set -e
    note "$(printf '%-28s exit %3d  %5d s' "$name" "$rc" $(($(date +%s) - start)))"
}

echo "building (feature $feature) …"
cargo build --release -p ssm-apps --features "$feature" --bins
cargo test --release -p ssm-core --features "$feature" --no-run --test gpu_kernels --test selective_scan --test recurrence_conv

# 1. Kernel parity (≤ 1e-4 against the CPU kernels and the fixtures).
SSM_TEST_DEVICE=$device SSM_REQUIRE_FIXTURES=1 timed parity \
    cargo test --release -p ssm-core --features "$feature" --test gpu_kernels --test selective_scan --test recurrence_conv -- fixture matches
grep -E "^test |test result" "$out/parity.log" | tee -a "$summary" || true

# 2. Scan throughput.
if [ "${GPU_CHECK_SHAPE:-full}" = small ]; then shape=(--batch 2 --dim 256 --len 512); else shape=(--batch 8 --dim 1536 --len 2048); fi
# (the recurrence over D channels: D·N = 24,576 would be 1.6 GB per tensor, over wgpu's buffer limit)
timed scan target/release/ssm-kernels --device "$device" "${shape[@]}" --state 16 --rec-channels "${shape[3]}" --reps 5 --json "$out/scan.json"
grep -E "^(device|selective|linear|kernel)" "$out/scan.log" | tee -a "$summary" || true

# 3. One training step of each app's default model.
bin=target/release
run_app() { # app, data check (a path, or - for generated data), arguments…
    local app=$1 need=$2
    shift 2
    if [ "$need" != - ] && [ ! -e "$need" ]; then
        note "$(printf '%-28s skipped: %s is absent' "train-$app" "$need")"
        return
    fi
    timed "train-$app" timeout 300 "$bin/ssm-$app" train --device "$device" --out "$out/run-$app" "$@"
}
run_app vision - --steps 1 --epochs 1
run_app language - --steps 1 --epochs 1 --eval-windows 4
run_app timeseries - --steps 1 --epochs 1
run_app graph "$shared/data/graph/planetoid/cora" --data "$shared/data/graph/planetoid/cora" --steps 1
D=$shared/data/tabular/adult
run_app tabular "$D/adult.data" --data "$D/adult.data" --test "$D/adult.test" --names-file "$D/adult.names" \
    --comment '|' --strip-suffix . --steps 1 --epochs 1
run_app audio "$shared/data/audio/fsdd" --data "$shared/data/audio/fsdd" --steps 1 --epochs 1

# 4. PyTorch's reference scan on the same GPU, when torch with CUDA is there.
if python3 -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
    timed torch-selective-scan-ref python3 - "${shape[@]}" <<'EOF'
# mamba_ssm's selective_scan_ref (ops/selective_scan_interface.py), restated: a Python loop over
# L with einsums, as the reference itself is; real A, B and C of shape [B, N, L].
import sys, time, torch
args = dict(zip(sys.argv[1::2], map(int, sys.argv[2::2])))
b, d, l, n = args["--batch"], args["--dim"], args["--len"], 16
dev = "cuda"
def ref(u, delta, A, B, C, D, z, bias):
    delta = torch.nn.functional.softplus(delta + bias[..., None])
    dA = torch.exp(torch.einsum("bdl,dn->bdln", delta, A))
    dBu = torch.einsum("bdl,bnl,bdl->bdln", delta, B, u)
    x = A.new_zeros((b, d, n)); ys = []
    for i in range(l):
        x = dA[:, :, i] * x + dBu[:, :, i]
        ys.append(torch.einsum("bdn,bn->bd", x, C[:, :, i]))
    y = torch.stack(ys, dim=2) + u * D[..., None]
    return y * torch.nn.functional.silu(z)
g = lambda *s: torch.randn(*s, device=dev, requires_grad=True)
u, delta, z = g(b, d, l), g(b, d, l), g(b, d, l)
A = (-torch.rand(d, n, device=dev) * 3.5 - 0.5).requires_grad_()
B, C, D, bias = g(b, n, l), g(b, n, l), g(d), g(d)
for name, bwd in (("fwd", False), ("fwd+bwd", True)):
    ts = []
    for _ in range(4):
        torch.cuda.synchronize(); t = time.time()
        y = ref(u, delta, A, B, C, D, z, bias)
        if bwd: y.sum().backward()
        torch.cuda.synchronize(); ts.append(time.time() - t)
    s = sorted(ts[1:])[1]
    print(f"torch selective_scan_ref {name} B={b} D={d} L={l} N={n}: {s*1e3:.1f} ms, {b*d*l*n/s/1e9:.3f} G state-updates/s")
EOF
    grep "torch" "$out/torch-selective-scan-ref.log" | tee -a "$summary" || true
else
    note "torch-selective-scan-ref     skipped: python3 with torch and CUDA is not installed here"
fi
echo "summary: $summary"
