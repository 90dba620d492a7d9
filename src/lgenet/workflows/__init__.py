"""What the commands orchestrate: the grid (``lgenet run``), the segmentation CV with its page (``segment
train``), the demo and ``predict``. Nothing below this layer imports it."""
