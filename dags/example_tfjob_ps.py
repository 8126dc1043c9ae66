"""Parameter-server training: ``ParameterServerStrategy`` with a chief, a worker and a PS.

The chief coordinates (``ClusterCoordinator`` schedules steps on the worker), the PS replica
holds the variables, the worker serves the steps. PS replicas of ``@task.tfjob`` serve variables
on their own; the worker starts a TensorFlow server from the function and never returns — the
job succeeds when the chief does, and ``cleanPodPolicy`` (``Running``, the default here) stops
the worker and the PS afterwards. The chief returns the final loss and the model's accuracy.
"""

from __future__ import annotations

import datetime
import os
from typing import Any

from airflow.sdk import DAG, task

from airflow_tfjob import PS, Chief, RunPolicy, TfJob, Worker

IMAGE = os.environ.get("TFJOB_EXAMPLE_IMAGE", "airflow-tfjob-train:0.1.0")

with DAG(
    "example_tfjob_ps",
    schedule=None,
    start_date=datetime.datetime(2026, 1, 1),
    catchup=False,
    tags=["example", "tfjob"],
) as dag:

    @task.tfjob(
        task_config=TfJob(
            chief=Chief(),
            worker=Worker(replicas=1),
            ps=PS(replicas=1),
            run_policy=RunPolicy(backoff_limit=0, active_deadline_seconds=1800),
        ),
        image=IMAGE,
        env={"TF_CPP_MIN_LOG_LEVEL": "2"},
        execution_timeout=datetime.timedelta(minutes=30),
    )
    def train_ps(steps: int, learning_rate: float) -> dict[str, Any]:
        import tensorflow as tf

        from airflow_tfjob.runtime import context

        role = context()
        if role.task_type == "worker":  # serve steps until the job is over
            tf.distribute.Server(
                tf.train.ClusterSpec(role.cluster),
                job_name="worker",
                task_index=role.task_index,
                protocol="grpc",
                start=True,
            ).join()

        resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
        strategy = tf.distribute.ParameterServerStrategy(resolver)
        coordinator = tf.distribute.coordinator.ClusterCoordinator(strategy)

        features = tf.random.stateless_normal((2048, 4), seed=(3, 0))
        labels = tf.cast(tf.reduce_sum(features * [1.0, -1.0, 2.0, 0.5], axis=1) > 0, tf.float32)

        def dataset_fn():
            data = tf.data.Dataset.from_tensor_slices((features, labels))
            return data.shuffle(2048, seed=2).repeat().batch(64)

        with strategy.scope():
            weights = tf.Variable(tf.zeros((4,)), name="weights")
            bias = tf.Variable(0.0, name="bias")

        @tf.function
        def step(iterator):
            x, y = next(iterator)
            with tf.GradientTape() as tape:
                logits = tf.linalg.matvec(x, weights) + bias
                loss = tf.reduce_mean(
                    tf.nn.sigmoid_cross_entropy_with_logits(labels=y, logits=logits)
                )
            grad_w, grad_b = tape.gradient(loss, [weights, bias])
            weights.assign_sub(learning_rate * grad_w)
            bias.assign_sub(learning_rate * grad_b)
            return loss

        iterator = iter(coordinator.create_per_worker_dataset(dataset_fn))
        for number in range(1, steps + 1):
            loss = coordinator.schedule(step, args=(iterator,))
            if number % 50 == 0:
                coordinator.join()
                print(f"step {number}: loss {float(loss.fetch()):.4f}", flush=True)
        coordinator.join()

        logits = tf.linalg.matvec(features, weights.read_value()) + bias.read_value()
        accuracy = tf.reduce_mean(tf.cast(tf.cast(logits > 0, tf.float32) == labels, tf.float32))
        return {
            "loss": round(float(loss.fetch()), 4),
            "accuracy": round(float(accuracy), 4),
            "steps": steps,
        }

    @task
    def report(result: dict[str, Any]) -> str:
        line = (
            f"{result['steps']} steps: loss {result['loss']:.4f}, accuracy {result['accuracy']:.1%}"
        )
        print(line)
        return line

    report(train_ps(steps=200, learning_rate=0.5))
