import optax

from ._config import TrainConfig


def optimiser_of(train: TrainConfig, warmup: int):
    """AdamW with a linear warmup over `warmup` steps, cosine decay to 1 % of the
    peak, and global-norm clipping; returns `(optimiser, schedule)`."""
    schedule = optax.warmup_cosine_decay_schedule(
        init_value=0.0 if warmup else train.learning_rate,
        peak_value=train.learning_rate,
        warmup_steps=warmup,
        decay_steps=train.num_train_steps,
        end_value=0.01 * train.learning_rate,
    )
    chain = [optax.clip_by_global_norm(train.clip_norm)] if train.clip_norm else []
    chain.append(optax.adamw(schedule, weight_decay=train.weight_decay))
    return optax.chain(*chain), schedule
