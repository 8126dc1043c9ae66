"""The page's settings from Airflow's configuration."""

from __future__ import annotations

from airflow_tfjob.operators._settings import deployment, targets, ui_base

__all__ = ["deployment", "targets", "ui_base"]
