"""Example component: sums orders per group, writes a table, a report file and a state.

Reads  /data/config.json            parameters: group_by, value
       /data/in/tables/orders.csv   (+ .manifest), from the input mapping
       /data/in/state.json          what the last successful run saved
Writes /data/out/tables/summary.csv (+ .manifest: incremental upsert by the group column)
       /data/out/files/report.txt   (+ .manifest: tags)
       /data/out/state.json         runs so far, rows seen
Exit 1 on a user error (bad parameters): the message is shown to the user.
"""
import csv
import json
import os
import sys

DATA = os.environ.get("KBC_DATADIR", "/data/")
cfg = json.load(open(os.path.join(DATA, "config.json")))
params = cfg.get("parameters", {})
group_by, value = params.get("group_by", "region"), params.get("value", "amount")

src = os.path.join(DATA, "in", "tables", "orders.csv")
with open(src, newline="") as f:
    rows = list(csv.DictReader(f))
if rows and (group_by not in rows[0] or value not in rows[0]):
    print(f"parameters: column {group_by!r} or {value!r} is not in orders.csv (columns: {', '.join(rows[0])})", file=sys.stderr)
    sys.exit(1)

totals = {}
for r in rows:
    g = totals.setdefault(r[group_by], [0, 0.0])
    g[0] += 1
    g[1] += float(r[value])

state = json.load(open(os.path.join(DATA, "in", "state.json")))
runs = state.get("runs", 0) + 1

out_tables = os.path.join(DATA, "out", "tables")
with open(os.path.join(out_tables, "summary.csv"), "w", newline="") as f:
    w = csv.writer(f)
    w.writerow([group_by, "orders", "total"])
    for k in sorted(totals):
        w.writerow([k, totals[k][0], f"{totals[k][1]:.2f}"])
with open(os.path.join(out_tables, "summary.csv.manifest"), "w") as f:
    json.dump({"destination": "out.c-sales.summary", "incremental": True, "primary_key": [group_by]}, f)

out_files = os.path.join(DATA, "out", "files")
with open(os.path.join(out_files, "report.txt"), "w") as f:
    f.write(f"run {runs}: {len(rows)} orders in {len(totals)} groups\n")
with open(os.path.join(out_files, "report.txt.manifest"), "w") as f:
    json.dump({"tags": ["sales-report"]}, f)

with open(os.path.join(DATA, "out", "state.json"), "w") as f:
    json.dump({"runs": runs, "last_rows": len(rows), "previous": state}, f)

print(f"run {runs} (previous state: {json.dumps(state)}); {len(rows)} orders -> {len(totals)} groups")
