"""Run on your own photo: find faces and their landmarks, align them as FER2013 frames its faces, and
mark the hidden lower face on the aligned crop.

    detector = create_detector()                    # RetinaFace (or "mtcnn"), weights shipped or installed
    for face in detector.detect(rgb):               # RGB uint8 [H, W, 3]
        crop, matrix = align_face(rgb, face)        # uint8 [48, 48], photo -> crop 2x3 matrix
        hole = landmark_hole(transform_points(matrix, face.landmarks))   # [1, 1, 48, 48], 1 = hidden
        pose = head_pose(face.landmarks, rgb.shape)                      # yaw, pitch, roll in degrees

A layer above the core (``unveil``): it imports neither stage (``classify``, ``inpaint``) nor
``pipelines``, and adds the ``photos:`` data source and the ``photo-mask`` occlusion to the core's tables
(``unveil.photo.source``), found through the ``unveil.plugins`` entry point.
"""

from .align import FER_LANDMARKS, align_face, fer_landmarks, rgb_to_gray, similarity_transform, transform_points
from .hole import landmark_hole, lower_half_hole
from .detect import DEFAULT_DETECTOR, DETECTORS, create_detector
from .face import LANDMARK_NAMES, Face
from .mtcnn import MTCNN
from .pose import Pose, head_pose
from .retinaface import RetinaFace
from .source import PhotoMasks, PhotoSetSource

__all__ = ["LANDMARK_NAMES", "Face", "MTCNN", "RetinaFace", "DETECTORS", "DEFAULT_DETECTOR", "create_detector",
           "FER_LANDMARKS", "align_face", "fer_landmarks",
           "rgb_to_gray", "similarity_transform", "transform_points", "landmark_hole", "lower_half_hole", "Pose",
           "head_pose", "PhotoMasks", "PhotoSetSource"]
