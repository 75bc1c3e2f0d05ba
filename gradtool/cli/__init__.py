"""The ``gradtool`` command line (click)."""
