# Airflow image with the airflow-tfjob provider installed.
#
#   docker build -t airflow-tfjob:0.1.0 .                       # from the repository root
#   docker build -t airflow-tfjob:0.1.0 --build-arg PROVIDER_EXTRAS="[tensorflow]" .
#
# PROVIDER_EXTRAS="[tensorflow]" adds TensorFlow, which only the local backend
# ([tfjob] backend = local: replicas run as processes next to the scheduler) needs; with the
# kubernetes backend the training code runs in the pods' own image (training/Dockerfile).
# docker-compose.yaml builds this file as airflow-tfjob:0.1.0.
FROM apache/airflow:3.3.2-python3.11

ARG PROVIDER_EXTRAS=""

# The official image's convention: install as the airflow user (never root), into its user
# site, and name the image's own Airflow version so pip cannot upgrade or downgrade it.
USER airflow
WORKDIR /opt/airflow/src/airflow-tfjob

# Only what the wheel is built from; .dockerignore keeps caches and __pycache__ out.
COPY --chown=airflow:root pyproject.toml README.md ./
COPY --chown=airflow:root airflow_tfjob/ ./airflow_tfjob/

RUN pip install --no-cache-dir "apache-airflow==${AIRFLOW_VERSION}" ".${PROVIDER_EXTRAS}" \
    && python -c "import airflow_tfjob.get_provider_info as p; print(p.PACKAGE_NAME, p.VERSION)"

WORKDIR /opt/airflow
