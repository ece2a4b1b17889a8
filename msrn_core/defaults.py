"""Every default value of the tutorial, in one place.

A function or option that has one of these defaults takes ``None`` and falls back to the value
here, so changing a default is a one-line change. The training recipes (CPU, SMALL, GPU, PAPER)
are in :mod:`msrn_core.running.recipes`; they take their sizes from here.
"""

# The images: the built-in scene dataset and the CPU recipe (the paper trains at 448 px).
IMAGE_SIZE = 128
PAPER_IMAGE_SIZE = 448

# The label graph (ML-GCN's adjacency, paper section 3.2): an edge i -> j where P(j | i) >= t; the
# edges are divided by their *column* sums, so each column's neighbours sum to p (the official code's
# gen_A, not ML-GCN's eq. 8, which uses row sums), plus 1 on the diagonal; gen_adj then transposes,
# so the GCN/GAT row of label i reads the labels j with P(i | j) >= t (graph.py; notebook 01).
T = 0.4
P = 0.25

# The label vectors V fed to the first GAT layer (the paper uses GloVe, "glove"); the notebooks
# read LABEL_FEATURES_ENV first, so that one environment variable switches every notebook.
LABEL_FEATURES = "sentence"
LABEL_FEATURES_ENV = "MSRN_LABEL_FEATURES"

# The paper's widths (section 4.1): the defaults of ModelConfig and of the GPU and PAPER recipes.
EMBED_DIM = 512  # d, the width of the label and group embeddings and of each branch's projection
GAT_HIDDEN = 300  # the first GAT layer's output width
FC_HIDDEN = 2048  # fc1, the classifier's hidden layer
NUM_GROUPS = 4  # m, the Diffpool label groups

# The CPU recipe's narrowed head: the paper's widths make fc1 alone 94 M weights for 26 labels.
CPU_EMBED_DIM = 256
CPU_FC_HIDDEN = 512
