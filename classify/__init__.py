"""Classification stage: the shared CNN that judges every condition, and a stronger VGG-style network.

    model = create_classifier("shared_cnn")
    model, meta, path = open_classifier("classifier_full")        # a shipped name or a checkpoint path
    probs = predict_proba(model, faces.float_images(), tta=True)
    model = train_quick(load_faces("synthetic:n=3500"))            # seconds on the CPU, for tests
    heat = grad_cam(model, images)                                 # where it looks, [N, 1, 48, 48]

Training from a config: `classify.train.train_from_config` or `unveil train-classifier --config ...`.
"""

from .evaluate import evaluate, predict_proba
from .models import CLASSIFIERS, create_classifier, load_classifier, open_classifier, save_classifier
from .saliency import grad_cam
from .train import fit_classifier, train_quick

__all__ = ["CLASSIFIERS", "create_classifier", "evaluate", "fit_classifier", "grad_cam", "load_classifier",
           "open_classifier", "predict_proba", "save_classifier", "train_quick"]
