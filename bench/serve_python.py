"""The serving baseline: FastAPI + LightGBM serving the same model gyre serves (Adult, 200 trees,
learning rate 0.05, 31 leaves), with the same request and response shape.

Run under uvicorn: `uvicorn serve_python:app --workers 2`. Each worker trains at start-up (0.4 s).
Requests are turned into a NumPy row with category codes (the fast path; no DataFrame per
request). It does not log predictions; gyre logs every one durably.
"""
import os

import lightgbm as lgb
import numpy as np
import pandas as pd
from fastapi import FastAPI, HTTPException, Request

HERE = os.path.dirname(os.path.abspath(__file__))
ADULT = os.path.join(HERE, "..", "data", "adult", "adult.csv.gz")

frame = pd.read_csv(ADULT, na_values=["?"])
train = frame[frame["split"] == "train"]
FEATURES = [c for c in frame.columns if c not in ("income", "split")]
CATEGORICAL = [c for c in FEATURES if not pd.api.types.is_numeric_dtype(frame[c])]
CODES = {c: {v: i for i, v in enumerate(sorted(frame[c].dropna().unique()))} for c in CATEGORICAL}
CLASSES = sorted(frame["income"].unique())


def encode(df):
    out = np.empty((len(df), len(FEATURES)))
    for j, c in enumerate(FEATURES):
        if c in CODES:
            out[:, j] = df[c].map(CODES[c]).astype(float).to_numpy()
        else:
            out[:, j] = df[c].astype(float).to_numpy()
    return out


booster = lgb.train(
    {"objective": "binary", "learning_rate": 0.05, "num_leaves": 31, "verbose": -1,
     "num_threads": 1},
    lgb.Dataset(encode(train), label=(train["income"] == CLASSES[1]).astype(int),
                categorical_feature=[FEATURES.index(c) for c in CATEGORICAL]),
    num_boost_round=200,
)
app = FastAPI()
counter = iter(range(1 << 62))


@app.post("/v1/predict")
async def predict(request: Request):
    body = await request.json()
    rows = body.get("rows")
    if not isinstance(rows, list) or not rows:
        raise HTTPException(400, "rows: expected a non-empty list")
    x = np.empty((len(rows), len(FEATURES)))
    for i, row in enumerate(rows):
        for j, c in enumerate(FEATURES):
            if c not in row:
                raise HTTPException(422, f"row {i}: field {c!r}: missing")
            v = row[c]
            if v is None:
                x[i, j] = np.nan
            elif c in CODES:
                x[i, j] = CODES[c].get(v, np.nan)
            else:
                x[i, j] = float(v)
    p = booster.predict(x, num_threads=1)
    return {"predictions": [
        {"id": f"py-{next(counter)}", "model": "lightgbm", "label": CLASSES[int(s >= 0.5)],
         "scores": [1.0 - s, s]} for s in p]}
