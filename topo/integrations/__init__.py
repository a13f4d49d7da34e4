"""Integrations of :class:`topo.Recorder` with training frameworks.

Each lives in its own module and needs its framework, installed with topo's extra of the same
name: :mod:`topo.integrations.lightning` (``pip install 'topo[lightning]'``).
"""
