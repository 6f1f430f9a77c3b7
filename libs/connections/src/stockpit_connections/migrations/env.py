from stockpit_runtime.migrations import run_env

# The migration creates unqualified names: Alembic runs with search_path set to the target schema.
run_env(None)
