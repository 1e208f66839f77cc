"""Cloud jobs: data set sync, training, int8 conversion with a quality gate, publishing, search."""
