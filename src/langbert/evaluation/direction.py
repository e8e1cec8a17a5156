"""Which way is better for a metric: what picks the best checkpoint, marks the best point on a plot and
tells a search whether to minimise."""

LOWER_IS_BETTER = {"loss", "mse", "mae"}
