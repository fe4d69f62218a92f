"""AnyVar's object and metadata types (``anyvar.core.objects``, ``anyvar.core.metadata``), for
clients that import them."""
