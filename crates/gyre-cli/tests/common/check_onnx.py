"""Runs an export's model.onnx with onnxruntime over holdout_inputs.parquet and prints, as JSON,
the largest absolute difference from the scores gyre stored in predictions.parquet.

Usage: python3 check_onnx.py EXPORT_DIR (from crates/gyre-cli/tests/export.rs)
"""
import json
import sys

import numpy as np
import onnxruntime as ort
import pyarrow.parquet as pq

out = sys.argv[1]
spec = json.load(open(f"{out}/inputs.json"))
inputs = pq.read_table(f"{out}/holdout_inputs.parquet").to_pydict()
preds = pq.read_table(f"{out}/predictions.parquet").to_pydict()
names = [f["name"] for f in spec["features"]]
x = np.column_stack([np.asarray(inputs[n], dtype=np.float64) for n in names])
assert inputs["row_id"] == preds["row_id"], "rows in the same order"

options = ort.SessionOptions()
options.intra_op_num_threads = 1
session = ort.InferenceSession(f"{out}/model.onnx", options, providers=["CPUExecutionProvider"])
(input_meta,) = session.get_inputs()
(got,) = session.run([spec["output"]["name"]], {input_meta.name: x})
if spec["output"]["name"] == "prediction":
    want = np.asarray(preds["prediction"], dtype=np.float64).reshape(-1, 1)
else:
    cols = [c[2:-1] for c in spec["output"]["columns"]]  # "P(class)"
    want = np.column_stack([np.asarray(preds[f"score_{c}"], dtype=np.float64) for c in cols])
assert got.shape == want.shape, (got.shape, want.shape)
assert got.dtype == np.float64, got.dtype
meta = session.get_modelmeta().custom_metadata_map
print(json.dumps({
    "rows": int(x.shape[0]),
    "max_abs_diff": float(np.max(np.abs(got - want))),
    "missing_cells": int(np.isnan(x).sum()),
    "metadata_run": meta.get("gyre.run"),
    "onnxruntime": ort.__version__,
}))
