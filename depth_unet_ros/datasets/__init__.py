"""RGB-D dataset readers (NYU Depth V2 labeled .mat, folder datasets, synthetic scenes).

numpy only, so evaluation and bag conversion run where torch is absent; training wraps these
in torch datasets.
"""
