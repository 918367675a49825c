"""tamis: curate, mix and index pretraining corpora with Apache Beam."""

__version__ = "0.1.0"
