"""The released dataset (LAION layout) and the opt-out list applied to it."""
