"""The seed study's own training stack (Keras / TensorFlow), timed on this machine.

    python bench/keras_reference.py --arch resnet50 --size 224          # one configuration, JSON on stdout
    python bench/keras_reference.py --arch inception_v3 --size 299 --threads 2

The seed's model exactly as its paper describes it: a ``keras.applications`` backbone (no pretrained
weights: speed does not depend on them) with all layers trainable, then Flatten -> Dense 512 ReLU ->
Dropout 0.5 -> Dense 1 sigmoid; Adam (lr 1e-3), binary cross-entropy, batch 8. It trains on
``--n`` random grey images replicated to 3 channels (the same kind of input lgenet times in
``bench/throughput.py``) and prints images per second: the median of ``--repeats`` timed epochs after
one warm-up epoch. Needs the ``[interop]`` extra (TensorFlow, Keras). ``bench/grid_speed.py`` runs it
beside lgenet, back to back, and prints the ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arch", choices=["resnet50", "inception_v3"], default="resnet50")
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--n", type=int, default=48, help="training images per timed epoch (default 48)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None, help="TensorFlow intra-op threads (default: TF's own)")
    a = ap.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import numpy as np
    import tensorflow as tf

    if a.threads:  # intra-op only: restricting inter-op parallelism too made TF slower here
        tf.config.threading.set_intra_op_parallelism_threads(a.threads)
    import keras

    app = {"resnet50": keras.applications.ResNet50, "inception_v3": keras.applications.InceptionV3}[a.arch]
    keras.utils.set_random_seed(0)
    base = app(include_top=False, weights=None, input_shape=(a.size, a.size, 3))
    base.trainable = True
    x = keras.layers.Flatten()(base.output)
    x = keras.layers.Dense(512, activation="relu")(x)
    x = keras.layers.Dropout(0.5)(x)
    out = keras.layers.Dense(1, activation="sigmoid")(x)
    model = keras.Model(base.input, out)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="binary_crossentropy")  # Keras's defaults (jit "auto")
    rng = np.random.default_rng(0)
    grey = rng.random((a.n, a.size, a.size, 1), dtype=np.float32)
    xs = np.repeat(grey, 3, axis=-1)
    ys = (np.arange(a.n) % 2).astype(np.float32)
    model.fit(xs, ys, batch_size=8, epochs=1, verbose=0, shuffle=True)  # warm-up (graph tracing)
    rates = []
    for _ in range(a.repeats):
        t0 = time.perf_counter()
        model.fit(xs, ys, batch_size=8, epochs=1, verbose=0, shuffle=True)
        rates.append(a.n / (time.perf_counter() - t0))
    res = {
        "stack": f"keras {keras.__version__} / tensorflow {tf.__version__}",
        "arch": a.arch,
        "size": a.size,
        "precision": "fp32",
        "threads": a.threads,
        "train_img_s": round(statistics.median(rates), 2),
        "runs": [round(r, 2) for r in rates],
        "params": int(model.count_params()),
    }
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
