"""The per-sample scorer and the dataset-level metrics, one scorer per extractor."""
