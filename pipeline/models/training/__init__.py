"""Scripts that train the project's small default models on synthetic images."""
