"""Training stages on Hugging Face Trainer, run directories, and the torchrun launcher."""
