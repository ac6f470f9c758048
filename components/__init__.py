"""Custom TFX components and the user modules (transform, trainer) the pipeline runs."""
