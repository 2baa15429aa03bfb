"""Fine-tuning: batching, metrics, the training loop, checkpoints and resume."""
