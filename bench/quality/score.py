#!/usr/bin/python3
"""Samples-averaged F2 of a submission.csv against the emoji test labels.

  /usr/bin/python3 bench/quality/score.py DATA/test_labels.csv SUBMISSION.csv

The same scorer reads imet's and the PyTorch script's submissions, so the
two test F2 figures of the quality benchmark are computed identically. A
test image missing from the submission scores 0.
"""
import csv
import sys

truth = {r["id"]: set(r["attribute_ids"].split()) for r in csv.DictReader(open(sys.argv[1]))}
pred = {r["id"]: set(r["attribute_ids"].split()) for r in csv.DictReader(open(sys.argv[2]))}
s = 0.0
for i, t in truth.items():
    p = pred.get(i, set())
    tp = len(p & t)
    if tp:
        s += 5 * tp / (4 * len(t) + len(p))
print(f"{s / len(truth):.4f}")
