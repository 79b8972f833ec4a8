"""``make bench``: speed, cost and scale of every stage, measured as ratios within one run on this machine."""
