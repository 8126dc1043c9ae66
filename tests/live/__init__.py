"""The live tier: the provider inside a real Airflow deployment (see conftest.py)."""
