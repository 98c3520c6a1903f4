"""Panopto: the REST client, the UploadTarget/S3 plumbing, UCS manifests and the upload engine.

Library entry points::

    from vidauth.panopto.engine import UploadEngine, UploadJob, UploadOptions
    from vidauth.panopto.api import upload_files
"""

from __future__ import annotations
