"""Multi-worker TensorFlow training as a plain Python function: ``@task.tfjob``.

One chief and two workers train a small Keras model on generated data with
``MultiWorkerMirroredStrategy`` and a custom training loop (Keras 3's ``model.fit`` does not work
under the strategy). Every replica runs the function; the chief's return value — final loss and
accuracy — is the task's XCom, and a downstream task prints it.

Runs on Kubernetes with the Kubeflow training operator (the image needs Python and TensorFlow), or
on one machine with ``[tfjob] backend = local`` — the README's first command does that.
"""

from __future__ import annotations

import datetime
import os
from typing import Any

from airflow.sdk import DAG, task

from airflow_tfjob import Chief, RunPolicy, TfJob, Worker

IMAGE = os.environ.get("TFJOB_EXAMPLE_IMAGE", "airflow-tfjob-train:0.1.0")

with DAG(
    "example_tfjob_function",
    schedule=None,
    start_date=datetime.datetime(2026, 1, 1),
    catchup=False,
    tags=["example", "tfjob"],
) as dag:

    @task.tfjob(
        task_config=TfJob(
            chief=Chief(),
            worker=Worker(replicas=2),
            run_policy=RunPolicy(backoff_limit=0, active_deadline_seconds=1800),
        ),
        image=IMAGE,
        env={"TF_CPP_MIN_LOG_LEVEL": "2"},
        execution_timeout=datetime.timedelta(minutes=30),
    )
    def train(steps: int, batch_size: int, learning_rate: float) -> dict[str, Any]:
        import tensorflow as tf

        from airflow_tfjob.runtime import context

        strategy = tf.distribute.MultiWorkerMirroredStrategy()
        role = context()
        print(f"{role.replica}: {strategy.num_replicas_in_sync} replicas in sync", flush=True)

        # The same generated data on every replica; the strategy shards it.
        features = tf.random.stateless_normal((4096, 8), seed=(7, 0))
        weights = tf.constant([[1.5], [-2.0], [0.5], [0.0], [1.0], [-1.0], [2.0], [0.3]])
        labels = tf.cast(tf.matmul(features, weights) > 0, tf.float32)
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = (
            tf.data.experimental.AutoShardPolicy.DATA
        )
        dataset = (
            tf.data.Dataset.from_tensor_slices((features, labels))
            .shuffle(4096, seed=1)
            .repeat()
            .batch(batch_size)
            .with_options(options)
        )
        batches = iter(strategy.experimental_distribute_dataset(dataset))

        with strategy.scope():
            model = tf.keras.Sequential(
                [
                    tf.keras.Input((8,)),
                    tf.keras.layers.Dense(16, activation="relu"),
                    tf.keras.layers.Dense(1),
                ]
            )
            optimizer = tf.keras.optimizers.SGD(learning_rate)
        loss_of = tf.keras.losses.BinaryCrossentropy(from_logits=True, reduction="none")

        @tf.function
        def step(inputs):
            def on_replica(batch):
                x, y = batch
                with tf.GradientTape() as tape:
                    per_example = loss_of(y, model(x, training=True))
                    loss = tf.nn.compute_average_loss(per_example, global_batch_size=batch_size)
                grads = tape.gradient(loss, model.trainable_variables)
                optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
                return loss

            losses = strategy.run(on_replica, args=(inputs,))
            return strategy.reduce(tf.distribute.ReduceOp.SUM, losses, axis=None)

        loss = 0.0
        for number in range(1, steps + 1):
            loss = float(step(next(batches)))
            if number % 50 == 0:
                print(f"{role.replica}: step {number}: loss {loss:.4f}", flush=True)

        predictions = tf.cast(model(features, training=False) > 0, tf.float32)
        accuracy = float(tf.reduce_mean(tf.cast(predictions == labels, tf.float32)))
        return {
            "loss": round(loss, 4),
            "accuracy": round(accuracy, 4),
            "steps": steps,
            "replicas": strategy.num_replicas_in_sync,
        }

    @task
    def report(result: dict[str, Any]) -> str:
        line = (
            f"trained on {result['replicas']} replicas for {result['steps']} steps: "
            f"loss {result['loss']:.4f}, accuracy {result['accuracy']:.1%}"
        )
        print(line)
        return line

    report(train(steps=200, batch_size=64, learning_rate=0.2))
