"""Fit y = 3x - 1 with MultiWorkerMirroredStrategy; the result goes to --output as JSON.

The training program of ``example_tfjob_operator``: in a pod it is the image's ``/app/train.py``;
on the local backend this file runs as it is. Every replica writes its result to ``--output``
(default: the container's termination log); the chief's becomes the task's XCom ``output``.
"""

import argparse
import json

import tensorflow as tf


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--learning-rate", type=float, default=0.3)
    parser.add_argument("--output", default="/dev/termination-log")
    options = parser.parse_args()

    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    x = tf.linspace(-1.0, 1.0, 256)
    y = 3.0 * x - 1.0
    with strategy.scope():
        slope, intercept = tf.Variable(0.0), tf.Variable(0.0)
        optimizer = tf.keras.optimizers.SGD(options.learning_rate)

    @tf.function
    def fit():
        def on_replica():
            with tf.GradientTape() as tape:
                loss = tf.reduce_mean(tf.square(slope * x + intercept - y))
            grads = tape.gradient(loss, [slope, intercept])
            optimizer.apply_gradients(zip(grads, [slope, intercept], strict=True))
            return loss

        return strategy.reduce(tf.distribute.ReduceOp.MEAN, strategy.run(on_replica), axis=None)

    for number in range(1, options.steps + 1):
        loss = float(fit())
        if number % 25 == 0:
            print(f"step {number}: loss {loss:.6f}", flush=True)
    result = {
        "slope": round(float(slope.numpy()), 4),
        "intercept": round(float(intercept.numpy()), 4),
    }
    result["loss"] = round(loss, 6)
    with open(options.output, "w", encoding="utf-8") as out:
        json.dump(result, out)
    print(f"result: {result}", flush=True)


if __name__ == "__main__":
    main()
