"""The small default models the project trains and ships (see pipeline/training/)."""
