#!/usr/bin/env bash
# MLflow in server mode, for stages (or people) writing runs at the same time: one process owns
# the database and serves artifacts, clients talk HTTP. Point the pipeline at it with one setting:
#   export MLFLOW_TRACKING_URI=http://127.0.0.1:5000
# Settings (environment):
#   MLFLOW_PORT                  5000
#   MLFLOW_BACKEND_STORE_URI     sqlite:///<project>/mlflow.db (the store `dvc repro` uses without a
#                                server); postgresql://user@host/db for a team (pip install psycopg2-binary)
#   MLFLOW_ARTIFACTS_DESTINATION <project>/mlartifacts; s3://bucket/path or gs://bucket/path on a cluster
#   MLFLOW_WORKERS               1 with SQLite (one process writes the file; 4 also passed the
#                                two-writer test here), 4 with PostgreSQL
# It binds to 127.0.0.1; reach it from other machines through an SSH tunnel or a proxy with
# authentication, not by binding to 0.0.0.0.
set -euo pipefail
project="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
backend="${MLFLOW_BACKEND_STORE_URI:-sqlite:///${project}/mlflow.db}"
default_workers=1
[[ "$backend" == sqlite:* ]] || default_workers=4
exec mlflow server \
  --host 127.0.0.1 \
  --port "${MLFLOW_PORT:-5000}" \
  --backend-store-uri "$backend" \
  --artifacts-destination "${MLFLOW_ARTIFACTS_DESTINATION:-${project}/mlartifacts}" \
  --workers "${MLFLOW_WORKERS:-$default_workers}"
