# spread returns the difference between the largest and the smallest value.
spread <- function(x) max(x) - min(x)
