"""The "TFJobs" page in the Airflow UI: a FastAPI app and the plugin that registers it."""
