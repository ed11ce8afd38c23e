"""Training, conversion, evaluation and publishing scripts for MaskWatch's weights."""
