"""A scikit-learn challenger for gyre: one-hot encoding + HistGradientBoostingClassifier,
exported with skl2onnx so `gyre serve` can run it.

Declared in gyre.toml:

    [learners.sklearn]
    command = "python3 examples/learners/sklearn_hgb.py"

and trained with `gyre train --learner sklearn -p max_iter=200 -p learning_rate=0.1 --seed 3`.
It speaks gyre's learner protocol version 1 (docs/learner-protocol.md): read GYRE_SPEC,
GYRE_TRAIN and GYRE_PREDICT, write GYRE_PREDICTIONS (and GYRE_MODEL).
"""

import json
import os
import sys
import time

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

started = time.perf_counter()
spec = json.load(open(os.environ["GYRE_SPEC"]))
if spec["protocol"] != 1:
    sys.exit(f"this learner speaks protocol 1, gyre asked for {spec['protocol']}")
params = spec["params"]
features = spec["features"]
categorical = [f["name"] for f in features if f["kind"] == "categorical"]
numeric = [f["name"] for f in features if f["kind"] != "categorical"]


def frame(path):
    df = pd.read_parquet(path)
    # Serving sends a missing or unseen category as "", so training sees the same.
    for c in categorical:
        df[c] = df[c].fillna("").astype(str)
    for c in numeric:
        df[c] = df[c].astype("float32")
    return df


train = frame(os.environ["GYRE_TRAIN"])
predict = frame(os.environ["GYRE_PREDICT"])
print(f"read {len(train)} training rows, {len(predict)} to predict", flush=True)

encode = ColumnTransformer(
    [
        ("categories", OneHotEncoder(handle_unknown="ignore", sparse_output=False), categorical),
        ("numbers", SimpleImputer(strategy="median"), numeric),
    ]
)
settings = dict(
    max_iter=int(params.get("max_iter", 200)),
    learning_rate=float(params.get("learning_rate", 0.1)),
    max_leaf_nodes=int(params.get("max_leaf_nodes", 31)),
    random_state=spec["seed"],
    early_stopping=False,
)
if spec["task"] == "regression":
    model = HistGradientBoostingRegressor(**settings)
else:
    model = HistGradientBoostingClassifier(**settings)
pipe = Pipeline([("encode", encode), ("model", model)])
X = train[categorical + numeric]
pipe.fit(X, train[spec["target"]], model__sample_weight=train["weight"].to_numpy())
print(f"fitted in {time.perf_counter() - started:.1f}s", flush=True)

out = pd.DataFrame({"row_id": predict["row_id"]})
Xp = predict[categorical + numeric]
if spec["task"] == "regression":
    out["prediction"] = pipe.predict(Xp).astype("float64")
else:
    proba = pipe.predict_proba(Xp)
    for i, cls in enumerate(pipe.classes_):
        out[str(cls)] = proba[:, i]
    # Every class of the spec gets a column, even one absent from these training rows.
    for cls in spec["classes"]:
        if cls not in out:
            out[cls] = 0.0
    out = out[["row_id"] + spec["classes"]]
out.to_parquet(os.environ["GYRE_PREDICTIONS"], index=False)

# The model, as ONNX: one named input per feature (strings for categories, float for numbers),
# probabilities as a plain tensor (no ZipMap), which is what gyre serve feeds and reads.
from skl2onnx import to_onnx
from skl2onnx.common.data_types import FloatTensorType, StringTensorType

inputs = [(c, StringTensorType([None, 1])) for c in categorical]
inputs += [(c, FloatTensorType([None, 1])) for c in numeric]
options = {id(model): {"zipmap": False}} if spec["task"] != "regression" else None
onx = to_onnx(pipe, initial_types=inputs, options=options, target_opset={"": 17, "ai.onnx.ml": 3})
with open(os.environ["GYRE_MODEL"], "wb") as f:
    f.write(onx.SerializeToString())
print(f"done in {time.perf_counter() - started:.1f}s", flush=True)
