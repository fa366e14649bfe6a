#!/usr/bin/env python3
"""Side-by-side kernel benchmark (issue 15), the PyTorch half.

Builds the same networks as `examples/bench_kernels.rs` from the weights it dumped
(`OUT_DIR/weights.bin` + `manifest.json`), checks that torch's outputs equal the Rust fused
outputs, then times the same ops at 2 threads and writes `OUT_DIR/torch_ROUND.json`.
`table` combines the rounds into a rust/torch ratio table (median over rounds).

    python3 torch_reference.py time OUT_DIR ROUND
    python3 torch_reference.py table OUT_DIR

torch is optional (never needed by the tests): `pip install torch numpy`.
"""
import json
import statistics
import sys
import time
from pathlib import Path

STEPS = 5  # Langevin steps per timed call, as in the Rust half
REPS = 5


def load(out):
    import numpy as np
    import torch
    man = json.loads((out / "manifest.json").read_text())
    blob = np.fromfile(out / "weights.bin", dtype="<f4")

    def get(name):
        m = man[name]
        n = int(np.prod(m["shape"]))
        a = blob[m["offset"]:m["offset"] + n].reshape(m["shape"])
        return torch.from_numpy(a.copy())
    return man, get


def time_ms(f, reps=REPS):
    f()
    ts = []
    for _ in range(reps):
        s = time.perf_counter()
        f()
        ts.append((time.perf_counter() - s) * 1e3)
    return sorted(ts)[reps // 2]


def mlp(get, meta, prefix):
    import torch
    import torch.nn.functional as F
    lin = lambda n: (get(f"{prefix}.{n}.w"), get(f"{prefix}.{n}.b"))
    inp = lin("input")
    blocks = [(lin(f"block{k}.l1"), lin(f"block{k}.l2")) for k in range(meta["blocks"])]
    head = lin("head")

    def energy(x):  # burn layout: y = x W + b, W [in, out]
        h = F.silu(torch.addmm(inp[1], x, inp[0]))
        for (w1, b1), (w2, b2) in blocks:
            h = h + torch.addmm(b2, F.silu(torch.addmm(b1, h, w1)), w2)
        return torch.addmm(head[1], F.silu(h), head[0]).squeeze(1)
    return energy


def cnn(get):
    return cnn_of([get(n) for n in (
        "cnn.encoder.weight", "cnn.encoder.bias", "cnn.embedding.weight",
        "cnn.embedding.bias", "cnn.decoder.weight", "cnn.decoder.bias")])


def cnn_of(params):
    import torch.nn.functional as F
    ew, eb, lw, lb, dw, db = params

    def score(x):  # x [B, L, 20], GGS: conv -> Linear + ReLU -> max over length -> Linear
        h = F.conv1d(x.transpose(1, 2), ew, eb).transpose(1, 2)
        h = F.relu(F.linear(h, lw, lb)).max(dim=1).values
        return F.linear(h, dw, db).squeeze(1)
    return score


def seq_conv(get, meta, prefix):
    """gfp.toml's protein energy: residual Conv1d blocks, position-sum readout (SiLU)."""
    import torch
    import torch.nn.functional as F
    conv = lambda n: (get(f"{prefix}.{n}.w"), get(f"{prefix}.{n}.b"))
    inp = conv("input")
    blocks = [(conv(f"block{k}.c1"), conv(f"block{k}.c2")) for k in range(meta["blocks"])]
    l1 = (get(f"{prefix}.head.l1.w"), get(f"{prefix}.head.l1.b"))
    l2 = (get(f"{prefix}.head.l2.w"), get(f"{prefix}.head.l2.b"))
    emb, scale, length = get(f"{prefix}.embedding"), meta["scale"], meta["length"]
    pad = inp[0].shape[2] // 2

    def energy(x):  # x [B, L*20] row-major [L, 20]
        h = x.view(x.shape[0], length, -1).transpose(1, 2)
        h = F.silu(F.conv1d(h, inp[0], inp[1], padding=pad))
        for (w1, b1), (w2, b2) in blocks:
            h = h + F.conv1d(F.silu(F.conv1d(h, w1, b1, padding=pad)), w2, b2, padding=pad)
        tok = (F.silu(h) + emb).transpose(1, 2)  # [B, L, hidden]
        out = torch.matmul(F.silu(torch.matmul(tok, l1[0]) + l1[1]), l2[0]) + l2[1]
        return scale * out.sum(dim=(1, 2))
    params = [inp[0], inp[1], l1[0], l1[1], l2[0], l2[1], emb]
    for (w1, b1), (w2, b2) in blocks:
        params += [w1, b1, w2, b2]
    return energy, params


def flow_loss_grad(energy, params, xt, target, w):
    """The EM warm-up loss mean_b w_b mean_d (grad V + target)^2 and its parameter gradient
    (double backward through the input gradient, as the official trainer)."""
    import torch
    x = xt.detach().requires_grad_(True)
    (g,) = torch.autograd.grad(energy(x).sum(), x, create_graph=True)
    loss = (w * (g + target).pow(2).mean(dim=1)).mean()
    # allow_unused: the head's output bias does not enter grad V (its gradient is zero)
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    grads = [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads)]
    return loss.detach(), grads


