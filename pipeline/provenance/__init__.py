"""Provenance signals read from an image's raw bytes: C2PA, IPTC XMP, generator chunks, EXIF.

:func:`pipeline.provenance.reader.read_provenance` is the one entry point; each signal has its
own module and :mod:`pipeline.provenance.combine` applies the rules that turn them into
``ai_generated``, ``c2pa_state`` and ``training_mining``.
"""
