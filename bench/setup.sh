#!/usr/bin/env bash
# Creates bench/.venv with the Python baseline stack (pandas, pyarrow, LightGBM, scikit-learn,
# MLflow, sliceline, scipy, cleanlab; FastAPI and uvicorn with httptools and uvloop, its
# production setup, for the serving baseline).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
if [ ! -x "$here/.venv/bin/python" ]; then
  python3 -m venv "$here/.venv"
fi
"$here/.venv/bin/pip" install -q --disable-pip-version-check pandas pyarrow lightgbm scikit-learn mlflow sliceline scipy cleanlab fastapi "uvicorn[standard]"
