"""Analyses of a trained DCGAN (each writes figures + summary.json under RUN_DIR/analysis/<name>/)."""
