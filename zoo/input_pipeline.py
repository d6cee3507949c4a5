"""The `tf.data` pipelines every source shares: image preparation (channels,
size), the evaluation pipeline (batched, scaled, in order; sharded with
weights across processes) and the training stream, whose batches are a
function of (seed, pass) alone so that a resumed run sees the batches an
uninterrupted one would."""

from __future__ import annotations

from zoo import augment as augment_lib
from zoo import preprocessing


def image_hw(image_size, stored_hw, min_image_size=None) -> tuple:
    """The (h, w) a source's images are prepared at: `image_size` when
    given, else as stored, resized up (aspect kept, rounded up) so that the
    shorter side is at least `min_image_size` (the recipe's floor; None:
    none)."""
    if image_size is not None:
        return tuple(image_size)
    h, w = (int(d) for d in stored_hw)
    short = min(h, w)
    if not min_image_size or short >= min_image_size:
        return h, w
    return -(-h * min_image_size // short), -(-w * min_image_size // short)


def prepare_fn(image_shape, source_shape):
    import tensorflow as tf
    h, w, c = image_shape

    def prepare(x, y):
        x = tf.cast(x, tf.float32)
        if x.shape[-1] != c:
            x = (tf.image.grayscale_to_rgb(x) if c == 3 and x.shape[-1] == 1
                 else tf.image.rgb_to_grayscale(x) if c == 1 and x.shape[-1] == 3
                 else tf.repeat(tf.reduce_mean(x, -1, keepdims=True), c, -1))
        if (h, w) != tuple(source_shape[:2]):
            x = tf.image.resize(x, (h, w))
        return x, tf.cast(y, tf.int32)
    return prepare


def batched_pipeline(ds, *, prepare, batch_size, mode, cache, shard=None):
    """A validation or test pipeline: prepared, batched, scaled, in order.

    With `shard=(i, n)` (multi-process training) it yields (images, labels,
    weights): process i's n-th of every global batch. The data are padded
    to a multiple of n with (at most n - 1) images of weight 0, so that every
    process runs the same number of equal batches and weighted metrics
    count each image once.
    """
    import tensorflow as tf
    autotune = tf.data.AUTOTUNE
    ds = ds.map(prepare, num_parallel_calls=autotune)
    if cache:
        ds = ds.cache()
    if shard is not None:
        i, n = shard
        pad = -int(ds.cardinality()) % n
        ds = ds.map(lambda x, y: (x, y, tf.constant(1.0)))
        ds = ds.concatenate(ds.repeat().take(pad).map(
            lambda x, y, w: (x, y, tf.constant(0.0))))

        def local(x, y, w):
            part = tf.shape(y)[0] // n
            lo, hi = i * part, (i + 1) * part
            return preprocessing.scale(x[lo:hi], mode), y[lo:hi], w[lo:hi]
        return ds.batch(batch_size).map(local, num_parallel_calls=autotune) \
            .prefetch(autotune)
    ds = ds.batch(batch_size)
    ds = ds.map(lambda x, y: (preprocessing.scale(x, mode), y),
                num_parallel_calls=autotune)
    return ds.prefetch(autotune)


def _local_slice(batch_size, shard):
    """The part [lo, hi) of a global batch that process `shard[0]` of
    `shard[1]` trains on."""
    i, n = shard
    local = batch_size // n
    return i * local, (i + 1) * local


def batched_indices(order, batch_size, shard=None):
    """Batches of example indices; with `shard`, this process's part of each
    global batch (a last partial global batch is dropped, so that every
    process runs the same steps)."""
    if shard is None:
        return order.batch(batch_size)
    lo, hi = _local_slice(batch_size, shard)
    return order.batch(batch_size, drop_remainder=True).map(lambda i: i[lo:hi])


def training_stream(one_pass, size, *, batch_size, seed, augmenter, mode,
                     shard=None):
    """The training pipeline: one pass over the `size` training examples
    each time it is iterated, returned with its pass counter.

    `one_pass(p)` gives pass p's prepared (image, label) batches in an order
    drawn from p and the seed alone (`permuted`, or a seeded shuffle buffer
    for streamed tfds data); batch b of pass p is augmented with the seed
    (seed, p × batches per pass + b). So the batches are a function of
    (seed, pass) only. Each new iterator takes the next pass number from the
    counter (a tf.Variable), so epochs reshuffle as usual; a run resumed at
    epoch k sets it to k's first pass and sees the batches an uninterrupted
    run would (`zoo.training` does this).
    """
    import tensorflow as tf
    autotune = tf.data.AUTOTUNE
    counter = tf.Variable(0, dtype=tf.int64, trainable=False, name="train_pass")
    steps = size // batch_size if shard is not None else -(-size // batch_size)
    generators = augment_lib.seed_generators(augmenter)

    def numbered(p):
        return one_pass(p).enumerate().map(
            lambda b, xy: (p * steps + b, xy[0], xy[1]))

    ds = tf.data.Dataset.from_tensors(tf.constant(0, tf.int64)).map(
        lambda _: counter.assign_add(1) - 1).flat_map(numbered)
    if augmenter is not None:
        def augment(index, x, y):
            augment_lib.reseed(generators, seed, index)
            return index, augmenter(x, training=True), y
        # Sequential on purpose: the layers share the generators' state.
        ds = ds.map(augment)
    ds = ds.map(lambda index, x, y: (preprocessing.scale(x, mode), y),
                num_parallel_calls=autotune)
    ds = ds.apply(tf.data.experimental.assert_cardinality(steps))
    return ds.prefetch(autotune), counter


def permuted(fetch, size, seed):
    """`one_pass` for sources read by index: pass p visits the examples in the
    order of a permutation drawn from the stateless seed (seed, p) — a full
    shuffle without a shuffle buffer. `fetch(indices)` maps a dataset of
    example indices to prepared (image, label) batches."""
    import tensorflow as tf
    seed = tf.constant(seed, tf.int64)

    def one_pass(p):
        order = tf.random.experimental.stateless_shuffle(
            tf.range(size, dtype=tf.int64), seed=tf.stack([seed, p]))
        return fetch(tf.data.Dataset.from_tensor_slices(order))
    return one_pass


def array_fetch(x, y, prepare, batch_size, shard=None):
    """`fetch` for in-memory arrays (NumPy, or a folder's images already in
    a tf.Variable): batches gathered by index."""
    import tensorflow as tf
    with tf.device("CPU"):
        images = x if isinstance(x, tf.Variable) else tf.Variable(
            x, trainable=False, name="train_images")
        labels = tf.Variable(y, trainable=False, name="train_labels")
    return lambda order: batched_indices(order, batch_size, shard).map(
        lambda i: prepare(tf.gather(images, i), tf.gather(labels, i)),
        num_parallel_calls=tf.data.AUTOTUNE)
