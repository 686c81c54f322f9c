#!/usr/bin/env python3
"""Issue 19's fine-tuned study on cluttered Fashion-MNIST: reads the fine-tuning logs (runs/*.log, written by
study.sh), tabulates test accuracy per configuration over seeds, compares each region policy with the uniform
baselines fine-tuned for themselves at the same average activation bits (linear between neighbouring widths), and
draws the frontier of each family (frontier.png, when matplotlib is installed)."""
import glob, json, math, os, re, statistics, sys

runs = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "runs")
out = os.path.dirname(os.path.abspath(__file__))
wrote = re.compile(r"wrote .*?\((test|validation) accuracy in the loop ([0-9.]+)% -> ([0-9.]+)%\); ([0-9.]+) s")

def bits(policy):
    return sum(int(b) * int(p) for b, p in (r.split(":") for r in policy.split(","))) / 100

results = {}
for log in sorted(glob.glob(os.path.join(runs, "*.log"))):
    name = os.path.basename(log)[:-4]
    m = None
    for line in open(log):
        m = wrote.search(line) or m
    if not m:
        continue
    seed = re.search(r"seed(\d+)$", name)
    if name.startswith("val-"):
        key, family, b = name, "validation", None
    elif name.startswith("region-"):
        policy = name[len("region-"):name.rindex("-seed")]
        parts = policy.split("-")
        policy = ",".join(parts[i] + ":" + parts[i + 1] for i in range(0, len(parts), 2))
        key, family, b = policy + " W4", "region", bits(policy)
    elif name.startswith("branchloss-"):
        weight = re.search(r"-sw(\d+)-", name).group(1)
        policy = "2:70,4:30"
        key, family, b = "%s W4, silhouette weight %s" % (policy, weight), "region", bits(policy)
    elif name.startswith("uniform-"):
        a = int(re.search(r"W4A(\d)", name).group(1))
        key, family, b = "W4A%d" % a, "uniform", float(a)
    else:
        continue
    results.setdefault(key, {"family": family, "bits": b, "runs": []})["runs"].append(
        {"name": name, "seed": int(seed.group(1)) if seed else 0, "split": m.group(1), "before": float(m.group(2)),
         "after": float(m.group(3)), "seconds": float(m.group(4))})

def stats(key):
    acc = [r["after"] for r in results[key]["runs"]]
    return statistics.mean(acc), (statistics.stdev(acc) if len(acc) > 1 else float("nan")), len(acc)

uniform = sorted((v["bits"], k) for k, v in results.items() if v["family"] == "uniform")
def uniform_at(b):
    """Uniform fine-tuned accuracy at b bits, linear between the neighbouring widths' means (None outside)."""
    for (b0, k0), (b1, k1) in zip(uniform, uniform[1:]):
        if b0 <= b <= b1:
            m0, m1 = stats(k0)[0], stats(k1)[0]
            t = (b - b0) / (b1 - b0)
            return m0 + t * (m1 - m0), (k0, k1), t
    return None

lines = ["Cluttered Fashion-MNIST 60x60 (seed-0 folder), from bundled-cluttered; test accuracy in the loop (10,000 images).",
         "", "%-36s %-9s %6s %8s %6s %5s  %s" % ("configuration", "family", "bits", "mean", "sd", "seeds", "seeds' accuracies")]
table = []
for key, v in sorted(results.items(), key=lambda kv: (kv[1]["family"] != "uniform", kv[1]["bits"] or 0, kv[0])):
    if v["family"] == "validation":
        continue
    m, sd, n = stats(key)
    accs = " / ".join("%.2f" % r["after"] for r in sorted(v["runs"], key=lambda r: r["seed"]))
    lines.append("%-36s %-9s %6.2f %7.2f%% %6.2f %5d  %s" % (key, v["family"], v["bits"], m, sd, n, accs))
    row = {"configuration": key, "family": v["family"], "bits": v["bits"], "mean": m, "sd": sd, "seeds": n,
           "runs": sorted(v["runs"], key=lambda r: r["seed"])}
    if v["family"] == "region":
        u = uniform_at(v["bits"])
        if u:
            ua, pair, t = u
            # The spread the difference is held to: the larger of the region policy's sd and the interpolated uniform sd.
            usd = (1 - t) * stats(pair[0])[1] + t * stats(pair[1])[1]
            spread = max(sd, usd)
            row.update({"uniform_at_bits": ua, "difference": m - ua, "spread": spread, "beats_by_more_than_spread": m - ua > spread})
            lines[-1] += "   vs uniform %.2f%% (%s-%s): %+.2f, spread %.2f" % (ua, pair[0], pair[1], m - ua, spread)
    table.append(row)
lines += ["", "Validation runs (choosing the learning rate, seed 0, last 5,000 training images held out):"]
for key, v in sorted(results.items()):
    if v["family"] == "validation":
        lines.append("  %-28s %.2f%% -> %.2f%%" % (key, v["runs"][0]["before"], v["runs"][0]["after"]))
text = "\n".join(lines) + "\n"
open(os.path.join(out, "study.txt"), "w").write(text)
json.dump(table, open(os.path.join(out, "study.json"), "w"), indent=1)
print(text)

try:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
except ImportError:
    sys.exit(0)
fig, ax = plt.subplots(figsize=(9, 5.5))
low, high = 84.0, 89.8
for family, colour in (("uniform", "tab:blue"), ("region", "tab:red")):
    # The branch-loss variants share 2:70,4:30's bits; they are in the table, not the plot.
    pts = sorted((r["bits"], r["mean"], r["sd"], r["configuration"]) for r in table
                 if r["family"] == family and "silhouette weight" not in r["configuration"])
    shown = [(b, max(m, low + 0.15), sd if m > low else 0) for b, m, sd, _ in pts]
    ax.errorbar([p[0] for p in shown], [p[1] for p in shown], yerr=[p[2] for p in shown], fmt="o-" if family == "uniform" else "s",
                color=colour, capsize=3, label=family + (" W4A1..W4A4" if family == "uniform" else " policies, learned silhouette"))
    for i, (b, m, sd, name) in enumerate(pts):
        label = name.replace(" W4", "") if family == "region" else name
        if m <= low:
            label += " (mean %.1f%%, sd %.1f: one seed collapsed)" % (m, sd)
        ax.annotate(label, (b, max(m, low + 0.15)), textcoords="offset points", xytext=(6, -12 if i % 2 == 0 else 8), fontsize=7,
                    color=colour)
ax.set_ylim(low, high)
ax.set_xlabel("average activation bits of the receiving layers (weights 4 bits)")
ax.set_ylabel("test accuracy (%), mean and sd over 3 seeds")
ax.set_title("Cluttered Fashion-MNIST 60x60, each fine-tuned for itself (1 epoch of 20,000 images)")
ax.axhline(89.75, color="gray", linestyle=":", linewidth=1)
ax.annotate("FP32 89.75%", (1.0, 89.75), textcoords="offset points", xytext=(0, 3), fontsize=7, color="gray")
ax.grid(alpha=0.3)
ax.legend(loc="lower right")
fig.tight_layout()
fig.savefig(os.path.join(out, "frontier.png"), dpi=120)
