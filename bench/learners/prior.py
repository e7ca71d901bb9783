"""The cheapest honest learner for bench/any_model.py: reads the protocol's files (pyarrow), and
predicts every row as the weighted class shares of the training rows. Its own time is almost
all Python's start and Parquet, so what gyre adds around a command stands out."""
import json
import os

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

spec = json.load(open(os.environ["GYRE_SPEC"]))
train = pq.read_table(os.environ["GYRE_TRAIN"], columns=["weight", spec["target"]])
ids = pq.read_table(os.environ["GYRE_PREDICT"], columns=["row_id"]).column("row_id")
total = pc.sum(train.column("weight")).as_py()
cols = {"row_id": ids}
for c in spec["classes"]:
    mask = pc.equal(train.column(spec["target"]), c)
    share = pc.sum(pc.if_else(mask, train.column("weight"), 0.0)).as_py() / total
    cols[c] = pa.array([share] * len(ids), pa.float64())
pq.write_table(pa.table(cols), os.environ["GYRE_PREDICTIONS"])
