"""A component written the way Keboola's Python library keboola.component writes outputs.

Reads   /data/config.json: parameters, storage, authorization.oauth_api.credentials
        /data/in/tables/orders.csv (+ manifest), /data/in/state.json
Writes  /data/out/tables/regions.csv: the LEGACY manifest format, every key the library writes
        /data/out/tables/orders_copy.csv: the format the library picks from the environment
            (NEW when KBC_DATA_TYPE_SUPPORT is authoritative or hints, as on Keboola)
        /data/out/files/report.txt: a file manifest with every key the library writes
        /data/in/user/cache.json and /data/scratch.txt, read back
        /data/out/state.json: {"runs": n}
The rules below (which format, which keys, which values are dropped) follow the library's
behaviour as documented for berth's conformance suite; the code is written for this test.
"""
import csv
import json
import os
import sys

DATA = os.environ.get("KBC_DATADIR", "/data/")


def path(*p):
    return os.path.join(DATA, *p)


def running_in_kbc():
    return bool(os.environ.get("KBC_STACKID"))


def expects_legacy_manifest(config):
    """Legacy unless the data type support is authoritative or hints; the configuration's
    storage.output.data_type_support overrides the environment."""
    override = config.get("storage", {}).get("output", {}).get("data_type_support")
    if override:
        return override not in ("authoritative", "hints")
    return running_in_kbc() and os.environ.get("KBC_DATA_TYPE_SUPPORT") not in ("authoritative", "hints")


def is_legacy_queue():
    return running_in_kbc() and "queuev2" not in os.environ.get("KBC_PROJECT_FEATURE_GATES", "")


def drop_empty(v):
    """None, [], {} and "" are dropped, recursively; False is kept."""
    if isinstance(v, dict):
        out = {}
        for k, x in v.items():
            x = drop_empty(x)
            if x is None or x == [] or x == {} or x == "":
                continue
            out[k] = x
        return out
    if isinstance(v, list):
        return [drop_empty(x) for x in v]
    return v


def column_dict(c):
    """A schema column: values equal to False are never written."""
    d = {"name": c["name"], "data_type": c.get("data_type", {"base": {"type": "STRING"}}),
         "nullable": c.get("nullable", True), "primary_key": c.get("primary_key", False),
         "description": c.get("description"), "metadata": c.get("metadata")}
    return {k: v for k, v in d.items() if v is not False}


def table_manifest(t, legacy):
    if legacy:
        m = {"destination": t.get("destination"),
             "columns": [c["name"] for c in t["schema"]] if not t.get("has_header") else None,
             "incremental": t.get("incremental"),
             "primary_key": [c["name"] for c in t["schema"] if c.get("primary_key")],
             "write_always": t.get("write_always", False),
             "delimiter": ",", "enclosure": '"',
             "metadata": ([{"key": "KBC.description", "value": t["description"]}] if t.get("description") else [])
             + [{"key": k, "value": v} for k, v in t.get("table_metadata", {}).items()],
             "column_metadata": {c["name"]: [{"key": k, "value": v} for k, v in c.get("metadata", {}).items()]
                                 for c in t["schema"] if c.get("metadata")},
             "delete_where_column": t.get("delete_where_column"),
             "delete_where_values": t.get("delete_where_values"),
             "delete_where_operator": t.get("delete_where_operator")}
    else:
        tm = dict(t.get("table_metadata", {}))
        if t.get("description"):
            tm["KBC.description"] = t["description"]
        m = {"destination": t.get("destination"), "incremental": t.get("incremental"),
             "write_always": t.get("write_always", False), "delimiter": ",", "enclosure": '"',
             "delete_where_column": t.get("delete_where_column"),
             "delete_where_values": t.get("delete_where_values"),
             "delete_where_operator": t.get("delete_where_operator"),
             "manifest_type": "out", "has_header": bool(t.get("has_header")),
             "table_metadata": tm, "schema": [column_dict(c) for c in t["schema"]]}
    if is_legacy_queue():
        m.pop("write_always", None)
    return drop_empty(m)


def write_manifest(name, m):
    with open(path("out", "tables", name + ".manifest"), "w") as f:
        json.dump(m, f)


