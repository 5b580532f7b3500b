"""Background processing: workers that claim images and the pipeline that takes one through its stages."""
