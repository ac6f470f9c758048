"""The pipeline's stages, in the data's order: ingest (and validate) → decide → train → evaluate → push.

Each module builds the TFX components of one stage from the validated config and the channels of
the stages before it; pipeline/assembly.py chains them into one pipeline.
"""
