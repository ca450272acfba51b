"""How the shipped heads and towers were trained (inference/artifacts/): one script per model, with
the data loading, features and metrics they share. Not part of the serving package's images: the
inference image ships inference/ without this folder, and serving never imports it.

    python -m inference.training.sentiment   # linear sentiment head + relevance background
    python -m inference.training.finetune    # the 4-layer sentiment tower
    python -m inference.training.tone        # the emotion and offensive heads
    python -m inference.training.multitask   # tower and tone heads fine-tuned together (not shipped)
"""
