"""The small default models the project trains and ships (see pipeline/models/training/)."""

from pathlib import Path

MODELS_DIR = Path(__file__).parent
