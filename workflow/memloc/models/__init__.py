"""Model plumbing: random tiny classifiers and family-aware access to transformer blocks."""
