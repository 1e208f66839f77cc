"""Cloud side of Recyclops: training jobs, publishing, the review tool."""
