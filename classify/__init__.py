"""Classification stage: the shared CNN that judges every condition, and a stronger VGG-style network.

    model = create_classifier("shared_cnn")
    model, meta = load_classifier("checkpoints/classifier_full")
"""

from .models import CLASSIFIERS, create_classifier, load_classifier, save_classifier

__all__ = ["CLASSIFIERS", "create_classifier", "load_classifier", "save_classifier"]
