#!/bin/sh
# Jupyter Notebook behind berth's proxy.
# - base_url is the path the browser sees (berth sets BERTH_BASE_URL=/proxy/<name>/).
# - No token and no password of its own: berth's proxy signs people in and lets only those
#   allowed to use this service reach it; the container's port is reachable by nothing else.
# - The proxy passes the browser's Host on, so Jupyter's own origin check (Origin vs Host)
#   passes for its WebSockets and POSTs without allow_origin.
set -eu
base="${BERTH_BASE_URL:-/}"
mkdir -p "$HOME/notebooks"
exec /usr/bin/jupyter-notebook \
  --no-browser \
  --ip=0.0.0.0 \
  --port=8888 \
  --notebook-dir="$HOME/notebooks" \
  --NotebookApp.base_url="$base" \
  --NotebookApp.token= \
  --NotebookApp.password= \
  --NotebookApp.allow_remote_access=True \
  --NotebookApp.quit_button=False
