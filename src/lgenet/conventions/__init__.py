"""The project's conventions, each with one home: names of files and image measures, the LGE
threshold, label conventions. Every default and every reader imports them from here.

This layer imports nothing of lgenet but :mod:`lgenet.errors`.
"""
