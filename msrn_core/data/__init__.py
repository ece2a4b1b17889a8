"""Data: what the model is fed.

- ``dataset``   the interface every dataset shares (``ImageListDataset``), image loading, transforms
- ``scenes/``   the built-in synthetic multi-label scene dataset, generated offline from a seed
- ``real/``     the real benchmarks: VOC 2007, COCO 2014, NUS-WIDE, Apparel (``load_dataset``)
- ``download``  the one download helper (cache, checksum, resume) and the VOC 2007 archives
"""