def file_manifest(tags, is_public=False, is_permanent=False, is_encrypted=False, notify=False):
    m = {"is_public": is_public, "is_permanent": is_permanent, "is_encrypted": is_encrypted, "notify": notify}
    if tags:
        m["tags"] = tags
    return m


config = json.load(open(path("config.json")))
params = config.get("parameters", {})

# Stored OAuth credentials, as Keboola's runner gives them.
creds = config.get("authorization", {}).get("oauth_api", {}).get("credentials")
if not creds:
    print("no authorization.oauth_api.credentials", file=sys.stderr)
    sys.exit(1)
token = json.loads(creds["#data"])["access_token"]
# A credential printed as it is shows as [hidden] in the job's output: print what it is.
print(f"oauth_app_key_digits={len(creds['appKey'])}:{creds['appKey'].isdigit()}")
print(f"oauth_token_length={len(token)}")

# Components write under in/user and at the top of /data.
with open(path("in", "user", "cache.json"), "w") as f:
    json.dump({"cached": True}, f)
with open(path("scratch.txt"), "w") as f:
    f.write("scratch")
print(f"user_file={'ok' if json.load(open(path('in', 'user', 'cache.json')))['cached'] else 'bad'}")
print(f"top_file={'ok' if open(path('scratch.txt')).read() == 'scratch' else 'bad'}")

state = json.load(open(path("in", "state.json")))
if not isinstance(state, dict):
    raise TypeError("Dictionary expected as a state file datatype!")

with open(path("in", "tables", "orders.csv"), newline="") as f:
    orders = list(csv.DictReader(f))
in_manifest = json.load(open(path("in", "tables", "orders.csv.manifest")))

totals = {}
for o in orders:
    totals[o["region"]] = totals.get(o["region"], 0) + int(o["amount"])

# The legacy format, forced (as the library's write_tabledef_manifest does): a header-less
# CSV whose columns are in the manifest.
with open(path("out", "tables", "regions.csv"), "w", newline="") as f:
    w = csv.writer(f, lineterminator="\n")
    for region in sorted(totals):
        w.writerow([region, totals[region]])
write_manifest("regions.csv", table_manifest({
    "destination": "out.c-py.regions", "incremental": True, "write_always": True, "has_header": False,
    "description": "Totals by region", "table_metadata": {"source": in_manifest["id"]},
    "schema": [{"name": "region", "primary_key": True},
               {"name": "total", "metadata": {"KBC.datatype.basetype": "NUMERIC"}}],
    "delete_where_column": "region", "delete_where_values": params.get("drop_regions", []),
    "delete_where_operator": "eq"}, legacy=True))

# The format the environment asks for, with a header row.
legacy = expects_legacy_manifest(config)
print(f"format={'legacy' if legacy else 'new'} legacy_queue={is_legacy_queue()}")
with open(path("out", "tables", "orders_copy.csv"), "w", newline="") as f:
    w = csv.writer(f, lineterminator="\n")
    w.writerow(["id", "region", "amount"])
    for o in orders:
        w.writerow([o["id"], o["region"], o["amount"]])
write_manifest("orders_copy.csv", table_manifest({
    "destination": "out.c-py.orders_copy", "incremental": False, "has_header": True,
    "description": "A copy of the orders", "table_metadata": {"owner": "kbc-py"},
    "schema": [{"name": "id", "data_type": {"base": {"type": "INTEGER"}}, "nullable": False, "primary_key": True},
               {"name": "region", "description": "where", "metadata": {"KBC.description": "where"}},
               {"name": "amount", "data_type": {"base": {"type": "NUMERIC", "length": "10,2"}}}]}, legacy=legacy))
for name in ("regions.csv", "orders_copy.csv"):
    print(f"manifest:{name}={open(path('out', 'tables', name + '.manifest')).read()}")

with open(path("out", "files", "report.txt"), "w") as f:
    f.write(f"{len(orders)} orders in {len(totals)} regions\n")
with open(path("out", "files", "report.txt.manifest"), "w") as f:
    json.dump(file_manifest(["kbc-py", "report"], is_permanent=True, notify=True), f)

with open(path("out", "state.json"), "w") as f:
    json.dump({"runs": state.get("runs", 0) + 1}, f)
