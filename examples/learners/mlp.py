"""A neural-network challenger for gyre: imputation, scaling and one-hot encoding feeding a
scikit-learn MLP, exported with skl2onnx so `gyre serve` can run it.

Declared in gyre.toml:

    [learners.mlp]
    command = "python3 examples/learners/mlp.py"
    timeout = "20m"

and trained with `gyre train --learner mlp -p hidden=64 -p epochs=20 --seed 3`.
It speaks gyre's learner protocol version 1 (docs/learner-protocol.md).
"""

import json
import os
import sys
import time
import warnings

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.exceptions import ConvergenceWarning
from sklearn.impute import SimpleImputer
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

started = time.perf_counter()
spec = json.load(open(os.environ["GYRE_SPEC"]))
if spec["protocol"] != 1:
    sys.exit(f"this learner speaks protocol 1, gyre asked for {spec['protocol']}")
params = spec["params"]
categorical = [f["name"] for f in spec["features"] if f["kind"] == "categorical"]
numeric = [f["name"] for f in spec["features"] if f["kind"] != "categorical"]


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

hidden = int(params.get("hidden", 64))
layers = int(params.get("layers", 1))
settings = dict(
    hidden_layer_sizes=(hidden,) * layers,
    max_iter=int(params.get("epochs", 20)),
    alpha=float(params.get("alpha", 1e-4)),
    learning_rate_init=float(params.get("learning_rate", 1e-3)),
    batch_size=int(params.get("batch_size", 256)),
    random_state=spec["seed"],
)
net = MLPRegressor(**settings) if spec["task"] == "regression" else MLPClassifier(**settings)
pipe = Pipeline(
    [
        (
            "encode",
            ColumnTransformer(
                [
                    ("categories", OneHotEncoder(handle_unknown="ignore", sparse_output=False), categorical),
                    (
                        "numbers",
                        Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]),
                        numeric,
                    ),
                ]
            ),
        ),
        ("net", net),
    ]
)
X = train[categorical + numeric]
with warnings.catch_warnings():
    # A few epochs are the point of the `epochs` param, not a problem to warn about.
    warnings.simplefilter("ignore", ConvergenceWarning)
    # MLPs take no sample weights: rows are drawn by weight instead (the protocol's weight column).
    w = train["weight"].to_numpy()
    if not np.allclose(w, 1.0):
        rng = np.random.default_rng(spec["seed"])
        idx = rng.choice(len(train), size=len(train), p=w / w.sum())
        X, y = X.iloc[idx], train[spec["target"]].iloc[idx]
    else:
        y = train[spec["target"]]
    pipe.fit(X, y)
print(f"fitted {layers}x{hidden} in {time.perf_counter() - started:.1f}s", flush=True)

out = pd.DataFrame({"row_id": predict["row_id"]})
Xp = predict[categorical + numeric]
if spec["task"] == "regression":
    out["prediction"] = pipe.predict(Xp).astype("float64")
else:
    proba = pipe.predict_proba(Xp)
    for i, cls in enumerate(pipe.classes_):
        out[str(cls)] = proba[:, i]
    for cls in spec["classes"]:
        if cls not in out:
            out[cls] = 0.0
    out = out[["row_id"] + spec["classes"]]
out.to_parquet(os.environ["GYRE_PREDICTIONS"], index=False)

from skl2onnx import to_onnx
from skl2onnx.common.data_types import FloatTensorType, StringTensorType

inputs = [(c, StringTensorType([None, 1])) for c in categorical]
inputs += [(c, FloatTensorType([None, 1])) for c in numeric]
options = {id(net): {"zipmap": False}} if spec["task"] != "regression" else None
onx = to_onnx(pipe, initial_types=inputs, options=options, target_opset={"": 17, "ai.onnx.ml": 3})
with open(os.environ["GYRE_MODEL"], "wb") as f:
    f.write(onx.SerializeToString())
print(f"done in {time.perf_counter() - started:.1f}s", flush=True)
