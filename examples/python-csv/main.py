"""Summarise /input/sales.csv by a column given in the block's parameters."""
import csv
import os

import berth  # berth's helper library, in every base image
from berth_demo_stats import summarize

params = berth.parameters()
group_by, value = params["group_by"], params["value"]

with open("/input/sales.csv", newline="") as f:
    rows = list(csv.DictReader(f))

summary = summarize(rows, group_by, value)

out = os.path.join(berth.out_dir(), "summary.csv")
with open(out, "w", newline="") as f:
    w = csv.writer(f)
    w.writerow([group_by, "count", "total", "mean"])
    for key, (count, total) in sorted(summary.items()):
        w.writerow([key, count, f"{total:.2f}", f"{total / count:.2f}"])

print(f"in container: {berth.in_container()}; read {len(rows)} rows from /input/sales.csv")
for key, (count, total) in sorted(summary.items()):
    print(f"  {key:<8} {count:>3} sales  total {total:>9.2f}")
print(f"wrote {out}")
