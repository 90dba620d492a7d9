"""lgenet: deep learning on LGE cardiac MRI with cross-validated, explainable evidence."""

__version__ = "0.3.0"