def energy_and_grad(f, x):
    import torch
    x = x.detach().requires_grad_(True)
    e = f(x)
    (g,) = torch.autograd.grad(e.sum(), x)
    return e.detach(), g


def rel(a, b):
    return float((a - b).abs().max() / (b.abs().max() + 1e-12))


def cmd_time(out, rnd):
    import torch
    torch.set_num_threads(2)
    torch.manual_seed(0)
    man, get = load(out)
    ms, checks = {}, {}
    for key, meta in sorted(man.items()):
        if not (key.startswith("mlp") and key.endswith(".meta")):
            continue
        p, dim = key[:-5], meta["dim"]
        f = mlp(get, meta, p)
        x = get(f"{p}.x")
        e, g = energy_and_grad(f, x)
        checks[f"mlp_d{dim}"] = {"energy": rel(e, get(f"{p}.energy")), "grad": rel(g, get(f"{p}.grad"))}
        dt, s = 1e-3, (2 * 0.1 * 1e-3) ** 0.5

        def run(x=x, f=f):
            for _ in range(STEPS):
                _, g = energy_and_grad(f, x)
                x = x - dt * g + s * torch.randn_like(x)
        ms[f"langevin_step/mlp_d{dim}_b{x.shape[0]}"] = time_ms(run) / STEPS
    for key, meta in sorted(man.items()):
        if not (key.startswith("seq") and key.endswith(".meta")):
            continue
        p, length = key[:-5], meta["length"]
        energy, params = seq_conv(get, meta, p)
        for t in params:
            t.requires_grad_(True)
        x = get(f"{p}.x")
        e, g = energy_and_grad(energy, x)
        xt, target, w = get(f"{p}.xt"), get(f"{p}.target"), get(f"{p}.w")
        loss, grads = flow_loss_grad(energy, params, xt, target, w)
        norm = float(sum(gr.double().pow(2).sum() for gr in grads) ** 0.5)
        flow = get(f"{p}.flow")
        checks[f"seqconv_l{length}"] = {
            "energy": rel(e, get(f"{p}.energy")), "grad": rel(g, get(f"{p}.grad")),
            "flow_loss": abs(float(loss) - float(flow[0])) / abs(float(flow[0])),
            "flow_grad_norm": abs(norm - float(flow[1])) / float(flow[1])}
        dt, s = 1e-3, (2 * 0.1 * 1e-3) ** 0.5

        def run(x=x, f=energy):
            for _ in range(STEPS):
                _, g = energy_and_grad(f, x)
                x = x - dt * g + s * torch.randn_like(x)
        ms[f"langevin_step/seqconv_l{length}_b{x.shape[0]}"] = time_ms(run) / STEPS
        ms[f"flow_loss_grad/seqconv_l{length}_b{xt.shape[0]}"] = time_ms(
            lambda: flow_loss_grad(energy, params, xt, target, w))
    x0, x1 = get("ot.x0"), get("ot.x1")
    c = torch.cdist(x0.double(), x1.double()).pow(2).float()
    checks["ot_cost"] = rel(c, get("ot.cost"))
    b, d = x0.shape
    ms[f"ot_cost/b{b}_d{d}"] = time_ms(lambda: torch.cdist(x0, x1).pow(2))
    score = cnn(get)
    for key in sorted(man):
        if key.startswith("cnn") and key.endswith(".x"):
            length = int(key[3:-2])
            x = get(key)
            s, g = energy_and_grad(score, x)
            checks[f"cnn_l{length}"] = {"score": rel(s, get(f"cnn{length}.score")), "grad": rel(g, get(f"cnn{length}.grad"))}
            ms[f"cnn_fwd_grad/b{x.shape[0]}_l{length}"] = time_ms(lambda x=x: energy_and_grad(score, x))
    ew, eb = get("cnn.encoder.weight"), get("cnn.encoder.bias")
    lw, lb = get("cnn.embedding.weight"), get("cnn.embedding.bias")
    dw, db = get("cnn.decoder.weight"), get("cnn.decoder.bias")
    for key in sorted(man):
        if key.startswith("cnntrain") and key.endswith(".seqs"):
            length = int(key[len("cnntrain"):-5])
            idx = get(key).long()
            y = get(f"cnntrain{length}.y")
            params = [t.clone().requires_grad_(True) for t in (ew, eb, lw, lb, dw, db)]
            opt = torch.optim.Adam(params, lr=1e-4, eps=1e-8, weight_decay=1e-4)
            train_score = cnn_of(params)

            def step(idx=idx, y=y, opt=opt, f=train_score):
                x = torch.nn.functional.one_hot(idx, 20).float()
                opt.zero_grad()
                loss = (f(x) - y).pow(2).mean()
                loss.backward()
                opt.step()
            ms[f"cnn_train_step/b{idx.shape[0]}_l{length}"] = time_ms(step)
    report = {"round": rnd, "torch": torch.__version__, "threads": torch.get_num_threads(),
              "max_rel_diff_vs_rust": checks, "ms": ms}
    (out / f"torch_{rnd}.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


def cmd_table(out):
    rust = [json.loads(p.read_text()) for p in sorted(out.glob("rust_*.json"))]
    torch = [json.loads(p.read_text()) for p in sorted(out.glob("torch_*.json"))]
    ops = sorted(rust[0]["ms"])
    print(f"rounds: rust {len(rust)}, torch {len(torch)} (medians over rounds; ratio < 1 = Rust faster)\n")
    print("| op | rust fused ms | rust burn ms | torch ms | fused/torch | burn/torch |")
    print("|---|---|---|---|---|---|")
    for op in ops:
        med = lambda key: statistics.median(r["ms"][op][key] for r in rust) if key in rust[0]["ms"][op] else None
        fused, burn = med("fused"), med("burn")
        tt = [t["ms"][op] for t in torch if op in t["ms"]]
        tm = statistics.median(tt) if tt else None
        fmt = lambda v: "-" if v is None else f"{v:.3f}"
        ratio = lambda v: "-" if v is None or tm is None else f"{v / tm:.2f}"
        print(f"| {op} | {fmt(fused)} | {fmt(burn)} | {fmt(tm)} | {ratio(fused)} | {ratio(burn)} |")


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "time":
        cmd_time(Path(sys.argv[2]), sys.argv[3] if len(sys.argv) > 3 else "0")
    elif len(sys.argv) == 3 and sys.argv[1] == "table":
        cmd_table(Path(sys.argv[2]))
    else:
        sys.exit(__doc__)
