"""The Python baseline for `gyre import`: read a CSV(.gz) with pandas, write zstd Parquet."""
import sys

import pandas as pd

src, out = sys.argv[1], sys.argv[2]
df = pd.read_csv(src, na_values=["?", "NA", "null"])
df.to_parquet(out, compression="zstd")
print(len(df))
