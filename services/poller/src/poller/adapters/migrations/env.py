from poller.adapters.orm import metadata
from stockpit_runtime.migrations import run_env

run_env(metadata)
