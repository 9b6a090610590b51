"""berth's helper library for Python blocks.

    import berth
    params = berth.parameters()          # the spec's parameters, from /data/config.json
    out = berth.out_dir()                 # write results here; they come back to the caller
    if berth.in_container(): ...

The data folder is /data (BERTH_DATA_DIR): config.json, in/ (inputs), out/ (outputs).
"""
import json
import os

__all__ = [
    "in_container", "data_dir", "config", "parameters", "in_dir", "out_dir",
    "in_tables_dir", "in_files_dir", "out_tables_dir", "out_files_dir",
]
__version__ = "1.0.0"

_config = None


def in_container():
    """True when running inside a berth container."""
    return os.environ.get("BERTH_IN_CONTAINER") == "1"


def data_dir():
    """The data folder: /data in a container (BERTH_DATA_DIR)."""
    return os.environ.get("BERTH_DATA_DIR", "/data")


def config():
    """The parsed /data/config.json ({} when there is none)."""
    global _config
    if _config is None:
        path = os.path.join(data_dir(), "config.json")
        try:
            with open(path, encoding="utf-8") as f:
                _config = json.load(f)
        except FileNotFoundError:
            _config = {}
    return _config


def parameters():
    """The block's parameters (config.json's "parameters")."""
    return config().get("parameters") or {}


def _dir(*parts, create=False):
    path = os.path.join(data_dir(), *parts)
    if create:
        os.makedirs(path, exist_ok=True)
    return path


def in_dir():
    return _dir("in")


def out_dir():
    """Where to write results (created if missing)."""
    return _dir("out", create=True)


def in_tables_dir():
    return _dir("in", "tables")


def in_files_dir():
    return _dir("in", "files")


def out_tables_dir():
    return _dir("out", "tables", create=True)


def out_files_dir():
    return _dir("out", "files", create=True)
