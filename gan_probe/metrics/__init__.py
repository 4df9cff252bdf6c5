"""Sample-quality metrics: FID, Inception Score, KID, precision/recall, density/coverage.

Pure functions over features and statistics (numpy only: :mod:`.fid`, :mod:`.inception_score`,
:mod:`.kid`, :mod:`.prdc`, :mod:`.statsfile`), image sources (:mod:`.sources`), and the pipeline
that turns sources into cached statistics and scores (:mod:`.extract`, :mod:`.score`). Importing
this package does not import torch, so FID between two ``.npz`` files stays fast.
"""
