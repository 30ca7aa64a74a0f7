#!/usr/bin/env bash
# Draws docs/architecture.svg from the import graph of internal/: one box a
# package, one cluster a family, an arrow where a package imports another
# (transitive imports left out, so the picture shows the layers), and the
# path of an image to a submission in bold. Needs Go and Graphviz (`dot`,
# Debian package graphviz).
#   scripts/architecture.sh            # writes docs/architecture.svg
set -euo pipefail
cd "$(dirname "$0")/.."
command -v dot >/dev/null || { echo "architecture: needs Graphviz's dot (apt-get install graphviz)" >&2; exit 1; }
tmp="$(mktemp)"
trap 'rm -f "$tmp" "$tmp.flow"' EXIT
edges="$(go list -f '{{$p := .ImportPath}}{{range .Imports}}{{$p}} {{.}}{{"\n"}}{{end}}' ./internal/... |
  awk '$2 ~ /^imet\/internal\// {sub("imet/internal/","",$1); sub("imet/internal/","",$2); print}')"
# The data path: image -> batch -> logits -> OOF -> thresholds -> submission.
flow="vision/imageio vision/pipeline vision/loader training/train postprocess/probs postprocess/thresholds postprocess/submission"
{
  echo 'digraph imet {'
  echo '  rankdir=LR; compound=true; newrank=true; fontname="Helvetica"; node [shape=box, style="rounded,filled", fillcolor=white, fontname="Helvetica", fontsize=11]; edge [color="#00000030", arrowsize=0.5];'
  for fam in $(echo "$edges" | tr ' ' '\n' | sort -u | cut -d/ -f1 | sort -u); do
    echo "  subgraph \"cluster_$fam\" { label=\"$fam/\"; style=filled; fillcolor=\"#eef3fb\"; color=\"#99aabb\";"
    for p in $(echo "$edges" | tr ' ' '\n' | sort -u | grep "^$fam/"); do echo "    \"$p\" [label=\"${p#*/}\"];"; done
    echo '  }'
  done
  # Transitive reduction keeps the picture readable: tred drops an edge
  # that another path already implies.
  echo "$edges" | awk '{printf "  \"%s\" -> \"%s\";\n", $1, $2}'
  echo '}'
} | tred > "$tmp"
{
  head -n -1 "$tmp"
  prev=""; i=0
  labels=(decode "augment, TTA" batches "logits, OOF" "thresholds" "submission")
  for p in $flow; do
    echo "  \"$p\" [fillcolor=\"#ffe9b3\", penwidth=2];"
    if [ -n "$prev" ]; then echo "  \"$prev\" -> \"$p\" [color=\"#c07000\", penwidth=2, constraint=false, label=\"${labels[$i]}\", fontsize=9, fontcolor=\"#c07000\"];"; i=$((i+1)); fi
    prev=$p
  done
  echo '}'
} > "$tmp.flow"
dot -Tsvg -o docs/architecture.svg "$tmp.flow"
[ -z "${PNG:-}" ] || dot -Tpng -o "$PNG" "$tmp.flow"
echo "architecture: docs/architecture.svg" >&2
