"""Experiments: the layer above the engine (it imports the engine, never ``viz``, ``grading`` or the CLI).

    sinusoid_job     the main job, ``mlcourse train sinusoid``: the MAML paper's sinusoids, meta-test table
    direction_trace  MAML / FOMAML / Reptile directions along the main job's MAML run (notebook 04)
    speed            ``mlcourse bench``: one meta-iteration of every engine path beside JAX and PyTorch
    shipped          load the shipped results (``results/``) and the commands that recompute them

Shipped results are data: notebooks and tests read them through ``shipped.load``; only the developer
command ``mlcourse refresh-results`` rewrites them, and only in a source checkout.
"""
