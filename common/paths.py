"""Default locations, resolved against the repository root (not the working directory).

A script run from anywhere writes where ``tensorboard --logdir logs`` at the root finds it.
"""
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DATASET_DIR = REPO_ROOT / "dataset"
LOGS_DIR = REPO_ROOT / "logs"
CHECKPOINT_DIR = REPO_ROOT / "checkpoints"

# The embedded sample: the course's ants/bees data, folder name = label (lesson 05/06).
SAMPLE_IMAGE_FOLDER = DATASET_DIR / "hymenoptera_sample"
# The course's second layout: images and label .txt files in twin folders (lesson 06).
SAMPLE_PRACTICE_FOLDER = DATASET_DIR / "practice_sample"
